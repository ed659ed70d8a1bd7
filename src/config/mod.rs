//! Configuration: the TOML file, read into raw serde structs and validated into a typed
//! [`Config`].
//!
//! Owns every rule about what a valid configuration is and every default (design.md: probe every
//! 2 s, 1 s timeout, down after 3 failures, back after 5 successes and 5 min healthy, TTL 30 s).
//! Every error names the file, line, column and key and says what is expected
//! ([`ConfigError`]). It must not open sockets or touch the data directory; it only reads the
//! config file and, for `ca_file`, the CA bundle it names.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_proto::rr::{LowerName, Name, Record, RecordType};
use serde::Deserialize;
use toml::Spanned;

use crate::util::{human_duration, parse_duration};

mod ip;
mod mirror;
pub use ip::{DdnsRecord, IpConfig};
pub use mirror::{MirrorConfig, Schedule};

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
    pub zones: Vec<Zone>,
}

#[derive(Debug, Clone)]
pub struct Zone {
    pub origin: Name,
    pub nameservers: Vec<Name>,
    pub hostmaster: Name,
    /// Records served as given; never touched by failover.
    pub records: Vec<Record>,
    /// Name of the external provider that holds this zone; `None`: the built-in server.
    pub provider: Option<String>,
    /// Authoritative servers asked directly to confirm a change (external zones).
    pub verify: Vec<SocketAddr>,
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

#[derive(Debug, Clone)]
pub enum ProviderKind {
    Rfc2136 {
        server: SocketAddr,
        key: Option<crate::dns::provider::rfc2136::TsigKey>,
    },
    PowerDns {
        url: String,
        server_id: String,
        api_key: Secret,
    },
    Route53(crate::dns::provider::route53::Settings),
    Cloudflare {
        endpoint: String,
        api_token: Secret,
        zone_id: Option<String>,
        /// None: keep what existing records have (new ones: not proxied).
        proxied: Option<bool>,
    },
}

impl ProviderKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            ProviderKind::Rfc2136 { .. } => "rfc2136",
            ProviderKind::PowerDns { .. } => "powerdns",
            ProviderKind::Cloudflare { .. } => "cloudflare",
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
    /// Certificates by ACME DNS-01 for every site without `[sites.tls]` files.
    pub acme: Option<AcmeConfig>,
}

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
pub struct ApiConfig {
    /// Loopback address of the control API used by `status`, `drain` and `release`.
    pub listen: SocketAddr,
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
    pub primary_auto: Option<crate::ip::Family>,
    pub standby: Endpoint,
    pub probe: Probe,
    pub mirror: MirrorConfig,
    /// User-supplied certificate for the standby's HTTPS (else ACME, when configured).
    pub tls: Option<TlsFiles>,
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
        self.names()
            .map(|n| n.to_ascii().trim_end_matches('.').to_ascii_lowercase())
            .collect()
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

    pub fn policy(&self) -> crate::decide::Policy {
        crate::decide::Policy {
            failures_to_down: self.probe.failures_to_down,
            successes_to_up: self.probe.successes_to_up,
            hold_down: self.probe.hold_down.as_millis() as u64,
            // Three missed standby probes (plus the time one may take) and we stop trusting
            // what we knew.
            standby_fresh: (self.probe.interval * 3 + self.probe.timeout).as_millis() as u64,
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

// ---------------------------------------------------------------- raw form (what serde sees)

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    data_dir: Option<Spanned<String>>,
    #[serde(default)]
    providers: Vec<Spanned<RawProvider>>,
    ip: Option<Spanned<ip::RawIp>>,
    #[serde(default)]
    ddns: Vec<Spanned<ip::RawDdns>>,
    dns: Option<Spanned<RawDns>>,
    api: Option<Spanned<RawApi>>,
    standby: Option<Spanned<RawStandby>>,
    #[serde(default)]
    sites: Vec<Spanned<RawSite>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStandby {
    listen: Option<Spanned<Vec<Spanned<String>>>>,
    https_listen: Option<Spanned<Vec<Spanned<String>>>>,
    banner: Option<Spanned<bool>>,
    max_snapshot_age: Option<Spanned<DurationValue>>,
    acme: Option<Spanned<RawAcme>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAcme {
    directory: Option<Spanned<String>>,
    #[serde(default)]
    contact: Vec<Spanned<String>>,
    ca_file: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<Spanned<String>>,
    key_file: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDns {
    listen: Option<Spanned<Vec<Spanned<String>>>>,
    ttl: Option<Spanned<i64>>,
    refresh: Option<Spanned<DurationValue>>,
    #[serde(default)]
    zones: Vec<Spanned<RawZone>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZone {
    name: Option<Spanned<String>>,
    provider: Option<Spanned<String>>,
    verify: Option<Vec<Spanned<String>>>,
    nameservers: Option<Vec<Spanned<String>>>,
    hostmaster: Option<Spanned<String>>,
    #[serde(default)]
    records: Vec<Spanned<String>>,
}

/// Every key any provider type takes; which apply to which type is checked in `build_provider`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    name: Option<Spanned<String>>,
    #[serde(rename = "type")]
    kind: Option<Spanned<String>>,
    timeout: Option<Spanned<DurationValue>>,
    // rfc2136
    server: Option<Spanned<String>>,
    tsig_key_file: Option<Spanned<String>>,
    tsig_key_name: Option<Spanned<String>>,
    tsig_algorithm: Option<Spanned<String>>,
    tsig_secret: Option<Spanned<String>>,
    tsig_secret_file: Option<Spanned<String>>,
    tsig_secret_env: Option<Spanned<String>>,
    // powerdns
    url: Option<Spanned<String>>,
    server_id: Option<Spanned<String>>,
    api_key: Option<Spanned<String>>,
    api_key_file: Option<Spanned<String>>,
    api_key_env: Option<Spanned<String>>,
    // cloudflare
    endpoint: Option<Spanned<String>>,
    api_token: Option<Spanned<String>>,
    api_token_file: Option<Spanned<String>>,
    api_token_env: Option<Spanned<String>>,
    zone_id: Option<Spanned<String>>,
    proxied: Option<Spanned<bool>>,
    // route53
    hosted_zone_id: Option<Spanned<String>>,
    region: Option<Spanned<String>>,
    profile: Option<Spanned<String>>,
    access_key_id: Option<Spanned<String>>,
    secret_access_key: Option<Spanned<String>>,
    secret_access_key_file: Option<Spanned<String>>,
    secret_access_key_env: Option<Spanned<String>>,
    confirm_timeout: Option<Spanned<DurationValue>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    listen: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    name: Option<Spanned<String>>,
    domain: Option<Spanned<String>>,
    #[serde(default)]
    aliases: Vec<Spanned<String>>,
    primary: Option<Spanned<String>>,
    standby: Option<Spanned<String>>,
    probe: Option<Spanned<RawProbe>>,
    mirror: Option<Spanned<mirror::RawMirror>>,
    tls: Option<Spanned<RawTls>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawProbe {
    scheme: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
    method: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    expect_status: Option<Spanned<Vec<Spanned<StatusItem>>>>,
    body_contains: Option<Spanned<String>>,
    interval: Option<Spanned<DurationValue>>,
    timeout: Option<Spanned<DurationValue>>,
    failures_to_down: Option<Spanned<i64>>,
    successes_to_up: Option<Spanned<i64>>,
    hold_down: Option<Spanned<DurationValue>>,
    ca_file: Option<Spanned<String>>,
    insecure: Option<Spanned<bool>>,
    standby_readiness: Option<Spanned<bool>>,
}

/// A duration as written: a string with a unit ("2s"); a bare number is read only to be refused
/// with a clear message.
#[derive(Deserialize)]
#[serde(untagged)]
enum DurationValue {
    Text(String),
    Int(i64),
    Float(f64),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StatusItem {
    Code(i64),
    Text(String),
}

/// A TOML basic string (quotes and escapes as TOML wants them, which Rust's `{:?}` does not
/// always give: `\u{e9}` is not TOML).
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A static record in zone-file form, as `records = [...]` takes it: TXT strings quoted and
/// escaped, so `"two words"` stays one string and `"two" "words"` stays two.
fn record_text(r: &Record) -> String {
    let data = match &r.data {
        hickory_proto::rr::RData::TXT(t) => t
            .txt_data
            .iter()
            .map(|chunk| {
                let mut q = String::from("\"");
                for &b in chunk.iter() {
                    match b {
                        b'"' => q.push_str("\\\""),
                        b'\\' => q.push_str("\\\\"),
                        0x20..=0x7e => q.push(b as char),
                        _ => q.push_str(&format!("\\{b:03}")),
                    }
                }
                q.push('"');
                q
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    };
    format!("{} {} {} {data}", r.name, r.ttl, r.record_type())
}

/// Whether a value given where a file path belongs looks like a secret instead: PEM text,
/// anything with whitespace, base64 padding, or a long run of key characters with no `.`
/// and no leading `/`, `./`, `../` or `~`. A false alarm only hides a file name from an error.
pub(crate) fn looks_like_secret(value: &str) -> bool {
    let v = value.trim();
    if v.contains("-----BEGIN") || v.contains(char::is_whitespace) || v.ends_with('=') {
        return true;
    }
    let path_like = v.starts_with('/')
        || v.starts_with("./")
        || v.starts_with("../")
        || v.starts_with('~')
        || v.contains('.');
    !path_like
        && v.len() >= 16
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '_' | '-' | ':'))
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

struct Cx<'a> {
    path: &'a Path,
    text: &'a str,
    /// Located warnings (`file:line:col: key: message`), for what is allowed but likely wrong.
    warnings: std::cell::RefCell<Vec<String>>,
    /// Where each secret came from, by its key (`providers[0].api_key`).
    secret_sources: std::cell::RefCell<BTreeMap<String, SecretFrom>>,
}

type R<T> = Result<T, ConfigError>;

impl Cx<'_> {
    fn err_at(&self, offset: usize, key: &str, message: &str) -> ConfigError {
        let (line, column) = line_col(self.text, offset);
        ConfigError {
            file: self.path.to_path_buf(),
            line,
            column,
            key: key.to_string(),
            message: message.to_string(),
        }
    }

    fn err<T>(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> R<T> {
        Err(self.err_at(span.start, key, &message.into()))
    }

    /// Records a warning located like an error; `check-config` prints it and the daemon logs it.
    fn warn(&self, span: Range<usize>, key: &str, message: impl Into<String>) {
        let e = self.err_at(span.start, key, &message.into());
        self.warnings.borrow_mut().push(e.to_string());
    }

    /// Reads the file a `*_file` key names. When it cannot be read and the value does not look
    /// like a path but like a secret pasted in its place, the error says so without echoing it
    /// (design.md: no secret is ever printed) and names `instead`, the key that takes a secret.
    fn read_named_file(&self, v: &Spanned<String>, key: &str, instead: Option<&str>) -> R<String> {
        let path = self.resolve_path(v.get_ref());
        std::fs::read_to_string(&path).or_else(|e| match (looks_like_secret(v.get_ref()), instead) {
            (true, Some(other)) => self.err(
                v.span(),
                key,
                format!(
                    "cannot read the file this key names, and its value looks like a secret rather than a path (not shown); \
                     put the secret in a file and give its path here, or name an environment variable that holds it with `{other}`"
                ),
            ),
            (true, None) => self.err(
                v.span(),
                key,
                "cannot read the file this key names, and its value looks like a secret rather than a path (not shown); give the path of a file",
            ),
            (false, _) => self.err(v.span(), key, format!("cannot read {}: {e}", path.display())),
        })
    }

    fn resolve_path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.path.parent().unwrap_or(Path::new(".")).join(p)
        }
    }

    fn build(&self, raw: RawConfig) -> R<Config> {
        let data_dir = match &raw.data_dir {
            Some(d) if d.get_ref().trim().is_empty() => {
                return self.err(
                    d.span(),
                    "data_dir",
                    "must not be empty: a directory for the state database",
                )
            }
            Some(d) => self.resolve_path(d.get_ref()),
            None => PathBuf::from(DEFAULT_DATA_DIR),
        };
        let (dns_raw, dns_span) = match raw.dns {
            Some(d) => {
                let span = d.span();
                (d.into_inner(), span)
            }
            None => (
                RawDns {
                    listen: None,
                    ttl: None,
                    refresh: None,
                    zones: vec![],
                },
                0..0,
            ),
        };
        let mut providers: Vec<ProviderConfig> = vec![];
        for (i, p) in raw.providers.into_iter().enumerate() {
            let name_span = p
                .get_ref()
                .name
                .as_ref()
                .map(|n| n.span())
                .unwrap_or(p.span());
            let built = self.build_provider(i, p)?;
            if providers.iter().any(|o| o.name == built.name) {
                return self.err(
                    name_span,
                    &format!("providers[{i}].name"),
                    format!("provider name `{}` is used twice", built.name),
                );
            }
            providers.push(built);
        }
        let dns = self.build_dns(dns_raw, dns_span, &providers)?;
        let api = self.build_api(raw.api)?;
        let standby = match raw.standby {
            None => None,
            Some(st) => Some(self.build_standby(st)?),
        };
        let ip = self.build_ip(raw.ip)?;

        let mut sites = Vec::new();
        let mut names_owned: HashMap<LowerName, String> = HashMap::new();
        for (i, s) in raw.sites.into_iter().enumerate() {
            let name_span = s
                .get_ref()
                .name
                .as_ref()
                .or(s.get_ref().domain.as_ref())
                .map(|n| n.span())
                .unwrap_or(s.span());
            let site = self.build_site(i, s, &dns, &ip, &mut names_owned)?;
            if let Some(prev) = sites.iter().find(|p: &&Site| p.name == site.name) {
                return self.err(
                    name_span,
                    &format!("sites[{i}].name"),
                    format!(
                        "site name `{}` is used twice (also by the site for {})",
                        site.name, prev.domain
                    ),
                );
            }
            sites.push(site);
        }
        let ddns = self.build_ddns(raw.ddns, &dns, &ip, &mut names_owned)?;
        let warnings = self.warnings.take();
        let secret_sources = self.secret_sources.take();
        Ok(Config {
            secret_sources,
            path: self.path.to_path_buf(),
            data_dir,
            providers,
            dns,
            ip,
            ddns,
            warnings,
            api,
            standby,
            sites,
        })
    }

    /// A list of listen addresses (`key`), `default` when absent; never empty.
    fn listen_list(
        &self,
        raw: Option<Spanned<Vec<Spanned<String>>>>,
        key: &str,
        default: &str,
    ) -> R<Vec<SocketAddr>> {
        let Some(l) = raw else {
            return Ok(vec![default.parse().expect("valid literal")]);
        };
        if l.get_ref().is_empty() {
            return self.err(
                l.span(),
                key,
                format!("must list at least one address, e.g. [\"{default}\"]"),
            );
        }
        let mut out = vec![];
        for (i, a) in l.into_inner().into_iter().enumerate() {
            out.push(a.get_ref().parse::<SocketAddr>().or_else(|_| {
                self.err(
                    a.span(),
                    &format!("{key}[{i}]"),
                    format!(
                        "`{}` is not an address with a port, e.g. \"{default}\"",
                        a.get_ref()
                    ),
                )
            })?);
        }
        Ok(out)
    }

    fn build_dns(
        &self,
        raw: RawDns,
        span: Range<usize>,
        providers: &[ProviderConfig],
    ) -> R<DnsConfig> {
        let listen = self.listen_list(raw.listen, "dns.listen", "0.0.0.0:53")?;
        let ttl = match raw.ttl {
            None => 30,
            Some(t) => match u32::try_from(*t.get_ref()) {
                Ok(v @ 1..=86_400) => v,
                _ => {
                    return self.err(
                        t.span(),
                        "dns.ttl",
                        format!(
                            "{} is out of range: a TTL in seconds from 1 to 86400 (default 30)",
                            t.get_ref()
                        ),
                    )
                }
            },
        };
        let mut zones: Vec<Zone> = vec![];
        for (i, z) in raw.zones.into_iter().enumerate() {
            let zspan = z.span();
            let z = z.into_inner();
            let key = format!("dns.zones[{i}]");
            let Some(name) = z.name else {
                return self.err(
                    zspan,
                    &key,
                    "missing key `name`: the zone's domain, e.g. name = \"example.com\"",
                );
            };
            let origin = self.dns_name(&name, &format!("{key}.name"))?;
            if zones.iter().any(|o| o.origin == origin) {
                return self.err(
                    name.span(),
                    &format!("{key}.name"),
                    format!("zone `{}` is configured twice", name.get_ref()),
                );
            }
            let nameservers = match &z.nameservers {
                None => vec![Name::from_ascii("ns1")
                    .expect("valid")
                    .append_domain(&origin)
                    .expect("short")],
                Some(list) => list
                    .iter()
                    .enumerate()
                    .map(|(j, n)| self.dns_name(n, &format!("{key}.nameservers[{j}]")))
                    .collect::<R<Vec<_>>>()?,
            };
            let hostmaster = match &z.hostmaster {
                None => Name::from_ascii("hostmaster")
                    .expect("valid")
                    .append_domain(&origin)
                    .expect("short"),
                Some(h) => self.dns_name(
                    &Spanned::new(h.span(), h.get_ref().replacen('@', ".", 1)),
                    &format!("{key}.hostmaster"),
                )?,
            };
            let mut records = vec![];
            for (j, r) in z.records.iter().enumerate() {
                records.push(self.static_record(
                    r,
                    &origin,
                    ttl,
                    &format!("{key}.records[{j}]"),
                )?);
            }
            let provider = match &z.provider {
                None => None,
                Some(p) if p.get_ref() == "builtin" => None,
                Some(p) => {
                    let Some(pc) = providers.iter().find(|c| &c.name == p.get_ref()) else {
                        let known: Vec<&str> = providers.iter().map(|c| c.name.as_str()).collect();
                        return self.err(
                            p.span(),
                            &format!("{key}.provider"),
                            format!(
                                "no provider named `{}` (configured: {}; or \"builtin\" for the built-in server)",
                                p.get_ref(),
                                if known.is_empty() { "none".to_string() } else { known.join(", ") }
                            ),
                        );
                    };
                    if let Some(r) = z.records.first() {
                        return self.err(r.span(), &format!("{key}.records"), "static records are served by the built-in server only; this zone is held by an external provider, whose other records understudy never touches");
                    }
                    if let Some(h) = &z.hostmaster {
                        return self.err(
                            h.span(),
                            &format!("{key}.hostmaster"),
                            "applies to zones served by the built-in server only; the provider keeps this zone's SOA",
                        );
                    }
                    if let Some(n) = z.nameservers.as_ref().and_then(|n| n.first()) {
                        return self.err(
                            n.span(),
                            &format!("{key}.nameservers"),
                            "applies to zones served by the built-in server only; the provider keeps this zone's NS records",
                        );
                    }
                    Some(pc.name.clone())
                }
            };
            let verify = match (
                &z.verify,
                providers
                    .iter()
                    .find(|c| Some(&c.name) == provider.as_ref()),
            ) {
                (Some(list), _) => list
                    .iter()
                    .enumerate()
                    .map(|(j, v)| {
                        v.get_ref().parse::<SocketAddr>().or_else(|_| {
                            self.err(
                                v.span(),
                                &format!("{key}.verify[{j}]"),
                                format!(
                                    "`{}` is not an address with a port, e.g. \"192.0.2.53:53\"",
                                    v.get_ref()
                                ),
                            )
                        })
                    })
                    .collect::<R<Vec<_>>>()?,
                (
                    None,
                    Some(ProviderConfig {
                        kind: ProviderKind::Rfc2136 { server, .. },
                        ..
                    }),
                ) => vec![*server],
                (None, _) => vec![],
            };
            if provider.is_none() {
                if let Some(outer) = zones.iter().find(|o| {
                    o.provider.is_none() && (o.origin.zone_of(&origin) || origin.zone_of(&o.origin))
                }) {
                    let (parent, child) = if outer.origin.zone_of(&origin) {
                        (&outer.origin, &origin)
                    } else {
                        (&origin, &outer.origin)
                    };
                    return self.err(
                        name.span(),
                        &format!("{key}.name"),
                        format!(
                            "zones {parent} and {child} are both served by the built-in server and one lies inside the other: \
                             the built-in server answers every name under {child} from that zone, so the records {parent} has there \
                             would never be served; put them in one zone"
                        ),
                    );
                }
                for (j, ns) in nameservers.iter().enumerate() {
                    let has_address = records.iter().any(|r: &Record| {
                        &r.name == ns
                            && matches!(
                                r.record_type(),
                                hickory_proto::rr::RecordType::A
                                    | hickory_proto::rr::RecordType::AAAA
                            )
                    });
                    if origin.zone_of(ns) && !has_address {
                        let (nspan, nkey) = match &z.nameservers {
                            Some(list) => (list[j].span(), format!("{key}.nameservers[{j}]")),
                            None => (name.span(), format!("{key}.nameservers")),
                        };
                        let label = ns.to_string();
                        let short = label
                            .strip_suffix(&format!(".{origin}"))
                            .unwrap_or(&label)
                            .to_string();
                        self.warn(
                            nspan,
                            &nkey,
                            format!(
                                "the nameserver {ns} is inside the zone but has no A or AAAA record in it, so resolvers that follow \
                                 the delegation cannot reach it (a lame delegation); add a record like \"{short} A 203.0.113.7\" \
                                 (this server's public address), or list nameservers that resolve"
                            ),
                        );
                    }
                }
            }
            zones.push(Zone {
                origin,
                nameservers,
                hostmaster,
                records,
                provider,
                verify,
            });
        }
        let _ = span;
        let refresh = self.duration(
            &raw.refresh,
            "dns.refresh",
            Duration::from_secs(60),
            Duration::from_secs(1),
        )?;
        Ok(DnsConfig {
            listen,
            ttl,
            refresh,
            zones,
        })
    }

    fn static_record(&self, r: &Spanned<String>, origin: &Name, ttl: u32, key: &str) -> R<Record> {
        use hickory_proto::serialize::txt::Parser;
        let text = r.get_ref();
        if text.contains('\n') || text.trim_start().starts_with('$') {
            return self.err(
                r.span(),
                key,
                "one record per string, in zone-file form like \"www 300 A 192.0.2.1\"",
            );
        }
        let zone_text = format!("$TTL {ttl}\n{text}\n");
        let parsed = Parser::new(zone_text, None, Some(origin.clone())).parse();
        let records: Vec<Record> = match parsed {
            Ok((_, sets)) => sets
                .into_values()
                .flat_map(|s| s.records_without_rrsigs().cloned().collect::<Vec<_>>())
                .collect(),
            Err(e) => {
                return self.err(
                    r.span(),
                    key,
                    format!("`{text}` is not a zone-file record like \"www 300 A 192.0.2.1\": {e}"),
                )
            }
        };
        match records.as_slice() {
            [one] if !origin.zone_of(&one.name) => self.err(r.span(), key, format!("{} is outside the zone {}", one.name, origin)),
            [one] if one.record_type() == RecordType::SOA => self.err(
                r.span(),
                key,
                "the SOA record is made by understudy (its serial changes with every update); set nameservers and hostmaster instead",
            ),
            [one] => Ok(one.clone()),
            _ => self.err(r.span(), key, format!("`{text}` must be exactly one record")),
        }
    }

    /// The dotted key a secret was given with (`ip.push.password_file`), for errors about it.
    fn secret_key_given(
        &self,
        base: &str,
        key: &str,
        given: [&Option<Spanned<String>>; 3],
    ) -> String {
        let suffix = ["", "_file", "_env"]
            .into_iter()
            .zip(given)
            .find(|(_, v)| v.is_some())
            .map(|(s, _)| s)
            .unwrap_or("");
        format!("{base}.{key}{suffix}")
    }

    /// One secret from `value`, `<key>_file` or `<key>_env` (at most one of them).
    fn secret(
        &self,
        key: &str,
        value: &Option<Spanned<String>>,
        file: &Option<Spanned<String>>,
        env: &Option<Spanned<String>>,
        base: &str,
    ) -> R<Option<(Secret, Range<usize>)>> {
        let given: Vec<(&str, &Spanned<String>)> = [("", value), ("_file", file), ("_env", env)]
            .into_iter()
            .filter_map(|(suffix, v)| v.as_ref().map(|v| (suffix, v)))
            .collect();
        match given.as_slice() {
            [] => Ok(None),
            [(suffix, v)] => {
                let k = format!("{base}.{key}{suffix}");
                let (text, from) = match *suffix {
                    "" => (v.get_ref().clone(), SecretFrom::Inline),
                    "_file" => (
                        self.read_named_file(v, &k, Some(&format!("{key}_env")))?
                            .trim()
                            .to_string(),
                        SecretFrom::File(self.resolve_path(v.get_ref())),
                    ),
                    _ => (
                        std::env::var(v.get_ref()).or_else(|_| {
                            self.err(
                                v.span(),
                                &k,
                                format!("the environment variable {} is not set", v.get_ref()),
                            )
                        })?,
                        SecretFrom::Env(v.get_ref().clone()),
                    ),
                };
                self.secret_sources
                    .borrow_mut()
                    .insert(format!("{base}.{key}"), from);
                if text.trim().is_empty() {
                    return self.err(v.span(), &k, "the secret is empty");
                }
                Ok(Some((Secret(text), v.span())))
            }
            [_, (suffix, v), ..] => self.err(
                v.span(),
                &format!("{base}.{key}{suffix}"),
                format!("give only one of {key}, {key}_file and {key}_env"),
            ),
        }
    }

    fn build_provider(&self, i: usize, raw: Spanned<RawProvider>) -> R<ProviderConfig> {
        let span = raw.span();
        let p = raw.into_inner();
        let base = format!("providers[{i}]");
        let Some(name) = &p.name else {
            return self.err(
                span,
                &base,
                "missing key `name`: how zones refer to this provider, e.g. name = \"bind\"",
            );
        };
        let Some(kind) = &p.kind else {
            return self.err(span, &base, "missing key `type`: one of \"rfc2136\", \"powerdns\", \"cloudflare\" or \"route53\"");
        };
        let timeout = self.duration(
            &p.timeout,
            &format!("{base}.timeout"),
            Duration::from_secs(10),
            Duration::from_millis(100),
        )?;
        // Keys that belong to each type; any other key that is set is an error.
        let set: Vec<(&str, Range<usize>)> = [
            ("server", p.server.as_ref().map(|v| v.span())),
            ("tsig_key_file", p.tsig_key_file.as_ref().map(|v| v.span())),
            ("tsig_key_name", p.tsig_key_name.as_ref().map(|v| v.span())),
            (
                "tsig_algorithm",
                p.tsig_algorithm.as_ref().map(|v| v.span()),
            ),
            ("tsig_secret", p.tsig_secret.as_ref().map(|v| v.span())),
            (
                "tsig_secret_file",
                p.tsig_secret_file.as_ref().map(|v| v.span()),
            ),
            (
                "tsig_secret_env",
                p.tsig_secret_env.as_ref().map(|v| v.span()),
            ),
            ("url", p.url.as_ref().map(|v| v.span())),
            ("server_id", p.server_id.as_ref().map(|v| v.span())),
            ("api_key", p.api_key.as_ref().map(|v| v.span())),
            ("api_key_file", p.api_key_file.as_ref().map(|v| v.span())),
            ("api_key_env", p.api_key_env.as_ref().map(|v| v.span())),
            ("endpoint", p.endpoint.as_ref().map(|v| v.span())),
            ("api_token", p.api_token.as_ref().map(|v| v.span())),
            (
                "api_token_file",
                p.api_token_file.as_ref().map(|v| v.span()),
            ),
            ("api_token_env", p.api_token_env.as_ref().map(|v| v.span())),
            ("zone_id", p.zone_id.as_ref().map(|v| v.span())),
            ("proxied", p.proxied.as_ref().map(|v| v.span())),
            (
                "hosted_zone_id",
                p.hosted_zone_id.as_ref().map(|v| v.span()),
            ),
            ("region", p.region.as_ref().map(|v| v.span())),
            ("profile", p.profile.as_ref().map(|v| v.span())),
            ("access_key_id", p.access_key_id.as_ref().map(|v| v.span())),
            (
                "secret_access_key",
                p.secret_access_key.as_ref().map(|v| v.span()),
            ),
            (
                "secret_access_key_file",
                p.secret_access_key_file.as_ref().map(|v| v.span()),
            ),
            (
                "secret_access_key_env",
                p.secret_access_key_env.as_ref().map(|v| v.span()),
            ),
            (
                "confirm_timeout",
                p.confirm_timeout.as_ref().map(|v| v.span()),
            ),
        ]
        .into_iter()
        .filter_map(|(k, s)| s.map(|s| (k, s)))
        .collect();
        const TYPES: &str = "\"rfc2136\", \"powerdns\", \"cloudflare\" or \"route53\"";
        let allowed: &[&str] = match kind.get_ref().as_str() {
            "rfc2136" => &[
                "server",
                "tsig_key_file",
                "tsig_key_name",
                "tsig_algorithm",
                "tsig_secret",
                "tsig_secret_file",
                "tsig_secret_env",
            ],
            "powerdns" => &["url", "server_id", "api_key", "api_key_file", "api_key_env"],
            "cloudflare" => &[
                "endpoint",
                "api_token",
                "api_token_file",
                "api_token_env",
                "zone_id",
                "proxied",
            ],
            "route53" => &[
                "endpoint",
                "hosted_zone_id",
                "region",
                "profile",
                "access_key_id",
                "secret_access_key",
                "secret_access_key_file",
                "secret_access_key_env",
                "confirm_timeout",
            ],
            other => {
                return self.err(
                    kind.span(),
                    &format!("{base}.type"),
                    format!("`{other}` is not a provider type: expected {TYPES}"),
                )
            }
        };
        if let Some((k, s)) = set.iter().find(|(k, _)| !allowed.contains(k)) {
            return self.err(
                s.clone(),
                &format!("{base}.{k}"),
                format!("does not apply to type = \"{}\"", kind.get_ref()),
            );
        }
        let kind = match kind.get_ref().as_str() {
            "route53" => {
                let secret = self.secret(
                    "secret_access_key",
                    &p.secret_access_key,
                    &p.secret_access_key_file,
                    &p.secret_access_key_env,
                    &base,
                )?;
                let credentials = match (&p.access_key_id, secret) {
                    (Some(id), Some((secret, _))) => Some((id.get_ref().clone(), secret)),
                    (None, None) => None,
                    (Some(id), None) => return self.err(id.span(), &format!("{base}.access_key_id"), "needs secret_access_key (or secret_access_key_file / _env); or leave both out to use the standard AWS credential chain"),
                    (None, Some((_, s))) => return self.err(s, &format!("{base}.secret_access_key"), "needs access_key_id"),
                };
                let endpoint = match &p.endpoint {
                    None => None,
                    Some(e)
                        if e.get_ref().starts_with("http://")
                            || e.get_ref().starts_with("https://") =>
                    {
                        Some(e.get_ref().clone())
                    }
                    Some(e) => {
                        return self.err(
                            e.span(),
                            &format!("{base}.endpoint"),
                            format!("`{}` is not an http:// or https:// URL", e.get_ref()),
                        )
                    }
                };
                ProviderKind::Route53(crate::dns::provider::route53::Settings {
                    hosted_zone_id: p.hosted_zone_id.as_ref().map(|v| v.get_ref().clone()),
                    region: p
                        .region
                        .as_ref()
                        .map(|v| v.get_ref().clone())
                        .unwrap_or_else(|| "us-east-1".to_string()),
                    endpoint,
                    profile: p.profile.as_ref().map(|v| v.get_ref().clone()),
                    credentials,
                    confirm_timeout: self.duration(
                        &p.confirm_timeout,
                        &format!("{base}.confirm_timeout"),
                        Duration::from_secs(60),
                        Duration::from_secs(1),
                    )?,
                    timeout,
                })
            }
            "cloudflare" => {
                let endpoint = match &p.endpoint {
                    None => crate::dns::provider::cloudflare::DEFAULT_ENDPOINT.to_string(),
                    Some(e)
                        if e.get_ref().starts_with("http://")
                            || e.get_ref().starts_with("https://") =>
                    {
                        e.get_ref().clone()
                    }
                    Some(e) => {
                        return self.err(
                            e.span(),
                            &format!("{base}.endpoint"),
                            format!("`{}` is not an http:// or https:// URL", e.get_ref()),
                        )
                    }
                };
                let Some((api_token, _)) = self.secret(
                    "api_token",
                    &p.api_token,
                    &p.api_token_file,
                    &p.api_token_env,
                    &base,
                )?
                else {
                    return self.err(
                        span,
                        &base,
                        "missing key `api_token` (or api_token_file / api_token_env): a Cloudflare API token with Zone:Read and DNS:Edit",
                    );
                };
                ProviderKind::Cloudflare {
                    endpoint,
                    api_token,
                    zone_id: p.zone_id.as_ref().map(|z| z.get_ref().clone()),
                    proxied: p.proxied.as_ref().map(|v| *v.get_ref()),
                }
            }
            "powerdns" => {
                let Some(url) = &p.url else {
                    return self.err(span, &base, "missing key `url`: the PowerDNS API base, e.g. url = \"http://127.0.0.1:8081\"");
                };
                if !(url.get_ref().starts_with("http://") || url.get_ref().starts_with("https://"))
                {
                    return self.err(
                        url.span(),
                        &format!("{base}.url"),
                        format!("`{}` is not an http:// or https:// URL", url.get_ref()),
                    );
                }
                let Some((api_key, _)) = self.secret(
                    "api_key",
                    &p.api_key,
                    &p.api_key_file,
                    &p.api_key_env,
                    &base,
                )?
                else {
                    return self.err(
                        span,
                        &base,
                        "missing key `api_key` (or api_key_file / api_key_env): the PowerDNS webserver's api-key",
                    );
                };
                let server_id = p
                    .server_id
                    .as_ref()
                    .map(|s| s.get_ref().clone())
                    .unwrap_or_else(|| "localhost".to_string());
                ProviderKind::PowerDns {
                    url: url.get_ref().clone(),
                    server_id,
                    api_key,
                }
            }
            // "rfc2136": every other type was handled or refused above.
            _ => {
                let Some(server) = &p.server else {
                    return self.err(
                        span,
                        &base,
                        "missing key `server`: the primary server's address for updates, e.g. server = \"192.0.2.53:53\"",
                    );
                };
                let server = server.get_ref().parse::<SocketAddr>().or_else(|_| {
                    self.err(
                        server.span(),
                        &format!("{base}.server"),
                        format!(
                            "`{}` is not an address with a port, e.g. \"192.0.2.53:53\"",
                            server.get_ref()
                        ),
                    )
                })?;
                let secret = self.secret(
                    "tsig_secret",
                    &p.tsig_secret,
                    &p.tsig_secret_file,
                    &p.tsig_secret_env,
                    &base,
                )?;
                let key = match (&p.tsig_key_file, &p.tsig_key_name, secret) {
                    (Some(f), None, None) => {
                        let path = self.resolve_path(f.get_ref());
                        let text = self.read_named_file(
                            f,
                            &format!("{base}.tsig_key_file"),
                            Some("tsig_secret_env"),
                        )?;
                        self.secret_sources.borrow_mut().insert(
                            format!("{base}.tsig_key_file"),
                            SecretFrom::File(path.clone()),
                        );
                        Some(
                            crate::dns::provider::rfc2136::parse_bind_key(&text).or_else(|e| {
                                self.err(
                                    f.span(),
                                    &format!("{base}.tsig_key_file"),
                                    format!(
                                        "{} is not a key file as written by tsig-keygen: {e}",
                                        path.display()
                                    ),
                                )
                            })?,
                        )
                    }
                    (Some(f), _, _) => {
                        return self.err(
                            f.span(),
                            &format!("{base}.tsig_key_file"),
                            "give either tsig_key_file or tsig_key_name with tsig_secret, not both",
                        )
                    }
                    (None, Some(n), Some((secret, sspan))) => {
                        let alg = match &p.tsig_algorithm {
                            None => hickory_proto::rr::rdata::tsig::TsigAlgorithm::HmacSha256,
                            Some(a) => crate::dns::provider::rfc2136::algorithm(a.get_ref())
                                .or_else(|e| {
                                    self.err(a.span(), &format!("{base}.tsig_algorithm"), e)
                                })?,
                        };
                        let bytes = crate::dns::provider::rfc2136::base64_decode(&secret.0)
                            .or_else(|e| {
                                self.err(
                                    sspan,
                                    &format!("{base}.tsig_secret"),
                                    format!("not base64 ({e}); paste the secret from tsig-keygen"),
                                )
                            })?;
                        let name = self.dns_name(n, &format!("{base}.tsig_key_name"))?;
                        Some(crate::dns::provider::rfc2136::TsigKey {
                            name,
                            algorithm: alg,
                            secret: bytes,
                        })
                    }
                    (None, Some(n), None) => {
                        return self.err(
                            n.span(),
                            &format!("{base}.tsig_key_name"),
                            "needs tsig_secret (or tsig_secret_file / tsig_secret_env)",
                        )
                    }
                    (None, None, Some((_, sspan))) => {
                        return self.err(
                            sspan,
                            &format!("{base}.tsig_secret"),
                            "needs tsig_key_name",
                        )
                    }
                    (None, None, None) => None,
                };
                ProviderKind::Rfc2136 { server, key }
            }
        };
        Ok(ProviderConfig {
            name: name.get_ref().clone(),
            kind,
            timeout,
        })
    }

    fn build_standby(&self, raw: Spanned<RawStandby>) -> R<StandbyConfig> {
        let st = raw.into_inner();
        let listen = self.listen_list(st.listen, "standby.listen", "0.0.0.0:80")?;
        let https_listen = match st.https_listen {
            None => vec![],
            some => self.listen_list(some, "standby.https_listen", "0.0.0.0:443")?,
        };
        let max_snapshot_age = self.duration(
            &st.max_snapshot_age,
            "standby.max_snapshot_age",
            DEFAULT_MAX_SNAPSHOT_AGE,
            Duration::from_secs(1),
        )?;
        let acme = match st.acme {
            None => None,
            Some(a) => {
                let aspan = a.span();
                let a = a.into_inner();
                let directory = match a.directory {
                    None => "https://acme-v02.api.letsencrypt.org/directory".to_string(),
                    Some(d) if d.get_ref().starts_with("https://") => d.into_inner(),
                    Some(d) => {
                        return self.err(
                            d.span(),
                            "standby.acme.directory",
                            format!("`{}` is not an https:// URL", d.get_ref()),
                        )
                    }
                };
                let mut contact = vec![];
                for (i, c) in a.contact.into_iter().enumerate() {
                    if !c.get_ref().starts_with("mailto:") || c.get_ref().len() < 10 {
                        let k = format!("standby.acme.contact[{i}]");
                        return self.err(
                            c.span(),
                            &k,
                            format!(
                                "`{}` is not a mailto: address like \"mailto:ops@example.com\"",
                                c.get_ref()
                            ),
                        );
                    }
                    contact.push(c.into_inner());
                }
                let ca_file = match &a.ca_file {
                    None => None,
                    Some(c) => Some(self.ca_file(c, "standby.acme.ca_file")?),
                };
                if https_listen.is_empty() {
                    return self.err(
                        aspan,
                        "standby.acme",
                        "certificates are only used with HTTPS: add standby.https_listen",
                    );
                }
                Some(AcmeConfig {
                    directory,
                    contact,
                    ca_file,
                })
            }
        };
        Ok(StandbyConfig {
            listen,
            banner: st.banner.map(|b| b.into_inner()).unwrap_or(false),
            https_listen,
            max_snapshot_age,
            acme,
        })
    }

    fn build_tls(&self, key: &str, raw: Option<Spanned<RawTls>>) -> R<Option<TlsFiles>> {
        let Some(raw) = raw else { return Ok(None) };
        let span = raw.span();
        let t = raw.into_inner();
        let (Some(c), Some(k)) = (t.cert_file, t.key_file) else {
            return self.err(span, key, "give both cert_file (the PEM chain, leaf first) and key_file (its PEM private key)");
        };
        let (cert_file, key_file) = (
            self.resolve_path(c.get_ref()),
            self.resolve_path(k.get_ref()),
        );
        if !key_file.exists() && looks_like_secret(k.get_ref()) {
            self.read_named_file(&k, &format!("{key}.key_file"), None)?;
        }
        if let Err(e) = crate::tls::load_files(&cert_file, &key_file) {
            return self.err(c.span(), &format!("{key}.cert_file"), e);
        }
        Ok(Some(TlsFiles {
            cert_file,
            key_file,
        }))
    }

    fn build_api(&self, raw: Option<Spanned<RawApi>>) -> R<ApiConfig> {
        let listen = match raw.and_then(|a| a.into_inner().listen) {
            None => "127.0.0.1:9353".parse().expect("valid literal"),
            Some(l) => {
                let addr: SocketAddr = l.get_ref().parse().or_else(|_| {
                    self.err(
                        l.span(),
                        "api.listen",
                        format!(
                            "`{}` is not an address with a port, e.g. \"127.0.0.1:9353\"",
                            l.get_ref()
                        ),
                    )
                })?;
                if !addr.ip().is_loopback() {
                    return self.err(l.span(), "api.listen", format!("{addr} is not a loopback address: the control API has no authentication yet, so it only listens on 127.0.0.1 or [::1]"));
                }
                addr
            }
        };
        Ok(ApiConfig { listen })
    }

    fn dns_name(&self, s: &Spanned<String>, key: &str) -> R<Name> {
        let text = s.get_ref().trim();
        let bad = |why: &str| {
            self.err(
                s.span(),
                key,
                format!("`{}` is not a valid domain name: {why}", s.get_ref()),
            )
        };
        if text.is_empty() {
            return bad("it is empty");
        }
        if text.contains("://") || text.contains('/') {
            return bad("give the bare name, without scheme or path");
        }
        if !text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
        {
            return bad("only letters, digits, '-', '_' and '.' are allowed (use punycode for international names)");
        }
        let mut name = match Name::from_ascii(text) {
            Ok(n) => n,
            Err(e) => return bad(&e.to_string()),
        };
        if name.num_labels() == 0 {
            return bad("the root is not allowed here");
        }
        name.set_fqdn(true);
        Ok(name.to_lowercase())
    }

    fn build_site(
        &self,
        i: usize,
        raw: Spanned<RawSite>,
        dns: &DnsConfig,
        ipc: &IpConfig,
        owned: &mut HashMap<LowerName, String>,
    ) -> R<Site> {
        let span = raw.span();
        let raw = raw.into_inner();
        let key = format!("sites[{i}]");
        let Some(domain_raw) = raw.domain else {
            return self.err(
                span,
                &key,
                "missing key `domain`: the site's name, e.g. domain = \"www.example.com\"",
            );
        };
        let domain = self.dns_name(&domain_raw, &format!("{key}.domain"))?;
        let mut aliases = vec![];
        for (j, a) in raw.aliases.iter().enumerate() {
            aliases.push((
                self.dns_name(a, &format!("{key}.aliases[{j}]"))?,
                a.span(),
                format!("{key}.aliases[{j}]"),
            ));
        }
        let name = match &raw.name {
            Some(n) => {
                let v = n.get_ref();
                if v.is_empty()
                    || !v
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                {
                    return self.err(
                        n.span(),
                        &format!("{key}.name"),
                        format!("`{v}` is not a usable site name: letters, digits, '-', '_' and '.' only"),
                    );
                }
                v.clone()
            }
            None => domain.to_ascii().trim_end_matches('.').to_string(),
        };
        let Some(primary_raw) = raw.primary else {
            return self.err(span, &key, "missing key `primary`: the primary server's address, e.g. primary = \"203.0.113.7\"");
        };
        let Some(standby_raw) = raw.standby else {
            return self.err(span, &key, "missing key `standby`: the standby server's address, e.g. standby = \"198.51.100.9\"");
        };
        let primary_auto = match primary_raw.get_ref().trim().to_ascii_lowercase().as_str() {
            "auto" => Some(crate::ip::Family::Ipv4),
            "auto6" => Some(crate::ip::Family::Ipv6),
            _ => None,
        };
        let primary = match primary_auto {
            Some(fam) => {
                if !ipc.families().contains(&fam) {
                    return self.err(
                        primary_raw.span(),
                        &format!("{key}.primary"),
                        format!("`{}` follows the public {fam} address, but no [[ip.sources]] answer for {fam}", primary_raw.get_ref()),
                    );
                }
                let ip = match fam {
                    crate::ip::Family::Ipv4 => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                    crate::ip::Family::Ipv6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
                };
                Endpoint { ip, port: None }
            }
            None => self.endpoint(&primary_raw, &format!("{key}.primary"))?,
        };
        let standby = self.endpoint(&standby_raw, &format!("{key}.standby"))?;
        if primary.ip == standby.ip && primary.port == standby.port {
            return self.err(
                standby_raw.span(),
                &format!("{key}.standby"),
                "the standby must be a different server than the primary",
            );
        }
        if primary.ip.is_ipv4() != standby.ip.is_ipv4() {
            return self.err(standby_raw.span(), &format!("{key}.standby"), format!("{} and the primary {} are of different IP families; both must be IPv4 or both IPv6 so failover changes the record's value, not its type", standby, primary));
        }

        // Every name of the site must sit in a configured zone, be owned by no other site, and
        // have no static record that would fight the managed one (one owner per record).
        let all = std::iter::once((domain.clone(), domain_raw.span(), format!("{key}.domain")))
            .chain(aliases.iter().cloned());
        for (n, nspan, nkey) in all {
            let Some(zone) = dns
                .zones
                .iter()
                .filter(|z| z.origin.zone_of(&n))
                .max_by_key(|z| z.origin.num_labels())
            else {
                let zones: Vec<String> = dns.zones.iter().map(|z| z.origin.to_string()).collect();
                let have = if zones.is_empty() {
                    "no zones are configured: add a [[dns.zones]] table".to_string()
                } else {
                    format!("configured zones: {}", zones.join(", "))
                };
                return self.err(
                    nspan,
                    &nkey,
                    format!("{n} is not inside any zone the built-in DNS server serves ({have})"),
                );
            };
            let lower = LowerName::new(&n);
            if let Some(other) = owned.insert(lower, name.clone()) {
                return self.err(
                    nspan,
                    &nkey,
                    format!("{n} is already managed by site `{other}`: each name has one owner"),
                );
            }
            if let Some(r) = zone.records.iter().find(|r| {
                r.name == n
                    && matches!(
                        r.record_type(),
                        RecordType::A | RecordType::AAAA | RecordType::CNAME
                    )
            }) {
                return self.err(
                    nspan,
                    &nkey,
                    format!(
                        "{n} also has a static {} record in zone {}; remove it, the site's records are managed by understudy",
                        r.record_type(),
                        zone.origin
                    ),
                );
            }
        }

        let probe = self.build_probe(&format!("{key}.probe"), raw.probe)?;
        let origin = origin_url(
            domain.to_ascii().trim_end_matches('.'),
            probe.scheme,
            probe.port,
        );
        let mirror =
            self.build_mirror(&format!("{key}.mirror"), raw.mirror, &origin, probe.scheme)?;
        let tls = self.build_tls(&format!("{key}.tls"), raw.tls)?;
        Ok(Site {
            name,
            domain,
            aliases: aliases.into_iter().map(|a| a.0).collect(),
            primary,
            primary_auto,
            standby,
            probe,
            mirror,
            tls,
        })
    }

    fn endpoint(&self, s: &Spanned<String>, key: &str) -> R<Endpoint> {
        let text = s.get_ref().trim();
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(Endpoint { ip, port: None });
        }
        if let Ok(sa) = text.parse::<SocketAddr>() {
            return Ok(Endpoint {
                ip: sa.ip(),
                port: Some(sa.port()),
            });
        }
        let hint = "expected an IP address like \"203.0.113.7\", optionally with a probe port like \"203.0.113.7:8443\"";
        self.err(
            s.span(),
            key,
            format!("`{}` is not an address: {hint}", s.get_ref()),
        )
    }

    fn build_probe(&self, key: &str, raw: Option<Spanned<RawProbe>>) -> R<Probe> {
        let p = raw.map(|r| r.into_inner()).unwrap_or_default();
        let k = |f: &str| format!("{key}.{f}");
        let scheme = match &p.scheme {
            None => Scheme::Https,
            Some(s) => match s.get_ref().as_str() {
                "http" => Scheme::Http,
                "https" => Scheme::Https,
                other => {
                    return self.err(
                        s.span(),
                        &k("scheme"),
                        format!("`{other}` is not a probe scheme: expected \"http\" or \"https\""),
                    )
                }
            },
        };
        let port = match &p.port {
            None => match scheme {
                Scheme::Http => 80,
                Scheme::Https => 443,
            },
            Some(v) => match u16::try_from(*v.get_ref()) {
                Ok(port) if port > 0 => port,
                _ => {
                    return self.err(
                        v.span(),
                        &k("port"),
                        format!("{} is not a port: expected 1 to 65535", v.get_ref()),
                    )
                }
            },
        };
        let method = match &p.method {
            None => Method::Get,
            Some(m) => match m.get_ref().to_ascii_uppercase().as_str() {
                "GET" => Method::Get,
                "HEAD" => Method::Head,
                _ => {
                    return self.err(
                        m.span(),
                        &k("method"),
                        format!(
                            "`{}` is not a probe method: expected \"GET\" or \"HEAD\"",
                            m.get_ref()
                        ),
                    )
                }
            },
        };
        let path = match &p.path {
            None => "/".to_string(),
            Some(v) => {
                let t = v.get_ref();
                if !t.starts_with('/') || t.chars().any(|c| c.is_control() || c == ' ') {
                    return self.err(
                        v.span(),
                        &k("path"),
                        format!("`{t}` is not a request path: it must start with '/' and contain no spaces"),
                    );
                }
                t.clone()
            }
        };
        let expect_status = match &p.expect_status {
            None => StatusSet::between(200, 399),
            Some(list) => {
                if list.get_ref().is_empty() {
                    return self.err(
                        list.span(),
                        &k("expect_status"),
                        "must list at least one status, e.g. [200] or [\"2xx\", 301]",
                    );
                }
                let mut out = vec![];
                for (i, item) in list.get_ref().iter().enumerate() {
                    out.push(self.status_item(item, &format!("{}[{i}]", k("expect_status")))?);
                }
                StatusSet(out)
            }
        };
        let body_contains = match &p.body_contains {
            Some(b) if b.get_ref().is_empty() => {
                return self.err(
                    b.span(),
                    &k("body_contains"),
                    "must not be empty; leave it out to skip the body check",
                )
            }
            Some(b) if method == Method::Head => {
                return self.err(
                    b.span(),
                    &k("body_contains"),
                    "a HEAD probe gets no body; use method = \"GET\" to check the body",
                )
            }
            Some(b) => Some(b.get_ref().clone()),
            None => None,
        };
        let interval = self.duration(
            &p.interval,
            &k("interval"),
            Duration::from_secs(2),
            Duration::from_millis(100),
        )?;
        let timeout = self.duration(
            &p.timeout,
            &k("timeout"),
            Duration::from_secs(1),
            Duration::from_millis(50),
        )?;
        let failures_to_down = self.count(&p.failures_to_down, &k("failures_to_down"), 3)?;
        if timeout > interval {
            let span = p
                .timeout
                .as_ref()
                .or(p.interval.as_ref())
                .map(|v| v.span())
                .unwrap_or(0..0);
            let bound = interval * failures_to_down + timeout;
            self.warn(
                span,
                &k("timeout"),
                format!(
                    "{} is longer than interval {}: probes overlap (up to {} at once), and a silent primary is noticed \
                     within failures_to_down × interval + timeout = {}",
                    human_duration(timeout.as_millis() as u64),
                    human_duration(interval.as_millis() as u64),
                    timeout.as_millis() / interval.as_millis().max(1) + 1,
                    human_duration(bound.as_millis() as u64)
                ),
            );
        }
        let successes_to_up = self.count(&p.successes_to_up, &k("successes_to_up"), 5)?;
        let hold_down = self.duration(
            &p.hold_down,
            &k("hold_down"),
            Duration::from_secs(300),
            Duration::ZERO,
        )?;
        let insecure = p.insecure.as_ref().map(|v| *v.get_ref()).unwrap_or(false);
        let ca_file = match &p.ca_file {
            None => None,
            Some(c) => {
                if insecure {
                    return self.err(
                        c.span(),
                        &k("ca_file"),
                        "ca_file and insecure = true contradict each other; keep one",
                    );
                }
                Some(self.ca_file(c, &k("ca_file"))?)
            }
        };
        if scheme == Scheme::Http {
            if let Some(c) = &p.ca_file {
                return self.err(
                    c.span(),
                    &k("ca_file"),
                    "only applies to scheme = \"https\"",
                );
            }
            if let Some(c) = p.insecure.as_ref().filter(|v| *v.get_ref()) {
                return self.err(
                    c.span(),
                    &k("insecure"),
                    "only applies to scheme = \"https\"",
                );
            }
        }
        Ok(Probe {
            scheme,
            port,
            method,
            path,
            expect_status,
            body_contains,
            interval,
            timeout,
            failures_to_down,
            successes_to_up,
            hold_down,
            ca_file,
            insecure,
            standby_readiness: p.standby_readiness.as_ref().is_some_and(|v| *v.get_ref()),
        })
    }

    fn status_item(&self, item: &Spanned<StatusItem>, key: &str) -> R<Range<u16>> {
        let bad = |what: String| {
            self.err(
                item.span(),
                key,
                format!("{what} is not an HTTP status: expected 100-599, a class like \"2xx\", or a range like \"200-299\""),
            )
        };
        let valid = |n: i64| (100..=599).contains(&n);
        match item.get_ref() {
            StatusItem::Code(n) if valid(*n) => Ok(*n as u16..*n as u16 + 1),
            StatusItem::Code(n) => bad(n.to_string()),
            StatusItem::Text(t) => {
                let t = t.trim();
                if t.len() == 3 && t.ends_with("xx") {
                    if let Some(d) = t[..1].parse::<u16>().ok().filter(|d| (1..=5).contains(d)) {
                        return Ok(d * 100..d * 100 + 100);
                    }
                }
                if let Some((a, b)) = t.split_once('-') {
                    if let (Ok(a), Ok(b)) = (a.trim().parse::<i64>(), b.trim().parse::<i64>()) {
                        if valid(a) && valid(b) && a <= b {
                            return Ok(a as u16..b as u16 + 1);
                        }
                    }
                }
                if let Ok(n) = t.parse::<i64>() {
                    if valid(n) {
                        return Ok(n as u16..n as u16 + 1);
                    }
                }
                bad(format!("`{t}`"))
            }
        }
    }

    /// A PEM file of CA certificates to trust: readable, with at least one certificate.
    fn ca_file(&self, c: &Spanned<String>, key: &str) -> R<PathBuf> {
        let path = self.resolve_path(c.get_ref());
        let pem = std::fs::read(&path).or_else(|e| {
            self.err(
                c.span(),
                key,
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        if crate::probe::parse_ca_pem(&pem).is_err() {
            return self.err(
                c.span(),
                key,
                format!("{} holds no PEM certificate", path.display()),
            );
        }
        Ok(path)
    }

    fn duration(
        &self,
        v: &Option<Spanned<DurationValue>>,
        key: &str,
        default: Duration,
        min: Duration,
    ) -> R<Duration> {
        let Some(v) = v else { return Ok(default) };
        let d = match v.get_ref() {
            DurationValue::Text(t) => parse_duration(t).or_else(|e| self.err(v.span(), key, e))?,
            // A bare number is refused like the string "2" is: `interval = 2` could mean
            // seconds or milliseconds, and writing the unit costs nothing.
            DurationValue::Int(n) => {
                return self.err(
                    v.span(),
                    key,
                    format!("`{n}` has no unit: write a duration like \"{n}s\" or \"{n}ms\""),
                )
            }
            DurationValue::Float(f) => {
                return self.err(
                    v.span(),
                    key,
                    format!("`{f}` has no unit: write a duration like \"{f}s\""),
                )
            }
        };
        if d < min {
            return self.err(
                v.span(),
                key,
                format!(
                    "{} is too short: at least {}",
                    human_duration(d.as_millis() as u64),
                    human_duration(min.as_millis() as u64)
                ),
            );
        }
        Ok(d)
    }

    fn count(&self, v: &Option<Spanned<i64>>, key: &str, default: u32) -> R<u32> {
        match v {
            None => Ok(default),
            Some(n) if (1..=1_000).contains(n.get_ref()) => Ok(*n.get_ref() as u32),
            Some(n) => self.err(
                n.span(),
                key,
                format!(
                    "{} is out of range: a count from 1 to 1000 (default {default})",
                    n.get_ref()
                ),
            ),
        }
    }
}

fn origin_url(host: &str, scheme: Scheme, port: u16) -> url::Url {
    let (s, default) = match scheme {
        Scheme::Http => ("http", 80),
        Scheme::Https => ("https", 443),
    };
    let text = if port == default {
        format!("{s}://{host}/")
    } else {
        format!("{s}://{host}:{port}/")
    };
    url::Url::parse(&text).expect("a DNS name and a port make a URL")
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map(|i| offset - i).unwrap_or(offset + 1);
    (line, column)
}

/// Best-effort dotted key for an error that serde reported only with a span: the enclosing
/// `[table]` header (with the index of `[[array]]` tables) plus the key on the error's line.
fn key_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line = text[line_start..].lines().next().unwrap_or("");
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut table = String::new();
    for l in text[..line_start].lines() {
        let l = l.trim();
        if let Some(h) = l.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let h = h.trim().to_string();
            let n = counts.entry(h.clone()).and_modify(|c| *c += 1).or_insert(0);
            table = indexed(&h, *n, &counts);
        } else if let Some(h) = l.strip_prefix('[').and_then(|r| r.split(']').next()) {
            table = indexed(h.trim(), usize::MAX, &counts);
        }
    }
    let trimmed = line.trim();
    let key = if trimmed.starts_with('[') {
        let h = trimmed
            .trim_start_matches('[')
            .split(']')
            .next()
            .unwrap_or("")
            .trim();
        return if h.is_empty() {
            "(table)".to_string()
        } else {
            h.to_string()
        };
    } else {
        trimmed
            .split('=')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches('"')
            .to_string()
    };
    match (table.is_empty(), key.is_empty()) {
        (true, true) => "(top level)".to_string(),
        (true, false) => key,
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    }
}

/// Turns `sites.probe` into `sites[2].probe` using how many `[[sites]]` were seen so far.
fn indexed(header: &str, own_index: usize, counts: &BTreeMap<String, usize>) -> String {
    let parts: Vec<&str> = header.split('.').map(str::trim).collect();
    let mut out = String::new();
    for i in 0..parts.len() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(parts[i]);
        let prefix = parts[..=i].join(".");
        if let Some(n) = counts.get(&prefix) {
            let n = if i == parts.len() - 1 && own_index != usize::MAX {
                own_index
            } else {
                *n
            };
            out.push_str(&format!("[{n}]"));
        }
    }
    out
}

/// serde's messages say "field"; operators write "keys".
fn tidy_serde_message(m: &str) -> String {
    let m = m.trim_end_matches('\n');
    if m.contains("untagged enum DurationValue") {
        return "expected a duration with its unit, like \"2s\" or \"500ms\"".to_string();
    }
    if m.contains("untagged enum StatusItem") {
        return "expected an HTTP status like 200, a class like \"2xx\", or a range like \"200-299\"".to_string();
    }
    let mut out = m.replace("unknown field", "unknown key");
    for (rust, words) in [
        ("expected i64", "expected a whole number"),
        ("expected u32", "expected a whole number"),
        ("expected a boolean", "expected true or false"),
        ("expected a sequence", "expected a list like [\"a\", \"b\"]"),
    ] {
        out = out.replace(rust, words);
    }
    out
}

// ---------------------------------------------------------------- effective settings

impl Config {
    /// The site named `name` (or whose domain it is), as the CLI takes it.
    pub fn site(&self, name: &str) -> Option<&Site> {
        self.sites
            .iter()
            .find(|s| s.name == name || s.host() == name.trim_end_matches('.'))
    }

    /// The effective settings as TOML-like text, defaults filled in. There are no secrets in
    /// the config yet; when there are, they are printed as `"<redacted>"` here.
    /// The zone that holds `name`: the deepest configured zone containing it, as in DNS itself.
    pub fn zone_of(&self, name: &Name) -> Option<&Zone> {
        self.dns
            .zones
            .iter()
            .filter(|z| z.origin.zone_of(name))
            .max_by_key(|z| z.origin.num_labels())
    }

    /// The key that gives the secret at `key` (`providers[0].api_key`) again, without the secret:
    /// `api_key_file = "..."`, `api_key_env = "..."`, or a placeholder for one given inline.
    fn secret_line(&self, base: &str, key: &str) -> String {
        match self.secret_sources.get(&format!("{base}.{key}")) {
            Some(SecretFrom::File(p)) => {
                format!("{key}_file = {}\n", toml_str(&p.display().to_string()))
            }
            Some(SecretFrom::Env(v)) => format!("{key}_env = {}\n", toml_str(v)),
            _ => format!("{key} = \"<redacted>\"  # given inline in the config; not shown\n"),
        }
    }

    /// The effective settings as TOML, defaults filled in: `check-config` prints it, and it reads
    /// back as the same configuration (secrets given by file or environment variable are printed
    /// as that key; one given inline is replaced by a placeholder, never shown).
    pub fn describe(&self) -> String {
        let mut o = String::new();
        o.push_str(&format!(
            "# effective settings of {}\n",
            self.path.display()
        ));
        o.push_str(&format!(
            "data_dir = {}\n\n",
            toml_str(&self.data_dir.display().to_string())
        ));
        if let Some(st) = &self.standby {
            let l: Vec<String> = st
                .listen
                .iter()
                .map(|a| format!("{:?}", a.to_string()))
                .collect();
            let h: Vec<String> = st
                .https_listen
                .iter()
                .map(|a| format!("{:?}", a.to_string()))
                .collect();
            o.push_str(&format!(
                "[standby]\nlisten = [{}]\nhttps_listen = [{}]\nbanner = {}\nmax_snapshot_age = {:?}\n\n",
                l.join(", "),
                h.join(", "),
                st.banner,
                human_duration(st.max_snapshot_age.as_millis() as u64)
            ));
            if let Some(a) = &st.acme {
                o.push_str(&format!(
                    "[standby.acme]\ndirectory = {:?}\ncontact = {:?}\n",
                    a.directory, a.contact
                ));
                if let Some(c) = &a.ca_file {
                    o.push_str(&format!("ca_file = {:?}\n", c.display().to_string()));
                }
                o.push('\n');
            }
        }
        o.push_str("[dns]\n");
        let listen: Vec<String> = self
            .dns
            .listen
            .iter()
            .map(|a| format!("{:?}", a.to_string()))
            .collect();
        o.push_str(&format!(
            "listen = [{}]\nttl = {}\nrefresh = {:?}\n",
            listen.join(", "),
            self.dns.ttl,
            human_duration(self.dns.refresh.as_millis() as u64)
        ));
        for z in &self.dns.zones {
            o.push_str(&format!(
                "\n[[dns.zones]]\nname = {:?}\nprovider = {:?}\n",
                z.origin.to_string(),
                z.provider.as_deref().unwrap_or("builtin")
            ));
            if !z.verify.is_empty() {
                let v: Vec<String> = z
                    .verify
                    .iter()
                    .map(|a| format!("{:?}", a.to_string()))
                    .collect();
                o.push_str(&format!("verify = [{}]\n", v.join(", ")));
            }
            if z.provider.is_none() {
                let ns: Vec<String> = z
                    .nameservers
                    .iter()
                    .map(|n| format!("{:?}", n.to_string()))
                    .collect();
                o.push_str(&format!(
                    "nameservers = [{}]\nhostmaster = {:?}\n",
                    ns.join(", "),
                    z.hostmaster.to_string()
                ));
                o.push_str("records = [\n");
                for r in &z.records {
                    o.push_str(&format!("  {},\n", toml_str(&record_text(r))));
                }
                o.push_str("]\n");
            }
        }
        for (i, p) in self.providers.iter().enumerate() {
            let base = format!("providers[{i}]");
            o.push_str(&format!(
                "\n[[providers]]\nname = {:?}\ntype = {:?}\ntimeout = {:?}\n",
                p.name,
                p.kind.type_name(),
                human_duration(p.timeout.as_millis() as u64)
            ));
            match &p.kind {
                ProviderKind::Rfc2136 { server, key } => {
                    o.push_str(&format!("server = {:?}\n", server.to_string()));
                    match (
                        key,
                        self.secret_sources.get(&format!("{base}.tsig_key_file")),
                    ) {
                        (Some(_), Some(SecretFrom::File(f))) => o.push_str(&format!(
                            "tsig_key_file = {}\n",
                            toml_str(&f.display().to_string())
                        )),
                        (Some(k), _) => {
                            o.push_str(&format!(
                                "tsig_key_name = {:?}\ntsig_algorithm = {:?}\n{}",
                                k.name.to_string(),
                                k.algorithm.to_string(),
                                self.secret_line(&base, "tsig_secret")
                            ));
                        }
                        (None, _) => {}
                    }
                }
                ProviderKind::PowerDns { url, server_id, .. } => {
                    o.push_str(&format!(
                        "url = {url:?}\nserver_id = {server_id:?}\n{}",
                        self.secret_line(&base, "api_key")
                    ));
                }
                ProviderKind::Cloudflare {
                    endpoint,
                    zone_id,
                    proxied,
                    ..
                } => {
                    o.push_str(&format!(
                        "endpoint = {endpoint:?}\n{}",
                        self.secret_line(&base, "api_token")
                    ));
                    if let Some(z) = zone_id {
                        o.push_str(&format!("zone_id = {z:?}\n"));
                    }
                    o.push_str(&match proxied {
                        Some(p) => format!("proxied = {p}\n"),
                        None => "# proxied: kept as found on existing records\n".to_string(),
                    });
                }
                ProviderKind::Route53(r) => {
                    o.push_str(&format!(
                        "region = {:?}\nconfirm_timeout = {:?}\n",
                        r.region,
                        human_duration(r.confirm_timeout.as_millis() as u64)
                    ));
                    for (k, v) in [
                        ("hosted_zone_id", &r.hosted_zone_id),
                        ("endpoint", &r.endpoint),
                        ("profile", &r.profile),
                    ] {
                        if let Some(v) = v {
                            o.push_str(&format!("{k} = {v:?}\n"));
                        }
                    }
                    match &r.credentials {
                        Some((id, _)) => o.push_str(&format!("access_key_id = {id:?}\n{}", self.secret_line(&base, "secret_access_key"))),
                        None => o.push_str("# credentials: the standard AWS chain (environment, shared files, profile)\n"),
                    }
                }
            }
        }
        if !self.ip.sources.is_empty() {
            let allow: Vec<String> = self
                .ip
                .allow
                .iter()
                .map(|n| format!("\"{}/{}\"", n.addr, n.prefix))
                .collect();
            o.push_str(&format!(
                "\n[ip]\ninterval = {:?}\nquorum = {}\nallow = [{}]\n",
                human_duration(self.ip.interval.as_millis() as u64),
                self.ip.quorum,
                allow.join(", ")
            ));
            for s in &self.ip.sources {
                let what = match &s.kind {
                    crate::ip::SourceKind::Http {
                        url,
                        json_field: None,
                    } => format!("type = \"http\"\nurl = {url:?}"),
                    crate::ip::SourceKind::Http {
                        url,
                        json_field: Some(j),
                    } => {
                        format!("type = \"http\"\nurl = {url:?}\njson_field = {j:?}")
                    }
                    crate::ip::SourceKind::Dns {
                        server,
                        name,
                        qtype,
                        qclass,
                    } => {
                        format!("type = \"dns\"\nserver = \"{server}\"\nquestion = \"{name}\"\nqtype = \"{qtype}\"\nqclass = \"{qclass}\"")
                    }
                    crate::ip::SourceKind::Interface { name } => {
                        format!("type = \"interface\"\ninterface = {name:?}")
                    }
                    crate::ip::SourceKind::Upnp { url } => {
                        format!("type = \"upnp\"\nurl = {url:?}")
                    }
                    crate::ip::SourceKind::Push { max_age } => {
                        format!(
                            "type = \"push\"\nmax_age = {:?}",
                            human_duration(max_age.as_millis() as u64)
                        )
                    }
                };
                o.push_str(&format!(
                    "[[ip.sources]]\nname = {:?}\noperator = {:?}\nfamily = \"{}\"\n{what}\ntimeout = {:?}\n",
                    s.name,
                    s.operator,
                    if s.family == crate::ip::Family::Ipv4 { "ipv4" } else { "ipv6" },
                    human_duration(s.timeout.as_millis() as u64)
                ));
            }
        }
        if let Some(p) = &self.ip.push {
            o.push_str(&format!(
                "\n[ip.push]\nlisten = {:?}\nusername = {}\n{}",
                p.listen.to_string(),
                toml_str(&p.username),
                self.secret_line("ip.push", "password")
            ));
            if let Some((c, k)) = &p.tls {
                o.push_str(&format!(
                    "tls_cert = {}\ntls_key = {}\n",
                    toml_str(&c.display().to_string()),
                    toml_str(&k.display().to_string())
                ));
            }
        }
        for d in &self.ddns {
            let f: Vec<String> = d
                .families
                .iter()
                .map(|f| {
                    format!(
                        "\"{}\"",
                        if *f == crate::ip::Family::Ipv4 {
                            "ipv4"
                        } else {
                            "ipv6"
                        }
                    )
                })
                .collect();
            o.push_str(&format!(
                "\n[[ddns]]\nname = \"{}\"\nfamilies = [{}]\n",
                d.name,
                f.join(", ")
            ));
        }
        o.push_str(&format!(
            "\n[api]\nlisten = {:?}\n",
            self.api.listen.to_string()
        ));
        for s in &self.sites {
            o.push_str(&format!(
                "\n[[sites]]\nname = {:?}\ndomain = {:?}\n",
                s.name,
                s.domain.to_string()
            ));
            let al: Vec<String> = s
                .aliases
                .iter()
                .map(|n| format!("{:?}", n.to_string()))
                .collect();
            o.push_str(&format!(
                "aliases = [{}]\nprimary = {:?}\nstandby = {:?}\n",
                al.join(", "),
                s.primary.to_string(),
                s.standby.to_string()
            ));
            let p = &s.probe;
            o.push_str("[sites.probe]\n");
            o.push_str(&format!(
                "scheme = {:?}\nport = {}\nmethod = {:?}\npath = {}\n",
                if p.scheme == Scheme::Https {
                    "https"
                } else {
                    "http"
                },
                p.port,
                if p.method == Method::Get {
                    "GET"
                } else {
                    "HEAD"
                },
                toml_str(&p.path)
            ));
            let statuses: Vec<String> = p
                .expect_status
                .to_string()
                .split(", ")
                .map(toml_str)
                .collect();
            o.push_str(&format!("expect_status = [{}]\n", statuses.join(", ")));
            if let Some(b) = &p.body_contains {
                o.push_str(&format!("body_contains = {}\n", toml_str(b)));
            }
            o.push_str(&format!(
                "interval = {:?}\ntimeout = {:?}\nfailures_to_down = {}\nsuccesses_to_up = {}\nhold_down = {:?}\n",
                human_duration(p.interval.as_millis() as u64),
                human_duration(p.timeout.as_millis() as u64),
                p.failures_to_down,
                p.successes_to_up,
                human_duration(p.hold_down.as_millis() as u64)
            ));
            if let Some(c) = &p.ca_file {
                o.push_str(&format!(
                    "ca_file = {}\n",
                    toml_str(&c.display().to_string())
                ));
            }
            if p.insecure {
                o.push_str("insecure = true  # certificates are NOT checked\n");
            }
            o.push_str(&s.mirror.describe());
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
data_dir = "state"
[dns]
listen = ["127.0.0.1:5353"]
[[dns.zones]]
name = "example.test"
records = ["@ MX 10 mail", "mail A 192.0.2.25"]
[[sites]]
domain = "www.example.test"
aliases = ["example.test"]
primary = "192.0.2.10"
standby = "192.0.2.20:8080"
[sites.probe]
scheme = "http"
expect_status = [200, "3xx"]
interval = "500ms"
"#;

    #[test]
    fn good_config_gets_defaults() {
        let c = parse(Path::new("/etc/u/c.toml"), GOOD).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/etc/u/state"));
        assert_eq!(c.dns.ttl, 30);
        let s = &c.sites[0];
        assert_eq!(s.name, "www.example.test");
        assert_eq!(s.probe.port, 80);
        assert_eq!(s.probe.interval, Duration::from_millis(500));
        assert_eq!(s.probe.timeout, Duration::from_secs(1));
        assert_eq!((s.probe.failures_to_down, s.probe.successes_to_up), (3, 5));
        assert_eq!(s.probe.hold_down, Duration::from_secs(300));
        assert!(s.probe.expect_status.contains(302) && !s.probe.expect_status.contains(404));
        assert_eq!(
            s.standby.probe_addr(&s.probe),
            "192.0.2.20:8080".parse().unwrap()
        );
        assert_eq!(c.dns.zones[0].records.len(), 2);
        assert!(c.describe().contains("hold_down = \"5m\""));
    }

    #[test]
    fn serde_errors_get_line_and_key() {
        let e = parse(
            Path::new("c.toml"),
            "[dns]\nttl = 30\n[[sites]]\ndomain = \"a.test\"\n[sites.probe]\nintreval = \"2s\"\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (6, 1));
        assert_eq!(e.key, "sites[0].probe.intreval");
        assert!(
            e.message.starts_with("unknown key `intreval`"),
            "{}",
            e.message
        );
    }

    /// `check-config` prints what reads back as the same configuration (issue 11, item 10):
    /// TXT strings keep their quoting, `[ip.push]` is there, secrets come back by their file.
    #[test]
    fn effective_settings_read_back_as_the_same_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("push.pw"), "a-long-enough-password\n").unwrap();
        std::fs::write(dir.path().join("pdns.key"), "pdns-api-key\n").unwrap();
        let text = r#"
data_dir = "state"
[dns]
listen = ["127.0.0.1:5353"]
[[dns.zones]]
name = "example.test"
records = ["ns1 A 192.0.2.53", "@ TXT \"foreign text\"", "two TXT \"foreign\" \"text\"", "q TXT \"say \\\"hi\\\" \\\\ bye\"", "@ MX 10 mail", "mail A 192.0.2.25"]
[[dns.zones]]
name = "other.test"
provider = "pdns"
[[providers]]
name = "pdns"
type = "powerdns"
url = "http://127.0.0.1:8081"
api_key_file = "pdns.key"
[ip]
quorum = 1
[[ip.sources]]
name = "pushed"
type = "push"
family = "ipv4"
[ip.push]
listen = "127.0.0.1:8245"
password_file = "push.pw"
[[sites]]
domain = "www.example.test"
primary = "auto"
standby = "192.0.2.20"
[sites.probe]
scheme = "http"
path = "/health?x=\u00e9"
body_contains = "ok \"quoted\""
"#;
        let first = parse(&dir.path().join("c.toml"), text).unwrap();
        let printed = first.describe();
        assert!(
            printed.contains(r#"'example.test. 30 TXT "foreign text"'"#),
            "{printed}"
        );
        assert!(
            printed.contains(r#"'two.example.test. 30 TXT "foreign" "text"'"#),
            "{printed}"
        );
        assert!(printed.contains("[ip.push]"), "{printed}");
        assert!(
            !printed.contains("a-long-enough-password") && !printed.contains("pdns-api-key"),
            "{printed}"
        );
        let again = parse(&dir.path().join("c.toml"), &printed)
            .unwrap_or_else(|e| panic!("{e}\n{printed}"));
        assert_eq!(again.describe(), printed, "a second round prints the same");
        assert_eq!(again.dns.zones[0].records, first.dns.zones[0].records);
        assert_eq!(
            again.ip.push.as_ref().unwrap().password,
            first.ip.push.as_ref().unwrap().password
        );
        assert_eq!(again.sites[0].probe.path, first.sites[0].probe.path);
        assert_eq!(
            again.sites[0].probe.body_contains,
            first.sites[0].probe.body_contains
        );
    }

    #[test]
    fn a_secret_in_a_file_key_is_not_echoed() {
        for secret in [
            "c2VjcmV0c2VjcmV0c2VjcmV0",
            "Zm9vYmFy=",
            "-----BEGIN PRIVATE KEY-----",
            "abcdef0123456789abcdef",
        ] {
            assert!(looks_like_secret(secret), "{secret}");
        }
        for path in [
            "/etc/understudy/key",
            "secret.key",
            "./k",
            "../keys/pdns",
            "~/pdns",
            "short",
        ] {
            assert!(!looks_like_secret(path), "{path}");
        }
    }

    #[test]
    fn key_paths_count_array_tables() {
        let t = "[[sites]]\na = 1\n[[sites]]\nb = 2\n[sites.probe]\nc = 3\n";
        assert_eq!(key_at(t, t.find("b =").unwrap()), "sites[1].b");
        assert_eq!(key_at(t, t.find("c =").unwrap()), "sites[1].probe.c");
    }
}
