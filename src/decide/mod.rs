//! The failover decision: a pure, per-site state machine.
//!
//! This module owns *what the site's records should point at*. It takes the site's current
//! [`SiteState`], one [`Input`] (a probe result, an operator command) and the time, and returns
//! the next state plus what happened ([`Step`]). It does no I/O: no sockets, no clock reads, no
//! files. Everything that touches the world (probing, persisting, publishing DNS) lives at the
//! edges and feeds this function. That is what lets the tests below walk every state.
//!
//! The rules (design.md invariants 3 and 4):
//! - down after `failures_to_down` consecutive failed probes of the primary;
//! - fail over only to a *ready* standby (its most recent probe succeeded and is fresh); if the
//!   standby is known bad, keep the primary record and raise an alert; if the standby has not
//!   been probed yet (just after a restart), wait for that probe instead of guessing;
//! - back only after `successes_to_up` consecutive successes *and* `hold_down` in the healthy
//!   state, measured from the first success of the current streak;
//! - an operator can latch a site to the standby (`Drain`) and release it (`Release`); draining
//!   is refused when the standby is not ready unless forced;
//! - while failed over, a standby that fails `failures_to_down` probes in a row counts as down:
//!   with both down the record goes back to (and stays on) the primary.
//!
//! - unobserved time is never health: a state restored after a restart ([`resume`]) keeps its
//!   phase (so the records do not move) but forgets every streak, so recovery needs its
//!   `successes_to_up` probes *and* its whole `hold_down` observed by the process that decides.
//!   The same holds for failure streaks: a restart can delay a decision, never make one.
//!
//! Times are milliseconds since the Unix epoch so a persisted state stays meaningful across
//! restarts. A clock that steps backwards only delays a failback (saturating arithmetic).

use serde::{Deserialize, Serialize};

pub use crate::util::Millis;

/// The phases a site moves through. Which address the records point at follows from the phase
/// alone (see [`Phase::target`]), so restoring a persisted phase can never flip a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Primary answering; records point at the primary.
    Healthy,
    /// Some consecutive failures, fewer than needed to call the primary down (or waiting for a
    /// first standby probe before deciding). Records still point at the primary.
    Suspect,
    /// Primary down and the standby not ready: records stay on the primary and an alert is raised.
    PrimaryDown,
    /// Primary down, records point at the standby.
    FailedOver,
    /// Failed over and the primary answers again; waiting for enough successes and the hold-down.
    Recovering,
    /// Latched to the standby by the operator until released.
    Drained,
}

impl Phase {
    pub const ALL: [Phase; 6] = [
        Phase::Healthy,
        Phase::Suspect,
        Phase::PrimaryDown,
        Phase::FailedOver,
        Phase::Recovering,
        Phase::Drained,
    ];

    /// Which side the site's records point at in this phase.
    pub fn target(self) -> Target {
        match self {
            Phase::Healthy | Phase::Suspect | Phase::PrimaryDown => Target::Primary,
            Phase::FailedOver | Phase::Recovering | Phase::Drained => Target::Standby,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Healthy => "healthy",
            Phase::Suspect => "suspect",
            Phase::PrimaryDown => "primary-down",
            Phase::FailedOver => "failed-over",
            Phase::Recovering => "recovering",
            Phase::Drained => "drained",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One of a site's two servers: where its managed records point, and which one a probe was
/// aimed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    Primary,
    Standby,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Target::Primary => "primary",
            Target::Standby => "standby",
        })
    }
}

/// The hysteresis settings of one site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Consecutive failed probes before the primary counts as down (>= 1).
    pub failures_to_down: u32,
    /// Consecutive successful probes before failing back (>= 1).
    pub successes_to_up: u32,
    /// Time the primary must have been answering before failing back.
    pub hold_down: Millis,
    /// How old the last standby probe may be and still count as knowledge of the standby.
    pub standby_fresh: Millis,
}

/// What we know of the standby from its probes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandbyView {
    /// When the standby was last probed, if ever.
    pub last_probe: Option<Millis>,
    /// Whether that probe succeeded.
    pub last_ok: bool,
    /// Consecutive failed standby probes.
    pub failures: u32,
    /// Why the last standby probe failed, if it did.
    pub last_error: Option<String>,
}

/// The standby's readiness as the decision sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    NotReady,
    /// Never probed, or the last probe is too old to rely on.
    Unknown,
}

impl StandbyView {
    pub fn readiness(&self, policy: &Policy, now: Millis) -> Readiness {
        match self.last_probe {
            None => Readiness::Unknown,
            Some(at) if now.saturating_sub(at) > policy.standby_fresh => Readiness::Unknown,
            Some(_) if self.last_ok => Readiness::Ready,
            Some(_) => Readiness::NotReady,
        }
    }
}

/// Everything the decision needs to remember about one site. Persisted as JSON after every
/// transition; restoring it and continuing gives the same result as never having stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteState {
    pub phase: Phase,
    /// When the current phase began.
    pub since: Millis,
    /// Why the site is in this phase, in words for the operator.
    pub reason: String,
    /// Consecutive failed primary probes.
    pub primary_failures: u32,
    /// Consecutive successful primary probes.
    pub primary_successes: u32,
    /// Time of the first success of the current success streak.
    pub healthy_since: Option<Millis>,
    /// Why the last failed primary probe failed.
    pub last_primary_error: Option<String>,
    pub standby: StandbyView,
}

impl SiteState {
    /// The state of a site seen for the first time: records on the primary, nothing known yet.
    pub fn new(now: Millis) -> Self {
        SiteState {
            phase: Phase::Healthy,
            since: now,
            reason: "first start: records point at the primary".to_string(),
            primary_failures: 0,
            primary_successes: 0,
            healthy_since: None,
            last_primary_error: None,
            standby: StandbyView::default(),
        }
    }

    pub fn target(&self) -> Target {
        self.phase.target()
    }
}

/// The state a (re)started daemon continues from, given the one it saved.
///
/// The phase, and so where the records point, is kept exactly: a restart never moves a record.
/// What is dropped are the streaks, because they stand for *consecutive observations* and the
/// time the daemon was down was observed by nobody: the primary may have died and come back
/// inside it. A saved `Recovering` site with 4 of 5 successes and 4 of 5 minutes of hold-down
/// therefore starts its count again, as does a `Suspect` site's failure count and the
/// standby's. Losing a count can only delay a decision; keeping one could make a wrong one.
pub fn resume(saved: &SiteState) -> SiteState {
    SiteState {
        primary_failures: 0,
        primary_successes: 0,
        healthy_since: None,
        standby: StandbyView {
            failures: 0,
            ..saved.standby.clone()
        },
        ..saved.clone()
    }
}

/// One thing that happened to a site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A probe of the primary finished. `detail` says what it saw (for failures: why).
    Primary { ok: bool, detail: String },
    /// A probe of the standby finished.
    Standby { ok: bool, detail: String },
    /// The operator latches the site to the standby.
    Drain { force: bool },
    /// The operator releases a drained site.
    Release,
    /// The primary's address changed (dynamic IP): what was counted against the old address
    /// says nothing about the new one, so the counts start over. No phase is left because of
    /// it except `Suspect` (failures against the old address are not an outage).
    AddressChanged { detail: String },
}

/// A change of phase, for the event log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub from: Phase,
    pub to: Phase,
    pub reason: String,
}

/// The result of feeding one input to the state machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub state: SiteState,
    /// Set when the phase changed.
    pub transition: Option<Transition>,
    /// Set when the operator should be told something is wrong (both sides down, or the
    /// primary down with a standby that is not ready); always with a `transition`.
    pub alert: Option<String>,
    /// Set when an operator command was refused; the state is then unchanged.
    pub refused: Option<String>,
}

/// Feeds one input to a site's state machine. Pure: same arguments, same answer.
pub fn step(state: &SiteState, policy: &Policy, input: &Input, now: Millis) -> Step {
    let mut next = state.clone();
    match input {
        Input::Primary { ok: true, .. } => {
            next.primary_failures = 0;
            next.primary_successes = next.primary_successes.saturating_add(1);
            next.healthy_since.get_or_insert(now);
        }
        Input::Primary { ok: false, detail } => {
            next.primary_successes = 0;
            next.primary_failures = next.primary_failures.saturating_add(1);
            next.healthy_since = None;
            next.last_primary_error = Some(detail.clone());
        }
        Input::Standby { ok, detail } => {
            next.standby.last_probe = Some(now);
            next.standby.last_ok = *ok;
            if *ok {
                next.standby.failures = 0;
                next.standby.last_error = None;
            } else {
                next.standby.failures = next.standby.failures.saturating_add(1);
                next.standby.last_error = Some(detail.clone());
            }
        }
        Input::AddressChanged { detail } => {
            next.primary_failures = 0;
            next.primary_successes = 0;
            next.healthy_since = None;
            next.last_primary_error = None;
            if state.phase == Phase::Suspect {
                return finish(
                    state,
                    next,
                    Phase::Healthy,
                    format!("primary address changed ({detail}); probing the new address"),
                    now,
                    None,
                );
            }
            let reason = state.reason.clone();
            return finish(state, next, state.phase, reason, now, None);
        }
        Input::Drain { force } => {
            if state.phase == Phase::Drained {
                return refused(state, "the site is already drained");
            }
            let readiness = state.standby.readiness(policy, now);
            if !force && readiness != Readiness::Ready {
                return refused(
                    state,
                    &format!(
                        "{}; use --force to drain anyway",
                        standby_words(state, readiness)
                    ),
                );
            }
            let why = if *force && readiness != Readiness::Ready {
                "drained by the operator (forced while the standby was not known ready)"
            } else {
                "drained by the operator"
            };
            return finish(state, next, Phase::Drained, why.to_string(), now, None);
        }
        Input::Release => {
            if state.phase != Phase::Drained {
                return refused(state, "the site is not drained");
            }
            // The operator vouches for the primary, so the hold-down does not apply; but it must
            // still have passed `successes_to_up` probes, or it goes through normal recovery.
            let (phase, why) = if next.primary_successes >= policy.successes_to_up {
                (
                    Phase::Healthy,
                    "released by the operator; primary answering".to_string(),
                )
            } else if next.primary_successes > 0 {
                (
                    Phase::Recovering,
                    "released by the operator; primary answering, waiting for enough successes"
                        .to_string(),
                )
            } else {
                (
                    Phase::FailedOver,
                    "released by the operator, but the primary is not answering yet".to_string(),
                )
            };
            return finish(state, next, phase, why, now, None);
        }
    }
    evaluate(state, next, policy, now)
}

/// Decides the phase after the counters in `next` were updated by a probe result.
fn evaluate(prev: &SiteState, next: SiteState, policy: &Policy, now: Millis) -> Step {
    let readiness = next.standby.readiness(policy, now);
    let primary_error = next.last_primary_error.clone().unwrap_or_default();
    let down = next.primary_failures >= policy.failures_to_down;
    let standby_down = next.standby.failures >= policy.failures_to_down;
    let recovered = next.primary_successes >= policy.successes_to_up
        && next
            .healthy_since
            .is_some_and(|t| now.saturating_sub(t) >= policy.hold_down);

    let (phase, reason, alert): (Phase, String, Option<String>) = match prev.phase {
        Phase::Drained => (Phase::Drained, prev.reason.clone(), None),
        Phase::Healthy | Phase::Suspect if down => match readiness {
            Readiness::Ready => (
                Phase::FailedOver,
                format!("primary failed {} probes in a row ({primary_error}); standby ready", next.primary_failures),
                None,
            ),
            Readiness::NotReady => {
                let why = format!(
                    "primary failed {} probes in a row ({primary_error}) and {}; keeping the primary record",
                    next.primary_failures,
                    standby_words(&next, readiness)
                );
                (Phase::PrimaryDown, why.clone(), Some(why))
            }
            Readiness::Unknown => (
                Phase::Suspect,
                format!(
                    "primary failed {} probes in a row ({primary_error}); waiting for a standby probe before failing over",
                    next.primary_failures
                ),
                None,
            ),
        },
        Phase::Healthy | Phase::Suspect if next.primary_failures > 0 => {
            (Phase::Suspect, format!("{} failed probe(s) in a row ({primary_error})", next.primary_failures), None)
        }
        Phase::Healthy | Phase::Suspect => (Phase::Healthy, "primary answering".to_string(), None),
        Phase::PrimaryDown if next.primary_successes >= policy.successes_to_up => {
            (Phase::Healthy, "primary answering again".to_string(), None)
        }
        Phase::PrimaryDown if readiness == Readiness::Ready && down => {
            (Phase::FailedOver, format!("standby ready again while the primary is down ({primary_error})"), None)
        }
        Phase::PrimaryDown => (Phase::PrimaryDown, prev.reason.clone(), None),
        Phase::FailedOver | Phase::Recovering if standby_down && next.primary_successes > 0 => {
            (Phase::Healthy, "standby stopped answering while the primary answers again; back on the primary".to_string(), None)
        }
        Phase::FailedOver | Phase::Recovering if standby_down => {
            let why = format!(
                "both down: standby failed {} probes in a row ({}) and the primary is down ({primary_error}); records back on the primary",
                next.standby.failures,
                next.standby.last_error.clone().unwrap_or_default()
            );
            (Phase::PrimaryDown, why.clone(), Some(why))
        }
        Phase::FailedOver | Phase::Recovering if recovered => (
            Phase::Healthy,
            format!(
                "primary answered every probe for {} ({} in a row, at least {} needed); failing back",
                crate::util::human_duration(policy.hold_down),
                next.primary_successes,
                policy.successes_to_up
            ),
            None,
        ),
        Phase::FailedOver | Phase::Recovering if next.primary_successes > 0 => (
            Phase::Recovering,
            format!(
                "primary answering again ({} of {} probes); hold-down {} before failing back",
                next.primary_successes,
                policy.successes_to_up,
                crate::util::human_duration(policy.hold_down)
            ),
            None,
        ),
        Phase::FailedOver | Phase::Recovering => {
            let why = if prev.phase == Phase::Recovering {
                format!("primary failed again during the hold-down ({primary_error})")
            } else {
                prev.reason.clone()
            };
            (Phase::FailedOver, why, None)
        }
    };
    finish(prev, next, phase, reason, now, alert)
}

fn finish(
    prev: &SiteState,
    mut next: SiteState,
    phase: Phase,
    reason: String,
    now: Millis,
    alert: Option<String>,
) -> Step {
    let transition = if phase != prev.phase {
        next.since = now;
        Some(Transition {
            from: prev.phase,
            to: phase,
            reason: reason.clone(),
        })
    } else {
        None
    };
    next.phase = phase;
    next.reason = reason;
    Step {
        state: next,
        transition,
        alert,
        refused: None,
    }
}

fn refused(state: &SiteState, why: &str) -> Step {
    Step {
        state: state.clone(),
        transition: None,
        alert: None,
        refused: Some(why.to_string()),
    }
}

fn standby_words(state: &SiteState, readiness: Readiness) -> String {
    match readiness {
        Readiness::Ready => "the standby is ready".to_string(),
        Readiness::NotReady => format!(
            "the standby is not ready ({})",
            state
                .standby
                .last_error
                .clone()
                .unwrap_or_else(|| "its last probe failed".to_string())
        ),
        Readiness::Unknown => "the standby's readiness is unknown (no recent probe)".to_string(),
    }
}

#[cfg(test)]
mod soak;
#[cfg(test)]
mod tests;
