//! The standby copy of each site (issue 5): crawl the origin into a snapshot keyed by the
//! original URLs, publish it atomically when it passes its checks, verify it, export it.
//!
//! - [`snapshot`] — the URL-keyed, content-addressed, atomically published store;
//! - [`scope`] — which URLs a crawl may fetch, and the trap rules (pure);
//! - [`extract`] — references in HTML, CSS, manifests and sitemaps, found and rewritten (pure);
//! - [`crawl`] — the crawler (network and disk);
//! - [`export`] — the browsable offline copy.
//!
//! This module ties them to a configured site: one crawl at a time per site (a lock file), the
//! report saved in the state database, and `verify`. It never decides failover and never
//! touches DNS.

pub mod crawl;
pub mod export;
pub mod extract;
pub mod scope;
pub mod snapshot;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::config::{Config, Site};
use crawl::{Progress, Report, Spec};
use snapshot::{Manifest, SnapshotStore};

/// Held while a crawl of one site runs; a second crawl of the same site (the daemon's schedule
/// and a manual `understudy mirror`) is refused instead of deleting the first one's work.
pub struct CrawlLock {
    path: PathBuf,
}

impl CrawlLock {
    pub fn take(data_dir: &Path, site: &str) -> anyhow::Result<CrawlLock> {
        let dir = data_dir.join("mirror").join(site);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join("crawl.lock");
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    use std::io::Write;
                    let _ = write!(f, "{}", std::process::id());
                    return Ok(CrawlLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let pid = std::fs::read_to_string(&path).unwrap_or_default();
                    let pid = pid.trim();
                    if !pid.is_empty() && Path::new("/proc").join(pid).exists() {
                        anyhow::bail!("a crawl of site `{site}` is already running (pid {pid}); wait for it to finish");
                    }
                    // Left by a crawl that died: take it over.
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create {}", path.display()))
                }
            }
        }
        anyhow::bail!("cannot take the crawl lock {}", path.display())
    }
}

impl Drop for CrawlLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Crawls `site` through the primary at `primary`, publishes if the checks pass, and records
/// the crawl in the state database (a crawl that could not run at all is recorded as failed).
pub async fn crawl_site(
    cfg: &Config,
    db: &crate::store::Store,
    site: &Site,
    primary: IpAddr,
    progress: &Progress,
    cancel: &CancellationToken,
) -> anyhow::Result<Report> {
    let _lock = CrawlLock::take(&cfg.data_dir, &site.name)?;
    let spec =
        Spec::for_site(site, primary).map_err(|e| anyhow::anyhow!("site {}: {e}", site.name))?;
    let store = SnapshotStore::open(&cfg.data_dir, &site.name)?;
    let started = crate::util::now_millis();
    let result = crawl::crawl(&spec, &store, progress, cancel, started).await;
    let report = match result {
        Ok(r) => r,
        Err(e) => Report {
            site: site.name.clone(),
            started_at: started,
            duration_ms: crate::util::now_millis().saturating_sub(started),
            outcome: "failed".into(),
            reason: Some(e.to_string()),
            ..Report::default()
        },
    };
    let saved = db.save_crawl(&report);
    if let Err(e) = saved {
        // Say what happened to the crawl first: a full disk fails both.
        anyhow::bail!(
            "crawl {}{}; recording it in the state database failed too: {e}",
            report.outcome,
            report
                .reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        );
    }
    let (kind, why) = match report.outcome.as_str() {
        "published" => (
            {
                let at = report.started_at + report.duration_ms;
                crate::metrics::get().crawl(&report.site, report.pages, report.bytes, at);
                crate::events::EventKind::CrawlPublished
            },
            format!(
                "snapshot {} published: {} pages, {} bytes, {} new bodies",
                report.snapshot.as_deref().unwrap_or("-"),
                report.pages,
                report.bytes,
                report.new_bodies
            ),
        ),
        outcome => (
            crate::events::EventKind::CrawlRejected,
            format!(
                "{outcome}: {}",
                report.reason.as_deref().unwrap_or("no reason recorded")
            ),
        ),
    };
    // A crawl stopped with the daemon is not news: the stop is told already.
    let logged = if cancel.is_cancelled() {
        Ok(0)
    } else {
        db.append_event(&crate::store::NewEvent {
            site: &site.name,
            at: crate::util::now_millis(),
            kind,
            reason: &why,
            ..Default::default()
        })
    };
    if let Err(e) = logged {
        tracing::error!(site = %site.name, "cannot log the crawl in the event log: {e}");
    }
    match report.outcome.as_str() {
        "published" => tracing::info!(
            site = %site.name, snapshot = %report.snapshot.as_deref().unwrap_or("-"), pages = report.pages, "snapshot published"
        ),
        _ => tracing::warn!(
            site = %site.name, outcome = %report.outcome, reason = %report.reason.as_deref().unwrap_or("-"),
            "snapshot not published; the last good one stays"
        ),
    }
    Ok(report)
}

/// An in-scope reference the published snapshot cannot answer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Hole {
    /// The page or stylesheet that refers to it.
    pub from: String,
    pub url: String,
}

/// What `mirror verify` found.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Verified {
    pub snapshot: String,
    pub documents: usize,
    pub references: usize,
    pub holes: Vec<Hole>,
    /// References the crawl deliberately did not fetch, by limit.
    pub skipped: BTreeMap<String, usize>,
}

/// Every in-scope reference in the snapshot's pages, stylesheets, manifests and sitemaps that
/// the snapshot has no answer for (any recorded status counts as an answer: a real 404 is
/// replayed as one). References a limit kept the crawl from fetching are counted apart.
pub fn verify(store: &SnapshotStore, m: &Manifest, origins: &[Url]) -> anyhow::Result<Verified> {
    let scope = scope::Scope::new(origins.iter());
    let mut out = Verified {
        snapshot: m.id.clone(),
        ..Verified::default()
    };
    let mut holes = BTreeSet::new();
    for (key, e) in &m.entries {
        let Ok(base) = Url::parse(key) else { continue };
        let Some(body) = store.bodies().document(e, &base)? else {
            continue;
        };
        let kind = extract::Kind::of(e.content_type.as_deref(), &base, &body);
        // Scripts and JSON have guesses, never references.
        if matches!(
            kind,
            extract::Kind::Other | extract::Kind::Script | extract::Kind::Json
        ) {
            continue;
        }
        out.documents += 1;
        for r in extract::references(kind, &body, &base) {
            if !scope.contains(&r) {
                continue;
            }
            out.references += 1;
            let u = r.to_string();
            if m.entries.contains_key(&u) {
                continue;
            }
            match m.skipped.get(&u) {
                Some(why) => *out.skipped.entry(why.clone()).or_default() += 1,
                None => {
                    holes.insert(Hole {
                        from: key.clone(),
                        url: u,
                    });
                }
            }
        }
    }
    out.holes = holes.into_iter().collect();
    Ok(out)
}

/// Crawls site `i` on its schedule, through the primary's current address (from the
/// controller: for `auto` sites it moves). One crawl at a time per site; a crawl that is due
/// while the address is still unknown waits for it.
pub async fn scheduler(
    cfg: std::sync::Arc<Config>,
    db: crate::store::Store,
    i: usize,
    schedule: crate::config::Schedule,
    mut primary: tokio::sync::watch::Receiver<Option<std::net::SocketAddr>>,
    now: std::sync::Arc<tokio::sync::Notify>,
    shutdown: CancellationToken,
) {
    let site = &cfg.sites[i];
    loop {
        let last = db
            .crawls::<Report>(Some(&site.name), None, 1)
            .ok()
            .and_then(|c| c.into_iter().next());
        let wait = schedule.next_in(
            crate::util::now_millis(),
            last.as_ref()
                .map(|r| (r.started_at, r.outcome == "published")),
        );
        tracing::debug!(site = %site.name, in_ms = wait, "next crawl");
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(wait)) => {}
            _ = now.notified() => tracing::info!(site = %site.name, "crawl asked for through the API"),
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
        let progress = crawl::Progress::default();
        match crawl_site(&cfg, &db, site, addr.ip(), &progress, &shutdown).await {
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
