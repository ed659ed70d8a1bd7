//! The built-in authoritative server as a [`Provider`], so it is fed by the same reconciler as
//! every external one (one path from the decision to any DNS).
//!
//! It holds the managed records of the zones it serves; `apply` replaces RRsets in that map and
//! swaps in freshly built zones (static records + managed ones, serial from the store, which
//! moves only when the content does). It cannot be unreachable, so every change is `Applied`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use hickory_proto::rr::Name;

use super::{Key, Outcome, Provider, ProviderError, RrSet};
use crate::config::Zone as ZoneConfig;
use crate::dns::server::ZoneHandle;
use crate::dns::zone::{Zone, ZoneSet};
use crate::dns::ManagedRecords;
use crate::store::Store;

pub struct Builtin {
    zones: Vec<ZoneConfig>,
    ttl: u32,
    handle: ZoneHandle,
    inner: Mutex<(ManagedRecords, Store)>,
    /// ACME DNS-01 challenge TXT records, owned by [`crate::acme`] (nothing else writes them).
    challenges: Mutex<BTreeMap<Name, Vec<String>>>,
}

impl Builtin {
    /// `zones` are the configured zones without an external provider; `data_dir` holds the
    /// serials (a second connection to the state database).
    pub fn new(
        zones: Vec<ZoneConfig>,
        ttl: u32,
        handle: ZoneHandle,
        data_dir: &Path,
    ) -> Result<Self, crate::store::StoreError> {
        Ok(Builtin {
            zones,
            ttl,
            handle,
            inner: Mutex::new((ManagedRecords::default(), Store::open(data_dir)?)),
            challenges: Mutex::new(BTreeMap::new()),
        })
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
            let mut zone = Zone::build(z, &inner.0, self.ttl, 0);
            for (name, values) in &challenges {
                // Short TTL: a challenge lives for one order.
                zone.add_txt(name, values, 10);
            }
            let serial = inner
                .1
                .serial_for(&z.origin.to_string(), &zone.content(), now)
                .map_err(|e| ProviderError::Rejected(e.to_string()))?;
            zone.set_serial(serial);
            set.zones.push(zone);
        }
        self.handle.replace(set);
        Ok(())
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
