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
//! [`crate::standby::acme`]).
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
use crate::mirror::extract::is_html;
use crate::mirror::snapshot::{compress, compressible, Entry, Manifest, SnapshotStore};
use crate::tls::{CertInfo, Certs};
use crate::util::Millis;

/// The readiness report's path, answered on every site's Host before the snapshot is consulted.
pub use crate::probe::READY_PATH;

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
    current: RwLock<Option<Arc<Served>>>,
    /// Visitors reach the site over HTTPS, so the standby needs a certificate to be ready.
    https: bool,
    /// User-supplied certificate files and the modification time last loaded.
    tls_files: Option<(TlsFiles, std::sync::Mutex<Option<SystemTime>>)>,
    /// The snapshot whose bodies' compressed forms were last stored.
    compressed: std::sync::Mutex<Option<String>>,
    /// Answers that passed through the proxy since that snapshot (`fed.rs`).
    fed: fed::Fed,
}

/// A published snapshot as it is served: its manifest, and the header every answer from it
/// carries (made once, not on every request).
struct Served {
    manifest: Manifest,
    /// `X-Understudy-Snapshot: standby copy <id> of <date>`.
    snapshot_header: Option<HeaderValue>,
}

impl Served {
    fn new(manifest: Manifest) -> Served {
        let when = crate::util::http_date(manifest.created_at);
        let snapshot_header =
            HeaderValue::from_str(&format!("standby copy {} of {when}", manifest.id)).ok();
        Served {
            manifest,
            snapshot_header,
        }
    }
}

impl std::ops::Deref for Served {
    type Target = Manifest;
    fn deref(&self) -> &Manifest {
        &self.manifest
    }
}

/// Every site's copy, by host name.
pub struct Standby {
    by_host: HashMap<String, Arc<SiteCopy>>,
    sites: Vec<Arc<SiteCopy>>,
    cache: BodyCache,
    banner: bool,
    /// `standby.tracking_params` (the default list for `understudy serve`).
    tracking: Vec<String>,
    max_age: Millis,
    certs: Arc<Certs>,
    /// The ACME manager, when there is one, for its last error in readiness reports.
    acme: std::sync::OnceLock<Arc<crate::standby::acme::Manager>>,
}

/// One site's readiness, as reported at [`READY_PATH`] and used by the failover gate.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ReadinessReport {
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
        load: impl FnOnce() -> Result<Bytes, crate::mirror::snapshot::SnapshotError>,
    ) -> Result<Bytes, crate::mirror::snapshot::SnapshotError> {
        if let Some(b) = self.map.lock().ok().and_then(|m| m.0.get(hash).cloned()) {
            return Ok(b);
        }
        let b = load()?;
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
                compressed: std::sync::Mutex::new(None),
                fed: Default::default(),
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
            tracking: st.map_or_else(crate::config::default_tracking_params, |s| {
                s.tracking_params.clone()
            }),
            max_age: st
                .map_or(crate::config::DEFAULT_MAX_SNAPSHOT_AGE, |s| {
                    s.max_snapshot_age
                })
                .as_millis() as u64,
            certs,
            acme: std::sync::OnceLock::new(),
        };
        // Serving starts at once; compressing waits for the refresher's first round.
        me.load_new_snapshots();
        Ok(me)
    }

    /// The SNI certificate table (ACME installs into it).
    pub fn certs(&self) -> Arc<Certs> {
        self.certs.clone()
    }

    pub fn set_acme(&self, m: Arc<crate::standby::acme::Manager>) {
        let _ = self.acme.set(m);
    }

    /// The in-process readiness check of site `name`, or `None` for a site not served here.
    pub fn readiness(&self, name: &str, now: Millis) -> Option<ReadinessReport> {
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
        Some(ReadinessReport {
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

    /// Loads every site's published snapshot where it changed (the `current` pointer moved),
    /// then stores the compressed forms of the bodies of each snapshot served that lacks them
    /// (a crawl publishes without compressing: until this is done, a compressed answer is made
    /// on the request and kept in memory).
    pub fn refresh(&self) {
        self.load_new_snapshots();
        for s in &self.sites {
            let Some(m) = s.current.read().ok().and_then(|c| c.clone()) else {
                continue;
            };
            let mut done = s.compressed.lock().unwrap_or_else(|e| e.into_inner());
            if done.as_deref() != Some(m.id.as_str()) {
                let started = std::time::Instant::now();
                let bodies = s.store.bodies().precompress_all(&m);
                tracing::debug!(site = %s.name, snapshot = %m.id, bodies, ms = started.elapsed().as_millis() as u64, "compressed forms stored");
                *done = Some(m.id.clone());
            }
        }
    }

    fn load_new_snapshots(&self) {
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
                            *c = Some(Arc::new(Served::new(m)));
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
}

pub mod acme;
mod answer;
pub mod fallback;
pub mod fed;
mod listen;
pub mod proxy;
mod replay;
pub use listen::{refresher, serve, CopyGate};
pub use replay::lookup_key;
use replay::*;

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

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        /// The fast way to a key (a target already in normal form, joined as text) and the URL
        /// parser agree on every target, including those with characters it encodes, dot
        /// segments, percent signs, queries and fragments.
        #[test]
        fn plain_targets_get_the_key_the_url_parser_gives(
            target in "/[a-zA-Z0-9./~_?=&%#:@+;, \"'<>{}é-]{0,24}",
            https in proptest::bool::ANY,
        ) {
            let o = Url::parse(if https { "https://shop.example/" } else { "http://www.example.test:8080/" }).unwrap();
            let parsed = if target.starts_with("//") { None } else { replay::parsed_key(&o, &target) };
            proptest::prop_assert_eq!(lookup_key(&o, &target), parsed);
        }
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
            crate::util::utc_minutes(0).starts_with("01 Jan 1970 00:00 UTC"),
            "{}",
            crate::util::utc_minutes(0)
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
        use Preconditions::*;
        const LM: &str = "Tue, 24 Nov 2026 10:00:00 GMT";
        const EARLIER: &str = "Tue, 24 Nov 2026 09:59:59 GMT";
        const LATER: &str = "Tue, 24 Nov 2026 10:00:01 GMT";
        let go = Proceed { range: true };
        let whole = Proceed { range: false };
        // (request headers, the served ETag, the answer)
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, Preconditions);
        let cases: &[Case] = &[
            (&[], "\"abc\"", go),
            // If-None-Match: weak comparison, any of a list, `*`.
            (&[("if-none-match", "\"abc\"")], "\"abc\"", NotModified),
            (
                &[("if-none-match", "W/\"abc\", \"x\"")],
                "\"abc\"",
                NotModified,
            ),
            (&[("if-none-match", "\"abc\"")], "W/\"abc\"", NotModified),
            (&[("if-none-match", "*")], "\"abc\"", NotModified),
            (&[("if-none-match", "\"abd\"")], "\"abc\"", go),
            // If-Modified-Since: not earlier than Last-Modified; ignored beside If-None-Match
            // and when it is not a date.
            (&[("if-modified-since", LM)], "\"abc\"", NotModified),
            (&[("if-modified-since", LATER)], "\"abc\"", NotModified),
            (&[("if-modified-since", EARLIER)], "\"abc\"", go),
            (&[("if-modified-since", "yesterday")], "\"abc\"", go),
            (
                &[("if-none-match", "\"x\""), ("if-modified-since", LM)],
                "\"abc\"",
                go,
            ),
            // If-Match: strong comparison, `*`; before everything else.
            (&[("if-match", "\"abc\"")], "\"abc\"", go),
            (&[("if-match", "\"x\", \"abc\"")], "\"abc\"", go),
            (&[("if-match", "*")], "\"abc\"", go),
            (&[("if-match", "\"x\"")], "\"abc\"", Failed),
            (&[("if-match", "W/\"abc\"")], "\"abc\"", Failed),
            (&[("if-match", "\"abc\"")], "W/\"abc\"", Failed),
            (
                &[("if-match", "\"x\""), ("if-none-match", "\"abc\"")],
                "\"abc\"",
                Failed,
            ),
            // If-Unmodified-Since: only without If-Match; not a date is ignored.
            (&[("if-unmodified-since", LM)], "\"abc\"", go),
            (&[("if-unmodified-since", EARLIER)], "\"abc\"", Failed),
            (&[("if-unmodified-since", "soon")], "\"abc\"", go),
            (
                &[("if-match", "\"abc\""), ("if-unmodified-since", EARLIER)],
                "\"abc\"",
                go,
            ),
            (
                &[
                    ("if-unmodified-since", EARLIER),
                    ("if-none-match", "\"abc\""),
                ],
                "\"abc\"",
                Failed,
            ),
            // If-Range: the same strong tag or exactly the date keeps the range.
            (&[("if-range", "\"abc\"")], "\"abc\"", go),
            (&[("if-range", "\"other\"")], "\"abc\"", whole),
            (&[("if-range", "W/\"abc\"")], "W/\"abc\"", whole),
            (&[("if-range", "\"abc\"")], "W/\"abc\"", whole),
            (&[("if-range", LM)], "\"abc\"", go),
            (&[("if-range", EARLIER)], "\"abc\"", whole),
            (&[("if-range", "not a date")], "\"abc\"", whole),
        ];
        for (hs, tag, want) in cases {
            let mut h = HeaderMap::new();
            for (k, v) in *hs {
                h.insert(
                    header::HeaderName::from_static(k),
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            assert_eq!(
                preconditions(&h, Some(tag), Some(LM)),
                *want,
                "{hs:?} on {tag}"
            );
        }
        // Without validators: If-Match `*` still matches, If-Unmodified-Since cannot hold.
        let one = |k: &'static str, v: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                header::HeaderName::from_static(k),
                HeaderValue::from_str(v).unwrap(),
            );
            h
        };
        assert_eq!(preconditions(&one("if-match", "*"), None, None), go);
        assert_eq!(preconditions(&one("if-match", "\"a\""), None, None), Failed);
        assert_eq!(
            preconditions(&one("if-unmodified-since", LM), None, None),
            Failed
        );
        assert_eq!(preconditions(&one("if-range", LM), None, None), whole);
    }
}
