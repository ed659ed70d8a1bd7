//! `understudy maintenance SITE --for 30m -- COMMAND`: planned work on a primary without
//! visitors noticing, and without a "down" alert.
//!
//! 1. Drain the site through the API (refused if the standby is not ready, unless `--force`),
//!    with a reason saying it is maintenance, until when, and what runs: the event log,
//!    `status` and the notifications say so, and a drained site raises no down alert.
//! 2. Wait until its DNS has moved: every zone holding its names confirms the standby's
//!    address (the built-in server at once, a provider once its servers answer it), then the
//!    record's TTL, so resolvers that cached the old answer have let it go.
//! 3. Run COMMAND, to its end (a reboot script is not cut short).
//! 4. Wait for the primary to pass `successes_to_up` probes in a row after COMMAND ended,
//!    then release. If `--for` (counted from the start) runs out first, release anyway: the
//!    decision core keeps the records on the standby while the primary does not answer (it
//!    is then failed over, and says so), so the window's end never points visitors at a
//!    dead primary.
//!
//! The exit status is COMMAND's, or 1 when the primary was not back within the window, or 2
//! when nothing was run (drain refused, DNS not moved).

use std::time::{Duration, Instant};

use hyper::Method;

use super::status::daemon;
use crate::api::{call, ApiClient};
use crate::config::Config;
use crate::control::SiteStatus;
use crate::util::{human, now_millis, utc};

/// How long the DNS may take to move before the maintenance is called off.
const DNS_MOVE_LIMIT: Duration = Duration::from_secs(300);

async fn site_status(api: &ApiClient, site: &str) -> anyhow::Result<SiteStatus> {
    let (code, body) = call(api, Method::GET, &format!("/api/v1/sites/{}", encode(site))).await?;
    if !code.is_success() {
        anyhow::bail!(
            "the daemon answered {code}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(serde_json::from_slice(&body)?)
}

/// Percent-encoded for a path segment or a query value (a space as `%20`, which both read).
fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// One action; `Ok(Err(why))` when the daemon refused it.
async fn act(
    api: &ApiClient,
    site: &str,
    action: &str,
    force: bool,
    reason: &str,
) -> anyhow::Result<Result<SiteStatus, String>> {
    let mut path = format!(
        "/api/v1/sites/{}/{action}?reason={}",
        encode(site),
        encode(reason)
    );
    if force {
        path.push_str("&force=true");
    }
    let (code, body) = call(api, Method::POST, &path).await?;
    if code.is_success() {
        return Ok(Ok(serde_json::from_slice(&body)?));
    }
    Ok(Err(serde_json::from_slice::<crate::api::ErrorReply>(&body)
        .map(|e| e.error)
        .unwrap_or_else(|_| {
            String::from_utf8_lossy(&body).to_string()
        })))
}

pub(super) async fn run(
    cfg: &Config,
    site: &str,
    window: Duration,
    force: bool,
    command: &[String],
) -> anyhow::Result<i32> {
    let Some(site_cfg) = cfg.site(site) else {
        eprintln!("maintenance refused: no site named `{site}`");
        return Ok(2);
    };
    let name = site_cfg.name.clone();
    let Some((_, api)) = daemon(cfg).await else {
        eprintln!(
            "maintenance needs the running daemon (it drains, watches the DNS and the probes, and releases); start `understudy run` first"
        );
        return Ok(2);
    };
    let started = Instant::now();
    let until = now_millis() + window.as_millis() as u64;
    // In reasons (the API takes 300 characters): a long script line is shortened.
    let what = command.join(" ").replace(|c: char| c.is_control(), " ");
    let what = match what.chars().count() > 120 {
        true => format!("{}…", what.chars().take(119).collect::<String>()),
        false => what,
    };
    let reason = format!(
        "maintenance until {} (`understudy maintenance --for {}`): {what}",
        utc(until),
        human(window)
    );
    let st = match act(&api, &name, "drain", force, &reason).await? {
        Ok(st) => st,
        Err(why) => {
            eprintln!("maintenance refused: {why}; nothing was run");
            return Ok(2);
        }
    };
    crate::outln!(
        "drained {name}: records point at the standby {}",
        st.published
    );

    // 2. The DNS has moved, then the TTL.
    let moved = loop {
        let st = site_status(&api, &name).await?;
        // A provider's note must also hold the new address: just after the drain it may
        // still be the old value's confirmation.
        let holds = |n: &crate::control::DnsNote| {
            n.at_provider
                .as_ref()
                .is_none_or(|a| a.iter().any(|v| v.contains(&st.published)))
        };
        if st.dns.iter().all(|n| n.confirmed && holds(n)) {
            break true;
        }
        if started.elapsed() > DNS_MOVE_LIMIT.min(window) {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    if !moved {
        eprintln!(
            "the DNS of {name} did not confirm the standby's address within {}; releasing, nothing was run (see `understudy status`)",
            human(DNS_MOVE_LIMIT.min(window))
        );
        let _ = act(
            &api,
            &name,
            "release",
            false,
            "maintenance called off: the DNS did not move",
        )
        .await?;
        return Ok(2);
    }
    let ttl = Duration::from_secs(u64::from(cfg.dns.ttl));
    crate::outln!(
        "the DNS answers the standby; waiting {} (the records' TTL) for resolvers' caches",
        human(ttl)
    );
    tokio::time::sleep(ttl).await;

    // 3. The command.
    crate::outln!("running: {what}");
    let status = tokio::process::Command::new(&command[0])
        .args(&command[1..])
        .env("UNDERSTUDY_SITE", &name)
        .status()
        .await;
    let code = match status {
        Ok(s) => {
            crate::outln!("{what}: {s}");
            s.code().unwrap_or(1)
        }
        Err(e) => {
            eprintln!("could not run `{}`: {e}", command[0]);
            127
        }
    };
    let ended = now_millis();

    // 4. A healthy primary, then release.
    let needed = site_cfg.probe.successes_to_up as usize;
    crate::outln!("waiting for the primary to pass {needed} probe(s) in a row");
    let mut ok_at: Vec<u64> = Vec::new();
    let back = loop {
        let st = site_status(&api, &name).await?;
        if let Some(p) = &st.last_primary_probe {
            if p.at > ended && !ok_at.contains(&p.at) {
                match p.ok {
                    true => ok_at.push(p.at),
                    false => ok_at.clear(),
                }
            }
        }
        if ok_at.len() >= needed {
            break true;
        }
        if started.elapsed() >= window {
            break false;
        }
        tokio::time::sleep((site_cfg.probe.interval / 3).max(Duration::from_millis(50))).await;
    };
    let words = match back {
        true => format!("maintenance done ({what} exited {code}); primary answering"),
        false => format!(
            "maintenance window of {} ended; the primary is not answering its probes yet",
            human(window)
        ),
    };
    match act(&api, &name, "release", false, &words).await? {
        Ok(st) => crate::outln!(
            "released {name}: {} — records point at the {} {}",
            st.phase,
            st.target,
            st.published
        ),
        Err(why) => eprintln!("release refused: {why}"),
    }
    if !back {
        eprintln!("{words}: the records stay on the standby until it does");
        return Ok(1);
    }
    Ok(code)
}
