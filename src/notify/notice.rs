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
}

/// One message, ready for any channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub kind: String,
    pub severity: Severity,
    pub site: String,
    pub title: String,
    pub text: String,
}

/// The kind's severity; rows of older words ("alert") count as warnings, the rest as info.
pub fn severity(kind: &str) -> Severity {
    match EventKind::from_word(kind) {
        Some(EventKind::BothDown | EventKind::StandbyNotReady) => Severity::Critical,
        Some(EventKind::FailedOver | EventKind::CertificateExpiring | EventKind::DaemonStopped) => {
            Severity::Warning
        }
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
    let follow = format!(
        " Resolvers follow within the TTL ({}).",
        human_duration(u64::from(cx.ttl) * 1000)
    );
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
            },
        );
        assert!(!m.text.contains("lasted"), "{}", m.text);
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
