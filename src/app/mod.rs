//! The composition root: the one place that starts long-lived tasks.
//!
//! [`start`] opens the state database (once: every task that needs it gets a clone of that
//! `Store`), restores state, publishes the built-in zones, binds the DNS server and the control
//! API, and spawns every task the daemon runs into one tracker: one prober per server of every
//! site, the crawl schedulers, one reconciler per external zone, the IP watcher and the push
//! endpoint, the standby's listeners and ACME, one task per notification channel, the daily
//! backup, and the controller. It writes the runtime file that tells the CLI where the daemon
//! listens. Everything stops on one `CancellationToken`. Task bodies live with their modules;
//! this file only wires them.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::control::{Controller, Message};
use crate::decide::Target;
use crate::dns::builtin::Builtin;
use crate::dns::server::{DnsServer, ZoneHandle};
use crate::dns::ManagedRecords;
use crate::events::EventKind;
use crate::probe;
use crate::store::{NewEvent, Store};
use crate::util::now_millis;

pub const RUNTIME_FILE: &str = "daemon.json";
/// The `site` of the daemon's own event-log rows.
pub use crate::events::DAEMON_SITE;

mod cores;
pub use cores::StandbyCores;
/// How long a stopping daemon waits for its channels to deliver the stop.
const NOTIFY_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

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
    reloading: Arc<std::sync::atomic::AtomicBool>,
}

impl Running {
    /// Stops every task and waits for them.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.done.await;
    }

    /// Stops every task for a reload: the same as [`Running::stop`], without the
    /// `daemon-stopped` event and its notifications.
    pub async fn stop_for_reload(self) {
        self.reloading
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.stop().await;
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
    /// A start after a reload (SIGHUP): said so in the event log.
    pub reloaded: bool,
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
    crate::store::backup_logged(&cfg.data_dir).await;
    // The metrics of each site's last published crawl, until the next one.
    for site in &cfg.sites {
        let served: Vec<crate::mirror::crawl::Report> = store
            .crawls(Some(&site.name), Some("published"), 1)
            .unwrap_or_default();
        if let Some(r) = served.first() {
            let at = r.started_at + r.duration_ms;
            crate::metrics::get().crawl(&site.name, r.pages, r.bytes, at);
        }
    }
    // Every channel has its place in the event log before anything of this run is logged.
    for ch in &cfg.notify {
        crate::notify::start(&store, &ch.name)?;
    }
    store.append_event(&NewEvent {
        site: DAEMON_SITE,
        at: now_millis(),
        kind: EventKind::DaemonStarted,
        reason: &match opts.reloaded {
            true => format!(
                "configuration reloaded: understudy {} watching {} site(s)",
                env!("CARGO_PKG_VERSION"),
                cfg.sites.len()
            ),
            false => format!(
                "understudy {} started, watching {} site(s)",
                env!("CARGO_PKG_VERSION"),
                cfg.sites.len()
            ),
        },
        ..Default::default()
    })?;
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
        store.clone(),
    ));
    // Signed zones get their keys before the first publication (which the controller makes):
    // a zone to be signed is never served unsigned.
    let mut signed = vec![];
    for z in cfg.dns.zones.iter().filter(|z| z.provider.is_none()) {
        let now = now_millis() / 1_000;
        if let Some(s) =
            crate::dns::keys::SignedZone::start(&cfg.data_dir, z, cfg.dns.ttl, &builtin, now)
                .with_context(|| format!("cannot sign zone {}", z.origin))?
        {
            signed.push(s);
        }
    }
    let mut controller = Controller::new(
        cfg.clone(),
        store.clone(),
        desired_tx,
        Some(builtin.clone()),
    )?;
    // The reconcilers say where each provider zone stands; the controller answers `status`.
    let zone_board = crate::reconcile::ZoneBoard::default();
    controller.zones = zone_board.clone();
    let reconcilers = crate::reconcile::for_config(&cfg)?;
    let secondaries = crate::dns::notify::SecondaryBoard::default();
    // Zones held as a secondary: the kept copy is served before any listener answers.
    let kicks = crate::dns::server::Kicks::new(&cfg.dns);
    let replica_board = crate::dns::replica::ReplicaBoard::default();
    let mut replicas = vec![];
    for p in &cfg.dns.primaries {
        for z in &p.zones {
            let held = crate::dns::replica::restore(&store, &builtin, z);
            replicas.push((p.clone(), z.clone(), held));
        }
    }
    let dns = DnsServer::bind(
        &cfg.dns.listen,
        zones.clone(),
        crate::dns::notify::peers(&cfg.dns),
        secondaries.clone(),
        crate::dns::replica::primaries(&cfg.dns),
        kicks.clone(),
    )
    .await?;
    let api_listener = TcpListener::bind(cfg.api.listen).await.with_context(|| {
        format!(
            "cannot listen for the control API on {} (api.listen)",
            cfg.api.listen
        )
    })?;
    let api_addr = api_listener.local_addr()?;
    let mut status_listeners = vec![];
    for addr in cfg.status_page.iter().flat_map(|p| &p.listen) {
        status_listeners.push(TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr} for the status page (status_page.listen)")
        })?);
    }
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
        Some(_) => Some(Arc::new(crate::standby::Standby::new(&cfg)?)),
        None => None,
    };
    // Proxied sites: the standby sends their requests to the primary's address (the one the
    // decision knows, like the probes) and the controller opens and closes their circuits.
    let addrs: Vec<_> = (0..cfg.sites.len())
        .map(|i| controller.probe_target(i))
        .collect();
    let (proxies, circuits) = crate::standby::proxy::Proxies::new(&cfg, &addrs)?;
    let proxies = Arc::new(proxies);
    controller.set_circuits(circuits, now_millis());

    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let (tx, rx) = mpsc::channel::<Message>(1024);
    // `POST /api/v1/sites/{site}/crawl` wakes the site's scheduler; `/dns/reverify` every
    // reconciler.
    let mut crawl_now: Vec<Option<Arc<tokio::sync::Notify>>> = vec![None; cfg.sites.len()];
    let (reverify, reverify_rx) = watch::channel(0u64);

    for (i, site) in cfg.sites.iter().enumerate() {
        let base = probe::ProbeTarget::new(
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
        let gate = standby.clone().map(|s| {
            Arc::new(crate::standby::CopyGate::new(s, &site.name)) as Arc<dyn probe::ReadinessGate>
        });
        let result = move |side| {
            move |addr, outcome, at| Message::Probe {
                site: i,
                side,
                addr,
                outcome,
                at,
            }
        };
        tracker.spawn(probe::prober(
            standby_base,
            standby_rx,
            probe::Cadence::of(&site.probe),
            tx.clone(),
            result(Target::Standby),
            gate,
            shutdown.clone(),
        ));
        tracker.spawn(probe::prober(
            base,
            controller.probe_target(i),
            probe::Cadence::of(&site.probe),
            tx.clone(),
            result(Target::Primary),
            None,
            shutdown.clone(),
        ));
        if let Some(schedule) = site.mirror.schedule {
            let wake = Arc::new(tokio::sync::Notify::new());
            crawl_now[i] = Some(wake.clone());
            tracker.spawn(crate::mirror::scheduler(
                cfg.clone(),
                store.clone(),
                i,
                schedule,
                controller.probe_target(i),
                wake,
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
                Some((c, k)) => {
                    Some(crate::tls::acceptor(c, k).map_err(|e| anyhow::anyhow!("ip.push: {e}"))?)
                }
                None => None,
            };
            let mut hostnames: Vec<String> = cfg
                .ddns
                .iter()
                .map(|d| crate::net::host_of(&d.name))
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
        tracker.spawn(crate::ip::watcher(
            cfg.clone(),
            controller.ip_refresh.clone(),
            ip_events.clone(),
            board.clone(),
            tx.clone(),
            |family, answers, verdict, at| Message::PublicIp {
                family,
                answers,
                verdict,
                at,
            },
            shutdown.clone(),
        ));
    }
    // The watcher watched: reference rounds (abstaining) and the heartbeat (`watcher.rs`).
    let (last_round, last_round_rx) = watch::channel(None);
    tracker.spawn(crate::watcher::references(
        cfg.watcher.clone(),
        tx.clone(),
        controller.connectivity.wake.clone(),
        last_round,
        shutdown.clone(),
    ));
    tracker.spawn(crate::watcher::heartbeat(
        cfg.watcher.clone(),
        tx.clone(),
        last_round_rx,
        shutdown.clone(),
    ));
    if cfg.sites.iter().any(|s| !s.maintenance.is_empty()) {
        tracker.spawn(crate::maintenance::run(
            cfg.clone(),
            tx.clone(),
            shutdown.clone(),
        ));
    }
    // The CLI's token, new at every start (`crate::api::client`).
    let local_token = crate::api::client::write_local_token(&cfg.data_dir).with_context(|| {
        format!(
            "cannot write the API token {}",
            cfg.data_dir.join(crate::api::client::TOKEN_FILE).display()
        )
    })?;
    let api_tls = match &cfg.api.tls {
        Some((c, k)) => {
            Some(crate::tls::acceptor(c, k).map_err(|e| anyhow::anyhow!("api.tls_cert: {e}"))?)
        }
        None => None,
    };
    tracker.spawn(crate::api::serve(
        api_listener,
        api_tls,
        crate::api::Api {
            tx: tx.clone(),
            store: store.clone(),
            cfg: cfg.clone(),
            tokens: crate::api::auth::Tokens::new(&cfg.api.tokens, &local_token),
            crawl_now,
            reverify,
            secondaries: secondaries.clone(),
            replicas: replica_board.clone(),
            sessions: crate::api::dashboard::Sessions::new(
                cfg.api.password.as_ref().map(|(_, h)| h.0.clone()),
            ),
        },
        shutdown.clone(),
    ));
    for l in status_listeners {
        tracker.spawn(crate::api::public::serve(
            l,
            cfg.clone(),
            tx.clone(),
            store.clone(),
            shutdown.clone(),
        ));
    }
    tracker.spawn(crate::store::pack_history_hourly(
        store.clone(),
        shutdown.clone(),
    ));
    // Channels stop last: the stop is told before they do (`notify::drain`).
    let notify_stop = CancellationToken::new();
    let proxied: Arc<Vec<String>> = Arc::new(
        cfg.sites
            .iter()
            .filter(|s| s.mode == crate::config::SiteMode::Proxy)
            .map(|s| s.name.clone())
            .collect(),
    );
    for ch in &cfg.notify {
        tracker.spawn(crate::notify::run(
            crate::notify::Channel::new(ch.clone())?,
            cfg.dns.ttl,
            proxied.clone(),
            store.clone(),
            notify_stop.clone(),
        ));
    }
    let channels: Vec<String> = cfg.notify.iter().map(|c| c.name.clone()).collect();
    let stop_store = store.clone();
    tracker.spawn(crate::store::daily_backups(
        cfg.data_dir.clone(),
        shutdown.clone(),
    ));
    let mut standby_cores = None;
    if let Some(standby) = &standby {
        let cores = StandbyCores::start()?;
        let on_cores = Some(cores.cores());
        standby_cores = Some(cores);
        tracker.spawn(crate::standby::refresher(standby.clone(), shutdown.clone()));
        for l in standby_listeners {
            tracker.spawn(crate::standby::serve(
                l,
                standby.clone(),
                Some(proxies.clone()),
                None,
                on_cores.clone(),
                shutdown.clone(),
            ));
        }
        if !https_listeners.is_empty() {
            let tls = crate::tls::server_config(standby.certs())
                .map_err(|e| anyhow::anyhow!("standby TLS: {e}"))?;
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
            for l in https_listeners {
                tracker.spawn(crate::standby::serve(
                    l,
                    standby.clone(),
                    Some(proxies.clone()),
                    Some(acceptor.clone()),
                    on_cores.clone(),
                    shutdown.clone(),
                ));
            }
        }
        if let Some(acme) = cfg.standby.as_ref().and_then(|s| s.acme.clone()) {
            let sites: Vec<crate::standby::acme::AcmeSite> = cfg
                .sites
                .iter()
                .filter(|s| s.tls.is_none() && s.probe.scheme == crate::config::Scheme::Https)
                .map(|s| crate::standby::acme::AcmeSite {
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
            let dns = Arc::new(crate::standby::acme::ChallengeZones { zones });
            let manager = Arc::new(
                crate::standby::acme::Manager::new(acme, &cfg.data_dir, dns, standby.certs())
                    .with_events(store.clone()),
            );
            standby.set_acme(manager.clone());
            tracker.spawn(manager.run(sites, shutdown.clone()));
        }
    }
    for r in reconcilers {
        tracing::debug!(zone = %r.zone, provider = %r.provider.describe(), "reconciling");
        tracker.spawn(r.run_reporting(
            desired_rx.clone(),
            zone_board.clone(),
            reverify_rx.clone(),
            Some(store.clone()),
            shutdown.clone(),
        ));
    }
    let replica_shared = crate::dns::replica::Shared {
        builtin: builtin.clone(),
        store: store.clone(),
        board: replica_board.clone(),
        kicks: kicks.clone(),
    };
    for (primary, zone, held) in replicas {
        tracker.spawn(crate::dns::replica::run(
            primary,
            zone,
            held,
            replica_shared.clone(),
            shutdown.clone(),
        ));
    }
    tracker.spawn(crate::dns::keys::maintain(
        signed,
        builtin.clone(),
        shutdown.clone(),
    ));
    tracker.spawn(crate::dns::notify::run(
        crate::dns::notify::targets(&cfg.dns),
        zones.subscribe(),
        secondaries,
        shutdown.clone(),
    ));
    // The DNS server stops last, after the controller: it answers until the very end.
    let dns_stop = CancellationToken::new();
    // Should the start fail from here on, the UDP threads are told to stop.
    let dns_guard = dns_stop.clone().drop_guard();
    let mut udp_threads = vec![];
    for worker in dns.udp_workers(&dns_stop)? {
        udp_threads.push(
            std::thread::Builder::new()
                .name("dns-udp".into())
                .spawn(move || worker.run())
                .context("cannot start a DNS thread")?,
        );
    }
    let dns_task = tokio::spawn(dns.run(dns_stop.clone()));
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
    crate::util::write_atomic(&runtime_path, &serde_json::to_vec_pretty(&info)?)?;
    tracing::info!(dns = %dns_addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", "), api = %api_addr, sites = cfg.sites.len(), data_dir = %cfg.data_dir.display(), "understudy is running");

    let stop_token_path = cfg.data_dir.join(crate::api::client::TOKEN_FILE);
    let token = shutdown.clone();
    let reloading = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let is_reload = reloading.clone();
    let done = tokio::spawn(async move {
        token.cancelled().await;
        // A reload is no stop: nobody is told, and the next start says "reloaded".
        if !is_reload.load(std::sync::atomic::Ordering::Relaxed) {
            let stopped = stop_store.append_event(&NewEvent {
                site: DAEMON_SITE,
                at: now_millis(),
                kind: EventKind::DaemonStopped,
                reason: "understudy is stopping",
                ..Default::default()
            });
            if let (Ok(id), false) = (stopped, channels.is_empty()) {
                crate::notify::drain(&stop_store, &channels, id, NOTIFY_GRACE).await;
            }
        }
        notify_stop.cancel();
        tracker.close();
        tracker.wait().await;
        // Relayed WebSockets get a moment to end with their listeners.
        proxies.close(std::time::Duration::from_secs(1)).await;
        // Every sender is gone now, so the controller drains its queue and ends.
        let _ = controller_task.await;
        dns_stop.cancel();
        let _ = dns_task.await;
        // The UDP threads see the stop within `UDP_POLL`; the standby's, when told.
        let _ = tokio::task::spawn_blocking(move || {
            for t in udp_threads {
                let _ = t.join();
            }
            if let Some(cores) = standby_cores {
                cores.stop();
            }
        })
        .await;
        let _ = std::fs::remove_file(&runtime_path);
        let _ = std::fs::remove_file(stop_token_path);
        tracing::info!("understudy stopped");
    });
    dns_guard.disarm();
    Ok(Running {
        dns: dns_addrs,
        api: api_addr,
        shutdown,
        done,
        reloading,
    })
}

/// Runs the daemon until SIGINT or SIGTERM; SIGHUP reloads the configuration.
///
/// **Reload.** The file is read and checked first; a config that does not check is refused
/// with its error in the log, and the running daemon carries on untouched. A good one
/// replaces the running daemon inside the process: every task stops (as at a stop: the
/// controller saves its state, listeners close after their grace) and starts again from the
/// new config and the same state database, so sites added start healthy, sites removed stop
/// being probed and published, and every kept site continues from its saved phase with its
/// streaks dropped, exactly as after a restart (`decide::resume`: a reload can delay a
/// decision, never make one). DNS and the HTTP listeners are closed for the moment between
/// the two (the stop's grace, at most 2 s with connections open). Should the new config fail
/// to start (a port taken), the previous one is started again.
///
/// **Signals are listened for before the start.** The runtime file (`daemon.json`) tells the
/// world the daemon is up, so a SIGTERM may follow it at once; had the handlers been installed
/// after it, that SIGTERM would have killed the process by its default action, leaving the
/// runtime file behind (seen under load in CI). A SIGTERM that arrives during the start is
/// acted on as soon as the start is done: a clean stop.
pub async fn run(cfg: Config, opts: StartOptions) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
    let mut int = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut current = cfg.clone();
    let mut running = start_with(cfg, opts).await?;
    loop {
        tokio::select! {
            _ = interrupt_or_terminate(&mut int, &mut term) => {
                tracing::info!("signal received, shutting down");
                running.stop().await;
                return Ok(());
            }
            _ = running.shutdown.cancelled() => {
                running.wait().await;
                return Ok(());
            }
            _ = hup.recv() => {}
        }
        let new = match crate::config::load(&current.path) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("reload refused, the running configuration stays: {e}");
                continue;
            }
        };
        tracing::info!(
            sites = new.sites.len(),
            "SIGHUP: reloading {}",
            current.path.display()
        );
        running.stop_for_reload().await;
        let again = StartOptions {
            reset_state: false,
            reloaded: true,
        };
        running = match start_with(new.clone(), again).await {
            Ok(r) => {
                current = new;
                r
            }
            Err(e) => {
                tracing::error!("the reloaded configuration could not start ({e:#}); starting the previous one again");
                start_with(current.clone(), again).await?
            }
        };
    }
}

async fn interrupt_or_terminate(
    int: &mut tokio::signal::unix::Signal,
    term: &mut tokio::signal::unix::Signal,
) {
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
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
