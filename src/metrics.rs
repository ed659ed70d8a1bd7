//! Prometheus metrics, served at `GET /metrics` on the API listener (issue 14).
//!
//! One choice of library: `prometheus-client` (the Prometheus project's Rust client), whose
//! text encoder writes the OpenMetrics exposition format, which Prometheus, VictoriaMetrics and
//! Grafana Agent scrape (`Content-Type: application/openmetrics-text; version=1.0.0`). Names
//! follow the conventions: `understudy_` prefix, base units in the name (`_seconds`,
//! `_bytes`), counters end in `_total`.
//!
//! Two kinds of series:
//!
//! - **Counted where it happens** (process-wide, since this start): probe durations by site
//!   and server, failovers by direction, the outage-to-records-moved histogram, DNS publishes by
//!   zone, provider and outcome with their duration, public address changes, notifications by
//!   channel and outcome, DNS queries answered by the built-in server by response code.
//! - **Read at scrape time** from the controller's status ([`render`]): whether each server of
//!   each site answered its last probe (`understudy_site_up`), the site's phase (one series per
//!   phase, 1 for the current one), where its records point, certificate expiry times, and the
//!   last published crawl's pages, bytes and time (so the snapshot's age is `time() -` it).
//!
//! Label values are site, zone and channel names from the config: bounded by the config.

use std::sync::OnceLock;

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::decide::{Phase, Target};

/// The Content-Type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(String, String)>;
type Hist = Family<Labels, Histogram, fn() -> Histogram>;
type FGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// The series counted where things happen (module doc).
pub struct Metrics {
    probe_seconds: Hist,
    failovers: Family<Labels, Counter>,
    detection_seconds: Histogram,
    dns_publish_seconds: Hist,
    dns_publishes: Family<Labels, Counter>,
    address_changes: Family<Labels, Counter>,
    notifications: Family<Labels, Counter>,
    dns_queries: Family<Labels, Counter>,
    /// The query counters by response code (0 to 5, then any other), made once: the DNS
    /// server counts each query with one atomic add.
    dns_by_rcode: Vec<Counter>,
    crawl_pages: Family<Labels, Gauge>,
    crawl_bytes: Family<Labels, Gauge>,
    crawl_time: Family<Labels, FGauge>,
    /// Read at scrape time.
    site_up: Family<Labels, Gauge>,
    site_phase: Family<Labels, Gauge>,
    site_on_standby: Family<Labels, Gauge>,
    cert_expiry: Family<Labels, FGauge>,
    proxy_requests: Family<Labels, Counter>,
    registry: Registry,
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Probes take 1 ms to a timeout of seconds.
fn probe_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

/// A provider's write takes 10 ms to minutes (Route 53's propagation).
fn publish_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 15))
}

/// The response codes counted apart, by number; the last counts every other.
const RCODES: [&str; 7] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "other",
];

/// The process's metrics.
pub fn get() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Metrics {
        let m = Metrics {
            probe_seconds: Family::new_with_constructor(probe_histogram),
            failovers: Family::default(),
            // 250 ms to about 17 minutes.
            detection_seconds: Histogram::new(exponential_buckets(0.25, 2.0, 13)),
            dns_publish_seconds: Family::new_with_constructor(publish_histogram),
            dns_publishes: Family::default(),
            address_changes: Family::default(),
            notifications: Family::default(),
            dns_queries: Family::default(),
            dns_by_rcode: Vec::new(),
            crawl_pages: Family::default(),
            crawl_bytes: Family::default(),
            crawl_time: Family::default(),
            site_up: Family::default(),
            site_phase: Family::default(),
            site_on_standby: Family::default(),
            cert_expiry: Family::default(),
            proxy_requests: Family::default(),
            registry: Registry::with_prefix("understudy"),
        };
        let mut r = Registry::with_prefix("understudy");
        r.register_with_unit(
            "probe_duration",
            "How long each probe took, by site and server (primary, standby)",
            Unit::Seconds,
            m.probe_seconds.clone(),
        );
        r.register(
            "proxy_requests",
            "Requests to a proxied site, by who answered (origin, copy, refused)",
            m.proxy_requests.clone(),
        );
        r.register(
            "failovers",
            "Moves of a site's records, by direction (over, back, drained, released)",
            m.failovers.clone(),
        );
        r.register_with_unit(
            "failover_detection",
            "From a primary's first failed probe to its site's records moving to the standby",
            Unit::Seconds,
            m.detection_seconds.clone(),
        );
        r.register_with_unit(
            "dns_publish_duration",
            "How long a provider took to take a change (writes only), by zone and provider",
            Unit::Seconds,
            m.dns_publish_seconds.clone(),
        );
        r.register(
            "dns_publishes",
            "Provider passes that wrote, by zone, provider and outcome (published, unconfirmed, rejected, error)",
            m.dns_publishes.clone(),
        );
        r.register(
            "public_address_changes",
            "Changes of the agreed public address, by family",
            m.address_changes.clone(),
        );
        r.register(
            "notifications",
            "Notification tries, by channel and outcome (delivered, retried, refused, dropped)",
            m.notifications.clone(),
        );
        r.register(
            "dns_queries",
            "Queries the built-in DNS server answered, by response code",
            m.dns_queries.clone(),
        );
        r.register(
            "crawl_pages",
            "URLs in the site's last published snapshot",
            m.crawl_pages.clone(),
        );
        r.register_with_unit(
            "crawl",
            "Bytes received by the crawl that made the site's last published snapshot",
            Unit::Bytes,
            m.crawl_bytes.clone(),
        );
        r.register(
            "snapshot_published_timestamp_seconds",
            "When the site's last snapshot was published (Unix time; age = time() - this)",
            m.crawl_time.clone(),
        );
        r.register(
            "site_up",
            "1 if the server answered its last probe, by site and server",
            m.site_up.clone(),
        );
        r.register(
            "site_phase",
            "1 for the site's current phase, 0 for the others",
            m.site_phase.clone(),
        );
        r.register(
            "site_on_standby",
            "1 while the site's records point at the standby",
            m.site_on_standby.clone(),
        );
        r.register(
            "certificate_expiry_timestamp_seconds",
            "When the certificate a server presented to the last probe expires, by site and server",
            m.cert_expiry.clone(),
        );
        let dns_by_rcode = RCODES
            .iter()
            .map(|w| {
                m.dns_queries
                    .get_or_create(&labels(&[("rcode", w)]))
                    .clone()
            })
            .collect();
        Metrics {
            registry: r,
            dns_by_rcode,
            ..m
        }
    }

    pub fn probe(&self, site: &str, side: Target, took: std::time::Duration) {
        let server = side_word(side);
        self.probe_seconds
            .get_or_create(&labels(&[("site", site), ("server", server)]))
            .observe(took.as_secs_f64());
    }

    /// A request to a proxied site answered by `by`: "origin", "copy" or "refused".
    pub fn proxy_request(&self, site: &str, by: &str) {
        self.proxy_requests
            .get_or_create(&labels(&[("site", site), ("answered_by", by)]))
            .inc();
    }

    pub fn failover(&self, site: &str, direction: &str) {
        self.failovers
            .get_or_create(&labels(&[("site", site), ("direction", direction)]))
            .inc();
    }

    pub fn detection(&self, ms: u64) {
        self.detection_seconds.observe(ms as f64 / 1000.0);
    }

    /// One provider pass that wrote (`took`: the write and its verification).
    pub fn publish(&self, zone: &str, provider: &str, outcome: &str, took: std::time::Duration) {
        let l = labels(&[("zone", zone), ("provider", provider)]);
        self.dns_publish_seconds
            .get_or_create(&l)
            .observe(took.as_secs_f64());
        let mut l = l;
        l.push(("outcome".into(), outcome.into()));
        self.dns_publishes.get_or_create(&l).inc();
    }

    pub fn address_change(&self, family: &str) {
        self.address_changes
            .get_or_create(&labels(&[("family", family)]))
            .inc();
    }

    pub fn notification(&self, channel: &str, outcome: &str) {
        self.notifications
            .get_or_create(&labels(&[("channel", channel), ("outcome", outcome)]))
            .inc();
    }

    /// One query answered with response code `rcode` (RFC 1035 §4.1.1's numbers).
    pub fn dns_query(&self, rcode: u16) {
        let i = usize::from(rcode).min(RCODES.len() - 1);
        self.dns_by_rcode[i].inc();
    }

    /// A snapshot was published: its size, and when (Unix ms).
    pub fn crawl(&self, site: &str, pages: u64, bytes: u64, at: u64) {
        let l = labels(&[("site", site)]);
        self.crawl_pages.get_or_create(&l).set(pages as i64);
        self.crawl_bytes.get_or_create(&l).set(bytes as i64);
        self.crawl_time.get_or_create(&l).set(at as f64 / 1000.0);
    }
}

fn side_word(side: Target) -> &'static str {
    match side {
        Target::Primary => "primary",
        Target::Standby => "standby",
    }
}

/// What a scrape reads of one site (from the controller's status; this module sits below the
/// controller, so the API makes these).
pub struct SiteView<'a> {
    pub site: &'a str,
    pub phase: Phase,
    pub target: Target,
    /// The last probe of the primary and of the standby: answered, certificate expiry (ms).
    pub primary: Option<(bool, Option<u64>)>,
    pub standby: Option<(bool, Option<u64>)>,
}

/// The exposition: the scrape-time series set from `sites`, then every series.
pub fn render(sites: &[SiteView<'_>]) -> String {
    let m = get();
    m.site_up.clear();
    m.site_phase.clear();
    m.site_on_standby.clear();
    m.cert_expiry.clear();
    for s in sites {
        for (server, probe) in [("primary", s.primary), ("standby", s.standby)] {
            let Some((ok, expires)) = probe else {
                continue;
            };
            let l = labels(&[("site", s.site), ("server", server)]);
            m.site_up.get_or_create(&l).set(i64::from(ok));
            if let Some(exp) = expires {
                m.cert_expiry.get_or_create(&l).set(exp as f64 / 1000.0);
            }
        }
        for phase in Phase::ALL {
            m.site_phase
                .get_or_create(&labels(&[("site", s.site), ("phase", phase.as_str())]))
                .set(i64::from(phase == s.phase));
        }
        m.site_on_standby
            .get_or_create(&labels(&[("site", s.site)]))
            .set(i64::from(s.target == Target::Standby));
    }
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = encode_registry(&mut out, &m.registry);
    let _ = encode_eof(&mut out);
    out
}
