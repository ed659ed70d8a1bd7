//! One DNS request in, the bytes to send back out. Pure: the server ([`super::server`]) owns
//! the sockets and hands in the request, the peer, the transport and the time.
//!
//! Rules, in order:
//! - shorter than a header, or a response (QR set): dropped, never answered (no loops);
//! - undecodable: FORMERR with the request's id;
//! - an OPT record of EDNS version above 0: BADVERS with an OPT of version 0 (RFC 6891 §6.1.3);
//! - NOTIFY (RFC 1996) for a zone held as a secondary: from its primary's IP, signed with its
//!   key, NOERROR (signed) and the zone is named in [`DnsReply::notified`], so it is asked for
//!   at once; from anyone else the same refusals as a transfer ([`transfer::authenticate`]);
//!   NOTIFY for any other zone NOTAUTH;
//! - any other opcode than QUERY: NOTIMP, the header alone (as BIND answers it);
//! - zero or several questions: FORMERR (RFC 9619), the header alone;
//! - the classes CH, HS, NONE and ANY: REFUSED (this includes CHAOS `version.bind`: the
//!   server does not say what it runs, where BIND with `version none` answers NODATA); any
//!   other class: NOTIMP;
//! - AXFR and IXFR: [`super::transfer`];
//! - anything else: [`ZoneSet::lookup`], with the AA bit when authoritative.
//!
//! Over UDP an answer is at most 512 bytes without EDNS and at most the smaller of the client's
//! EDNS buffer and [`UDP_MAX`] with it; a bigger one is sent as the question alone with TC set,
//! so the client asks again over TCP.

use std::net::SocketAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, LowerName, RecordType};

use super::transfer::{self, Peer, Served};
use super::zone::ZoneSet;

/// The largest UDP answer this server sends (the DNS flag day 2020 value).
pub const UDP_MAX: u16 = 1232;

/// What to send back.
#[derive(Debug, Default)]
pub struct DnsReply {
    pub messages: Vec<Vec<u8>>,
    /// Close the TCP connection after sending.
    pub close: bool,
    /// The response code of the (first) answer, for the metrics; `None` when nothing is sent.
    pub rcode: Option<ResponseCode>,
    pub served: Option<Served>,
    pub refused: Option<String>,
    /// A zone whose primary sent an accepted NOTIFY.
    pub notified: Option<LowerName>,
}

/// Answers one request from `src`.
pub fn respond(
    zones: &ZoneSet,
    peers: &[Peer],
    primaries: &[Peer],
    raw: &[u8],
    src: SocketAddr,
    tcp: bool,
    now: u64,
) -> DnsReply {
    if raw.len() < 12 || raw[2] & 0x80 != 0 {
        return DnsReply::default();
    }
    let request = match Message::from_vec(raw) {
        Ok(m) => m,
        Err(_) => {
            let mut m = Message::new(
                u16::from_be_bytes([raw[0], raw[1]]),
                MessageType::Response,
                OpCode::from_u8((raw[2] >> 3) & 0x0f),
            );
            m.metadata.response_code = ResponseCode::FormErr;
            return single(m, ResponseCode::FormErr);
        }
    };
    // The DO bit is copied into the answer (RFC 3225 §3).
    let edns = request.edns.as_ref().map(|asked| {
        let mut e = Edns::new();
        e.set_max_payload(UDP_MAX);
        e.set_version(0);
        e.set_dnssec_ok(asked.flags().dnssec_ok);
        e
    });
    let fail = |rcode: ResponseCode| {
        let mut m = transfer::reply(&request, rcode);
        m.edns = edns.clone();
        single(m, rcode)
    };
    if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
        return fail(ResponseCode::BADVERS);
    }
    if request.metadata.op_code == OpCode::Notify && request.queries.len() == 1 {
        return notified(primaries, &request, raw, src, now);
    }
    // As BIND answers them: the header alone, no question (and for NOTIMP, no RD either).
    let bare = |rcode: ResponseCode, rd: bool| {
        let mut m = transfer::reply(&request, rcode);
        m.queries.clear();
        m.metadata.recursion_desired = rd;
        m.edns = edns.clone();
        single(m, rcode)
    };
    if request.metadata.op_code != OpCode::Query {
        return bare(ResponseCode::NotImp, false);
    }
    if request.queries.len() != 1 {
        return bare(ResponseCode::FormErr, request.metadata.recursion_desired);
    }
    let q = &request.queries[0];
    match q.query_class() {
        DNSClass::IN => {}
        // A class nobody serves: not implemented.
        DNSClass::Unknown(_) | DNSClass::OPT(_) => return fail(ResponseCode::NotImp),
        _ => return fail(ResponseCode::Refused),
    }
    let qtype = q.query_type();
    if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
        let qname = LowerName::new(q.name());
        let zone = zones.zones.iter().find(|z| z.origin == qname);
        let t = transfer::answer(zone, peers, &request, raw, src.ip(), tcp, now);
        let rcode = t
            .messages
            .first()
            .and_then(|m| Message::from_vec(m).ok())
            .map(|m| m.metadata.response_code);
        return DnsReply {
            messages: t.messages,
            close: t.close,
            rcode,
            served: t.served,
            refused: t.refused,
            notified: None,
        };
    }
    let dnssec_ok = request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
    let answer = zones.lookup(&LowerName::new(q.name()), qtype, dnssec_ok);
    let mut m = transfer::reply(&request, answer.rcode);
    m.metadata.authoritative = answer.authoritative;
    m.edns = edns;
    m.answers = answer.answers;
    m.authorities = answer.authorities;
    m.additionals = answer.additionals;
    // A signed query (a secondary's SOA check) gets a signed answer.
    let mut m = match request.signature() {
        Some(_) => {
            transfer::sign_answer(peers, &request, raw, src.ip(), now, m.clone()).unwrap_or(m)
        }
        None => m,
    };
    let limit = match (tcp, &request.edns) {
        (true, _) => usize::from(u16::MAX),
        (false, None) => 512,
        (false, Some(e)) => usize::from(e.max_payload().clamp(512, UDP_MAX)),
    };
    match m.to_vec() {
        Ok(bytes) if bytes.len() <= limit => DnsReply {
            messages: vec![bytes],
            rcode: Some(answer.rcode),
            ..Default::default()
        },
        _ => {
            m.answers.clear();
            m.authorities.clear();
            m.additionals.clear();
            m.signature = None;
            m.metadata.truncation = true;
            single(m, answer.rcode)
        }
    }
}

/// The answer to a NOTIFY: accepted only from a zone's primary, by address and key.
fn notified(
    primaries: &[Peer],
    request: &Message,
    raw: &[u8],
    src: SocketAddr,
    now: u64,
) -> DnsReply {
    let zone = LowerName::new(request.queries[0].name());
    if !primaries.iter().any(|p| p.zones.contains(&zone)) {
        let mut r = single(
            transfer::reply(request, ResponseCode::NotAuth),
            ResponseCode::NotAuth,
        );
        r.refused = Some(format!(
            "NOTIFY from {src} for {zone}, which this server does not hold as a secondary"
        ));
        return r;
    }
    let (rcode, ctx, why) =
        match transfer::authenticate(primaries, request, raw, src.ip(), &zone, now, "primary") {
            Ok((peer, mac)) => (
                ResponseCode::NoError,
                Some(hickory_proto::rr::TSigResponseContext::new(
                    request.metadata.id,
                    now,
                    peer.signer.clone(),
                    mac,
                    None,
                )),
                None,
            ),
            Err(r) => (r.rcode, r.tsig, Some(format!("NOTIFY {}", r.why))),
        };
    let mut m = transfer::reply(request, rcode);
    m.metadata.authoritative = rcode == ResponseCode::NoError;
    if let (Some(ctx), Ok(bytes)) = (ctx, m.to_vec()) {
        m.signature = ctx.sign(&bytes).ok();
    }
    let mut r = single(m, rcode);
    match why {
        Some(why) => r.refused = Some(why),
        None => r.notified = Some(zone),
    }
    r
}

fn single(m: Message, rcode: ResponseCode) -> DnsReply {
    DnsReply {
        messages: m.to_vec().into_iter().collect(),
        rcode: Some(rcode),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;

    fn zones() -> ZoneSet {
        let cfg = crate::config::parse(
            std::path::Path::new("t.toml"),
            "[[dns.zones]]\nname = \"example.test\"\nrecords = [\"www A 192.0.2.1\"]\n",
        )
        .unwrap();
        let z = &cfg.dns.zones[0];
        let apex = super::super::zone::Apex {
            origin: &z.origin,
            nameservers: &z.nameservers,
            hostmaster: &z.hostmaster,
        };
        ZoneSet {
            zones: vec![super::super::zone::Zone::build(
                &apex,
                &z.records,
                &Default::default(),
                30,
                5,
            )],
            published_ms: 0,
        }
    }

    fn ask(m: &Message, tcp: bool) -> Message {
        let r = respond(
            &zones(),
            &[],
            &[],
            &m.to_vec().unwrap(),
            "127.0.0.1:5000".parse().unwrap(),
            tcp,
            0,
        );
        Message::from_vec(&r.messages[0]).unwrap()
    }

    fn query(name: &str, t: RecordType) -> Message {
        let mut m = Message::query();
        m.metadata.id = 77;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        m
    }

    #[test]
    fn answers_with_the_request_id_and_question() {
        let a = ask(&query("WWW.example.test.", RecordType::A), false);
        assert_eq!(a.metadata.id, 77);
        assert_eq!(a.metadata.response_code, ResponseCode::NoError);
        assert!(a.metadata.authoritative);
        assert_eq!(a.answers.len(), 1);
        assert_eq!(
            a.queries[0].name().to_string(),
            "WWW.example.test.",
            "the question keeps its case"
        );
    }

    #[test]
    fn edns_version_1_gets_badvers() {
        let mut m = query("www.example.test.", RecordType::A);
        let mut e = Edns::new();
        e.set_version(1);
        m.edns = Some(e);
        let a = ask(&m, false);
        // 16 is BADVERS in an answer without TSIG (hickory decodes it as its twin, BADSIG).
        assert_eq!(u16::from(a.metadata.response_code), 16);
        assert_eq!(a.edns.as_ref().map(|e| e.version()), Some(0));
    }

    #[test]
    fn other_opcodes_classes_and_question_counts() {
        let mut m = query("www.example.test.", RecordType::A);
        m.metadata.op_code = OpCode::Update;
        assert_eq!(ask(&m, false).metadata.response_code, ResponseCode::NotImp);
        let mut m = query("version.bind.", RecordType::TXT);
        m.queries[0].set_query_class(DNSClass::CH);
        assert_eq!(ask(&m, false).metadata.response_code, ResponseCode::Refused);
        let mut m = query("www.example.test.", RecordType::A);
        m.queries.clear();
        assert_eq!(ask(&m, false).metadata.response_code, ResponseCode::FormErr);
        let mut m = query("www.example.test.", RecordType::A);
        m.add_query(Query::query(
            Name::from_ascii("example.test.").unwrap(),
            RecordType::SOA,
        ));
        assert_eq!(ask(&m, false).metadata.response_code, ResponseCode::FormErr);
    }

    #[test]
    fn responses_and_runts_are_dropped_garbage_gets_formerr() {
        let z = zones();
        let src = "127.0.0.1:1".parse().unwrap();
        assert!(respond(&z, &[], &[], &[0; 5], src, false, 0)
            .messages
            .is_empty());
        let mut resp = query("www.example.test.", RecordType::A);
        resp.metadata.message_type = MessageType::Response;
        let bytes = resp.to_vec().unwrap();
        assert!(respond(&z, &[], &[], &bytes, src, false, 0)
            .messages
            .is_empty());
        let mut garbage = bytes.clone();
        garbage[2] = 0;
        garbage.truncate(20);
        let r = respond(&z, &[], &[], &garbage, src, false, 0);
        let m = Message::from_vec(&r.messages[0]).unwrap();
        assert_eq!(
            (m.metadata.id, m.metadata.response_code),
            (77, ResponseCode::FormErr)
        );
    }

    #[test]
    fn a_transfer_from_a_stranger_is_refused_and_closes() {
        let z = zones();
        let m = query("example.test.", RecordType::AXFR);
        let src = "127.0.0.1:1".parse().unwrap();
        let r = respond(&z, &[], &[], &m.to_vec().unwrap(), src, true, 0);
        assert!(r.close);
        assert_eq!(r.rcode, Some(ResponseCode::Refused));
        assert!(r.refused.unwrap().contains("not a configured secondary"));
    }
}
