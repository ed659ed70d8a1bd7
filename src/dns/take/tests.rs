use std::sync::Arc;

use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::rdata::{A, SOA, TXT};
use hickory_proto::rr::{Name, TSigner};
use proptest::prelude::*;

use super::*;
use crate::dns::transfer::{self, Peer, FUDGE};
use crate::dns::zone::{fqdn, Journal, Zone};

const NOW: u64 = 1_800_000_000;

fn signer() -> TSigner {
    TSigner::new(
        b"a shared secret".to_vec(),
        TsigAlgorithm::HmacSha256,
        Name::from_ascii("xfr.").unwrap(),
        FUDGE,
    )
    .unwrap()
}

fn origin() -> Name {
    fqdn("example.test")
}

/// A zone whose managed names `site{i}` are at 192.0.2.`octets[i]`.
fn zone(octets: &[u8], serial: u32) -> Zone {
    crate::dns::zone::test_zone(octets, serial)
}

/// What this crate's own primary ([`transfer::answer`]) sends for `take`'s request.
fn served(zone: &Zone, held: Option<&[Record]>) -> Vec<Message> {
    let soa = held.and_then(|h| h.first());
    let mut req = request(&origin(), soa, 7);
    let _ = req.finalize(&signer(), NOW).unwrap();
    let raw = req.to_vec().unwrap();
    let peer = Peer {
        name: "replica".into(),
        ip: "192.0.2.53".parse().unwrap(),
        signer: signer(),
        zones: vec![LowerName::new(&origin())],
    };
    let t = transfer::answer(
        Some(zone),
        &[peer],
        &Message::from_vec(&raw).unwrap(),
        &raw,
        "192.0.2.53".parse().unwrap(),
        true,
        NOW,
    );
    assert!(t.refused.is_none(), "{:?}", t.refused);
    t.messages
        .iter()
        .map(|m| Message::from_vec(m).unwrap())
        .collect()
}

fn take(held: Option<&[Record]>, messages: &[Message]) -> Result<Option<Taken>, TakeError> {
    let mut t = Taker::new(&origin(), held);
    let mut last = None;
    for m in messages {
        last = t.feed(m)?;
    }
    Ok(last)
}

fn sorted(mut v: Vec<Record>) -> Vec<String> {
    let mut out: Vec<String> = v.drain(..).map(|r| r.to_string()).collect();
    out.sort();
    out
}

#[test]
fn an_axfr_in_many_messages_gives_the_whole_zone() {
    let z = zone(&[7; 2000], 10);
    let messages = served(&z, None);
    assert!(messages.len() > 1, "big enough to span messages");
    let Some(Taken::Version { records, kind }) = take(None, &messages).unwrap() else {
        panic!("a version")
    };
    assert_eq!(kind, "AXFR");
    assert_eq!(soa_serial(&records[0]), Some(10));
    assert_eq!(sorted(records), sorted(z.all_records()));
}

#[test]
fn an_ixfr_difference_gives_the_new_version() {
    let old = zone(&[1, 2, 3], 10);
    let mut new = zone(&[1, 9, 3, 4], 11);
    let mut j = Journal::default();
    j.push(10, Arc::new(old.all_records()));
    new.journal = Arc::new(j);
    let held = old.all_records();
    let messages = served(&new, Some(&held));
    let Some(Taken::Version { records, kind }) = take(Some(&held), &messages).unwrap() else {
        panic!("a version")
    };
    assert_eq!(kind, "IXFR");
    assert_eq!(sorted(records), sorted(new.all_records()));
}

#[test]
fn an_ixfr_for_the_current_serial_is_up_to_date() {
    let z = zone(&[1], 10);
    let held = z.all_records();
    let messages = served(&z, Some(&held));
    assert_eq!(
        take(Some(&held), &messages).unwrap(),
        Some(Taken::UpToDate { serial: 10 })
    );
}

#[test]
fn an_ixfr_from_a_forgotten_serial_is_answered_whole() {
    let old = zone(&[1], 10);
    let new = zone(&[2], 12);
    let held = old.all_records();
    let messages = served(&new, Some(&held));
    let Some(Taken::Version { records, kind }) = take(Some(&held), &messages).unwrap() else {
        panic!("a version")
    };
    assert_eq!(kind, "IXFR-full");
    assert_eq!(sorted(records), sorted(new.all_records()));
}

fn soa(serial: u32) -> Record {
    Record::from_rdata(
        origin(),
        60,
        RData::SOA(SOA::new(
            fqdn("ns1.example.test"),
            fqdn("hostmaster.example.test"),
            serial,
            3600,
            600,
            86400,
            30,
        )),
    )
}

fn a(name: &str, last: u8) -> Record {
    Record::from_rdata(fqdn(name), 30, RData::A(A::new(192, 0, 2, last)))
}

fn answer(records: Vec<Record>) -> Message {
    let mut m = Message::new(7, MessageType::Response, OpCode::Query);
    m.answers = records;
    m
}

#[test]
fn a_chain_of_differences_is_applied_in_order() {
    let held = vec![soa(1), a("www.example.test", 1)];
    let m = answer(vec![
        soa(3),
        soa(1),
        a("WWW.example.test", 1),
        soa(2),
        a("www.example.test", 2),
        soa(2),
        a("www.example.test", 2),
        soa(3),
        a("www.example.test", 3),
        soa(3),
    ]);
    let Some(Taken::Version { records, kind }) = take(Some(&held), &[m]).unwrap() else {
        panic!("a version")
    };
    assert_eq!(kind, "IXFR");
    assert_eq!(
        sorted(records),
        sorted(vec![soa(3), a("www.example.test", 3)])
    );
}

/// Answers that must not be taken, each with the words its error carries.
#[test]
fn garbage_is_refused_and_says_why() {
    let held = vec![soa(5), a("www.example.test", 1)];
    let txt =
        |name: &str| Record::from_rdata(fqdn(name), 30, RData::TXT(TXT::new(vec!["x".into()])));
    let mut chaos = a("www.example.test", 1);
    chaos.dns_class = DNSClass::CH;
    let mut refused = answer(vec![]);
    refused.metadata.response_code = ResponseCode::Refused;
    let cases: Vec<(&str, Option<&[Record]>, Message, &str)> = vec![
        ("refused", None, refused, "does not allow this server"),
        (
            "starts without SOA",
            None,
            answer(vec![a("www.example.test", 1)]),
            "not the zone's SOA",
        ),
        (
            "outside",
            None,
            answer(vec![soa(6), txt("www.example.org"), soa(6)]),
            "outside the zone",
        ),
        ("class", None, answer(vec![soa(6), chaos, soa(6)]), "class"),
        (
            "soa below apex",
            None,
            answer(vec![
                soa(6),
                {
                    let mut s = soa(6);
                    s.name = fqdn("sub.example.test");
                    s
                },
                soa(6),
            ]),
            "below the apex",
        ),
        (
            "older serial",
            Some(&held),
            answer(vec![soa(4)]),
            "older than the one held",
        ),
        (
            "wrong start",
            Some(&held),
            answer(vec![soa(7), soa(6), soa(7), soa(7)]),
            "not the held 5",
        ),
        (
            "deletes absent",
            Some(&held),
            answer(vec![
                soa(6),
                soa(5),
                a("www.example.test", 9),
                soa(6),
                soa(6),
            ]),
            "does not hold",
        ),
        (
            "not newer step",
            Some(&held),
            answer(vec![soa(6), soa(5), soa(4), soa(6)]),
            "not newer",
        ),
        (
            "after the end",
            None,
            answer(vec![soa(6), soa(6), a("www.example.test", 1)]),
            "after the transfer's closing SOA",
        ),
        (
            "second soa",
            None,
            answer(vec![soa(6), a("www.example.test", 1), soa(8)]),
            "a second SOA",
        ),
    ];
    for (what, held, m, words) in cases {
        let err = take(held, &[m]).expect_err(what);
        assert!(err.0.contains(words), "{what}: {err}");
    }
}

#[test]
fn an_unfinished_answer_is_not_done() {
    let mut t = Taker::new(&origin(), None);
    assert_eq!(
        t.feed(&answer(vec![soa(6), a("www.example.test", 1)]))
            .unwrap(),
        None
    );
    assert!(!t.done());
}

proptest! {
    /// Whatever the two versions, the difference this server's primary sends takes a replica
    /// holding the old one to exactly the new one.
    #[test]
    fn a_difference_always_lands_on_the_new_version(
        old in proptest::collection::vec(1u8..5, 0..12),
        new in proptest::collection::vec(1u8..5, 0..12),
    ) {
        let old = zone(&old, 100);
        let mut new_zone = zone(&new, 101);
        let mut j = Journal::default();
        j.push(100, Arc::new(old.all_records()));
        new_zone.journal = Arc::new(j);
        let held = old.all_records();
        let messages = served(&new_zone, Some(&held));
        match take(Some(&held), &messages).unwrap() {
            Some(Taken::Version { records, .. }) => {
                prop_assert_eq!(sorted(records), sorted(new_zone.all_records()))
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }
}
