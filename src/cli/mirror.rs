//! `understudy mirror ...`: crawl now (with a progress display), verify, export, history.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::config::{Config, Site};
use crate::mirror::crawl::{Progress, Report};
use crate::mirror::snapshot::SnapshotStore;
use crate::store::Store;
use crate::util::{bytes, human_duration, now_millis};

fn find<'a>(cfg: &'a Config, site: &str) -> anyhow::Result<&'a Site> {
    cfg.site(site).ok_or_else(|| {
        let names: Vec<&str> = cfg.sites.iter().map(|s| s.name.as_str()).collect();
        anyhow::anyhow!(
            "no site `{site}` in {} (sites: {})",
            cfg.path.display(),
            names.join(", ")
        )
    })
}

fn progress_line(p: &Progress, started: Instant) -> String {
    let fetched = p.fetched.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64().max(0.001);
    format!(
        "{fetched} fetched ({} unchanged), {} queued, {}, {:.0} pages/s, {} errors",
        p.not_modified.load(Ordering::Relaxed),
        p.queued.load(Ordering::Relaxed),
        bytes(p.bytes.load(Ordering::Relaxed)),
        fetched as f64 / secs,
        p.errors.load(Ordering::Relaxed)
    )
}

pub async fn crawl(cfg: &Config, site: &str, json: bool) -> anyhow::Result<i32> {
    let site = find(cfg, site)?;
    let primary = match site.primary_auto {
        None => site.primary.ip,
        Some(fam) => {
            let store = Store::open_read_only(&cfg.data_dir)?;
            match super::saved::saved_public(&store)?.get(&fam) {
                Some(ip) => *ip,
                None => anyhow::bail!(
                    "site {} follows the public {fam} address, which is not known yet: run the daemon or `understudy ip` first",
                    site.name
                ),
            }
        }
    };
    // The state database first: on a fresh data directory it must exist before the snapshot
    // files do, or they would make it look like a directory whose database was lost.
    let db = Store::open(&cfg.data_dir)?;
    let progress = Arc::new(Progress::default());
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let show = {
        let p = progress.clone();
        let stop = cancel.child_token();
        let done = CancellationToken::new();
        let d = done.clone();
        let task = tokio::spawn(async move {
            let every = if tty {
                Duration::from_millis(200)
            } else {
                Duration::from_secs(5)
            };
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = d.cancelled() => break,
                    _ = stop.cancelled() => break,
                }
                if tty {
                    eprint!("\r\x1b[K{}", progress_line(&p, started));
                } else {
                    eprintln!("{}", progress_line(&p, started));
                }
            }
            if tty {
                eprint!("\r\x1b[K");
            }
        });
        (task, done)
    };
    let c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            c.cancel();
        }
    });
    eprintln!(
        "crawling {} through the primary at {} ({} request(s) at a time)",
        site.origin(),
        std::net::SocketAddr::new(primary, site.primary.port.unwrap_or(site.probe.port)),
        site.mirror.concurrency
    );
    let report = crate::mirror::crawl_site(cfg, &db, site, primary, &progress, &cancel).await;
    show.1.cancel();
    let _ = show.0.await;
    let report = report?;
    if json {
        crate::outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(if report.outcome == "published" { 0 } else { 1 })
}

fn print_report(r: &Report) {
    let secs = (r.duration_ms as f64 / 1000.0).max(0.001);
    crate::outln!(
        "{}: {} URLs fetched in {} ({:.0}/s), {} requests, {} downloaded, {} unchanged (304), {} new bodies, {} errors",
        r.site,
        r.fetched,
        human_duration(r.duration_ms),
        r.fetched as f64 / secs,
        r.requests,
        bytes(r.bytes),
        r.not_modified,
        r.new_bodies,
        r.errors
    );
    if r.guesses_kept + r.guesses_missed > 0 {
        crate::outln!(
            "  guessed from scripts and JSON: {} found, {} not on the origin (not errors)",
            r.guesses_kept,
            r.guesses_missed
        );
    }
    for (limit, n) in &r.limits_hit {
        crate::outln!("  limit {limit}: stopped {n} URL(s)");
    }
    for e in &r.error_samples {
        crate::outln!("  error: {e}");
    }
    match r.outcome.as_str() {
        "published" => crate::outln!(
            "published snapshot {} ({} pages)",
            r.snapshot.as_deref().unwrap_or("?"),
            r.pages
        ),
        other => {
            crate::outln!(
                "{other}: {}; the published snapshot (if any) is unchanged",
                r.reason.as_deref().unwrap_or("no reason recorded")
            )
        }
    }
}

fn published(
    cfg: &Config,
    site: &Site,
) -> anyhow::Result<(SnapshotStore, crate::mirror::snapshot::Manifest)> {
    let store = SnapshotStore::open(&cfg.data_dir, &site.name)?;
    match store.current()? {
        Some(m) => Ok((store, m)),
        None => anyhow::bail!(
            "site {} has no published snapshot yet: run `understudy mirror {}` first",
            site.name,
            site.name
        ),
    }
}

pub fn verify(cfg: &Config, site: &str, json: bool) -> anyhow::Result<i32> {
    let site = find(cfg, site)?;
    let (store, m) = published(cfg, site)?;
    let v = crate::mirror::verify(&store, &m, &site.crawl_origins())?;
    if json {
        crate::outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for h in &v.holes {
            crate::outln!("{}  (from {})", h.url, h.from);
        }
        crate::outln!(
            "snapshot {}: {} documents, {} in-scope references, {} unanswerable",
            v.snapshot,
            v.documents,
            v.references,
            v.holes.len()
        );
        for (why, n) in &v.skipped {
            crate::outln!("  not fetched by design ({why}): {n}");
        }
    }
    Ok(if v.holes.is_empty() { 0 } else { 1 })
}

pub fn export(cfg: &Config, site: &str, dir: &Path) -> anyhow::Result<i32> {
    let site = find(cfg, site)?;
    let (store, m) = published(cfg, site)?;
    let scope = crate::mirror::scope::Scope::new(site.crawl_origins().iter());
    let e = crate::mirror::export::export(&store, &m, &scope, dir)?;
    crate::outln!(
        "exported snapshot {} to {}: {} files, {}; {} references made local, {} left pointing at the site (not in the snapshot)",
        m.id,
        dir.display(),
        e.files,
        bytes(e.bytes),
        e.local,
        e.absolute
    );
    let entry = crate::mirror::export::plan(&m)
        .get(
            m.resolve_redirects(&m.entry)
                .map(|(k, _)| k)
                .unwrap_or(&m.entry),
        )
        .cloned();
    if let Some(p) = entry {
        crate::outln!("open {}", dir.join(p).display());
    }
    Ok(0)
}

pub fn history(cfg: &Config, site: &str, limit: usize) -> anyhow::Result<i32> {
    let site = find(cfg, site)?;
    let Some(store) = Store::open_read_only(&cfg.data_dir)? else {
        crate::outln!("no crawls recorded yet");
        return Ok(0);
    };
    let now = now_millis();
    let crawls = store.crawls::<crate::mirror::crawl::Report>(Some(&site.name), None, limit)?;
    if crawls.is_empty() {
        crate::outln!("no crawls of {} recorded yet", site.name);
    }
    for r in crawls {
        crate::outln!(
            "{} ({}): {} — {} fetched, {} unchanged, {} new bodies, {}, {} errors, {}{}",
            crate::util::utc(r.started_at),
            crate::util::ago(now.saturating_sub(r.started_at)),
            r.outcome,
            r.fetched,
            r.not_modified,
            r.new_bodies,
            bytes(r.bytes),
            r.errors,
            human_duration(r.duration_ms),
            r.reason.map(|w| format!(" — {w}")).unwrap_or_default()
        );
    }
    Ok(0)
}
