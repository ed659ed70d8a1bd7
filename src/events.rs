//! The event log's closed set of kinds: what happened to a site or to the daemon, named the
//! way its operator would say it ("failed over", "both down"), so that whatever reads the log
//! (the CLI, the API, notifications) can act on the kind without parsing the reason's words.
//!
//! Pure: no I/O. A change of phase gets its kind from [`EventKind::of_transition`], by what
//! caused it and where the records point before and after ([`crate::decide::Phase::target`]):
//!
//! - an operator's drain or release is [`EventKind::Drained`] / [`EventKind::Released`],
//!   whatever the phases;
//! - records moving from the primary to the standby are [`EventKind::FailedOver`];
//! - records moving back to a healthy primary are [`EventKind::FailedBack`]; moving back to a
//!   primary that is still down (the standby failed too) is [`EventKind::BothDown`];
//! - a primary down with the records kept on it because the standby is not ready is
//!   [`EventKind::StandbyNotReady`];
//! - every other change of phase (suspect, recovering, a primary that answers again before
//!   anything moved) is [`EventKind::Transition`].
//!
//! Rows written before these kinds existed keep the words they were stored with
//! (`transition`, `drain`, `release`, `alert`, `address`): [`crate::store::Event`] reads a
//! kind as the word it finds.

use serde::Serialize;

use crate::decide::{Input, Phase, Target};

/// What an event-log row records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A site seen for the first time.
    FirstSeen,
    /// The primary stopped answering and the records moved to the standby.
    FailedOver,
    /// The primary answered long enough and the records moved back to it.
    FailedBack,
    /// The standby failed while serving: the records are back on the primary, which is down.
    BothDown,
    /// The primary is down and the records stay on it: the standby is not ready.
    StandbyNotReady,
    /// Any other change of phase.
    #[default]
    Transition,
    /// The operator latched a site to the standby.
    Drained,
    /// The operator released a drained site.
    Released,
    /// A primary's certificate is close to expiring or has expired.
    CertificateExpiring,
    /// The agreed public address changed.
    AddressChanged,
    /// A crawl published a new snapshot of the site.
    CrawlPublished,
    /// A crawl did not publish (rejected by its checks, or failed): the last good copy stays.
    CrawlRejected,
    /// The daemon started (its rows' site is `(daemon)`).
    DaemonStarted,
    /// The daemon is stopping: nothing is watched until it runs again.
    DaemonStopped,
    /// The watcher could reach none of its references for a while, so it did not act on
    /// failed probes (logged when its link is back, with how long it was offline).
    WatcherOffline,
    /// ACME issued (or renewed) the standby's certificate for a site.
    CertificateIssued,
    /// Obtaining the standby's certificate failed (the first failure of a streak; it is
    /// retried with backoff).
    CertificateRenewalFailing,
    /// A provider zone could not be written or confirmed (the first failure of a streak; the
    /// reconciler retries with the latest records). Its site is `(daemon)`; the zone is in
    /// the reason.
    DnsUnconfirmed,
    /// A provider zone that was failing took and confirmed the records again (the end of a
    /// `dns-unconfirmed` streak, with how long it lasted). Its site is `(daemon)`.
    DnsConfirmed,
    /// The public-address sources stopped agreeing: the last agreed address is kept.
    AddressVoteSplit,
}

pub const DAEMON_SITE: &str = "(daemon)";

impl EventKind {
    /// Every kind, in declaration order.
    pub const ALL: [EventKind; 20] = [
        EventKind::FirstSeen,
        EventKind::FailedOver,
        EventKind::FailedBack,
        EventKind::BothDown,
        EventKind::StandbyNotReady,
        EventKind::Transition,
        EventKind::Drained,
        EventKind::Released,
        EventKind::CertificateExpiring,
        EventKind::AddressChanged,
        EventKind::CrawlPublished,
        EventKind::CrawlRejected,
        EventKind::DaemonStarted,
        EventKind::DaemonStopped,
        EventKind::WatcherOffline,
        EventKind::CertificateIssued,
        EventKind::CertificateRenewalFailing,
        EventKind::DnsUnconfirmed,
        EventKind::DnsConfirmed,
        EventKind::AddressVoteSplit,
    ];

    /// The word stored in the log (kebab-case, as serialized).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::FirstSeen => "first-seen",
            EventKind::FailedOver => "failed-over",
            EventKind::FailedBack => "failed-back",
            EventKind::BothDown => "both-down",
            EventKind::StandbyNotReady => "standby-not-ready",
            EventKind::Transition => "transition",
            EventKind::Drained => "drained",
            EventKind::Released => "released",
            EventKind::CertificateExpiring => "certificate-expiring",
            EventKind::AddressChanged => "address-changed",
            EventKind::CrawlPublished => "crawl-published",
            EventKind::CrawlRejected => "crawl-rejected",
            EventKind::DaemonStarted => "daemon-started",
            EventKind::DaemonStopped => "daemon-stopped",
            EventKind::WatcherOffline => "watcher-offline",
            EventKind::CertificateIssued => "certificate-issued",
            EventKind::CertificateRenewalFailing => "certificate-renewal-failing",
            EventKind::DnsUnconfirmed => "dns-unconfirmed",
            EventKind::DnsConfirmed => "dns-confirmed",
            EventKind::AddressVoteSplit => "address-vote-split",
        }
    }

    /// The kind a stored word names; `None` for words of older rows (`alert`, `drain`, ...).
    pub fn from_word(word: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == word)
    }

    /// The kind of a change of phase from `from` to `to` caused by `input` (rules in the
    /// module doc).
    pub fn of_transition(input: &Input, from: Phase, to: Phase) -> EventKind {
        match (input, from.target(), to.target()) {
            (Input::Drain { .. }, ..) => EventKind::Drained,
            (Input::Release, ..) => EventKind::Released,
            (_, Target::Primary, Target::Standby) => EventKind::FailedOver,
            (_, Target::Standby, Target::Primary) if to == Phase::Healthy => EventKind::FailedBack,
            (_, Target::Standby, Target::Primary) => EventKind::BothDown,
            _ if to == Phase::PrimaryDown => EventKind::StandbyNotReady,
            _ => EventKind::Transition,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe() -> Input {
        Input::Primary {
            ok: false,
            detail: String::new(),
        }
    }

    #[test]
    fn each_change_of_phase_gets_its_kind() {
        use EventKind as K;
        use Phase as P;
        let standby = Input::Standby {
            ok: false,
            detail: String::new(),
        };
        let drain = Input::Drain { force: false };
        let table: &[(&Input, Phase, Phase, EventKind)] = &[
            (&probe(), P::Healthy, P::Suspect, K::Transition),
            (&probe(), P::Suspect, P::FailedOver, K::FailedOver),
            (&probe(), P::Healthy, P::FailedOver, K::FailedOver),
            (&probe(), P::PrimaryDown, P::FailedOver, K::FailedOver),
            (&probe(), P::Suspect, P::PrimaryDown, K::StandbyNotReady),
            (&probe(), P::Healthy, P::PrimaryDown, K::StandbyNotReady),
            (&probe(), P::PrimaryDown, P::Healthy, K::Transition),
            (&probe(), P::Suspect, P::Healthy, K::Transition),
            (&probe(), P::FailedOver, P::Recovering, K::Transition),
            (&probe(), P::Recovering, P::FailedOver, K::Transition),
            (&probe(), P::Recovering, P::Healthy, K::FailedBack),
            (&standby, P::FailedOver, P::Healthy, K::FailedBack),
            (&standby, P::FailedOver, P::PrimaryDown, K::BothDown),
            (&standby, P::Recovering, P::PrimaryDown, K::BothDown),
            (&drain, P::Healthy, P::Drained, K::Drained),
            (&drain, P::FailedOver, P::Drained, K::Drained),
            (&Input::Release, P::Drained, P::Healthy, K::Released),
            (&Input::Release, P::Drained, P::FailedOver, K::Released),
        ];
        for (input, from, to, want) in table {
            assert_eq!(
                EventKind::of_transition(input, *from, *to),
                *want,
                "{input:?}: {from} -> {to}"
            );
        }
    }

    /// `[[notify]] events` is checked against the configuration's copy of the words (it sits
    /// below this module): the two lists are the same.
    #[test]
    fn the_configuration_knows_every_kind() {
        let words: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(words, crate::config::EVENT_NAMES);
        for w in crate::config::DEFAULT_EVENTS {
            assert!(EventKind::from_word(w).is_some(), "{w}");
        }
    }

    /// The stored word is the serialized one, and no two kinds share it.
    #[test]
    fn the_stored_words_are_the_serialized_ones_and_distinct() {
        let mut seen = std::collections::BTreeSet::new();
        for k in EventKind::ALL {
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                serde_json::Value::from(k.as_str())
            );
            assert!(seen.insert(k.as_str()), "{} twice", k.as_str());
        }
    }
}
