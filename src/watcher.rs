//! The watcher watched (issue 14): its own links, checked against references, and a heartbeat
//! to a dead man's switch.
//!
//! **Abstaining.** A watcher whose own link is cut sees every primary fail at once; acting on
//! that would move every site to the standby for nothing (Uptime Kuma's flood of false DOWN
//! alerts when its host's link drops). So before the controller acts on a primary being down
//! it asks for a round of [`check`]: a TCP connect to every `[watcher] references` address at
//! once (1 s timeout). The round's [`Round`] goes to the controller, which applies the held
//! "down" only if the round started after the failures began and some reference answered;
//! otherwise it drops those failures and is *offline* until a round reaches a reference again
//! (`control/watcher.rs`). Rounds also run every `check_every`, to see the link come back.
//!
//! A reference that has never answered since the start is not counted: on a machine with no
//! internet access at all (a lab, the demo) public references would otherwise hold every
//! failover back forever. The price: a watcher started while its link is already cut does not
//! abstain until a reference has answered once.
//!
//! **Heartbeat.** While the daemon runs, its controller answers and the last round was
//! online, `heartbeat_url` is fetched every `heartbeat_every`; a dead man's switch elsewhere
//! raises the alarm when the pings stop. The URL is a secret and is never logged.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::config::WatcherConfig;
use crate::control::{Message, Round};
use crate::util::now_millis;

/// How long a reference has to accept a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Connects to every reference at once; `counted` are those that answered at some point.
pub async fn check(references: &[SocketAddr], counted: &mut HashSet<SocketAddr>) -> Round {
    let started = now_millis();
    let tries = references.iter().map(|&a| async move {
        let r = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(a)).await;
        (a, matches!(r, Ok(Ok(_))))
    });
    let results = futures_util::future::join_all(tries).await;
    for (a, ok) in &results {
        if *ok {
            counted.insert(*a);
        }
    }
    let answered = results.iter().filter(|(_, ok)| *ok).count();
    let online = answered > 0 || counted.is_empty();
    let detail = results
        .iter()
        .map(|(a, ok)| {
            let state = match (ok, counted.contains(a)) {
                (true, _) => "answered",
                (false, true) => "no answer",
                (false, false) => "never answered, not counted",
            };
            format!("{a} {state}")
        })
        .collect::<Vec<_>>()
        .join(", ");
    Round {
        started,
        online,
        detail,
    }
}

/// The reference task: a round whenever the controller asks (`wake`) and every
/// `check_every`, each sent to the controller; the last one also on `last` (the heartbeat
/// reads it). Returns at once when no references are configured.
pub async fn references(
    cfg: WatcherConfig,
    tx: mpsc::Sender<Message>,
    wake: Arc<Notify>,
    last: watch::Sender<Option<Round>>,
    stop: CancellationToken,
) {
    if cfg.references.is_empty() {
        return;
    }
    let mut counted = HashSet::new();
    loop {
        let round = check(&cfg.references, &mut counted).await;
        last.send_replace(Some(round.clone()));
        if tx.send(Message::Connectivity(round)).await.is_err() {
            return;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(cfg.check_every) => {}
        }
    }
}

/// The heartbeat task (module doc); returns at once without a heartbeat URL.
pub async fn heartbeat(
    cfg: WatcherConfig,
    tx: mpsc::Sender<Message>,
    last: watch::Receiver<Option<Round>>,
    stop: CancellationToken,
) {
    let Some((url, every)) = cfg.heartbeat else {
        return;
    };
    let http = match crate::http::client_with_ca(Duration::from_secs(10), None) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("heartbeat disabled: {e}");
            return;
        }
    };
    let mut failing = false;
    loop {
        let online = last.borrow().as_ref().is_none_or(|r| r.online);
        if online && controller_answers(&tx).await {
            match http.get(&url.0).send().await {
                Ok(r) if r.status().is_success() => {
                    if failing {
                        tracing::info!("heartbeat delivered again");
                    }
                    failing = false;
                }
                Ok(r) => {
                    if !failing {
                        tracing::warn!("heartbeat not taken: answered {}", r.status());
                    }
                    failing = true;
                }
                Err(e) => {
                    if !failing {
                        let why = crate::http::transport_error(e.without_url(), "heartbeat");
                        tracing::warn!("{why}");
                    }
                    failing = true;
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Whether the controller answers a status request within 5 s (a stuck controller gets no
/// heartbeat, so its silence is noticed).
async fn controller_answers(tx: &mpsc::Sender<Message>) -> bool {
    let (reply, rx) = oneshot::channel();
    if tx.send(Message::Status { reply }).await.is_err() {
        return false;
    }
    matches!(
        tokio::time::timeout(Duration::from_secs(5), rx).await,
        Ok(Ok(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn references_that_never_answered_are_not_counted() {
        let up = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up_addr = up.local_addr().unwrap();
        let gone = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let mut counted = HashSet::new();
        // Nothing ever answered: not offline, whatever the references do.
        let r = check(&[gone], &mut counted).await;
        assert!(r.online, "{r:?}");
        assert!(r.detail.contains("never answered, not counted"), "{r:?}");
        let r = check(&[gone, up_addr], &mut counted).await;
        assert!(r.online && counted.contains(&up_addr), "{r:?}");
        // The one that answered stops: offline.
        drop(up);
        let r = check(&[gone, up_addr], &mut counted).await;
        assert!(!r.online, "{r:?}");
        assert!(r.detail.contains(&format!("{up_addr} no answer")), "{r:?}");
    }
}
