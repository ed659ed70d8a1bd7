//! A signed zone's keys on disk, and their rollover carried out ([`super::rollover`] decides).
//!
//! Layout, per zone: `<data_dir>/dnssec/<zone>/keys.json` (one [`KeyRecord`] per key ever
//! made, with its times) and one private key per key, `<tag>-<ksk|zsk>-<created>.pk8`
//! (PKCS#8, mode 0600). Every file is written aside, synced and renamed, the key file before
//! the record that names it, so a crash leaves either the old state or the new one (at worst
//! an unreferenced key file). A key's private file is deleted when the key leaves the DNSKEY
//! set.
//!
//! A zone whose keys cannot be read is not signed and not served (the daemon does not start):
//! serving it unsigned would break validation for every resolver that has its DS.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use hickory_proto::dnssec::crypto::{EcdsaSigningKey, Ed25519SigningKey};
use hickory_proto::dnssec::rdata::{DNSKEY, DS};
use hickory_proto::dnssec::{Algorithm, DigestType, PublicKey, SigningKey};
use hickory_proto::rr::Name;
use rustls::pki_types::PrivatePkcs8KeyDer;

use super::rollover::{KeyRecord, KeyStep};
use super::zone::sign::ZoneKey;
use crate::config::DnssecAlgorithm;

/// One zone's keys.
pub struct ZoneKeys {
    dir: PathBuf,
    zone: Name,
    algorithm: DnssecAlgorithm,
    records: Vec<KeyRecord>,
}

fn number(a: DnssecAlgorithm) -> Algorithm {
    match a {
        DnssecAlgorithm::EcdsaP256 => Algorithm::ECDSAP256SHA256,
        DnssecAlgorithm::Ed25519 => Algorithm::ED25519,
    }
}

/// The directory of `zone`'s keys under `data_dir`.
pub fn dir(data_dir: &Path, zone: &Name) -> PathBuf {
    let name = zone.to_ascii().trim_end_matches('.').to_ascii_lowercase();
    data_dir
        .join("dnssec")
        .join(if name.is_empty() { "root".into() } else { name })
}

impl ZoneKeys {
    /// Reads `zone`'s keys (none yet is fine: [`ZoneKeys::apply`] makes them).
    pub fn load(data_dir: &Path, zone: &Name, algorithm: DnssecAlgorithm) -> anyhow::Result<Self> {
        let dir = dir(data_dir, zone);
        let path = dir.join("keys.json");
        let records: Vec<KeyRecord> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!("{} is damaged; the zone's keys cannot be read (restore it from a backup of the data directory)", path.display())
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let keys = ZoneKeys {
            dir,
            zone: zone.clone(),
            algorithm,
            records,
        };
        let want = u8::from(number(algorithm));
        if let Some(k) = keys
            .records
            .iter()
            .find(|k| k.published() && k.algorithm != want)
        {
            bail!(
                "zone {zone} is signed with algorithm {} (key {}), and the configuration asks for {}; understudy does not roll algorithms: set algorithm back, or remove {} to start over with new keys (then give the parent the new DS)",
                k.algorithm,
                k.tag,
                algorithm.as_str(),
                keys.dir.display()
            );
        }
        // Every published key's private file must be there.
        keys.zone_keys()?;
        Ok(keys)
    }

    pub fn records(&self) -> &[KeyRecord] {
        &self.records
    }

    /// Carries out `steps` at `now` (Unix seconds) and saves the records.
    pub fn apply(&mut self, steps: &[super::rollover::KeyStep], now: u64) -> anyhow::Result<()> {
        if steps.is_empty() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        let mut delete = vec![];
        for step in steps {
            match step {
                KeyStep::NewKsk => self.generate(true, true, now)?,
                KeyStep::NewZsk { active } => self.generate(false, *active, now)?,
                KeyStep::Activate(tag) => self.with(*tag, |k| k.active = Some(now)),
                KeyStep::Retire(tag) => self.with(*tag, |k| k.retired = Some(now)),
                KeyStep::Remove(tag) => {
                    self.with(*tag, |k| k.removed = Some(now));
                    if let Some(k) = self.records.iter().find(|k| k.tag == *tag) {
                        delete.push(self.dir.join(&k.file));
                    }
                }
            }
            tracing::info!(zone = %self.zone, ?step, "DNSSEC key step");
        }
        self.save()?;
        for f in delete {
            let _ = std::fs::remove_file(f);
        }
        Ok(())
    }

    fn with(&mut self, tag: u16, f: impl FnOnce(&mut KeyRecord)) {
        if let Some(k) = self
            .records
            .iter_mut()
            .find(|k| k.tag == tag && k.removed.is_none())
        {
            f(k)
        }
    }

    fn save(&self) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(&self.records)?;
        let path = self.dir.join("keys.json");
        crate::util::write_atomic_mode(&path, &json, 0o600, true)
            .with_context(|| format!("cannot write {}", path.display()))
    }

    fn generate(&mut self, ksk: bool, active: bool, now: u64) -> anyhow::Result<()> {
        let alg = number(self.algorithm);
        // A new key's tag must not be one a published key already has (RFC 4034 B.1).
        for _ in 0..16 {
            let der = match self.algorithm {
                DnssecAlgorithm::EcdsaP256 => EcdsaSigningKey::generate_pkcs8(alg),
                DnssecAlgorithm::Ed25519 => Ed25519SigningKey::generate_pkcs8(),
            }
            .map_err(|e| anyhow::anyhow!("cannot make a DNSSEC key: {e}"))?;
            let signer = self.signer(der.secret_pkcs8_der())?;
            let dnskey = dnskey(signer.as_ref(), ksk)?;
            let tag = dnskey
                .calculate_key_tag()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if self.records.iter().any(|k| k.tag == tag && k.published()) {
                continue;
            }
            let file = format!("{tag}-{}-{now}.pk8", if ksk { "ksk" } else { "zsk" });
            crate::util::write_atomic_mode(
                &self.dir.join(&file),
                der.secret_pkcs8_der(),
                0o600,
                true,
            )
            .with_context(|| format!("cannot write {}", self.dir.join(&file).display()))?;
            if ksk {
                tracing::warn!(zone = %self.zone, tag, "made a new key-signing key: give the zone's parent its DS record (`understudy dns ds`), or let it follow the CDS record");
            }
            self.records.push(KeyRecord {
                tag,
                ksk,
                algorithm: u8::from(alg),
                file,
                created: now,
                published: now,
                active: active.then_some(now),
                retired: None,
                removed: None,
            });
            return Ok(());
        }
        bail!(
            "cannot make a DNSSEC key with a tag of its own for zone {}",
            self.zone
        )
    }

    fn signer(&self, der: &[u8]) -> anyhow::Result<Arc<dyn SigningKey>> {
        let der = PrivatePkcs8KeyDer::from(der.to_vec());
        let alg = number(self.algorithm);
        Ok(match self.algorithm {
            DnssecAlgorithm::EcdsaP256 => Arc::new(
                EcdsaSigningKey::from_pkcs8(&der, alg).map_err(|e| anyhow::anyhow!("{e}"))?,
            ),
            DnssecAlgorithm::Ed25519 => {
                Arc::new(Ed25519SigningKey::from_pkcs8(&der).map_err(|e| anyhow::anyhow!("{e}"))?)
            }
        })
    }

    /// The published keys, their private halves loaded, for the signer.
    pub fn zone_keys(&self) -> anyhow::Result<Vec<ZoneKey>> {
        let mut out = vec![];
        for k in self.records.iter().filter(|k| k.published()) {
            let path = self.dir.join(&k.file);
            let der = std::fs::read(&path).with_context(|| {
                format!("cannot read the private key of key {} of zone {} ({}); it is in keys.json, so the zone cannot be signed without it (restore it from a backup)", k.tag, self.zone, path.display())
            })?;
            let signer = self
                .signer(&der)
                .with_context(|| format!("{} is not a usable key", path.display()))?;
            let dnskey = dnskey(signer.as_ref(), k.ksk)?;
            out.push(ZoneKey {
                tag: k.tag,
                ksk: k.ksk,
                active: k.signing(),
                dnskey,
                signer,
            });
        }
        Ok(out)
    }

    /// The DS records (SHA-256) the parent zone should hold for the published KSKs, in
    /// zone-file form.
    pub fn ds(&self) -> anyhow::Result<Vec<String>> {
        let mut out = vec![];
        for k in self.zone_keys()?.iter().filter(|k| k.ksk) {
            let digest = k
                .dnskey
                .to_digest(&self.zone, DigestType::SHA256)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let ds = DS::new(
                k.tag,
                k.dnskey.public_key().algorithm(),
                DigestType::SHA256,
                digest.as_ref().to_vec(),
            );
            out.push(format!("{} IN DS {ds}", self.zone));
        }
        Ok(out)
    }
}

fn dnskey(signer: &dyn SigningKey, ksk: bool) -> anyhow::Result<DNSKEY> {
    let public = signer.to_public_key().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(DNSKEY::with_flags(if ksk { 257 } else { 256 }, public))
}

/// One signed zone as the daemon keeps it: its keys, their timing, its signing policy.
pub struct SignedZone {
    pub keys: ZoneKeys,
    pub timing: super::rollover::Timing,
    pub policy: super::zone::sign::SigningPolicy,
}

impl SignedZone {
    /// Loads `zone`'s keys (making the first ones for a new zone) and hands them to `builtin`.
    pub fn start(
        data_dir: &Path,
        zone: &crate::config::ZoneConfig,
        dns_ttl: u32,
        builtin: &super::builtin::Builtin,
        now: u64,
    ) -> anyhow::Result<Option<SignedZone>> {
        let Some(d) = &zone.dnssec else {
            return Ok(None);
        };
        let mut keys = ZoneKeys::load(data_dir, &zone.origin, d.algorithm)?;
        let max_ttl = zone
            .records
            .iter()
            .map(|r| r.ttl)
            .chain([3_600, dns_ttl.max(60)])
            .max()
            .unwrap_or(3_600);
        let timing = super::rollover::Timing::new(d.zsk_lifetime.as_secs(), dns_ttl, max_ttl);
        let policy = super::zone::sign::SigningPolicy {
            signature_lifetime: d.signature_lifetime.as_secs() as u32,
            resign_after: d.resign_after.as_secs() as u32,
            dnskey_ttl: dns_ttl,
        };
        keys.apply(&super::rollover::plan(keys.records(), now, &timing), now)?;
        builtin.set_keys(&zone.origin, keys.zone_keys()?, policy);
        Ok(Some(SignedZone {
            keys,
            timing,
            policy,
        }))
    }
}

/// Keeps the signed zones' keys and signatures current until shutdown: every minute (or at a
/// rollover step, when sooner) takes the steps due and publishes the zones again, which
/// re-signs what has come due.
pub async fn maintain(
    mut zones: Vec<SignedZone>,
    builtin: Arc<super::builtin::Builtin>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    if zones.is_empty() {
        return;
    }
    loop {
        let now = crate::util::now_millis() / 1_000;
        for z in zones.iter_mut() {
            let steps = super::rollover::plan(z.keys.records(), now, &z.timing);
            if steps.is_empty() {
                continue;
            }
            let applied = z.keys.apply(&steps, now).and_then(|_| z.keys.zone_keys());
            match applied {
                Ok(keys) => builtin.set_keys(&z.keys.zone, keys, z.policy),
                Err(e) => {
                    tracing::error!(zone = %z.keys.zone, "DNSSEC key rollover step failed, keeping the current keys: {e:#}")
                }
            }
        }
        if let Err(e) = builtin.republish() {
            tracing::error!("cannot publish the signed zones again: {e}");
        }
        let due = zones
            .iter()
            .map(|z| super::rollover::next_due(z.keys.records(), now, &z.timing, 60))
            .min()
            .unwrap_or(now + 60);
        let wait = std::time::Duration::from_secs(due.saturating_sub(now).max(1));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
