//! The listeners: accept loop (connection limit, TLS handshake timeout, graceful shutdown),
//! one HTTP/1.1 or HTTP/2 connection, the request's host, the snapshot refresher, and the
//! readiness gate the daemon's standby probes use.

use super::*;

/// The readiness gate of one site's copy served here: a standby probe of it passes only if the
/// copy is also ready ([`Standby::readiness`]).
pub struct CopyGate {
    standby: Arc<Standby>,
    site: String,
}

impl CopyGate {
    pub fn new(standby: Arc<Standby>, site: &str) -> CopyGate {
        CopyGate {
            standby,
            site: site.to_string(),
        }
    }
}

impl crate::probe::ReadinessGate for CopyGate {
    fn problems(&self, now: u64) -> Option<Vec<String>> {
        self.standby
            .readiness(&self.site, now)
            .filter(|r| !r.ready)
            .map(|r| r.problems)
    }
}

/// Reloads changed snapshots (and certificate files) once a second until `shutdown`.
pub async fn refresher(standby: Arc<Standby>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.cancelled() => return,
        }
        let s = standby.clone();
        let _ = tokio::task::spawn_blocking(move || s.refresh()).await;
    }
}

/// Serves HTTP/1.1 and HTTP/2 on `listener` until `shutdown`, over TLS when `tls` is given.
/// Call [`refresher`] once beside the listeners so new snapshots are picked up.
pub async fn serve(
    listener: TcpListener,
    standby: Arc<Standby>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: CancellationToken,
) {
    let conns = tokio_util::task::TaskTracker::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.cancelled() => break,
        };
        let (stream, _) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let s = standby.clone();
        let stop = shutdown.clone();
        let tls = tls.clone();
        conns.spawn(async move {
            let _permit = permit;
            match tls {
                None => connection(stream, s, stop).await,
                Some(acceptor) => {
                    // A client that opens a connection and never finishes the handshake is
                    // dropped after the same 10 s a slow request header gets.
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(t)) => connection(t, s, stop).await,
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
        });
    }
    conns.close();
    conns.wait().await;
}

/// The host a request names (RFC 9112 §3.2, RFC 9113 §8.3.1): the URI's authority (HTTP/2,
/// or an absolute-form target), else the one `Host` header. HTTP/1.1 without a `Host`, and any
/// request with two, is a 400: a proxy in front may have picked the other one, and answering
/// either would serve one site's copy under another's name. HTTP/1.0 may omit it (then no site
/// matches and the answer is a 404).
pub(super) fn request_host(
    version: hyper::Version,
    uri: &hyper::Uri,
    headers: &HeaderMap,
) -> Result<Option<String>, &'static str> {
    let mut hosts = headers.get_all(header::HOST).iter();
    let (first, second) = (hosts.next(), hosts.next());
    if second.is_some() {
        return Err("more than one Host header\n");
    }
    if let Some(h) = uri.host() {
        return Ok(Some(h.to_string()));
    }
    match first {
        Some(h) => h
            .to_str()
            .map(|h| Some(h.to_string()))
            .map_err(|_| "the Host header is not text\n"),
        None if version == hyper::Version::HTTP_11 => Err("HTTP/1.1 needs a Host header\n"),
        None => Ok(None),
    }
}

/// One connection, HTTP/1.1 or HTTP/2 (by ALPN, or the h2 preface in clear).
pub(super) async fn connection<S>(io: S, s: Arc<Standby>, stop: CancellationToken)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let s = s.clone();
        async move {
            let host = match request_host(req.version(), req.uri(), req.headers()) {
                Ok(h) => h,
                Err(why) => return Ok(plain(StatusCode::BAD_REQUEST, why)),
            };
            let target = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| "/".into());
            let (method, headers) = (req.method(), req.headers());
            // Bodies come from memory once read; a first read of a small file from the page
            // cache is short enough to do here.
            Ok::<_, std::convert::Infallible>(s.respond(method, host.as_deref(), &target, headers))
        }
    });
    let mut builder =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    builder
        .http1()
        .max_buf_size(64 * 1024)
        // Also closes keep-alive connections that send nothing for this long.
        .header_read_timeout(Duration::from_secs(10))
        .timer(hyper_util::rt::TokioTimer::new());
    builder
        .http2()
        .max_header_list_size(64 * 1024)
        .max_concurrent_streams(128)
        .keep_alive_interval(Duration::from_secs(30))
        .timer(hyper_util::rt::TokioTimer::new());
    let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(io), svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}
