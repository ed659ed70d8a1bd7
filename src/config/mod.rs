//! Configuration: the TOML file, read into raw serde structs and validated into a typed
//! [`Config`].
//!
//! Owns every rule about what a valid configuration is and every default (design.md: probe every
//! 2 s, 1 s timeout, down after 3 failures, back after 5 successes and 5 min healthy, TTL 30 s).
//! Every error names the file, line, column and key and says what is expected
//! ([`ConfigError`]). It must not open sockets or touch the data directory; it reads only the
//! config file and the files it names (CA bundles, secrets and TSIG key files, the push
//! endpoint's certificate, which it checks by building the TLS acceptor).
//!
//! Plain data near the bottom of the crate: it imports only `util`, `net`, `tls` and its own
//! files. Every type another module is configured with is defined here (provider settings,
//! TSIG keys, IP sources, crawl limits) and given behaviour by that module.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_proto::rr::{LowerName, Name, Record, RecordType};
use serde::Deserialize;
use toml::Spanned;

use crate::util::{human, parse_duration};

mod api;
mod cx;
mod describe;
mod dns;
mod dnssec;
mod ip;
mod maintenance;
mod mirror;
mod notify;
mod provider;
mod proxy;
mod raw;
mod secondary;
mod site;
mod standby;
mod status_page;
#[cfg(test)]
mod tests;
mod tsig;
mod watcher;
pub use api::{ApiConfig, ApiToken, TokenScope, MIN_TOKEN_LEN};
use cx::{key_at, tidy_serde_message, Cx, R};
use dns::record_text;
pub use dnssec::{DnssecAlgorithm, DnssecConfig};
pub use ip::{DdnsRecord, IpConfig, Source, SourceKind};
pub use maintenance::{MaintenanceWindow, Occurrence, Recurrence};
pub use mirror::{Checks, Limits, MirrorConfig, Schedule};
pub use notify::{
    EmailConfig, EmailTls, GenericConfig, NotifyConfig, NotifyService, Severity, DEFAULT_EVENTS,
    EVENT_NAMES,
};
use provider::looks_like_secret;
pub use provider::{CloudflareConfig, PowerDnsConfig, Rfc2136Config, Route53Config};
pub use proxy::{ProxyConfig, SiteMode};
use raw::*;
pub use secondary::{PrimaryConfig, SecondaryConfig};
use site::origin_url;
pub use status_page::StatusPageConfig;
pub use tsig::{parse_bind_key, TsigKey};
pub use watcher::{WatcherConfig, DEFAULT_REFERENCES};

/// Where the daemon keeps its state when the config does not say.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/understudy";
/// Where the CLI looks for the config when neither `-c` nor `UNDERSTUDY_CONFIG` is given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/understudy/understudy.toml";

/// A configuration mistake, located in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Dotted path of the key, e.g. `sites[0].probe.interval`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            // Not about a place in the file (it could not be read at all).
            return write!(f, "{}: {}", self.file.display(), self.message);
        }
        let (file, line, column) = (self.file.display(), self.line, self.column);
        write!(f, "{file}:{line}:{column}: {}: {}", self.key, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub data_dir: PathBuf,
    pub providers: Vec<ProviderConfig>,
    pub dns: DnsConfig,
    /// Public-address discovery (dynamic DNS).
    pub ip: IpConfig,
    /// Names that simply follow the public address.
    pub ddns: Vec<DdnsRecord>,
    /// Things that are valid but worth a word (printed by `check-config` and at start).
    pub warnings: Vec<String>,
    /// Where each secret came from, by key (`providers[0].api_key`, `ip.push.password`).
    pub secret_sources: BTreeMap<String, SecretFrom>,
    pub api: ApiConfig,
    /// Set when this machine serves the standby copies (`[standby]`).
    pub standby: Option<StandbyConfig>,
    /// Where the operator is told what happened (`[[notify]]`).
    pub notify: Vec<NotifyConfig>,
    /// How the watcher checks its own links, and its heartbeat (`[watcher]`).
    pub watcher: WatcherConfig,
    /// The public status page (`[status_page]`), when configured.
    pub status_page: Option<StatusPageConfig>,
    pub sites: Vec<Site>,
}

#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// Addresses the built-in server answers on, UDP and TCP each.
    pub listen: Vec<SocketAddr>,
    /// TTL of the managed A/AAAA records (and the default for static ones).
    pub ttl: u32,
    /// How often each provider zone is read again, so a managed record changed there by hand is
    /// noticed and repaired (drift); also the bound on how long such an edit lasts.
    pub refresh: Duration,
    /// How long a change may take to show on a zone's authoritative servers (`verify`) before
    /// the reconciler reports it as not confirmed.
    pub verify_timeout: Duration,
    pub zones: Vec<ZoneConfig>,
    /// Nameservers that take the built-in zones by AXFR/IXFR and are sent NOTIFY.
    pub secondaries: Vec<SecondaryConfig>,
    /// Also sent NOTIFY (unsigned) on every change, without being allowed to transfer.
    pub also_notify: Vec<SocketAddr>,
    /// Primaries this server takes zones from (it serves them as their secondary).
    pub primaries: Vec<PrimaryConfig>,
}

#[derive(Debug, Clone)]
pub struct ZoneConfig {
    pub origin: Name,
    pub nameservers: Vec<Name>,
    pub hostmaster: Name,
    /// Records served as given; never touched by failover.
    pub records: Vec<Record>,
    /// Name of the external provider that holds this zone; `None`: the built-in server.
    pub provider: Option<String>,
    /// Authoritative servers asked directly to confirm a change (external zones).
    pub verify: Vec<SocketAddr>,
    /// Online DNSSEC signing (built-in zones only); `None`: served unsigned.
    pub dnssec: Option<DnssecConfig>,
}

/// The shortest password `[ip.push]` accepts, in characters: the endpoint faces the internet.
pub const MIN_PUSH_PASSWORD: usize = 12;

/// Where a secret came from, so `check-config` can print the key that gives it again
/// (`api_key_file = "/etc/..."`) without printing the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretFrom {
    Inline,
    File(PathBuf),
    Env(String),
}

/// A secret from the config, a file or the environment. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// An external DNS provider, by name.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub name: String,
    pub kind: ProviderKind,
    /// Timeout of each call to the provider.
    pub timeout: Duration,
}

/// Which provider, with its own settings (each provider builds itself from its part:
/// `Rfc2136::new(&Rfc2136Config, timeout)`).
#[derive(Debug, Clone)]
pub enum ProviderKind {
    Rfc2136(Rfc2136Config),
    PowerDns(PowerDnsConfig),
    Route53(Route53Config),
    Cloudflare(CloudflareConfig),
}

impl ProviderKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            ProviderKind::Rfc2136(_) => "rfc2136",
            ProviderKind::PowerDns(_) => "powerdns",
            ProviderKind::Cloudflare(_) => "cloudflare",
            ProviderKind::Route53(_) => "route53",
        }
    }
}

/// `standby.max_snapshot_age` by default: a daily crawl plus one that failed.
pub const DEFAULT_MAX_SNAPSHOT_AGE: Duration = Duration::from_secs(2 * 86_400);

/// `[standby]`: this machine is the standby; the daemon serves every site's snapshot.
#[derive(Debug, Clone)]
pub struct StandbyConfig {
    /// HTTP listeners (default `0.0.0.0:80`).
    pub listen: Vec<SocketAddr>,
    /// Insert a "read-only copy as of ..." notice at the top of HTML pages.
    pub banner: bool,
    /// HTTPS listeners (none by default): a certificate per site, chosen by SNI.
    pub https_listen: Vec<SocketAddr>,
    /// Readiness: a snapshot older than this is not good enough to fail over to (default 2 days:
    /// a daily crawl plus one that failed).
    pub max_snapshot_age: Duration,
    /// Query parameters a link may carry that no page depends on (newsletters, ads, social
    /// media): a URL not in the copy is looked up again without them (`standby::fallback`).
    /// Lower case; a name ending in `*` is a prefix. Default [`TRACKING_PARAMS`].
    pub tracking_params: Vec<String>,
    /// Certificates by ACME DNS-01 for every site without `[sites.tls]` files.
    pub acme: Option<AcmeConfig>,
}

/// `standby.tracking_params` by default: the click and campaign identifiers that analytics,
/// ad and mail tools add to links (Google, Meta, Microsoft, Mailchimp, HubSpot, Matomo, ...).
/// [`TRACKING_PARAMS`] as the owned list `StandbyConfig::tracking_params` holds.
pub fn default_tracking_params() -> Vec<String> {
    TRACKING_PARAMS.iter().map(|s| s.to_string()).collect()
}

pub const TRACKING_PARAMS: &[&str] = &[
    "utm_*",
    "fbclid",
    "gclid",
    "dclid",
    "gbraid",
    "wbraid",
    "gclsrc",
    "msclkid",
    "yclid",
    "twclid",
    "ttclid",
    "li_fat_id",
    "igshid",
    "mc_cid",
    "mc_eid",
    "_hsenc",
    "_hsmi",
    "mkt_tok",
    "_ga",
    "_gl",
    "mtm_*",
    "pk_*",
    "ref_src",
];

/// `[standby.acme]`.
#[derive(Debug, Clone)]
pub struct AcmeConfig {
    /// The CA's directory URL (default: Let's Encrypt's production directory).
    pub directory: String,
    /// `mailto:` addresses for the CA's expiry notices.
    pub contact: Vec<String>,
    /// A PEM root to trust for the CA's own HTTPS (a private or test CA); default: the system's.
    pub ca_file: Option<PathBuf>,
}

/// `[sites.tls]`: the standby serves this certificate for the site instead of an ACME one.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Site {
    /// Identifier used by the CLI and the state store (defaults to the domain).
    pub name: String,
    pub domain: Name,
    pub aliases: Vec<Name>,
    /// For `primary = "auto"`: `ip` is a placeholder (unspecified address) and the real one is
    /// the agreed public address of `primary_auto`'s family, known only at run time.
    pub primary: Endpoint,
    pub primary_auto: Option<crate::net::Family>,
    pub standby: Endpoint,
    pub probe: Probe,
    pub mirror: MirrorConfig,
    /// User-supplied certificate for the standby's HTTPS (else ACME, when configured).
    pub tls: Option<TlsFiles>,
    /// Scheduled maintenance windows of the primary (`crate::maintenance` keeps them).
    pub maintenance: Vec<MaintenanceWindow>,
    /// DNS mode (the default) or proxy mode.
    pub mode: SiteMode,
    /// Proxy mode's settings (`Some` exactly in proxy mode).
    pub proxy: Option<ProxyConfig>,
}

impl Site {
    /// The names whose A/AAAA records this site owns: the domain, then the aliases.
    pub fn names(&self) -> impl Iterator<Item = &Name> {
        std::iter::once(&self.domain).chain(self.aliases.iter())
    }

    /// The Host header and TLS server name used for probes: the domain without the final dot.
    pub fn host(&self) -> String {
        self.domain.to_ascii().trim_end_matches('.').to_string()
    }

    /// Every name as a lower-case host ("www.example.com", no trailing dot): domain first, then
    /// the aliases. What Host headers, SNI and certificates are matched against.
    pub fn hosts(&self) -> Vec<String> {
        self.names().map(crate::net::host_of).collect()
    }

    /// The site's public origin as visitors see it (`https://www.example.com/`, with the
    /// probe port when it is not the scheme's default). Snapshot keys start with it.
    pub fn origin(&self) -> url::Url {
        origin_url(&self.host(), self.probe.scheme, self.probe.port)
    }

    /// The public origins of the domain and every alias.
    pub fn origins(&self) -> Vec<url::Url> {
        self.names()
            .map(|n| {
                origin_url(
                    n.to_ascii().trim_end_matches('.'),
                    self.probe.scheme,
                    self.probe.port,
                )
            })
            .collect()
    }

    /// What a crawl of this site may fetch from: its origins and the mirror's extra hosts.
    pub fn crawl_origins(&self) -> Vec<url::Url> {
        let mut o = self.origins();
        o.extend(self.mirror.extra_origins.iter().cloned());
        o
    }

    pub fn record_type(&self) -> RecordType {
        match self.primary.ip {
            IpAddr::V4(_) => RecordType::A,
            IpAddr::V6(_) => RecordType::AAAA,
        }
    }
}

/// An address the site's records can point at, with the port probes use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: IpAddr,
    /// Port for probes when the config gave one in the address ("203.0.113.7:8443").
    pub port: Option<u16>,
}

impl Endpoint {
    pub fn probe_addr(&self, probe: &Probe) -> SocketAddr {
        SocketAddr::new(self.ip, self.port.unwrap_or(probe.port))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.ip, self.port) {
            (ip, None) => write!(f, "{ip}"),
            (IpAddr::V4(ip), Some(p)) => write!(f, "{ip}:{p}"),
            (IpAddr::V6(ip), Some(p)) => write!(f, "[{ip}]:{p}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
}

#[derive(Debug, Clone)]
pub struct Probe {
    pub scheme: Scheme,
    pub port: u16,
    pub method: Method,
    pub path: String,
    pub expect_status: StatusSet,
    pub body_contains: Option<String>,
    pub interval: Duration,
    /// The cadence while a primary is suspect: after a failed probe, or one still unanswered
    /// this long, until it is down or answers again (HAProxy's `fastinter`).
    pub fast_interval: Duration,
    pub timeout: Duration,
    pub failures_to_down: u32,
    pub successes_to_up: u32,
    pub hold_down: Duration,
    /// PEM file of the CA(s) that sign the origin's certificate, instead of the public roots.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (self-signed origins). The name is still sent as SNI.
    pub insecure: bool,
    /// The standby is an understudy on another machine: its probes ask its readiness report
    /// (`/.well-known/understudy/ready`, 200 only) instead of `path`, so a stale copy or a
    /// missing certificate there keeps the decision from failing over to it.
    pub standby_readiness: bool,
}

/// The set of HTTP statuses a probe accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet(pub Vec<Range<u16>>);

impl StatusSet {
    /// Every status from `first` to `last`, inclusive.
    pub fn between(first: u16, last: u16) -> Self {
        StatusSet(std::iter::once(first..last + 1).collect())
    }

    pub fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|r| r.contains(&status))
    }
}

impl fmt::Display for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|r| {
                if r.end == r.start + 1 {
                    r.start.to_string()
                } else {
                    format!("{}-{}", r.start, r.end - 1)
                }
            })
            .collect();
        f.write_str(&parts.join(", "))
    }
}

// ---------------------------------------------------------------- loading

/// Reads and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        key: "(file)".to_string(),
        message: format!("cannot read the config file: {e}"),
    })?;
    parse(path, &text)
}

/// Validates config text; `path` names the file in errors and anchors relative paths.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        // Its defaults would serve DNS on 0.0.0.0:53 for no zone and watch nothing.
        return Err(ConfigError {
            file: path.to_path_buf(),
            line: 1,
            column: 1,
            key: "(file)".to_string(),
            message: "the config file is empty: it names no [[sites]], [[ddns]] or [[dns.zones]]; start from the example in README.md (`understudy demo` needs no config)".to_string(),
        });
    }
    let cx = Cx {
        path,
        text,
        warnings: Default::default(),
        secret_sources: Default::default(),
    };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let key = key_at(text, span.start);
        cx.err_at(span.start, &key, &tidy_serde_message(e.message()))
    })?;
    cx.build(raw)
}

// ---------------------------------------------------------------- effective settings

impl Config {
    /// The site named `name` (or whose domain it is), as the CLI takes it.
    pub fn site(&self, name: &str) -> Option<&Site> {
        self.sites
            .iter()
            .find(|s| s.name == name || s.host() == name.trim_end_matches('.'))
    }

    /// The zone that holds `name`: the deepest configured zone containing it, as in DNS itself.
    pub fn zone_of(&self, name: &Name) -> Option<&ZoneConfig> {
        crate::net::deepest_zone(&self.dns.zones, |z| &z.origin, name)
    }
}
