//! The controller: the one owner of every managed record (design.md invariant 1).
//!
//! It receives every [`Message`] (probe results, operator commands, status requests) on one
//! channel, feeds them to the pure decision core, persists what changed, and publishes the
//! desired records: to the built-in zones directly, and on a `watch` channel to the reconcilers
//! of external zones. Nothing else decides records. It never probes or
//! listens itself; the tasks that do that send it events (see `app.rs`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

use crate::config::{Config, Site};
use crate::decide::{self, Input, Phase, SiteState, Target};
use crate::dns::ManagedRecords;
use crate::ip::{Family, Verdict};
use crate::probe::Observation;
use crate::store::{EventKind, NewEvent, Store};
use crate::util::now_millis;

mod batch;
pub mod circuit;
mod record;
mod status;
mod watcher;
pub use status::{dns_notes, status_from_state, DnsNote, ProbeNote, PublicStatus, SiteStatus};
pub use watcher::{Connectivity, Round};

/// Why an operator command was not carried out; the API answers 404, 409 or 500 by it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("{0}")]
    NoSuchSite(String),
    /// The decision core refused it (already drained, standby not ready, ...).
    #[error("{0}")]
    Refused(String),
    /// It could not be saved or published.
    #[error("{0}")]
    Failed(String),
}

/// An operator command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `note`, when given, is added to the reason (a maintenance window, a script's words).
    Drain {
        force: bool,
        note: Option<String>,
    },
    Release {
        note: Option<String>,
    },
}

/// Everything the controller reacts to.
#[derive(Debug)]
pub enum Message {
    /// A probe finished; `addr` is where it went (results for a primary address that has
    /// since changed are dropped).
    Probe {
        site: usize,
        side: Target,
        addr: std::net::SocketAddr,
        outcome: Observation,
        at: u64,
    },
    /// A round of public-address sources for one family.
    PublicIp {
        family: Family,
        answers: Vec<crate::ip::Reading>,
        verdict: Verdict,
        at: u64,
    },
    Command {
        site: String,
        command: Command,
        reply: oneshot::Sender<Result<SiteStatus, CommandError>>,
    },
    Status {
        reply: oneshot::Sender<(
            Vec<SiteStatus>,
            Vec<PublicStatus>,
            Vec<crate::reconcile::ZoneStatus>,
        )>,
    },
    /// A round of the watcher's reference checks (`crate::watcher`).
    Connectivity(Round),
}

struct SiteRt {
    state: SiteState,
    last_primary: Option<ProbeNote>,
    last_standby: Option<ProbeNote>,
    last_saved: u64,
    /// When the primary's certificate expiry was last warned about (at most daily).
    cert_warned: Option<u64>,
}

pub struct Controller {
    cfg: Arc<Config>,
    sites: Vec<SiteRt>,
    store: Store,
    /// Desired records for the reconcilers of external providers.
    desired: watch::Sender<ManagedRecords>,
    /// The built-in server, published synchronously so an answer has changed by the time a
    /// transition is logged or a command returns (its reconciler then finds it in sync).
    builtin: Option<Arc<crate::dns::builtin::Builtin>>,
    /// The agreed public address of each family (dynamic DNS), restored from the store.
    public: BTreeMap<Family, IpAddr>,
    /// The last round's verdict in words, per family (for `status` and quiet logs).
    last_round: BTreeMap<Family, String>,
    /// The last rejection per source, so each distinct garbage answer is logged once.
    source_errors: BTreeMap<String, String>,
    /// Where each site's primary probes go; `None` until an `auto` address is known.
    probe_targets: Vec<watch::Sender<Option<std::net::SocketAddr>>>,
    /// Asks the public-address watcher for a round now (an `auto` primary stopped answering:
    /// maybe the line's address changed, which must not be mistaken for an outage).
    pub ip_refresh: Arc<tokio::sync::Notify>,
    /// The watcher's own links (abstaining, `watcher.rs`); its `wake` asks for a round.
    pub connectivity: Connectivity,
    /// Where each provider zone stands, written by the reconcilers.
    pub zones: crate::reconcile::ZoneBoard,
    /// Decided steps not yet published and saved, and whether a batch is being taken
    /// (`batch.rs`).
    pending: Vec<batch::Pending>,
    batching: bool,
    /// Per site, by index: the circuit of a proxied site's standby (`None` in DNS mode).
    circuits: Vec<Option<Arc<circuit::Circuit>>>,
    /// Probe history not yet written (`record.rs`).
    history: record::Recorder,
}

/// Counters are saved at least this often even without a transition, so a restart loses
/// little progress (phase changes are always saved at once).
const SAVE_EVERY_MS: u64 = 30_000;

impl Controller {
    /// Restores every site's state from the store (new sites start healthy on the primary) and
    /// publishes the zones that follow from it, before any listener answers.
    pub fn new(
        cfg: Arc<Config>,
        store: Store,
        desired: watch::Sender<ManagedRecords>,
        builtin: Option<Arc<crate::dns::builtin::Builtin>>,
    ) -> anyhow::Result<Self> {
        let now = now_millis();
        let mut sites = vec![];
        for site in &cfg.sites {
            let state = match store.load_state(&site.name)? {
                Some(saved) => {
                    tracing::info!(site = %site.name, phase = %saved.phase, "restored state: {}", saved.reason);
                    // The time the daemon was down was not observed: streaks start over.
                    decide::resume(&saved)
                }
                None => {
                    let s = SiteState::new(now);
                    store.save(
                        &site.name,
                        &s,
                        now,
                        &[NewEvent {
                            site: &site.name,
                            at: now,
                            kind: EventKind::FirstSeen,
                            to_phase: Some(s.phase.as_str()),
                            reason: &s.reason,
                            ..Default::default()
                        }],
                    )?;
                    s
                }
            };
            sites.push(SiteRt {
                state,
                last_primary: None,
                last_standby: None,
                last_saved: now,
                cert_warned: None,
            });
        }
        let public: BTreeMap<Family, IpAddr> = store
            .public_ips()?
            .into_iter()
            .map(|(f, (ip, _))| (f, ip))
            .collect();
        let probe_targets = cfg
            .sites
            .iter()
            .map(|s| {
                watch::channel(primary_addr(s, &public).map(|ip| {
                    std::net::SocketAddr::new(ip, s.primary.port.unwrap_or(s.probe.port))
                }))
                .0
            })
            .collect();
        let ip_refresh = Arc::new(tokio::sync::Notify::new());
        let cfg_refs_empty = cfg.watcher.references.is_empty();
        let n_sites = cfg.sites.len();
        let mut c = Controller {
            cfg,
            sites,
            store,
            desired,
            builtin,
            public,
            last_round: BTreeMap::new(),
            source_errors: BTreeMap::new(),
            probe_targets,
            ip_refresh,
            connectivity: Connectivity::new(!cfg_refs_empty),
            zones: Default::default(),
            pending: Vec::new(),
            batching: false,
            circuits: vec![],
            history: record::Recorder::new(n_sites),
        };
        c.publish()?;
        Ok(c)
    }

    /// The desired value of every managed record, from every site's phase.
    pub fn managed(&self) -> ManagedRecords {
        managed_records(
            &self.cfg,
            self.sites.iter().map(|s| s.state.target()),
            &self.public,
        )
    }

    /// Where site `i`'s primary probes should go (subscribe before `run`).
    pub fn probe_target(&self, i: usize) -> watch::Receiver<Option<std::net::SocketAddr>> {
        self.probe_targets[i].subscribe()
    }

    /// Hands the desired records to the reconcilers (built-in server and external providers).
    fn publish(&mut self) -> anyhow::Result<()> {
        let managed = self.managed();
        if let Some(b) = &self.builtin {
            b.publish_all(&managed)
                .map_err(|e| anyhow::anyhow!("publishing the built-in zones: {e}"))?;
        }
        self.desired.send_replace(managed);
        Ok(())
    }

    /// Runs until the channel closes (every sender dropped at shutdown). Messages already
    /// queued are taken as one batch, published and saved once (`batch.rs`).
    pub async fn run(mut self, mut rx: mpsc::Receiver<Message>) {
        while let Some(first) = rx.recv().await {
            self.batching = true;
            let mut next = Some(first);
            let mut taken = 0;
            while let Some(ev) = next.take() {
                if matches!(ev, Message::Command { .. } | Message::Status { .. }) {
                    // An operator sees, and a command starts from, what is published.
                    self.flush_logged();
                    self.batching = false;
                    self.handle(ev);
                    self.batching = true;
                } else {
                    self.handle(ev);
                }
                taken += 1;
                if taken < batch::BATCH_MAX {
                    next = rx.try_recv().ok();
                }
            }
            self.batching = false;
            self.flush_logged();
            self.write_history(false);
        }
        self.write_history(true);
    }

    fn flush_logged(&mut self) {
        if let Err(e) = self.flush() {
            tracing::error!("{e:#}");
        }
    }

    pub fn handle(&mut self, ev: Message) {
        let now = now_millis();
        match ev {
            Message::PublicIp {
                family,
                answers,
                verdict,
                at,
            } => self.public_ip(family, answers, verdict, at.max(now)),
            Message::Probe {
                site,
                side,
                addr,
                outcome,
                at,
            } => {
                if side == Target::Primary && *self.probe_targets[site].borrow() != Some(addr) {
                    tracing::debug!(site = %self.cfg.sites[site].name, %addr, "dropping a probe result for an old primary address");
                    return;
                }
                crate::metrics::get().probe(&self.cfg.sites[site].name, side, outcome.took);
                self.record_probe(site, side, at, &outcome);
                let note = ProbeNote {
                    at,
                    ok: outcome.ok,
                    detail: outcome.detail.clone(),
                    cert_expires: outcome.cert_not_after,
                };
                if let (Target::Primary, Some(not_after)) = (side, outcome.cert_not_after) {
                    self.watch_certificate(site, not_after, now);
                }
                if side == Target::Primary
                    && !outcome.ok
                    && self.cfg.sites[site].primary_auto.is_some()
                    && self.sites[site].state.primary_failures == 0
                {
                    // Before counting failures of a dynamic address, check it has not moved.
                    self.ip_refresh.notify_one();
                }
                if let (Target::Primary, true, Some(Some(c))) =
                    (side, outcome.ok, self.circuits.get(site))
                {
                    c.probe_passed(at);
                }
                let input = match side {
                    Target::Primary => {
                        self.sites[site].last_primary = Some(note);
                        Input::Primary {
                            ok: outcome.ok,
                            detail: outcome.detail,
                        }
                    }
                    Target::Standby => {
                        self.sites[site].last_standby = Some(note);
                        Input::Standby {
                            ok: outcome.ok,
                            detail: outcome.detail,
                        }
                    }
                };
                if !self.may_act(site, &input, at.max(now)) {
                    return;
                }
                if let Err(e) = self.apply(site, &input, at.max(now)) {
                    tracing::error!(site = %self.cfg.sites[site].name, "{e:#}");
                }
            }
            Message::Command {
                site,
                command,
                reply,
            } => {
                let result = match self
                    .cfg
                    .sites
                    .iter()
                    .position(|s| s.name == site || s.host() == site.trim_end_matches('.'))
                {
                    None => Err(CommandError::NoSuchSite(format!(
                        "no site named `{site}`; configured: {}",
                        self.cfg
                            .sites
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))),
                    Some(i) => {
                        let (input, note) = match command {
                            Command::Drain { force, note } => (Input::Drain { force }, note),
                            Command::Release { note } => (Input::Release, note),
                        };
                        match self.apply_noted(i, &input, now, note.as_deref()) {
                            Ok(None) => Ok(self.status_of(i, now)),
                            Ok(Some(why)) => Err(CommandError::Refused(why)),
                            Err(e) => Err(CommandError::Failed(format!("{e:#}"))),
                        }
                    }
                };
                let _ = reply.send(result);
            }
            Message::Connectivity(round) => self.connectivity(round, now),
            Message::Status { reply } => {
                let sites = (0..self.sites.len())
                    .map(|i| self.status_of(i, now))
                    .collect();
                let public = self
                    .public_status()
                    .into_iter()
                    .map(|(family, addr, last_round)| PublicStatus {
                        family,
                        address: addr.map(|a| a.to_string()),
                        last_round,
                    })
                    .collect();
                let zones = self
                    .zones
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .values()
                    .cloned()
                    .collect();
                let _ = reply.send((sites, public, zones));
            }
        }
    }

    /// Feeds one input to a site; returns the refusal, if the core refused.
    /// Warns (log and event log, at most once a day) when the primary's certificate is close to
    /// expiring or has expired: the standby's copy is not a substitute for a renewal.
    fn watch_certificate(&mut self, i: usize, not_after: u64, now: u64) {
        let host = self.cfg.sites[i].host();
        let Some(warning) = crate::probe::cert_warning(&host, not_after, now) else {
            return;
        };
        if self.sites[i]
            .cert_warned
            .is_some_and(|at| now.saturating_sub(at) < 86_400_000)
        {
            return;
        }
        self.sites[i].cert_warned = Some(now);
        tracing::warn!(site = %self.cfg.sites[i].name, "{warning}");
        let _ = self.store.append_event(&NewEvent {
            site: &self.cfg.sites[i].name,
            at: now,
            kind: EventKind::CertificateExpiring,
            reason: &warning,
            ..Default::default()
        });
    }

    /// Decides one input for site `i` and queues what follows (publish, log, save) for
    /// [`Controller::flush`], at once unless a batch is being taken (`batch.rs`). `Some(why)`:
    /// the input was refused.
    fn apply(&mut self, i: usize, input: &Input, now: u64) -> anyhow::Result<Option<String>> {
        self.apply_noted(i, input, now, None)
    }

    /// [`Controller::apply`], with `note` added to the reason of the transition it makes.
    fn apply_noted(
        &mut self,
        i: usize,
        input: &Input,
        now: u64,
        note: Option<&str>,
    ) -> anyhow::Result<Option<String>> {
        let cfg = self.cfg.clone();
        let site = &cfg.sites[i];
        let policy = policy(site);
        let prev = self.sites[i].state.clone();
        let mut step = decide::step(&prev, &policy, input, now);
        if let Some(why) = &step.refused {
            tracing::warn!(site = %site.name, "refused {}: {why}", input_words(input));
            return Ok(Some(why.clone()));
        }
        if let (Some(note), Some(t)) = (note, step.transition.as_mut()) {
            t.reason = format!("{}; {note}", t.reason);
            step.state.reason = t.reason.clone();
        }
        if let Some(alert) = &step.alert {
            tracing::error!(site = %site.name, "ALERT: {alert}");
        }
        // The records are described (for the log and the event) only when they move: this
        // runs for every probe result.
        let retarget = prev.target() != step.state.target();
        let before = retarget
            .then(|| batch::site_records(site, prev.target(), &self.public).describe(site.names()));
        self.sites[i].state = step.state.clone();
        self.decide_circuit(i, now);
        let standby_changed = prev.standby.last_ok != step.state.standby.last_ok;
        let due = retarget
            || step.transition.is_some()
            || standby_changed
            || now.saturating_sub(self.sites[i].last_saved) >= SAVE_EVERY_MS;
        if !due {
            return Ok(None);
        }
        self.pending.push(batch::Pending {
            site: i,
            input: input.clone(),
            prev,
            step,
            now,
            before,
        });
        if !self.batching {
            self.flush()?;
        }
        Ok(None)
    }

    /// The circuits of the proxied sites (by site index, `None` in DNS mode), set to where the
    /// restored decision stands.
    pub fn set_circuits(&mut self, circuits: Vec<Option<Arc<circuit::Circuit>>>, now: u64) {
        self.circuits = circuits;
        for i in 0..self.sites.len() {
            self.decide_circuit(i, now);
        }
    }

    /// Tells site `i`'s circuit what the decision says: the copy answers while the primary is
    /// not serving (every phase but healthy and suspect).
    fn decide_circuit(&self, i: usize, now: u64) {
        if let Some(Some(c)) = self.circuits.get(i) {
            let phase = self.sites[i].state.phase;
            c.decide(
                !matches!(phase, decide::Phase::Healthy | decide::Phase::Suspect),
                now,
            );
        }
    }

    fn status_of(&self, i: usize, now: u64) -> SiteStatus {
        let site = &self.cfg.sites[i];
        let rt = &self.sites[i];
        let mut st = status_from_state(
            site,
            &rt.state,
            rt.last_primary.clone(),
            rt.last_standby.clone(),
            &self.public,
            now,
        );
        let board = self.zones.lock().unwrap_or_else(|e| e.into_inner());
        st.dns = dns_notes(&self.cfg, site, &board);
        st.proxy = self
            .circuits
            .get(i)
            .and_then(|c| c.as_ref())
            .map(|c| c.view());
        st
    }

    /// A round of public-address sources: a new agreed address becomes the primary address of
    /// every `auto` site of that family and the value of every `[[ddns]]` name. While a site is
    /// failed over its records stay on the standby; the new address is what failback publishes.
    fn public_ip(
        &mut self,
        family: Family,
        answers: Vec<crate::ip::Reading>,
        verdict: Verdict,
        now: u64,
    ) {
        let words = match &verdict {
            Verdict::Agreed {
                addr, operators, ..
            } => format!("{addr} agreed by {operators} operator(s)"),
            Verdict::NoAgreement { why } => format!("no agreement: {why}"),
        };
        // Every rejected answer is logged, once per source and distinct reason.
        for a in &answers {
            match &a.result {
                Err(why) if self.source_errors.get(&a.source) != Some(why) => {
                    tracing::warn!(%family, source = %a.source, "answer rejected: {why}");
                    self.source_errors.insert(a.source.clone(), why.clone());
                }
                Ok(_) if self.source_errors.remove(&a.source).is_some() => {
                    tracing::info!(%family, source = %a.source, "answers validly again")
                }
                _ => {}
            }
        }
        if self.last_round.get(&family) != Some(&words) {
            match &verdict {
                Verdict::Agreed { .. } => tracing::info!(%family, "public address: {words}"),
                Verdict::NoAgreement { .. } => {
                    let kept = self
                        .public
                        .get(&family)
                        .map(|a| format!("keeping {a}"))
                        .unwrap_or_else(|| "no address known yet".to_string());
                    tracing::warn!(%family, "public address: {words}; {kept}");
                    // Told once per split: when the last round had agreed (or was the first).
                    let was_split = self
                        .last_round
                        .get(&family)
                        .is_some_and(|w| w.starts_with("no agreement"));
                    if !was_split {
                        let _ = self.store.append_event(&NewEvent {
                            site: crate::events::DAEMON_SITE,
                            at: now_millis(),
                            kind: EventKind::AddressVoteSplit,
                            reason: &format!("{family}: {words}; {kept}"),
                            ..Default::default()
                        });
                    }
                }
            }
            self.last_round.insert(family, words);
        }
        let Verdict::Agreed { addr, sources, .. } = verdict else {
            return;
        };
        let old = self.public.insert(family, addr);
        if old == Some(addr) {
            return;
        }
        let change = match old {
            Some(o) => format!("{o} -> {addr}"),
            None => format!("first address {addr}"),
        };
        tracing::warn!(%family, "public address changed: {change} (agreed by {})", sources.join(", "));
        crate::metrics::get().address_change(&family.to_string());
        if let Err(e) = self
            .store
            .save_public_ip(family, addr, now, &sources.join(","))
        {
            tracing::error!("{e}");
        }
        let reason = format!("{family} {change}; agreed by {}", sources.join(", "));
        let _ = self.store.append_event(&NewEvent {
            site: "(public address)",
            at: now,
            kind: EventKind::AddressChanged,
            reason: &reason,
            ..Default::default()
        });
        for i in 0..self.cfg.sites.len() {
            let site = &self.cfg.sites[i];
            if site.primary_auto != Some(family) {
                continue;
            }
            let target =
                std::net::SocketAddr::new(addr, site.primary.port.unwrap_or(site.probe.port));
            self.probe_targets[i].send_replace(Some(target));
            if let Err(e) = self.apply(
                i,
                &Input::AddressChanged {
                    detail: change.clone(),
                },
                now,
            ) {
                tracing::error!(site = %self.cfg.sites[i].name, "{e:#}");
            }
        }
        // Sites on their primary and ddns names follow at once; failed-over sites keep the standby.
        if let Err(e) = self.publish() {
            tracing::error!("{e:#}");
        }
    }

    /// The current public addresses and the last round's verdict, for `status`.
    pub fn public_status(&self) -> Vec<(Family, Option<IpAddr>, Option<String>)> {
        [Family::Ipv4, Family::Ipv6]
            .into_iter()
            .filter(|f| self.cfg.ip.families().contains(f))
            .map(|f| {
                (
                    f,
                    self.public.get(&f).copied(),
                    self.last_round.get(&f).cloned(),
                )
            })
            .collect()
    }
}

/// The hysteresis settings of a site, for the decision core.
pub fn policy(site: &Site) -> decide::Policy {
    decide::Policy {
        failures_to_down: site.probe.failures_to_down,
        successes_to_up: site.probe.successes_to_up,
        hold_down: site.probe.hold_down.as_millis() as u64,
        // Three missed standby probes (plus the time one may take) and we stop trusting what
        // we knew.
        standby_fresh: (site.probe.interval * 3 + site.probe.timeout).as_millis() as u64,
    }
}

/// The event-log row one step of the decision core leaves: its transition, of the kind
/// [`EventKind::of_transition`] gives (a failover, a failback, both down, a drain, ...), with
/// the records before and after when they moved. The core's alerts (both down, standby not
/// ready) always come with such a transition, whose kind says so. The controller and the
/// offline `drain`/`release` of the CLI both log through this.
/// For a failover: "; records moved 2.4s after the first failed probe", measured from the
/// first failure of the streak that took the site down (when its `Suspect` phase began, or
/// this probe when one failure is enough) to the records being published (handed to the
/// built-in server or the providers' reconcilers). Empty for any other move.
fn detection_note(prev: &SiteState, to: Phase, now: u64, moved_at: u64) -> (String, Option<u64>) {
    if !matches!(to, Phase::FailedOver) {
        return (String::new(), None);
    }
    let first_failure = match prev.phase {
        Phase::Suspect => prev.since,
        _ => now,
    };
    let took = moved_at.saturating_sub(first_failure);
    (
        format!(
            "; records moved {} after the first failed probe",
            crate::util::human_duration(took)
        ),
        Some(took),
    )
}

pub fn step_events<'a>(
    site: &'a str,
    input: &Input,
    step: &'a decide::Step,
    now: u64,
    records: Option<(&'a str, &'a str)>,
) -> Vec<NewEvent<'a>> {
    step.transition
        .iter()
        .map(|t| NewEvent {
            site,
            at: now,
            kind: EventKind::of_transition(input, t.from, t.to),
            from_phase: Some(t.from.as_str()),
            to_phase: Some(t.to.as_str()),
            reason: &t.reason,
            records_before: records.map(|r| r.0),
            records_after: records.map(|r| r.1),
        })
        .collect()
}

/// An operator's input in words, for the log.
fn input_words(input: &Input) -> &'static str {
    match input {
        Input::Drain { force: true } => "drain --force",
        Input::Drain { force: false } => "drain",
        Input::Release => "release",
        Input::Primary { .. } | Input::Standby { .. } | Input::AddressChanged { .. } => "input",
    }
}

/// A site's primary address: fixed, or for `auto` the agreed public address (if any yet).
pub fn primary_addr(site: &Site, public: &BTreeMap<Family, IpAddr>) -> Option<IpAddr> {
    match site.primary_auto {
        None => Some(site.primary.ip),
        Some(f) => public.get(&f).copied(),
    }
}

/// The desired records of every site given where each points, and of every `[[ddns]]` name.
/// A site on an `auto` primary whose address is not known yet gets no record rather than a
/// wrong one.
pub fn managed_records(
    cfg: &Config,
    targets: impl Iterator<Item = Target>,
    public: &BTreeMap<Family, IpAddr>,
) -> ManagedRecords {
    let mut m = ManagedRecords::default();
    for (site, target) in cfg.sites.iter().zip(targets) {
        m.0.extend(batch::site_records(site, target, public).0);
    }
    for d in &cfg.ddns {
        for f in &d.families {
            if let Some(ip) = public.get(f) {
                m.set(
                    d.name.clone(),
                    crate::config::DdnsRecord::record_type(*f),
                    vec![*ip],
                );
            }
        }
    }
    m
}
