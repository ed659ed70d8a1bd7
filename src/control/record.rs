//! The controller's probe history: each result counted in its minute ([`crate::history::Live`]),
//! each failure kept with its reason, and everything counted so far (the minutes in progress
//! too: the store adds a minute written twice) written to the store every [`WRITE_EVERY_MS`]
//! (or at [`WRITE_AT_ROWS`]) in one transaction, and when the controller stops. So the
//! dashboard is at most that far behind. History is for the operator; a write that fails is logged and dropped,
//! never retried in a way that could hold up a decision.

use super::*;
use crate::history::{Live, MinuteRow};

/// At most this long between writes while minutes are finishing.
const WRITE_EVERY_MS: u64 = 10_000;
/// Or as soon as this many rows wait (a thousand sites failing at once).
const WRITE_AT_ROWS: usize = 4096;

pub(super) struct Recorder {
    live: Live,
    minutes: Vec<MinuteRow>,
    failures: Vec<(String, u8, u64, String)>,
    last_write: u64,
}

impl Recorder {
    pub(super) fn new(sites: usize) -> Recorder {
        Recorder {
            live: Live::new(sites),
            minutes: vec![],
            failures: vec![],
            last_write: 0,
        }
    }
}

impl Controller {
    pub(super) fn record_probe(&mut self, site: usize, side: Target, at: u64, o: &Observation) {
        let side_n = match side {
            Target::Primary => 0,
            Target::Standby => 1,
        };
        let took = o.took.as_millis().min(u128::from(u32::MAX)) as u32;
        let name = &self.cfg.sites[site].name;
        if let Some((minute, bucket)) = self.history.live.record(site, side_n, at, o.ok, took) {
            self.history.minutes.push(MinuteRow {
                site: name.clone(),
                side: side_n,
                minute,
                bucket,
            });
        }
        if !o.ok {
            self.history
                .failures
                .push((name.clone(), side_n, at, o.detail.clone()));
        }
    }

    /// Writes what was counted, if it is time (`all`: the controller is stopping).
    pub(super) fn write_history(&mut self, all: bool) {
        let now = now_millis();
        let h = &mut self.history;
        let due = now >= h.last_write + WRITE_EVERY_MS;
        if all || due {
            for (site, side, minute, bucket) in h.live.take_all() {
                h.minutes.push(MinuteRow {
                    site: self.cfg.sites[site].name.clone(),
                    side,
                    minute,
                    bucket,
                });
            }
        }
        let waiting = h.minutes.len() + h.failures.len();
        if waiting == 0 || !(all || due || waiting >= WRITE_AT_ROWS) {
            return;
        }
        h.last_write = now;
        let (minutes, failures) = (
            std::mem::take(&mut h.minutes),
            std::mem::take(&mut h.failures),
        );
        if let Err(e) = self.store.append_history(&minutes, &failures) {
            tracing::warn!(
                "probe history not saved ({} rows): {e}",
                minutes.len() + failures.len()
            );
        }
    }
}
