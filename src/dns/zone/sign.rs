//! DNSSEC online signing of one zone (RFC 4033–4035). Pure: it takes the zone, the keys and the
//! time, and adds the DNSSEC records; the keys' files and their rollover live in
//! [`crate::dns::keys`], the wiring in [`crate::dns::builtin`].
//!
//! What a signed zone holds, beside its own records:
//! - **DNSKEY** at the apex: every published key (the KSK, flags 257; the ZSKs, flags 256,
//!   including one pre-published before use and one retired but still published);
//! - **CDS and CDNSKEY** at the apex for the KSK (RFC 7344, SHA-256), so the parent's DS can
//!   follow it;
//! - an **NSEC** chain (RFC 4034 §4) through every name with authoritative data and every
//!   delegation point, in canonical order (RFC 4034 §6.1), the last pointing back at the apex;
//!   each lists the types at its name plus RRSIG and NSEC; TTL the smaller of the SOA's TTL and
//!   its MINIMUM (RFC 9077). Empty non-terminals and glue own none;
//! - an **RRSIG** over every authoritative RRset: the DNSKEY, CDS and CDNSKEY sets by the KSK,
//!   every other set by the signing ZSK. At a delegation point only DS and NSEC are signed, and
//!   nothing below one (glue is not authoritative). A wildcard's signature counts its labels
//!   without the `*` (RFC 4034 §3.1.3).
//!
//! Signatures are valid from an hour before they are made (clocks drift) until
//! `signature_lifetime` after that; one is reused while its RRset (records and TTL) and its
//! key are unchanged and it is younger than `resign_after`, so a change re-signs only the
//! RRsets it touched (and the SOA, whose serial moved) and signatures never churn without a
//! reason. The SOA is signed last, once its serial is known ([`Part`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use hickory_proto::dnssec::rdata::sig::SigInput;
use hickory_proto::dnssec::rdata::{DNSSECRData, CDNSKEY, CDS, DNSKEY, NSEC, RRSIG};
use hickory_proto::dnssec::{DigestType, PublicKey, SigningKey, TBS};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType, SerialNumber};

use super::Zone;

/// One key of a zone, as the signer uses it.
#[derive(Clone)]
pub struct ZoneKey {
    /// The public key record as published (flags 257 for the KSK, 256 for a ZSK).
    pub dnskey: DNSKEY,
    pub tag: u16,
    /// Signs the DNSKEY, CDS and CDNSKEY sets (and is announced by CDS/CDNSKEY).
    pub ksk: bool,
    /// Makes signatures now; a key that does not is only published (before its use, or
    /// after it while caches may still hold its signatures).
    pub active: bool,
    pub signer: Arc<dyn SigningKey>,
}

/// The timing rules of a zone's signatures.
#[derive(Clone, Copy, Debug)]
pub struct SigningPolicy {
    pub signature_lifetime: u32,
    pub resign_after: u32,
    pub dnskey_ttl: u32,
}

/// How long before it is made a signature is valid from (clock drift between servers).
pub const INCEPTION_SKEW: u32 = 3_600;

type CacheKey = (LowerName, RecordType, u16, u32, Vec<RData>);

/// Signatures made earlier (see the module doc); the signer keeps one per zone.
#[derive(Default, Clone)]
pub struct Signatures(BTreeMap<CacheKey, Record>);

impl Signatures {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Which RRsets a signing pass covers: the SOA's signature needs the serial, and the serial
/// needs everything else's content first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The DNSKEY/CDS/CDNSKEY sets, the NSEC chain, and every RRset's signature but the SOA's.
    AllButSoa,
    /// The SOA's signature alone.
    Soa,
}

/// Why a zone could not be signed (it is then not published: nothing half-signed is served).
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("zone {zone} has no active {role} key")]
    NoKey { zone: String, role: &'static str },
    #[error("signing {name} {rtype} in zone {zone}: {why}")]
    Failed {
        zone: String,
        name: String,
        rtype: RecordType,
        why: String,
    },
}

impl Zone {
    /// Signs this zone (see the module doc) at `now` (Unix seconds); `cache` holds the
    /// signatures of earlier passes and is left holding this pass's.
    pub fn sign(
        &mut self,
        keys: &[ZoneKey],
        now: u32,
        policy: &SigningPolicy,
        cache: &mut Signatures,
        part: Part,
    ) -> Result<(), SignError> {
        let zone = self.origin.to_string();
        let ksk = keys.iter().find(|k| k.ksk && k.active);
        let zsk = keys.iter().find(|k| !k.ksk && k.active);
        let (Some(ksk), Some(zsk)) = (ksk, zsk) else {
            let role = if ksk.is_none() {
                "key-signing"
            } else {
                "zone-signing"
            };
            return Err(SignError::NoKey { zone, role });
        };
        if part == Part::AllButSoa {
            self.add_key_sets(keys, policy)?;
            self.add_nsec_chain();
        }
        let mut kept = Signatures::default();
        let mut signatures: Vec<Record> = vec![];
        let sets: Vec<(LowerName, RecordType)> = self
            .records
            .keys()
            .filter(|(n, t)| {
                *t != RecordType::RRSIG
                    && (part == Part::Soa) == (*t == RecordType::SOA)
                    && self.authoritative(n, *t)
            })
            .cloned()
            .collect();
        for (name, rtype) in sets {
            let key = match rtype {
                RecordType::DNSKEY | RecordType::CDS | RecordType::CDNSKEY => ksk,
                _ => zsk,
            };
            let rrset = &self.records[&(name.clone(), rtype)];
            let sig = self.signature(&name, rtype, rrset, key, now, policy, cache)?;
            let ckey = cache_key(&name, rtype, key.tag, rrset);
            kept.0.insert(ckey, sig.clone());
            signatures.push(sig);
        }
        // Drop this part's old signatures, then add the new ones.
        let covers_soa = |r: &Record| match &r.data {
            RData::DNSSEC(DNSSECRData::RRSIG(s)) => s.input().type_covered == RecordType::SOA,
            _ => false,
        };
        for ((_, t), set) in self.records.iter_mut() {
            if *t == RecordType::RRSIG {
                set.retain(|r| (part == Part::Soa) != covers_soa(r));
            }
        }
        self.records.retain(|_, set| !set.is_empty());
        for s in signatures {
            self.insert(s);
        }
        // The cache keeps what this pass used, plus the other part's entries.
        cache
            .0
            .retain(|(_, t, ..), _| (part == Part::Soa) != (*t == RecordType::SOA));
        cache.0.extend(kept.0);
        Ok(())
    }

    /// Whether the RRset (name, type) is this zone's to sign: not below a delegation point,
    /// and at one only DS and NSEC.
    fn authoritative(&self, name: &LowerName, rtype: RecordType) -> bool {
        if self.cuts.is_empty() {
            return true;
        }
        let mut n = name.clone();
        let mut at_cut = false;
        while n != self.origin && self.origin.zone_of(&n) {
            if self.cuts.contains(&n) {
                if n != *name {
                    return false;
                }
                at_cut = true;
            }
            n = n.base_name();
        }
        !at_cut || matches!(rtype, RecordType::DS | RecordType::NSEC)
    }

    /// The DNSKEY set and, for the KSK, CDS and CDNSKEY.
    fn add_key_sets(&mut self, keys: &[ZoneKey], policy: &SigningPolicy) -> Result<(), SignError> {
        let apex = Name::from(self.origin.clone());
        for t in [RecordType::DNSKEY, RecordType::CDS, RecordType::CDNSKEY] {
            self.records.remove(&(self.origin.clone(), t));
        }
        for k in keys {
            let record = |data| Record::from_rdata(apex.clone(), policy.dnskey_ttl, data);
            self.insert(record(RData::DNSSEC(DNSSECRData::DNSKEY(k.dnskey.clone()))));
            if !k.ksk {
                continue;
            }
            let digest =
                k.dnskey
                    .to_digest(&apex, DigestType::SHA256)
                    .map_err(|e| SignError::Failed {
                        zone: apex.to_string(),
                        name: apex.to_string(),
                        rtype: RecordType::CDS,
                        why: e.to_string(),
                    })?;
            let alg = k.dnskey.public_key().algorithm();
            self.insert(record(RData::DNSSEC(DNSSECRData::CDS(CDS::new(
                k.tag,
                Some(alg),
                DigestType::SHA256,
                digest.as_ref().to_vec(),
            )))));
            self.insert(record(RData::DNSSEC(DNSSECRData::CDNSKEY(
                CDNSKEY::with_flags(
                    k.dnskey.flags(),
                    Some(alg),
                    k.dnskey.public_key().public_bytes().to_vec(),
                ),
            ))));
        }
        Ok(())
    }

    /// The NSEC chain through every name with authoritative data and every delegation point.
    fn add_nsec_chain(&mut self) {
        self.records.retain(|(_, t), _| *t != RecordType::NSEC);
        let mut owners: BTreeMap<LowerName, Vec<RecordType>> = BTreeMap::new();
        for (name, t) in self.records.keys() {
            // At a delegation point only NS and DS are listed (glue there is not ours).
            let counts = match self.cuts.contains(name) {
                true => matches!(t, RecordType::NS | RecordType::DS),
                false => self.authoritative(name, *t),
            };
            if counts && *t != RecordType::RRSIG {
                owners.entry(name.clone()).or_default().push(*t);
            }
        }
        let ttl = match &self.soa.data {
            RData::SOA(s) => self.soa.ttl.min(s.minimum),
            _ => self.soa.ttl,
        };
        let names: Vec<&LowerName> = owners.keys().collect();
        let mut chain = vec![];
        for (i, name) in names.iter().enumerate() {
            let next = names.get(i + 1).copied().unwrap_or(&self.origin);
            let types = owners[*name].iter().copied();
            chain.push(Record::from_rdata(
                Name::from((*name).clone()),
                ttl,
                RData::DNSSEC(DNSSECRData::NSEC(NSEC::new_cover_self(
                    Name::from(next.clone()),
                    types,
                ))),
            ));
        }
        for r in chain {
            self.insert(r);
        }
    }

    /// The signature of one RRset: the cached one while it holds, else a new one.
    #[allow(
        clippy::too_many_arguments,
        reason = "one RRset's signature needs each of these; a struct would only rename them"
    )]
    fn signature(
        &self,
        name: &LowerName,
        rtype: RecordType,
        rrset: &[Record],
        key: &ZoneKey,
        now: u32,
        policy: &SigningPolicy,
        cache: &Signatures,
    ) -> Result<Record, SignError> {
        if let Some(sig) = cache.0.get(&cache_key(name, rtype, key.tag, rrset)) {
            if let RData::DNSSEC(DNSSECRData::RRSIG(s)) = &sig.data {
                let made = s.input().sig_inception.get().wrapping_add(INCEPTION_SKEW);
                if now.wrapping_sub(made) < policy.resign_after {
                    return Ok(sig.clone());
                }
            }
        }
        let owner = rrset
            .first()
            .map(|r| r.name.clone())
            .unwrap_or_else(|| Name::from(name.clone()));
        let ttl = rrset.iter().map(|r| r.ttl).min().unwrap_or(0);
        let inception = now.wrapping_sub(INCEPTION_SKEW);
        let input = SigInput {
            type_covered: rtype,
            algorithm: key.dnskey.public_key().algorithm(),
            num_labels: owner.num_labels(),
            original_ttl: ttl,
            sig_expiration: SerialNumber::new(inception.wrapping_add(policy.signature_lifetime)),
            sig_inception: SerialNumber::new(inception),
            key_tag: key.tag,
            signer_name: Name::from(self.origin.clone()),
        };
        let fail = |why: String| SignError::Failed {
            zone: self.origin.to_string(),
            name: owner.to_string(),
            rtype,
            why,
        };
        let with_ttl: Vec<Record> = rrset
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.ttl = ttl;
                r
            })
            .collect();
        let tbs = TBS::from_input(&owner, DNSClass::IN, &input, with_ttl.iter())
            .map_err(|e| fail(e.to_string()))?;
        let sig = key.signer.sign(&tbs).map_err(|e| fail(e.to_string()))?;
        Ok(Record::from_rdata(
            owner.clone(),
            ttl,
            RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, sig))),
        ))
    }
}

fn cache_key(name: &LowerName, rtype: RecordType, tag: u16, rrset: &[Record]) -> CacheKey {
    let mut data: Vec<RData> = rrset.iter().map(|r| r.data.clone()).collect();
    data.sort();
    let ttl = rrset.iter().map(|r| r.ttl).min().unwrap_or(0);
    (name.clone(), rtype, tag, ttl, data)
}
