//! The listeners (on the shared loop of [`crate::http::server`]), the request's host, the
//! snapshot refresher, and the readiness gate the daemon's standby probes use.

use super::*;
use tokio_util::either::Either;

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

/// Serves HTTP/1.1 and HTTP/2 on `listener` until `shutdown`, over TLS when `tls` is given
/// (the loop and its limits: [`crate::http::server`]). Call [`refresher`] once beside the
/// listeners so new snapshots are picked up. Requests for a proxied site go to its
/// [`super::proxy::SiteProxy`].
pub async fn serve(
    listener: TcpListener,
    standby: Arc<Standby>,
    proxies: Option<Arc<super::proxy::Proxies>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    cores: Option<Arc<crate::http::server::Cores>>,
    shutdown: CancellationToken,
) {
    let https = tls.is_some();
    let opts = crate::http::server::Options {
        name: "standby",
        max_connections: MAX_CONNECTIONS,
        // Also closes keep-alive connections that send nothing for this long.
        header_timeout: Duration::from_secs(10),
        http2: true,
        max_lifetime: None,
        grace: Duration::from_secs(5),
        cores,
    };
    // The copy's answer is computed in the call and handed to hyper as a ready future; only a
    // proxied request, which waits on its origin, gets a future of its own (boxed: it is large,
    // and every request's future is moved into the connection's state).
    crate::http::server::serve(listener, tls, opts, shutdown, move |req, peer| {
        let host = match request_host(req.version(), req.uri(), req.headers()) {
            Ok(h) => h,
            Err(why) => return ready(plain(StatusCode::BAD_REQUEST, why)),
        };
        let proxy = proxies.as_ref().and_then(|all| {
            let h = host?;
            let p = all.site(standby.site_of(h)?)?.clone();
            Some((p, h.to_string(), all.clone()))
        });
        match proxy {
            Some((p, host, all)) => {
                let standby = standby.clone();
                Either::Right(Box::pin(async move {
                    p.handle(req, &host, peer, https, &standby, &all).await
                }))
            }
            None => ready(respond(&standby, &req, host)),
        }
    })
    .await;
}

/// The future of an answer already made, as the handler's type.
fn ready<P>(r: Response<Full<Bytes>>) -> Either<std::future::Ready<Response<Answer>>, P> {
    Either::Left(std::future::ready(r.map(http_body_util::Either::Left)))
}

/// A response body: the copy's, whole, or a proxied origin's, streamed.
type Answer = super::proxy::ProxyBody;

/// A Host value without its port ("www.example.com:8443" → "www.example.com").
fn strip_port(h: &str) -> &str {
    h.rsplit_once(':')
        .filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
        .map(|(h, _)| h)
        .unwrap_or(h)
}

/// The host a request names, without its port (RFC 9112 §3.2, RFC 9113 §8.3.1): the URI's
/// authority (HTTP/2, or an absolute-form target), else the one `Host` header. HTTP/1.1 without a `Host`, and any
/// request with two, is a 400: a proxy in front may have picked the other one, and answering
/// either would serve one site's copy under another's name. HTTP/1.0 may omit it (then no site
/// matches and the answer is a 404).
pub(super) fn request_host<'r>(
    version: hyper::Version,
    uri: &'r hyper::Uri,
    headers: &'r HeaderMap,
) -> Result<Option<&'r str>, &'static str> {
    let mut hosts = headers.get_all(header::HOST).iter();
    let (first, second) = (hosts.next(), hosts.next());
    if second.is_some() {
        return Err("more than one Host header\n");
    }
    if let Some(h) = uri.host() {
        return Ok(Some(h));
    }
    match first {
        Some(h) => h
            .to_str()
            .map(|h| Some(strip_port(h)))
            .map_err(|_| "the Host header is not text\n"),
        None if version == hyper::Version::HTTP_11 => Err("HTTP/1.1 needs a Host header\n"),
        None => Ok(None),
    }
}

/// The answer to one request from the copy. Bodies come from memory once read; a first read
/// of a small file from the page cache is short enough to do here.
fn respond(
    s: &Standby,
    req: &hyper::Request<hyper::body::Incoming>,
    host: Option<&str>,
) -> Response<Full<Bytes>> {
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    s.respond(req.method(), host, target, req.headers())
}
