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

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

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
    /// Set when the operator should be told something is wrong (both sides down).
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
mod tests {
    use super::*;
    use proptest::prelude::*;

    const POLICY: Policy = Policy {
        failures_to_down: 3,
        successes_to_up: 5,
        hold_down: 300_000,
        standby_fresh: 10_000,
    };

    fn fail() -> Input {
        Input::Primary {
            ok: false,
            detail: "connection refused".into(),
        }
    }
    fn ok() -> Input {
        Input::Primary {
            ok: true,
            detail: "200".into(),
        }
    }
    fn sb(ok: bool) -> Input {
        Input::Standby {
            ok,
            detail: if ok {
                "200".into()
            } else {
                "connection refused".into()
            },
        }
    }

    /// Runs inputs one second apart (starting at t=1000) and returns every state.
    fn run(start: SiteState, inputs: &[Input]) -> Vec<SiteState> {
        let mut s = start;
        let mut out = vec![];
        for (i, input) in inputs.iter().enumerate() {
            s = step(&s, &POLICY, input, 1_000 + 1_000 * i as u64).state;
            out.push(s.clone());
        }
        out
    }

    fn phases(states: &[SiteState]) -> Vec<Phase> {
        states.iter().map(|s| s.phase).collect()
    }

    #[test]
    fn fails_over_after_three_failures_with_ready_standby() {
        use Phase::*;
        let got = run(SiteState::new(0), &[sb(true), ok(), fail(), fail(), fail()]);
        assert_eq!(
            phases(&got),
            vec![Healthy, Healthy, Suspect, Suspect, FailedOver]
        );
        assert!(
            got[4].reason.contains("connection refused"),
            "{}",
            got[4].reason
        );
    }

    #[test]
    fn standby_not_ready_keeps_primary_and_alerts() {
        let mut s = SiteState::new(0);
        s = step(&s, &POLICY, &sb(false), 1_000).state;
        s = step(&s, &POLICY, &fail(), 1_100).state;
        s = step(&s, &POLICY, &fail(), 1_200).state;
        let last = step(&s, &POLICY, &fail(), 1_300);
        assert_eq!(last.state.phase, Phase::PrimaryDown);
        assert_eq!(last.state.target(), Target::Primary);
        assert!(last.alert.unwrap().contains("standby is not ready"));
    }

    #[test]
    fn unknown_standby_waits_then_decides_on_its_first_probe() {
        use Phase::*;
        let got = run(
            SiteState::new(0),
            &[fail(), fail(), fail(), fail(), sb(true)],
        );
        assert_eq!(
            phases(&got),
            vec![Suspect, Suspect, Suspect, Suspect, FailedOver]
        );
        let got = run(SiteState::new(0), &[fail(), fail(), fail(), sb(false)]);
        assert_eq!(phases(&got), vec![Suspect, Suspect, Suspect, PrimaryDown]);
    }

    #[test]
    fn stale_standby_probe_does_not_count_as_ready() {
        let mut s = step(&SiteState::new(0), &POLICY, &sb(true), 0).state;
        for t in [20_000, 20_100, 20_200] {
            s = step(&s, &POLICY, &fail(), t).state;
        }
        assert_eq!(
            s.phase,
            Phase::Suspect,
            "a standby probe 20 s old is not fresh"
        );
    }

    #[test]
    fn primary_down_fails_over_once_standby_becomes_ready() {
        use Phase::*;
        let got = run(
            SiteState::new(0),
            &[sb(false), fail(), fail(), fail(), sb(true)],
        );
        assert_eq!(
            phases(&got),
            vec![Healthy, Suspect, Suspect, PrimaryDown, FailedOver]
        );
    }

    #[test]
    fn primary_down_returns_to_healthy_when_primary_recovers() {
        use Phase::*;
        let mut inputs = vec![sb(false), fail(), fail(), fail()];
        inputs.extend(std::iter::repeat_n(ok(), 5));
        let got = run(SiteState::new(0), &inputs);
        assert_eq!(got[3].phase, PrimaryDown);
        assert_eq!(got[7].phase, PrimaryDown);
        assert_eq!(got[8].phase, Healthy);
    }

    #[test]
    fn one_success_resets_the_failure_count() {
        let got = run(
            SiteState::new(0),
            &[sb(true), fail(), fail(), ok(), fail(), fail()],
        );
        assert!(got.iter().all(|s| s.target() == Target::Primary));
    }

    fn failed_over() -> SiteState {
        run(SiteState::new(0), &[sb(true), fail(), fail(), fail()])
            .pop()
            .unwrap()
    }

    #[test]
    fn failback_needs_successes_and_hold_down() {
        let mut s = failed_over();
        assert_eq!(s.phase, Phase::FailedOver);
        // Five successes one second apart: enough successes, hold-down (300 s) not done.
        for i in 0..5 {
            s = step(&s, &POLICY, &ok(), 10_000 + i * 1_000).state;
            assert_eq!(s.phase, Phase::Recovering);
        }
        s = step(&s, &POLICY, &ok(), 10_000 + 299_999).state;
        assert_eq!(s.phase, Phase::Recovering, "hold-down not over yet");
        let last = step(&s, &POLICY, &ok(), 10_000 + 300_000);
        assert_eq!(last.state.phase, Phase::Healthy);
        assert_eq!(last.transition.unwrap().from, Phase::Recovering);
    }

    #[test]
    fn failure_during_hold_down_restarts_it() {
        let mut s = failed_over();
        s = step(&s, &POLICY, &ok(), 10_000).state;
        s = step(&s, &POLICY, &ok(), 200_000).state;
        s = step(&s, &POLICY, &fail(), 250_000).state;
        assert_eq!(s.phase, Phase::FailedOver);
        assert!(s.reason.contains("during the hold-down"));
        for t in [260_000, 261_000, 262_000, 263_000, 264_000, 500_000] {
            s = step(&s, &POLICY, &ok(), t).state;
        }
        assert_eq!(
            s.phase,
            Phase::Recovering,
            "hold-down counts from 260 s, not 10 s"
        );
        s = step(&s, &POLICY, &ok(), 560_000).state;
        assert_eq!(s.phase, Phase::Healthy);
    }

    #[test]
    fn many_successes_alone_do_not_fail_back() {
        let mut s = failed_over();
        for i in 0..100 {
            s = step(&s, &POLICY, &ok(), 10_000 + i * 100).state;
        }
        assert_eq!(s.phase, Phase::Recovering);
    }

    #[test]
    fn standby_dying_while_failed_over_means_both_down() {
        let mut s = failed_over();
        for t in [5_000, 6_000] {
            s = step(&s, &POLICY, &sb(false), t).state;
            assert_eq!(
                s.phase,
                Phase::FailedOver,
                "one or two standby failures are tolerated"
            );
        }
        let last = step(&s, &POLICY, &sb(false), 7_000);
        assert_eq!(last.state.phase, Phase::PrimaryDown);
        assert_eq!(last.state.target(), Target::Primary);
        assert!(last.alert.unwrap().starts_with("both down"));
    }

    #[test]
    fn standby_dying_while_primary_recovers_goes_back_to_primary() {
        let mut s = failed_over();
        s = step(&s, &POLICY, &ok(), 5_000).state;
        for t in [6_000, 7_000, 8_000] {
            s = step(&s, &POLICY, &sb(false), t).state;
        }
        assert_eq!(s.phase, Phase::Healthy);
    }

    #[test]
    fn drain_refused_when_standby_not_ready_unless_forced() {
        let s = step(&SiteState::new(0), &POLICY, &sb(false), 1_000).state;
        let r = step(&s, &POLICY, &Input::Drain { force: false }, 1_100);
        assert_eq!(r.state, s);
        assert!(r.refused.unwrap().contains("standby is not ready"));
        let r = step(&s, &POLICY, &Input::Drain { force: true }, 1_100);
        assert_eq!(r.state.phase, Phase::Drained);
        let r = step(
            &SiteState::new(0),
            &POLICY,
            &Input::Drain { force: false },
            1_100,
        );
        assert!(r.refused.unwrap().contains("unknown"));
    }

    #[test]
    fn drained_ignores_probes_until_released() {
        let mut s = step(&SiteState::new(0), &POLICY, &sb(true), 1_000).state;
        s = step(&s, &POLICY, &Input::Drain { force: false }, 1_100).state;
        assert_eq!(s.phase, Phase::Drained);
        for (i, input) in [
            ok(),
            fail(),
            fail(),
            fail(),
            fail(),
            sb(false),
            sb(false),
            sb(false),
            ok(),
        ]
        .iter()
        .enumerate()
        {
            s = step(&s, &POLICY, input, 2_000 + i as u64 * 1_000).state;
            assert_eq!(s.phase, Phase::Drained);
        }
        // One success so far: release goes through recovery, not straight back.
        let r = step(&s, &POLICY, &Input::Release, 20_000);
        assert_eq!(r.state.phase, Phase::Recovering);
        assert!(step(&r.state, &POLICY, &Input::Release, 20_001)
            .refused
            .is_some());
    }

    #[test]
    fn release_of_healthy_primary_fails_back_at_once() {
        let mut s = step(&SiteState::new(0), &POLICY, &sb(true), 1_000).state;
        s = step(&s, &POLICY, &Input::Drain { force: false }, 1_100).state;
        for i in 0..5 {
            s = step(&s, &POLICY, &ok(), 2_000 + i * 1_000).state;
        }
        assert_eq!(
            step(&s, &POLICY, &Input::Release, 8_000).state.phase,
            Phase::Healthy
        );
        // Released while the primary is still down: failed over, normal rules from there.
        let mut s = step(&SiteState::new(0), &POLICY, &sb(true), 1_000).state;
        s = step(&s, &POLICY, &Input::Drain { force: false }, 1_100).state;
        s = step(&s, &POLICY, &fail(), 2_000).state;
        assert_eq!(
            step(&s, &POLICY, &Input::Release, 3_000).state.phase,
            Phase::FailedOver
        );
    }

    #[test]
    fn drain_twice_is_refused() {
        let mut s = step(&SiteState::new(0), &POLICY, &sb(true), 1_000).state;
        s = step(&s, &POLICY, &Input::Drain { force: false }, 1_100).state;
        assert!(step(&s, &POLICY, &Input::Drain { force: true }, 1_200)
            .refused
            .is_some());
    }

    #[test]
    fn address_change_is_not_an_outage() {
        // Two failures against the old address, then the address changes: the count starts over.
        let mut s = step(&SiteState::new(0), &POLICY, &sb(true), 1_000).state;
        s = step(&s, &POLICY, &fail(), 1_100).state;
        s = step(&s, &POLICY, &fail(), 1_200).state;
        let moved = step(
            &s,
            &POLICY,
            &Input::AddressChanged {
                detail: "192.0.2.1 -> 192.0.2.2".into(),
            },
            1_300,
        );
        assert_eq!(moved.state.phase, Phase::Healthy);
        assert_eq!(moved.state.primary_failures, 0);
        s = step(&moved.state, &POLICY, &fail(), 1_400).state;
        s = step(&s, &POLICY, &fail(), 1_500).state;
        assert_eq!(
            s.target(),
            Target::Primary,
            "two failures on the new address are not three"
        );
        // While failed over, a change keeps the records on the standby and restarts recovery.
        let mut f = failed_over();
        f = step(&f, &POLICY, &ok(), 10_000).state;
        let moved = step(
            &f,
            &POLICY,
            &Input::AddressChanged { detail: "x".into() },
            11_000,
        )
        .state;
        assert_eq!(moved.phase, Phase::Recovering);
        assert_eq!((moved.primary_successes, moved.healthy_since), (0, None));
        assert_eq!(moved.target(), Target::Standby);
    }

    #[test]
    fn failures_to_down_of_one_fails_over_on_first_failure() {
        let p = Policy {
            failures_to_down: 1,
            successes_to_up: 1,
            hold_down: 0,
            standby_fresh: 10_000,
        };
        let s = step(&SiteState::new(0), &p, &sb(true), 0).state;
        let s = step(&s, &p, &fail(), 1).state;
        assert_eq!(s.phase, Phase::FailedOver);
        let s = step(&s, &p, &ok(), 2).state;
        assert_eq!(
            s.phase,
            Phase::Healthy,
            "M=1 and no hold-down fails back on the first success"
        );
    }

    #[test]
    fn clock_stepping_backwards_only_delays_failback() {
        let mut s = failed_over();
        s = step(&s, &POLICY, &ok(), 1_000_000).state;
        for i in 0..10 {
            s = step(&s, &POLICY, &ok(), 500_000 + i).state;
        }
        assert_eq!(s.phase, Phase::Recovering);
    }

    // ---- properties ----

    fn arb_input() -> impl Strategy<Value = Input> {
        prop_oneof![
            4 => any::<bool>().prop_map(|ok| Input::Primary { ok, detail: "x".into() }),
            2 => any::<bool>().prop_map(|ok| Input::Standby { ok, detail: "y".into() }),
            1 => any::<bool>().prop_map(|force| Input::Drain { force }),
            1 => Just(Input::Release),
            1 => Just(Input::AddressChanged { detail: "moved".into() }),
        ]
    }

    fn arb_policy() -> impl Strategy<Value = Policy> {
        (1u32..5, 1u32..6, 0u64..5_000, 1_000u64..20_000).prop_map(|(n, m, h, f)| Policy {
            failures_to_down: n,
            successes_to_up: m,
            hold_down: h,
            standby_fresh: f,
        })
    }

    proptest! {
        /// Invariants 3 and 4 over arbitrary histories: a probe input moves the records to the
        /// standby only with N failures in a row and a ready standby, and back only with M
        /// successes and the hold-down served (or with the standby down).
        #[test]
        fn flips_only_for_good_reasons(
            policy in arb_policy(),
            inputs in prop::collection::vec((arb_input(), 0u64..3_000), 1..200),
        ) {
            let mut s = SiteState::new(0);
            let mut now = 0;
            for (input, dt) in inputs {
                now += dt;
                let r = step(&s, &policy, &input, now);
                let (before, after) = (s.target(), r.state.target());
                if r.refused.is_some() {
                    prop_assert_eq!(&r.state, &s);
                }
                match (&input, before, after) {
                    (Input::Primary { .. } | Input::Standby { .. }, Target::Primary, Target::Standby) => {
                        prop_assert!(r.state.primary_failures >= policy.failures_to_down);
                        prop_assert_eq!(r.state.standby.readiness(&policy, now), Readiness::Ready);
                        prop_assert!(r.state.standby.last_ok);
                    }
                    (Input::Primary { .. } | Input::Standby { .. }, Target::Standby, Target::Primary) => {
                        let standby_down = r.state.standby.failures >= policy.failures_to_down;
                        let served = r.state.primary_successes >= policy.successes_to_up
                            && now - r.state.healthy_since.unwrap() >= policy.hold_down;
                        prop_assert!(standby_down || served, "failback without cause: {:?}", r.state);
                    }
                    (Input::Drain { force: false }, Target::Primary, Target::Standby) => {
                        prop_assert_eq!(s.standby.readiness(&policy, now), Readiness::Ready);
                    }
                    _ => {}
                }
                if r.state.phase == Phase::Drained && s.phase == Phase::Drained {
                    let released = matches!(input, Input::Release);
                    prop_assert!(!released, "release must leave the drained phase");
                }
                s = r.state;
            }
        }

        /// A restart in any state: the persisted form restores exactly, and restoring never
        /// changes where the records point.
        #[test]
        fn restart_in_any_state_changes_nothing(
            policy in arb_policy(),
            inputs in prop::collection::vec((arb_input(), 0u64..3_000), 0..100),
        ) {
            let mut s = SiteState::new(0);
            let mut now = 0;
            for (input, dt) in inputs {
                now += dt;
                s = step(&s, &policy, &input, now).state;
                let restored: SiteState = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
                prop_assert_eq!(&restored, &s);
                prop_assert_eq!(restored.target(), s.target());
            }
        }

        /// Unobserved time is never health (issue 11, item 1): with restarts of any length at
        /// any point, a probe moves the records back to the primary only after `successes_to_up`
        /// successes in a row *and* the whole `hold_down` observed since the last restart (or
        /// after the standby failed `failures_to_down` observed probes), and to the standby only
        /// after `failures_to_down` observed failures. A restart never moves a record itself.
        #[test]
        fn restart_never_shortens_an_observed_recovery(
            policy in arb_policy(),
            history in prop::collection::vec(
                (prop::option::weighted(0.15, 0u64..600_000), arb_input(), 0u64..3_000),
                1..200,
            ),
        ) {
            let mut s = SiteState::new(0);
            let mut now = 0;
            // What this "process" saw since it last started.
            let (mut oks, mut ok_since, mut fails, mut sb_fails) = (0u32, None::<Millis>, 0u32, 0u32);
            for (restart, input, dt) in history {
                if let Some(gap) = restart {
                    now += gap;
                    let saved: SiteState = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
                    let resumed = resume(&saved);
                    prop_assert_eq!(resumed.phase, s.phase);
                    prop_assert_eq!(resumed.target(), s.target());
                    s = resumed;
                    (oks, ok_since, fails, sb_fails) = (0, None, 0, 0);
                }
                now += dt;
                match &input {
                    Input::Primary { ok: true, .. } => {
                        oks += 1;
                        ok_since.get_or_insert(now);
                        fails = 0;
                    }
                    Input::Primary { ok: false, .. } => (oks, ok_since, fails) = (0, None, fails + 1),
                    Input::Standby { ok, .. } => sb_fails = if *ok { 0 } else { sb_fails + 1 },
                    Input::AddressChanged { .. } => (oks, ok_since, fails) = (0, None, 0),
                    Input::Drain { .. } | Input::Release => {}
                }
                let r = step(&s, &policy, &input, now);
                let probe = matches!(input, Input::Primary { .. } | Input::Standby { .. });
                match (probe, s.target(), r.state.target()) {
                    (true, Target::Standby, Target::Primary) => {
                        let observed = oks >= policy.successes_to_up
                            && ok_since.is_some_and(|t| now - t >= policy.hold_down);
                        prop_assert!(
                            observed || sb_fails >= policy.failures_to_down,
                            "failback on unobserved health: {oks} ok since {ok_since:?} at {now}: {:?}", r.state
                        );
                    }
                    (true, Target::Primary, Target::Standby) => {
                        prop_assert!(fails >= policy.failures_to_down, "failover on unobserved failures: {:?}", r.state);
                    }
                    _ => {}
                }
                s = r.state;
            }
        }

        /// A primary that alternates between failing and answering fewer than N times in a row
        /// never moves the records.
        #[test]
        fn flapping_primary_never_flips(policy in arb_policy(), pattern in prop::collection::vec(any::<bool>(), 1..300)) {
            let mut s = step(&SiteState::new(0), &policy, &sb(true), 0).state;
            let mut run_of_failures = 0;
            for (i, ok) in pattern.into_iter().enumerate() {
                // Cap failure runs below N so the primary is never really down.
                let ok = ok || run_of_failures + 1 >= policy.failures_to_down;
                run_of_failures = if ok { 0 } else { run_of_failures + 1 };
                let now = (i as u64 + 1) * 100;
                s = step(&s, &policy, &sb(true), now).state;
                s = step(&s, &policy, &Input::Primary { ok, detail: String::new() }, now).state;
                prop_assert_eq!(s.target(), Target::Primary);
            }
        }
    }

    /// The reported case (issue 11, item 1): failed over, recovering with 2 of 3 successes, the
    /// daemon killed, the primary down and up again while it was gone; one good probe after the
    /// restart must not fail back, and neither may anything before a full hold-down.
    #[test]
    fn restart_during_recovery_counts_nothing_from_before() {
        let p = Policy {
            failures_to_down: 3,
            successes_to_up: 3,
            hold_down: 5_000,
            standby_fresh: 10_000,
        };
        let mut s = step(&SiteState::new(0), &p, &sb(true), 0).state;
        for t in [100, 200, 300] {
            s = step(&s, &p, &fail(), t).state;
        }
        assert_eq!(s.phase, Phase::FailedOver);
        for t in [1_000, 2_000] {
            s = step(&s, &p, &ok(), t).state;
        }
        assert_eq!(s.phase, Phase::Recovering);
        // Killed at 2.5 s, started again at 10 s: 8 s of nobody watching.
        let mut s = resume(&s);
        assert_eq!(
            s.phase,
            Phase::Recovering,
            "the records stay on the standby"
        );
        s = step(&s, &p, &sb(true), 10_000).state;
        for t in [10_100, 11_000, 12_000, 14_000] {
            s = step(&s, &p, &ok(), t).state;
            assert_eq!(
                s.phase,
                Phase::Recovering,
                "at {t}: the hold-down counts from 10.1 s"
            );
        }
        assert_eq!(step(&s, &p, &ok(), 15_100).state.phase, Phase::Healthy);
    }

    /// Restart in every phase, table-driven: restore, feed the next probe that would keep the
    /// phase, and the target must not change.
    #[test]
    fn restart_in_every_phase_keeps_the_target() {
        use Phase::*;
        let cases: Vec<(Phase, Vec<Input>, Input)> = vec![
            (Healthy, vec![sb(true), ok()], ok()),
            (Suspect, vec![sb(true), fail()], ok()),
            (PrimaryDown, vec![sb(false), fail(), fail(), fail()], fail()),
            (FailedOver, vec![sb(true), fail(), fail(), fail()], fail()),
            (
                Recovering,
                vec![sb(true), fail(), fail(), fail(), ok()],
                ok(),
            ),
            (Drained, vec![sb(true), Input::Drain { force: false }], ok()),
        ];
        for (phase, history, next) in cases {
            let got = run(SiteState::new(0), &history).pop().unwrap();
            assert_eq!(got.phase, phase);
            let json = serde_json::to_string(&got).unwrap();
            let restored: SiteState = serde_json::from_str(&json).unwrap();
            assert_eq!(restored.target(), got.target(), "{phase}");
            // After a restart the standby probe may be stale; that must not flip anything.
            let after = step(&restored, &POLICY, &next, 1_000_000);
            assert_eq!(
                after.state.target(),
                got.target(),
                "{phase} -> {:?}",
                after.state.phase
            );
        }
    }
}
