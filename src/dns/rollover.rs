//! When a signed zone's keys change: the key-signing key made once, and zone-signing keys
//! replaced by pre-publication (RFC 6781 §4.1.1.1). Pure: it takes the keys' recorded times
//! and the time now, and says what to do; [`super::keys`] does it.
//!
//! The steps, each taken when due (times in Unix seconds):
//! 1. No KSK, or no ZSK at all: make one, active at once (a new zone).
//! 2. The active ZSK is `zsk_lifetime − prepublish` old and has no successor: make the
//!    successor, published (in the DNSKEY set) but not signing, so resolvers' cached DNSKEY
//!    sets hold it before any signature needs it.
//! 3. The successor has been published for `prepublish` and the active ZSK is
//!    `zsk_lifetime` old: the successor signs from now on, the old one is retired (still
//!    published, since caches may hold its signatures).
//! 4. A retired ZSK has been retired for `retire_wait`: it leaves the DNSKEY set (and its
//!    private key is deleted).
//!
//! `prepublish` is twice the DNSKEY TTL (caches, and secondaries taking the new set by
//! NOTIFY); `retire_wait` is twice the longest TTL in the zone (a signature made by the old key
//! can be cached that long). A ZSK published but not active with no active one beside it (a
//! crash between two steps) becomes active at once.

use serde::{Deserialize, Serialize};

/// What is recorded of one key ([`super::keys`] keeps it as JSON beside the key file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub tag: u16,
    pub ksk: bool,
    /// The DNSSEC algorithm number (13: ECDSAP256SHA256, 15: ED25519).
    pub algorithm: u8,
    /// The private key's file (PKCS#8), beside the record.
    pub file: String,
    pub created: u64,
    /// In the DNSKEY set from.
    pub published: u64,
    /// Signing from.
    pub active: Option<u64>,
    /// Stopped signing at.
    pub retired: Option<u64>,
    /// Out of the DNSKEY set at (its private key deleted).
    pub removed: Option<u64>,
}

impl KeyRecord {
    /// In the DNSKEY set now.
    pub fn published(&self) -> bool {
        self.removed.is_none()
    }

    /// Making signatures now.
    pub fn signing(&self) -> bool {
        self.active.is_some() && self.retired.is_none() && self.removed.is_none()
    }

    fn successor(&self) -> bool {
        !self.ksk && self.active.is_none() && self.removed.is_none()
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub zsk_lifetime: u64,
    pub prepublish: u64,
    pub retire_wait: u64,
}

impl Timing {
    /// The timing for a zone whose DNSKEY TTL and longest TTL are given.
    pub fn new(zsk_lifetime: u64, dnskey_ttl: u32, max_ttl: u32) -> Timing {
        Timing {
            zsk_lifetime,
            prepublish: 2 * u64::from(dnskey_ttl),
            retire_wait: 2 * u64::from(max_ttl.max(dnskey_ttl)),
        }
    }
}

/// One thing to do to a zone's keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyStep {
    NewKsk,
    /// A new ZSK: signing at once, or only published (a successor).
    NewZsk {
        active: bool,
    },
    Activate(u16),
    Retire(u16),
    Remove(u16),
}

/// What is due at `now`.
pub fn plan(keys: &[KeyRecord], now: u64, t: &Timing) -> Vec<KeyStep> {
    let mut steps = vec![];
    if !keys.iter().any(|k| k.ksk && k.signing()) {
        steps.push(KeyStep::NewKsk);
    }
    let active = keys.iter().find(|k| !k.ksk && k.signing());
    let successor = keys.iter().find(|k| k.successor());
    match (active, successor) {
        (None, None) => steps.push(KeyStep::NewZsk { active: true }),
        (None, Some(s)) => steps.push(KeyStep::Activate(s.tag)),
        (Some(a), None) => {
            let age = now.saturating_sub(a.active.unwrap_or(now));
            if age + t.prepublish >= t.zsk_lifetime {
                steps.push(KeyStep::NewZsk { active: false });
            }
        }
        (Some(a), Some(s)) => {
            let age = now.saturating_sub(a.active.unwrap_or(now));
            let shown = now.saturating_sub(s.published);
            if age >= t.zsk_lifetime && shown >= t.prepublish {
                steps.push(KeyStep::Retire(a.tag));
                steps.push(KeyStep::Activate(s.tag));
            }
        }
    }
    for k in keys {
        if let (Some(r), None) = (k.retired, k.removed) {
            if now.saturating_sub(r) >= t.retire_wait {
                steps.push(KeyStep::Remove(k.tag));
            }
        }
    }
    steps
}

/// The next time [`plan`] can have something to do (at most `now + cap`).
pub fn next_due(keys: &[KeyRecord], now: u64, t: &Timing, cap: u64) -> u64 {
    let mut due = now + cap;
    let active = keys.iter().find(|k| !k.ksk && k.signing());
    let successor = keys.iter().find(|k| k.successor());
    if let Some(a) = active {
        let since = a.active.unwrap_or(now);
        match successor {
            None => due = due.min(since + t.zsk_lifetime.saturating_sub(t.prepublish)),
            Some(s) => due = due.min((since + t.zsk_lifetime).max(s.published + t.prepublish)),
        }
    }
    for k in keys {
        if let (Some(r), None) = (k.retired, k.removed) {
            due = due.min(r + t.retire_wait);
        }
    }
    due.max(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(tag: u16, ksk: bool, active: Option<u64>) -> KeyRecord {
        KeyRecord {
            tag,
            ksk,
            algorithm: 13,
            file: format!("{tag}.pk8"),
            created: 0,
            published: 0,
            active,
            retired: None,
            removed: None,
        }
    }

    const T: Timing = Timing {
        zsk_lifetime: 1_000,
        prepublish: 100,
        retire_wait: 300,
    };

    /// Applies `steps` as `keys::apply` would, new keys tagged from 100 up.
    fn apply(keys: &mut Vec<KeyRecord>, steps: &[KeyStep], now: u64) {
        for s in steps {
            match s {
                KeyStep::NewKsk => keys.push(key(100 + keys.len() as u16, true, Some(now))),
                KeyStep::NewZsk { active } => {
                    let mut k = key(100 + keys.len() as u16, false, active.then_some(now));
                    k.published = now;
                    k.created = now;
                    keys.push(k)
                }
                KeyStep::Activate(tag) => {
                    keys.iter_mut().find(|k| k.tag == *tag).unwrap().active = Some(now)
                }
                KeyStep::Retire(tag) => {
                    keys.iter_mut().find(|k| k.tag == *tag).unwrap().retired = Some(now)
                }
                KeyStep::Remove(tag) => {
                    keys.iter_mut().find(|k| k.tag == *tag).unwrap().removed = Some(now)
                }
            }
        }
    }

    #[test]
    fn a_new_zone_gets_a_ksk_and_an_active_zsk() {
        assert_eq!(
            plan(&[], 5, &T),
            [KeyStep::NewKsk, KeyStep::NewZsk { active: true }]
        );
        assert_eq!(
            plan(&[key(1, true, Some(0))], 5, &T),
            [KeyStep::NewZsk { active: true }]
        );
    }

    #[test]
    fn a_zsk_is_prepublished_then_used_then_withdrawn() {
        let mut keys = vec![key(1, true, Some(0)), key(2, false, Some(0))];
        // Before lifetime − prepublish: nothing.
        assert!(plan(&keys, 899, &T).is_empty());
        assert_eq!(next_due(&keys, 0, &T, 10_000), 900);
        assert_eq!(plan(&keys, 900, &T), [KeyStep::NewZsk { active: false }]);
        apply(&mut keys, &[KeyStep::NewZsk { active: false }], 900);
        let new = keys[2].tag;
        // Published, not signing; the old one still signs until its lifetime is over.
        assert!(keys[2].published() && !keys[2].signing() && keys[1].signing());
        assert!(plan(&keys, 999, &T).is_empty());
        assert_eq!(next_due(&keys, 900, &T, 10_000), 1_000);
        assert_eq!(
            plan(&keys, 1_000, &T),
            [KeyStep::Retire(2), KeyStep::Activate(new)]
        );
        let steps = plan(&keys, 1_000, &T);
        apply(&mut keys, &steps, 1_000);
        assert!(keys[2].signing() && !keys[1].signing() && keys[1].published());
        assert!(plan(&keys, 1_299, &T).is_empty());
        assert_eq!(next_due(&keys, 1_000, &T, 10_000), 1_300);
        assert_eq!(plan(&keys, 1_300, &T), [KeyStep::Remove(2)]);
        apply(&mut keys, &[KeyStep::Remove(2)], 1_300);
        assert!(!keys[1].published());
        // And the next round starts from the new key's activation.
        assert_eq!(next_due(&keys, 1_300, &T, 10_000), 1_900);
    }

    #[test]
    fn a_successor_published_late_waits_its_prepublication() {
        let mut keys = vec![key(1, true, Some(0)), key(2, false, Some(0))];
        // The daemon was down through the whole pre-publication window.
        let steps = plan(&keys, 5_000, &T);
        apply(&mut keys, &steps, 5_000);
        assert_eq!(keys.len(), 3);
        assert!(
            plan(&keys, 5_099, &T).is_empty(),
            "not before it was shown for prepublish"
        );
        assert_eq!(plan(&keys, 5_100, &T).len(), 2);
    }

    #[test]
    fn a_crash_between_retire_and_activate_recovers() {
        let mut keys = vec![
            key(1, true, Some(0)),
            key(2, false, Some(0)),
            key(3, false, None),
        ];
        keys[1].retired = Some(10);
        assert_eq!(plan(&keys, 11, &T), [KeyStep::Activate(3)]);
    }

    #[test]
    fn timing_follows_the_ttls() {
        let t = Timing::new(86_400, 30, 3_600);
        assert_eq!((t.prepublish, t.retire_wait), (60, 7_200));
    }
}
