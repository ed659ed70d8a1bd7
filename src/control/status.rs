//! What the controller reports about each site (`status`, the API): the status types and how
//! they are made from a site's state and the reconcilers' board. No decisions are made here.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use super::{policy, primary_addr};
use crate::config::{Config, Site};
use crate::decide::{self, Phase, SiteState, Target};
use crate::ip::Family;

/// The last probe of one side, for the operator.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ProbeNote {
    pub at: u64,
    pub ok: bool,
    pub detail: String,
    /// When the server's certificate expires (HTTPS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_expires: Option<u64>,
}

/// The public address of one family as `status` shows it.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct PublicStatus {
    pub family: Family,
    /// The agreed address now published for `auto` sites and `[[ddns]]` names.
    pub address: Option<String>,
    /// The last round in words ("203.0.113.7 agreed by 2 operator(s)", "no agreement: ...").
    pub last_round: Option<String>,
}

/// Where a site's records stand at one DNS zone that holds them.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct DnsNote {
    pub zone: String,
    /// "built-in", or the provider in words ("rfc2136 127.0.0.1:53").
    pub server: String,
    /// "in-sync", "pending", "failing" or "starting" (the built-in server is always in sync:
    /// it is published before a transition is logged).
    pub state: String,
    pub since: u64,
    pub last_error: Option<String>,
    /// What the provider holds for the site's domain, as last read or written.
    pub at_provider: Option<Vec<String>>,
    /// Whether the zone's authoritative servers answer the desired value.
    pub confirmed: bool,
}

/// One site as `status` shows it.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct SiteStatus {
    pub name: String,
    pub domain: String,
    pub names: Vec<String>,
    pub phase: Phase,
    pub since: u64,
    pub reason: String,
    pub target: Target,
    pub primary: String,
    pub standby: String,
    /// The address the records should point at now (the controller's decision). Whether the DNS
    /// has it yet is in `dns`: at once for the built-in server, after the reconciler's write
    /// and its confirmation for a provider.
    pub published: String,
    /// Per zone holding the site's names: where the records stand there.
    #[serde(default)]
    pub dns: Vec<DnsNote>,
    pub standby_ready: bool,
    pub last_primary_probe: Option<ProbeNote>,
    pub last_standby_probe: Option<ProbeNote>,
    /// Proxy mode: whether the copy answers, since when, and the request counts.
    #[serde(default)]
    pub proxy: Option<super::circuit::CircuitView>,
}

/// Where a site's records stand in each zone holding its names, from the reconcilers' board.
pub fn dns_notes(
    cfg: &Config,
    site: &Site,
    board: &BTreeMap<String, crate::reconcile::ZoneStatus>,
) -> Vec<DnsNote> {
    let mut out: Vec<DnsNote> = vec![];
    for name in site.names() {
        let Some(zone) = cfg.zone_of(name) else {
            continue;
        };
        let zname = zone.origin.to_string();
        if out.iter().any(|n| n.zone == zname) {
            continue;
        }
        let note = match (&zone.provider, board.get(&zname)) {
            (None, _) => DnsNote {
                zone: zname,
                server: "built-in".into(),
                state: "in-sync".into(),
                since: 0,
                last_error: None,
                at_provider: None,
                confirmed: true,
            },
            (Some(p), None) => DnsNote {
                zone: zname,
                server: p.clone(),
                state: "starting".into(),
                since: 0,
                last_error: None,
                at_provider: None,
                confirmed: false,
            },
            (Some(_), Some(z)) => {
                let rec = z.records.iter().find(|r| {
                    r.name == name.to_string() && r.rtype == site.record_type().to_string()
                });
                DnsNote {
                    zone: zname,
                    server: z.provider.clone(),
                    state: z.state.clone(),
                    since: z.since,
                    last_error: z.last_error.clone(),
                    at_provider: rec.and_then(|r| r.at_provider.clone()),
                    confirmed: rec
                        .is_some_and(|r| r.confirmed && r.at_provider.as_ref() == Some(&r.desired)),
                }
            }
        };
        out.push(note);
    }
    out
}

/// A site's status from its state (also used by `status` when the daemon is not running).
pub fn status_from_state(
    site: &Site,
    state: &SiteState,
    last_primary: Option<ProbeNote>,
    last_standby: Option<ProbeNote>,
    public: &BTreeMap<Family, IpAddr>,
    now: u64,
) -> SiteStatus {
    let primary = primary_addr(site, public);
    // A proxied site's records point at the standby, whatever the decision.
    let target = match site.mode {
        crate::config::SiteMode::Proxy => Target::Standby,
        crate::config::SiteMode::Dns => state.target(),
    };
    let published = match target {
        Target::Primary => primary
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| "(no address yet)".to_string()),
        Target::Standby => site.standby.ip.to_string(),
    };
    SiteStatus {
        name: site.name.clone(),
        domain: site.host(),
        names: site.names().map(|n| n.to_string()).collect(),
        phase: state.phase,
        since: state.since,
        reason: state.reason.clone(),
        target,
        primary: match (site.primary_auto, primary) {
            (Some(f), Some(ip)) => format!("auto ({f}: {ip})"),
            (Some(f), None) => format!("auto ({f}: not known yet)"),
            (None, _) => site.primary.to_string(),
        },
        standby: site.standby.to_string(),
        published,
        standby_ready: state.standby.readiness(&policy(site), now) == decide::Readiness::Ready,
        dns: vec![],
        last_primary_probe: last_primary,
        last_standby_probe: last_standby,
        proxy: None,
    }
}
