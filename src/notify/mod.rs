//! Telling the operator (issue 14): every `[[notify]]` channel gets the events of the event log
//! it subscribes to, once each, in order, however long it is down and across restarts.
//!
//! **The event log is the outbox.** The store keeps, per channel, the id of the last event the
//! channel is done with (`notify_cursor`). A channel's task ([`run`]) reads the events after
//! it, delivers each one it subscribes to, and moves the cursor past it only then; so a crash
//! or a restart resends at most the one message that was in flight (receivers de-duplicate by
//! its delivery id), and a channel that is down for hours gets every message, in order, when
//! it is back. A channel seen for the first time starts at the end of the log ([`start`]): it
//! is not sent the history.
//!
//! **Retries.** A channel that cannot be reached, times out, or answers 5xx or 429 is retried
//! with backoff (1 s doubling to 5 min, or the `Retry-After` it gave), and a message older
//! than the channel's `max_age` is dropped with a log line instead. Any other answer (4xx) is
//! the receiver refusing this message for good: it is logged and skipped, so one bad message
//! cannot stop the channel.
//!
//! **One message per incident wave.** A channel gathers the events of one kind that follow
//! each other within its `group_wait` (default 2 s, measured from the last one gathered, at
//! most [`GROUP_MAX`] in all) into one message: when the home line fails and 40 sites fail
//! over within seconds, the channel gets one "40 sites failed over" listing them, and later one
//! "40 sites are back" with how long the outage lasted. The group is made of the events'
//! timestamps, not of when they were read, so a channel that was down gets the same messages
//! (with the same delivery ids) as one that was up. The daemon's own start and stop and an
//! address change are never grouped. The price is that a lone failover is told `group_wait`
//! after it happened.
//!
//! **The webhook** (`webhook+https://host/path`) is a POST of one JSON object per message:
//!
//! ```json
//! {"delivery": "ops-42", "channel": "ops", "event_id": 42, "kind": "failed-over",
//!  "severity": "warning", "site": "shop", "at": 1796230000000,
//!  "title": "shop failed over to the standby", "text": "At 02 Dec 2026 17:26 UTC ...",
//!  "from_phase": "suspect", "to_phase": "failed-over", "reason": "...",
//!  "records_before": "...", "records_after": "...",
//!  "sites": ["shop"], "event_ids": [42]}
//! ```
//!
//! (a grouped message has every site and event id in `sites` and `event_ids`, and the first
//! event's fields), with `Content-Type: application/json`, `X-Understudy-Event: <kind>`,
//! `X-Understudy-Delivery: <delivery>` (the same on every retry of one message) and, when the
//! channel has a `secret`, `X-Understudy-Signature-256: sha256=<hex>`: HMAC-SHA256 of the exact
//! body bytes under the secret. A receiver checks the signature over the raw body before
//! parsing it, and may refuse a delivery id it has seen. Any 2xx is delivered.
//!
//! The other services get what each documents (`services.rs`, `matrix.rs`, `email.rs`); a
//! 429 is retried after the wait the service asked for, in its header or its JSON body.

mod email;
mod matrix;
pub mod notice;
mod services;

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::{NotifyConfig, NotifyService};
use crate::events::EventKind;
use crate::store::{Event, Store, StoreError};
use crate::util::now_millis;
pub use notice::{Context, Notice, Severity};

/// How often a channel looks for new events when it has none.
const POLL: Duration = Duration::from_millis(250);
/// The longest wait between two tries of one message.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How long a channel waits when the event log cannot be read.
const STORE_RETRY: Duration = Duration::from_secs(5);
/// Events read from the log at a time.
const BATCH: usize = 100;
/// Events read at a time while gathering a group.
const GROUP_READ: usize = 2_000;
/// The longest a group is gathered for, from its first event.
pub const GROUP_MAX: Duration = Duration::from_secs(60);
/// One try of one message.
pub(crate) const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a message was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The channel is down or busy: try again, after `after` when it said so.
    #[error("{why}")]
    Retry {
        why: String,
        after: Option<Duration>,
    },
    /// The receiver refused this message; trying again will not help.
    #[error("{why}")]
    Refused { why: String },
}

/// One configured channel, ready to send: its settings, its HTTP client (its `ca_file`, if
/// any, is the only root) and what a service keeps between messages (a Matrix login, the
/// parts of a message already delivered to some of several chats).
pub struct Channel {
    pub cfg: NotifyConfig,
    http: reqwest::Client,
    matrix: matrix::Session,
    /// `<delivery>/<target>` of the targets a message in flight already reached, so a retry
    /// does not post it to them twice.
    reached: Mutex<HashSet<String>>,
}

impl Channel {
    pub fn new(cfg: NotifyConfig) -> anyhow::Result<Channel> {
        let http = crate::http::client_with_ca(SEND_TIMEOUT, cfg.ca_file.as_deref())
            .map_err(|e| anyhow::anyhow!("notify channel `{}`: {e}", cfg.name))?;
        Ok(Channel {
            cfg,
            http,
            matrix: matrix::Session::default(),
            reached: Mutex::new(HashSet::new()),
        })
    }

    /// Whether the channel gets `ev` (its kind subscribed, severe enough).
    fn wants(&self, ev: &Event) -> bool {
        self.cfg.events.contains(&ev.kind) && notice::severity(&ev.kind) >= self.cfg.min_severity
    }

    /// One try of one message about `evs` (none for `notify test`).
    pub async fn send(&self, evs: &[Event], msg: &Notice) -> Result<(), SendError> {
        let delivery = match evs.first() {
            Some(e) => format!("{}-{}", self.cfg.name, e.id),
            None => format!("{}-test-{}", self.cfg.name, now_millis()),
        };
        let out = match &self.cfg.service {
            NotifyService::Email(mail) => email::send(&self.cfg, mail, &delivery, msg).await,
            NotifyService::Matrix { .. } => matrix::send(self, &delivery, msg).await,
            NotifyService::Telegram { .. } => services::telegram(self, &delivery, msg).await,
            _ => {
                let req = services::request(self, evs, msg, &delivery);
                services::answer(self, req.send().await).await
            }
        };
        if !matches!(out, Err(SendError::Retry { .. })) {
            let prefix = format!("{delivery}/");
            self.parts().retain(|p| !p.starts_with(&prefix));
        }
        out
    }

    fn parts(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.reached.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What a channel calls itself in errors: `slack channel `ops``.
    fn what(&self) -> String {
        format!("{} channel `{}`", self.cfg.service.as_str(), self.cfg.name)
    }
}

/// Makes sure `channel` has a cursor, at the end of the log when it has none yet. The daemon
/// calls it for every channel before anything can happen, so no event of this run is missed.
pub fn start(store: &Store, channel: &str) -> Result<i64, StoreError> {
    if let Some(c) = store.notify_cursor(channel)? {
        return Ok(c);
    }
    let last = store.last_event_id()?;
    store.set_notify_cursor(channel, last, now_millis())?;
    Ok(last)
}

/// At shutdown: waits (at most `grace`) until every channel is done with the event `id` (the
/// daemon's `daemon-stopped`), so the operator hears of the stop while it happens; a channel
/// that is down gets it at the next start instead.
pub async fn drain(store: &Store, channels: &[String], id: i64, grace: Duration) {
    let deadline = tokio::time::Instant::now() + grace;
    while tokio::time::Instant::now() < deadline {
        let done = channels.iter().all(|c| {
            store
                .notify_cursor(c)
                .ok()
                .flatten()
                .is_some_and(|at| at >= id)
        });
        if done {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A channel's task: delivers the log to it until `stop` (module doc).
pub async fn run(
    ch: Channel,
    ttl: u32,
    proxied: std::sync::Arc<Vec<String>>,
    store: Store,
    stop: CancellationToken,
) {
    let name = ch.cfg.name.clone();
    let mut cursor = match start(&store, &name) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(channel = %name, "notifications stopped: {e}");
            return;
        }
    };
    loop {
        let batch = match store.events_after(cursor, BATCH) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(channel = %name, "cannot read the event log: {e}");
                if sleep_or_stop(STORE_RETRY, &stop).await {
                    return;
                }
                continue;
            }
        };
        if batch.is_empty() {
            if sleep_or_stop(POLL, &stop).await {
                return;
            }
            continue;
        }
        let before = cursor;
        let Some(first) = batch.into_iter().find(|ev| {
            let skip = !ch.wants(ev);
            if skip {
                cursor = ev.id;
            }
            !skip
        }) else {
            save_cursor(&store, &name, cursor);
            continue;
        };
        if cursor != before {
            save_cursor(&store, &name, cursor);
        }
        let Some((group, last)) = gather(&ch, &store, first, &stop).await else {
            return;
        };
        let cx = Context {
            ttl,
            began_at: began_at(&store, &group[0]),
            proxied: proxied.contains(&group[0].site),
        };
        let msg = if group.len() == 1 {
            notice::render(&group[0], &cx)
        } else {
            notice::render_group(&group, &cx)
        };
        if !deliver(&ch, &group, &msg, &stop).await {
            return;
        }
        cursor = last;
        save_cursor(&store, &name, cursor);
    }
}

/// `true` when stopped during the wait.
async fn sleep_or_stop(d: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}

/// The events told in one message with `first`, and the last event id it covers (module doc:
/// events of `first`'s kind, each within `group_wait` of the one before, ending at another
/// kind the channel gets; events it does not get are passed over). `None` when stopped.
async fn gather(
    ch: &Channel,
    store: &Store,
    first: Event,
    stop: &CancellationToken,
) -> Option<(Vec<Event>, i64)> {
    let mut last = first.id;
    let wait = ch.cfg.group_wait.as_millis() as u64;
    if wait == 0 || !notice::groups(&first.kind) {
        return Some((vec![first], last));
    }
    let cap = first.at + (GROUP_MAX.as_millis() as u64).max(wait);
    let mut last_at = first.at;
    let mut group = vec![first];
    loop {
        let deadline = (last_at + wait).min(cap);
        // A little past the deadline, for an event stamped just before it and written after.
        let now = now_millis();
        if now < deadline + 100
            && sleep_or_stop(Duration::from_millis(deadline + 100 - now), stop).await
        {
            return None;
        }
        let (mut grew, mut ended) = (false, false);
        'read: loop {
            let more = match store.events_after(last, GROUP_READ) {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!(channel = %ch.cfg.name, "cannot read the event log: {e}");
                    ended = true;
                    break;
                }
            };
            let full = more.len() == GROUP_READ;
            for e in more {
                if e.at > deadline {
                    break 'read;
                }
                if !ch.wants(&e) {
                    last = e.id;
                    continue;
                }
                if e.kind != group[0].kind {
                    ended = true;
                    break 'read;
                }
                (last, last_at, grew) = (e.id, e.at, true);
                group.push(e);
            }
            if !full {
                break;
            }
        }
        if !grew || ended || deadline >= cap {
            return Some((group, last));
        }
    }
}

fn save_cursor(store: &Store, channel: &str, id: i64) {
    if let Err(e) = store.set_notify_cursor(channel, id, now_millis()) {
        tracing::error!(%channel, "cannot record a delivery: {e}");
    }
}

/// Tries `msg` until it is delivered, refused or too old; `false` when stopped first.
async fn deliver(ch: &Channel, evs: &[Event], msg: &Notice, stop: &CancellationToken) -> bool {
    let name = &ch.cfg.name;
    let first = &evs[0];
    let n = evs.len();
    let mut backoff = Duration::from_secs(1);
    loop {
        let age = Duration::from_millis(now_millis().saturating_sub(first.at));
        if age > ch.cfg.max_age {
            tracing::warn!(channel = %name, event = first.id, events = n, kind = %first.kind, site = %first.site,
                "notification dropped: not delivered within max_age ({})", crate::util::human(ch.cfg.max_age));
            crate::metrics::get().notification(name, "dropped");
            return true;
        }
        match ch.send(evs, msg).await {
            Ok(()) => {
                tracing::info!(channel = %name, event = first.id, events = n, kind = %first.kind, site = %first.site, "notification delivered");
                crate::metrics::get().notification(name, "delivered");
                return true;
            }
            Err(SendError::Refused { why }) => {
                tracing::error!(channel = %name, event = first.id, kind = %first.kind, "notification refused, not retried: {why}");
                crate::metrics::get().notification(name, "refused");
                return true;
            }
            Err(SendError::Retry { why, after }) => {
                let wait = after.unwrap_or(backoff).min(MAX_BACKOFF);
                tracing::warn!(channel = %name, event = first.id, kind = %first.kind,
                    "notification not delivered, next try in {}: {why}", crate::util::human(wait));
                crate::metrics::get().notification(name, "retried");
                backoff = (backoff * 2).min(MAX_BACKOFF);
                if sleep_or_stop(wait, stop).await {
                    return false;
                }
            }
        }
    }
}

/// For an event that ends an outage (a failback, a release): when it began, from the site's
/// last failover or drain before it.
fn began_at(store: &Store, ev: &Event) -> Option<u64> {
    let starts: &[EventKind] = match EventKind::from_word(&ev.kind)? {
        EventKind::FailedBack => &[EventKind::FailedOver, EventKind::BothDown],
        EventKind::Released => &[EventKind::Drained],
        _ => return None,
    };
    store
        .events(Some(&ev.site), 200)
        .ok()?
        .into_iter()
        .filter(|e| e.id < ev.id)
        .find(|e| starts.iter().any(|k| k.as_str() == e.kind))
        .map(|e| e.at)
}

/// `sha256=<hex>` of HMAC-SHA256(`secret`, `body`).
pub fn signature(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// The message `notify test` sends.
pub fn test_notice() -> Notice {
    Notice {
        kind: "test".to_string(),
        severity: Severity::Info,
        site: String::new(),
        sites: Vec::new(),
        title: "understudy test message".to_string(),
        text: "This channel is set up: understudy will tell you here when a site fails over, \
               fails back, or needs you."
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    /// RFC 4231 test case 2 ("Jefe"), the HMAC-SHA256 the signature header carries.
    #[test]
    fn the_signature_is_hmac_sha256_of_the_body() {
        assert_eq!(
            super::signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
