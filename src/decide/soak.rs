//! A compressed-time soak of the decision core (issue 18): a simulated week per seed of a
//! world whose primary and standby go up and down, lose probes, change address, get drained
//! and released, and whose daemon restarts, fed probe by probe to [`step`] (and [`resume`] at
//! each restart) with design.md's invariants checked after every step:
//!
//! - **3, never worse:** a probe moves the records to the standby only with `failures_to_down`
//!   failures in a row and a ready standby (its last probe good and fresh).
//! - **4, no flapping:** a probe moves them back only with `successes_to_up` successes and the
//!   whole `hold_down` observed since the streak began, or with the standby down; so two
//!   failovers are always at least `hold_down` apart.
//! - **7, a restart resumes:** [`resume`] never moves a record, and after a restart no record
//!   moves on a probe before `failures_to_down` (or `successes_to_up`) probes were observed by
//!   the new process.
//! - **4, drain latches:** a drained site stays on the standby until released.
//! - **liveness:** with the standby up and the site not drained, a primary down for longer than
//!   its detection time has the records on the standby; a primary up (and its probes good) for
//!   longer than its recovery time has them on the primary. A core that never flips passes
//!   every safety rule; these catch one that gets stuck.
//!
//! Invariant 5 (an offline watcher abstains) lives in the controller, which does not feed the
//! core while its references are unreachable; here an offline spell feeds nothing, and the
//! checks above must hold across it all the same.

use super::*;

/// xorshift64*: deterministic, so a failing seed can be run again.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - p
    }
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

const SEC: Millis = 1_000;
const MIN: Millis = 60 * SEC;
const HOUR: Millis = 60 * MIN;
const WEEK: Millis = 7 * 24 * HOUR;
/// The probe cadence (the default `interval`), and the fast one while suspect.
const INTERVAL: Millis = 2 * SEC;
const FAST: Millis = 200;

/// What is true in the simulated world.
struct World {
    primary_up: bool,
    standby_up: bool,
    /// Probability that a probe of a server that is up fails anyway (a lossy line).
    loss: f64,
    drained: bool,
    /// The watcher cannot reach its references: it feeds nothing.
    offline: bool,
    /// When each of the above last changed; `calm_since`: the loss, the watcher's link, a
    /// drain or release, a restart or an address change.
    primary_since: Millis,
    standby_since: Millis,
    calm_since: Millis,
}

#[derive(Default, Debug)]
struct Tally {
    steps: u64,
    failovers: u64,
    failbacks: u64,
    restarts: u64,
    address_changes: u64,
    drains: u64,
    outages: u64,
}

fn soak(seed: u64, policy: Policy) -> Tally {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut now: Millis = 1_800_000_000_000;
    let end = now + WEEK;
    let mut w = World {
        primary_up: true,
        standby_up: true,
        loss: 0.0,
        drained: false,
        offline: false,
        primary_since: now,
        standby_since: now,
        calm_since: now,
    };
    let mut s = SiteState::new(now);
    let mut t = Tally::default();
    // Probes observed by this process (since its last restart).
    let mut observed_primary: u32 = 0;
    let mut last_failover: Option<Millis> = None;
    let mut next_standby_probe = now;
    while now < end {
        // The world changes now and then (rates per probe, so a week sees dozens of each).
        if rng.chance(1.0 / 2_000.0) {
            w.primary_up = !w.primary_up;
            w.primary_since = now;
            t.outages += u64::from(!w.primary_up);
        }
        if rng.chance(1.0 / 20_000.0) {
            w.standby_up = !w.standby_up;
            w.standby_since = now;
        }
        if rng.chance(1.0 / 5_000.0) {
            w.loss = [0.0, 0.0, 0.05, 0.2][rng.between(0, 3) as usize];
            w.calm_since = now;
        }
        if rng.chance(1.0 / 30_000.0) {
            w.offline = !w.offline;
            w.calm_since = now;
        }
        let mut inputs: Vec<Input> = vec![];
        if rng.chance(1.0 / 15_000.0) {
            // A restart: the saved state is resumed.
            let before = s.target();
            s = resume(&s);
            assert_eq!(s.target(), before, "a restart moved the records");
            observed_primary = 0;
            w.calm_since = now;
            t.restarts += 1;
        } else if rng.chance(1.0 / 25_000.0) {
            inputs.push(if w.drained {
                Input::Release
            } else {
                Input::Drain {
                    force: rng.chance(0.2),
                }
            });
        } else if rng.chance(1.0 / 10_000.0) {
            inputs.push(Input::AddressChanged {
                detail: "soak".into(),
            });
            t.address_changes += 1;
        }
        if !w.offline {
            if now >= next_standby_probe {
                let ok = w.standby_up && !rng.chance(w.loss / 4.0);
                inputs.push(Input::Standby {
                    ok,
                    detail: String::new(),
                });
                next_standby_probe = now + INTERVAL;
            }
            let ok = w.primary_up && !rng.chance(w.loss / 4.0);
            inputs.push(Input::Primary {
                ok,
                detail: String::new(),
            });
        }
        for input in &inputs {
            let before = s.clone();
            let r = step(&s, &policy, input, now);
            t.steps += 1;
            if let Some(why) = &r.refused {
                assert_eq!(r.state, s, "a refusal changed the state: {why}");
            }
            if matches!(input, Input::Primary { .. }) {
                observed_primary = observed_primary.saturating_add(1);
            }
            match (input, before.target(), r.state.target()) {
                (
                    Input::Primary { .. } | Input::Standby { .. },
                    Target::Primary,
                    Target::Standby,
                ) => {
                    assert!(r.state.primary_failures >= policy.failures_to_down);
                    assert!(
                        observed_primary >= policy.failures_to_down,
                        "flipped on a count from before a restart"
                    );
                    assert_eq!(r.state.standby.readiness(&policy, now), Readiness::Ready);
                    if let Some(at) = last_failover {
                        assert!(
                            now - at >= policy.hold_down,
                            "two failovers {} ms apart",
                            now - at
                        );
                    }
                    last_failover = Some(now);
                    t.failovers += 1;
                }
                (
                    Input::Primary { .. } | Input::Standby { .. },
                    Target::Standby,
                    Target::Primary,
                ) => {
                    let standby_down = r.state.standby.failures >= policy.failures_to_down;
                    let served = r.state.primary_successes >= policy.successes_to_up
                        && observed_primary >= policy.successes_to_up
                        && now - r.state.healthy_since.unwrap_or(now) >= policy.hold_down;
                    assert!(
                        standby_down || served,
                        "failback without cause: {:?}",
                        r.state
                    );
                    assert!(before.phase != Phase::Drained, "a probe released a drain");
                    t.failbacks += 1;
                }
                (Input::AddressChanged { .. }, a, b) => {
                    assert_eq!(a, b, "an address change moved the records")
                }
                (Input::Drain { .. }, Target::Primary, Target::Standby) => t.drains += 1,
                _ => {}
            }
            if before.phase == Phase::Drained && !matches!(input, Input::Release) {
                assert_eq!(r.state.phase, Phase::Drained, "a drain let go on {input:?}");
            }
            match input {
                Input::Drain { .. } if r.refused.is_none() => w.drained = true,
                Input::Release if r.refused.is_none() => w.drained = false,
                _ => {}
            }
            if !matches!(input, Input::Primary { .. } | Input::Standby { .. }) {
                w.calm_since = now;
            }
            s = r.state;
        }
        // Liveness, only where the world has been steady and observed long enough.
        let steady =
            |since: Millis, need: Millis| now.saturating_sub(since.max(w.calm_since)) > need;
        let detect = policy.failures_to_down as Millis * INTERVAL + 30 * SEC;
        let recover = policy.successes_to_up as Millis * INTERVAL + policy.hold_down + 30 * SEC;
        let quiet = !w.offline && w.loss == 0.0 && !w.drained && s.phase != Phase::Drained;
        if quiet
            && w.standby_up
            && steady(w.standby_since, detect)
            && !w.primary_up
            && steady(w.primary_since, detect)
        {
            assert_eq!(
                s.target(),
                Target::Standby,
                "stuck on a dead primary: {s:?}"
            );
        }
        if quiet && w.primary_up && steady(w.primary_since, recover) {
            assert_eq!(
                s.target(),
                Target::Primary,
                "stuck away from a healthy primary: {s:?}"
            );
        }
        now += if s.phase == Phase::Suspect {
            FAST
        } else {
            INTERVAL
        };
    }
    t
}

#[test]
fn a_simulated_week_keeps_every_invariant() {
    let policies = [
        // The defaults.
        Policy {
            failures_to_down: 3,
            successes_to_up: 5,
            hold_down: 5 * MIN,
            standby_fresh: 30 * SEC,
        },
        // Quick and twitchy.
        Policy {
            failures_to_down: 1,
            successes_to_up: 1,
            hold_down: 0,
            standby_fresh: 10 * SEC,
        },
    ];
    for (i, policy) in policies.into_iter().enumerate() {
        for seed in 1..=3 {
            let t = soak(seed + 10 * i as u64, policy);
            // The week really exercised what it claims to.
            assert!(t.failovers > 5 && t.failbacks > 5, "{t:?}");
            assert!(
                t.restarts > 5 && t.address_changes > 5 && t.outages > 20,
                "{t:?}"
            );
            eprintln!("policy {i} seed {seed}: {t:?}");
        }
    }
}
