//! The controller's side of abstaining (`crate::watcher` has the rules): a failed primary
//! probe that would take a site down is held until a reference round that started after the
//! failures began; it is applied if that round reached a reference and dropped if not, and
//! while no reference answers, no failed primary probe is acted on. The outage of the
//! watcher's own link is one `watcher-offline` event, written when the link is back (its
//! notification could not have left before).

use std::sync::Arc;

use tokio::sync::Notify;

use super::Controller;
use crate::decide::{self, Input, Phase};
use crate::store::{EventKind, NewEvent};

/// One round of reference checks (`crate::watcher::check`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round {
    /// When the round began (Unix ms): it says nothing of failures that began after.
    pub started: u64,
    /// `false` only when references are counted and none of them answered.
    pub online: bool,
    /// The references and what each did, in words.
    pub detail: String,
}

/// What the controller knows of its own links.
#[derive(Default)]
pub struct Connectivity {
    /// References are configured (`[watcher] references` not empty).
    pub enabled: bool,
    /// Asks the reference task for a round now.
    pub wake: Arc<Notify>,
    last: Option<Round>,
    /// Since when no reference answers, and what the first offline round said.
    offline: Option<(u64, String)>,
    /// Failed primary probes not acted on in this offline spell.
    dropped: u64,
    /// Per site, the held failure: the input and when its failure streak began.
    held: Vec<(usize, Input, u64)>,
}

impl Connectivity {
    pub fn new(enabled: bool) -> Connectivity {
        Connectivity {
            enabled,
            ..Default::default()
        }
    }
}

impl Controller {
    /// Whether the primary probe `input` of site `i` goes to the decision core now; `false`
    /// when it is held for a round or dropped (the module doc).
    pub(super) fn may_act(&mut self, i: usize, input: &Input, now: u64) -> bool {
        let Input::Primary { ok, .. } = input else {
            return true;
        };
        if !self.connectivity.enabled {
            return true;
        }
        if *ok {
            // A success ends the streak a held failure belonged to.
            self.connectivity.held.retain(|(s, ..)| *s != i);
            return true;
        }
        let state = &self.sites[i].state;
        let step = decide::step(state, &super::policy(&self.cfg.sites[i]), input, now);
        let goes_down = step.transition.as_ref().is_some_and(|t| {
            matches!(t.from, Phase::Healthy | Phase::Suspect)
                && matches!(t.to, Phase::FailedOver | Phase::PrimaryDown)
        });
        if !goes_down {
            return true;
        }
        if self.connectivity.offline.is_some() {
            self.connectivity.dropped += 1;
            return false;
        }
        let streak_began = match state.phase {
            Phase::Suspect => state.since,
            _ => now,
        };
        if let Some(r) = &self.connectivity.last {
            if r.online && r.started >= streak_began {
                return true;
            }
        }
        self.connectivity.held.retain(|(s, ..)| *s != i);
        self.connectivity
            .held
            .push((i, input.clone(), streak_began));
        tracing::info!(site = %self.cfg.sites[i].name, "primary looks down; checking this watcher's own links first");
        self.connectivity.wake.notify_one();
        false
    }

    /// A reference round: offline starts or ends, held failures are applied or dropped.
    pub(super) fn connectivity(&mut self, round: Round, now: u64) {
        let c = &mut self.connectivity;
        if !round.online {
            if c.offline.is_none() {
                tracing::warn!(
                    "watcher offline: no reference answers ({}); failed probes are not acted on until one does",
                    round.detail
                );
                c.offline = Some((round.started, round.detail.clone()));
            }
            c.dropped += c.held.len() as u64;
            c.held.clear();
            c.last = Some(round);
            return;
        }
        if let Some((since, first)) = c.offline.take() {
            let lasted = crate::util::human_duration(now.saturating_sub(since));
            let reason = format!(
                "this watcher reached none of its references for {lasted} ({first}); {} failed \
                 primary probe(s) in that time were not acted on",
                c.dropped
            );
            c.dropped = 0;
            tracing::warn!("watcher online again: {reason}");
            if let Err(e) = self.store.append_event(&NewEvent {
                site: crate::events::DAEMON_SITE,
                at: now,
                kind: EventKind::WatcherOffline,
                reason: &reason,
                ..Default::default()
            }) {
                tracing::error!("{e}");
            }
        }
        let c = &mut self.connectivity;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut c.held)
            .into_iter()
            .partition(|(_, _, began)| round.started >= *began);
        c.held = waiting;
        if !c.held.is_empty() {
            // The round began before these failures did: ask for another.
            c.wake.notify_one();
        }
        c.last = Some(round);
        for (i, input, _) in ready {
            if let Err(e) = self.apply(i, &input, now) {
                tracing::error!(site = %self.cfg.sites[i].name, "{e:#}");
            }
        }
    }
}
