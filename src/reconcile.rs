//! Makes each external provider's zone match the desired records.
//!
//! [`plan`] is pure: desired RRsets vs what the provider holds → the minimal list of RRsets to
//! replace. [`Reconciler::run`] is the loop around it for one zone: it reads the provider at
//! start and every `refresh`, applies the plan when it is not empty (no API call otherwise),
//! retries failures with exponential backoff and jitter (honouring Retry-After) from 0.5 s up
//! to [`RETRY_CAP`], and always
//! applies the *latest* desired value — it reads it from a `watch` channel at every attempt,
//! so an outage queues nothing stale. After applying it asks the zone's authoritative servers
//! directly until they answer the new value, or reports "could not confirm".
//!
//! Each loop also says where it stands on a [`ZoneBoard`] (`status` shows it): per managed
//! record set the desired value, what the provider holds and whether the authoritative servers
//! confirmed it, and for the zone "in-sync", "pending" or "failing" with the provider's last
//! error and since when. Every `refresh` it reads the provider again; a managed record changed
//! there by hand (it held the desired value and now does not) is *drift*: logged, shown in
//! `status`, and repaired in the same pass, so a manual edit lasts at most one `refresh`
//! (`dns.refresh`, default 1 minute) plus the backoff if the provider is failing.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::rr::Name;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::dns::provider::{Key, Outcome, Provider, ProviderError, RrSet};
use crate::dns::ManagedRecords;

/// The RRsets to replace so that `actual` matches `desired`. Only keys in `desired` are ever
/// touched: records the provider holds that understudy does not manage are not even looked at.
pub fn plan(desired: &BTreeMap<Key, RrSet>, actual: &BTreeMap<Key, RrSet>) -> Vec<RrSet> {
    desired
        .iter()
        .filter(|(k, want)| actual.get(*k) != Some(*want))
        .map(|(_, want)| want.clone())
        .collect()
}

/// The other address type at a managed name: AAAA beside a managed A, A beside a managed AAAA.
pub fn other_family_keys(desired: &BTreeMap<Key, RrSet>) -> Vec<Key> {
    desired
        .keys()
        .filter_map(|(n, t)| match *t {
            hickory_proto::rr::RecordType::A => {
                Some((n.clone(), hickory_proto::rr::RecordType::AAAA))
            }
            hickory_proto::rr::RecordType::AAAA => {
                Some((n.clone(), hickory_proto::rr::RecordType::A))
            }
            _ => None,
        })
        .filter(|k| !desired.contains_key(k))
        .collect()
}

/// What an operator should know before understudy writes a provider zone (pure): an address
/// record of the other family at a managed name, which understudy does not manage and which
/// keeps some visitors on the primary during a failover; and a managed record set that exists
/// without understudy's ownership marker, which understudy is about to take over. `actual`
/// holds what the provider has for the desired keys and [`other_family_keys`]; `marked` the
/// existing desired keys that carry the marker.
pub fn takeover_notes(
    desired: &BTreeMap<Key, RrSet>,
    actual: &BTreeMap<Key, RrSet>,
    marked: &std::collections::BTreeSet<Key>,
) -> Vec<String> {
    let mut out = vec![];
    for k in other_family_keys(desired) {
        if let Some(found) = actual.get(&k) {
            out.push(format!(
                "{found} is at a managed name but not managed by understudy: visitors that use {} keep reaching it when the site \
                 fails over; remove it, or manage both families",
                if k.1 == hickory_proto::rr::RecordType::AAAA { "IPv6" } else { "IPv4" }
            ));
        }
    }
    for k in desired.keys() {
        if let (Some(found), false) = (actual.get(k), marked.contains(k)) {
            out.push(format!(
                "{found} exists without understudy's ownership marker: understudy will take this record set over and rewrite it from \
                 now on; if another tool or person manages it, stop that first"
            ));
        }
    }
    out
}

/// The desired RRsets of one zone, from the controller's managed records.
pub fn desired_in_zone(managed: &ManagedRecords, zone: &Name, ttl: u32) -> BTreeMap<Key, RrSet> {
    managed
        .0
        .iter()
        .filter(|((name, _), _)| zone.zone_of(name))
        .map(|((name, t), addrs)| {
            (
                (name.clone(), *t),
                RrSet::new(name.clone(), *t, ttl, addrs.clone()),
            )
        })
        .collect()
}

/// Where one zone's reconciler stands, for `status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ZoneStatus {
    pub zone: String,
    /// The provider, in words ("rfc2136 127.0.0.1:53").
    pub provider: String,
    /// "starting", "in-sync" (the provider holds every desired record set), "pending" (a change
    /// sent, not yet confirmed by the authoritative servers) or "failing" (see `last_error`).
    pub state: String,
    /// When `state` began (Unix ms).
    pub since: u64,
    /// The provider's last error while failing.
    pub last_error: Option<String>,
    pub records: Vec<RecordStatus>,
    /// Managed records found changed at the provider by someone else (newest last, at most 10).
    pub drift: Vec<Drift>,
    /// How often the provider is read again (the bound on how long a manual edit lasts).
    pub refresh_ms: u64,
}

/// One managed record set of a provider zone.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecordStatus {
    pub name: String,
    pub rtype: String,
    pub desired: Vec<String>,
    /// What the provider holds, as last read or written (`None`: not known, or absent).
    pub at_provider: Option<Vec<String>>,
    /// Whether the zone's authoritative servers answered the desired value (always true when
    /// the zone has no `verify` servers to ask).
    pub confirmed: bool,
}

/// A managed record changed outside understudy.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Drift {
    pub at: u64,
    pub record: String,
    pub found: String,
    pub expected: String,
}

/// Every external zone's status, shared by the reconcilers (writers) and the controller (which
/// answers `status`).
pub type ZoneBoard = Arc<Mutex<BTreeMap<String, ZoneStatus>>>;

/// The longest wait between tries while a provider fails. A failover waits on it once the
/// provider is back: with a 60 s cap, the chaos suite's provider-down scenario saw the change
/// land 32 s after BIND answered again. Ten seconds bounds that, at six requests a minute to a
/// provider that is down (a 429's Retry-After is honoured over it).
pub const RETRY_CAP: Duration = Duration::from_secs(10);

/// Exponential backoff with full jitter, capped.
#[derive(Clone, Debug)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
    attempt: u32,
    seed: u64,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max,
            attempt: 0,
            seed: crate::util::now_millis() | 1,
        }
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The next delay: a random point in [ceiling/2, ceiling], ceiling = base·2^attempt ≤ max.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let half = ceiling / 2;
        half + Duration::from_millis(self.seed % (half.as_millis() as u64 + 1))
    }
}

/// Reconciles one zone at one provider.
pub struct Reconciler {
    pub zone: Name,
    pub provider: Arc<dyn Provider>,
    pub ttl: u32,
    /// Servers to ask directly for verification (the zone's authoritative servers).
    pub verify: Vec<SocketAddr>,
    pub verify_timeout: Duration,
    pub refresh: Duration,
}

/// What one reconcile pass did.
#[derive(Debug, PartialEq, Eq)]
pub enum Pass {
    /// Provider already matched: no write.
    InSync,
    /// Changes sent; per change what became of it, and whether verification confirmed it.
    Applied(Vec<(RrSet, Outcome, bool)>),
}

impl Reconciler {
    /// The desired RRsets of this zone, with the TTL the provider will store.
    pub fn desired(&self, managed: &ManagedRecords) -> BTreeMap<Key, RrSet> {
        desired_in_zone(managed, &self.zone, self.provider.ttl_for(self.ttl))
    }

    /// The notes of [`takeover_notes`] for this zone, read from the provider (read-only).
    pub async fn takeover_warnings(
        &self,
        desired: &BTreeMap<Key, RrSet>,
    ) -> Result<Vec<String>, ProviderError> {
        let mut keys: Vec<Key> = desired.keys().cloned().collect();
        keys.extend(other_family_keys(desired));
        let actual = self.provider.read(&self.zone, &keys).await?;
        let existing: Vec<Key> = desired
            .keys()
            .filter(|k| actual.contains_key(*k))
            .cloned()
            .collect();
        let marked = if existing.is_empty() {
            Default::default()
        } else {
            self.provider.marked(&self.zone, &existing).await?
        };
        Ok(takeover_notes(desired, &actual, &marked))
    }

    /// One pass: read, plan, apply, verify. Used by the daemon loop and `understudy dns apply`.
    pub async fn pass(
        &self,
        desired: &BTreeMap<Key, RrSet>,
        known: &mut Option<BTreeMap<Key, RrSet>>,
    ) -> Result<Pass, ProviderError> {
        if known.is_none() {
            let keys: Vec<Key> = desired.keys().cloned().collect();
            *known = Some(self.provider.read(&self.zone, &keys).await?);
        }
        let actual = known.as_mut().expect("just read");
        let changes = plan(desired, actual);
        if changes.is_empty() {
            return Ok(Pass::InSync);
        }
        let outcomes = match self.provider.apply(&self.zone, &changes).await {
            Ok(o) => o,
            Err(e) => {
                // The batch may have landed partly or wholly: re-read before the next plan.
                *known = None;
                return Err(e);
            }
        };
        let mut report = vec![];
        for (change, outcome) in changes.into_iter().zip(outcomes) {
            match &outcome {
                Outcome::Applied => {
                    actual.insert(change.key(), change.clone());
                }
                Outcome::Rejected(_) | Outcome::CouldNotConfirm(_) => {
                    actual.remove(&change.key());
                }
            }
            let confirmed = outcome == Outcome::Applied && self.verify_one(&change).await;
            report.push((change, outcome, confirmed));
        }
        Ok(Pass::Applied(report))
    }

    /// Counts a pass that wrote, or failed, in the metrics (`crate::metrics`).
    fn count(&self, result: &Result<Pass, ProviderError>, took: Duration) {
        let outcome = match result {
            Ok(Pass::InSync) => return,
            Ok(Pass::Applied(report)) => {
                if report
                    .iter()
                    .any(|(_, o, _)| matches!(o, Outcome::Rejected(_)))
                {
                    "rejected"
                } else if report.iter().all(|(_, _, confirmed)| *confirmed) {
                    "published"
                } else {
                    "unconfirmed"
                }
            }
            Err(_) => "error",
        };
        crate::metrics::get().publish(
            &self.zone.to_string(),
            &self.provider.describe(),
            outcome,
            took,
        );
    }

    /// Asks every verify server until all answer `want`, within the bound.
    async fn verify_one(&self, want: &RrSet) -> bool {
        if self.verify.is_empty() {
            return true;
        }
        let deadline = tokio::time::Instant::now() + self.verify_timeout;
        loop {
            let all = self.answers_now(want).await;
            if all {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The daemon loop for this zone, until `cancel`.
    pub async fn run(self, desired_rx: watch::Receiver<ManagedRecords>, cancel: CancellationToken) {
        let (_keep, reverify) = watch::channel(0);
        self.run_reporting(desired_rx, ZoneBoard::default(), reverify, None, cancel)
            .await
    }

    /// [`Reconciler::run`], saying where it stands on `board`.
    pub async fn run_reporting(
        self,
        mut desired_rx: watch::Receiver<ManagedRecords>,
        board: ZoneBoard,
        mut reverify: watch::Receiver<u64>,
        events: Option<crate::store::Store>,
        cancel: CancellationToken,
    ) {
        let mut known: Option<BTreeMap<Key, RrSet>> = None;
        let mut backoff = Backoff::new(Duration::from_millis(500), RETRY_CAP);
        let mut last_refresh = tokio::time::Instant::now();
        let mut status = ZoneStatus {
            zone: self.zone.to_string(),
            provider: self.provider.describe(),
            state: "starting".into(),
            since: crate::util::now_millis(),
            refresh_ms: self.refresh.as_millis() as u64,
            ..Default::default()
        };
        // What the authoritative servers last confirmed, per key.
        let mut confirmed: BTreeMap<Key, RrSet> = BTreeMap::new();
        loop {
            let desired = self.desired(&desired_rx.borrow_and_update());
            // Asked to verify now (`POST /api/v1/dns/reverify`): read, repair, confirm afresh.
            let asked = reverify.has_changed().unwrap_or(false);
            if asked {
                reverify.borrow_and_update();
                confirmed.clear();
            }
            if asked || last_refresh.elapsed() >= self.refresh {
                last_refresh = tokio::time::Instant::now();
                // Read again; what held the desired value before and does not now was changed
                // by someone else.
                let before = known.take();
                let keys: Vec<Key> = desired.keys().cloned().collect();
                if let (Some(before), Ok(fresh)) =
                    (before, self.provider.read(&self.zone, &keys).await)
                {
                    for (k, want) in &desired {
                        if before.get(k) == Some(want) && fresh.get(k) != Some(want) {
                            let found = fresh
                                .get(k)
                                .map(|r| r.to_string())
                                .unwrap_or_else(|| "no record".to_string());
                            tracing::warn!(
                                zone = %self.zone, provider = %self.provider.describe(),
                                "drift: {} {} was changed outside understudy (found {found}, expected {want}); repairing",
                                k.0, k.1
                            );
                            confirmed.remove(k);
                            status.drift.push(Drift {
                                at: crate::util::now_millis(),
                                record: format!("{} {}", k.0, k.1),
                                found,
                                expected: want.to_string(),
                            });
                            if status.drift.len() > 10 {
                                status.drift.remove(0);
                            }
                        }
                    }
                    known = Some(fresh);
                }
            }
            let mut error: Option<String> = None;
            let started = tokio::time::Instant::now();
            let result = self.pass(&desired, &mut known).await;
            self.count(&result, started.elapsed());
            let wait = match result {
                Ok(Pass::InSync) => {
                    backoff.reset();
                    // Held by the provider; ask the servers once (no waiting) what they answer.
                    for (k, want) in &desired {
                        if confirmed.get(k) != Some(want) && self.answers_now(want).await {
                            confirmed.insert(k.clone(), want.clone());
                        }
                    }
                    None
                }
                Ok(Pass::Applied(report)) => {
                    let mut retry = false;
                    for (rr, outcome, ok) in report {
                        match (outcome, ok) {
                            (Outcome::Applied, true) => {
                                tracing::info!(zone = %self.zone, provider = %self.provider.describe(), "published {rr}");
                                confirmed.insert(rr.key(), rr);
                            }
                            (Outcome::Applied, false) => {
                                let why = format!(
                                    "could not confirm {rr}: the authoritative servers {} still answer otherwise after {}",
                                    self.verify.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", "),
                                    crate::util::human(self.verify_timeout)
                                );
                                tracing::warn!(zone = %self.zone, "{why}");
                                error = Some(why);
                                known = None;
                                retry = true;
                            }
                            (Outcome::Rejected(why), _) => {
                                tracing::error!(zone = %self.zone, provider = %self.provider.describe(), "the provider rejected {rr}: {why}");
                                error = Some(format!("the provider rejected {rr}: {why}"));
                                retry = true;
                            }
                            (Outcome::CouldNotConfirm(why), _) => {
                                tracing::warn!(zone = %self.zone, "could not confirm {rr}: {why}");
                                error = Some(format!("could not confirm {rr}: {why}"));
                                retry = true;
                            }
                        }
                    }
                    if retry {
                        Some(backoff.next_delay())
                    } else {
                        backoff.reset();
                        None
                    }
                }
                Err(e) => {
                    let delay = e.retry_after().unwrap_or_else(|| backoff.next_delay());
                    let level = if e.is_transient() {
                        "will retry"
                    } else {
                        "fix the provider settings; will retry"
                    };
                    tracing::error!(zone = %self.zone, provider = %self.provider.describe(), "{e}; {level} in {:.1} s with the latest desired records", delay.as_secs_f64());
                    error = Some(e.to_string());
                    Some(delay)
                }
            };
            let was_failing = status.state == "failing";
            let failing_since = status.since;
            let reason = error.clone();
            self.report(
                &board,
                &mut status,
                &desired,
                known.as_ref(),
                &confirmed,
                error,
            );
            // The first failure of a streak goes to the event log (and so to the channels).
            if let (false, Some(why), Some(store)) = (was_failing, &reason, &events) {
                if status.state == "failing" {
                    let _ = store.append_event(&crate::store::NewEvent {
                        site: crate::events::DAEMON_SITE,
                        at: crate::util::now_millis(),
                        kind: crate::events::EventKind::DnsUnconfirmed,
                        reason: &format!(
                            "zone {} at {}: {why}",
                            self.zone,
                            self.provider.describe()
                        ),
                        ..Default::default()
                    });
                }
            }
            // The end of a streak too, with how long it lasted.
            if let (true, None, Some(store)) = (was_failing, &reason, &events) {
                if status.state != "failing" {
                    let now = crate::util::now_millis();
                    let _ = store.append_event(&crate::store::NewEvent {
                        site: crate::events::DAEMON_SITE,
                        at: now,
                        kind: crate::events::EventKind::DnsConfirmed,
                        reason: &format!(
                            "zone {} at {}: the provider took and confirmed the records again after {} of failures",
                            self.zone,
                            self.provider.describe(),
                            crate::util::human_duration(now.saturating_sub(failing_since))
                        ),
                        ..Default::default()
                    });
                }
            }
            let until_refresh = self.refresh.saturating_sub(last_refresh.elapsed());
            match wait {
                // Failing: sleep the backoff; a newer desired value is picked up on the retry.
                Some(delay) => tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                },
                None => tokio::select! {
                    _ = cancel.cancelled() => return,
                    changed = desired_rx.changed() => if changed.is_err() { return },
                    _ = async {
                        if reverify.changed().await.is_err() {
                            std::future::pending::<()>().await
                        }
                    } => {}
                    _ = tokio::time::sleep(until_refresh) => {}
                },
            }
        }
    }

    /// One round of questions to the verify servers, without waiting for them to agree.
    async fn answers_now(&self, want: &RrSet) -> bool {
        for server in &self.verify {
            let got =
                crate::dns::client::query(*server, &want.name, want.rtype, Duration::from_secs(2))
                    .await;
            let mut addrs = got.map(|r| r.addrs).unwrap_or_default();
            addrs.sort();
            if addrs != want.addrs {
                return false;
            }
        }
        true
    }

    /// Writes this zone's status to the board.
    fn report(
        &self,
        board: &ZoneBoard,
        status: &mut ZoneStatus,
        desired: &BTreeMap<Key, RrSet>,
        known: Option<&BTreeMap<Key, RrSet>>,
        confirmed: &BTreeMap<Key, RrSet>,
        error: Option<String>,
    ) {
        let words = |r: &RrSet| r.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        status.records = desired
            .iter()
            .map(|(k, want)| RecordStatus {
                name: k.0.to_string(),
                rtype: k.1.to_string(),
                desired: words(want),
                at_provider: known.and_then(|m| m.get(k)).map(words),
                confirmed: confirmed.get(k) == Some(want),
            })
            .collect();
        let state = match (
            &error,
            status
                .records
                .iter()
                .all(|r| r.confirmed && r.at_provider.as_ref() == Some(&r.desired)),
        ) {
            (Some(_), _) => "failing",
            (None, true) => "in-sync",
            (None, false) => "pending",
        };
        if status.state != state {
            status.state = state.to_string();
            status.since = crate::util::now_millis();
        }
        status.last_error = error;
        board
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(status.zone.clone(), status.clone());
    }
}

/// One reconciler per zone held by an external provider.
pub fn for_config(cfg: &crate::config::Config) -> anyhow::Result<Vec<Reconciler>> {
    let mut out = vec![];
    for z in &cfg.dns.zones {
        let Some(name) = &z.provider else { continue };
        let pc = cfg
            .providers
            .iter()
            .find(|p| &p.name == name)
            .ok_or_else(|| anyhow::anyhow!("zone {}: no provider {name}", z.origin))?;
        let provider =
            provider(pc, cfg.dns.ttl).map_err(|e| anyhow::anyhow!("provider {name}: {e}"))?;
        out.push(Reconciler {
            zone: z.origin.clone(),
            provider,
            ttl: cfg.dns.ttl,
            verify: z.verify.clone(),
            verify_timeout: cfg.dns.verify_timeout,
            refresh: cfg.dns.refresh,
        });
    }
    Ok(out)
}

/// Builds the provider a config entry describes: each adapter from its own part of the config.
fn provider(
    cfg: &crate::config::ProviderConfig,
    ttl: u32,
) -> Result<std::sync::Arc<dyn Provider>, String> {
    use crate::config::ProviderKind;
    use crate::dns::provider::{cloudflare, powerdns, rfc2136, route53};
    let t = cfg.timeout;
    Ok(match &cfg.kind {
        ProviderKind::Rfc2136(c) => std::sync::Arc::new(rfc2136::Rfc2136::new(c, t)?),
        ProviderKind::Cloudflare(c) => std::sync::Arc::new(cloudflare::Cloudflare::new(c, ttl, t)?),
        ProviderKind::Route53(c) => std::sync::Arc::new(route53::Route53::new(c, t)),
        ProviderKind::PowerDns(c) => std::sync::Arc::new(powerdns::PowerDns::new(c, t)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::zone::fqdn;
    use hickory_proto::rr::RecordType;

    fn rr(name: &str, ip: &str, ttl: u32) -> (Key, RrSet) {
        let r = RrSet::new(fqdn(name), RecordType::A, ttl, vec![ip.parse().unwrap()]);
        (r.key(), r)
    }

    #[test]
    fn plan_is_minimal_and_touches_only_desired_keys() {
        let desired: BTreeMap<_, _> = [
            rr("a.test", "192.0.2.1", 30),
            rr("b.test", "192.0.2.2", 30),
            rr("c.test", "192.0.2.3", 30),
        ]
        .into();
        let actual: BTreeMap<_, _> = [
            rr("a.test", "192.0.2.1", 30),   // same: nothing
            rr("b.test", "192.0.2.9", 30),   // other address: replace
            rr("z.test", "192.0.2.99", 300), // not ours: never touched
        ]
        .into();
        let p = plan(&desired, &actual);
        let names: Vec<String> = p.iter().map(|r| r.name.to_string()).collect();
        assert_eq!(names, ["b.test.", "c.test."]);
        assert!(plan(&desired, &desired).is_empty(), "in sync means no call");
        let ttl_only: BTreeMap<_, _> = [rr("a.test", "192.0.2.1", 300)].into();
        assert_eq!(
            plan(&[rr("a.test", "192.0.2.1", 30)].into(), &ttl_only).len(),
            1,
            "a TTL difference is a change"
        );
    }

    /// Issue 11, item 11: the two things worth a warning before writing a provider zone.
    #[test]
    fn takeover_notes_name_the_other_family_and_unmarked_sets() {
        let desired: BTreeMap<_, _> = [
            rr("www.test", "192.0.2.1", 30),
            rr("api.test", "192.0.2.2", 30),
        ]
        .into();
        let v6 = RrSet::new(
            fqdn("www.test"),
            RecordType::AAAA,
            300,
            vec!["2001:db8::5".parse().unwrap()],
        );
        let mut actual: BTreeMap<_, _> = [
            rr("www.test", "203.0.113.5", 300),
            rr("api.test", "192.0.2.2", 30),
        ]
        .into();
        actual.insert(v6.key(), v6);
        let marked: std::collections::BTreeSet<Key> = [rr("api.test", "192.0.2.2", 30).0].into();
        let notes = takeover_notes(&desired, &actual, &marked);
        assert_eq!(notes.len(), 2, "{notes:#?}");
        assert!(
            notes[0]
                .starts_with("www.test. 300 AAAA 2001:db8::5 is at a managed name but not managed")
                && notes[0].contains("IPv6")
        );
        assert!(notes[1].starts_with(
            "www.test. 300 A 203.0.113.5 exists without understudy's ownership marker"
        ));
        // Marked sets and absent ones say nothing.
        let all: std::collections::BTreeSet<Key> = desired.keys().cloned().collect();
        assert!(
            takeover_notes(&desired, &[rr("www.test", "192.0.2.9", 30)].into(), &all).is_empty()
        );
        assert!(takeover_notes(&desired, &BTreeMap::new(), &Default::default()).is_empty());
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let d: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        assert!(d[0] >= Duration::from_millis(50) && d[0] <= Duration::from_millis(100));
        assert!(d[3] >= Duration::from_millis(400) && d[3] <= Duration::from_millis(800));
        assert!(d.iter().all(|x| *x <= Duration::from_secs(2)));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
