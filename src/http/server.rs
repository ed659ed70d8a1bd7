//! The one HTTP server loop. Every listener of the daemon (the standby over HTTP and HTTPS, the
//! control API, the push endpoint) runs [`serve`] with its own [`Options`] and handler, so the
//! protections are written once:
//!
//! - **Connection limit.** At most `max_connections` at once; the next accept waits for a slot
//!   and the kernel's backlog holds the rest, so a flood cannot use up file descriptors.
//! - **Accept backoff.** A failed accept (out of file descriptors, say) is logged and retried
//!   after 50 ms, doubling to 1 s while failures go on: never a busy loop.
//! - **TLS handshake timeout.** A client that connects and never finishes the handshake is
//!   dropped after [`TLS_HANDSHAKE_TIMEOUT`], the time a slow request header gets.
//! - **Header timeout.** HTTP/1 request headers must arrive within `header_timeout`, which
//!   also closes keep-alive connections that stay silent that long.
//! - **Lifetime.** With `max_lifetime`, a connection is closed after that long whatever it does.
//! - **Tracked, graceful shutdown.** Every connection is a task of the loop's own tracker. On
//!   shutdown the listener closes, each connection finishes what is in flight (HTTP/1 ends
//!   keep-alive, HTTP/2 sends GOAWAY) for at most `grace`, and [`serve`] returns when all are
//!   gone, so the composition root's tracker sees one task per listener.
//!
//! Handlers get the request and the peer's address and return a response of any body type: the
//! API's and the copy's are whole, a proxied origin's streams. HTTP/1 connections support
//! upgrades (a proxied WebSocket), which the handler completes with `hyper::upgrade::on`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a TLS client may take to finish its handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// What differs between listeners.
#[derive(Clone, Debug)]
pub struct Options {
    /// For the logs: "standby", "control API", "push endpoint".
    pub name: &'static str,
    pub max_connections: usize,
    pub header_timeout: Duration,
    /// HTTP/2 as well as HTTP/1.1 (by ALPN over TLS, or the h2 preface in clear).
    pub http2: bool,
    pub max_lifetime: Option<Duration>,
    /// How long connections may finish at shutdown.
    pub grace: Duration,
}

/// Serves `listener` until `shutdown`, over TLS when `tls` is given, answering each request
/// with `handler(request, peer)`. Returns when every connection has ended.
pub async fn serve<H, F, B>(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    opts: Options,
    shutdown: CancellationToken,
    handler: H,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let handler = Arc::new(handler);
    let opts = Arc::new(opts);
    let conns = TaskTracker::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(opts.max_connections));
    let mut backoff = MIN_BACKOFF;
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => {
                    backoff = MIN_BACKOFF;
                    a
                }
                Err(e) => {
                    tracing::warn!(listener = opts.name, error = %e, "accept failed; trying again in {} ms", backoff.as_millis());
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.cancelled() => break,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let (handler, opts, tls, stop) =
            (handler.clone(), opts.clone(), tls.clone(), shutdown.clone());
        conns.spawn(async move {
            let _permit = permit;
            match tls {
                None => {
                    let io = super::zerocopy::ZeroCopy(stream);
                    connection(io, peer, handler, &opts, stop).await
                }
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(t)) => connection(t, peer, handler, &opts, stop).await,
                        Ok(Err(e)) => {
                            tracing::debug!(listener = opts.name, %peer, error = %e, "TLS handshake failed")
                        }
                        Err(_) => {
                            tracing::debug!(listener = opts.name, %peer, "TLS handshake timed out")
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    conns.close();
    conns.wait().await;
}

/// One connection until it ends, its lifetime is up, or shutdown (then gracefully).
async fn connection<S, H, F, B>(
    io: S,
    peer: SocketAddr,
    handler: Arc<H>,
    opts: &Options,
    stop: CancellationToken,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>, SocketAddr) -> F + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let answer = handler(req, peer);
        async move { Ok::<_, Infallible>(answer.await) }
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    if !opts.http2 {
        builder = builder.http1_only();
    }
    builder
        .http1()
        .max_buf_size(64 * 1024)
        .header_read_timeout(opts.header_timeout)
        .timer(TokioTimer::new());
    if opts.http2 {
        builder
            .http2()
            .max_header_list_size(64 * 1024)
            .max_concurrent_streams(128)
            .keep_alive_interval(Duration::from_secs(30))
            .timer(TokioTimer::new());
    }
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let lifetime = async {
        match opts.max_lifetime {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = lifetime => {}
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(opts.grace, conn).await;
        }
    }
}
