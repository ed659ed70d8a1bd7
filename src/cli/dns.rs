//! `dns plan` and `dns apply`: the desired records from the saved state against what each
//! provider holds, with what is worth a warning before understudy writes. `dns ds`: the DS
//! records of the signed zones, for their parents.

use super::saved::saved_states;
use crate::config::Config;
use crate::control;
use crate::util::now_millis;

/// `dns plan` / `dns apply`: desired records from the saved state (sites never seen point at
/// their primary), compared with what each provider holds.
pub(super) async fn dns_command(cfg: &Config, apply: bool) -> anyhow::Result<i32> {
    use crate::reconcile::{plan, Pass};
    let managed = saved_managed(cfg)?;
    for z in cfg.dns.zones.iter().filter(|z| z.provider.is_none()) {
        crate::outln!(
            "zone {}: served by the built-in DNS server (nothing to push)",
            z.origin
        );
    }
    let mut failed = false;
    for r in crate::reconcile::for_config(cfg)? {
        let desired = r.desired(&managed);
        let keys: Vec<_> = desired.keys().cloned().collect();
        let actual = match r.provider.read(&r.zone, &keys).await {
            Ok(a) => a,
            Err(e) => {
                crate::outln!(
                    "zone {} at {}: cannot read: {e}",
                    r.zone,
                    r.provider.describe()
                );
                failed = true;
                continue;
            }
        };
        let changes = plan(&desired, &actual);
        crate::outln!(
            "zone {} at {}: {} managed record set(s), {} to change",
            r.zone,
            r.provider.describe(),
            desired.len(),
            changes.len()
        );
        match r.takeover_warnings(&desired).await {
            Ok(notes) => {
                for n in notes {
                    crate::outln!("  warning: {n}");
                }
            }
            Err(e) => crate::outln!(
                "  warning: could not check for foreign address records and ownership markers: {e}"
            ),
        }
        for c in &changes {
            let old = actual
                .get(&c.key())
                .map(|a| a.to_string())
                .unwrap_or_else(|| format!("{} {} (absent)", c.name, c.rtype));
            crate::outln!("  {old}  ->  {c}");
        }
        if !apply || changes.is_empty() {
            continue;
        }
        let mut known = Some(actual);
        match r.pass(&desired, &mut known).await {
            Ok(Pass::InSync) => crate::outln!("  nothing to do"),
            Ok(Pass::Applied(report)) => {
                for (rr, outcome, confirmed) in report {
                    let what = match (&outcome, confirmed) {
                        (crate::dns::provider::Outcome::Applied, true) => {
                            "applied and confirmed".to_string()
                        }
                        (crate::dns::provider::Outcome::Applied, false) => {
                            failed = true;
                            "applied, but could not confirm: the authoritative servers still answer otherwise".to_string()
                        }
                        (crate::dns::provider::Outcome::Rejected(why), _) => {
                            failed = true;
                            format!("rejected: {why}")
                        }
                        (crate::dns::provider::Outcome::CouldNotConfirm(why), _) => {
                            failed = true;
                            format!("could not confirm: {why}")
                        }
                    };
                    crate::outln!("  {rr}: {what}");
                }
            }
            Err(e) => {
                crate::outln!("  failed: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// The desired records from the saved state (sites never seen point at their primary).
pub(super) fn saved_managed(cfg: &Config) -> anyhow::Result<crate::dns::ManagedRecords> {
    let (states, public) = saved_states(cfg, now_millis())?;
    Ok(control::managed_records(
        cfg,
        states.iter().map(|s| s.target()),
        &public,
    ))
}

/// `dns ds`: for each signed zone, the DS records of its KSK (read from the data directory;
/// the daemon makes the keys at its first start). Exit 1 when a signed zone has no keys yet.
pub(super) fn ds(cfg: &Config) -> anyhow::Result<i32> {
    let mut code = 0;
    let signed: Vec<_> = cfg
        .dns
        .zones
        .iter()
        .filter(|z| z.dnssec.is_some())
        .collect();
    if signed.is_empty() {
        crate::outln!("no zone is signed (add [dns.zones.dnssec] to a built-in zone)");
        return Ok(1);
    }
    for z in signed {
        let alg = z
            .dnssec
            .as_ref()
            .map(|d| d.algorithm)
            .unwrap_or(crate::config::DnssecAlgorithm::EcdsaP256);
        let keys = crate::dns::keys::ZoneKeys::load(&cfg.data_dir, &z.origin, alg)?;
        let ds = keys.ds()?;
        if ds.is_empty() {
            crate::outln!(
                "; zone {}: no keys yet (the daemon makes them at its first start)",
                z.origin
            );
            code = 1;
        }
        for line in ds {
            crate::outln!("{line}");
        }
    }
    Ok(code)
}
