//! Proxy mode (`mode = "proxy"`): the standby fronts the site. Its records point here for
//! good; every request is passed to the primary's address and the answer streamed back, and
//! what the origin cannot answer is answered from the copy at once, so visitors move in under
//! a second instead of after the records' TTL.
//!
//! - **Passing on.** The request goes to the primary's address (the decision's, so an `auto`
//!   primary's current one) with the visitor's Host, over HTTPS with that name as SNI and the
//!   primary's certificate checked as the probes check it. Hop-by-hop headers (RFC 9110 §7.6.1,
//!   and any the `Connection` header names) are dropped both ways; `X-Forwarded-For` (appended),
//!   `X-Forwarded-Proto`, `X-Forwarded-Host` and `Forwarded` (RFC 7239) are set. Framing is
//!   hyper's (RFC 9112): obs-fold, two different lengths, a bad chunk or oversized headers are
//!   refused before a handler sees them; a request with both `Content-Length` and
//!   `Transfer-Encoding` is read by the latter and its connection closed after the answer, so
//!   nothing smuggled after it is ever read; the body passed on is framed anew from what was
//!   read (the visitor's `Content-Length` is not passed on). Bodies stream
//!   both ways; a request body larger than `max_request_body` gets 413. A WebSocket (or any
//!   `Upgrade`) is passed through while the origin is up, and refused (503) while it is not.
//! - **Per-request failover.** A GET or HEAD whose origin connection is refused or does not
//!   open within `connect_timeout`, resets before its answer starts, takes longer than
//!   `response_timeout` to start it, or answers one of `fallback_status`, is answered from the
//!   copy (with `Age` and `X-Understudy-Served-From: snapshot`), or with the origin's own answer
//!   when the copy does not hold that URL. A failed connection also trips the site's circuit
//!   ([`Circuit`]): later requests go straight to the copy until a probe of the primary passes,
//!   or, once the decision has the primary down, until it is back (with the decision's
//!   hysteresis). A GET or HEAD already waiting on an origin that went silent is answered from
//!   the copy the moment the circuit opens, and one that waits longer than [`SLOW_ANSWER`] has
//!   the origin checked with a new connection: a host that takes none within half the connect
//!   timeout trips the circuit (a pooled connection to a silent origin looks just like a slow
//!   answer; a new connection tells them apart, since a live host accepts it however slow its
//!   application). Any other method is never replayed and never answered from the copy: 503
//!   with `Retry-After` and a notice in words.
//! - **Nothing masked.** Every request is counted by who answered it (origin, copy, refused),
//!   and the circuit says since when the copy has answered; `status`, `/metrics` and the
//!   failover notifications show them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use super::{plain, read_only, Standby, READY_PATH};
use crate::config::{Config, ProxyConfig, Scheme, SiteMode};
use crate::control::circuit::Circuit;
use crate::mirror::snapshot::Entry;
use crate::util::now_millis;

/// How long a GET or HEAD waits for the start of the origin's answer before the origin is
/// checked with a new connection ([`SiteProxy::check_origin`]).
const SLOW_ANSWER: Duration = Duration::from_millis(200);

/// The body of an answer from the standby: the copy's (in memory), or the origin's, streamed.
pub type ProxyBody = Either<Full<Bytes>, Tee>;

/// The headers of one hop only (RFC 9110 §7.6.1), never passed on.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Every proxied site of this standby, by site name.
pub struct Proxies {
    sites: HashMap<String, Arc<SiteProxy>>,
    /// Upgraded connections (WebSocket) being relayed.
    tunnels: TaskTracker,
}

/// One proxied site.
pub struct SiteProxy {
    name: String,
    hosts: Vec<String>,
    scheme: Scheme,
    cfg: ProxyConfig,
    /// The primary's address, as the decision knows it (`None`: an `auto` one not known yet).
    addr: watch::Receiver<Option<SocketAddr>>,
    tls: rustls::ClientConfig,
    /// The client pinned to the address it was built for.
    client: Mutex<Option<(SocketAddr, reqwest::Client)>>,
    circuit: Arc<Circuit>,
    /// A liveness check of the origin is under way ([`SiteProxy::check_origin`]).
    checking: std::sync::atomic::AtomicBool,
}

impl Proxies {
    /// The proxied sites of `cfg`; `addrs[i]` is where site `i`'s primary probes go. Returns
    /// them and each site's circuit by index (`None` in DNS mode), for the controller.
    pub fn new(
        cfg: &Config,
        addrs: &[watch::Receiver<Option<SocketAddr>>],
    ) -> anyhow::Result<(Proxies, Vec<Option<Arc<Circuit>>>)> {
        let mut sites = HashMap::new();
        let mut circuits = vec![];
        for (i, s) in cfg.sites.iter().enumerate() {
            let (SiteMode::Proxy, Some(pc)) = (s.mode, &s.proxy) else {
                circuits.push(None);
                continue;
            };
            let mut tls = crate::probe::client_tls(&s.probe)
                .map_err(|e| anyhow::anyhow!("site {}: {e}", s.name))?;
            tls.alpn_protocols = vec![b"http/1.1".to_vec()];
            let circuit = Arc::new(Circuit::default());
            circuits.push(Some(circuit.clone()));
            sites.insert(
                s.name.clone(),
                Arc::new(SiteProxy {
                    name: s.name.clone(),
                    hosts: s.hosts(),
                    scheme: s.probe.scheme,
                    cfg: pc.clone(),
                    addr: addrs[i].clone(),
                    tls,
                    client: Mutex::new(None),
                    circuit,
                    checking: Default::default(),
                }),
            );
        }
        Ok((
            Proxies {
                sites,
                tunnels: TaskTracker::new(),
            },
            circuits,
        ))
    }

    /// The proxy of site `name`, if it is proxied.
    pub fn site(&self, name: &str) -> Option<&Arc<SiteProxy>> {
        self.sites.get(name)
    }

    /// Stops relaying upgraded connections: waits up to `grace` for them to end.
    pub async fn close(&self, grace: Duration) {
        self.tunnels.close();
        let _ = tokio::time::timeout(grace, self.tunnels.wait()).await;
    }
}

impl SiteProxy {
    /// The client for the primary's current address (the probes' target: its IP and port,
    /// made again when it moved), and that address.
    fn client(&self) -> Result<(reqwest::Client, SocketAddr), String> {
        let Some(addr) = *self.addr.borrow() else {
            return Err("the primary's address is not known yet".into());
        };
        let mut held = self.client.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, c)) = held.as_ref() {
            if *at == addr {
                return Ok((c.clone(), addr));
            }
        }
        let mut b = reqwest::Client::builder()
            .tls_backend_preconfigured(self.tls.clone())
            .http1_only()
            .connect_timeout(self.cfg.connect_timeout)
            // An origin that stalls in the middle of an answer does not hold the visitor forever.
            .read_timeout(self.cfg.response_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none());
        for h in &self.hosts {
            b = b.resolve(h, SocketAddr::new(addr.ip(), 0));
        }
        let c = b
            .dns_resolver(Arc::new(crate::http::PinnedOnly))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        *held = Some((addr, c.clone()));
        Ok((c, addr))
    }

    /// The answer to one request for this site (`host` is the one it named; `https` says how
    /// the visitor reached the standby).
    pub async fn handle(
        &self,
        mut req: Request<Incoming>,
        host: &str,
        peer: SocketAddr,
        https: bool,
        standby: &Arc<Standby>,
        proxies: &Proxies,
    ) -> Response<ProxyBody> {
        let target = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        if target == READY_PATH {
            return left(standby.respond(req.method(), Some(host), &target, req.headers()));
        }
        let idempotent = matches!(*req.method(), Method::GET | Method::HEAD);
        let upgrade =
            req.headers().contains_key(header::UPGRADE) && req.version() == hyper::Version::HTTP_11;
        if self.circuit.open() {
            return self.copy_or(standby, &req, &target, None);
        }
        if let Some(len) = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        {
            if len > self.cfg.max_request_body {
                return left(plain(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the request body is larger than this site takes\n",
                ));
            }
        }
        let (client, addr) = match self.client() {
            Ok(c) => c,
            Err(why) => {
                tracing::warn!(site = %self.name, "cannot reach the origin: {why}");
                return self.copy_or(standby, &req, &target, None);
            }
        };
        let scheme = match self.scheme {
            Scheme::Https => "https",
            Scheme::Http => "http",
        };
        // The connection goes to the primary's address and port (a tunnel's end, say); the
        // origin gets the Host the visitor sent (HTTP/2: its authority), as it would directly.
        let url = format!("{scheme}://{host}:{}{target}", addr.port());
        let visitor_host = req.headers().get(header::HOST).cloned().or_else(|| {
            req.uri()
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        let mut headers = forward_headers(req.headers(), upgrade, true);
        if let Some(h) = visitor_host {
            headers.insert(header::HOST, h);
        }
        add_forwarded(&mut headers, req.headers(), peer, https, host);
        let on_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        let (parts, body) = req.into_parts();
        let body_failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let body = Watched {
            inner: http_body_util::Limited::new(body, self.cfg.max_request_body as usize),
            failed: body_failed.clone(),
        };
        let sent = client
            .request(parts.method.clone(), &url)
            .headers(headers)
            .body(reqwest::Body::wrap(body))
            .send();
        let visitor = Request::from_parts(parts, ());
        // A GET or HEAD waiting on an origin that went silent is answered from the copy when
        // the circuit opens (the decision, or another request's failed connection).
        let opened = async {
            match idempotent && !upgrade {
                true => self.circuit.wait_open().await,
                false => std::future::pending().await,
            }
        };
        // One that waits longer than SLOW_ANSWER (on a pooled connection, an origin that went
        // silent looks just like a slow one) has the origin checked with a new connection: a
        // live host accepts it at once however slow its application, a gone one does not
        // within half the connect timeout, which trips the circuit (and so answers it).
        let checked = async {
            if !idempotent || upgrade {
                return std::future::pending().await;
            }
            tokio::time::sleep(SLOW_ANSWER).await;
            self.check_origin().await;
            std::future::pending::<()>().await
        };
        let answer = tokio::select! {
            r = tokio::time::timeout(self.cfg.response_timeout, sent) => r,
            _ = opened => return self.copy_or(standby, &visitor, &target, None),
            // (The check never ends by itself: a failed one trips the circuit, which opens.)
            _ = checked => return self.copy_or(standby, &visitor, &target, None),
        };
        let answer = match answer {
            Ok(Ok(r)) => r,
            // The visitor's body broke off, or is malformed or too big: the visitor's fault,
            // which must not look like (and trip the circuit as) an origin failure.
            Ok(Err(_)) if body_failed.load(std::sync::atomic::Ordering::Relaxed) => {
                return left(plain(
                    StatusCode::BAD_REQUEST,
                    "the request body could not be read whole (malformed, cut off, or larger than this site takes)\n",
                ));
            }
            Ok(Err(e)) => {
                // No connection: the origin is unreachable, and later requests go to the copy
                // at once. Anything else (a reset before the answer) moves this request only.
                let connect = e.is_connect();
                let why = crate::http::transport_error(e, "the origin");
                if connect {
                    if !self.circuit.open() {
                        tracing::warn!(site = %self.name, "{why}; answering from the copy until a probe of the primary passes");
                    }
                    self.circuit.trip(now_millis());
                } else {
                    tracing::info!(site = %self.name, url = %target, "{why}");
                }
                return self.copy_or(standby, &visitor, &target, None);
            }
            Err(_) => {
                tracing::info!(site = %self.name, url = %target, "the origin did not start its answer within {:?}", self.cfg.response_timeout);
                return self.copy_or(standby, &visitor, &target, None);
            }
        };
        let status = answer.status().as_u16();
        if idempotent && self.cfg.fallback_status.contains(&status) {
            return self.copy_or(standby, &visitor, &target, Some(answer));
        }
        if let (Some(on_upgrade), StatusCode::SWITCHING_PROTOCOLS) = (on_upgrade, answer.status()) {
            return self.relay(on_upgrade, answer, proxies);
        }
        self.circuit
            .proxied
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        crate::metrics::get().proxy_request(&self.name, "origin");
        // A cacheable answer to a GET refreshes the copy's entry on its way (`fed.rs`).
        let feed = (self.cfg.refresh_from_traffic
            && *visitor.method() == Method::GET
            && super::fed::cacheable(visitor.headers(), status, answer.headers()))
        .then(|| Feed {
            standby: standby.clone(),
            site: self.name.clone(),
            target: target.clone(),
            entry: Entry {
                status,
                content_type: text(answer.headers(), header::CONTENT_TYPE),
                content_encoding: None,
                location: None,
                etag: text(answer.headers(), header::ETAG),
                last_modified: text(answer.headers(), header::LAST_MODIFIED),
                body: None,
                length: 0,
            },
            body: Vec::new(),
        });
        origin_answer(answer, feed)
    }

    /// Opens a new connection to the origin (one check at a time per site); none within half
    /// the connect timeout trips the circuit.
    async fn check_origin(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(addr) = *self.addr.borrow() else {
            return;
        };
        if self.checking.swap(true, Relaxed) {
            return;
        }
        let within = (self.cfg.connect_timeout / 2).max(Duration::from_millis(50));
        let alive = matches!(
            tokio::time::timeout(within, tokio::net::TcpStream::connect(addr)).await,
            Ok(Ok(_))
        );
        self.checking.store(false, Relaxed);
        if !alive {
            tracing::warn!(site = %self.name, %addr, "a request waits and the origin takes no new connection within {within:?}; answering from the copy until a probe of the primary passes");
            self.circuit.trip(now_millis());
        }
    }

    /// The copy's answer to a GET or HEAD (or the origin's `fallback` when the copy does not
    /// hold the URL, else a 502); a read-only 503 to any other method.
    fn copy_or<B>(
        &self,
        standby: &Standby,
        req: &Request<B>,
        target: &str,
        fallback: Option<reqwest::Response>,
    ) -> Response<ProxyBody> {
        use std::sync::atomic::Ordering::Relaxed;
        let idempotent = matches!(*req.method(), Method::GET | Method::HEAD);
        let upgrade = req.headers().contains_key(header::UPGRADE);
        if !idempotent || upgrade {
            self.circuit.refused.fetch_add(1, Relaxed);
            crate::metrics::get().proxy_request(&self.name, "refused");
            return left(read_only(req.headers()));
        }
        match standby.answer_from_copy(&self.name, req.method(), target, req.headers()) {
            Some(r) => {
                self.circuit.from_copy.fetch_add(1, Relaxed);
                crate::metrics::get().proxy_request(&self.name, "copy");
                left(r)
            }
            None => match fallback {
                Some(origin) => {
                    self.circuit.proxied.fetch_add(1, Relaxed);
                    crate::metrics::get().proxy_request(&self.name, "origin");
                    origin_answer(origin, None)
                }
                None => {
                    self.circuit.refused.fetch_add(1, Relaxed);
                    crate::metrics::get().proxy_request(&self.name, "refused");
                    left(plain(
                        StatusCode::BAD_GATEWAY,
                        "the site's server is not answering, and this page is not in its standby copy\n",
                    ))
                }
            },
        }
    }

    /// A 101 from the origin: the visitor gets it too, and the two upgraded connections are
    /// joined until either side closes.
    fn relay(
        &self,
        visitor: hyper::upgrade::OnUpgrade,
        answer: reqwest::Response,
        proxies: &Proxies,
    ) -> Response<ProxyBody> {
        let mut r = Response::new(left_body(Bytes::new()));
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        for (k, v) in answer.headers() {
            r.headers_mut().append(k, v.clone());
        }
        let site = self.name.clone();
        proxies.tunnels.spawn(async move {
            let (v, o) = tokio::join!(visitor, answer.upgrade());
            match (v, o) {
                (Ok(v), Ok(mut o)) => {
                    let mut v = hyper_util::rt::TokioIo::new(v);
                    let _ = tokio::io::copy_bidirectional(&mut v, &mut o).await;
                }
                (v, o) => {
                    tracing::debug!(%site, visitor = ?v.err(), origin = ?o.err(), "an upgrade did not complete");
                }
            }
        });
        self.circuit
            .proxied
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        crate::metrics::get().proxy_request(&self.name, "origin");
        r
    }
}

/// The visitor's request body on its way to the origin, noting whether reading it failed.
struct Watched {
    inner: http_body_util::Limited<Incoming>,
    failed: Arc<std::sync::atomic::AtomicBool>,
}

impl hyper::body::Body for Watched {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Err(_))) = &r {
            self.failed
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

fn left(r: Response<Full<Bytes>>) -> Response<ProxyBody> {
    r.map(Either::Left)
}

fn left_body(b: Bytes) -> ProxyBody {
    Either::Left(Full::new(b))
}

/// The origin's answer as the visitor gets it: status, end-to-end headers, the body streamed
/// (and kept for the copy on its way when `feed` says so).
fn origin_answer(answer: reqwest::Response, feed: Option<Feed>) -> Response<ProxyBody> {
    let answer: hyper::Response<reqwest::Body> = answer.into();
    let (mut parts, body) = answer.into_parts();
    parts.headers = forward_headers(&parts.headers, false, false);
    let feed = feed.map(Box::new);
    Response::from_parts(parts, Either::Right(Tee { inner: body, feed }))
}

fn text(h: &HeaderMap, name: HeaderName) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// An answer on its way to the copy: complete, it becomes the copy's entry for its URL.
struct Feed {
    standby: Arc<Standby>,
    site: String,
    target: String,
    entry: Entry,
    body: Vec<u8>,
}

/// The origin's body streamed to the visitor, a copy of it kept for [`Feed`] while it fits.
pub struct Tee {
    inner: reqwest::Body,
    /// Boxed: every response of the standby, the copy's too, is as large as this body type,
    /// and is moved a few times on its way out.
    feed: Option<Box<Feed>>,
}

impl Tee {
    /// The whole body went by: it becomes the copy's entry.
    fn finish(&mut self) {
        if let Some(f) = self.feed.take() {
            let mut f = *f;
            let digest = ring::digest::digest(&ring::digest::SHA256, &f.body);
            f.entry.body = Some(digest.as_ref().iter().map(|b| format!("{b:02x}")).collect());
            f.entry.length = f.body.len() as u64;
            f.standby
                .feed(&f.site, &f.target, f.entry, Bytes::from(f.body));
        }
    }
}

impl hyper::body::Body for Tee {
    type Data = Bytes;
    type Error = reqwest::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        use std::task::Poll;
        let r = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        match &r {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(feed)) = (frame.data_ref(), self.feed.as_mut()) {
                    if feed.body.len() + data.len() > super::fed::FED_MAX_BODY {
                        self.feed = None;
                    } else {
                        feed.body.extend_from_slice(data);
                    }
                }
                // A body of known length may never be asked past its last bytes.
                if self.inner.is_end_stream() {
                    self.finish();
                }
            }
            Poll::Ready(Some(Err(_))) => self.feed = None,
            Poll::Ready(None) => self.finish(),
            Poll::Pending => {}
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// `headers` without the hop-by-hop ones (and those `Connection` names); with `upgrade`, the
/// `Connection: upgrade` and `Upgrade` of an upgrade request kept. `Host` is dropped (the
/// client sets it from the URL, which carries the visitor's), and a request's `Content-Length`
/// too: the client frames the body it passes on from what was actually read. (An answer's is
/// kept: a HEAD's says how big the GET's body is.)
fn forward_headers(headers: &HeaderMap, upgrade: bool, request: bool) -> HeaderMap {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    let mut out = HeaderMap::with_capacity(headers.len());
    for (k, v) in headers {
        let n = k.as_str();
        if HOP_BY_HOP.contains(&n)
            || named.iter().any(|c| c == n)
            || k == header::HOST
            || (request && k == header::CONTENT_LENGTH)
        {
            continue;
        }
        out.append(k.clone(), v.clone());
    }
    if upgrade {
        if let Some(u) = headers.get(header::UPGRADE) {
            out.insert(header::UPGRADE, u.clone());
            out.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        }
    }
    out
}

/// `X-Forwarded-For` (appended to what came in), `X-Forwarded-Proto`, `X-Forwarded-Host` and
/// `Forwarded` (RFC 7239, appended).
fn add_forwarded(
    out: &mut HeaderMap,
    incoming: &HeaderMap,
    peer: SocketAddr,
    https: bool,
    host: &str,
) {
    let ip = peer.ip().to_canonical();
    let xff = match incoming
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
    {
        Some(prev) => format!("{prev}, {ip}"),
        None => ip.to_string(),
    };
    let proto = if https { "https" } else { "http" };
    let node = match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("\"[{v6}]\""),
    };
    let fwd = format!("for={node};proto={proto};host=\"{host}\"");
    let fwd = match incoming.get("forwarded").and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {fwd}"),
        None => fwd,
    };
    for (name, value) in [
        ("x-forwarded-for", xff),
        ("x-forwarded-proto", proto.to_string()),
        ("x-forwarded-host", host.to_string()),
        ("forwarded", fwd),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            out.insert(HeaderName::from_static(name), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_stay_behind() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, X-Secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::HOST, HeaderValue::from_static("www.example.test"));
        h.insert(header::ACCEPT, HeaderValue::from_static("text/html"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        let out = forward_headers(&h, false, true);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out.contains_key(header::ACCEPT));
        let up = forward_headers(&h, true, true);
        assert_eq!(up.get(header::UPGRADE).unwrap(), "websocket");
        assert_eq!(up.get(header::CONNECTION).unwrap(), "upgrade");
    }

    #[test]
    fn forwarded_headers_name_the_visitor() {
        let mut incoming = HeaderMap::new();
        incoming.insert("x-forwarded-for", HeaderValue::from_static("198.51.100.1"));
        let mut out = HeaderMap::new();
        add_forwarded(
            &mut out,
            &incoming,
            "[2001:db8::7]:5000".parse().unwrap(),
            true,
            "www.example.test",
        );
        assert_eq!(out["x-forwarded-for"], "198.51.100.1, 2001:db8::7");
        assert_eq!(out["x-forwarded-proto"], "https");
        assert_eq!(out["x-forwarded-host"], "www.example.test");
        assert_eq!(
            out["forwarded"],
            "for=\"[2001:db8::7]\";proto=https;host=\"www.example.test\""
        );
    }
}
