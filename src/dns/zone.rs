//! The zones the built-in server answers for, and the answer to one question. Pure: building and
//! looking up do no I/O, so every answer rule is unit-tested here.
//!
//! Answer rules (RFC 1034 §4.3.2, simplified for a server that holds whole zones and no
//! delegations or wildcards):
//! - a name outside every zone → REFUSED (never an open resolver);
//! - records of the asked type at the name → answer;
//! - a CNAME at the name → the CNAME, followed inside our zones;
//! - the name exists with other types → NOERROR, no answer, SOA in authority (NODATA);
//! - the name does not exist → NXDOMAIN with the SOA.

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

    /// Answers one question.
    pub fn lookup(&self, qname: &LowerName, qtype: RecordType) -> Answer {
        let Some(zone) = self.zone_for(qname) else {
            return Answer {
                rcode: ResponseCode::Refused,
                authoritative: false,
                answers: vec![],
                authorities: vec![],
            };
        };
        let mut answers: Vec<Record> = vec![];
        let mut name = qname.clone();
        // Follow CNAMEs inside our zones, at most 8 deep (a loop in static records must not hang).
        for _ in 0..8 {
            let found: Vec<Record> = if qtype == RecordType::ANY {
                zone.records
                    .iter()
                    .filter(|((n, _), _)| *n == name)
                    .flat_map(|(_, rs)| rs.clone())
                    .collect()
            } else {
                zone.records
                    .get(&(name.clone(), qtype))
                    .cloned()
                    .unwrap_or_default()
            };
            if !found.is_empty() {
                answers.extend(found);
                return Answer {
                    rcode: ResponseCode::NoError,
                    authoritative: true,
                    answers,
                    authorities: vec![],
                };
            }
            match zone
                .records
                .get(&(name.clone(), RecordType::CNAME))
                .and_then(|v| v.first())
            {
                Some(c) if qtype != RecordType::CNAME => {
                    answers.push(c.clone());
                    let RData::CNAME(target) = &c.data else { break };
                    let target = LowerName::new(&target.0);
                    match self.zone_for(&target) {
                        Some(z) if std::ptr::eq(z, zone) => name = target,
                        // Outside this zone: the resolver follows it.
                        _ => {
                            return Answer {
                                rcode: ResponseCode::NoError,
                                authoritative: true,
                                answers,
                                authorities: vec![],
                            }
                        }
                    }
                }
                _ => break,
            }
        }
        let exists = zone.names.contains(&name);
        let rcode = if exists || !answers.is_empty() {
            ResponseCode::NoError
        } else {
            ResponseCode::NXDomain
        };
        Answer {
            rcode,
            authoritative: true,
            answers,
            authorities: vec![zone.soa.clone()],
        }
    }
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

/// Parses "www" into a full name under the zone, for tests and tools.
pub fn fqdn(s: &str) -> Name {
    let mut n = Name::from_ascii(s).expect("valid name");
    n.set_fqdn(true);
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn build(z: &crate::config::ZoneConfig, m: &ManagedRecords, ttl: u32, serial: u32) -> Zone {
        Zone::build(&apex(z), &z.records, m, ttl, serial)
    }

    fn apex(z: &crate::config::ZoneConfig) -> Apex<'_> {
        Apex {
            origin: &z.origin,
            nameservers: &z.nameservers,
            hostmaster: &z.hostmaster,
        }
    }

    fn zones() -> ZoneSet {
        let cfg = crate::config::parse(
            Path::new("t.toml"),
            r#"
[[dns.zones]]
name = "example.test"
records = ["@ MX 10 mail", "mail A 192.0.2.25", "blog CNAME www", "ext CNAME elsewhere.org.", "a.b.deep TXT \"x\""]
"#,
        )
        .unwrap();
        let mut m = ManagedRecords::default();
        m.set(
            fqdn("www.example.test"),
            RecordType::A,
            vec!["192.0.2.10".parse().unwrap()],
        );
        ZoneSet {
            zones: vec![build(&cfg.dns.zones[0], &m, 30, 7)],
            published_ms: 0,
        }
    }

    fn q(z: &ZoneSet, name: &str, t: RecordType) -> Answer {
        z.lookup(&LowerName::new(&fqdn(name)), t)
    }

    #[test]
    fn answers_managed_and_static_records() {
        let z = zones();
        let a = q(&z, "www.example.test", RecordType::A);
        assert_eq!(a.rcode, ResponseCode::NoError);
        assert!(a.authoritative);
        assert_eq!(a.answers.len(), 1);
        assert_eq!(
            a.answers[0].data,
            RData::A(A("192.0.2.10".parse().unwrap()))
        );
        assert_eq!(
            q(&z, "WWW.Example.Test", RecordType::A).answers.len(),
            1,
            "names are case-insensitive"
        );
        assert_eq!(q(&z, "example.test", RecordType::MX).answers.len(), 1);
        let soa = q(&z, "example.test", RecordType::SOA);
        assert_eq!(soa.answers.len(), 1);
        assert_eq!(z.zones[0].serial(), 7);
        assert_eq!(q(&z, "example.test", RecordType::NS).answers.len(), 1);
    }

    #[test]
    fn refuses_names_outside_its_zones() {
        let z = zones();
        let a = q(&z, "www.example.org", RecordType::A);
        assert_eq!(a.rcode, ResponseCode::Refused);
        assert!(a.answers.is_empty() && !a.authoritative);
        assert_eq!(q(&z, "test", RecordType::A).rcode, ResponseCode::Refused);
    }

    #[test]
    fn nodata_nxdomain_and_empty_non_terminals() {
        let z = zones();
        let nodata = q(&z, "www.example.test", RecordType::AAAA);
        assert_eq!(
            (nodata.rcode, nodata.answers.len(), nodata.authorities.len()),
            (ResponseCode::NoError, 0, 1)
        );
        let nx = q(&z, "nope.example.test", RecordType::A);
        assert_eq!(
            (nx.rcode, nx.authorities.len()),
            (ResponseCode::NXDomain, 1)
        );
        assert_eq!(
            q(&z, "b.deep.example.test", RecordType::A).rcode,
            ResponseCode::NoError,
            "empty non-terminal exists"
        );
    }

    #[test]
    fn follows_cnames_inside_the_zone_only() {
        let z = zones();
        let a = q(&z, "blog.example.test", RecordType::A);
        assert_eq!(a.answers.len(), 2);
        assert_eq!(a.answers[1].record_type(), RecordType::A);
        let ext = q(&z, "ext.example.test", RecordType::A);
        assert_eq!((ext.rcode, ext.answers.len()), (ResponseCode::NoError, 1));
        assert_eq!(
            q(&z, "blog.example.test", RecordType::CNAME).answers.len(),
            1
        );
    }

    #[test]
    fn serial_content_ignores_the_serial_but_not_records() {
        let cfg = crate::config::parse(
            Path::new("t.toml"),
            "[[dns.zones]]\nname = \"example.test\"\n",
        )
        .unwrap();
        let z = &cfg.dns.zones[0];
        let mut m = ManagedRecords::default();
        m.set(
            fqdn("www.example.test"),
            RecordType::A,
            vec!["192.0.2.10".parse().unwrap()],
        );
        let one = build(z, &m, 30, 0).content();
        let mut later = build(z, &m, 30, 0);
        later.set_serial(42);
        assert_eq!(later.serial(), 42);
        assert_eq!(
            one,
            later.content(),
            "the serial is not part of the content"
        );
        m.set(
            fqdn("www.example.test"),
            RecordType::A,
            vec!["192.0.2.20".parse().unwrap()],
        );
        assert_ne!(one, build(z, &m, 30, 0).content());
    }
}
