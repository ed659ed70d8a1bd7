//! The zones the built-in server answers for, and the answer to one question. Pure: building and
//! looking up do no I/O, so every answer rule is unit-tested here (and compared with BIND's
//! answers to the same questions in `tests/dns_conformance.rs`).
//!
//! Answer rules (RFC 1034 §4.3.2, with wildcards as RFC 4592 defines them):
//! - a name outside every zone → REFUSED (never an open resolver); the deepest zone holding
//!   the name answers;
//! - a name at or below a **delegation** (NS records at a name other than the apex) → a
//!   referral: not authoritative, no answer, the cut's NS records in authority and the
//!   addresses of its nameservers held in the zone (glue) in additional. A DS question at the
//!   cut itself is the parent's to answer, so it is not referred;
//! - records of the asked type at the name → answer (ANY: every set at the name);
//! - a CNAME at the name → the CNAME, followed inside the same zone (at most 8 links);
//! - the name exists with other types, or only has names below it (an empty non-terminal) →
//!   NOERROR, no answer, SOA in authority (NODATA);
//! - the name does not exist: the **wildcard** `*.<closest encloser>` (the deepest existing
//!   ancestor), when it exists, answers as if it were the name (its records with the asked
//!   name as owner; its CNAME followed); otherwise NXDOMAIN with the SOA. A wildcard never
//!   answers for a name that exists, nor below an empty non-terminal that exists, nor below a
//!   delegation.
//!
//! The configuration keeps zones these rules can serve: no CNAME at the apex or beside other
//! data, nothing but glue below a delegation, no wildcard NS (`config::dns`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, NS, SOA, TXT};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};

use super::ManagedRecords;

/// One served zone.
#[derive(Clone, Debug)]
pub struct Zone {
    pub origin: LowerName,
    pub soa: Record,
    records: BTreeMap<(LowerName, RecordType), Vec<Record>>,
    /// Every name that exists, including empty non-terminals (for NODATA vs NXDOMAIN).
    names: BTreeSet<LowerName>,
    /// The delegation points: names below the apex with NS records.
    cuts: BTreeSet<LowerName>,
    /// Its earlier versions, for IXFR (empty until the publisher attaches them).
    pub journal: Arc<Journal>,
}

/// How many earlier versions of each zone IXFR can answer from.
pub const JOURNAL_LEN: usize = 128;

/// Earlier versions of one zone, oldest first, each the records it held (SOA included).
#[derive(Clone, Debug, Default)]
pub struct Journal(pub VecDeque<(u32, Arc<Vec<Record>>)>);

impl Journal {
    /// Adds the version `serial` held, dropping the oldest beyond [`JOURNAL_LEN`].
    pub fn push(&mut self, serial: u32, records: Arc<Vec<Record>>) {
        self.0.retain(|(s, _)| *s != serial);
        self.0.push_back((serial, records));
        while self.0.len() > JOURNAL_LEN {
            self.0.pop_front();
        }
    }

    pub fn version(&self, serial: u32) -> Option<&[Record]> {
        self.0
            .iter()
            .find(|(s, _)| *s == serial)
            .map(|(_, r)| r.as_slice())
    }
}

/// What a zone's SOA and NS records are made of (the caller takes it from the zone's config).
#[derive(Clone, Debug)]
pub struct Apex<'a> {
    pub origin: &'a Name,
    pub nameservers: &'a [Name],
    pub hostmaster: &'a Name,
}

/// All served zones; swapped as a whole.
#[derive(Clone, Debug, Default)]
pub struct ZoneSet {
    pub zones: Vec<Zone>,
    /// When the publisher built it (ms since the epoch; 0 in tests): NOTIFY's latency is
    /// measured from here.
    pub published_ms: u64,
}

/// An answer, before it is put on the wire.
#[derive(Debug, PartialEq)]
pub struct Answer {
    pub rcode: ResponseCode,
    pub authoritative: bool,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    /// Glue: the addresses of a referral's nameservers.
    pub additionals: Vec<Record>,
}

/// What one name gives inside one zone (a step of [`ZoneSet::lookup`]). `wildcard` names the
/// wildcard that answered for a name that does not exist (for its DNSSEC proof).
enum Found {
    Data {
        records: Vec<Record>,
        wildcard: Option<LowerName>,
    },
    Cname {
        record: Box<Record>,
        wildcard: Option<LowerName>,
    },
    NoData {
        wildcard: Option<LowerName>,
    },
    NxDomain {
        closest_encloser: LowerName,
    },
    Referral {
        cut: LowerName,
        ns: Vec<Record>,
        glue: Vec<Record>,
    },
}

impl Zone {
    /// Builds a zone: its SOA and NS records from `apex`, the static `records` as given, and the
    /// managed records that fall inside it. `serial` comes from the store
    /// ([`crate::store::Store::serial_for`], keyed on [`Zone::content`]); build with 0 and
    /// [`Zone::set_serial`] once known.
    pub fn build(
        apex: &Apex,
        records: &[Record],
        managed: &ManagedRecords,
        ttl: u32,
        serial: u32,
    ) -> Zone {
        let origin = apex.origin.clone();
        let mname = apex
            .nameservers
            .first()
            .cloned()
            .unwrap_or_else(|| origin.clone());
        let soa = Record::from_rdata(
            origin.clone(),
            ttl.max(60),
            RData::SOA(SOA::new(
                mname,
                apex.hostmaster.clone(),
                serial,
                3_600,
                600,
                1_209_600,
                ttl,
            )),
        );
        let mut zone = Zone {
            origin: LowerName::new(&origin),
            soa: soa.clone(),
            records: BTreeMap::new(),
            names: BTreeSet::new(),
            cuts: BTreeSet::new(),
            journal: Arc::default(),
        };
        zone.insert(soa);
        for ns in apex.nameservers {
            zone.insert(Record::from_rdata(
                origin.clone(),
                3_600,
                RData::NS(NS(ns.clone())),
            ));
        }
        for r in records {
            zone.insert(r.clone());
        }
        for ((name, rtype), addrs) in &managed.0 {
            if !origin.zone_of(name) {
                continue;
            }
            for ip in addrs {
                let data = match (rtype, ip) {
                    (RecordType::A, IpAddr::V4(v4)) => RData::A(A(*v4)),
                    (RecordType::AAAA, IpAddr::V6(v6)) => RData::AAAA(AAAA(*v6)),
                    _ => continue,
                };
                zone.insert(Record::from_rdata(name.clone(), ttl, data));
            }
        }
        zone
    }

    /// A zone of `records` as a primary sent them ([`super::take`]): the SOA among them is the
    /// zone's; records outside `origin` are left out. `None` without an SOA at the apex.
    pub fn from_records(origin: &Name, records: &[Record]) -> Option<Zone> {
        let apex = LowerName::new(origin);
        let soa = records
            .iter()
            .find(|r| r.record_type() == RecordType::SOA && LowerName::new(&r.name) == apex)?
            .clone();
        let mut zone = Zone {
            origin: apex,
            soa: soa.clone(),
            records: BTreeMap::new(),
            names: BTreeSet::new(),
            cuts: BTreeSet::new(),
            journal: Arc::default(),
        };
        for r in records {
            if r.record_type() != RecordType::SOA && zone.origin.zone_of(&LowerName::new(&r.name)) {
                zone.insert(r.clone());
            }
        }
        zone.insert(soa);
        Some(zone)
    }

    /// Adds a TXT record set inside this zone (ACME DNS-01 challenges); ignored outside it.
    pub fn add_txt(&mut self, name: &Name, values: &[String], ttl: u32) {
        if !self.origin.zone_of(&LowerName::new(name)) {
            return;
        }
        for v in values {
            self.insert(Record::from_rdata(
                name.clone(),
                ttl,
                RData::TXT(TXT::new(vec![v.clone()])),
            ));
        }
    }

    fn insert(&mut self, r: Record) {
        let name = LowerName::new(&r.name);
        // Register the name and every ancestor up to the origin (empty non-terminals exist).
        let mut n = name.clone();
        while self.origin.zone_of(&n) && self.names.insert(n.clone()) && n != self.origin {
            n = n.base_name();
        }
        if r.record_type() == RecordType::NS && name != self.origin {
            self.cuts.insert(name.clone());
        }
        let set = self.records.entry((name, r.record_type())).or_default();
        if !set.iter().any(|x| x.data == r.data) {
            set.push(r);
        }
    }

    /// Everything but the serial, canonical: the store bumps the serial when this changes.
    /// (The SOA is rendered with serial 0, whatever this zone's serial is.)
    pub fn content(&self) -> String {
        let mut out = String::new();
        for ((name, t), rs) in &self.records {
            for r in rs {
                let data = match &r.data {
                    RData::SOA(soa) => {
                        let mut soa = soa.clone();
                        soa.serial = 0;
                        RData::SOA(soa)
                    }
                    other => other.clone(),
                };
                out.push_str(&format!("{name} {} {t} {data}\n", r.ttl));
            }
        }
        out
    }

    /// Sets the SOA serial (the store's answer to [`Zone::content`]).
    pub fn set_serial(&mut self, serial: u32) {
        if let RData::SOA(soa) = &mut self.soa.data {
            soa.serial = serial;
        }
        let key = (self.origin.clone(), RecordType::SOA);
        self.records.insert(key, vec![self.soa.clone()]);
    }

    /// Every record but the SOA, in canonical order (what a transfer sends between two SOAs).
    pub fn records_but_soa(&self) -> impl Iterator<Item = &Record> {
        self.records
            .iter()
            .filter(|((_, t), _)| *t != RecordType::SOA)
            .flat_map(|(_, rs)| rs.iter())
    }

    /// Every record, the SOA first (what the journal keeps of a version).
    pub fn all_records(&self) -> Vec<Record> {
        std::iter::once(&self.soa)
            .chain(self.records_but_soa())
            .cloned()
            .collect()
    }

    pub fn serial(&self) -> u32 {
        match &self.soa.data {
            RData::SOA(soa) => soa.serial,
            _ => 0,
        }
    }
}

impl ZoneSet {
    /// The zone with the longest origin containing `name`.
    fn zone_for(&self, name: &LowerName) -> Option<&Zone> {
        self.zones
            .iter()
            .filter(|z| z.origin.zone_of(name))
            .max_by_key(|z| z.origin.num_labels())
    }

    /// Answers one question; with `dnssec_ok` (the DO bit) and a signed zone, with the
    /// signatures and the NSEC records that prove it ([`proof`]).
    pub fn lookup(&self, qname: &LowerName, qtype: RecordType, dnssec_ok: bool) -> Answer {
        let Some(zone) = self.zone_for(qname) else {
            return Answer {
                rcode: ResponseCode::Refused,
                authoritative: false,
                answers: vec![],
                authorities: vec![],
                additionals: vec![],
            };
        };
        let mut proof = proof::Proof::new(zone, dnssec_ok);
        let mut answers: Vec<Record> = vec![];
        let mut name = qname.clone();
        // Follow CNAMEs inside this zone, at most 8 deep (a loop in static records must not hang).
        for _ in 0..8 {
            match zone.find(&name, qtype) {
                Found::Data { records, wildcard } => {
                    let additionals = match qtype {
                        RecordType::NS => zone.addresses_of(&records),
                        _ => vec![],
                    };
                    proof.answered(&name, &records, wildcard.as_ref());
                    answers.extend(records);
                    return proof.finish(Answer {
                        rcode: ResponseCode::NoError,
                        authoritative: true,
                        answers,
                        authorities: vec![],
                        additionals,
                    });
                }
                Found::Cname { record, wildcard } => {
                    let RData::CNAME(target) = &record.data else {
                        break;
                    };
                    let target = LowerName::new(&target.0);
                    proof.answered(&name, std::slice::from_ref(&record), wildcard.as_ref());
                    answers.push(*record);
                    match self.zone_for(&target) {
                        Some(z) if std::ptr::eq(z, zone) => name = target,
                        // Outside this zone: the resolver follows it.
                        _ => {
                            return proof.finish(zone.answer(
                                ResponseCode::NoError,
                                answers,
                                vec![],
                            ))
                        }
                    }
                }
                Found::Referral { cut, ns, glue } if answers.is_empty() => {
                    proof.referred(&cut);
                    return proof.finish(Answer {
                        rcode: ResponseCode::NoError,
                        authoritative: false,
                        answers,
                        authorities: ns,
                        additionals: glue,
                    });
                }
                // A CNAME into a delegated name: the resolver follows it from there.
                Found::Referral { .. } => {
                    return proof.finish(zone.answer(ResponseCode::NoError, answers, vec![]))
                }
                Found::NoData { wildcard } => {
                    proof.no_data(&name, wildcard.as_ref());
                    break;
                }
                // Also when a chain ends at a name that does not exist: the rcode is the last
                // link's (RFC 6604).
                Found::NxDomain { closest_encloser } => {
                    proof.no_name(&name, &closest_encloser);
                    let soa = vec![zone.negative_soa()];
                    return proof.finish(zone.answer(ResponseCode::NXDomain, answers, soa));
                }
            }
        }
        let soa = vec![zone.negative_soa()];
        proof.finish(zone.answer(ResponseCode::NoError, answers, soa))
    }
}

impl Zone {
    /// An authoritative answer with no additional records.
    fn answer(
        &self,
        rcode: ResponseCode,
        answers: Vec<Record>,
        authorities: Vec<Record>,
    ) -> Answer {
        Answer {
            rcode,
            authoritative: true,
            answers,
            authorities,
            additionals: vec![],
        }
    }

    /// The SOA of a negative answer: its TTL the smaller of the SOA's own and its MINIMUM, how
    /// long a resolver may cache the "no" (RFC 2308 §3).
    fn negative_soa(&self) -> Record {
        let mut soa = self.soa.clone();
        if let RData::SOA(s) = &self.soa.data {
            soa.ttl = soa.ttl.min(s.minimum);
        }
        soa
    }

    /// The addresses this zone holds for the targets of `ns` (RFC 1034 §3.6.2's additional
    /// section processing, which BIND does even with `minimal-responses yes`).
    fn addresses_of(&self, ns: &[Record]) -> Vec<Record> {
        ns.iter()
            .filter_map(|r| match &r.data {
                RData::NS(target) => Some(LowerName::new(&target.0)),
                _ => None,
            })
            .flat_map(|t| [(t.clone(), RecordType::A), (t, RecordType::AAAA)])
            .filter_map(|k| self.records.get(&k))
            .flatten()
            .cloned()
            .collect()
    }

    /// What `name` (inside this zone) gives for `qtype`: the rules of the module doc, one link.
    fn find(&self, name: &LowerName, qtype: RecordType) -> Found {
        if let Some(cut) = self.cut_above(name, qtype) {
            let ns = self
                .records
                .get(&(cut.clone(), RecordType::NS))
                .cloned()
                .unwrap_or_default();
            let glue = self.addresses_of(&ns);
            return Found::Referral { cut, ns, glue };
        }
        if self.names.contains(name) {
            return self.at(name, name, qtype);
        }
        // The closest encloser: the deepest ancestor that exists (the apex always does).
        let mut ce = name.base_name();
        while !self.names.contains(&ce) && ce != self.origin {
            ce = ce.base_name();
        }
        let Some(wild) = wildcard_of(&ce) else {
            return Found::NxDomain {
                closest_encloser: ce,
            };
        };
        match self.names.contains(&wild) {
            true => self.at(&wild, name, qtype),
            false => Found::NxDomain {
                closest_encloser: ce,
            },
        }
    }

    /// The records at `source` (the name, or the wildcard answering for it), owned by `owner`.
    fn at(&self, source: &LowerName, owner: &LowerName, qtype: RecordType) -> Found {
        let rename = |rs: &[Record]| -> Vec<Record> {
            rs.iter()
                .map(|r| {
                    let mut r = r.clone();
                    if source != owner {
                        r.name = Name::from(owner.clone());
                    }
                    r
                })
                .collect()
        };
        let found: Vec<Record> = if qtype == RecordType::ANY {
            self.records
                .range((source.clone(), RecordType::Unknown(0))..)
                .take_while(|((n, _), _)| n == source)
                .flat_map(|(_, rs)| rename(rs))
                .collect()
        } else {
            self.records
                .get(&(source.clone(), qtype))
                .map(|rs| rename(rs))
                .unwrap_or_default()
        };
        let wildcard = (source != owner).then(|| source.clone());
        if !found.is_empty() {
            return Found::Data {
                records: found,
                wildcard,
            };
        }
        match self.records.get(&(source.clone(), RecordType::CNAME)) {
            Some(c) if qtype != RecordType::CNAME && !c.is_empty() => Found::Cname {
                record: Box::new(rename(&c[..1]).remove(0)),
                wildcard,
            },
            _ => Found::NoData { wildcard },
        }
    }

    /// The highest delegation point at or above `name` (a DS question at the cut itself is not
    /// referred: the parent holds DS).
    fn cut_above(&self, name: &LowerName, qtype: RecordType) -> Option<LowerName> {
        if self.cuts.is_empty() {
            return None;
        }
        let mut chain = vec![];
        let mut n = name.clone();
        while n != self.origin && self.origin.zone_of(&n) {
            chain.push(n.clone());
            n = n.base_name();
        }
        chain
            .into_iter()
            .rev()
            .find(|c| self.cuts.contains(c) && !(c == name && qtype == RecordType::DS))
    }
}

/// `*.<name>`: the wildcard whose closest encloser is `name`.
fn wildcard_of(name: &LowerName) -> Option<LowerName> {
    let star = Name::from_ascii("*").ok()?;
    let w = star.append_domain(&Name::from(name.clone())).ok()?;
    Some(LowerName::new(&w))
}

/// Records in wire form, one after another (uncompressed): how the store keeps a version.
pub fn encode_records(records: &[Record]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(records.len() * 48);
    let mut enc = BinEncoder::new(&mut buf);
    for r in records {
        if r.emit(&mut enc).is_err() {
            return vec![];
        }
    }
    buf
}

/// The records [`encode_records`] wrote; `None` when they do not decode.
pub fn decode_records(wire: &[u8]) -> Option<Vec<Record>> {
    let mut dec = BinDecoder::new(wire);
    let mut out = vec![];
    while !dec.is_empty() {
        out.push(Record::read(&mut dec).ok()?);
    }
    Some(out)
}

/// For unit tests: `example.test` with managed names `site{i}` at 192.0.2.`octets[i]`, serial
/// `serial`.
#[cfg(test)]
pub(crate) fn test_zone(octets: &[u8], serial: u32) -> Zone {
    let origin = fqdn("example.test");
    let ns = vec![fqdn("ns1.example.test")];
    let hm = fqdn("hostmaster.example.test");
    let apex = Apex {
        origin: &origin,
        nameservers: &ns,
        hostmaster: &hm,
    };
    let mut m = ManagedRecords::default();
    for (i, o) in octets.iter().enumerate() {
        m.set(
            fqdn(&format!("site{i}.example.test")),
            RecordType::A,
            vec![IpAddr::from([192, 0, 2, *o])],
        );
    }
    let mut z = Zone::build(&apex, &[], &m, 30, 0);
    z.set_serial(serial);
    z
}

/// Parses "www" into a full name under the zone, for tests and tools.
pub fn fqdn(s: &str) -> Name {
    let mut n = Name::from_ascii(s).expect("valid name");
    n.set_fqdn(true);
    n
}

mod proof;
pub mod sign;

#[cfg(test)]
mod tests;
