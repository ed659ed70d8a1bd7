//! What a notification says, from one event-log row: a title and a text in words, saying what
//! happened and what it means for visitors (where the records point now, why, for how long the
//! outage lasted). Pure: the delivery loop gathers what it needs (the outage's start, the TTL)
//! and passes it in.

use serde::Serialize;

pub use crate::config::Severity;
use crate::events::EventKind;
use crate::store::Event;
use crate::util::{human_duration, utc_minutes};

/// What the delivery loop knows beyond the event itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct Context {
    /// The managed records' TTL: how long resolvers may keep the old answer.
    pub ttl: u32,
    /// For a failback or a release: when the failover or drain it ends began (Unix ms).
    pub began_at: Option<u64>,
    /// The site is in proxy mode: its records stay on the standby, which answers visitors
    /// from the copy at once; nothing waits for resolvers.
    pub proxied: bool,
}

/// One message, ready for any channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub kind: String,
    pub severity: Severity,
    pub site: String,
    /// Every site it is about: the one site, or all of a group's.
    pub sites: Vec<String>,
    pub title: String,
    pub text: String,
}

/// How many sites a grouped message names before "and N more".
const LISTED: usize = 50;

/// Whether events of `kind` are gathered into one message per wave (`crate::notify`): every
/// kind about sites; not the daemon's own start and stop, nor an address change.
pub fn groups(kind: &str) -> bool {
    !matches!(
        EventKind::from_word(kind),
        Some(
            EventKind::DaemonStarted
                | EventKind::DaemonStopped
                | EventKind::AddressChanged
                | EventKind::WatcherOffline
                | EventKind::DnsUnconfirmed
                | EventKind::DnsConfirmed
                | EventKind::AddressVoteSplit
        )
    )
}

/// One message for several events of one kind (`evs`, at least two, oldest first): what
/// happened to how many sites, between when and when, the sites by name (at most [`LISTED`]),
/// and the first one's reason; `cx.began_at` is the first site's outage start.
pub fn render_group(evs: &[Event], cx: &Context) -> Notice {
    let first = &evs[0];
    let last = &evs[evs.len() - 1];
    let mut sites: Vec<String> = Vec::new();
    for e in evs {
        if !sites.contains(&e.site) {
            sites.push(e.site.clone());
        }
    }
    let n = sites.len();
    let mut listed = sites
        .iter()
        .take(LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if n > LISTED {
        listed.push_str(&format!(" and {} more", n - LISTED));
    }
    let when = if last.at.saturating_sub(first.at) < 60_000 {
        format!("At {}", utc_minutes(first.at))
    } else {
        format!(
            "Between {} and {}",
            utc_minutes(first.at),
            utc_minutes(last.at)
        )
    };
    let follow = format!(
        " Resolvers follow within the TTL ({}).",
        human_duration(u64::from(cx.ttl) * 1000)
    );
    let lasted = cx
        .began_at
        .filter(|b| *b <= first.at)
        .map(|b| format!(" The first outage lasted {}.", human_duration(first.at - b)))
        .unwrap_or_default();
    let reason = first.reason.trim_end_matches('.');
    let kind = EventKind::from_word(&first.kind);
    let (title, what) = match kind {
        Some(EventKind::FailedOver) => (
            format!("{n} sites failed over to the standby"),
            format!("their primaries stopped answering. Visitors are sent to the standby's copy.{follow}"),
        ),
        Some(EventKind::FailedBack) => (
            format!("{n} sites are back on their primaries"),
            format!("visitors are sent to the primaries again.{lasted}{follow}"),
        ),
        Some(EventKind::BothDown) => (
            format!("{n} sites: primary and standby both down"),
            "visitors get errors until one of them answers again.".to_string(),
        ),
        Some(EventKind::StandbyNotReady) => (
            format!("{n} sites: primary down, standby not ready"),
            "the records stay on the primaries, so visitors get errors.".to_string(),
        ),
        Some(EventKind::Drained) => (
            format!("{n} sites drained to the standby"),
            format!("the operator drained them.{follow}"),
        ),
        Some(EventKind::Released) => (
            format!("{n} sites released"),
            format!("the operator released them.{lasted}"),
        ),
        _ => (
            format!("{n} sites: {}", first.kind),
            "the same happened to each.".to_string(),
        ),
    };
    Notice {
        kind: first.kind.clone(),
        severity: severity(&first.kind),
        site: first.site.clone(),
        title,
        text: format!("{when} {n} sites ({listed}): {what} The first one's reason: {reason}."),
        sites,
    }
}

/// The kind's severity; rows of older words ("alert") count as warnings, the rest as info.
pub fn severity(kind: &str) -> Severity {
    match EventKind::from_word(kind) {
        Some(EventKind::BothDown | EventKind::StandbyNotReady) => Severity::Critical,
        Some(
            EventKind::FailedOver
            | EventKind::CertificateExpiring
            | EventKind::DaemonStopped
            | EventKind::WatcherOffline
            | EventKind::CertificateRenewalFailing
            | EventKind::DnsUnconfirmed
            | EventKind::AddressVoteSplit,
        ) => Severity::Warning,
        Some(_) => Severity::Info,
        None if kind == "alert" => Severity::Warning,
        None => Severity::Info,
    }
}

/// The message for `ev`.
pub fn render(ev: &Event, cx: &Context) -> Notice {
    let site = ev.site.as_str();
    let at = utc_minutes(ev.at);
    let records = ev
        .records_after
        .as_deref()
        .filter(|r| !r.is_empty())
        .map(|r| format!(" The records now say: {r}."))
        .unwrap_or_default();
    let mut follow = format!(
        " Resolvers follow within the TTL ({}).",
        human_duration(u64::from(cx.ttl) * 1000)
    );
    let mut records = records;
    if cx.proxied {
        // Proxy mode: no record moves, so nothing waits for resolvers.
        records = String::new();
        follow = match EventKind::from_word(&ev.kind) {
            Some(EventKind::FailedBack | EventKind::Released) => {
                " The standby passes requests to the primary again (proxy mode: the records never moved).".to_string()
            }
            _ => " The standby answers visitors from its copy at once (proxy mode: the records stay on the standby, nothing waits for resolvers); writes get a read-only notice.".to_string(),
        };
    }
    let lasted = cx
        .began_at
        .filter(|b| *b <= ev.at)
        .map(|b| format!(" It lasted {}.", human_duration(ev.at - b)))
        .unwrap_or_default();
    let reason = ev.reason.trim_end_matches('.');
    let (title, text) = match EventKind::from_word(&ev.kind) {
        Some(EventKind::FailedOver) => (
            format!("{site} failed over to the standby"),
            format!(
                "At {at} the primary stopped answering: {reason}. Visitors are sent to the \
                 standby's copy.{records}{follow}"
            ),
        ),
        Some(EventKind::FailedBack) => (
            format!("{site} is back on the primary"),
            format!(
                "At {at}: {reason}. Visitors are sent to the primary again.{lasted}{records}{follow}"
            ),
        ),
        Some(EventKind::BothDown) => (
            format!("{site}: primary and standby both down"),
            format!(
                "At {at}: {reason}. Visitors get errors until one of them answers again.{records}"
            ),
        ),
        Some(EventKind::StandbyNotReady) => (
            format!("{site}: primary down, standby not ready"),
            format!(
                "At {at}: {reason}. The records stay on the primary, so visitors get errors \
                 until it answers or the standby is ready."
            ),
        ),
        Some(EventKind::Drained) => (
            format!("{site} drained to the standby"),
            format!("At {at} the operator drained it: {reason}.{records}{follow}"),
        ),
        Some(EventKind::Released) => (
            format!("{site} released"),
            format!("At {at} the operator released it: {reason}.{lasted}{records}"),
        ),
        Some(EventKind::CertificateExpiring) => (
            format!("{site}: certificate expiring"),
            format!("At {at}: {reason}."),
        ),
        Some(EventKind::AddressChanged) => (
            "public address changed".to_string(),
            format!("At {at}: {reason}."),
        ),
        Some(EventKind::CertificateIssued) => (
            format!("{site}: standby certificate issued"),
            format!("At {at}: {reason}."),
        ),
        Some(EventKind::CertificateRenewalFailing) => (
            format!("{site}: standby certificate not renewed"),
            format!(
                "At {at} obtaining the standby's certificate failed: {reason}. It is tried \
                 again with backoff; until it works, a failover serves the current certificate \
                 while it lasts, and the standby is not ready once it has expired."
            ),
        ),
        Some(EventKind::DnsUnconfirmed) => (
            "DNS change not confirmed".to_string(),
            format!(
                "At {at}: {reason}. understudy keeps retrying with the latest records; until it \
                 is confirmed, visitors may still be sent where the records pointed before."
            ),
        ),
        Some(EventKind::DnsConfirmed) => (
            "DNS change confirmed again".to_string(),
            format!(
                "At {at}: {reason}. Visitors are sent where the records say once resolvers \
                 follow, within the TTL."
            ),
        ),
        Some(EventKind::AddressVoteSplit) => (
            "public address sources disagree".to_string(),
            format!(
                "At {at}: {reason}. The last agreed address stays published until the sources \
                 agree again."
            ),
        ),
        Some(EventKind::CrawlPublished) => (
            format!("{site}: standby copy updated"),
            format!("At {at}: {reason}."),
        ),
        Some(EventKind::CrawlRejected) => (
            format!("{site}: standby copy not updated"),
            format!(
                "At {at} a crawl did not publish: {reason}. The standby keeps serving the last \
                 good copy; a failover now would serve that older copy."
            ),
        ),
        Some(EventKind::DaemonStarted) => (
            "understudy started".to_string(),
            format!("At {at}: {reason}."),
        ),
        Some(EventKind::DaemonStopped) => (
            "understudy stopped".to_string(),
            format!("At {at}: {reason}. Nothing is watched until it runs again."),
        ),
        Some(EventKind::WatcherOffline) => (
            "understudy could not see the internet".to_string(),
            format!(
                "At {at}: {reason}. Failed probes in that time were not acted on: the sites \
                 stayed where they were."
            ),
        ),
        Some(EventKind::FirstSeen) => (
            format!("{site} is watched"),
            format!("At {at} understudy started watching {site}: {reason}."),
        ),
        Some(EventKind::Transition) | None => (
            format!("{site}: {}", ev.to_phase.as_deref().unwrap_or(&ev.kind)),
            format!("At {at}: {reason}."),
        ),
    };
    Notice {
        kind: ev.kind.clone(),
        severity: severity(&ev.kind),
        site: ev.site.clone(),
        sites: if ev.site.is_empty() || ev.site.starts_with('(') {
            Vec::new()
        } else {
            vec![ev.site.clone()]
        },
        title,
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, reason: &str, records: Option<&str>) -> Event {
        Event {
            id: 7,
            site: "shop".into(),
            at: 1_796_000_000_000,
            kind: kind.into(),
            from_phase: None,
            to_phase: Some("failed-over".into()),
            reason: reason.into(),
            records_before: None,
            records_after: records.map(str::to_string),
        }
    }

    /// Proxy mode moves no record: the message says the copy answers at once, not that
    /// resolvers follow within the TTL.
    #[test]
    fn a_proxied_failover_says_the_copy_answers_at_once() {
        let cx = |proxied| Context {
            ttl: 30,
            began_at: None,
            proxied,
        };
        let ev = event(
            "failed-over",
            "primary failed 3 probes in a row",
            Some("www.shop.test. A 192.0.2.2"),
        );
        let m = render(&ev, &cx(true));
        assert!(
            m.text.contains("answers visitors from its copy at once"),
            "{}",
            m.text
        );
        assert!(
            !m.text.contains("TTL") && !m.text.contains("records now say"),
            "{}",
            m.text
        );
        assert!(render(&ev, &cx(false)).text.contains("within the TTL"));
        let back = render(&event("failed-back", "primary healthy", None), &cx(true));
        assert!(
            back.text.contains("passes requests to the primary again"),
            "{}",
            back.text
        );
    }

    #[test]
    fn a_failover_says_where_visitors_go_and_when_resolvers_follow() {
        let m = render(
            &event(
                "failed-over",
                "primary failed 3 probes in a row (connection refused); standby ready",
                Some("www.shop.test. A 192.0.2.2"),
            ),
            &Context {
                ttl: 30,
                began_at: None,
                proxied: false,
            },
        );
        assert_eq!(m.title, "shop failed over to the standby");
        assert_eq!(m.severity, Severity::Warning);
        for part in [
            "primary failed 3 probes in a row (connection refused); standby ready.",
            "standby's copy",
            "www.shop.test. A 192.0.2.2",
            "TTL (30s)",
        ] {
            assert!(m.text.contains(part), "{part:?} missing from {:?}", m.text);
        }
    }

    #[test]
    fn a_failback_says_how_long_the_outage_lasted() {
        let ev = event("failed-back", "primary answered every probe", None);
        let m = render(
            &ev,
            &Context {
                ttl: 30,
                began_at: Some(ev.at - 754_000),
                proxied: false,
            },
        );
        assert_eq!(m.severity, Severity::Info);
        assert!(m.text.contains("It lasted 12m34s."), "{}", m.text);
        // A start after the end (a clock step) is not a length.
        let m = render(
            &ev,
            &Context {
                ttl: 30,
                began_at: Some(ev.at + 1),
                proxied: false,
            },
        );
        assert!(!m.text.contains("lasted"), "{}", m.text);
    }

    #[test]
    fn a_wave_of_failovers_is_one_message_naming_every_site() {
        let evs: Vec<Event> = (0..120)
            .map(|i| Event {
                id: i,
                site: format!("site{i}"),
                at: 1_796_000_000_000 + i as u64 * 10,
                ..event(
                    "failed-over",
                    "primary failed 3 probes in a row (timeout)",
                    None,
                )
            })
            .collect();
        let m = render_group(
            &evs,
            &Context {
                ttl: 30,
                began_at: None,
                proxied: false,
            },
        );
        assert_eq!(m.title, "120 sites failed over to the standby");
        assert_eq!(m.sites.len(), 120);
        assert_eq!(m.severity, Severity::Warning);
        for part in [
            "site0, site1",
            "site49 and 70 more",
            "TTL (30s)",
            "(timeout).",
        ] {
            assert!(m.text.contains(part), "{part:?} missing from {:?}", m.text);
        }
        assert!(!m.text.contains("site50"), "{}", m.text);
        assert!(groups("failed-back") && groups("crawl-rejected"));
        assert!(!groups("daemon-started") && !groups("address-changed"));
    }

    #[test]
    fn every_kind_and_an_old_word_render() {
        for k in EventKind::ALL {
            let m = render(&event(k.as_str(), "why", None), &Context::default());
            assert!(
                !m.title.is_empty() && m.text.contains("why"),
                "{k:?}: {m:?}"
            );
        }
        let m = render(&event("alert", "both down", None), &Context::default());
        assert_eq!(m.severity, Severity::Warning);
        assert_eq!(severity("both-down"), Severity::Critical);
    }
}
