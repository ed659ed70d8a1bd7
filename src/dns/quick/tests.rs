use super::*;
use crate::dns::respond::respond;
use crate::dns::zone::{Apex, Zone, ZoneSet};
use hickory_proto::op::{Edns, Message, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use proptest::prelude::*;

fn zones() -> ZoneSet {
    let cfg = crate::config::parse(
        std::path::Path::new("t.toml"),
        r#"
[[dns.zones]]
name = "example.test"
records = ["www A 192.0.2.1", "www AAAA 2001:db8::1", "Mixed A 192.0.2.2", "* TXT \"wild\"",
  "blog CNAME www", "sub NS ns1.sub", "ns1.sub A 192.0.2.53", "@ MX 10 mail", "mail A 192.0.2.25",
  "big TXT \"0123456789012345678901234567890123456789012345678901234567890123456789\"",
  "big TXT \"1123456789012345678901234567890123456789012345678901234567890123456789\"",
  "big TXT \"2123456789012345678901234567890123456789012345678901234567890123456789\"",
  "big TXT \"3123456789012345678901234567890123456789012345678901234567890123456789\"",
  "big TXT \"4123456789012345678901234567890123456789012345678901234567890123456789\"",
  "big TXT \"5123456789012345678901234567890123456789012345678901234567890123456789\"",
  "big TXT \"6123456789012345678901234567890123456789012345678901234567890123456789\"",
  "big TXT \"7123456789012345678901234567890123456789012345678901234567890123456789\""]
"#,
    )
    .unwrap();
    let z = &cfg.dns.zones[0];
    let apex = Apex {
        origin: &z.origin,
        nameservers: &z.nameservers,
        hostmaster: &z.hostmaster,
    };
    ZoneSet {
        zones: vec![Zone::build(&apex, &z.records, &Default::default(), 30, 9)],
        published_ms: 0,
    }
}

fn request(name: &str, t: RecordType, id: u16, rd: bool, edns: Option<(u16, bool)>) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = id;
    m.metadata.recursion_desired = rd;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    if let Some((payload, dnssec_ok)) = edns {
        let mut e = Edns::new();
        e.set_max_payload(payload).set_dnssec_ok(dnssec_ok);
        m.edns = Some(e);
    }
    m.to_vec().unwrap()
}

fn slow(z: &ZoneSet, raw: &[u8], tcp: bool) -> Vec<u8> {
    let r = respond(z, &[], &[], raw, "127.0.0.1:53000".parse().unwrap(), tcp, 0);
    assert_eq!(r.messages.len(), 1);
    r.messages[0].clone()
}

fn recase(name: &str, mask: u64) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| match mask >> (i % 64) & 1 {
            1 => c.to_ascii_uppercase(),
            _ => c.to_ascii_lowercase(),
        })
        .collect()
}

const NAMES: &[&str] = &[
    "www.example.test.",
    "mixed.example.test.",
    "nothing.here.example.test.",
    "blog.example.test.",
    "x.sub.example.test.",
    "example.test.",
    "big.example.test.",
    "www.example.org.",
];
const TYPES: &[RecordType] = &[
    RecordType::A,
    RecordType::AAAA,
    RecordType::TXT,
    RecordType::MX,
    RecordType::NS,
    RecordType::SOA,
    RecordType::ANY,
    RecordType::CNAME,
];

proptest! {
    /// An answer kept for one plain query, patched for another of the same key, is byte for
    /// byte what `respond` gives that other query; one spelled in other letters has another key.
    #[test]
    fn a_kept_answer_is_what_respond_would_say(
        name in 0..NAMES.len(), t in 0..TYPES.len(),
        (id1, id2) in (any::<u16>(), any::<u16>()),
        (rd1, rd2) in (any::<bool>(), any::<bool>()),
        (case1, case2) in (any::<u64>(), any::<u64>()),
        edns in prop::option::of((0u16..5000, any::<bool>())),
        tcp in any::<bool>(),
    ) {
        let z = zones();
        let first = request(&recase(NAMES[name], case1), TYPES[t], id1, rd1, edns);
        let second = request(&recase(NAMES[name], case1), TYPES[t], id2, rd2, edns);
        let (k1, qlen) = key(&first, tcp).expect("a plain query");
        let (k2, _) = key(&second, tcp).expect("a plain query");
        prop_assert_eq!(&k1, &k2);
        let answer = slow(&z, &first, tcp);
        let rcode = Message::from_vec(&answer).unwrap().metadata.response_code;
        let mut quick = Quick::default();
        quick.put(k1.clone(), qlen, &answer, rcode);
        prop_assert_eq!(quick.len(), 1);
        let (reused, reused_rcode) = quick.get(&k2, &second).unwrap();
        prop_assert_eq!(reused_rcode, rcode);
        prop_assert_eq!(reused, slow(&z, &second, tcp));
        let other = request(&recase(NAMES[name], case2), TYPES[t], id2, rd2, edns);
        let (k3, _) = key(&other, tcp).unwrap();
        prop_assert_eq!(k3 == k1, recase(NAMES[name], case1) == recase(NAMES[name], case2));
    }
}

#[test]
fn what_is_not_a_plain_query_has_no_key() {
    let plain = request("www.example.test.", RecordType::A, 1, true, None);
    assert!(key(&plain, false).is_some());
    let edns = request(
        "www.example.test.",
        RecordType::A,
        1,
        true,
        Some((1232, false)),
    );
    assert!(key(&edns, false).is_some());
    for t in [RecordType::AXFR, RecordType::IXFR] {
        assert!(key(&request("example.test.", t, 1, false, None), true).is_none());
    }
    let mut two = Message::query();
    two.add_query(Query::query(
        Name::from_ascii("a.example.test.").unwrap(),
        RecordType::A,
    ));
    two.add_query(Query::query(
        Name::from_ascii("b.example.test.").unwrap(),
        RecordType::A,
    ));
    assert!(key(&two.to_vec().unwrap(), false).is_none());
    let mut notify = Message::query();
    notify.metadata.op_code = OpCode::Notify;
    notify.add_query(Query::query(
        Name::from_ascii("example.test.").unwrap(),
        RecordType::SOA,
    ));
    assert!(key(&notify.to_vec().unwrap(), false).is_none());
    // EDNS version 1 (BADVERS), a trailing byte, a response, a truncated question, a pointer.
    let mut v1 = edns.clone();
    let at = v1.len() - 5;
    v1[at] = 1;
    assert!(key(&v1, false).is_none());
    let mut trailing = plain.clone();
    trailing.push(0);
    assert!(key(&trailing, false).is_none());
    let mut response = plain.clone();
    response[2] |= 0x80;
    assert!(key(&response, false).is_none());
    assert!(key(&plain[..plain.len() - 2], false).is_none());
    let mut pointer = plain.clone();
    pointer[12] = 0xc0;
    assert!(key(&pointer, false).is_none());
    // A different size limit, EDNS or DO bit is a different key.
    let k = |raw: &[u8], tcp| key(raw, tcp).unwrap().0;
    assert_ne!(k(&plain, false), k(&plain, true));
    assert_ne!(k(&plain, false), k(&edns, false));
    let edns_do = request(
        "www.example.test.",
        RecordType::A,
        1,
        true,
        Some((1232, true)),
    );
    assert_ne!(k(&edns, false), k(&edns_do, false));
}

#[test]
fn only_deterministic_answers_are_kept_and_the_cache_is_bounded() {
    let mut quick = Quick::default();
    let z = zones();
    let raw = request("www.example.test.", RecordType::A, 1, true, None);
    let (k, qlen) = key(&raw, false).unwrap();
    let answer = slow(&z, &raw, false);
    quick.put(k.clone(), qlen, &answer, ResponseCode::ServFail);
    assert!(quick.is_empty(), "SERVFAIL is not kept");
    quick.put(k.clone(), qlen, &answer[..10], ResponseCode::NoError);
    assert!(quick.is_empty(), "a runt is not kept");
    for i in 0..MAX_ANSWERS + 1 {
        let raw = request(&format!("n{i}.example.test."), RecordType::A, 1, true, None);
        let (k, qlen) = key(&raw, false).unwrap();
        quick.put(k, qlen, &slow(&z, &raw, false), ResponseCode::NXDomain);
    }
    assert_eq!(quick.len(), 1, "full: started over");
    quick.clear();
    assert!(quick.get(&k, &raw).is_none());
}
