use std::sync::Arc;

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::rdata::{A, SOA};
use hickory_proto::rr::{Name, RecordType};

use super::*;
use crate::dns::zone::fqdn;

const NOW: u64 = 1_800_000_000;

fn signer(name: &str, secret: &[u8]) -> TSigner {
    TSigner::new(
        secret.to_vec(),
        TsigAlgorithm::HmacSha256,
        Name::from_ascii(name).unwrap(),
        FUDGE,
    )
    .unwrap()
}

fn peer() -> Peer {
    Peer {
        name: "ns2".into(),
        ip: "192.0.2.53".parse().unwrap(),
        signer: signer("xfr.", b"right secret"),
        zones: vec![LowerName::new(&fqdn("example.test"))],
    }
}

/// A zone with `hosts` managed names at 192.0.2.`last_octet`, serial `serial`.
fn zone(hosts: usize, last_octet: u8, serial: u32) -> Zone {
    crate::dns::zone::test_zone(&vec![last_octet; hosts], serial)
}

fn request(qtype: RecordType, their_serial: Option<u32>, sign: Option<&TSigner>) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = 4242;
    m.add_query(Query::query(fqdn("example.test"), qtype));
    if let Some(s) = their_serial {
        m.add_authority(Record::from_rdata(
            fqdn("example.test"),
            0,
            RData::SOA(SOA::new(
                fqdn("ns1.example.test"),
                fqdn("h.example.test"),
                s,
                0,
                0,
                0,
                0,
            )),
        ));
    }
    if let Some(s) = sign {
        m.finalize(s, NOW).unwrap();
    }
    m.to_vec().unwrap()
}

fn ask(z: &Zone, raw: &[u8], from: &str, tcp: bool) -> Transfer {
    let m = Message::from_vec(raw).unwrap();
    answer(Some(z), &[peer()], &m, raw, from.parse().unwrap(), tcp, NOW)
}

/// Verifies every message's TSIG in order as a secondary would, and returns the records.
fn verified(t: &Transfer, raw_request: &[u8]) -> Vec<Record> {
    let req = Message::from_vec(raw_request).unwrap();
    let mut prev = req.signature().unwrap().data.mac.clone();
    let s = peer().signer;
    let mut out = vec![];
    for (i, m) in t.messages.iter().enumerate() {
        let (mac, time, range) = s
            .verify_message_byte(m, Some(&prev), i == 0)
            .unwrap_or_else(|e| panic!("message {i} does not verify: {e}"));
        assert!(range.contains(&NOW) && time == NOW);
        prev = mac;
        out.extend(Message::from_vec(m).unwrap().answers);
    }
    out
}

fn rcode(t: &Transfer) -> ResponseCode {
    Message::from_vec(&t.messages[0])
        .unwrap()
        .metadata
        .response_code
}

#[test]
fn axfr_needs_the_address_and_the_key() {
    let z = zone(3, 10, 7);
    let good = signer("xfr.", b"right secret");
    let ok = ask(
        &z,
        &request(RecordType::AXFR, None, Some(&good)),
        "192.0.2.53",
        true,
    );
    assert!(!ok.close && ok.refused.is_none());
    let records = verified(&ok, &request(RecordType::AXFR, None, Some(&good)));
    assert_eq!(records.len(), 1 + 1 + 3 + 1, "SOA, NS, three A, SOA");
    assert!(matches!(records[0].data, RData::SOA(_)));
    assert!(matches!(records.last().unwrap().data, RData::SOA(_)));
    assert_eq!(ok.served.as_ref().unwrap().kind, "AXFR");

    let cases: Vec<(&str, Vec<u8>, &str, ResponseCode, &str)> = vec![
        (
            "another address",
            request(RecordType::AXFR, None, Some(&good)),
            "192.0.2.99",
            ResponseCode::Refused,
            "not a configured secondary",
        ),
        (
            "unsigned",
            request(RecordType::AXFR, None, None),
            "192.0.2.53",
            ResponseCode::Refused,
            "not signed",
        ),
        (
            "another key name",
            request(
                RecordType::AXFR,
                None,
                Some(&signer("other.", b"right secret")),
            ),
            "192.0.2.53",
            ResponseCode::NotAuth,
            "no secondary at that address has",
        ),
        (
            "another secret",
            request(
                RecordType::AXFR,
                None,
                Some(&signer("xfr.", b"wrong secret")),
            ),
            "192.0.2.53",
            ResponseCode::NotAuth,
            "does not verify",
        ),
    ];
    for (what, raw, from, want, why) in cases {
        let t = ask(&z, &raw, from, true);
        assert_eq!(rcode(&t), want, "{what}");
        assert!(t.close, "{what}: the connection is closed");
        assert!(t.served.is_none());
        let r = t.refused.unwrap();
        assert!(r.contains(why), "{what}: {r}");
        let m = Message::from_vec(&t.messages[0]).unwrap();
        assert!(m.answers.is_empty(), "{what}: nothing of the zone is sent");
    }
}

#[test]
fn a_clock_off_by_more_than_the_fudge_gets_badtime() {
    let z = zone(1, 10, 7);
    let s = signer("xfr.", b"right secret");
    let raw = request(RecordType::AXFR, None, Some(&s));
    let m = Message::from_vec(&raw).unwrap();
    let t = answer(
        Some(&z),
        &[peer()],
        &m,
        &raw,
        "192.0.2.53".parse().unwrap(),
        true,
        NOW + 3_600,
    );
    assert_eq!(rcode(&t), ResponseCode::NotAuth);
    let sig = Message::from_vec(&t.messages[0])
        .unwrap()
        .signature()
        .cloned();
    assert_eq!(sig.unwrap().data.error, Some(TsigError::BadTime));
}

#[test]
fn a_big_zone_comes_in_several_messages_each_signed_in_a_chain() {
    let z = zone(2_000, 10, 9);
    let s = signer("xfr.", b"right secret");
    let raw = request(RecordType::AXFR, None, Some(&s));
    let t = ask(&z, &raw, "192.0.2.53", true);
    assert!(t.messages.len() > 2, "{} messages", t.messages.len());
    assert!(t.messages.iter().all(|m| m.len() <= u16::MAX as usize));
    let records = verified(&t, &raw);
    assert_eq!(records.len(), 2_000 + 3);
    let first = Message::from_vec(&t.messages[0]).unwrap();
    let second = Message::from_vec(&t.messages[1]).unwrap();
    assert_eq!(first.queries.len(), 1);
    assert!(
        second.queries.is_empty(),
        "the question is in the first only"
    );
}

#[test]
fn ixfr_sends_one_condensed_difference_or_falls_back() {
    let old = zone(3, 10, 7);
    let mut now = zone(3, 20, 8);
    let mut j = Journal::default();
    j.push(7, Arc::new(old.all_records()));
    j.push(8, Arc::new(now.all_records()));
    now.journal = Arc::new(j);
    let s = signer("xfr.", b"right secret");

    let raw = request(RecordType::IXFR, Some(7), Some(&s));
    let t = ask(&now, &raw, "192.0.2.53", true);
    assert_eq!(t.served.as_ref().unwrap().kind, "IXFR");
    let r = verified(&t, &raw);
    let serial = |r: &Record| match &r.data {
        RData::SOA(s) => Some(s.serial),
        _ => None,
    };
    let shape: Vec<Option<u32>> = r.iter().map(serial).collect();
    assert_eq!(
        shape,
        vec![
            Some(8),
            Some(7),
            None,
            None,
            None,
            Some(8),
            None,
            None,
            None,
            Some(8)
        ],
        "new SOA, old SOA, 3 deletions, new SOA, 3 additions, new SOA"
    );
    assert_eq!(r[2].data, RData::A(A::new(192, 0, 2, 10)));
    assert_eq!(r[6].data, RData::A(A::new(192, 0, 2, 20)));

    let raw = request(RecordType::IXFR, Some(8), Some(&s));
    let t = ask(&now, &raw, "192.0.2.53", true);
    assert_eq!(verified(&t, &raw).len(), 1, "current: the SOA alone");

    let raw = request(RecordType::IXFR, Some(3), Some(&s));
    let t = ask(&now, &raw, "192.0.2.53", true);
    assert_eq!(t.served.as_ref().unwrap().kind, "IXFR-full");
    assert_eq!(
        verified(&t, &raw).len(),
        3 + 3,
        "an unknown serial: the whole zone"
    );

    let raw = request(RecordType::IXFR, Some(7), Some(&s));
    let t = ask(&now, &raw, "192.0.2.53", false);
    assert_eq!(verified(&t, &raw).len(), 1, "over UDP: the SOA alone");
    let raw = request(RecordType::AXFR, None, Some(&s));
    let t = ask(&now, &raw, "192.0.2.53", false);
    assert_eq!(rcode(&t), ResponseCode::FormErr, "no AXFR over UDP");
}

#[test]
fn the_journal_keeps_the_newest_versions() {
    let mut j = Journal::default();
    for s in 0..(crate::dns::zone::JOURNAL_LEN as u32 + 10) {
        j.push(s, Arc::new(vec![]));
    }
    assert_eq!(j.0.len(), crate::dns::zone::JOURNAL_LEN);
    assert!(j.version(9).is_none() && j.version(10).is_some());
}

#[test]
fn serial_arithmetic_wraps() {
    assert!(newer(2, 1));
    assert!(newer(0, u32::MAX));
    assert!(!newer(1, 2));
    assert!(!newer(5, 5));
}
