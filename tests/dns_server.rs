//! The built-in authoritative server, asked over the wire: static records, REFUSED outside its
//! zones, NXDOMAIN/NODATA, TCP, and garbage that must not hurt it.

use crate::common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use common::*;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

fn daemon() -> (Daemon, Nginx, Nginx) {
    let primary = Nginx::start("127.0.0.1", "primary");
    let standby = Nginx::start("127.0.0.2", "standby");
    let d = Daemon::start(&one_site(primary.addr, standby.addr, ""));
    (d, primary, standby)
}

fn raw_udp(server: std::net::SocketAddr, bytes: &[u8]) -> Option<Message> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    s.send_to(bytes, server).unwrap();
    let mut buf = [0u8; 4096];
    s.recv(&mut buf)
        .ok()
        .and_then(|n| Message::from_vec(&buf[..n]).ok())
}

#[test]
fn serves_static_records_and_refuses_other_zones() {
    let (d, _p, _s) = daemon();
    let mx = query(d.dns(), "example.test", RecordType::MX).unwrap();
    assert_eq!(mx.rcode, ResponseCode::NoError);
    assert!(mx.authoritative);
    assert!(
        matches!(&mx.message.answers[0].data, RData::MX(m) if m.exchange.to_string() == "mail.example.test.")
    );
    let txt = query(d.dns(), "example.test", RecordType::TXT).unwrap();
    assert_eq!(txt.message.answers[0].data.to_string(), "v=spf1 -all");
    let ns = query(d.dns(), "example.test", RecordType::NS).unwrap();
    assert_eq!(ns.message.answers.len(), 1);

    let other = query(d.dns(), "www.example.org", RecordType::A).unwrap();
    assert_eq!(other.rcode, ResponseCode::Refused, "not an open resolver");
    assert!(other.message.answers.is_empty());

    let nx = query(d.dns(), "nope.example.test", RecordType::A).unwrap();
    assert_eq!(nx.rcode, ResponseCode::NXDomain);
    assert_eq!(nx.message.authorities[0].record_type(), RecordType::SOA);
    let nodata = query(d.dns(), "www.example.test", RecordType::AAAA).unwrap();
    assert_eq!(
        (nodata.rcode, nodata.message.answers.len()),
        (ResponseCode::NoError, 0)
    );
}

#[test]
fn answers_over_tcp() {
    let (d, _p, _s) = daemon();
    let mut msg = Message::query();
    msg.add_query(Query::query(
        Name::from_ascii("www.example.test.").unwrap(),
        RecordType::A,
    ));
    let reply = rt()
        .block_on(understudy::dns::client::tcp_query(
            d.dns(),
            &msg,
            Duration::from_secs(2),
        ))
        .unwrap();
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(reply.answers[0].data.to_string(), "127.0.0.1");
}

#[test]
fn garbage_packets_do_not_hurt_it() {
    let (d, _p, _s) = daemon();
    let garbage: Vec<Vec<u8>> = vec![
        vec![],
        vec![0],
        vec![0xff; 12],
        vec![
            0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x0c,
        ], // pointer loop
        vec![
            0x12, 0x34, 0x01, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 3, b'w', b'w',
        ], // lies about counts
        (0..=255u8).cycle().take(3000).collect(),
    ];
    for g in &garbage {
        if let Some(reply) = raw_udp(d.dns(), g) {
            assert_ne!(
                reply.metadata.response_code,
                ResponseCode::NoError,
                "garbage got a NOERROR: {g:?}"
            );
        }
    }
    // TCP: a length prefix that lies, then a hang-up.
    if let Ok(mut s) = TcpStream::connect(d.dns()) {
        let _ = s.write_all(&[0xff, 0xff, 1, 2, 3]);
        drop(s);
    }
    if let Ok(mut s) = TcpStream::connect(d.dns()) {
        let _ = s.write_all(&[0x00, 0x05, 0xde, 0xad, 0xbe, 0xef, 0x00]);
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut buf = [0u8; 512];
        let _ = s.read(&mut buf);
    }
    // Still answering, correctly.
    assert_eq!(
        d.answer("www.example.test"),
        ["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
    );
}

#[test]
fn updates_and_multi_question_messages_are_refused() {
    let (d, _p, _s) = daemon();
    let mut upd = Message::new(7, MessageType::Query, OpCode::Update);
    upd.add_query(Query::query(
        Name::from_ascii("example.test.").unwrap(),
        RecordType::SOA,
    ));
    let reply = raw_udp(d.dns(), &upd.to_vec().unwrap()).expect("an answer");
    assert_eq!(reply.metadata.response_code, ResponseCode::NotImp);

    let mut two = Message::query();
    two.add_query(Query::query(
        Name::from_ascii("www.example.test.").unwrap(),
        RecordType::A,
    ));
    two.add_query(Query::query(
        Name::from_ascii("example.test.").unwrap(),
        RecordType::A,
    ));
    let reply = raw_udp(d.dns(), &two.to_vec().unwrap()).expect("an answer");
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
    assert_eq!(
        d.answer("www.example.test"),
        ["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
    );
}
