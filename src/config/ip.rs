//! The `[ip]` table (public-address sources, agreement) and `[[ddns]]` records.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hickory_proto::rr::{LowerName, Name, RecordType};
use serde::Deserialize;
use toml::Spanned;

use super::cx::span_of;
use super::{Cx, DnsConfig, DurationValue, R};
use crate::net::{Family, Net};

/// How a source is asked.
#[derive(Clone, Debug)]
pub enum SourceKind {
    /// GET the URL; the body is the address, or a JSON object with the address at `json_field`
    /// (a dotted path such as `ip` or `data.address`).
    Http {
        url: String,
        json_field: Option<String>,
    },
    /// Ask `server` for `name` (type A, AAAA or TXT, class IN or CH); the answer is the address.
    Dns {
        server: SocketAddr,
        name: Name,
        qtype: RecordType,
        qclass: hickory_proto::rr::DNSClass,
    },
    /// A global address of a local interface (a server that holds the public address itself),
    /// read with iproute2; `ip monitor` (netlink) events trigger a round at once. For IPv6 only
    /// stable addresses count: temporary (privacy), deprecated and tentative ones are skipped.
    Interface { name: String },
    /// The address the home side last pushed to this daemon's update endpoint
    /// (`ip::push`), if younger than `max_age`.
    Push { max_age: Duration },
    /// The home router's external address over UPnP IGD; `url` is its device description.
    Upnp { url: String },
}

#[derive(Clone, Debug)]
pub struct Source {
    pub name: String,
    /// Who runs it: agreement counts operators, not sources.
    pub operator: String,
    pub family: Family,
    pub kind: SourceKind,
    pub timeout: Duration,
}

/// Settings for finding the public address.
#[derive(Debug, Clone)]
pub struct IpConfig {
    /// How often every source is asked.
    pub interval: Duration,
    /// Operators that must agree before a new address is published.
    pub quorum: usize,
    /// Networks accepted although not public (labs, tests).
    pub allow: Vec<Net>,
    pub sources: Vec<Source>,
    /// The update endpoint for pushed addresses, if any.
    pub push: Option<PushConfig>,
}

/// `[ip.push]`: where the home side reports its address (dyndns2 protocol).
#[derive(Debug, Clone)]
pub struct PushConfig {
    pub listen: SocketAddr,
    pub username: String,
    pub password: super::Secret,
    /// Certificate and key (PEM); required unless `listen` is loopback.
    pub tls: Option<(PathBuf, PathBuf)>,
}

impl Default for IpConfig {
    fn default() -> Self {
        IpConfig {
            interval: Duration::from_secs(60),
            quorum: 2,
            allow: vec![],
            sources: vec![],
            push: None,
        }
    }
}

impl IpConfig {
    pub fn families(&self) -> BTreeSet<Family> {
        self.sources.iter().map(|s| s.family).collect()
    }
}

/// A plain dynamic-DNS name: follows the public address, no probes, no failover.
#[derive(Debug, Clone)]
pub struct DdnsRecord {
    pub name: Name,
    pub families: Vec<Family>,
}

impl DdnsRecord {
    pub fn record_type(family: Family) -> RecordType {
        match family {
            Family::Ipv4 => RecordType::A,
            Family::Ipv6 => RecordType::AAAA,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIp {
    interval: Option<Spanned<DurationValue>>,
    quorum: Option<Spanned<i64>>,
    allow: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    sources: Vec<Spanned<RawSource>>,
    push: Option<Spanned<RawPush>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPush {
    listen: Option<Spanned<String>>,
    username: Option<Spanned<String>>,
    password: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    password_env: Option<Spanned<String>>,
    tls_cert: Option<Spanned<String>>,
    tls_key: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSource {
    name: Option<Spanned<String>>,
    operator: Option<Spanned<String>>,
    #[serde(rename = "type")]
    kind: Option<Spanned<String>>,
    family: Option<Spanned<String>>,
    timeout: Option<Spanned<DurationValue>>,
    url: Option<Spanned<String>>,
    json_field: Option<Spanned<String>>,
    server: Option<Spanned<String>>,
    question: Option<Spanned<String>>,
    qtype: Option<Spanned<String>>,
    qclass: Option<Spanned<String>>,
    interface: Option<Spanned<String>>,
    max_age: Option<Spanned<DurationValue>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDdns {
    name: Option<Spanned<String>>,
    families: Option<Vec<Spanned<String>>>,
}

fn family(cx: &Cx, v: &Spanned<String>, key: &str) -> R<Family> {
    match v.get_ref().to_ascii_lowercase().as_str() {
        "ipv4" | "4" | "a" => Ok(Family::Ipv4),
        "ipv6" | "6" | "aaaa" => Ok(Family::Ipv6),
        other => cx.err(
            v.span(),
            key,
            format!("`{other}` is not an address family: expected \"ipv4\" or \"ipv6\""),
        ),
    }
}

impl Cx<'_> {
    pub(super) fn build_ip(&self, raw: Option<Spanned<RawIp>>) -> R<IpConfig> {
        let Some(raw) = raw else {
            return Ok(IpConfig::default());
        };
        let raw = raw.into_inner();
        let interval = self.duration(
            &raw.interval,
            "ip.interval",
            Duration::from_secs(60),
            Duration::from_secs(1),
        )?;
        let quorum = match &raw.quorum {
            None => 2,
            Some(q) if (1..=10).contains(q.get_ref()) => *q.get_ref() as usize,
            Some(q) => {
                return self.err(
                    q.span(),
                    "ip.quorum",
                    format!(
                        "{} is out of range: how many operators must agree, 1 to 10 (default 2)",
                        q.get_ref()
                    ),
                )
            }
        };
        if let (1, Some(q)) = (quorum, &raw.quorum) {
            self.warn(q.span(), "ip.quorum", "1: a single source decides the published address; one wrong answer will be published");
        }
        let mut allow = vec![];
        for (i, a) in raw.allow.iter().flatten().enumerate() {
            allow.push(
                Net::parse(a.get_ref())
                    .or_else(|e| self.err(a.span(), &format!("ip.allow[{i}]"), e))?,
            );
        }
        let push = match &raw.push {
            None => None,
            Some(p) => {
                let span = p.span();
                let p = p.get_ref();
                let Some(listen) = &p.listen else {
                    return self.err(
                        span,
                        "ip.push",
                        "missing key `listen`: where the update endpoint listens, e.g. listen = \"0.0.0.0:8245\"",
                    );
                };
                let addr: SocketAddr = listen.get_ref().parse().or_else(|_| {
                    self.err(
                        listen.span(),
                        "ip.push.listen",
                        format!("`{}` is not an address with a port", listen.get_ref()),
                    )
                })?;
                let Some((password, pspan)) = self.secret(
                    "password",
                    &p.password,
                    &p.password_file,
                    &p.password_env,
                    "ip.push",
                )?
                else {
                    return self.err(
                        span,
                        "ip.push",
                        "missing key `password` (or password_file / password_env): what the home side authenticates with",
                    );
                };
                let username = p
                    .username
                    .as_ref()
                    .map(|u| u.get_ref().clone())
                    .unwrap_or_else(|| "understudy".to_string());
                let tls = match (&p.tls_cert, &p.tls_key) {
                    (Some(c), Some(k)) => {
                        let (c, k) = (
                            self.resolve_path(c.get_ref()),
                            self.resolve_path(k.get_ref()),
                        );
                        crate::tls::acceptor(&c, &k)
                            .or_else(|e| self.err(span.clone(), "ip.push.tls_cert", e))?;
                        Some((c, k))
                    }
                    (None, None) if addr.ip().is_loopback() => None,
                    (None, None) => {
                        return self.err(listen.span(), "ip.push.listen", format!("{addr} is not loopback, and the endpoint carries a password: give tls_cert and tls_key (PEM files) for HTTPS"));
                    }
                    (Some(c), None) => {
                        return self.err(c.span(), "ip.push.tls_cert", "needs tls_key too")
                    }
                    (None, Some(k)) => {
                        return self.err(k.span(), "ip.push.tls_key", "needs tls_cert too")
                    }
                };
                let pkey = self.secret_key_given(
                    "ip.push",
                    "password",
                    [&p.password, &p.password_file, &p.password_env],
                );
                let chars = password.0.chars().count();
                if chars < super::MIN_PUSH_PASSWORD {
                    return self.err(
                        pspan,
                        &pkey,
                        format!(
                            "the password has {chars} characters; the endpoint faces the internet, so it needs at least {} \
                             (e.g. from `openssl rand -base64 24`)",
                            super::MIN_PUSH_PASSWORD
                        ),
                    );
                }
                let one_kind = password.0.chars().all(|c| c.is_ascii_lowercase())
                    || password.0.chars().all(|c| c.is_ascii_digit());
                if one_kind && chars < 20 {
                    self.warn(pspan, &pkey, "the password is only lowercase letters or only digits; a random one is much harder to guess");
                }
                Some(PushConfig {
                    listen: addr,
                    username,
                    password,
                    tls,
                })
            }
        };
        let mut sources: Vec<Source> = vec![];
        let mut spans = vec![];
        for (i, s) in raw.sources.into_iter().enumerate() {
            let span = s.span();
            spans.push(span.clone());
            let s = s.into_inner();
            let key = format!("ip.sources[{i}]");
            let Some(name) = &s.name else {
                return self.err(span, &key, "missing key `name`, e.g. name = \"ipify\"");
            };
            if sources.iter().any(|o| &o.name == name.get_ref()) {
                return self.err(
                    name.span(),
                    &format!("{key}.name"),
                    format!("source name `{}` is used twice", name.get_ref()),
                );
            }
            let Some(fam) = &s.family else {
                return self.err(
                    span,
                    &key,
                    "missing key `family`: \"ipv4\" or \"ipv6\" (a source answers for one family)",
                );
            };
            let fam = family(self, fam, &format!("{key}.family"))?;
            let timeout = self.duration(
                &s.timeout,
                &format!("{key}.timeout"),
                Duration::from_secs(5),
                Duration::from_millis(50),
            )?;
            let Some(kind) = &s.kind else {
                return self.err(
                    span,
                    &key,
                    "missing key `type`: \"http\", \"dns\", \"interface\", \"push\" or \"upnp\"",
                );
            };
            // Keys that belong to each type; any other key that is set is an error.
            let given = [
                ("url", span_of(&s.url)),
                ("json_field", span_of(&s.json_field)),
                ("server", span_of(&s.server)),
                ("question", span_of(&s.question)),
                ("qtype", span_of(&s.qtype)),
                ("qclass", span_of(&s.qclass)),
                ("interface", span_of(&s.interface)),
                ("max_age", span_of(&s.max_age)),
            ];
            let allowed: &[&str] = match kind.get_ref().as_str() {
                "http" => &["url", "json_field"],
                "dns" => &["server", "question", "qtype", "qclass"],
                "interface" => &["interface"],
                "push" => &["max_age"],
                "upnp" => &["url"],
                _ => &[],
            };
            self.keys_for_type(&key, kind.get_ref(), &given, allowed)?;
            let kind = match kind.get_ref().as_str() {
                "upnp" => {
                    let Some(url) = &s.url else {
                        return self.err(span, &key, "missing key `url`: the router's UPnP description, e.g. url = \"http://192.168.1.1:5000/rootDesc.xml\" (`upnpc -l` shows it)");
                    };
                    let url = self.url(url, &format!("{key}.url"), &["http"], "UPnP descriptions are plain HTTP on the LAN")?;
                    SourceKind::Upnp { url }
                }
                "push" => {
                    if push.is_none() {
                        return self.err(
                            kind.span(),
                            &format!("{key}.type"),
                            "a push source needs the update endpoint: add an [ip.push] table",
                        );
                    }
                    SourceKind::Push {
                        max_age: self.duration(&s.max_age, &format!("{key}.max_age"), Duration::from_secs(900), Duration::from_secs(1))?,
                    }
                }
                "interface" => {
                    let Some(iface) = &s.interface else {
                        return self.err(
                            span,
                            &key,
                            "missing key `interface`: the network interface that holds the public address, e.g. interface = \"eth0\"",
                        );
                    };
                    let n = iface.get_ref();
                    if n.is_empty() || n.len() > 15 || !n.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c)) {
                        return self.err(iface.span(), &format!("{key}.interface"), format!("`{n}` is not an interface name"));
                    }
                    SourceKind::Interface { name: n.clone() }
                }
                "http" => {
                    let Some(url) = &s.url else {
                        return self.err(span, &key, "missing key `url`, e.g. url = \"https://api.ipify.org\"");
                    };
                    let url = self.url(url, &format!("{key}.url"), super::provider::WEB, "")?;
                    SourceKind::Http { url, json_field: s.json_field.as_ref().map(|j| j.get_ref().clone()) }
                }
                "dns" => {
                    let Some(server) = &s.server else {
                        return self.err(span, &key, "missing key `server`: the DNS server to ask, e.g. server = \"208.67.222.222:53\"");
                    };
                    let server: SocketAddr = server.get_ref().parse().or_else(|_| {
                        self.err(
                            server.span(),
                            &format!("{key}.server"),
                            format!("`{}` is not an address with a port, e.g. \"208.67.222.222:53\"", server.get_ref()),
                        )
                    })?;
                    let Some(question) = &s.question else {
                        return self.err(span, &key, "missing key `question`: the name to ask, e.g. question = \"myip.opendns.com\"");
                    };
                    let name = self.dns_name(question, &format!("{key}.question"))?;
                    let qtype = match s.qtype.as_ref().map(|q| q.get_ref().to_ascii_uppercase()) {
                        None => match fam {
                            Family::Ipv4 => RecordType::A,
                            Family::Ipv6 => RecordType::AAAA,
                        },
                        Some(q) if q == "A" && fam == Family::Ipv4 => RecordType::A,
                        Some(q) if q == "AAAA" && fam == Family::Ipv6 => RecordType::AAAA,
                        Some(q) if q == "TXT" => RecordType::TXT,
                        Some(q) => {
                            let qspan = s.qtype.as_ref().map(|q| q.span()).unwrap_or(span.clone());
                            return self.err(
                                qspan,
                                &format!("{key}.qtype"),
                                format!("`{q}` does not fit family {fam}: use A (ipv4), AAAA (ipv6) or TXT"),
                            );
                        }
                    };
                    let qclass = match s.qclass.as_ref().map(|c| (c, c.get_ref().to_ascii_uppercase())) {
                        None => hickory_proto::rr::DNSClass::IN,
                        Some((_, c)) if c == "IN" => hickory_proto::rr::DNSClass::IN,
                        Some((_, c)) if (c == "CH" || c == "CHAOS") && qtype == RecordType::TXT => hickory_proto::rr::DNSClass::CH,
                        Some((c, _)) => {
                            return self.err(
                                c.span(),
                                &format!("{key}.qclass"),
                                format!(
                                    "`{}` is not usable here: \"IN\" (default), or \"CH\" with qtype = \"TXT\" (as for whoami.cloudflare)",
                                    c.get_ref()
                                ),
                            );
                        }
                    };
                    SourceKind::Dns { server, name, qtype, qclass }
                }
                other => {
                    return self.err(
                        kind.span(),
                        &format!("{key}.type"),
                        format!("`{other}` is not a source type: expected \"http\", \"dns\", \"interface\", \"push\" or \"upnp\""),
                    )
                }
            };
            let operator = s
                .operator
                .as_ref()
                .map(|o| o.get_ref().clone())
                .unwrap_or_else(|| name.get_ref().clone());
            sources.push(Source {
                name: name.get_ref().clone(),
                operator,
                family: fam,
                kind,
                timeout,
            });
        }
        for fam in [Family::Ipv4, Family::Ipv6] {
            let ops: BTreeSet<&str> = sources
                .iter()
                .filter(|s| s.family == fam)
                .map(|s| s.operator.as_str())
                .collect();
            if !ops.is_empty() && ops.len() < quorum {
                let first = sources
                    .iter()
                    .position(|s| s.family == fam)
                    .map(|i| spans[i].clone())
                    .unwrap_or(0..0);
                return self.err(first, "ip.sources", format!("{fam}: {} operator(s) among the sources but quorum = {quorum}; add sources run by other operators, or lower ip.quorum", ops.len()));
            }
        }
        Ok(IpConfig {
            interval,
            quorum,
            allow,
            sources,
            push,
        })
    }

    pub(super) fn build_ddns(
        &self,
        raw: Vec<Spanned<RawDdns>>,
        dns: &DnsConfig,
        ip: &IpConfig,
        owned: &mut HashMap<LowerName, String>,
    ) -> R<Vec<DdnsRecord>> {
        let mut out = vec![];
        for (i, r) in raw.into_iter().enumerate() {
            let span = r.span();
            let r = r.into_inner();
            let key = format!("ddns[{i}]");
            let Some(name_raw) = &r.name else {
                return self.err(
                    span,
                    &key,
                    "missing key `name`: the name that follows the public address, e.g. name = \"home.example.com\"",
                );
            };
            let name = self.dns_name(name_raw, &format!("{key}.name"))?;
            if !dns.zones.iter().any(|z| z.origin.zone_of(&name)) {
                return self.err(
                    name_raw.span(),
                    &format!("{key}.name"),
                    format!("{name} is not inside any configured zone"),
                );
            }
            if let Some(other) = owned.insert(LowerName::new(&name), format!("ddns {name}")) {
                return self.err(
                    name_raw.span(),
                    &format!("{key}.name"),
                    format!("{name} is already managed by {other}: each name has one owner"),
                );
            }
            let families = match &r.families {
                None => ip.families().into_iter().collect::<Vec<_>>(),
                Some(list) => list
                    .iter()
                    .enumerate()
                    .map(|(j, f)| family(self, f, &format!("{key}.families[{j}]")))
                    .collect::<R<Vec<_>>>()?,
            };
            for f in &families {
                if !ip.families().contains(f) {
                    return self.err(
                        name_raw.span(),
                        &format!("{key}.families"),
                        format!(
                            "no [[ip.sources]] answer for {f}: add one or drop {f} from families"
                        ),
                    );
                }
            }
            if families.is_empty() {
                return self.err(
                    name_raw.span(),
                    &format!("{key}.name"),
                    "no [[ip.sources]] are configured, so this name has no address to follow",
                );
            }
            out.push(DdnsRecord { name, families });
        }
        Ok(out)
    }
}
