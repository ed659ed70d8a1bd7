//! The standby server: answers each site's names from its published snapshot,
//! replaying what the origin sent.
//!
//! A request is answered by **looking its path and query up in the snapshot's URL manifest**
//! (the key is the site's public origin joined with the request target, normalised exactly as
//! the crawler normalised what it fetched), never by joining a path onto a directory: there is
//! no file a request can name, so traversal is impossible by construction. Bodies are read by
//! hash from the content-addressed store.
//!
//! What is replayed: status (redirects with their Location, real 404s with the origin's body),
//! content type and encoding, ETag and Last-Modified, with 304 for `If-None-Match` (weak
//! comparison) and `If-Modified-Since`. Also: HEAD, single byte ranges (206/416), a short
//! `Cache-Control` (a failover copy should not be cached for long), and `X-Understudy-Snapshot`
//! naming the copy and its time. Snapshot switches are atomic for requests in flight: each
//! request holds the `Arc` of the manifest it started with.
//!
//! HTTP/1.1 and HTTP/2 (ALPN over TLS, prior knowledge in clear) on every listener. HTTPS picks
//! each site's certificate by SNI from [`crate::tls::Certs`] (user files or ACME, see
//! [`crate::acme`]).
//!
//! **Readiness** ([`Standby::readiness`], pure core [`assess`]): per site, is a snapshot
//! published and younger than `max_snapshot_age`, and (for an HTTPS site) is there a
//! certificate valid now for every name. Served to anyone at `/.well-known/understudy/ready` on
//! the site's own Host (200 ready, 503 not, JSON either way), and used in-process by the
//! daemon's standby probes: a standby that is not ready counts as a failed standby probe, so the
//! decision core never fails over to it (design.md invariant 3).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Response, StatusCode};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::config::{Config, Scheme, TlsFiles};
use crate::decide::Millis;
use crate::mirror::extract::is_html;
use crate::mirror::snapshot::{compress, compressible, Entry, Manifest, SnapshotStore};
use crate::tls::{CertInfo, Certs};

/// The readiness report's path, answered on every site's Host before the snapshot is consulted.
pub const READY_PATH: &str = "/.well-known/understudy/ready";

/// Longest request target accepted (path and query).
const MAX_TARGET: usize = 8 * 1024;
/// Connections open at once; more wait in the kernel's backlog until one closes.
const MAX_CONNECTIONS: usize = 4096;

/// One site's published snapshot, swapped whole when a new one is published.
struct SiteCopy {
    name: String,
    /// Domain first, then aliases (lower case, no trailing dot).
    hosts: Vec<String>,
    origin: Url,
    store: SnapshotStore,
    current: RwLock<Option<Arc<Manifest>>>,
    /// Visitors reach the site over HTTPS, so the standby needs a certificate to be ready.
    https: bool,
    /// User-supplied certificate files and the modification time last loaded.
    tls_files: Option<(TlsFiles, std::sync::Mutex<Option<SystemTime>>)>,
}

/// Every site's copy, by host name.
pub struct Standby {
    by_host: HashMap<String, Arc<SiteCopy>>,
    sites: Vec<Arc<SiteCopy>>,
    cache: BodyCache,
    banner: bool,
    max_age: Millis,
    certs: Arc<Certs>,
    /// The ACME manager, when there is one, for its last error in readiness reports.
    acme: std::sync::OnceLock<Arc<crate::acme::Manager>>,
}

/// One site's readiness, as reported at [`READY_PATH`] and used by the failover gate.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Readiness {
    pub site: String,
    pub ready: bool,
    /// Why not, in words; empty when ready.
    pub problems: Vec<String>,
    pub snapshot: Option<SnapshotState>,
    pub max_snapshot_age_secs: u64,
    pub certificate_required: bool,
    pub certificate: Option<CertState>,
    /// The last ACME failure, while the latest attempt failed.
    pub acme_error: Option<String>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct SnapshotState {
    pub id: String,
    pub created: String,
    pub age_secs: u64,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct CertState {
    pub names: Vec<String>,
    pub issuer: String,
    pub serial: String,
    pub not_after: String,
    pub expires_in_secs: i64,
}

/// Why a standby copy is not ready (empty: ready). Pure.
pub fn assess(
    snapshot_created: Option<Millis>,
    max_age: Millis,
    cert: Option<&CertInfo>,
    cert_required: bool,
    hosts: &[String],
    now: Millis,
) -> Vec<String> {
    let mut out = Vec::new();
    match snapshot_created {
        None => out.push("no published snapshot".to_string()),
        Some(at) if now.saturating_sub(at) > max_age => out.push(format!(
            "snapshot is {} old, more than max_snapshot_age {}",
            crate::util::human_duration(now.saturating_sub(at) / 1_000 * 1_000),
            crate::util::human_duration(max_age)
        )),
        Some(_) => {}
    }
    if cert_required {
        out.extend(crate::tls::problems(cert, hosts, now));
    }
    out
}

/// Bodies in memory by hash. They never change (content-addressed), so a cached body is never
/// stale; the cache is emptied when it would grow past its budget (simple, and a standby's
/// working set is usually one site's pages).
struct BodyCache {
    map: std::sync::Mutex<(HashMap<String, Bytes>, usize)>,
    budget: usize,
}

impl BodyCache {
    fn get_or_load(
        &self,
        hash: &str,
        load: impl FnOnce() -> Result<Vec<u8>, crate::mirror::snapshot::SnapshotError>,
    ) -> Result<Bytes, crate::mirror::snapshot::SnapshotError> {
        if let Some(b) = self.map.lock().ok().and_then(|m| m.0.get(hash).cloned()) {
            return Ok(b);
        }
        let b = Bytes::from(load()?);
        if let Ok(mut m) = self.map.lock() {
            if m.1 + b.len() > self.budget {
                m.0.clear();
                m.1 = 0;
            }
            if b.len() <= self.budget {
                m.1 += b.len();
                m.0.insert(hash.to_string(), b.clone());
            }
        }
        Ok(b)
    }
}

impl Standby {
    pub fn new(cfg: &Config) -> anyhow::Result<Standby> {
        let mut by_host = HashMap::new();
        let mut sites = Vec::new();
        let certs = Arc::new(Certs::default());
        let https = cfg
            .standby
            .as_ref()
            .is_some_and(|s| !s.https_listen.is_empty());
        for s in &cfg.sites {
            let hosts = s.hosts();
            let copy = Arc::new(SiteCopy {
                name: s.name.clone(),
                hosts: hosts.clone(),
                origin: s.origin(),
                store: SnapshotStore::open(&cfg.data_dir, &s.name)?,
                current: RwLock::new(None),
                https: https && s.probe.scheme == Scheme::Https,
                tls_files: s.tls.clone().map(|f| (f, std::sync::Mutex::new(None))),
            });
            if copy.tls_files.is_none() {
                // What ACME obtained before (a certificate that lapsed meanwhile is still
                // installed: readiness says it is expired, and ACME replaces it).
                match crate::tls::load_stored(&crate::tls::store_dir(&cfg.data_dir, &s.name)) {
                    Ok(Some(pair)) => certs.install(&hosts, Arc::new(pair)),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(site = %s.name, error = %e, "ignoring the stored certificate")
                    }
                }
            }
            for h in &hosts {
                by_host.insert(h.clone(), copy.clone());
            }
            sites.push(copy);
        }
        let st = cfg.standby.as_ref();
        let me = Standby {
            by_host,
            sites,
            cache: BodyCache {
                map: Default::default(),
                budget: 256 << 20,
            },
            banner: st.is_some_and(|s| s.banner),
            max_age: st
                .map_or(crate::config::DEFAULT_MAX_SNAPSHOT_AGE, |s| {
                    s.max_snapshot_age
                })
                .as_millis() as u64,
            certs,
            acme: std::sync::OnceLock::new(),
        };
        me.refresh();
        Ok(me)
    }

    /// The SNI certificate table (ACME installs into it).
    pub fn certs(&self) -> Arc<Certs> {
        self.certs.clone()
    }

    pub fn set_acme(&self, m: Arc<crate::acme::Manager>) {
        let _ = self.acme.set(m);
    }

    /// The in-process readiness check of site `name`, or `None` for a site not served here.
    pub fn readiness(&self, name: &str, now: Millis) -> Option<Readiness> {
        let s = self.sites.iter().find(|s| s.name == name)?;
        let m = s.current.read().ok().and_then(|c| c.clone());
        let pair = self.certs.get(&s.hosts[0]);
        let cert = pair.as_ref().map(|p| &p.info);
        let problems = assess(
            m.as_ref().map(|m| m.created_at),
            self.max_age,
            cert,
            s.https,
            &s.hosts,
            now,
        );
        Some(Readiness {
            site: s.name.clone(),
            ready: problems.is_empty(),
            problems,
            snapshot: m.map(|m| SnapshotState {
                id: m.id.clone(),
                created: crate::util::utc(m.created_at),
                age_secs: now.saturating_sub(m.created_at) / 1000,
            }),
            max_snapshot_age_secs: self.max_age / 1000,
            certificate_required: s.https,
            certificate: cert.map(|c| CertState {
                names: c.names.clone(),
                issuer: c.issuer.clone(),
                serial: c.serial.clone(),
                not_after: crate::util::utc(c.not_after),
                expires_in_secs: (c.not_after as i64 - now as i64) / 1000,
            }),
            acme_error: self.acme.get().and_then(|a| a.last_error(&s.name)),
        })
    }

    /// (Re)loads a site's user-supplied certificate files when they changed (a renewal by
    /// another tool). A broken replacement keeps the previous pair and says why.
    fn reload_files(&self, s: &SiteCopy) {
        let Some((files, seen)) = &s.tls_files else {
            return;
        };
        let mtime = std::fs::metadata(&files.cert_file)
            .and_then(|m| m.modified())
            .ok();
        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        if mtime.is_none() || *seen == mtime {
            return;
        }
        *seen = mtime;
        match crate::tls::load_files(&files.cert_file, &files.key_file) {
            Ok(pair) => {
                tracing::info!(site = %s.name, serial = %pair.info.serial, not_after = %crate::util::utc(pair.info.not_after), "certificate loaded");
                self.certs.install(&s.hosts, Arc::new(pair));
            }
            Err(e) => {
                tracing::warn!(site = %s.name, error = %e, "cannot load the certificate files; keeping the previous certificate")
            }
        }
    }

    /// Loads every site's published snapshot where it changed (the `current` pointer moved).
    pub fn refresh(&self) {
        for s in &self.sites {
            self.reload_files(s);
            let loaded = s
                .current
                .read()
                .map(|c| c.as_ref().map(|m| m.id.clone()))
                .unwrap_or(None);
            let now = s.store.current_id().ok().flatten();
            if now.is_some() && now != loaded {
                match s.store.current() {
                    Ok(Some(m)) => {
                        tracing::info!(site = %m.site, snapshot = %m.id, "serving a new snapshot");
                        if let Ok(mut c) = s.current.write() {
                            *c = Some(Arc::new(m));
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot load the published snapshot; serving the previous one")
                    }
                }
            }
        }
    }

    /// The answer to one request.
    pub fn respond(
        &self,
        method: &Method,
        host: Option<&str>,
        target: &str,
        headers: &HeaderMap,
    ) -> Response<Full<Bytes>> {
        if method != Method::GET && method != Method::HEAD {
            let mut r = plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "this is a read-only standby copy\n",
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        let host = host.map(|h| {
            h.rsplit_once(':')
                .filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
                .map(|(h, _)| h)
                .unwrap_or(h)
        });
        let Some(site) = host.and_then(|h| {
            self.by_host
                .get(&h.trim_end_matches('.').to_ascii_lowercase())
        }) else {
            return plain(StatusCode::NOT_FOUND, "no such site here\n");
        };
        if target == READY_PATH {
            let r = self.readiness(&site.name, crate::util::now_millis());
            let (status, body) = match &r {
                Some(r) if r.ready => (StatusCode::OK, serde_json::to_vec_pretty(r)),
                r => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    serde_json::to_vec_pretty(r),
                ),
            };
            let mut resp = Response::new(Full::new(Bytes::from(body.unwrap_or_default())));
            *resp.status_mut() = status;
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            return resp;
        }
        let Some(key) = lookup_key(&site.origin, target) else {
            return plain(StatusCode::BAD_REQUEST, "bad request target\n");
        };
        let Some(m) = site.current.read().ok().and_then(|c| c.clone()) else {
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "no copy of this site yet\n",
            );
        };
        let Some(entry) = m.entries.get(&key) else {
            return plain(StatusCode::NOT_FOUND, "not in the standby copy\n");
        };
        let mut body = match &entry.body {
            Some(h) => match self.cache.get_or_load(h, || site.store.body(h)) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, url = %key, "snapshot body unreadable");
                    return plain(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "the standby copy is damaged\n",
                    );
                }
            },
            None => Bytes::new(),
        };
        // The optional notice at the top of HTML pages (cached per body and snapshot time).
        let mut variant = entry.body.clone().unwrap_or_default();
        let mut bannered = false;
        if self.banner
            && entry.status == 200
            && entry.content_encoding.is_none()
            && is_html(entry.content_type.as_deref())
        {
            if let Some(h) = &entry.body {
                variant = format!("{h}.banner{}", m.created_at);
                if let Ok(b) = self.cache.get_or_load(&variant, || {
                    Ok(inject_banner(&body, &utc_minutes(m.created_at)))
                }) {
                    body = b;
                    bannered = true;
                }
            }
        }
        // Compressed for clients that take it, once per body (cached beside it), when it helps.
        let wanted = (entry.status == 200
            && entry.content_encoding.is_none()
            && compressible(entry.content_type.as_deref())
            && body.len() >= 512
            && !headers.contains_key(header::RANGE))
        .then(|| {
            preferred_encoding(
                headers
                    .get(header::ACCEPT_ENCODING)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or(""),
            )
        })
        .flatten();
        let (body, encoding) = match (wanted, &entry.body) {
            // Stored at publish time beside the body (not for the bannered variant).
            (Some(enc), Some(h)) => {
                match self.cache.get_or_load(&format!("{variant}.{enc}"), || {
                    Ok(if bannered {
                        None
                    } else {
                        site.store.bodies().encoded(h, enc)
                    }
                    .unwrap_or_else(|| compress(enc, &body)))
                }) {
                    Ok(c) if c.len() < body.len() => (c, Some(enc)),
                    _ => (body, None),
                }
            }
            _ => (body, None),
        };
        replay(
            entry,
            body,
            encoding,
            bannered,
            method == Method::HEAD,
            headers,
            &m,
        )
    }
}

/// The manifest key for a request target on a site's origin: the same normalisation as the
/// crawler's (`url` crate), or `None` for anything that is not an origin-form target.
pub fn lookup_key(origin: &Url, target: &str) -> Option<String> {
    if !target.starts_with('/')
        || target.starts_with("//")
        || target.len() > MAX_TARGET
        || target.chars().any(|c| c.is_control() || c == '\\')
    {
        return None;
    }
    let mut u = origin.join(target).ok()?;
    if u.origin() != origin.origin() {
        return None;
    }
    u.set_fragment(None);
    Some(u.to_string())
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `If-None-Match` matches when any listed tag equals the entity tag, weakly (W/ ignored).
fn none_match(header_value: &str, etag: &str) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_string();
    header_value
        .split(',')
        .any(|t| t.trim() == "*" || strip(t) == strip(etag))
}

fn not_modified_since(header_value: &str, last_modified: &str) -> bool {
    match (
        httpdate::parse_http_date(header_value.trim()),
        httpdate::parse_http_date(last_modified),
    ) {
        (Ok(since), Ok(lm)) => lm <= since,
        _ => false,
    }
}

/// A single `bytes=a-b`, `bytes=a-` or `bytes=-n` range within `len`; `Err` when unsatisfiable.
fn byte_range(value: &str, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None; // several ranges: answer the whole body
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let r = match (a.is_empty(), b.is_empty()) {
        (true, false) => {
            let n: u64 = b.parse().ok()?;
            if n == 0 {
                return Some(Err(()));
            }
            (len.saturating_sub(n), len.checked_sub(1)?)
        }
        (false, _) => {
            let start: u64 = a.parse().ok()?;
            let end: u64 = if b.is_empty() {
                len.saturating_sub(1)
            } else {
                b.parse::<u64>().ok()?.min(len.saturating_sub(1))
            };
            if start >= len || end < start {
                return Some(Err(()));
            }
            (start, end)
        }
        _ => return None,
    };
    Some(Ok(r))
}

/// `br` if the client takes it, else `gzip`, else none (q=0 refuses a coding).
fn preferred_encoding(accept: &str) -> Option<&'static str> {
    let takes = |coding: &str| {
        accept.split(',').any(|item| {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (name.eq_ignore_ascii_case(coding) || name == "*") && q > 0.0
        })
    };
    if takes("br") {
        Some("br")
    } else if takes("gzip") {
        Some("gzip")
    } else {
        None
    }
}

/// "2026-11-24 03:00 UTC" from Unix milliseconds.
fn utc_minutes(ms: u64) -> String {
    let t = httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
    // "Tue, 24 Nov 2026 03:00:12 GMT" → "24 Nov 2026 03:00 UTC"
    let parts: Vec<&str> = t.split_whitespace().collect();
    match parts.as_slice() {
        [_, d, mo, y, hms, _] => format!("{d} {mo} {y} {} UTC", &hms[..5.min(hms.len())]),
        _ => t,
    }
}

/// The page with a small fixed notice as the first thing in `<body>` (the rest untouched).
fn inject_banner(body: &[u8], when: &str) -> Vec<u8> {
    let notice = format!(
        "<div role=\"status\" style=\"all:initial;display:block;padding:6px 10px;background:#fff3cd;color:#5c4400;font:14px/1.4 system-ui,sans-serif;text-align:center;border-bottom:1px solid #e0c97a\">This is a read-only copy of the site as of {when}. The site will be back shortly.</div>"
    );
    let mut out = Vec::with_capacity(body.len() + notice.len());
    let mut done = false;
    let mut rewriter = lol_html::HtmlRewriter::new(
        lol_html::Settings::new().append_element_content_handler(lol_html::element!(
            "body",
            |el| {
                if !done {
                    el.prepend(&notice, lol_html::html_content::ContentType::Html);
                    done = true;
                }
                Ok(())
            }
        )),
        |c: &[u8]| out.extend_from_slice(c),
    );
    if rewriter.write(body).is_err() || rewriter.end().is_err() {
        return body.to_vec();
    }
    if done {
        return out;
    }
    // No <body> tag in the source (it is optional in HTML): first thing after the doctype.
    let head = String::from_utf8_lossy(&body[..body.len().min(512)]).to_ascii_lowercase();
    let at = match head.trim_start().starts_with("<!doctype") {
        true => head.find('>').map(|i| i + 1).unwrap_or(0),
        false => 0,
    };
    let mut out = body[..at].to_vec();
    out.extend_from_slice(notice.as_bytes());
    out.extend_from_slice(&body[at..]);
    out
}

#[allow(clippy::too_many_arguments)] // one call site; the arguments are the request and its answer
fn replay(
    e: &Entry,
    body: Bytes,
    encoding: Option<&str>,
    bannered: bool,
    head: bool,
    req: &HeaderMap,
    m: &Manifest,
) -> Response<Full<Bytes>> {
    let mut headers = HeaderMap::new();
    let mut put = |name: header::HeaderName, v: Option<&str>| {
        if let Some(v) = v.and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(name, v);
        }
    };
    put(header::CONTENT_TYPE, e.content_type.as_deref());
    put(header::CONTENT_ENCODING, e.content_encoding.as_deref());
    put(header::LOCATION, e.location.as_deref());
    put(header::ETAG, e.etag.as_deref());
    put(header::LAST_MODIFIED, e.last_modified.as_deref());
    put(header::CACHE_CONTROL, Some("public, max-age=60"));
    if e.status == 200 && e.content_encoding.is_none() && compressible(e.content_type.as_deref()) {
        put(header::VARY, Some("Accept-Encoding"));
    }
    if let Some(enc) = encoding {
        put(header::CONTENT_ENCODING, Some(enc));
    }
    if encoding.is_some() || bannered {
        // Another representation of the same resource: its tag is the origin's, made weak (as
        // nginx does), so If-None-Match still matches under weak comparison.
        if let Some(tag) = e.etag.as_deref().filter(|t| !t.starts_with("W/")) {
            put(header::ETAG, Some(&format!("W/{tag}")));
        }
    }
    let when =
        httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_millis(m.created_at));
    put(
        header::HeaderName::from_static("x-understudy-snapshot"),
        Some(&format!("standby copy {} of {when}", m.id)),
    );
    let cacheable = e.status == 200;
    if cacheable {
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        let inm = req.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok());
        let ims = req
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok());
        let fresh = match (inm, e.etag.as_deref()) {
            (Some(v), Some(tag)) => none_match(v, tag),
            (Some(_), None) => false,
            // If-Modified-Since counts only without If-None-Match (RFC 9110 13.1.3).
            (None, _) => {
                matches!((ims, e.last_modified.as_deref()), (Some(v), Some(lm)) if not_modified_since(v, lm))
            }
        };
        if fresh {
            headers.remove(header::CONTENT_TYPE);
            return with(StatusCode::NOT_MODIFIED, headers, Bytes::new());
        }
        if let Some(range) = req.get(header::RANGE).and_then(|v| v.to_str().ok()) {
            match byte_range(range, body.len() as u64) {
                Some(Ok((a, b))) => {
                    headers.insert(
                        header::CONTENT_RANGE,
                        HeaderValue::from_str(&format!("bytes {a}-{b}/{}", body.len()))
                            .expect("ascii"),
                    );
                    let part = if head {
                        Bytes::new()
                    } else {
                        body.slice(a as usize..=b as usize)
                    };
                    return with(StatusCode::PARTIAL_CONTENT, headers, part);
                }
                Some(Err(())) => {
                    headers.insert(
                        header::CONTENT_RANGE,
                        HeaderValue::from_str(&format!("bytes */{}", body.len())).expect("ascii"),
                    );
                    return with(StatusCode::RANGE_NOT_SATISFIABLE, headers, Bytes::new());
                }
                None => {}
            }
        }
    }
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::OK);
    let len = body.len();
    let mut r = with(status, headers, if head { Bytes::new() } else { body });
    if head {
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    r
}

fn with(status: StatusCode, headers: HeaderMap, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    *r.headers_mut() = headers;
    r
}

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
fn request_host(
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
async fn connection<S>(io: S, s: Arc<Standby>, stop: CancellationToken)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_normalised_like_the_crawler_and_never_leave_the_origin() {
        let o = Url::parse("http://www.example.test:8080/").unwrap();
        let k = |t: &str| lookup_key(&o, t);
        assert_eq!(
            k("/about").as_deref(),
            Some("http://www.example.test:8080/about")
        );
        assert_eq!(
            k("/app.js?v=3").as_deref(),
            Some("http://www.example.test:8080/app.js?v=3")
        );
        assert_eq!(
            k("/a/../b").as_deref(),
            Some("http://www.example.test:8080/b")
        );
        assert_eq!(
            k("/../../etc/passwd").as_deref(),
            Some("http://www.example.test:8080/etc/passwd"),
            "a key, not a file"
        );
        for bad in [
            "about",
            "//evil.test/x",
            "http://evil.test/",
            "/a\\..\\b",
            "/a\0b",
            "/a\r\nX-Injected: 1",
            "",
        ] {
            assert_eq!(k(bad), None, "{bad:?}");
        }
        assert_eq!(k(&format!("/{}", "a".repeat(MAX_TARGET))), None);
    }

    #[test]
    fn readiness_needs_a_young_snapshot_and_for_https_a_good_certificate() {
        const H: Millis = 3_600_000;
        let hosts = vec!["www.example.com".to_string()];
        let cert = crate::tls::test_cert(&["www.example.com"], 0, 100 * H);
        let ready = |snap: Option<Millis>, cert: Option<&CertInfo>, https: bool, now: Millis| {
            assess(snap, 48 * H, cert, https, &hosts, now)
        };
        assert!(ready(Some(10 * H), Some(&cert), true, 20 * H).is_empty());
        assert!(
            ready(Some(10 * H), None, false, 58 * H).is_empty(),
            "plain HTTP needs no certificate; 48h old is not too old"
        );
        assert_eq!(
            ready(None, Some(&cert), true, 20 * H),
            vec!["no published snapshot"]
        );
        assert_eq!(
            ready(Some(10 * H), Some(&cert), true, 59 * H),
            vec!["snapshot is 49h old, more than max_snapshot_age 48h"]
        );
        assert_eq!(
            ready(Some(10 * H), None, true, 20 * H),
            vec!["no certificate"]
        );
        let both = ready(None, Some(&cert), true, 101 * H);
        assert_eq!(both.len(), 2, "every reason is given: {both:?}");
        assert!(both[1].starts_with("certificate expired"), "{both:?}");
    }

    #[test]
    fn ranges() {
        assert_eq!(byte_range("bytes=0-3", 10), Some(Ok((0, 3))));
        assert_eq!(byte_range("bytes=5-", 10), Some(Ok((5, 9))));
        assert_eq!(byte_range("bytes=-4", 10), Some(Ok((6, 9))));
        assert_eq!(byte_range("bytes=8-100", 10), Some(Ok((8, 9))));
        assert_eq!(byte_range("bytes=10-", 10), Some(Err(())));
        assert_eq!(byte_range("bytes=5-2", 10), Some(Err(())));
        assert_eq!(byte_range("bytes=0-1,4-5", 10), None);
        assert_eq!(byte_range("items=0-1", 10), None);
        assert_eq!(byte_range("bytes=x-y", 10), None);
    }

    #[test]
    fn banner_goes_first_in_the_body() {
        let with_body = String::from_utf8(inject_banner(
            b"<!doctype html><html><body class=x><p>hi</p></body></html>",
            "T",
        ))
        .unwrap();
        assert!(
            with_body.contains("<body class=x><div role=\"status\""),
            "{with_body}"
        );
        let no_body = String::from_utf8(inject_banner(
            b"<!DOCTYPE html><title>t</title><p>hi</p>",
            "T",
        ))
        .unwrap();
        assert!(
            no_body.starts_with("<!DOCTYPE html><div role=\"status\""),
            "{no_body}"
        );
        let fragment = String::from_utf8(inject_banner(b"<h1>About</h1>", "T")).unwrap();
        assert!(
            fragment.starts_with("<div role=\"status\"") && fragment.ends_with("<h1>About</h1>"),
            "{fragment}"
        );
        assert!(
            utc_minutes(0).starts_with("01 Jan 1970 00:00 UTC"),
            "{}",
            utc_minutes(0)
        );
    }

    #[test]
    fn content_coding_negotiation() {
        assert_eq!(preferred_encoding("gzip, deflate, br"), Some("br"));
        assert_eq!(preferred_encoding("gzip, br;q=0"), Some("gzip"));
        assert_eq!(preferred_encoding("*"), Some("br"));
        assert_eq!(preferred_encoding("identity"), None);
        assert_eq!(preferred_encoding(""), None);
        assert_eq!(preferred_encoding("gzip;q=0, br;q=0.0"), None);
        assert!(
            compressible(Some("text/html; charset=utf-8")) && compressible(Some("image/svg+xml"))
        );
        assert!(!compressible(Some("image/png")) && !compressible(None));
    }

    #[test]
    fn validators() {
        assert!(none_match("\"abc\"", "\"abc\""));
        assert!(none_match("W/\"abc\", \"x\"", "\"abc\""));
        assert!(none_match("*", "\"abc\""));
        assert!(!none_match("\"abd\"", "\"abc\""));
        assert!(not_modified_since(
            "Tue, 24 Nov 2026 10:00:00 GMT",
            "Tue, 24 Nov 2026 10:00:00 GMT"
        ));
        assert!(!not_modified_since(
            "Tue, 24 Nov 2026 09:59:59 GMT",
            "Tue, 24 Nov 2026 10:00:00 GMT"
        ));
        assert!(!not_modified_since(
            "yesterday",
            "Tue, 24 Nov 2026 10:00:00 GMT"
        ));
    }
}
