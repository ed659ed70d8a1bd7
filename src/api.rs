//! The control API: a small HTTP/JSON interface on a loopback address, used by the CLI
//! (`status`, `drain`, `release`) to talk to the running daemon.
//!
//! Owns the routes and their JSON shapes, server and client side. It holds no state: every
//! request becomes an [`Event`] for the controller. There is no authentication yet, which is
//! why the config only accepts a loopback `api.listen`.
//!
//! Routes: `GET /api/v1/status`, `POST /api/v1/sites/{site}/drain[?force=true]`,
//! `POST /api/v1/sites/{site}/release`.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::control::{Command, Event, SiteStatus};

#[derive(serde::Serialize, serde::Deserialize)]
pub struct StatusReply {
    pub sites: Vec<SiteStatus>,
    /// Public addresses (dynamic DNS), per family with sources configured.
    #[serde(default)]
    pub public: Vec<crate::control::PublicStatus>,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct ErrorReply {
    pub error: String,
}

/// Serves the API until `cancel` fires.
pub async fn serve(listener: TcpListener, tx: mpsc::Sender<Event>, cancel: CancellationToken) {
    let tracker = TaskTracker::new();
    loop {
        let (stream, _) = tokio::select! {
            _ = cancel.cancelled() => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("api accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let tx = tx.clone();
        let cancel = cancel.clone();
        tracker.spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let tx = tx.clone();
                async move { Ok::<_, std::convert::Infallible>(route(req, tx).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .max_buf_size(64 * 1024)
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = cancel.cancelled() => conn.as_mut().graceful_shutdown(),
            }
        });
    }
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(2), tracker.wait()).await;
}

fn json<T: serde::Serialize>(status: StatusCode, body: &T) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(serde_json::to_vec_pretty(body).expect("serializable"))));
    *r.status_mut() = status;
    r.headers_mut().insert(hyper::header::CONTENT_TYPE, "application/json".parse().expect("valid"));
    r
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response<Full<Bytes>> {
    json(status, &ErrorReply { error: msg.into() })
}

async fn route(req: Request<hyper::body::Incoming>, tx: mpsc::Sender<Event>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (req.method(), parts.as_slice()) {
        (&Method::GET, ["api", "v1", "status"]) => {
            let (reply, rx) = oneshot::channel();
            if tx.send(Event::Status { reply }).await.is_err() {
                return error(StatusCode::SERVICE_UNAVAILABLE, "the daemon is shutting down");
            }
            match rx.await {
                Ok((sites, public)) => json(StatusCode::OK, &StatusReply { sites, public }),
                Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "the daemon is shutting down"),
            }
        }
        (&Method::POST, ["api", "v1", "sites", site, action @ ("drain" | "release")]) => {
            let command = if *action == "drain" {
                Command::Drain { force: query.split('&').any(|kv| kv == "force=true" || kv == "force=1" || kv == "force") }
            } else {
                Command::Release
            };
            let (reply, rx) = oneshot::channel();
            if tx.send(Event::Command { site: (*site).to_string(), command, reply }).await.is_err() {
                return error(StatusCode::SERVICE_UNAVAILABLE, "the daemon is shutting down");
            }
            match rx.await {
                Ok(Ok(status)) => json(StatusCode::OK, &status),
                Ok(Err(why)) if why.starts_with("no site named") => error(StatusCode::NOT_FOUND, why),
                Ok(Err(why)) => error(StatusCode::CONFLICT, why),
                Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "the daemon is shutting down"),
            }
        }
        (_, ["api", "v1", ..]) => error(StatusCode::NOT_FOUND, format!("no route {} {path}", req.method())),
        _ => error(StatusCode::NOT_FOUND, "not found; the API lives under /api/v1/"),
    }
}

/// Client side: one request to the daemon's API. `Err` means the daemon could not be reached.
pub async fn call(addr: SocketAddr, method: Method, path: &str) -> anyhow::Result<(StatusCode, Bytes)> {
    let fut = async {
        let stream = TcpStream::connect(addr).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req =
            Request::builder().method(method).uri(path).header(hyper::header::HOST, addr.to_string()).body(Full::new(Bytes::new()))?;
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), 16 * 1024 * 1024).collect().await.map_err(|e| anyhow::anyhow!("{e}"))?.to_bytes();
        Ok::<_, anyhow::Error>((status, body))
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .map_err(|_| anyhow::anyhow!("the daemon at {addr} did not answer within 10 s"))?
}
