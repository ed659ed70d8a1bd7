//! The composition root: the one place that starts long-lived tasks.
//!
//! [`start`] restores state, publishes the zones, binds the DNS server and the control API,
//! starts one prober per server of every site and the controller, and writes the runtime file
//! that tells the CLI where the daemon listens. Everything stops on one `CancellationToken`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::control::{Controller, Event, Side};
use crate::dns::provider::builtin::Builtin;
use crate::dns::server::{DnsServer, ZoneHandle};
use crate::dns::ManagedRecords;
use crate::probe;
use crate::reconcile::Reconciler;
use crate::store::Store;
use crate::util::now_millis;

pub const RUNTIME_FILE: &str = "daemon.json";

/// Where a running daemon listens; written to `<data_dir>/daemon.json` for the CLI.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RuntimeInfo {
    pub pid: u32,
    pub dns: Vec<SocketAddr>,
    pub api: SocketAddr,
    pub started_at: u64,
    /// The push (dyndns2) update endpoint, when configured.
    #[serde(default)]
    pub push: Option<SocketAddr>,
    /// The standby server's listeners, when `[standby]` is configured.
    #[serde(default)]
    pub standby: Vec<SocketAddr>,
    /// Its HTTPS listeners.
    #[serde(default)]
    pub standby_https: Vec<SocketAddr>,
}

impl RuntimeInfo {
    pub fn read(data_dir: &Path) -> Option<RuntimeInfo> {
        let text = std::fs::read_to_string(data_dir.join(RUNTIME_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// A started daemon.
pub struct Running {
    pub dns: Vec<SocketAddr>,
    pub api: SocketAddr,
    pub shutdown: CancellationToken,
    done: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops every task and waits for them.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.done.await;
    }

    /// Waits until the daemon stopped (after `shutdown` was cancelled elsewhere).
    pub async fn wait(self) {
        let _ = self.done.await;
    }
}

/// How the daemon starts.
#[derive(Clone, Copy, Debug, Default)]
pub struct StartOptions {
    /// `run --reset-state`: a missing, empty or damaged state database starts every site
    /// afresh instead of stopping the start.
    pub reset_state: bool,
}

/// Starts the daemon. Returns once every listener is bound and answering.
pub async fn start(cfg: Config) -> anyhow::Result<Running> {
    start_with(cfg, StartOptions::default()).await
}

/// [`start`], with options.
pub async fn start_with(cfg: Config, opts: StartOptions) -> anyhow::Result<Running> {
    for w in &cfg.warnings {
        tracing::warn!("config: {w}");
    }
    let cfg = Arc::new(cfg);
    // The state is checked whole before anything is served from it: a lost or damaged
    // database stops the start (nothing answers with a record that may contradict the last
    // saved decision) unless the operator asked for a fresh start.
    let if_unusable = if opts.reset_state {
        crate::store::IfUnusable::Reset
    } else {
        crate::store::IfUnusable::Refuse
    };
    let (store, note) = Store::open_at_start(&cfg.data_dir, if_unusable)?;
    if let Some(note) = note {
        tracing::warn!("{note}");
    }
    backup_now(&cfg.data_dir).await;
    let zones = ZoneHandle::default();
    let (desired_tx, desired_rx) = watch::channel(ManagedRecords::default());
    // The built-in server is published by the controller itself, synchronously, starting in
    // `new` before any listener binds: the first answer after a (re)start is already the
    // restored one, and an answer has changed by the time a command returns. It cannot be
    // unreachable, so it needs no reconciler; external providers get one each.
    let builtin_zones: Vec<_> = cfg
        .dns
        .zones
        .iter()
        .filter(|z| z.provider.is_none())
        .cloned()
        .collect();
    let builtin = Arc::new(Builtin::new(
        builtin_zones,
        cfg.dns.ttl,
        zones.clone(),
        &cfg.data_dir,
    )?);
    let mut controller = Controller::new(cfg.clone(), store, desired_tx, Some(builtin.clone()))?;
    // The reconcilers say where each provider zone stands; the controller answers `status`.
    let zone_board = crate::reconcile::ZoneBoard::default();
    controller.zones = zone_board.clone();
    let reconcilers = reconcilers(&cfg)?;
    let dns = DnsServer::bind(&cfg.dns.listen, zones).await?;
    let api_listener = TcpListener::bind(cfg.api.listen).await.with_context(|| {
        format!(
            "cannot listen for the control API on {} (api.listen)",
            cfg.api.listen
        )
    })?;
    let api_addr = api_listener.local_addr()?;
    let dns_addrs = dns.addrs.clone();
    let (mut standby_listeners, mut https_listeners) = (Vec::new(), Vec::new());
    if let Some(st) = &cfg.standby {
        for addr in &st.listen {
            let l = TcpListener::bind(addr).await.with_context(|| {
                format!("cannot listen on {addr} for the standby server (standby.listen)")
            })?;
            standby_listeners.push(l);
        }
        for addr in &st.https_listen {
            let l = TcpListener::bind(addr).await.with_context(|| {
                format!("cannot listen on {addr} for the standby server (standby.https_listen)")
            })?;
            https_listeners.push(l);
        }
    }
    let standby_addrs: Vec<SocketAddr> = standby_listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .collect();
    let https_addrs: Vec<SocketAddr> = https_listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .collect();
    // The standby server, when this machine is one: built before the probers, whose standby
    // verdicts include its readiness.
    let standby = match &cfg.standby {
        Some(_) => Some(Arc::new(crate::serve::Standby::new(&cfg)?)),
        None => None,
    };

    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let (tx, rx) = mpsc::channel::<Event>(1024);

    for (i, site) in cfg.sites.iter().enumerate() {
        let base = probe::Target::new(
            site.standby.probe_addr(&site.probe),
            &site.host(),
            &site.probe,
        )
        .map_err(|e| anyhow::anyhow!("site {}: {e}", site.name))?;
        // The primary's address may move (`auto`), so it comes from the controller through a
        // watch channel. The standby's is fixed: a channel whose sender is already gone, which
        // the prober reads as "this address, for good".
        let standby_rx = watch::channel(Some(site.standby.probe_addr(&site.probe))).1;
        let standby_base = match site.probe.standby_readiness {
            false => base.clone(),
            true => base.asking_readiness(),
        };
        // Served here: a standby probe passes only if the copy is also ready (snapshot young
        // enough, certificate good), so the decision never fails over to a worse standby.
        let gate = standby.clone().map(|s| (s, site.name.clone()));
        tracker.spawn(prober(
            i,
            Side::Standby,
            standby_base,
            standby_rx,
            site.probe.interval,
            tx.clone(),
            gate,
            shutdown.clone(),
        ));
        tracker.spawn(prober(
            i,
            Side::Primary,
            base,
            controller.probe_target(i),
            site.probe.interval,
            tx.clone(),
            None,
            shutdown.clone(),
        ));
        if let Some(schedule) = site.mirror.schedule {
            tracker.spawn(mirror_scheduler(
                cfg.clone(),
                i,
                schedule,
                controller.probe_target(i),
                shutdown.clone(),
            ));
        }
    }
    // Interface events and accepted pushes both start a round at once.
    let ip_events = Arc::new(tokio::sync::Notify::new());
    let board = crate::ip::push::PushBoard::default();
    let push_addr = match &cfg.ip.push {
        None => None,
        Some(p) => {
            let listener = TcpListener::bind(p.listen).await.with_context(|| {
                format!(
                    "cannot listen for pushed addresses on {} (ip.push.listen)",
                    p.listen
                )
            })?;
            let addr = listener.local_addr()?;
            let tls = match &p.tls {
                Some((c, k)) => Some(
                    crate::ip::push::tls_acceptor(c, k)
                        .map_err(|e| anyhow::anyhow!("ip.push: {e}"))?,
                ),
                None => None,
            };
            let mut hostnames: Vec<String> = cfg
                .ddns
                .iter()
                .map(|d| d.name.to_ascii().trim_end_matches('.').to_ascii_lowercase())
                .collect();
            hostnames.extend(
                cfg.sites
                    .iter()
                    .filter(|s| s.primary_auto.is_some())
                    .map(|s| s.host().to_ascii_lowercase()),
            );
            let auth = crate::ip::push::PushAuth {
                username: p.username.clone(),
                password: p.password.clone(),
                hostnames,
                allow: cfg.ip.allow.clone(),
            };
            tracker.spawn(crate::ip::push::serve(
                listener,
                tls,
                auth,
                board.clone(),
                ip_events.clone(),
                shutdown.clone(),
            ));
            Some(addr)
        }
    };
    if !cfg.ip.sources.is_empty() {
        tracker.spawn(ip_watcher(
            cfg.clone(),
            controller.ip_refresh.clone(),
            ip_events.clone(),
            board.clone(),
            tx.clone(),
            shutdown.clone(),
        ));
    }
    tracker.spawn(crate::api::serve(
        api_listener,
        tx.clone(),
        shutdown.clone(),
    ));
    tracker.spawn(daily_backups(cfg.data_dir.clone(), shutdown.clone()));
    if let Some(standby) = &standby {
        tracker.spawn(crate::serve::refresher(standby.clone(), shutdown.clone()));
        for l in standby_listeners {
            tracker.spawn(crate::serve::serve(
                l,
                standby.clone(),
                None,
                shutdown.clone(),
            ));
        }
        if !https_listeners.is_empty() {
            let tls = crate::tls::server_config(standby.certs())
                .map_err(|e| anyhow::anyhow!("standby TLS: {e}"))?;
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
            for l in https_listeners {
                tracker.spawn(crate::serve::serve(
                    l,
                    standby.clone(),
                    Some(acceptor.clone()),
                    shutdown.clone(),
                ));
            }
        }
        if let Some(acme) = cfg.standby.as_ref().and_then(|s| s.acme.clone()) {
            let sites: Vec<crate::acme::AcmeSite> = cfg
                .sites
                .iter()
                .filter(|s| s.tls.is_none() && s.probe.scheme == crate::config::Scheme::Https)
                .map(|s| crate::acme::AcmeSite {
                    site: s.name.clone(),
                    hosts: s.hosts(),
                })
                .collect();
            let mut zones: Vec<(
                hickory_proto::rr::Name,
                Arc<dyn crate::dns::provider::Provider>,
            )> = reconcilers
                .iter()
                .map(|r| (r.zone.clone(), r.provider.clone()))
                .collect();
            zones.extend(
                cfg.dns
                    .zones
                    .iter()
                    .filter(|z| z.provider.is_none())
                    .map(|z| (z.origin.clone(), builtin.clone() as Arc<_>)),
            );
            let dns = Arc::new(ChallengeZones { zones });
            let manager = Arc::new(crate::acme::Manager::new(
                acme,
                &cfg.data_dir,
                dns,
                standby.certs(),
            ));
            standby.set_acme(manager.clone());
            tracker.spawn(manager.run(sites, shutdown.clone()));
        }
    }
    for r in reconcilers {
        tracing::debug!(zone = %r.zone, provider = %r.provider.describe(), "reconciling");
        tracker.spawn(r.run_reporting(desired_rx.clone(), zone_board.clone(), shutdown.clone()));
    }
    drop(tx);
    let controller_task = tokio::spawn(controller.run(rx));

    let runtime_path = cfg.data_dir.join(RUNTIME_FILE);
    let info = RuntimeInfo {
        pid: std::process::id(),
        dns: dns_addrs.clone(),
        api: api_addr,
        started_at: now_millis(),
        push: push_addr,
        standby: standby_addrs.clone(),
        standby_https: https_addrs,
    };
    write_atomic(&runtime_path, &serde_json::to_vec_pretty(&info)?)?;
    tracing::info!(dns = %dns_addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", "), api = %api_addr, sites = cfg.sites.len(), data_dir = %cfg.data_dir.display(), "understudy is running");

    let token = shutdown.clone();
    let done = tokio::spawn(async move {
        token.cancelled().await;
        tracker.close();
        tracker.wait().await;
        // Every sender is gone now, so the controller drains its queue and ends.
        let _ = controller_task.await;
        dns.shutdown().await;
        let _ = std::fs::remove_file(&runtime_path);
        tracing::info!("understudy stopped");
    });
    Ok(Running {
        dns: dns_addrs,
        api: api_addr,
        shutdown,
        done,
    })
}

/// One reconciler per zone held by an external provider.
pub fn reconcilers(cfg: &Config) -> anyhow::Result<Vec<Reconciler>> {
    let mut out = vec![];
    for z in &cfg.dns.zones {
        let Some(name) = &z.provider else { continue };
        let pc = cfg
            .providers
            .iter()
            .find(|p| &p.name == name)
            .ok_or_else(|| anyhow::anyhow!("zone {}: no provider {name}", z.origin))?;
        let provider = crate::dns::provider::build(pc, cfg.dns.ttl)
            .map_err(|e| anyhow::anyhow!("provider {name}: {e}"))?;
        out.push(Reconciler {
            zone: z.origin.clone(),
            provider,
            ttl: cfg.dns.ttl,
            verify: z.verify.clone(),
            verify_timeout: Duration::from_secs(30),
            refresh: cfg.dns.refresh,
        });
    }
    Ok(out)
}

/// Runs the daemon until SIGINT or SIGTERM.
pub async fn run(cfg: Config, opts: StartOptions) -> anyhow::Result<()> {
    let running = start_with(cfg, opts).await?;
    let token = running.shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received, shutting down");
        token.cancel();
    });
    running.wait().await;
    Ok(())
}

pub(crate) async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Probes one server every `interval`, on a fixed cadence: a probe that hangs until its timeout
/// does not delay the next one, so a silent server is detected in about
/// `failures × interval + timeout`. Results are delivered newest-first: a result older than one
/// already delivered is dropped.
#[allow(clippy::too_many_arguments)] // spawned from one place; each argument is one input of the loop
async fn prober(
    site: usize,
    side: Side,
    base: probe::Target,
    mut addr_rx: watch::Receiver<Option<SocketAddr>>,
    interval: Duration,
    tx: mpsc::Sender<Event>,
    gate: Option<(Arc<crate::serve::Standby>, String)>,
    cancel: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let max_in_flight = (base.timeout.as_millis() / interval.as_millis().max(1)) as usize + 2;
    let mut in_flight = JoinSet::new();
    let (mut seq, mut delivered) = (0u64, 0u64);
    let mut watching = true;
    loop {
        let fire = tokio::select! {
            _ = cancel.cancelled() => break,
            changed = addr_rx.changed(), if watching => {
                if changed.is_err() {
                    watching = false;
                    false
                } else {
                    // A new address: probes of the old one say nothing about it; ask at once.
                    in_flight.abort_all();
                    delivered = seq;
                    true
                }
            }
            _ = ticker.tick() => in_flight.len() < max_in_flight,
            Some(done) = in_flight.join_next() => {
                let Ok((n, addr, outcome, at)) = done else { continue };
                if n > delivered {
                    delivered = n;
                    if tx.send(Event::Probe { site, side, addr, outcome, at }).await.is_err() {
                        break;
                    }
                }
                false
            }
        };
        let target = *addr_rx.borrow();
        if let (true, Some(addr)) = (fire, target) {
            seq += 1;
            let (t, n, gate) = (base.with_addr(addr), seq, gate.clone());
            in_flight.spawn(async move {
                let mut outcome = t.run().await;
                if let (true, Some((standby, site))) = (outcome.ok, gate) {
                    if let Some(r) = standby.readiness(&site, now_millis()).filter(|r| !r.ready) {
                        outcome = probe::Outcome {
                            ok: false,
                            detail: format!(
                                "answers, but the copy is not ready: {}",
                                r.problems.join("; ")
                            ),
                            cert_not_after: outcome.cert_not_after,
                        };
                    }
                }
                (n, addr, outcome, now_millis())
            });
        }
    }
    in_flight.abort_all();
}

/// Crawls site `i` on its schedule, through the primary's current address (from the
/// controller: for `auto` sites it moves). One crawl at a time per site; a crawl that is due
/// while the address is still unknown waits for it.
async fn mirror_scheduler(
    cfg: Arc<Config>,
    i: usize,
    schedule: crate::config::Schedule,
    mut primary: watch::Receiver<Option<std::net::SocketAddr>>,
    shutdown: CancellationToken,
) {
    let site = &cfg.sites[i];
    loop {
        let last = Store::open(&cfg.data_dir)
            .and_then(|s| s.crawls(Some(&site.name), 1))
            .ok()
            .and_then(|c| c.into_iter().next());
        let wait = schedule.next_in(
            now_millis(),
            last.as_ref()
                .map(|r| (r.started_at, r.outcome == "published")),
        );
        tracing::debug!(site = %site.name, in_ms = wait, "next crawl");
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(wait)) => {}
            _ = shutdown.cancelled() => return,
        }
        let addr = loop {
            if let Some(a) = *primary.borrow_and_update() {
                break a;
            }
            tokio::select! {
                r = primary.changed() => if r.is_err() { return },
                _ = shutdown.cancelled() => return,
            }
        };
        let progress = crate::mirror::crawl::Progress::default();
        match crate::mirror::crawl_site(&cfg, site, addr.ip(), &progress, &shutdown).await {
            Ok(r) => tracing::info!(
                site = %site.name, outcome = %r.outcome, fetched = r.fetched, not_modified = r.not_modified,
                new_bodies = r.new_bodies, errors = r.errors, ms = r.duration_ms, "crawl finished"
            ),
            Err(e) => {
                tracing::warn!(site = %site.name, error = %format!("{e:#}"), "crawl could not run; trying again in a minute");
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        }
    }
}

/// Asks every public-address source every `ip.interval` and hands each round to the controller.
async fn ip_watcher(
    cfg: Arc<Config>,
    refresh: Arc<tokio::sync::Notify>,
    events: Arc<tokio::sync::Notify>,
    board: crate::ip::push::PushBoard,
    tx: mpsc::Sender<Event>,
    cancel: CancellationToken,
) {
    let http = match crate::http::client(Duration::from_secs(30)) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!("public address sources disabled: {e}");
            return;
        }
    };
    let mut ticker = tokio::time::interval(cfg.ip.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // Rounds asked for by the controller (a dynamic primary stopped answering) come at most
    // this often, so a primary that is really down does not hammer the echo services.
    const FORCED_EVERY: Duration = Duration::from_secs(5);
    let mut last_forced: Option<tokio::time::Instant> = None;
    // Interface sources: netlink address events start a round at once.
    let interfaces: Vec<String> = cfg
        .ip
        .sources
        .iter()
        .filter_map(|s| match &s.kind {
            crate::ip::SourceKind::Interface { name } => Some(name.clone()),
            _ => None,
        })
        .collect();
    if !interfaces.is_empty() {
        let (ev, cancel) = (events.clone(), cancel.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                r = crate::ip::monitor_interfaces(interfaces, move || ev.notify_one()) => {
                    if let Err(e) = r {
                        tracing::error!("interface events unavailable, falling back to polling: {e}");
                    }
                }
            }
        });
    }
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticker.tick() => {}
            _ = events.notified() => {
                // Coalesce a burst (delete + add arrive as two events).
                tokio::time::sleep(Duration::from_millis(20)).await;
                tracing::debug!("public address round after an interface event");
            }
            _ = refresh.notified() => {
                if last_forced.is_some_and(|t| t.elapsed() < FORCED_EVERY) {
                    continue;
                }
                last_forced = Some(tokio::time::Instant::now());
                tracing::debug!("public address round asked for by a failing dynamic primary");
            }
        }
        for family in cfg.ip.families() {
            let round = crate::ip::round(
                &cfg.ip.sources,
                family,
                &http,
                &cfg.ip.allow,
                cfg.ip.quorum,
                &board,
            );
            let (answers, verdict) = tokio::select! {
                _ = cancel.cancelled() => return,
                r = round => r,
            };
            if tx
                .send(Event::PublicIp {
                    family,
                    answers,
                    verdict,
                    at: now_millis(),
                })
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

/// Backs the state database up (see [`Store::backup`]); a failure is logged, not fatal.
async fn backup_now(data_dir: &Path) {
    let dir = data_dir.to_path_buf();
    match tokio::task::spawn_blocking(move || Store::backup(&dir, now_millis())).await {
        Ok(Ok(path)) => tracing::debug!(path = %path.display(), "state database backed up"),
        Ok(Err(e)) => tracing::warn!("could not back up the state database: {e}"),
        Err(e) => tracing::warn!("could not back up the state database: {e}"),
    }
}

/// A backup of the state database at start and every day after.
async fn daily_backups(data_dir: PathBuf, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(86_400)) => backup_now(&data_dir).await,
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Writes a file by writing a temporary beside it and renaming, so readers never see half.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp: PathBuf = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// ACME DNS-01 challenge records on the built-in server (the zones understudy serves itself).
/// ACME DNS-01 challenge records, through whoever holds the zone: the built-in server or the
/// zone's provider.
struct ChallengeZones {
    zones: Vec<(
        hickory_proto::rr::Name,
        Arc<dyn crate::dns::provider::Provider>,
    )>,
}

#[async_trait::async_trait]
impl crate::acme::ChallengeDns for ChallengeZones {
    async fn publish(
        &self,
        name: &hickory_proto::rr::Name,
        values: &[String],
    ) -> Result<(), String> {
        // The deepest zone holding the name decides, as in DNS itself.
        match self
            .zones
            .iter()
            .filter(|(z, _)| z.zone_of(name))
            .max_by_key(|(z, _)| z.num_labels())
        {
            Some((zone, p)) => p
                .set_txt(zone, name, values)
                .await
                .map_err(|e| e.to_string()),
            None => Err(format!("{name} is in no configured zone")),
        }
    }
}
