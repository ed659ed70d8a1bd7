//! The controller's second half of a step: publishing, logging and saving, done once for
//! every step of a batch of messages rather than once per step.
//!
//! When the home line fails, every site on it fails within the same second, and each
//! failover used to rebuild and publish every zone and fsync the database on its own: a
//! thousand sites took nine seconds to move, the last ones seconds after the first. Now
//! [`Controller::run`](super::Controller::run) hands the controller every message already
//! queued (up to [`BATCH_MAX`]), each step is decided at once and kept in `pending`, and
//! [`Controller::flush`] then publishes the records once, logs every transition with the
//! time its records really moved, and saves every changed state with its events in one
//! transaction. The order of a single step is unchanged: decide, publish, then log and save
//! (so no event, and so no notification, exists for records not yet published); a crash
//! between the publish and the save is what it was before, a restart from the last saved
//! decision. A command or a status request flushes first, so an operator always sees, and a
//! command's answer always follows, what is published.

use super::*;

/// The most messages taken into one batch (then it is published and saved).
pub const BATCH_MAX: usize = 1024;

/// A decided step waiting for its publish and save.
pub(super) struct Pending {
    pub site: usize,
    pub input: Input,
    pub prev: SiteState,
    pub step: decide::Step,
    pub now: u64,
    /// The site's records before the step, in words, when it moves them.
    pub before: Option<String>,
}

impl Controller {
    /// Publishes what the pending steps decided (once), then logs and saves each of them
    /// (one transaction). Nothing pending: nothing done.
    pub(super) fn flush(&mut self) -> anyhow::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let moved_at = match pending.iter().any(|p| p.before.is_some()) {
            true => {
                self.publish()?;
                Some(now_millis())
            }
            false => None,
        };
        let cfg = self.cfg.clone();
        let mut done: Vec<(usize, Pending, Option<String>)> = Vec::with_capacity(pending.len());
        for mut p in pending {
            let site = &cfg.sites[p.site];
            let after = p.before.as_ref().map(|_| {
                site_records(site, p.step.state.target(), &self.public).describe(site.names())
            });
            if let (Some(t), Some(moved_at)) = (p.step.transition.as_mut(), moved_at) {
                if p.before.is_some() {
                    let (note, took) = detection_note(&p.prev, t.to, p.now, moved_at.max(p.now));
                    t.reason.push_str(&note);
                    if let Some(ms) = took {
                        crate::metrics::get().detection(ms);
                    }
                }
            }
            if let Some(t) = &p.step.transition {
                match &after {
                    Some(records) => {
                        tracing::warn!(site = %site.name, from = %t.from, to = %t.to, records = %records, "{}", t.reason)
                    }
                    None => {
                        tracing::info!(site = %site.name, from = %t.from, to = %t.to, "{}", t.reason)
                    }
                }
            }
            done.push((p.site, p, after));
        }
        let mut saves = Vec::with_capacity(done.len());
        for (i, p, after) in &done {
            let site = &cfg.sites[*i];
            let records = p.before.as_deref().zip(after.as_deref());
            let events = step_events(&site.name, &p.input, &p.step, p.now, records);
            for e in &events {
                let direction = match e.kind {
                    EventKind::FailedOver => "over",
                    EventKind::FailedBack => "back",
                    EventKind::Drained => "drained",
                    EventKind::Released => "released",
                    _ => continue,
                };
                crate::metrics::get().failover(&site.name, direction);
            }
            saves.push((site.name.as_str(), &p.step.state, p.now, events));
        }
        self.store.save_many(&saves)?;
        for (i, p, _) in &done {
            self.sites[*i].last_saved = p.now;
        }
        Ok(())
    }
}

/// The records of one site pointing at `target` (what [`managed_records`] holds for it).
pub fn site_records(
    site: &Site,
    target: Target,
    public: &BTreeMap<Family, IpAddr>,
) -> ManagedRecords {
    let mut m = ManagedRecords::default();
    // A proxied site's records point at the standby, which fronts it, whatever the decision.
    let target = match site.mode {
        crate::config::SiteMode::Proxy => Target::Standby,
        crate::config::SiteMode::Dns => target,
    };
    let ip = match target {
        Target::Primary => primary_addr(site, public),
        Target::Standby => Some(site.standby.ip),
    };
    if let Some(ip) = ip {
        for n in site.names() {
            m.set(n.clone(), site.record_type(), vec![ip]);
        }
    }
    m
}
