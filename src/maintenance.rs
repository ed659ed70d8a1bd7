//! Scheduled maintenance windows (`[[sites.maintenance]]`, `crate::config::MaintenanceWindow`):
//! the task that drains a site before each window and releases it after.
//!
//! A window's site is drained `drain_before` its start (default: the records' TTL plus 30 s,
//! so resolvers have moved by the start), with a reason naming the window and its end: the
//! event log, `status` and the notifications say the site is in maintenance, and a drained
//! site raises no down alert while its primary reboots. At the end it is released; the
//! decision core then keeps the records on the standby until the primary answers its probes.
//!
//! The task releases only what it drained: a site the operator drained (before or during the
//! window) stays drained. A drain refused because the standby is not ready is retried every
//! 30 s until the window ends, and said once per window: the primary then stays in service
//! (never fail over to a worse standby). After a restart in the middle of a window, a site
//! drained with this window's reason is taken as its own again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, MaintenanceWindow};
use crate::control::{Command, CommandError, Message};
use crate::util::{now_millis, utc};

/// How often a refused drain is tried again, and the longest sleep.
const RETRY: u64 = 30_000;

/// The words that mark a drain as this window's.
fn marker(w: &MaintenanceWindow) -> String {
    format!("maintenance window `{}`", w.name)
}

async fn command(
    tx: &mpsc::Sender<Message>,
    site: &str,
    command: Command,
) -> Option<Result<(), CommandError>> {
    let (reply, rx) = oneshot::channel();
    let msg = Message::Command {
        site: site.to_string(),
        command,
        reply,
    };
    tx.send(msg).await.ok()?;
    Some(rx.await.ok()?.map(|_| ()))
}

/// Whether the site's current reason names `marker` (it was drained by that window).
async fn drained_by(tx: &mpsc::Sender<Message>, site: &str, marker: &str) -> bool {
    let (reply, rx) = oneshot::channel();
    if tx.send(Message::Status { reply }).await.is_err() {
        return false;
    }
    rx.await.is_ok_and(|(sites, _, _)| {
        sites
            .iter()
            .any(|s| s.name == site && s.reason.contains(marker))
    })
}

pub async fn run(cfg: Arc<Config>, tx: mpsc::Sender<Message>, shutdown: CancellationToken) {
    let default_lead = Duration::from_secs(u64::from(cfg.dns.ttl) + 30);
    // Sites this task drained: the window's name and the end of its occurrence.
    let mut owned: BTreeMap<usize, (String, u64)> = BTreeMap::new();
    // Occurrences whose refused drain was already told, by (site, start).
    let mut told: BTreeSet<(usize, u64)> = BTreeSet::new();
    loop {
        let now = now_millis();
        let mut wake = now + RETRY;
        for (i, site) in cfg.sites.iter().enumerate() {
            let mut active = None;
            for w in &site.maintenance {
                let Some(o) = w.occurrence(now) else { continue };
                let lead = w.drain_before.unwrap_or(default_lead).as_millis() as u64;
                let drain_at = o.start.saturating_sub(lead);
                if drain_at <= now {
                    wake = wake.min(o.end);
                    active.get_or_insert((w, o));
                } else {
                    wake = wake.min(drain_at);
                }
            }
            match (active, owned.get_mut(&i)) {
                (Some((_, o)), Some(own)) => own.1 = own.1.max(o.end),
                (Some((w, o)), None) => {
                    let note = format!("{} from {} until {}", marker(w), utc(o.start), utc(o.end));
                    let drain = Command::Drain {
                        force: false,
                        note: Some(note),
                    };
                    match command(&tx, &site.name, drain).await {
                        None => return,
                        Some(Ok(())) => {
                            tracing::info!(site = %site.name, window = %w.name, "drained for maintenance until {}", utc(o.end));
                            owned.insert(i, (w.name.clone(), o.end));
                        }
                        Some(Err(_)) if drained_by(&tx, &site.name, &marker(w)).await => {
                            owned.insert(i, (w.name.clone(), o.end));
                        }
                        Some(Err(e)) => {
                            if told.insert((i, o.start)) {
                                tracing::warn!(site = %site.name, window = %w.name, "maintenance window not started: {e}; the primary stays in service (trying again every 30 s until {})", utc(o.end));
                            }
                        }
                    }
                }
                (None, Some(_)) => {
                    let (name, end) = owned.remove(&i).expect("present");
                    let release = Command::Release {
                        note: Some(format!("maintenance window `{name}` ended at {}", utc(end))),
                    };
                    match command(&tx, &site.name, release).await {
                        None => return,
                        Some(Ok(())) => {
                            tracing::info!(site = %site.name, window = %name, "maintenance window ended; released")
                        }
                        // Released by the operator in the meantime: nothing to undo.
                        Some(Err(e)) => {
                            tracing::info!(site = %site.name, window = %name, "maintenance window ended: {e}")
                        }
                    }
                }
                (None, None) => {}
            }
        }
        told.retain(|(_, start)| *start + 7 * 86_400_000 > now);
        let sleep = Duration::from_millis(wake.saturating_sub(now_millis()).clamp(50, RETRY));
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
