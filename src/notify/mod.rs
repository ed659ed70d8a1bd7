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
//! **The webhook** (`webhook+https://host/path`) is a POST of one JSON object per event:
//!
//! ```json
//! {"delivery": "ops-42", "channel": "ops", "event_id": 42, "kind": "failed-over",
//!  "severity": "warning", "site": "shop", "at": 1796230000000,
//!  "title": "shop failed over to the standby", "text": "At 02 Dec 2026 17:26 UTC ...",
//!  "from_phase": "suspect", "to_phase": "failed-over", "reason": "...",
//!  "records_before": "...", "records_after": "..."}
//! ```
//!
//! with `Content-Type: application/json`, `X-Understudy-Event: <kind>`,
//! `X-Understudy-Delivery: <delivery>` (the same on every retry of one message) and, when the
//! channel has a `secret`, `X-Understudy-Signature-256: sha256=<hex>`: HMAC-SHA256 of the exact
//! body bytes under the secret. A receiver checks the signature over the raw body before
//! parsing it, and may refuse a delivery id it has seen. Any 2xx is delivered.
//!
//! **ntfy** (`ntfy://host/topic`) gets a publish as ntfy documents it: the text as the body,
//! `Title`, `Priority` from the severity, `Tags`, and the channel's secret as a bearer token.
//! **Email** is `email.rs`.

mod email;
pub mod notice;

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

/// The HTTP client channel `ch` sends with (its `ca_file`, if any, is the only root).
pub fn client(ch: &NotifyConfig) -> anyhow::Result<reqwest::Client> {
    crate::http::client_with_ca(SEND_TIMEOUT, ch.ca_file.as_deref())
        .map_err(|e| anyhow::anyhow!("notify channel `{}`: {e}", ch.name))
}

/// A channel's task: delivers the log to it until `stop` (module doc).
pub async fn run(
    ch: NotifyConfig,
    ttl: u32,
    store: Store,
    http: reqwest::Client,
    stop: CancellationToken,
) {
    let mut cursor = match start(&store, &ch.name) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(channel = %ch.name, "notifications stopped: {e}");
            return;
        }
    };
    loop {
        let (batch, idle) = match store.events_after(cursor, BATCH) {
            Ok(b) => {
                let idle = if b.is_empty() { POLL } else { Duration::ZERO };
                (b, idle)
            }
            Err(e) => {
                tracing::error!(channel = %ch.name, "cannot read the event log: {e}");
                (Vec::new(), STORE_RETRY)
            }
        };
        if !idle.is_zero() {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(idle) => continue,
            }
        }
        // The cursor is written after each delivery, and once past the events skipped.
        let mut skipped = false;
        for ev in batch {
            cursor = ev.id;
            if !ch.events.contains(&ev.kind) || notice::severity(&ev.kind) < ch.min_severity {
                skipped = true;
                continue;
            }
            let cx = Context {
                ttl,
                began_at: began_at(&store, &ev),
            };
            let msg = notice::render(&ev, &cx);
            if !deliver(&ch, &http, &ev, &msg, &stop).await {
                return;
            }
            skipped = false;
            save_cursor(&store, &ch.name, cursor);
        }
        if skipped {
            save_cursor(&store, &ch.name, cursor);
        }
    }
}

fn save_cursor(store: &Store, channel: &str, id: i64) {
    if let Err(e) = store.set_notify_cursor(channel, id, now_millis()) {
        tracing::error!(%channel, "cannot record a delivery: {e}");
    }
}

/// Tries `msg` until it is delivered, refused or too old; `false` when stopped first.
async fn deliver(
    ch: &NotifyConfig,
    http: &reqwest::Client,
    ev: &Event,
    msg: &Notice,
    stop: &CancellationToken,
) -> bool {
    let mut backoff = Duration::from_secs(1);
    loop {
        let age = Duration::from_millis(now_millis().saturating_sub(ev.at));
        if age > ch.max_age {
            tracing::warn!(channel = %ch.name, event = ev.id, kind = %ev.kind, site = %ev.site,
                "notification dropped: not delivered within max_age ({})", crate::util::human(ch.max_age));
            return true;
        }
        match send(ch, http, Some(ev), msg).await {
            Ok(()) => {
                tracing::info!(channel = %ch.name, event = ev.id, kind = %ev.kind, site = %ev.site, "notification delivered");
                return true;
            }
            Err(SendError::Refused { why }) => {
                tracing::error!(channel = %ch.name, event = ev.id, kind = %ev.kind, "notification refused, not retried: {why}");
                return true;
            }
            Err(SendError::Retry { why, after }) => {
                let wait = after.unwrap_or(backoff).min(MAX_BACKOFF);
                tracing::warn!(channel = %ch.name, event = ev.id, kind = %ev.kind,
                    "notification not delivered, next try in {}: {why}", crate::util::human(wait));
                backoff = (backoff * 2).min(MAX_BACKOFF);
                tokio::select! {
                    _ = stop.cancelled() => return false,
                    _ = tokio::time::sleep(wait) => {}
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

/// One try of one message on one channel (a webhook or ntfy POST, or a mail, [`email`]).
/// `ev` is `None` for `notify test`.
pub async fn send(
    ch: &NotifyConfig,
    http: &reqwest::Client,
    ev: Option<&Event>,
    msg: &Notice,
) -> Result<(), SendError> {
    let delivery = match ev {
        Some(e) => format!("{}-{}", ch.name, e.id),
        None => format!("{}-test-{}", ch.name, now_millis()),
    };
    let req = match &ch.service {
        NotifyService::Webhook(url) => webhook(ch, http, url, ev, msg, &delivery),
        NotifyService::Ntfy(url) => ntfy(ch, http, url, msg),
        NotifyService::Email(mail) => return email::send(ch, mail, &delivery, msg).await,
    };
    let what = format!("{} channel `{}`", ch.service.as_str(), ch.name);
    let resp = req.send().await.map_err(|e| SendError::Retry {
        // Without the URL: it may carry what the receiver treats as a credential.
        why: crate::http::transport_error(e.without_url(), &what),
        after: None,
    })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let after = crate::http::retry_after(resp.headers());
    let said: String = resp
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let why = format!("{what} answered {status}: {said}");
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        Err(SendError::Retry { why, after })
    } else {
        Err(SendError::Refused { why })
    }
}

/// The native webhook's request (module doc).
fn webhook(
    ch: &NotifyConfig,
    http: &reqwest::Client,
    url: &url::Url,
    ev: Option<&Event>,
    msg: &Notice,
    delivery: &str,
) -> reqwest::RequestBuilder {
    let body = serde_json::json!({
        "delivery": delivery,
        "channel": ch.name,
        "event_id": ev.map(|e| e.id),
        "kind": msg.kind,
        "severity": msg.severity,
        "site": msg.site,
        "at": ev.map_or_else(now_millis, |e| e.at),
        "title": msg.title,
        "text": msg.text,
        "from_phase": ev.and_then(|e| e.from_phase.clone()),
        "to_phase": ev.and_then(|e| e.to_phase.clone()),
        "reason": ev.map(|e| e.reason.clone()),
        "records_before": ev.and_then(|e| e.records_before.clone()),
        "records_after": ev.and_then(|e| e.records_after.clone()),
    })
    .to_string();
    let mut req = http
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Understudy-Event", &msg.kind)
        .header("X-Understudy-Delivery", delivery);
    if let Some(secret) = &ch.secret {
        req = req.header(
            "X-Understudy-Signature-256",
            signature(&secret.0, body.as_bytes()),
        );
    }
    req.body(body)
}

/// An ntfy publish (docs.ntfy.sh/publish): the text as the body, the title, a priority from
/// the severity (critical: urgent, warning: high, info: default) and a tag, and the access
/// token as a bearer token.
fn ntfy(
    ch: &NotifyConfig,
    http: &reqwest::Client,
    url: &url::Url,
    msg: &Notice,
) -> reqwest::RequestBuilder {
    let (priority, tag) = match msg.severity {
        Severity::Critical => ("urgent", "rotating_light"),
        Severity::Warning => ("high", "warning"),
        Severity::Info => ("default", "information_source"),
    };
    let mut req = http
        .post(url.clone())
        .header("Title", &msg.title)
        .header("Priority", priority)
        .header("Tags", format!("{tag},understudy,{}", msg.kind))
        .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8");
    if let Some(token) = &ch.secret {
        req = req.bearer_auth(&token.0);
    }
    req.body(msg.text.clone())
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
