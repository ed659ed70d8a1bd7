//! `[watcher]`: how the watcher checks itself (issue 14; design.md invariant 5 for one
//! watcher).
//!
//! ```toml
//! [watcher]
//! references = ["1.1.1.1:53", "8.8.8.8:53", "9.9.9.9:53"]   # the default
//! check_every = "60s"          # besides the check before acting on any "down"
//! heartbeat_url_file = "/etc/understudy/heartbeat.url"       # or heartbeat_url / _env
//! heartbeat_every = "60s"
//! ```
//!
//! `references` are addresses the watcher connects to (TCP) before it acts on a primary
//! being down: when none of them answers, the watcher's own link is the likelier cause, so it
//! abstains (`crate::watcher`). The default is three public resolvers of three operators;
//! a reference that never answered since the start is not counted, so a machine without
//! internet access is not held back by them. `references = []` turns the check off (the
//! tests do: their traffic stays on the machine). Addresses, not names: the check must not
//! depend on this machine's own resolver working.
//!
//! `heartbeat_url` is pinged (GET) every `heartbeat_every` while the daemon runs and its
//! links are up, so a dead man's switch (healthchecks.io, Uptime Kuma's push monitor, cron
//! monitors) notices when understudy goes silent. The URL is a capability (whoever has it can
//! ping), so it is given like a secret and never printed.

use super::*;

/// The references checked when `[watcher]` does not name any.
pub const DEFAULT_REFERENCES: &[&str] = &["1.1.1.1:53", "8.8.8.8:53", "9.9.9.9:53"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWatcher {
    pub(super) references: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) check_every: Option<Spanned<DurationValue>>,
    pub(super) heartbeat_url: Option<Spanned<String>>,
    pub(super) heartbeat_url_file: Option<Spanned<String>>,
    pub(super) heartbeat_url_env: Option<Spanned<String>>,
    pub(super) heartbeat_every: Option<Spanned<DurationValue>>,
}

#[derive(Debug, Clone)]
pub struct WatcherConfig {
    /// Empty: the check is off.
    pub references: Vec<SocketAddr>,
    pub check_every: Duration,
    /// The dead man's switch's URL (a secret) and how often it is pinged.
    pub heartbeat: Option<(Secret, Duration)>,
}

impl Cx<'_> {
    pub(super) fn build_watcher(&self, raw: Option<Spanned<RawWatcher>>) -> R<WatcherConfig> {
        let Some(raw) = raw else {
            return Ok(WatcherConfig {
                references: DEFAULT_REFERENCES
                    .iter()
                    .map(|a| a.parse().expect("valid"))
                    .collect(),
                check_every: Duration::from_secs(60),
                heartbeat: None,
            });
        };
        let w = raw.into_inner();
        let references = match &w.references {
            None => DEFAULT_REFERENCES
                .iter()
                .map(|a| a.parse().expect("valid"))
                .collect(),
            Some(list) => {
                let mut out = Vec::new();
                for (i, a) in list.get_ref().iter().enumerate() {
                    match a.get_ref().parse::<SocketAddr>() {
                        Ok(addr) => out.push(addr),
                        Err(_) => {
                            return self.err(
                                a.span(),
                                &format!("watcher.references[{i}]"),
                                format!(
                                    "`{}` is not an address with a port, e.g. \"9.9.9.9:53\" \
                                     (addresses, not names: the check must not depend on this \
                                     machine's resolver)",
                                    a.get_ref()
                                ),
                            )
                        }
                    }
                }
                out
            }
        };
        let check_every = self.duration(
            &w.check_every,
            "watcher.check_every",
            Duration::from_secs(60),
            Duration::from_secs(1),
        )?;
        let every = self.duration(
            &w.heartbeat_every,
            "watcher.heartbeat_every",
            Duration::from_secs(60),
            Duration::from_secs(1),
        )?;
        let heartbeat = match self.secret(
            "heartbeat_url",
            &w.heartbeat_url,
            &w.heartbeat_url_file,
            &w.heartbeat_url_env,
            "watcher",
        )? {
            None => None,
            Some((url, span)) => {
                let ok = url::Url::parse(&url.0).ok().filter(|u| {
                    u.host().is_some()
                        && (u.scheme() == "https"
                            || (u.scheme() == "http" && notify::is_loopback_host(u)))
                });
                if ok.is_none() {
                    return self.err(
                        span,
                        "watcher.heartbeat_url",
                        "the heartbeat URL is not an https:// URL (plain http only to a \
                         loopback address); the URL itself is not shown",
                    );
                }
                Some((url, every))
            }
        };
        Ok(WatcherConfig {
            references,
            check_every,
            heartbeat,
        })
    }
}
