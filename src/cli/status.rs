//! `status`, `drain` and `release`: through the daemon's API when it runs, from the state
//! database when it does not (a forced drain is then saved and holds from the next start).

use std::time::Duration;

use anyhow::Context;

use super::saved::saved_states;
use crate::api::ApiClient;
use crate::app::RuntimeInfo;
use crate::config::Config;
use crate::control::{self, SiteStatus};
use crate::decide::{self, Input, SiteState};
use crate::dns::client;
use crate::store::Store;
use crate::util::ago;
use crate::util::now_millis;
use crate::util::utc;

/// The daemon's runtime info and API, if it is running and answering.
pub(super) async fn daemon(cfg: &Config) -> Option<(RuntimeInfo, ApiClient)> {
    let info = RuntimeInfo::read(&cfg.data_dir)?;
    let api = ApiClient::local(cfg, info.api);
    crate::api::call(&api, hyper::Method::GET, "/api/v1/sites")
        .await
        .ok()
        .map(|_| (info, api))
}

pub(super) async fn status(cfg: &Config, json: bool) -> anyhow::Result<i32> {
    let now = now_millis();
    let mut public: Vec<control::PublicStatus> = vec![];
    let mut zones: Vec<crate::reconcile::ZoneStatus> = vec![];
    let mut secondaries: Vec<crate::dns::notify::SecondaryState> = vec![];
    let mut replicas: Vec<crate::dns::replica::ReplicaState> = vec![];
    let (sites, info): (Vec<SiteStatus>, Option<RuntimeInfo>) = match daemon(cfg).await {
        Some((info, api)) => {
            let (code, body) = crate::api::call(&api, hyper::Method::GET, "/api/v1/status").await?;
            if !code.is_success() {
                anyhow::bail!(
                    "the daemon refused the status request: {}",
                    api_error(&body)
                );
            }
            let reply: crate::api::StatusReply = serde_json::from_slice(&body)
                .context("the daemon's status reply is not valid JSON")?;
            public = reply.public;
            zones = reply.zones;
            secondaries = reply.secondaries;
            replicas = reply.replicas;
            (reply.sites, Some(info))
        }
        None => {
            let (states, saved) = saved_states(cfg, now)?;
            let out = cfg
                .sites
                .iter()
                .zip(&states)
                .map(|(site, state)| {
                    control::status_from_state(site, state, None, None, &saved, now)
                })
                .collect();
            // The saved public addresses, from the same read of the state database.
            public = saved
                .iter()
                .map(|(family, addr)| control::PublicStatus {
                    family: *family,
                    address: Some(addr.to_string()),
                    last_round: None,
                })
                .collect();
            (out, None)
        }
    };
    if json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "daemon_running": info.is_some(), "sites": sites, "public": public, "zones": zones, "secondaries": secondaries, "replicas": replicas })
            )?
        );
        return Ok(0);
    }
    match &info {
        Some(i) => crate::outln!(
            "daemon running (pid {}), DNS on {}, API on {}\n",
            i.pid,
            i.dns
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            i.api
        ),
        None => crate::outln!(
            "daemon NOT running; showing the last saved state from {}\n",
            cfg.data_dir.display()
        ),
    }
    for p in &public {
        let addr = p
            .address
            .clone()
            .unwrap_or_else(|| "not known yet".to_string());
        match &p.last_round {
            Some(r) => crate::outln!("public {} address: {addr}  (last round: {r})", p.family),
            None => crate::outln!("public {} address: {addr}", p.family),
        }
    }
    if !public.is_empty() {
        crate::outln!();
    }
    for (s, site) in sites.iter().zip(&cfg.sites) {
        crate::outln!(
            "{}  {}  since {} ({})",
            s.name,
            s.phase,
            utc(s.since),
            ago(now.saturating_sub(s.since))
        );
        crate::outln!("  why:        {}", s.reason);
        crate::outln!(
            "  records:    should point at the {} {}",
            s.target,
            s.published
        );
        if let Some(p) = &s.proxy {
            crate::outln!("  proxy:      {}", proxy_words(p, now));
        }
        for n in &s.dns {
            crate::outln!("  dns:        {}", dns_words(n, now));
        }
        let name = hickory_proto::rr::Name::from_ascii(&s.domain).unwrap_or_default();
        let asked = match cfg.zone_of(&name) {
            Some(z) if z.provider.is_none() => info
                .as_ref()
                .and_then(|i| i.dns.first().copied())
                .map(|a| (a, "the built-in server")),
            Some(z) => z
                .verify
                .first()
                .map(|a| (*a, "an authoritative server of the zone")),
            None => None,
        };
        match asked {
            Some((server, who)) => {
                let answer = match client::query(server, &site.domain, site.record_type(), Duration::from_secs(2)).await {
                    Ok(r) if r.addrs.is_empty() => format!("{} (no address)", r.rcode),
                    Ok(r) => r.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", "),
                    Err(e) => format!("no answer: {e}"),
                };
                let differs = !answer.split(", ").any(|a| a == s.published);
                let mark = if differs { "  ← not what understudy wants yet" } else { "" };
                crate::outln!("  dns answer: {} {} {}  (asked {server}, {who}){mark}", site.domain, site.record_type(), answer);
            }
            None if cfg.zone_of(&name).is_some_and(|z| z.provider.is_some()) => crate::outln!(
                "  dns answer: not asked: zone {} has no verify servers (set dns.zones.verify to its nameservers)",
                cfg.zone_of(&name).map(|z| z.origin.to_string()).unwrap_or_default()
            ),
            None => {}
        }
        for z in zones
            .iter()
            .filter(|z| s.dns.iter().any(|n| n.zone == z.zone))
        {
            for d in &z.drift {
                crate::outln!(
                    "  drift:      {} was changed outside understudy {} (found {}, expected {}); repaired at the next pass",
                    d.record,
                    ago(now.saturating_sub(d.at)),
                    d.found,
                    d.expected
                );
            }
        }
        crate::outln!(
            "  primary:    {}{}",
            s.primary,
            probe_words(&s.last_primary_probe, now)
        );
        if let Some(at) = s.last_primary_probe.as_ref().and_then(|p| p.cert_expires) {
            let left = match at.checked_sub(now) {
                Some(ms) => format!(
                    "in {}",
                    crate::util::human_duration(ms / 3_600_000 * 3_600_000)
                ),
                None => "EXPIRED".to_string(),
            };
            let mark = if crate::probe::cert_warning("", at, now).is_some() {
                "  ← renew it"
            } else {
                ""
            };
            crate::outln!("  primary certificate expires {} ({left}){mark}", utc(at));
        }
        let ready = if s.standby_ready {
            "ready"
        } else {
            "NOT ready"
        };
        crate::outln!(
            "  standby:    {} ({ready}){}",
            s.standby,
            probe_words(&s.last_standby_probe, now)
        );
    }
    if !secondaries.is_empty() {
        crate::outln!("\nsecondaries of the built-in zones:");
    }
    for s in &secondaries {
        crate::outln!("  {}", secondary_words(s, now));
    }
    if !replicas.is_empty() {
        crate::outln!("\nzones held as a secondary:");
    }
    for r in &replicas {
        crate::outln!("  {}", replica_words(r, now));
    }
    Ok(0)
}

/// "ns2 (192.0.2.53:53) zone example.com.: serial 7 answered 3s ago, took IXFR of 7 2s ago".
fn secondary_words(s: &crate::dns::notify::SecondaryState, now: u64) -> String {
    let told = match (s.notified_serial, s.acked_serial) {
        (Some(n), Some(a)) if n == a => format!(
            "NOTIFY of serial {n} answered {}",
            s.acked_at
                .map(|t| ago(now.saturating_sub(t)))
                .unwrap_or_default()
        ),
        (Some(n), _) if s.not_answering() => format!(
            "NOT ANSWERING: NOTIFY of serial {n} unanswered after {} tries ({})",
            s.tries,
            s.last_error.as_deref().unwrap_or("no answer")
        ),
        (Some(n), _) => format!(
            "NOTIFY of serial {n} sent, not answered yet{}",
            s.last_error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ),
        (None, _) => "not notified yet".to_string(),
    };
    let took = match (s.transferred_serial, &s.transfer_kind) {
        (Some(t), Some(k)) => format!(
            "; took {k} of serial {t} {}",
            s.transferred_at
                .map(|at| ago(now.saturating_sub(at)))
                .unwrap_or_default()
        ),
        _ => "; has taken no transfer since the daemon started".to_string(),
    };
    format!(
        "{} ({}) zone {}: {told}{took}",
        s.secondary, s.address, s.zone
    )
}

/// "example.com. from home: serial 7, confirmed 2m ago" (or why it is not served).
fn replica_words(r: &crate::dns::replica::ReplicaState, now: u64) -> String {
    let confirmed = r
        .refreshed_at
        .map(|t| format!(", confirmed by the primary {}", ago(now.saturating_sub(t))))
        .unwrap_or_default();
    let held = match r.serial {
        Some(s) => format!("serving serial {s}{confirmed}"),
        None => "NOT SERVED: not taken from the primary yet (or expired)".to_string(),
    };
    let error = r
        .last_error
        .as_deref()
        .map(|e| format!("; the last attempt failed: {e}"))
        .unwrap_or_default();
    format!("{} from {}: {held}{error}", r.zone, r.primary)
}

/// "the copy answers since 12:00:03 UTC (2m ago); 1,204 requests answered from the copy, 3
/// writes refused, 88,310 passed to the origin" (a proxied site).
fn proxy_words(p: &crate::control::circuit::CircuitView, now: u64) -> String {
    let who = match (p.open, p.copy_since) {
        (true, Some(since)) => format!(
            "THE COPY ANSWERS since {} ({})",
            utc(since),
            ago(now.saturating_sub(since))
        ),
        (true, None) => "THE COPY ANSWERS".to_string(),
        (false, _) => "requests go to the origin".to_string(),
    };
    format!(
        "{who}; {} passed to the origin, {} answered from the copy, {} refused (writes while the origin is away)",
        p.proxied, p.from_copy, p.refused
    )
}

/// A zone's state for one site, in words: "zone example.com. at rfc2136 192.0.2.53:53: FAILING
/// since ... (3m ago): NOTAUTH; the provider holds 192.0.2.7".
fn dns_words(n: &control::DnsNote, now: u64) -> String {
    if n.server == "built-in" {
        return format!("zone {} (built-in server): published", n.zone);
    }
    let since = if n.since > 0 {
        format!(
            " since {} ({})",
            utc(n.since),
            ago(now.saturating_sub(n.since))
        )
    } else {
        String::new()
    };
    let holds = match &n.at_provider {
        Some(v) => format!("; the provider holds {}", v.join(", ")),
        None => String::new(),
    };
    match n.state.as_str() {
        "in-sync" if n.confirmed => format!(
            "zone {} at {}: published and confirmed by its servers{since}",
            n.zone, n.server
        ),
        "failing" => format!(
            "zone {} at {}: FAILING{since}: {}{holds}; retrying with the latest desired records",
            n.zone,
            n.server,
            n.last_error.as_deref().unwrap_or("unknown error")
        ),
        "starting" => format!("zone {} at {}: not read yet", n.zone, n.server),
        _ => format!(
            "zone {} at {}: PENDING{since}: sent, not yet confirmed by its servers{holds}",
            n.zone, n.server
        ),
    }
}

fn probe_words(p: &Option<control::ProbeNote>, now: u64) -> String {
    match p {
        None => String::new(),
        Some(p) => format!(
            " — last probe {} {}: {}",
            if p.ok { "ok" } else { "FAILED" },
            ago(now.saturating_sub(p.at)),
            p.detail
        ),
    }
}

pub(super) async fn command(cfg: &Config, site: &str, input: Input) -> anyhow::Result<i32> {
    let (verb, path_action) = match input {
        Input::Drain { force: true } => ("drain", "drain?force=true"),
        Input::Drain { force: false } => ("drain", "drain"),
        _ => ("release", "release"),
    };
    if let Some((_, api)) = daemon(cfg).await {
        let (code, body) = crate::api::call(
            &api,
            hyper::Method::POST,
            &format!("/api/v1/sites/{site}/{path_action}"),
        )
        .await?;
        if code.is_success() {
            let st: SiteStatus = serde_json::from_slice(&body)?;
            let pending: Vec<String> = st
                .dns
                .iter()
                .filter(|n| n.server != "built-in")
                .map(|n| dns_words(n, now_millis()))
                .collect();
            if pending.is_empty() {
                crate::outln!(
                    "{verb}: {} is now {} — records point at the {} {}",
                    st.name,
                    st.phase,
                    st.target,
                    st.published
                );
            } else {
                // A provider's write follows from the reconciler: say where it stands, not that it happened.
                crate::outln!(
                    "{verb}: {} is now {} — records should point at the {} {}",
                    st.name,
                    st.phase,
                    st.target,
                    st.published
                );
                for p in pending {
                    crate::outln!("  {p}");
                }
            }
            return Ok(0);
        }
        eprintln!("{verb} refused: {}", api_error(&body));
        return Ok(1);
    }
    // The daemon is not running: apply the command to the saved state, so it holds from the
    // next start. Standby readiness cannot be checked offline, so a drain needs --force.
    let Some(site_cfg) = cfg.site(site) else {
        eprintln!("{verb} refused: no site named `{site}`");
        return Ok(1);
    };
    let store = Store::open(&cfg.data_dir)?;
    let now = now_millis();
    let state = store
        .load_state(&site_cfg.name)?
        .unwrap_or_else(|| SiteState::new(now));
    let input = match input {
        Input::Drain { force: false } => {
            eprintln!("{verb} refused: the daemon is not running, so the standby's readiness cannot be checked; start it, or use --force to latch the site to the standby from the daemon's next start");
            return Ok(1);
        }
        other => other,
    };
    let step = decide::step(&state, &control::policy(site_cfg), &input, now);
    if let Some(why) = step.refused {
        eprintln!("{verb} refused: {why}");
        return Ok(1);
    }
    let events = control::step_events(&site_cfg.name, &input, &step, now, None);
    store.save(&site_cfg.name, &step.state, now, &events)?;
    crate::outln!(
        "{verb}: {} is now {} (saved; the daemon is not running and will start in this state)",
        site_cfg.name,
        step.state.phase
    );
    Ok(0)
}

/// The words of an API error reply (or the body as it came).
fn api_error(body: &[u8]) -> String {
    serde_json::from_slice::<crate::api::ErrorReply>(body)
        .map(|e| e.error)
        .unwrap_or_else(|_| String::from_utf8_lossy(body).to_string())
}
