//! `[[notify]]`: the channels the operator is told on (issue 14).
//!
//! ```toml
//! [[notify]]
//! name = "ops"                                    # how `notify test` and the logs name it
//! url = "webhook+https://hooks.example.net/understudy"
//! secret_file = "/etc/understudy/webhook.key"     # HMAC-SHA256 key (or secret / secret_env)
//! events = ["failed-over", "failed-back"]         # default: every kind but `transition`
//! min_severity = "warning"                        # info (default), warning or critical
//! max_age = "1d"                                  # older undelivered messages are dropped
//! ```
//!
//! URLs follow the Shoutrrr style. Two services so far:
//!
//! - `webhook+https://host/path`: the native webhook (`crate::notify`), signed with `secret`;
//!   plain `webhook+http://` only to a loopback address, since the body says what happened.
//! - `smtp://[user@]host[:port]/?fromaddress=a@x&toaddresses=b@y,c@z[&encryption=…]`: email.
//!   `encryption` is `auto` (the default: implicit TLS on port 465, STARTTLS otherwise),
//!   `explicittls` (STARTTLS), `implicittls` or `none` (loopback only); the port defaults to
//!   465 for implicit TLS and 587 otherwise; `secret` is the user's password.
//!
//! A password never goes in a URL (check-config prints URLs): it comes from `secret`,
//! `secret_file` or `secret_env`. `ca_file` trusts a private CA for the service's TLS.

use super::*;

/// The event kinds a channel can subscribe to: the words of `crate::events::EventKind`
/// (configuration sits below that module; a test there keeps the two lists equal).
pub const EVENT_NAMES: &[&str] = &[
    "first-seen",
    "failed-over",
    "failed-back",
    "both-down",
    "standby-not-ready",
    "transition",
    "drained",
    "released",
    "certificate-expiring",
    "address-changed",
    "crawl-published",
    "crawl-rejected",
    "daemon-started",
    "daemon-stopped",
];

/// What a channel gets when it names no `events`: everything but the phase changes that move
/// nothing (`transition`), a site's first appearance (`first-seen`) and the routine news of a
/// crawl that published (`crawl-published`; a crawl that did not is on).
pub const DEFAULT_EVENTS: &[&str] = &[
    "failed-over",
    "failed-back",
    "both-down",
    "standby-not-ready",
    "drained",
    "released",
    "certificate-expiring",
    "address-changed",
    "crawl-rejected",
    "daemon-started",
    "daemon-stopped",
];

/// How urgent a message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Nothing is wrong for visitors (a failback, a release, an address change).
    Info,
    /// Visitors are served, but not as usual (a failover), or soon will not be (a
    /// certificate about to expire).
    Warning,
    /// Visitors get errors: nothing that answers has the records.
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// How long an undelivered message is worth sending, by default.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    pub(super) name: Option<Spanned<String>>,
    pub(super) url: Option<Spanned<String>>,
    pub(super) secret: Option<Spanned<String>>,
    pub(super) secret_file: Option<Spanned<String>>,
    pub(super) secret_env: Option<Spanned<String>>,
    pub(super) events: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) max_age: Option<Spanned<DurationValue>>,
    pub(super) ca_file: Option<Spanned<String>>,
    pub(super) min_severity: Option<Spanned<String>>,
}

/// One notification channel.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    pub name: String,
    /// The `url` as configured (it holds no password).
    pub url: String,
    pub service: NotifyService,
    /// The webhook's signing key, or the SMTP user's password.
    pub secret: Option<Secret>,
    /// The event kinds it gets, as [`EVENT_NAMES`] words.
    pub events: Vec<String>,
    /// Of those, only the ones at least this urgent.
    pub min_severity: Severity,
    pub max_age: Duration,
    /// A PEM root to trust for the service's TLS instead of the public ones.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyService {
    /// A JSON POST signed with HMAC-SHA256 (`crate::notify`), to this `http(s)` URL.
    Webhook(url::Url),
    /// An ntfy topic: its `http(s)` URL (server and topic).
    Ntfy(url::Url),
    /// Mail over SMTP.
    Email(EmailConfig),
}

impl NotifyService {
    pub fn as_str(&self) -> &'static str {
        match self {
            NotifyService::Webhook(_) => "webhook",
            NotifyService::Ntfy(_) => "ntfy",
            NotifyService::Email(_) => "email",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailConfig {
    pub host: String,
    pub port: u16,
    pub tls: EmailTls,
    /// Logs in as this user (with `secret` as the password) when set.
    pub user: Option<String>,
    pub from: String,
    pub to: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailTls {
    /// STARTTLS, required: no mail goes out in clear text.
    StartTls,
    /// TLS from the first byte (SMTPS).
    Implicit,
    /// Clear text (loopback only).
    None,
}

impl Cx<'_> {
    pub(super) fn build_notify(&self, raw: Vec<Spanned<RawNotify>>) -> R<Vec<NotifyConfig>> {
        let mut out: Vec<NotifyConfig> = Vec::new();
        for (i, n) in raw.into_iter().enumerate() {
            let span = n.span();
            let n = n.into_inner();
            let base = format!("notify[{i}]");
            let Some(url) = &n.url else {
                return self.err(
                    span,
                    &base,
                    "missing key `url`, e.g. url = \"webhook+https://hooks.example.net/understudy\"",
                );
            };
            let key = format!("{base}.url");
            let service = match url.get_ref().split_once("://") {
                Some(("webhook+http" | "webhook+https", _)) => self.webhook(url, &key)?,
                Some(("smtp", _)) => self.email(url, &key)?,
                Some(("ntfy", _)) => self.ntfy(url, &key)?,
                _ => {
                    return self.err(
                        url.span(),
                        &key,
                        format!(
                            "`{}` is not a channel URL this version knows: use \
                             webhook+https://host/path, ntfy://host/topic or \
                             smtp://host:587/?fromaddress=…&toaddresses=…",
                            redact_userinfo(url.get_ref())
                        ),
                    )
                }
            };
            let name = match &n.name {
                Some(v) if v.get_ref().trim().is_empty() => {
                    return self.err(v.span(), &format!("{base}.name"), "the name is empty")
                }
                Some(v) => v.get_ref().clone(),
                None => format!("{}-{i}", service.as_str()),
            };
            if out.iter().any(|o| o.name == name) {
                let s = n.name.as_ref().map_or(span.clone(), |v| v.span());
                return self.err(
                    s,
                    &format!("{base}.name"),
                    format!("channel name `{name}` is used twice"),
                );
            }
            let secret = self
                .secret("secret", &n.secret, &n.secret_file, &n.secret_env, &base)?
                .map(|(s, _)| s);
            if let NotifyService::Email(e) = &service {
                if e.user.is_some() && secret.is_none() {
                    return self.err(
                        url.span(),
                        &key,
                        "a user to log in as needs its password: give `secret_file` (or secret / secret_env)",
                    );
                }
            }
            let events = self.notify_events(&n.events, &base)?;
            let max_age = self.duration(
                &n.max_age,
                &format!("{base}.max_age"),
                DEFAULT_MAX_AGE,
                Duration::from_secs(60),
            )?;
            let min_severity = match &n.min_severity {
                None => Severity::Info,
                Some(v) => match Severity::ALL
                    .into_iter()
                    .find(|s| s.as_str() == v.get_ref())
                {
                    Some(s) => s,
                    None => {
                        return self.err(
                            v.span(),
                            &format!("{base}.min_severity"),
                            format!(
                                "`{}` is not a severity: info, warning or critical",
                                v.get_ref()
                            ),
                        )
                    }
                },
            };
            let ca_file = match &n.ca_file {
                Some(c) => Some(self.ca_file(c, &format!("{base}.ca_file"))?),
                None => None,
            };
            out.push(NotifyConfig {
                name,
                url: url.get_ref().clone(),
                service,
                secret,
                events,
                min_severity,
                max_age,
                ca_file,
            });
        }
        Ok(out)
    }

    fn notify_events(
        &self,
        given: &Option<Spanned<Vec<Spanned<String>>>>,
        base: &str,
    ) -> R<Vec<String>> {
        let Some(list) = given else {
            return Ok(DEFAULT_EVENTS.iter().map(|e| e.to_string()).collect());
        };
        let mut ev = Vec::new();
        for e in list.get_ref() {
            if !EVENT_NAMES.contains(&e.get_ref().as_str()) {
                return self.err(
                    e.span(),
                    &format!("{base}.events"),
                    format!(
                        "`{}` is not an event kind{}; the kinds are: {}",
                        e.get_ref(),
                        cx::closest(e.get_ref(), EVENT_NAMES)
                            .map(|m| format!(" (did you mean `{m}`?)"))
                            .unwrap_or_default(),
                        EVENT_NAMES.join(", ")
                    ),
                );
            }
            ev.push(e.get_ref().clone());
        }
        Ok(ev)
    }

    fn webhook(&self, url: &Spanned<String>, key: &str) -> R<NotifyService> {
        let rest = url.get_ref().strip_prefix("webhook+").unwrap_or_default();
        let Some(target) = url::Url::parse(rest)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        else {
            return self.err(
                url.span(),
                key,
                format!(
                    "`{}` is not an http(s) URL after `webhook+`",
                    redact_userinfo(rest)
                ),
            );
        };
        if !target.username().is_empty() || target.password().is_some() {
            return self.err(
                url.span(),
                key,
                "the URL carries credentials (user:password@), which check-config and the \
                 logs would show: leave them out and sign with `secret_file` instead",
            );
        }
        if target.scheme() == "http" && !is_loopback_host(&target) {
            return self.err(
                url.span(),
                key,
                format!(
                    "{} is not a loopback address: over the network use webhook+https:// \
                     (the body says what happened to your sites)",
                    target.host_str().unwrap_or_default()
                ),
            );
        }
        Ok(NotifyService::Webhook(target))
    }

    /// `url` parsed, with a host, or an error saying it is not a `form` URL.
    fn host_url(&self, url: &Spanned<String>, key: &str, form: &str) -> R<url::Url> {
        match url::Url::parse(url.get_ref()) {
            Ok(u) if u.host().is_some() => Ok(u),
            _ => self.err(
                url.span(),
                key,
                format!("`{}` is not an {form} URL", redact_userinfo(url.get_ref())),
            ),
        }
    }

    /// `ntfy://host[:port]/topic` (HTTPS; `?scheme=http` to a loopback server).
    fn ntfy(&self, url: &Spanned<String>, key: &str) -> R<NotifyService> {
        let bad = |why: String| self.err(url.span(), key, why);
        let u = self.host_url(url, key, "ntfy://host/topic")?;
        if !u.username().is_empty() || u.password().is_some() {
            return bad(
                "the URL carries credentials, which check-config and the logs would show: give \
                 the access token with `secret_file` (or secret / secret_env) instead"
                    .to_string(),
            );
        }
        let topic = u.path().trim_matches('/');
        if topic.is_empty() || topic.contains('/') {
            return bad("name one topic after the host: ntfy://ntfy.sh/my-alerts".to_string());
        }
        let mut scheme = "https".to_string();
        for (k, v) in u.query_pairs() {
            match k.as_ref() {
                "scheme" if v == "http" || v == "https" => scheme = v.to_string(),
                other => {
                    return bad(format!(
                        "`{other}={v}` is not a parameter of ntfy:// URLs (scheme=http|https)"
                    ))
                }
            }
        }
        let host = u.host_str().unwrap_or_default();
        let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
        let target = url::Url::parse(&format!("{scheme}://{host}{port}/{topic}"))
            .or_else(|e| self.err(url.span(), key, format!("{e}")))?;
        if scheme == "http" && !is_loopback_host(&target) {
            return bad(format!(
                "scheme=http only to a loopback address, not {host}: the token and the message \
                 would cross the network in clear text"
            ));
        }
        Ok(NotifyService::Ntfy(target))
    }

    fn email(&self, url: &Spanned<String>, key: &str) -> R<NotifyService> {
        let bad = |why: String| self.err(url.span(), key, why);
        let u = self.host_url(url, key, "smtp://host")?;
        if u.password().is_some() {
            return bad(
                "the URL carries a password, which check-config and the logs would show: \
                 give it with `secret_file` (or secret / secret_env) instead"
                    .to_string(),
            );
        }
        let (mut from, mut to, mut tls) = (None, Vec::new(), "auto".to_string());
        for (k, v) in u.query_pairs() {
            match k.to_ascii_lowercase().as_str() {
                "fromaddress" | "from" => from = Some(v.to_string()),
                "toaddresses" | "to" => {
                    to.extend(v.split(',').map(|a| a.trim().to_string()).filter(|a| !a.is_empty()))
                }
                "encryption" => tls = v.to_ascii_lowercase(),
                other => {
                    return bad(format!(
                        "`{other}` is not a parameter of smtp:// URLs: fromaddress, toaddresses, encryption"
                    ))
                }
            }
        }
        let Some(from) = from else {
            return bad("missing `fromaddress=` (the sender, e.g. understudy@example.net)".into());
        };
        if to.is_empty() {
            return bad("missing `toaddresses=` (one address or several, comma-separated)".into());
        }
        for a in std::iter::once(&from).chain(&to) {
            if let Err(e) = a.parse::<lettre::Address>() {
                return bad(format!("`{a}` is not an email address: {e}"));
            }
        }
        let tls = match (tls.as_str(), u.port()) {
            ("auto", Some(465)) | ("implicittls", _) => EmailTls::Implicit,
            ("auto", _) | ("explicittls", _) => EmailTls::StartTls,
            ("none", _) => EmailTls::None,
            (other, _) => {
                return bad(format!(
                    "encryption=`{other}` is not one of auto, explicittls, implicittls, none"
                ))
            }
        };
        if tls == EmailTls::None && !is_loopback_host(&u) {
            return bad(format!(
                "encryption=none sends mail (and any password) in clear text: only to a loopback \
                 address, not {}",
                u.host_str().unwrap_or_default()
            ));
        }
        let port = u
            .port()
            .unwrap_or(if tls == EmailTls::Implicit { 465 } else { 587 });
        Ok(NotifyService::Email(EmailConfig {
            host: u
                .host_str()
                .unwrap_or_default()
                .trim_matches(['[', ']'])
                .to_string(),
            port,
            tls,
            user: (!u.username().is_empty()).then(|| u.username().to_string()),
            from,
            to,
        }))
    }
}

fn is_loopback_host(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// A URL for an error message, any `user:password@` replaced.
fn redact_userinfo(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => format!("{}<redacted>{}", &url[..s + 3], &url[at..]),
        _ => url.to_string(),
    }
}
