//! The decision core's table and property tests.

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
            // The event log records alerts through their transition (crate::events).
            if r.alert.is_some() {
                prop_assert!(r.transition.is_some(), "an alert without a transition: {:?}", r);
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
