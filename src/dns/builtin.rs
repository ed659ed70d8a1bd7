//! The built-in zones' publisher: what the built-in authoritative server ([`super::server`])
//! answers.
//!
//! No reconciler drives it. The controller, the one owner of records, calls
//! [`Builtin::publish_all`] itself right after each decision, so a built-in answer has changed
//! by the time a command returns, and at start before any listener answers. It holds the
//! managed records of the zones it serves; each change swaps in freshly built zones (static
//! records + managed ones, serial from the store, which moves only when the content does).
//!
//! It also implements [`Provider`], the contract every DNS behind understudy keeps, so ACME's
//! DNS-01 challenges ([`crate::standby::acme::ChallengeZones`]) and the propagation benchmark
//! treat it like an external provider. It cannot be unreachable, so every change is `Applied`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use hickory_proto::rr::Name;

use super::provider::{Key, Outcome, Provider, ProviderError, RrSet};
use crate::config::ZoneConfig;
use crate::dns::server::ZoneHandle;
use crate::dns::zone::sign::{Part, Signatures, SigningPolicy, ZoneKey};
use crate::dns::zone::{decode_records, encode_records, Apex, Journal, Zone, ZoneSet, JOURNAL_LEN};
use crate::dns::ManagedRecords;
use crate::store::Store;

pub struct Builtin {
    zones: Vec<ZoneConfig>,
    ttl: u32,
    handle: ZoneHandle,
    inner: Mutex<(ManagedRecords, Store)>,
    /// Each zone's earlier versions for IXFR, loaded from the store at start.
    journals: Mutex<BTreeMap<Name, Arc<Journal>>>,
    /// ACME DNS-01 challenge TXT records, owned by [`crate::standby::acme`] (nothing else writes them).
    challenges: Mutex<BTreeMap<Name, Vec<String>>>,
    /// Zones held as a secondary of another primary ([`super::replica`]), served as taken.
    replicas: Mutex<BTreeMap<Name, Zone>>,
    /// Signed zones' keys and the signatures made so far ([`Builtin::set_keys`]).
    signers: Mutex<BTreeMap<Name, Signer>>,
}

/// What a signed zone is signed with.
struct Signer {
    keys: Vec<ZoneKey>,
    policy: SigningPolicy,
    signatures: Signatures,
}

impl Builtin {
    /// `zones` are the configured zones without an external provider; `store` keeps their
    /// serials.
    pub fn new(zones: Vec<ZoneConfig>, ttl: u32, handle: ZoneHandle, store: Store) -> Self {
        let journals = zones
            .iter()
            .map(|z| {
                let mut j = Journal::default();
                for (serial, wire) in store
                    .zone_versions(&z.origin.to_string())
                    .unwrap_or_default()
                {
                    match decode_records(&wire) {
                        Some(records) => j.push(serial, Arc::new(records)),
                        None => tracing::warn!(zone = %z.origin, serial, "a kept zone version does not decode; IXFR from it falls back to AXFR"),
                    }
                }
                (z.origin.clone(), Arc::new(j))
            })
            .collect();
        Builtin {
            zones,
            ttl,
            handle,
            inner: Mutex::new((ManagedRecords::default(), store)),
            journals: Mutex::new(journals),
            challenges: Mutex::new(BTreeMap::new()),
            replicas: Mutex::new(BTreeMap::new()),
            signers: Mutex::new(BTreeMap::new()),
        }
    }

    /// The keys `origin` (a zone with `[dns.zones.dnssec]`) is signed with from the next
    /// publication on; until a zone has them it is not published at all, never unsigned.
    pub fn set_keys(&self, origin: &Name, keys: Vec<ZoneKey>, policy: SigningPolicy) {
        let mut signers = self.signers.lock().unwrap_or_else(|e| e.into_inner());
        match signers.get_mut(origin) {
            Some(s) => {
                s.keys = keys;
                s.policy = policy;
            }
            None => {
                signers.insert(
                    origin.clone(),
                    Signer {
                        keys,
                        policy,
                        signatures: Signatures::default(),
                    },
                );
            }
        }
    }

    /// Builds and publishes the zones again with the records held (signatures come due, keys
    /// change); the serial moves only if the content did.
    pub fn republish(&self) -> Result<(), ProviderError> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        self.rebuild(&mut inner)
    }

    /// Publishes `managed` (the parts inside our zones) at once; used at start, before any
    /// listener answers, so the first answer is already the right one.
    pub fn publish_all(&self, managed: &ManagedRecords) -> Result<(), ProviderError> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.0 = ManagedRecords(
            managed
                .0
                .iter()
                .filter(|((n, _), _)| self.zones.iter().any(|z| z.origin.zone_of(n)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        );
        self.rebuild(&mut inner)
    }

    /// Serves `zone`, taken from its primary, in place of the version served before.
    pub fn set_replica(&self, zone: Zone) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        self.replicas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(zone.origin.clone().into(), zone);
        self.rebuild_or_log(&mut inner);
    }

    /// Stops serving a zone held as a secondary (it expired).
    pub fn drop_replica(&self, origin: &Name) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        self.replicas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(origin);
        self.rebuild_or_log(&mut inner);
    }

    fn rebuild_or_log(&self, inner: &mut (ManagedRecords, Store)) {
        if let Err(e) = self.rebuild(inner) {
            tracing::warn!("cannot publish the built-in zones: {e}");
        }
    }

    /// Whether `name` falls in a zone this server holds.
    pub fn serves(&self, name: &Name) -> bool {
        self.zones.iter().any(|z| z.origin.zone_of(name))
    }

    /// Publishes (or with no values removes) the TXT records of an ACME challenge name, at once.
    pub fn set_challenge(&self, name: &Name, values: &[String]) -> Result<(), ProviderError> {
        if !self.serves(name) {
            return Err(ProviderError::ZoneNotFound(format!(
                "{name} is in no zone of the built-in server"
            )));
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        {
            let mut ch = self.challenges.lock().unwrap_or_else(|e| e.into_inner());
            match values.is_empty() {
                true => ch.remove(name),
                false => ch.insert(name.clone(), values.to_vec()),
            };
        }
        self.rebuild(&mut inner)
    }

    fn rebuild(&self, inner: &mut (ManagedRecords, Store)) -> Result<(), ProviderError> {
        let now = crate::util::now_millis() / 1_000;
        let mut set = ZoneSet::default();
        let challenges = self
            .challenges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for z in &self.zones {
            let apex = Apex {
                origin: &z.origin,
                nameservers: &z.nameservers,
                hostmaster: &z.hostmaster,
            };
            let mut zone = Zone::build(&apex, &z.records, &inner.0, self.ttl, 0);
            for (name, values) in &challenges {
                // Short TTL: a challenge lives for one order.
                zone.add_txt(name, values, 10);
            }
            let mut signers = self.signers.lock().unwrap_or_else(|e| e.into_inner());
            let mut signer = match z.dnssec {
                None => None,
                Some(_) => match signers.get_mut(&z.origin) {
                    Some(s) => Some(s),
                    None => {
                        return Err(ProviderError::Rejected(format!(
                            "zone {} is to be signed and its keys are not loaded; it is not published unsigned",
                            z.origin
                        )))
                    }
                },
            };
            let unsigned = |e: super::zone::sign::SignError| {
                ProviderError::Rejected(format!("{e}; the zone is not published half-signed"))
            };
            if let Some(s) = signer.as_deref_mut() {
                zone.sign(
                    &s.keys,
                    now as u32,
                    &s.policy,
                    &mut s.signatures,
                    Part::AllButSoa,
                )
                .map_err(unsigned)?;
            }
            // The content (signatures included, the SOA's aside) decides the serial.
            let serial = inner
                .1
                .serial_for(&z.origin.to_string(), &zone.content(), now)
                .map_err(|e| ProviderError::Rejected(e.to_string()))?;
            zone.set_serial(serial);
            if let Some(s) = signer {
                zone.sign(&s.keys, now as u32, &s.policy, &mut s.signatures, Part::Soa)
                    .map_err(unsigned)?;
            }
            zone.journal = self.journal(&inner.1, &zone);
            set.zones.push(zone);
        }
        set.zones.extend(
            self.replicas
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .cloned(),
        );
        set.published_ms = crate::util::now_millis();
        self.handle.replace(set);
        Ok(())
    }
}

impl Builtin {
    /// The zone's journal, with `zone`'s version added (and kept in the store) when its serial
    /// is new. A version the store cannot keep is still served; IXFR from it after a restart
    /// falls back to AXFR.
    fn journal(&self, store: &Store, zone: &Zone) -> Arc<Journal> {
        let mut journals = self.journals.lock().unwrap_or_else(|e| e.into_inner());
        let origin: Name = zone.origin.clone().into();
        let j = journals.entry(origin.clone()).or_default();
        let serial = zone.serial();
        if j.0.back().map(|(s, _)| *s) != Some(serial) {
            let records = zone.all_records();
            if let Err(e) = store.save_zone_version(
                &origin.to_string(),
                serial,
                &encode_records(&records),
                JOURNAL_LEN,
            ) {
                tracing::warn!(zone = %origin, serial, "cannot keep this zone version for IXFR: {e}");
            }
            Arc::make_mut(j).push(serial, Arc::new(records));
        }
        j.clone()
    }
}

#[async_trait::async_trait]
impl Provider for Builtin {
    fn describe(&self) -> String {
        "the built-in DNS server".to_string()
    }

    async fn read(
        &self,
        _zone: &Name,
        keys: &[Key],
    ) -> Result<BTreeMap<Key, RrSet>, ProviderError> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        Ok(keys
            .iter()
            .filter_map(|k| {
                inner.0 .0.get(k).map(|addrs| {
                    (
                        k.clone(),
                        RrSet::new(k.0.clone(), k.1, self.ttl, addrs.clone()),
                    )
                })
            })
            .collect())
    }

    /// Every managed name of a built-in zone is understudy's own (the config refuses a static
    /// address record at one), so every key counts as marked.
    async fn marked(
        &self,
        _zone: &Name,
        keys: &[Key],
    ) -> Result<std::collections::BTreeSet<Key>, ProviderError> {
        Ok(keys.iter().cloned().collect())
    }

    async fn apply(&self, _zone: &Name, changes: &[RrSet]) -> Result<Vec<Outcome>, ProviderError> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for c in changes {
            inner.0.set(c.name.clone(), c.rtype, c.addrs.clone());
        }
        self.rebuild(&mut inner)?;
        Ok(changes.iter().map(|_| Outcome::Applied).collect())
    }

    async fn set_txt(
        &self,
        _zone: &Name,
        name: &Name,
        values: &[String],
    ) -> Result<(), ProviderError> {
        self.set_challenge(name, values)
    }

    async fn check(&self, zone: &Name) -> Result<String, ProviderError> {
        Ok(format!("{zone} is served by the built-in DNS server"))
    }
}
