//! A proxied site's circuit: whether its standby sends requests to the origin or answers them
//! from the copy (`crate::standby::proxy`). The controller opens and closes it with the
//! decision; the proxy trips it on a failed request, so only the first request after a silent
//! drop waits for the connect timeout, and a probe that passes after the trip resets it.
//!
//! A request in flight when the circuit opens (one waiting on an origin that went silent) is
//! answered from the copy at that moment ([`Circuit::wait_open`]).
//!
//! Open when the decision says the primary is not serving (any phase whose records would point
//! at the standby, and primary-down), or tripped: closed again only by the decision (with its
//! hysteresis: `successes_to_up` good probes and `hold_down`) or, for a trip the decision never
//! confirmed, by the next passing probe of the primary.
//!
//! Also the counters `status`, the metrics and the notifications show: requests passed to the
//! origin, answered from the copy, refused (a write while the origin is down), and since when
//! the copy has been answering.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Circuit {
    /// Woken whenever it opens: a request waiting on an origin that went silent is answered
    /// from the copy then, not after its timeout.
    opened: tokio::sync::Notify,
    decided_open: AtomicBool,
    /// When a request found the origin unreachable (ms since the epoch; 0: not tripped).
    tripped_at: AtomicU64,
    /// Since when the copy has answered (0: the origin answers).
    copy_since: AtomicU64,
    pub proxied: AtomicU64,
    pub from_copy: AtomicU64,
    pub refused: AtomicU64,
}

/// What `status` shows of a proxied site.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CircuitView {
    /// The copy answers (the decision says the primary is down, or a request just failed).
    pub open: bool,
    /// Since when the copy has been answering (ms since the epoch).
    pub copy_since: Option<u64>,
    pub proxied: u64,
    pub from_copy: u64,
    pub refused: u64,
}

impl Circuit {
    /// The decision's side: `primary_down` while the primary is not serving.
    pub fn decide(&self, primary_down: bool, now: u64) {
        let was = self.decided_open.swap(primary_down, Ordering::Relaxed);
        if primary_down && !was {
            self.opened.notify_waiters();
        }
        if !primary_down && self.tripped_at.load(Ordering::Relaxed) == 0 {
            self.copy_since.store(0, Ordering::Relaxed);
        }
        if primary_down {
            let _ = self.copy_since.compare_exchange(
                0,
                now.max(1),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// A probe of the primary passed at `at`: a trip made before it is over.
    pub fn probe_passed(&self, at: u64) {
        let t = self.tripped_at.load(Ordering::Relaxed);
        if t != 0 && t <= at {
            let _ = self
                .tripped_at
                .compare_exchange(t, 0, Ordering::Relaxed, Ordering::Relaxed);
            if !self.decided_open.load(Ordering::Relaxed) {
                self.copy_since.store(0, Ordering::Relaxed);
            }
        }
    }

    /// A request found the origin unreachable at `now`.
    pub fn trip(&self, now: u64) {
        if self
            .tripped_at
            .compare_exchange(0, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.opened.notify_waiters();
        }
        let _ =
            self.copy_since
                .compare_exchange(0, now.max(1), Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Returns once the circuit is open (at once if it is).
    pub async fn wait_open(&self) {
        loop {
            let woken = self.opened.notified();
            if self.open() {
                return;
            }
            woken.await;
        }
    }

    /// Whether requests go to the copy.
    pub fn open(&self) -> bool {
        self.decided_open.load(Ordering::Relaxed) || self.tripped_at.load(Ordering::Relaxed) != 0
    }

    pub fn view(&self) -> CircuitView {
        let since = self.copy_since.load(Ordering::Relaxed);
        CircuitView {
            open: self.open(),
            copy_since: (since != 0).then_some(since),
            proxied: self.proxied.load(Ordering::Relaxed),
            from_copy: self.from_copy.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trip_opens_until_a_probe_passes_after_it() {
        let c = Circuit::default();
        assert!(!c.open());
        c.trip(100);
        assert!(c.open());
        assert_eq!(c.view().copy_since, Some(100));
        c.probe_passed(99);
        assert!(c.open(), "a probe from before the trip says nothing");
        c.probe_passed(150);
        assert!(!c.open());
        assert_eq!(c.view().copy_since, None);
    }

    #[test]
    fn the_decision_holds_it_open_whatever_the_probes_say() {
        let c = Circuit::default();
        c.trip(100);
        c.decide(true, 120);
        c.probe_passed(150);
        assert!(c.open(), "closing is the decision's (hysteresis)");
        assert_eq!(
            c.view().copy_since,
            Some(100),
            "since the first failed request"
        );
        c.decide(false, 200);
        assert!(!c.open());
        assert_eq!(c.view().copy_since, None);
    }
}
