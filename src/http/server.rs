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
//! - **Cores.** With [`Options::cores`], connections are served on those runtimes, a thread per
//!   core (the standby's listeners), instead of the loop's own.
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
use tokio::net::{TcpListener, TcpStream};
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
    /// Runtimes to serve connections on, each given to the one with the fewest; `None`: the
    /// runtime the loop runs on.
    pub cores: Option<Arc<Cores>>,
}

/// Single-threaded runtimes, one per core, that a listener's connections are served on (the
/// standby's): the loop accepts on its own runtime and gives each connection to the core with
/// the fewest, where it stays, woken by that core's own reactor.
///
/// Why: on tokio's shared multi-threaded scheduler one worker at a time waits in the reactor
/// while the others park, so under load a core could sit idle while requests waited in the
/// kernel for the busy worker to look (4 % of the machine idle with `wrk` saturating it, in
/// `bench/serve`), and every wake-up across threads costs. A thread per core waiting in its own
/// `epoll` is how nginx's workers run; measured in the same bench, it took the 10 KB page from
/// 1.09-1.30x nginx's requests/s to 1.26-1.47x (nine runs), with no idle time left. The price is balance: a core's connections
/// cannot move to another when it is busier, which the fewest-first choice keeps small.
#[derive(Debug)]
pub struct Cores {
    cores: Vec<(tokio::runtime::Handle, Arc<std::sync::atomic::AtomicUsize>)>,
}

/// A connection's place on a core: counted until dropped.
struct OnCore {
    handle: tokio::runtime::Handle,
    load: Arc<std::sync::atomic::AtomicUsize>,
}

impl Drop for OnCore {
    fn drop(&mut self) {
        self.load.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Cores {
    pub fn new(handles: Vec<tokio::runtime::Handle>) -> Cores {
        Cores {
            cores: handles
                .into_iter()
                .map(|h| (h, Default::default()))
                .collect(),
        }
    }

    /// The runtime with the fewest connections, counting this one.
    fn pick(&self) -> OnCore {
        use std::sync::atomic::Ordering::Relaxed;
        let (handle, load) = self
            .cores
            .iter()
            .min_by_key(|(_, l)| l.load(Relaxed))
            .expect("at least one core");
        load.fetch_add(1, Relaxed);
        OnCore {
            handle: handle.clone(),
            load: load.clone(),
        }
    }
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
        let (handler, conn_opts, tls, stop) =
            (handler.clone(), opts.clone(), tls.clone(), shutdown.clone());
        // The connection's whole life, on whichever runtime runs it.
        let serve_one = move |stream: TcpStream| async move {
            let (_permit, opts) = (permit, conn_opts);
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
        };
        match opts.cores.as_ref().map(|c| c.pick()) {
            Some(core) => {
                // Moved to the chosen runtime: the socket leaves this one's reactor and is
                // registered with that one's when the task first runs there.
                let stream = match stream.into_std() {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!(listener = opts.name, %peer, error = %e, "cannot hand the connection over");
                        continue;
                    }
                };
                let handle = core.handle.clone();
                conns.spawn_on(
                    async move {
                        let _core = core;
                        match TcpStream::from_std(stream) {
                            Ok(s) => serve_one(s).await,
                            Err(e) => {
                                tracing::debug!(%peer, error = %e, "cannot register the connection")
                            }
                        }
                    },
                    &handle,
                );
            }
            None => {
                conns.spawn(serve_one(stream));
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server on `cores` answering every request with the name of the thread it ran on.
    async fn thread_names(
        cores: Arc<Cores>,
    ) -> (SocketAddr, CancellationToken, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let opts = Options {
            name: "test",
            max_connections: 64,
            header_timeout: Duration::from_secs(10),
            http2: false,
            max_lifetime: None,
            grace: Duration::from_secs(1),
            cores: Some(cores),
        };
        let server = tokio::spawn(serve(
            listener,
            None,
            opts,
            stop.clone(),
            |_req, _peer| async {
                let name = std::thread::current().name().unwrap_or("?").to_string();
                Response::new(Full::new(Bytes::from(name)))
            },
        ));
        (addr, stop, server)
    }

    /// One keep-alive request on `conn`; the answer's body (the name of the serving thread).
    async fn ask(conn: &mut tokio::net::TcpStream) -> String {
        conn.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let mut got = Vec::new();
        loop {
            let mut buf = [0u8; 512];
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some((_, body)) = text.split_once("\r\n\r\n") {
                if body.len() == "standby-0".len() {
                    return body.to_string();
                }
            }
        }
    }

    #[tokio::test]
    async fn connections_are_spread_over_the_cores_and_served_there() {
        let cores = crate::app::StandbyCores::with_threads(2).unwrap();
        let (addr, stop, server) = thread_names(cores.cores()).await;
        // Four connections held open at once: two on each core, each answered on its own
        // core every time it asks.
        let mut conns = vec![];
        let mut served = vec![];
        for _ in 0..4 {
            let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
            served.push(ask(&mut c).await);
            conns.push(c);
        }
        let mut sorted = served.clone();
        sorted.sort();
        assert_eq!(sorted, ["standby-0", "standby-0", "standby-1", "standby-1"]);
        for (c, first) in conns.iter_mut().zip(&served) {
            assert_eq!(&ask(c).await, first, "a connection stays on its core");
        }
        // Shutdown ends the idle keep-alive connections on the cores, and the loop returns.
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("the loop returns after shutdown")
            .unwrap();
        for c in &mut conns {
            let mut buf = [0u8; 16];
            assert_eq!(c.read(&mut buf).await.unwrap(), 0, "closed by the server");
        }
        tokio::task::spawn_blocking(move || cores.stop())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_closed_connection_frees_its_place_on_its_core() {
        let standby = crate::app::StandbyCores::with_threads(2).unwrap();
        let cores = standby.cores();
        let (addr, stop, server) = thread_names(cores.clone()).await;
        let mut first = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut second = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (a, b) = (ask(&mut first).await, ask(&mut second).await);
        assert_ne!(a, b);
        // The first leaves; the next connection goes to the core it left.
        drop(first);
        let loads = || {
            cores
                .cores
                .iter()
                .map(|(_, l)| l.load(std::sync::atomic::Ordering::Relaxed))
                .collect::<Vec<_>>()
        };
        let t0 = std::time::Instant::now();
        while loads().iter().sum::<usize>() != 1 {
            assert!(t0.elapsed() < Duration::from_secs(5), "loads {:?}", loads());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut third = tokio::net::TcpStream::connect(addr).await.unwrap();
        assert_eq!(ask(&mut third).await, a);
        stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    }
}
