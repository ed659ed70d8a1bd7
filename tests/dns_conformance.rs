//! The built-in server beside BIND 9, question by question (issue 15, part B). BIND serves the
//! very zone understudy serves (taken from it by a signed AXFR, so the records and the serial
//! are the same), and every question of the table goes to both, over UDP or TCP, byte for byte
//! the same request; the answers must agree in rcode, flags, question, and every section
//! (records compared as text, in order-free sets; the OPT record by its version alone).
//!
//! BIND runs with `minimal-responses yes` (it then adds no optional NS or address records,
//! which understudy never adds either) and `version none`; both are noted where a row depends
//! on them. Where the two are allowed to differ, the row says so and what each answers.

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use common::authdns::{tsig_keygen, AuthServer, Kind};
use common::secondary::axfr_zone_file;
use common::*;
use hickory_proto::op::{Edns, Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};

/// Static records in the shapes a conformance test needs: wildcards (RFC 4592 §2.2.1),
/// a delegation with glue, CNAME chains in and out of the zone and to nowhere, a TXT set too
/// big for 512 bytes, mixed-case owners.
const RECORDS: &[&str] = &[
    "www A 192.0.2.10",
    "www AAAA 2001:db8::10",
    "@ MX 10 mail",
    "@ TXT \"v=spf1 -all\"",
    "mail A 192.0.2.25",
    "Mixed.Case A 192.0.2.26",
    "* TXT \"wild\"",
    "* MX 10 mail",
    "*.apps CNAME www",
    "host1.deep TXT \"x\"",
    "_ssh._tcp.host1 SRV 0 0 22 mail",
    "blog CNAME www",
    "chain CNAME blog",
    "ext CNAME elsewhere.example.org.",
    "dangling CNAME missing",
    "sub NS ns1.sub",
    "sub NS ns.elsewhere.example.org.",
    "ns1.sub A 192.0.2.53",
    "ns1.sub AAAA 2001:db8::53",
    "sub DS 12345 13 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE8E7B3E2F6D2C4D3E2F1A0B9C",
];

fn big_txt() -> Vec<String> {
    (0..12)
        .map(|i| format!("big TXT \"{i:02} {}\"", "x".repeat(60)))
        .collect()
}

fn understudy_config(key: &std::path::Path) -> String {
    let records: Vec<String> = RECORDS
        .iter()
        .map(|r| r.to_string())
        .chain(big_txt())
        .map(|r| format!("{r:?}"))
        .collect();
    format!(
        "data_dir = \"{{DATA}}\"\n[dns]\nlisten = [\"127.0.0.1:0\"]\nttl = 30\n\
         [[dns.zones]]\nname = \"example.test\"\nnameservers = [\"ns1.example.test\"]\nrecords = [{}, \"ns1 A 127.0.0.1\"]\n\
         [[dns.secondaries]]\nname = \"conformance\"\naddress = \"127.0.0.1:{}\"\ntsig_key_file = \"{}\"\n\
         [api]\nlisten = \"127.0.0.1:0\"\n",
        records.join(", "),
        free_port("127.0.0.1"),
        key.display()
    )
}

#[derive(Clone, Copy)]
enum Via {
    Udp,
    Tcp,
}

fn ask(server: SocketAddr, wire: &[u8], via: Via) -> Option<Vec<u8>> {
    match via {
        Via::Udp => {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            s.send_to(wire, server).unwrap();
            let mut buf = vec![0u8; 65_535];
            let (n, _) = s.recv_from(&mut buf).ok()?;
            buf.truncate(n);
            Some(buf)
        }
        Via::Tcp => tcp_many(server, &[wire.to_vec()]).pop(),
    }
}

/// Sends every request on one TCP connection before reading any answer (pipelining).
fn tcp_many(server: SocketAddr, wires: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut s = TcpStream::connect(server).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut out = vec![];
    for w in wires {
        out.extend_from_slice(&(w.len() as u16).to_be_bytes());
        out.extend_from_slice(w);
    }
    s.write_all(&out).unwrap();
    let mut answers = vec![];
    for _ in wires {
        let mut len = [0u8; 2];
        if s.read_exact(&mut len).is_err() {
            break;
        }
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut buf).unwrap();
        answers.push(buf);
    }
    answers
}

/// An answer in words that can be compared: header flags, rcode, question, each section as a
/// sorted set of records, and the EDNS version.
fn words(wire: &[u8]) -> String {
    let m = match Message::from_vec(wire) {
        Ok(m) => m,
        Err(_) => {
            // BADVERS (16) needs the OPT record to decode; say what the header says.
            return format!("undecodable, rcode low bits {}", wire[3] & 0x0f);
        }
    };
    let h = &m.metadata;
    let section = |rs: &[hickory_proto::rr::Record]| {
        let mut v: Vec<String> = rs.iter().map(|r| r.to_string()).collect();
        v.sort();
        v.join("\n    ")
    };
    format!(
        "rcode {} (ext {:?}) aa={} tc={} rd={} ra={}\n  question: {}\n  answer:\n    {}\n  authority:\n    {}\n  additional:\n    {}\n  edns: {:?}",
        h.response_code,
        m.edns.as_ref().map(|e| e.rcode_high()),
        h.authoritative,
        h.truncation,
        h.recursion_desired,
        h.recursion_available,
        m.queries
            .iter()
            .map(|q| format!("{} {} {}", q.name(), q.query_class(), q.query_type()))
            .collect::<Vec<_>>()
            .join(", "),
        section(&m.answers),
        section(&m.authorities),
        section(&m.additionals),
        m.edns.as_ref().map(|e| e.version()),
    )
}

/// What a row asks of understudy's answer.
enum Expect {
    /// The same as BIND's, every section.
    Same,
    /// The same header (rcode and flags) as BIND's; the sections may differ, for the reason given.
    SameHeader(&'static str),
    /// This rcode, where BIND answers otherwise, for the reason given (a policy of ours).
    Ours(ResponseCode, &'static str),
}

struct Case {
    what: &'static str,
    msg: Message,
    via: Via,
    expect: Expect,
}

fn q(what: &'static str, name: &str, t: RecordType) -> Case {
    let mut m = Message::query();
    m.metadata.id = 4242;
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    Case {
        what,
        msg: m,
        via: Via::Udp,
        expect: Expect::Same,
    }
}

fn expect(mut c: Case, e: Expect) -> Case {
    c.expect = e;
    c
}

fn edns(mut c: Case, payload: u16, version: u8) -> Case {
    let mut e = Edns::new();
    e.set_max_payload(payload).set_version(version);
    c.msg.edns = Some(e);
    c
}

fn class(mut c: Case, class: DNSClass) -> Case {
    c.msg.queries[0].set_query_class(class);
    c
}

fn tcp(mut c: Case) -> Case {
    c.via = Via::Tcp;
    c
}

fn table() -> Vec<Case> {
    use RecordType::*;
    let mut cases = vec![
        q("an address", "www.example.test.", A),
        q("the other family", "www.example.test.", AAAA),
        q("NODATA", "www.example.test.", TXT),
        q("NXDOMAIN", "nope.nope.example.test.", A),
        q("the apex SOA", "example.test.", SOA),
        q("the apex NS", "example.test.", NS),
        q("the apex MX", "example.test.", MX),
        q("ANY at a name", "www.example.test.", ANY),
        tcp(q("ANY at the apex over TCP", "example.test.", ANY)),
        q(
            "a mixed-case question keeps its case",
            "WwW.ExAmPlE.TeSt.",
            A,
        ),
        q("a mixed-case owner", "mixed.case.example.test.", A),
        q("an empty non-terminal", "deep.example.test.", A),
        q("below an empty non-terminal", "nope.deep.example.test.", A),
        q("a wildcard", "anything.example.test.", TXT),
        q("a wildcard, deeper", "a.b.c.example.test.", MX),
        q("a wildcard without the type", "anything.example.test.", A),
        q(
            "a wildcard does not fill in an existing name",
            "mail.example.test.",
            TXT,
        ),
        q(
            "RFC 4592's _udp.host1",
            "_foo._udp.host1.example.test.",
            SRV,
        ),
        q("a wildcard CNAME", "shop.apps.example.test.", A),
        q("the wildcard's parent", "apps.example.test.", A),
        q("the wildcard asked for by name", "*.example.test.", TXT),
        q("a CNAME", "blog.example.test.", A),
        q("a CNAME chain", "chain.example.test.", AAAA),
        q("a CNAME asked for itself", "blog.example.test.", CNAME),
        q("a CNAME out of the zone", "ext.example.test.", A),
        q("a CNAME to nowhere", "dangling.example.test.", A),
        q("a referral at the cut", "sub.example.test.", A),
        q("a referral below the cut", "www.sub.example.test.", A),
        q("glue is referred", "ns1.sub.example.test.", A),
        q("DS at the cut is the parent's", "sub.example.test.", DS),
        q("NS at the cut", "sub.example.test.", NS),
        q("outside every zone", "www.example.org.", A),
        q("the root", ".", NS),
        expect(
            q("too big for 512 bytes: TC", "big.example.test.", TXT),
            Expect::SameHeader("BIND fills a truncated answer with the records that fit, understudy sends the question alone; RFC 2181 §9 has the client ignore a truncated answer and ask again over TCP"),
        ),
        tcp(q("too big, asked again over TCP", "big.example.test.", TXT)),
        edns(
            q("too big, EDNS 1232 fits", "big.example.test.", TXT),
            1232,
            0,
        ),
        edns(q("EDNS 512", "big.example.test.", TXT), 512, 0),
        edns(q("EDNS below 512", "www.example.test.", A), 100, 0),
        edns(q("EDNS 4096", "www.example.test.", A), 4096, 0),
        edns(
            q("EDNS version 1: BADVERS", "www.example.test.", A),
            1232,
            1,
        ),
        class(
            q("a name of ours in CHAOS", "example.test.", A),
            DNSClass::CH,
        ),
        expect(
            class(q("version.bind", "version.bind.", TXT), DNSClass::CH),
            Expect::Ours(ResponseCode::Refused, "BIND with `version none` answers NODATA from its CHAOS view; understudy refuses every class but IN, so it says nothing of what it runs"),
        ),
        class(
            q("an unknown class", "example.test.", A),
            DNSClass::Unknown(42),
        ),
    ];
    let mut none = q("no question: FORMERR (RFC 9619)", "www.example.test.", A);
    none.msg.queries.clear();
    cases.push(none);
    let mut two = q("two questions: FORMERR", "www.example.test.", A);
    two.msg.add_query(Query::query(
        Name::from_ascii("example.test.").unwrap(),
        SOA,
    ));
    cases.push(two);
    let mut status = q("opcode STATUS: NOTIMP", "www.example.test.", A);
    status.msg.metadata.op_code = OpCode::Status;
    cases.push(status);
    cases
}

#[test]
fn the_built_in_server_answers_as_bind_does() {
    let keys = tempfile::tempdir().unwrap();
    let (key_file, secret) = tsig_keygen(keys.path(), "conformance", "hmac-sha256");
    let d = Daemon::start(&understudy_config(&key_file));
    let zone = axfr_zone_file(d.dns(), Some(&format!("conformance:{secret}")));
    assert!(zone.lines().count() > 20, "AXFR from understudy: {zone}");
    let bind = AuthServer::serving(Kind::Bind, &zone, "minimal-responses yes;\n version none;");
    assert_eq!(
        bind.serial(),
        common::query(d.dns(), "example.test", RecordType::SOA)
            .ok()
            .and_then(|r| r.message.answers.iter().find_map(|a| match &a.data {
                hickory_proto::rr::RData::SOA(s) => Some(s.serial),
                _ => None,
            })),
        "the same zone"
    );

    let mut wrong = vec![];
    for case in table() {
        let wire = case.msg.to_vec().unwrap();
        let ours_wire = ask(d.dns(), &wire, case.via);
        let ours = ours_wire.as_deref().map(words);
        let theirs = ask(bind.addr, &wire, case.via).map(|w| words(&w));
        let header = |w: &Option<String>| {
            w.as_deref()
                .and_then(|w| w.lines().next())
                .map(str::to_string)
        };
        let agree = match case.expect {
            Expect::Same => ours == theirs,
            Expect::SameHeader(_) => header(&ours) == header(&theirs),
            Expect::Ours(rcode, _) => ours_wire
                .as_deref()
                .and_then(|w| Message::from_vec(w).ok())
                .is_some_and(|m| m.metadata.response_code == rcode),
        };
        match case.expect {
            Expect::Same => {}
            Expect::SameHeader(why) | Expect::Ours(_, why) => {
                eprintln!("{}: allowed to differ from BIND: {why}", case.what)
            }
        }
        if !agree {
            wrong.push(format!(
                "{}:\n understudy: {}\n BIND:       {}",
                case.what,
                ours.unwrap_or_else(|| "no answer".into()),
                theirs.unwrap_or_else(|| "no answer".into())
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} questions answered differently:\n{}",
        wrong.len(),
        table().len(),
        wrong.join("\n\n")
    );
}

#[test]
fn pipelined_tcp_questions_are_all_answered() {
    let keys = tempfile::tempdir().unwrap();
    let (key_file, _) = tsig_keygen(keys.path(), "conformance", "hmac-sha256");
    let d = Daemon::start(&understudy_config(&key_file));
    let names = ["www", "mail", "blog", "nope", "big", "anything"];
    let wires: Vec<Vec<u8>> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let mut c = q("", &format!("{n}.example.test."), RecordType::A);
            c.msg.metadata.id = 100 + i as u16;
            c.msg.to_vec().unwrap()
        })
        .collect();
    let answers = tcp_many(d.dns(), &wires);
    assert_eq!(
        answers.len(),
        names.len(),
        "every pipelined question answered"
    );
    let ids: Vec<u16> = answers
        .iter()
        .map(|w| Message::from_vec(w).unwrap().metadata.id)
        .collect();
    assert_eq!(ids, [100, 101, 102, 103, 104, 105], "in the order asked");
}
