//! The control API: a small HTTP/JSON interface on a loopback address, used by the CLI
//! (`status`, `drain`, `release`) to talk to the running daemon.
//!
//! Owns the routes and their JSON shapes, server and client side. It holds no state: every
//! request becomes an [`Message`] for the controller. There is no authentication yet, which is
//! why the config only accepts a loopback `api.listen`.
//!
//! Routes: `GET /api/v1/status`, `POST /api/v1/sites/{site}/drain[?force=true]`,
//! `POST /api/v1/sites/{site}/release`, and `GET /metrics` (Prometheus, `crate::metrics`).
//!
//! Loopback is not a security boundary against the machine's own browser: any web page can
//! send a request to 127.0.0.1, and DNS rebinding can make one read the answer. So before any
//! route, [`check_request`] refuses a `Host` that is not this listener's own address (or
//! `localhost` on its port), an `Origin` (or `Sec-Fetch-Site`) that is not this API's own, and
//! an action (`POST`) without `Content-Type: application/json`, which no cross-site page can
//! send without a CORS preflight this API never grants.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::control::{Command, CommandError, Message, SiteStatus};

#[derive(serde::Serialize, serde::Deserialize)]
pub struct StatusReply {
    pub sites: Vec<SiteStatus>,
    /// Public addresses (dynamic DNS), per family with sources configured.
    #[serde(default)]
    pub public: Vec<crate::control::PublicStatus>,
    /// Every provider zone: desired and held records, state, last error, drift.
    #[serde(default)]
    pub zones: Vec<crate::reconcile::ZoneStatus>,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct ErrorReply {
    pub error: String,
}

/// Serves the API until `cancel` fires (the loop and its limits: [`crate::http::server`]).
pub async fn serve(listener: TcpListener, tx: mpsc::Sender<Message>, cancel: CancellationToken) {
    let Ok(local) = listener.local_addr() else {
        return;
    };
    let opts = crate::http::server::Options {
        name: "control API",
        max_connections: 256,
        header_timeout: Duration::from_secs(5),
        http2: false,
        max_lifetime: None,
        grace: Duration::from_secs(2),
    };
    crate::http::server::serve(listener, None, opts, cancel, move |req: Request<hyper::body::Incoming>, _| {
        let tx = tx.clone();
        async move {
            if let Err((status, why)) = check_request(local, req.method(), req.headers()) {
                tracing::warn!(method = %req.method(), path = %req.uri().path(), "control API request refused: {why}");
                return error(status, why);
            }
            route(req, tx).await
        }
    })
    .await;
}

/// Whether a request may reach the routes (see the module doc). Pure, so every case is a unit
/// test; `local` is the listener's own address.
pub fn check_request(
    local: SocketAddr,
    method: &Method,
    headers: &hyper::HeaderMap,
) -> Result<(), (StatusCode, String)> {
    use hyper::header;
    let ours = |authority: &str| {
        let authority = authority.trim().to_ascii_lowercase();
        authority == local.to_string() || authority == format!("localhost:{}", local.port())
    };
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = match (hosts.next(), hosts.next()) {
        (Some(h), None) => h.to_str().unwrap_or(""),
        _ => {
            return Err((
                StatusCode::BAD_REQUEST,
                "exactly one Host header is needed".to_string(),
            ))
        }
    };
    if !ours(host) {
        return Err((
            StatusCode::FORBIDDEN,
            format!("Host `{host}` is not this API's address ({local}); a request for another name may be DNS rebinding"),
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let same = origin.strip_prefix("http://").is_some_and(ours);
        if !same {
            return Err((
                StatusCode::FORBIDDEN,
                format!("cross-origin request from `{origin}` refused"),
            ));
        }
    }
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return Err((
                StatusCode::FORBIDDEN,
                format!("cross-site request (Sec-Fetch-Site: {site}) refused"),
            ));
        }
    }
    if method != Method::GET && method != Method::HEAD {
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "an action needs Content-Type: application/json".to_string(),
            ));
        }
    }
    Ok(())
}

fn json<T: serde::Serialize>(status: StatusCode, body: &T) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(
        serde_json::to_vec_pretty(body).expect("serializable"),
    )));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        "application/json".parse().expect("valid"),
    );
    r
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response<Full<Bytes>> {
    json(status, &ErrorReply { error: msg.into() })
}

async fn route(
    req: Request<hyper::body::Incoming>,
    tx: mpsc::Sender<Message>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (req.method(), parts.as_slice()) {
        (&Method::GET, ["api", "v1", "status"]) => {
            let (reply, rx) = oneshot::channel();
            if tx.send(Message::Status { reply }).await.is_err() {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the daemon is shutting down",
                );
            }
            match rx.await {
                Ok((sites, public, zones)) => json(
                    StatusCode::OK,
                    &StatusReply {
                        sites,
                        public,
                        zones,
                    },
                ),
                Err(_) => error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the daemon is shutting down",
                ),
            }
        }
        (&Method::GET, ["metrics"]) => {
            let (reply, rx) = oneshot::channel();
            if tx.send(Message::Status { reply }).await.is_err() {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the daemon is shutting down",
                );
            }
            let Ok((sites, _, _)) = rx.await else {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the daemon is shutting down",
                );
            };
            let views: Vec<crate::metrics::SiteView<'_>> = sites
                .iter()
                .map(|s| crate::metrics::SiteView {
                    site: &s.name,
                    phase: s.phase,
                    target: s.target,
                    primary: s
                        .last_primary_probe
                        .as_ref()
                        .map(|p| (p.ok, p.cert_expires)),
                    standby: s
                        .last_standby_probe
                        .as_ref()
                        .map(|p| (p.ok, p.cert_expires)),
                })
                .collect();
            let mut r = Response::new(Full::new(Bytes::from(crate::metrics::render(&views))));
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
            );
            r
        }
        (&Method::POST, ["api", "v1", "sites", site, action @ ("drain" | "release")]) => {
            let command = if *action == "drain" {
                Command::Drain {
                    force: query
                        .split('&')
                        .any(|kv| kv == "force=true" || kv == "force=1" || kv == "force"),
                }
            } else {
                Command::Release
            };
            let (reply, rx) = oneshot::channel();
            if tx
                .send(Message::Command {
                    site: (*site).to_string(),
                    command,
                    reply,
                })
                .await
                .is_err()
            {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the daemon is shutting down",
                );
            }
            match rx.await {
                Ok(Ok(status)) => json(StatusCode::OK, &status),
                Ok(Err(e @ CommandError::NoSuchSite(_))) => {
                    error(StatusCode::NOT_FOUND, e.to_string())
                }
                Ok(Err(e @ CommandError::Refused(_))) => error(StatusCode::CONFLICT, e.to_string()),
                Ok(Err(e @ CommandError::Failed(_))) => {
                    error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                }
                Err(_) => error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the daemon is shutting down",
                ),
            }
        }
        (_, ["api", "v1", ..]) => error(
            StatusCode::NOT_FOUND,
            format!("no route {} {path}", req.method()),
        ),
        _ => error(
            StatusCode::NOT_FOUND,
            "not found; the API lives under /api/v1/ (and metrics at /metrics)",
        ),
    }
}

/// Client side: one request to the daemon's API. `Err` means the daemon could not be reached.
pub async fn call(
    addr: SocketAddr,
    method: Method,
    path: &str,
) -> anyhow::Result<(StatusCode, Bytes)> {
    let fut = async {
        let stream = TcpStream::connect(addr).await?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
        let post = method == Method::POST;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, addr.to_string());
        if post {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let req = req.body(Full::new(if post {
            Bytes::from_static(b"{}")
        } else {
            Bytes::new()
        }))?;
        let request = async {
            let resp = sender.send_request(req).await?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), 16 * 1024 * 1024)
                .collect()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .to_bytes();
            Ok::<_, anyhow::Error>((status, body))
        };
        crate::http::drive(conn, request).await
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .map_err(|_| anyhow::anyhow!("the daemon at {addr} did not answer within 10 s"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(method: Method, headers: &[(&str, &str)]) -> Result<(), StatusCode> {
        let mut h = hyper::HeaderMap::new();
        for (k, v) in headers {
            h.append(
                hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        check_request("127.0.0.1:9353".parse().unwrap(), &method, &h).map_err(|(s, _)| s)
    }

    /// Issue 11, item 3: what a web page in the operator's browser can send is refused.
    #[test]
    fn cross_site_and_rebound_requests_are_refused() {
        use StatusCode as S;
        let json = ("content-type", "application/json");
        type Case<'a> = (Method, Vec<(&'a str, &'a str)>, Result<(), S>);
        let cases: Vec<Case> = vec![
            // The reported request: another Host, another Origin, text/plain.
            (
                Method::POST,
                vec![
                    ("host", "attacker.example"),
                    ("origin", "http://attacker.example"),
                    ("content-type", "text/plain"),
                ],
                Err(S::FORBIDDEN),
            ),
            // DNS rebinding: the page's own name resolves to 127.0.0.1.
            (
                Method::GET,
                vec![("host", "attacker.example:9353")],
                Err(S::FORBIDDEN),
            ),
            (
                Method::POST,
                vec![
                    ("host", "127.0.0.1:9353"),
                    ("origin", "http://attacker.example"),
                    json,
                ],
                Err(S::FORBIDDEN),
            ),
            (
                Method::POST,
                vec![("host", "127.0.0.1:9353"), ("origin", "null"), json],
                Err(S::FORBIDDEN),
            ),
            (
                Method::POST,
                vec![
                    ("host", "127.0.0.1:9353"),
                    ("sec-fetch-site", "cross-site"),
                    json,
                ],
                Err(S::FORBIDDEN),
            ),
            (
                Method::POST,
                vec![("host", "127.0.0.1:9353"), ("content-type", "text/plain")],
                Err(S::UNSUPPORTED_MEDIA_TYPE),
            ),
            (
                Method::POST,
                vec![("host", "127.0.0.1:9353")],
                Err(S::UNSUPPORTED_MEDIA_TYPE),
            ),
            (Method::GET, vec![], Err(S::BAD_REQUEST)),
            (
                Method::GET,
                vec![("host", "127.0.0.1:9353"), ("host", "127.0.0.1:9353")],
                Err(S::BAD_REQUEST),
            ),
            // What the CLI and scripts send.
            (Method::GET, vec![("host", "127.0.0.1:9353")], Ok(())),
            (Method::GET, vec![("host", "localhost:9353")], Ok(())),
            (Method::POST, vec![("host", "127.0.0.1:9353"), json], Ok(())),
            (
                Method::POST,
                vec![
                    ("host", "127.0.0.1:9353"),
                    ("content-type", "application/json; charset=utf-8"),
                ],
                Ok(()),
            ),
            (
                Method::POST,
                vec![
                    ("host", "localhost:9353"),
                    ("origin", "http://localhost:9353"),
                    ("sec-fetch-site", "same-origin"),
                    json,
                ],
                Ok(()),
            ),
        ];
        for (method, headers, want) in cases {
            assert_eq!(
                check(method.clone(), &headers),
                want,
                "{method} {headers:?}"
            );
        }
    }
}
