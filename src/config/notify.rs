//! `[[notify]]`: the channels the operator is told on (issue 14).
//!
//! ```toml
//! [[notify]]
//! name = "ops"                                    # how `notify test` and the logs name it
//! url = "webhook+https://hooks.example.net/understudy"
//! secret_file = "/etc/understudy/webhook.key"     # HMAC-SHA256 key (or secret / secret_env)
//! events = ["failed-over", "failed-back"]         # default: every kind but `transition`
//! max_age = "1d"                                  # older undelivered messages are dropped
//! ```
//!
//! URLs follow the Shoutrrr style (`<service>+<transport>://…`). Today's service is the native
//! `webhook` (see `crate::notify`); plain `http` is accepted only to a loopback address, since
//! the body says what happened to the sites.

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
];

/// What a channel gets when it names no `events`: everything but the phase changes that move
/// nothing (`transition`) and a site's first appearance (`first-seen`).
pub const DEFAULT_EVENTS: &[&str] = &[
    "failed-over",
    "failed-back",
    "both-down",
    "standby-not-ready",
    "drained",
    "released",
    "certificate-expiring",
    "address-changed",
];

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
}

/// One notification channel.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    pub name: String,
    pub service: NotifyService,
    /// Where the service is reached (`https://…`, the service prefix removed).
    pub url: url::Url,
    /// The key the webhook body is signed with.
    pub secret: Option<Secret>,
    /// The event kinds it gets, as [`EVENT_NAMES`] words.
    pub events: Vec<String>,
    pub max_age: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyService {
    /// A JSON POST signed with HMAC-SHA256 (`crate::notify`).
    Webhook,
}

impl NotifyService {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyService::Webhook => "webhook",
        }
    }
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
            let (service, rest) = match url.get_ref().split_once('+') {
                Some(("webhook", rest)) => (NotifyService::Webhook, rest),
                _ => {
                    return self.err(
                        url.span(),
                        &key,
                        format!(
                            "`{}` is not a channel URL this version knows: use \
                             webhook+https://host/path (or webhook+http:// to a loopback address)",
                            redact_userinfo(url.get_ref())
                        ),
                    )
                }
            };
            let target = url::Url::parse(rest)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .map_or_else(
                    || {
                        self.err(
                            url.span(),
                            &key,
                            format!(
                                "`{}` is not an http(s) URL after `webhook+`",
                                redact_userinfo(rest)
                            ),
                        )
                    },
                    Ok,
                )?;
            if !target.username().is_empty() || target.password().is_some() {
                return self.err(
                    url.span(),
                    &key,
                    "the URL carries credentials (user:password@), which check-config and the \
                     logs would show: leave them out and sign with `secret_file` instead",
                );
            }
            if target.scheme() == "http" && !is_loopback_host(&target) {
                return self.err(
                    url.span(),
                    &key,
                    format!(
                        "{} is not a loopback address: over the network use webhook+https:// \
                         (the body says what happened to your sites)",
                        target.host_str().unwrap_or_default()
                    ),
                );
            }
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
            let events = match &n.events {
                None => DEFAULT_EVENTS.iter().map(|e| e.to_string()).collect(),
                Some(list) => {
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
                    ev
                }
            };
            let max_age = self.duration(
                &n.max_age,
                &format!("{base}.max_age"),
                DEFAULT_MAX_AGE,
                Duration::from_secs(60),
            )?;
            out.push(NotifyConfig {
                name,
                service,
                url: target,
                secret,
                events,
                max_age,
            });
        }
        Ok(out)
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
