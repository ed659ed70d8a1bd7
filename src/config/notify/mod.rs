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
//! URLs follow the Shoutrrr style (`FORMS`), and none carries a credential: a token,
//! password or key is the channel's `secret` (`secret_file` / `secret_env`), which
//! check-config and the logs never show.
//!
//! - `webhook+https://host/path`: the native webhook (`crate::notify`), signed with `secret`;
//!   plain `webhook+http://` only to a loopback address, since the body says what happened.
//! - `generic+https://host/path[?titlekey=…&messagekey=…&@Header=v&$field=v]`: a JSON POST of
//!   `{"title", "message"}` for any receiver; `secret`, if given, is a bearer token.
//! - `smtp://[user@]host[:port]/?fromaddress=a@x&toaddresses=b@y,c@z[&encryption=…]`: email.
//!   `encryption` is `auto` (the default: implicit TLS on port 465, STARTTLS otherwise),
//!   `explicittls` (STARTTLS), `implicittls` or `none` (loopback only); the port defaults to
//!   465 for implicit TLS and 587 otherwise; `secret` is the user's password.
//! - `ntfy://host/topic[?scheme=http]`: an ntfy topic; `secret` is an access token.
//! - `gotify://host[:port][/path][?disabletls=yes]`: `secret` is the application token.
//! - `matrix://[user@]host[:port]/?rooms=!id:server,%23alias:server[&disabletls=yes]`:
//!   `secret` is the user's password (understudy logs in) or, without a user, an access token.
//!   An alias's `#` is written `%23` (a bare `#` would end the URL's query).
//! - `slack://webhook[?channel=%23ops]`: `secret` is the incoming webhook's token, what follows
//!   `/services/` in its address (the whole address is accepted too).
//! - `discord://WEBHOOK_ID`: `secret` is the webhook's token.
//! - `telegram://telegram?chats=@channel,123456`: `secret` is the bot's token.
//!
//! Plain http (`scheme=http`, `disabletls=yes`, `encryption=none`) only to a loopback
//! address. `api_url` replaces the fixed API address of Slack, Discord and Telegram (for a
//! proxy, or a local receiver in tests). `ca_file` trusts a private CA for the service's TLS.
//!
//! `group_wait` (default 2 s) is how long a channel gathers events of one kind before it
//! sends them: when the home line fails and 40 sites fail over within it, the channel sends
//! one message listing the 40, not 40 messages (`crate::notify`).

use super::*;

mod service;

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
    "watcher-offline",
    "certificate-issued",
    "certificate-renewal-failing",
    "dns-unconfirmed",
    "dns-confirmed",
    "address-vote-split",
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
    "watcher-offline",
    "certificate-renewal-failing",
    "dns-unconfirmed",
    "dns-confirmed",
    "address-vote-split",
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
    pub(super) api_url: Option<Spanned<String>>,
    pub(super) group_wait: Option<Spanned<DurationValue>>,
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
    /// The `api_url` as configured, when given (Slack, Discord, Telegram).
    pub api_url: Option<String>,
    /// How long events of one kind are gathered into one message.
    pub group_wait: Duration,
}

/// How long a channel gathers events of one kind into one message, by default.
pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(2);

/// The URL forms a channel can have, for error messages.
pub(super) const FORMS: &[&str] = &[
    "webhook+https://host/path",
    "generic+https://host/path",
    "smtp://host:587/?fromaddress=…&toaddresses=…",
    "ntfy://host/topic",
    "gotify://host",
    "matrix://host/?rooms=…",
    "slack://webhook",
    "discord://WEBHOOK_ID",
    "telegram://telegram?chats=…",
];

/// Where a channel's messages go (the forms: the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyService {
    /// A JSON POST signed with HMAC-SHA256 (`crate::notify`), to this `http(s)` URL.
    Webhook(url::Url),
    /// A JSON POST of a title and a message, to any receiver.
    Generic(GenericConfig),
    /// An ntfy topic: its `http(s)` URL (server and topic).
    Ntfy(url::Url),
    /// Mail over SMTP.
    Email(EmailConfig),
    /// A Gotify server's base URL (`<base>/message`).
    Gotify(url::Url),
    /// A Matrix homeserver, the user to log in as (or none: the secret is an access token),
    /// and the rooms (ids or aliases).
    Matrix {
        home: url::Url,
        user: Option<String>,
        rooms: Vec<String>,
    },
    /// A Slack incoming webhook under `api` (`<api>/services/<token>`), optionally to another
    /// channel than its own.
    Slack {
        api: url::Url,
        channel: Option<String>,
    },
    /// A Discord webhook (`<api>/api/webhooks/<id>/<token>`).
    Discord { api: url::Url, webhook_id: String },
    /// A Telegram bot (`<api>/bot<token>/sendMessage`) and the chats it posts to.
    Telegram { api: url::Url, chats: Vec<String> },
}

impl NotifyService {
    pub fn as_str(&self) -> &'static str {
        match self {
            NotifyService::Webhook(_) => "webhook",
            NotifyService::Generic(_) => "generic",
            NotifyService::Ntfy(_) => "ntfy",
            NotifyService::Email(_) => "email",
            NotifyService::Gotify(_) => "gotify",
            NotifyService::Matrix { .. } => "matrix",
            NotifyService::Slack { .. } => "slack",
            NotifyService::Discord { .. } => "discord",
            NotifyService::Telegram { .. } => "telegram",
        }
    }

    /// What its `secret` is, when it cannot work without one.
    fn secret_needed(&self) -> Option<&'static str> {
        match self {
            NotifyService::Email(e) if e.user.is_some() => Some("the user's password"),
            NotifyService::Gotify(_) => Some("the application's token"),
            NotifyService::Matrix { user: Some(_), .. } => Some("the user's password"),
            NotifyService::Matrix { user: None, .. } => Some("an access token"),
            NotifyService::Slack { .. } => Some("the webhook's token"),
            NotifyService::Discord { .. } => Some("the webhook's token"),
            NotifyService::Telegram { .. } => Some("the bot's token"),
            _ => None,
        }
    }
}

/// `generic+`: where, and the JSON's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenericConfig {
    /// The receiver, with the query parameters meant for it.
    pub url: url::Url,
    pub title_key: String,
    pub message_key: String,
    /// Extra request headers (`@Name=value`).
    pub headers: Vec<(String, String)>,
    /// Extra string fields of the body (`$key=value`).
    pub fields: Vec<(String, String)>,
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
            let service = self.service(url, &key, &n.api_url, &base)?;
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
            if let (Some(what), None) = (service.secret_needed(), &secret) {
                return self.err(
                    url.span(),
                    &key,
                    format!(
                        "this {} channel needs {what}: give `secret_file` (or secret / secret_env)",
                        service.as_str()
                    ),
                );
            }
            let secret = match (&service, secret) {
                // The whole webhook address, as Slack shows it, is accepted for its token.
                (NotifyService::Slack { .. }, Some(s)) => Some(Secret(
                    s.0.strip_prefix("https://hooks.slack.com/services/")
                        .unwrap_or(&s.0)
                        .to_string(),
                )),
                (_, s) => s,
            };
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
            let group_wait = self.duration(
                &n.group_wait,
                &format!("{base}.group_wait"),
                DEFAULT_GROUP_WAIT,
                Duration::ZERO,
            )?;
            out.push(NotifyConfig {
                name,
                url: url.get_ref().clone(),
                service,
                secret,
                events,
                min_severity,
                max_age,
                ca_file,
                api_url: n.api_url.as_ref().map(|a| a.get_ref().clone()),
                group_wait,
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
}

pub(super) fn is_loopback_host(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        // A non-http scheme's host is not parsed as an address (`gotify://127.0.0.1`).
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost")
                || d.trim_matches(['[', ']'])
                    .parse::<IpAddr>()
                    .is_ok_and(|a| a.is_loopback())
        }
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
