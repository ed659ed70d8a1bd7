//! The crawler: fills a new snapshot from the origin and publishes it if it passes the checks.
//!
//! - **Origin pinning.** The site's names are resolved to the primary's address (and port),
//!   whatever DNS says, with the name in Host and SNI: the same pinning as probes, so a crawl can
//!   run while the records point at the standby. Extra origins (a CDN) use their `resolve`
//!   address from the config, or else the primary's. Nothing is ever looked up through the
//!   system resolver: the client's resolver refuses every name ([`PinnedOnly`]).
//! - **Parallel.** Up to `concurrency` requests in flight per origin over kept-alive
//!   connections; no politeness delays (it is the user's own server). An HTTPS origin that
//!   offers HTTP/2 (ALPN) gets its requests multiplexed on one connection, and
//!   [`H2_STREAMS_PER_SLOT`] times `concurrency` of them in flight. Decoding, hashing,
//!   storing and reference discovery run on the blocking pool, off the I/O threads.
//! - **Incremental.** A URL the last good snapshot has is asked for with `If-None-Match` and
//!   `If-Modified-Since`; a 304 reuses the stored entry and follows the links of the *stored*
//!   copy, so a deep change behind an unchanged front page is still reached. Bodies are stored
//!   by hash, so an unchanged body without validators is not stored twice.
//! - **Sitemap hints.** Sitemaps are read before anything else. A page whose `<lastmod>` is the
//!   same, character for character, as in the last good snapshot's sitemap is taken from the
//!   stored copy without a request (its links are still followed). Trust is checked, not
//!   assumed: a sample of those pages (the first 10, then about 1 in 40) is revalidated anyway,
//!   and if one of them turns out changed, the sitemap is distrusted for the rest of the crawl
//!   and every page taken on its word is fetched after all. This is what makes a re-crawl of
//!   an unchanged site cost a small fraction of the first one, in requests as well as bytes.
//! - **Guesses.** URL-like string literals in inline and external scripts and in JSON files
//!   ([`extract::script`]) are fetched speculatively, after the references that led to them.
//!   What the origin answers with 2xx or 3xx is kept like any page; what it answers with 4xx,
//!   or fails to answer, is listed in the manifest as skipped (`speculative: …`) and is neither
//!   an error nor part of the error rate, so a wrong guess never fails a crawl. A guess that is
//!   referred to later (from HTML or CSS) becomes a reference: fetched again if it had missed.
//!   Guesses no rule admits (scope, robots, traps, the page cap) are dropped silently: nothing
//!   is missing when a guess is not taken.
//! - **Bounded.** The trap rules of [`super::scope::Guard`], global page/byte/time caps, a
//!   response-size cap that also stops decompression bombs, capped redirects, off-scope
//!   redirects recorded but not followed. Every limit hit is counted in the report and every
//!   skipped URL is listed in the manifest.
//! - **Failures.** One bad URL never aborts a crawl. Transient failures (connection errors,
//!   timeouts, 429, 502-504) are retried; a URL that still fails keeps its entry from the last
//!   good snapshot if there is one (a blip must not punch a hole in the standby) and counts as
//!   an error for the error-rate check. 5xx answers are never stored.
//!
//! Bodies are stored decoded (the origin's `Content-Encoding` removed; the standby compresses
//! for its own clients), byte-for-byte otherwise. An encoding we cannot decode is stored as sent,
//! with its `Content-Encoding` recorded.

mod fetch;
mod frontier;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::extract::{self, Kind};
use super::scope::{resolve, Guard, Robots, Scope, Skip, Traps};
use super::snapshot::{Bodies, Entry, Manifest, SnapshotError, SnapshotStore};
use crate::config::{MirrorConfig, Site};
use fetch::*;
use frontier::Crawl;

/// Everything one crawl needs to know.
#[derive(Clone)]
pub struct Spec {
    pub site: String,
    /// The site's `[sites.mirror]`: start URLs (the first is the entry page), concurrency,
    /// timeout, retries, robots, limits, checks.
    pub m: MirrorConfig,
    /// The scope: the site's origins and any extra ones.
    pub origins: Vec<Url>,
    /// Where each pinned host is fetched from (port included: it may differ from the URL's).
    pub pins: Vec<(String, SocketAddr)>,
    pub tls: rustls::ClientConfig,
}

impl Spec {
    /// The crawl of `site` through the primary at `primary` (the configured address, or the
    /// agreed public one for `primary = "auto"`).
    pub fn for_site(site: &Site, primary: IpAddr) -> Result<Spec, String> {
        let m = &site.mirror;
        let connect = SocketAddr::new(primary, site.primary.port.unwrap_or(site.probe.port));
        let mut pins: Vec<(String, SocketAddr)> =
            site.hosts().into_iter().map(|h| (h, connect)).collect();
        // Every extra host is fetched from its `resolve` address, or else from the primary's:
        // never from whatever the system resolver says (see `build_client`).
        for o in &m.extra_origins {
            let Some(host) = o.host_str() else { continue };
            if pins.iter().any(|(h, _)| h == host) {
                continue;
            }
            let port = o.port_or_known_default().unwrap_or(443);
            let ip = m
                .resolve
                .iter()
                .find(|(h, _)| h == host)
                .map(|(_, ip)| *ip)
                .unwrap_or(primary);
            pins.push((host.to_string(), SocketAddr::new(ip, port)));
        }
        Ok(Spec {
            site: site.name.clone(),
            m: m.clone(),
            origins: site.crawl_origins(),
            pins,
            tls: {
                // A crawl speaks HTTP/2 where the origin offers it (probes stay on HTTP/1.1).
                let mut tls = crate::probe::client_tls(&site.probe)?;
                tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
                tls
            },
        })
    }
}

/// Live counters for a progress display.
#[derive(Debug, Default)]
pub struct Progress {
    pub fetched: AtomicU64,
    pub bytes: AtomicU64,
    pub errors: AtomicU64,
    pub queued: AtomicU64,
    pub not_modified: AtomicU64,
    pub reused: AtomicU64,
}

/// What one crawl did; stored in the state database and printed by `understudy mirror`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub site: String,
    /// Unix milliseconds.
    pub started_at: u64,
    pub duration_ms: u64,
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// URLs fetched (each once).
    pub fetched: u64,
    /// Entries answering 200 in the snapshot.
    pub pages: u64,
    pub not_modified: u64,
    /// Pages taken from the stored copy on the sitemap's word, without a request.
    #[serde(default)]
    pub reused: u64,
    /// The sitemap's `<lastmod>` turned out wrong for a sampled page, so it was not trusted.
    #[serde(default)]
    pub sitemap_distrusted: bool,
    /// Bytes received (bodies as sent, before decompression).
    pub bytes: u64,
    /// Bodies the new snapshot has that the last good one did not.
    pub new_bodies: u64,
    pub errors: u64,
    /// Guesses (URL-like strings in scripts and JSON) the origin answered with 2xx or 3xx, so
    /// kept, and those it answered otherwise (recorded as skipped, never errors).
    #[serde(default)]
    pub guesses_kept: u64,
    #[serde(default)]
    pub guesses_missed: u64,
    /// The first few failures, "URL: reason".
    pub error_samples: Vec<String>,
    /// Limit → how many URLs it stopped.
    pub limits_hit: BTreeMap<String, u64>,
    /// "published", "rejected" or "failed".
    pub outcome: String,
    pub reason: Option<String>,
    pub snapshot: Option<String>,
}

impl crate::store::CrawlRecord for Report {
    fn site(&self) -> &str {
        &self.site
    }
    fn started_at(&self) -> u64 {
        self.started_at
    }
    fn outcome(&self) -> &str {
        &self.outcome
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CrawlError {
    #[error(transparent)]
    Store(#[from] SnapshotError),
    #[error("crawl setup: {0}")]
    Setup(String),
    #[error("crawl stopped before it finished; the published snapshot is unchanged")]
    Interrupted,
}

#[derive(Clone)]
struct Job {
    url: Url,
    depth: u32,
    redirects: u32,
    /// Fresh by the sitemap but fetched anyway, to check the sitemap's word.
    check: bool,
}

/// What fetching one URL gave.
struct Done {
    url: Url,
    depth: u32,
    redirects: u32,
    check: bool,
    /// Taken from the stored copy without a request.
    reused: bool,
    /// Answered with a body other than the last good snapshot's.
    changed: bool,
    wire: u64,
    outcome: Outcome,
}

enum Outcome {
    /// An answer to record (fresh, or reused after a 304).
    Answer {
        entry: Entry,
        found: extract::Discovered,
        redirect: Option<Url>,
        not_modified: bool,
        robots: Option<Robots>,
        sitemap: Option<extract::SitemapEntries>,
    },
    /// Failed; carries the last good snapshot's entry (and its links) when there is one.
    Failed {
        reason: String,
        carried: Option<(Entry, extract::Discovered)>,
    },
    /// Stopped by a limit (size, decompression).
    Limited(Skip),
    /// The body store failed: the crawl cannot go on.
    Fatal(SnapshotError),
}

struct Ctx {
    client: reqwest::Client,
    bodies: Bodies,
    prev: Option<Manifest>,
    retries: u32,
    max_response: u64,
    /// Host → connect port, where it differs from the URL's.
    ports: HashMap<String, u16>,
    /// Origin → its request slots (`concurrency` each).
    slots: HashMap<String, Arc<tokio::sync::Semaphore>>,
    concurrency: usize,
    /// Requests sent, counted as they go out: a fetch stopped by `max_time` sent one too.
    sent: AtomicU64,
    /// Origins that answered over HTTP/2 (their slots were widened).
    h2: std::sync::Mutex<HashSet<String>>,
}

/// Over HTTP/2 an origin's requests share one connection as streams, so it gets this many
/// times `concurrency` requests in flight: more work in flight within a smaller connection
/// budget (one connection instead of `concurrency`), as browsers do.
pub const H2_STREAMS_PER_SLOT: usize = 16;

impl Ctx {
    /// `u`'s origin answered over HTTP/2: widen its slots, once.
    fn widen(&self, u: &Url) {
        let key = u.origin().ascii_serialization();
        if let Some(s) = self.slots.get(&key) {
            if self.h2.lock().is_ok_and(|mut h| h.insert(key)) {
                s.add_permits(self.concurrency * (H2_STREAMS_PER_SLOT - 1));
            }
        }
    }

    fn slots(&self, u: &Url) -> Arc<tokio::sync::Semaphore> {
        match self.slots.get(&u.origin().ascii_serialization()) {
            Some(s) => s.clone(),
            // Every in-scope URL has one of the scope's origins; this is only a safe default.
            None => Arc::new(tokio::sync::Semaphore::new(self.concurrency)),
        }
    }
}

fn build_client(spec: &Spec) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .tls_backend_preconfigured(spec.tls.clone())
        .timeout(spec.m.timeout)
        .connect_timeout(spec.m.timeout.min(Duration::from_secs(10)))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(spec.m.concurrency)
        .user_agent(concat!(
            "understudy/",
            env!("CARGO_PKG_VERSION"),
            " (standby mirror)"
        ));
    for (host, addr) in &spec.pins {
        // reqwest takes the port from the URL; a different connect port is set per request.
        b = b.resolve(host, SocketAddr::new(addr.ip(), 0));
    }
    // The pins above are answered before any resolver; every other name is refused here, so a
    // crawl can never reach an address the system resolver found.
    b.dns_resolver(std::sync::Arc::new(crate::http::PinnedOnly))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// Crawls and publishes. `now_ms` names the snapshot and stamps the report.
pub async fn crawl(
    spec: &Spec,
    store: &SnapshotStore,
    progress: &Progress,
    cancel: &CancellationToken,
    now_ms: u64,
) -> Result<Report, CrawlError> {
    let started = Instant::now();
    let client = build_client(spec).map_err(CrawlError::Setup)?;
    let entry = spec
        .m
        .start
        .first()
        .ok_or_else(|| CrawlError::Setup("no start URL".into()))?
        .clone();
    let prev = store.current()?;
    let mut ports = HashMap::new();
    for (host, addr) in &spec.pins {
        ports.insert(host.clone(), addr.port());
    }
    let slots = spec
        .origins
        .iter()
        .map(|o| {
            (
                o.origin().ascii_serialization(),
                Arc::new(tokio::sync::Semaphore::new(spec.m.concurrency)),
            )
        })
        .collect();
    let ctx = Arc::new(Ctx {
        client,
        bodies: store.bodies(),
        prev,
        retries: spec.m.retries,
        max_response: spec.m.limits.max_response_bytes,
        ports,
        slots,
        concurrency: spec.m.concurrency,
        sent: AtomicU64::new(0),
        h2: std::sync::Mutex::new(HashSet::new()),
    });
    let mut w = store.begin(&format!("{now_ms:013}"), entry.as_str(), now_ms)?;
    let mut c = Crawl {
        scope: Scope::new(spec.origins.iter()),
        guard: Guard::new(Traps {
            max_depth: spec.m.limits.max_depth,
            max_url_length: spec.m.limits.max_url_length,
            max_query_variants: spec.m.limits.max_query_variants,
            max_segment_repeats: spec.m.limits.max_segment_repeats,
            max_redirects: spec.m.limits.max_redirects,
        }),
        max_pages: spec.m.limits.max_pages,
        seen: HashSet::new(),
        queue: VecDeque::new(),
        admitted: 0,
        consecutive_failures: 0,
        robots: None,
        honour_robots: spec.m.robots,
        old_lastmod: previous_lastmods(ctx.prev.as_ref(), &ctx.bodies),
        new_lastmod: HashMap::new(),
        trust_sitemap: true,
        reused_jobs: Vec::new(),
        sitemaps: VecDeque::new(),
        sitemap_pages: Vec::new(),
        prephase: true,
        fresh_candidates: 0,
        guessed: HashSet::new(),
        missed_guesses: HashSet::new(),
        report: Report {
            site: spec.site.clone(),
            started_at: now_ms,
            ..Report::default()
        },
    };

    // robots.txt first: its rules (when honoured) and sitemaps shape the rest.
    let robots_url = entry.join("/robots.txt").expect("a path joins");
    c.seen.insert(robots_url.to_string());
    c.admitted += 1;
    // These run one at a time before the crawl proper; a stop request is honoured here too.
    let one = |url: Url| {
        let f = fetch(
            ctx.clone(),
            Job {
                url,
                depth: 0,
                redirects: 0,
                check: false,
            },
        );
        async move {
            tokio::select! {
                d = f => Some(d),
                _ = cancel.cancelled() => None,
            }
        }
    };
    let Some(first) = one(robots_url).await else {
        w.abandon();
        return Err(CrawlError::Interrupted);
    };
    c.record(first, &mut w, progress)?;
    // Then the sitemaps (and sitemap indexes' children, up to 100 files), one at a time: their
    // URLs and `<lastmod>`s are known before any page is asked for.
    c.sitemaps
        .push_back(entry.join("/sitemap.xml").expect("a path joins"));
    for s in c
        .robots
        .as_ref()
        .map(|r| r.sitemaps.clone())
        .unwrap_or_default()
    {
        c.sitemaps.extend(resolve(&entry, &s));
    }
    let mut sitemap_files = 0;
    while let Some(u) = c.sitemaps.pop_front() {
        if sitemap_files >= 100 || !c.scope.contains(&u) || !c.seen.insert(u.to_string()) {
            continue;
        }
        sitemap_files += 1;
        c.admitted += 1;
        let Some(done) = one(u).await else {
            w.abandon();
            return Err(CrawlError::Interrupted);
        };
        c.record(done, &mut w, progress)?;
    }
    for u in &spec.m.start {
        c.enqueue(u.clone(), 0, 0, &mut w);
    }
    c.prephase = false;
    c.enqueue_sitemap_pages(&mut w);

    let deadline = tokio::time::Instant::now() + spec.m.limits.max_time;
    let cap = 2 * spec.m.concurrency * H2_STREAMS_PER_SLOT * spec.origins.len().max(1);
    // Enough failures in a row that it is not one bad page: everything in flight failed, and
    // then some.
    let give_up = 3 * spec.m.concurrency + 10;
    let mut in_flight: JoinSet<Done> = JoinSet::new();
    loop {
        // Start what the cap allows. The per-origin limit is a semaphore each fetch holds for
        // its network part only, so parsing and storing never keep a connection idle; the cap
        // here (twice that) only bounds the tasks alive at once.
        while in_flight.len() < cap {
            let Some(mut job) = c.queue.pop_front() else {
                break;
            };
            if c.report.bytes >= spec.m.limits.max_bytes {
                c.hit(Skip::Bytes, job.url.as_str(), &mut w);
                continue;
            }
            // Fresh by the sitemap: from the stored copy, unless this one is in the sample.
            let stored = ctx
                .prev
                .as_ref()
                .and_then(|m| m.entries.get(job.url.as_str()))
                .filter(|e| e.body.is_some() && e.status == 200);
            if let Some(e) =
                stored.filter(|_| c.trust_sitemap && c.sitemap_says_unchanged(job.url.as_str()))
            {
                c.fresh_candidates += 1;
                if c.fresh_candidates > 10 && !in_sample(job.url.as_str()) {
                    c.report.reused += 1;
                    progress.reused.fetch_add(1, Ordering::Relaxed);
                    c.reused_jobs.push(job.clone());
                    in_flight.spawn(reuse(ctx.clone(), job, e.clone()));
                    continue;
                }
                job.check = true;
            }
            in_flight.spawn(fetch(ctx.clone(), job));
        }
        progress
            .queued
            .store(c.queue.len() as u64, Ordering::Relaxed);
        if in_flight.is_empty() {
            break;
        }
        tokio::select! {
            done = in_flight.join_next() => {
                let Some(done) = done else { continue };
                let done = match done {
                    Ok(d) => d,
                    Err(e) => {
                        // A panicking fetch is a bug; count it and go on.
                        c.report.errors += 1;
                        c.report.error_samples.push(format!("internal: {e}"));
                        continue;
                    }
                };
                c.record(done, &mut w, progress)?;
                if c.consecutive_failures >= give_up {
                    in_flight.abort_all();
                    let why = format!(
                        "the origin stopped answering ({} failures in a row; last: {})",
                        c.consecutive_failures,
                        c.report.error_samples.last().map(String::as_str).unwrap_or("?")
                    );
                    w.reject(why);
                    break;
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                in_flight.abort_all();
                let left: Vec<Job> = c.queue.drain(..).collect();
                for j in left {
                    c.hit(Skip::Time, j.url.as_str(), &mut w);
                }
                *c.report.limits_hit.entry(Skip::Time.as_str().to_string()).or_default() += in_flight.len().max(1) as u64;
                break;
            }
            _ = cancel.cancelled() => {
                in_flight.abort_all();
                w.abandon();
                return Err(CrawlError::Interrupted);
            }
        }
    }

    // A crawl cut short by a global limit did not see the whole site: what it did not reach
    // keeps its entry from the last good snapshot rather than vanishing from the standby.
    let cut_short = [Skip::Time, Skip::Bytes, Skip::Pages]
        .iter()
        .any(|k| c.report.limits_hit.contains_key(k.as_str()));
    if let (true, Some(prev)) = (cut_short, ctx.prev.as_ref()) {
        let mut kept = 0;
        for (url, e) in &prev.entries {
            if !w.has(url)
                && w.skipped_why(url).is_none_or(|why| {
                    [Skip::Time, Skip::Bytes, Skip::Pages]
                        .iter()
                        .any(|k| k.as_str() == why)
                })
            {
                w.add(url, e.clone());
                kept += 1;
            }
        }
        tracing::info!(site = %c.report.site, kept, "crawl cut short by a limit; unreached pages keep their last good copy");
    }
    let mut report = c.report;
    report.requests = ctx.sent.load(Ordering::Relaxed);
    // A guess the origin did not answer is not a page the site has: out of the error rate's
    // denominator as well as its numerator.
    w.set_tally(
        report.fetched.saturating_sub(report.guesses_missed) as usize,
        report.errors as usize,
    );
    let verdict = w.finish(spec.m.checks)?;
    report.duration_ms = started.elapsed().as_millis() as u64;
    match verdict {
        Ok(p) => {
            report.pages = p.pages as u64;
            report.new_bodies = p.new_bodies as u64;
            report.outcome = "published".into();
            report.snapshot = Some(p.id);
        }
        Err(r) => {
            report.outcome = "rejected".into();
            report.reason = Some(r.0);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests;
