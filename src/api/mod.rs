//! The control API: versioned HTTP/JSON (`/api/v1/…`, described by `docs/openapi.json`,
//! which the daemon also serves at `/api/v1/openapi.json`), used by the CLI (`status`,
//! `drain`, `release`), scripts and Prometheus (`GET /metrics`, `crate::metrics`).
//!
//! Owns the routes and their JSON shapes, server ([`routes`]) and client ([`client`]) side,
//! and who may call them ([`auth`]: bearer tokens, read and write scopes). It holds no state
//! of its own: a request becomes a [`Message`] for the controller, a read of the store, or a
//! wake-up of a task that already runs (a crawl, the DNS reconcilers).
//!
//! Loopback is not a security boundary against the machine's own browser: any web page can
//! send a request to 127.0.0.1, and DNS rebinding can make one read the answer. So before any
//! route, [`check_request`] refuses a `Host` that is not this listener's own address (or
//! `localhost` on its port) on a loopback listener, an `Origin` (or `Sec-Fetch-Site`) that is
//! not this API's own, and an action (`POST`) without `Content-Type: application/json`,
//! which no cross-site page can send without a CORS preflight this API never grants. Then
//! [`auth::Tokens::check`] wants the token the route needs. A listener on another address
//! exists only with tokens configured (`crate::config::api`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::control::{Message, SiteStatus};

pub mod auth;
pub mod client;
pub mod dashboard;
pub mod public;
mod routes;

pub use client::{call, ApiClient};

/// The OpenAPI description of every route, as kept in the repository.
pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

#[derive(serde::Serialize, serde::Deserialize)]
pub struct StatusReply {
    pub sites: Vec<SiteStatus>,
    /// Public addresses (dynamic DNS), per family with sources configured.
    #[serde(default)]
    pub public: Vec<crate::control::PublicStatus>,
    /// Every provider zone: desired and held records, state, last error, drift.
    #[serde(default)]
    pub zones: Vec<crate::reconcile::ZoneStatus>,
    /// Every secondary of the built-in zones: NOTIFY sent and answered, the last transfer.
    #[serde(default)]
    pub secondaries: Vec<crate::dns::notify::SecondaryState>,
    /// Every zone this server holds as a secondary of a `[[dns.primaries]]` entry.
    #[serde(default)]
    pub replicas: Vec<crate::dns::replica::ReplicaState>,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct ErrorReply {
    pub error: String,
}

/// What the routes reach: the controller, the store (reads only), and the tasks an action
/// wakes. Built by the composition root.
pub struct Api {
    pub tx: mpsc::Sender<Message>,
    pub store: crate::store::Store,
    pub cfg: Arc<crate::config::Config>,
    pub tokens: auth::Tokens,
    /// Per site, by index: wakes its crawl scheduler (`None`: the site has no schedule).
    pub crawl_now: Vec<Option<Arc<tokio::sync::Notify>>>,
    /// Bumped to make every DNS reconciler read its zone again and confirm it now.
    pub reverify: tokio::sync::watch::Sender<u64>,
    /// What each secondary of the built-in zones was told and took.
    pub secondaries: crate::dns::notify::SecondaryBoard,
    /// Where each zone held as a secondary stands.
    pub replicas: crate::dns::replica::ReplicaBoard,
    /// The dashboard's browser sessions.
    pub sessions: dashboard::Sessions,
}

/// Serves the API until `cancel` fires (the loop and its limits: [`crate::http::server`]).
pub async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    api: Api,
    cancel: CancellationToken,
) {
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
        cores: None,
    };
    let api = Arc::new(api);
    let https = tls.is_some();
    crate::http::server::serve(listener, tls, opts, cancel, move |req: Request<hyper::body::Incoming>, peer| {
        let api = api.clone();
        async move {
            if let Err((status, why)) = check_request(local, https, req.method(), req.uri().path(), req.headers()) {
                tracing::warn!(method = %req.method(), path = %req.uri().path(), "control API request refused: {why}");
                return error(status, why);
            }
            if dashboard::is_dashboard(req.uri().path()) {
                return dashboard::route(&api, req, peer, https).await;
            }
            let need = match *req.method() {
                Method::GET | Method::HEAD => crate::config::TokenScope::Read,
                _ => crate::config::TokenScope::Write,
            };
            let header = req.headers().get(hyper::header::AUTHORIZATION).map(|v| v.as_bytes());
            match api.tokens.check(header, need) {
                Ok(caller) => {
                    if need == crate::config::TokenScope::Write {
                        let caller = match &caller {
                            auth::Caller::Token(name) => name.as_str(),
                            auth::Caller::Anonymous => "anonymous",
                        };
                        tracing::info!(method = %req.method(), path = %req.uri().path(), token = caller, "control API action");
                    }
                    routes::route(&api, req).await
                }
                Err(refusal) => {
                    tracing::warn!(method = %req.method(), path = %req.uri().path(), "control API request refused: {}", refusal.why);
                    let mut r = error(refusal.status, refusal.why);
                    if let Ok(v) = hyper::header::HeaderValue::from_str(&refusal.challenge) {
                        r.headers_mut().insert(hyper::header::WWW_AUTHENTICATE, v);
                    }
                    r
                }
            }
        }
    })
    .await;
}

/// Whether a request may reach the routes (see the module doc). Pure, so every case is a unit
/// test; `local` is the listener's own address.
pub fn check_request(
    local: SocketAddr,
    tls: bool,
    method: &Method,
    path: &str,
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
    // On a listener for the network, the name clients use is theirs to choose; tokens are
    // required there (`crate::config::api`), and a rebound page has none. Over HTTPS a
    // rebound page fails the handshake (the certificate is not for its name), so the name
    // clients use is theirs too.
    let loopback = local.ip().is_loopback() && !tls;
    if loopback && !ours(host) {
        return Err((
            StatusCode::FORBIDDEN,
            format!("Host `{host}` is not this API's address ({local}); a request for another name may be DNS rebinding"),
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let same = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|o| o.eq_ignore_ascii_case(host.trim()) || (loopback && ours(o)));
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
    // Only an action is held to it: a POST to a path that takes none gets its 405.
    if method == Method::POST && routes::is_action(path) {
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

pub(crate) fn json<T: serde::Serialize>(status: StatusCode, body: &T) -> Response<Full<Bytes>> {
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

pub(crate) fn error(status: StatusCode, msg: impl Into<String>) -> Response<Full<Bytes>> {
    json(status, &ErrorReply { error: msg.into() })
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
        let path = "/api/v1/sites/shop/drain";
        check_request("127.0.0.1:9353".parse().unwrap(), false, &method, path, &h)
            .map_err(|(s, _)| s)
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
