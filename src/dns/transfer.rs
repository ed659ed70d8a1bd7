//! Zone transfers out: AXFR (RFC 5936) and IXFR (RFC 1995), guarded by address and TSIG
//! (RFC 8945). Pure: the server ([`super::server`]) hands in the request's bytes, the peer's
//! address and the time, and sends what comes back.
//!
//! Rules:
//! - **Who may transfer.** Only a configured secondary ([`Peer`]): the request must come from
//!   its IP **and** be signed with its key, for a zone it is configured for. Another address,
//!   or the right address without a signature, gets REFUSED; a signature with a key name no
//!   secondary of that address has gets NOTAUTH/BADKEY, a wrong MAC NOTAUTH/BADSIG (both
//!   unsigned, as RFC 8945 §5.2 requires), a clock off by more than the fudge NOTAUTH/BADTIME
//!   (signed). Every refusal closes the TCP connection.
//! - **AXFR** is the zone's SOA, every other record, and the SOA again, in messages of at most
//!   [`MESSAGE_BYTES`]; the question is in the first message only.
//! - **IXFR** with the client's serial: the same serial (or one the server never published)
//!   gets the SOA alone ("you are current"); a serial in the [`Journal`] gets one condensed
//!   difference (RFC 1995 §6: new SOA, old SOA, deletions, new SOA, additions, new SOA); an
//!   older one falls back to the AXFR form, which RFC 1995 §4 allows.
//! - **Over UDP** a transfer is never sent: AXFR gets FORMERR, IXFR the SOA alone, which tells
//!   the client to ask again over TCP (RFC 1995 §2).
//! - **Signatures.** Every message of a signed transfer is signed: the first over the request's
//!   MAC and the full TSIG variables, each later one over the previous MAC and the timers only
//!   (RFC 8945 §5.3.1).

use std::collections::BTreeSet;
use std::net::IpAddr;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::tsig::{make_tsig_record, TsigError, TSIG};
use hickory_proto::rr::{LowerName, RData, Record, TSigResponseContext, TSigner};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

pub use super::zone::Journal;
use super::zone::Zone;

/// The most bytes of records put in one transfer message (well under TCP's 65,535).
pub const MESSAGE_BYTES: usize = 16 * 1024;
/// The TSIG fudge, seconds: how far the peers' clocks may differ (RFC 8945 recommends 300).
pub const FUDGE: u16 = 300;

/// A secondary allowed to transfer some zones.
#[derive(Clone)]
pub struct Peer {
    pub name: String,
    pub ip: IpAddr,
    pub signer: TSigner,
    pub zones: Vec<LowerName>,
}

/// What a transfer request gets.
#[derive(Debug)]
pub struct Transfer {
    /// The messages to send, in order.
    pub messages: Vec<Vec<u8>>,
    /// Close the connection after sending (every refusal).
    pub close: bool,
    /// For the logs and `status`: who took which serial, and how.
    pub served: Option<Served>,
    /// For the logs: why a request was refused.
    pub refused: Option<String>,
}

/// A transfer that was sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Served {
    pub peer: String,
    pub zone: String,
    pub serial: u32,
    /// "AXFR", "IXFR" (a difference), "IXFR-current" (the SOA alone) or "IXFR-full".
    pub kind: &'static str,
    pub records: usize,
}

/// Answers an AXFR or IXFR `request` (already decoded from `raw`) from `src` at `now`
/// (seconds since the epoch).
pub fn answer(
    zone: Option<&Zone>,
    peers: &[Peer],
    request: &Message,
    raw: &[u8],
    src: IpAddr,
    tcp: bool,
    now: u64,
) -> Transfer {
    let query = &request.queries[0];
    let qname = LowerName::new(query.name());
    let refuse = |rcode: ResponseCode, tsig: Option<TSigResponseContext>, why: String| {
        let mut m = reply(request, rcode);
        if let Some(ctx) = tsig {
            if let Ok(bytes) = m.to_vec() {
                if let Ok(sig) = ctx.sign(&bytes) {
                    m.signature = Some(sig);
                }
            }
        }
        Transfer {
            messages: m.to_vec().into_iter().collect(),
            close: true,
            served: None,
            refused: Some(why),
        }
    };
    let Some(zone) = zone.filter(|z| z.origin == qname) else {
        return refuse(
            ResponseCode::NotAuth,
            None,
            format!("{qname} is not a zone of this server"),
        );
    };
    let (peer, mac) = match authenticate(peers, request, raw, src, &qname, now, "secondary") {
        Ok(ok) => ok,
        Err(r) => return refuse(r.rcode, r.tsig, r.why),
    };
    let ixfr = query.query_type() == hickory_proto::rr::RecordType::IXFR;
    let serial = zone.serial();
    let (records, kind): (Vec<Record>, &'static str) = match ixfr {
        false if !tcp => {
            return refuse(
                ResponseCode::FormErr,
                None,
                format!("{} asked for AXFR of {qname} over UDP", peer.name),
            )
        }
        false => (axfr(zone), "AXFR"),
        true => match client_serial(request) {
            Some(theirs) if !tcp || theirs == serial || newer(theirs, serial) => {
                (vec![zone.soa.clone()], "IXFR-current")
            }
            Some(theirs) => match zone.journal.version(theirs) {
                Some(old) => (ixfr_diff(zone, old), "IXFR"),
                None => (axfr(zone), "IXFR-full"),
            },
            None => {
                return refuse(
                    ResponseCode::FormErr,
                    None,
                    format!(
                        "{} asked for IXFR of {qname} without its SOA in the authority section",
                        peer.name
                    ),
                )
            }
        },
    };
    let mut signing = Some(Chain {
        signer: peer.signer.clone(),
        prev_mac: mac,
        time: now,
        first: true,
    });
    let messages = split(request, &records)
        .into_iter()
        .filter_map(|mut m| {
            if let Some(chain) = signing.as_mut() {
                chain.sign(&mut m)?;
            }
            m.to_vec().ok()
        })
        .collect();
    Transfer {
        messages,
        close: false,
        served: Some(Served {
            peer: peer.name.clone(),
            zone: qname.to_string(),
            serial,
            kind,
            records: records.len(),
        }),
        refused: None,
    }
}

/// Why a signed or transfer request was not accepted, and the (possibly signed) error to send.
pub struct XfrRefusal {
    pub rcode: ResponseCode,
    pub tsig: Option<TSigResponseContext>,
    pub why: String,
}

/// Checks that `request` comes from a `role` ("secondary", "primary") of `zone` at `src`, signed with its key, and
/// returns that secondary and the request's MAC (to sign the answer over).
pub fn authenticate<'p>(
    peers: &'p [Peer],
    request: &Message,
    raw: &[u8],
    src: IpAddr,
    zone: &LowerName,
    now: u64,
    role: &str,
) -> Result<(&'p Peer, Vec<u8>), Box<XfrRefusal>> {
    let qname = zone;
    let refuse = |rcode, tsig, why| Err(Box::new(XfrRefusal { rcode, tsig, why }));
    let candidates: Vec<&Peer> = peers
        .iter()
        .filter(|p| p.ip == src && p.zones.contains(qname))
        .collect();
    if candidates.is_empty() {
        return refuse(
            ResponseCode::Refused,
            None,
            format!("{src} is not a configured {role} of {qname}"),
        );
    }
    let Some(tsig) = request.signature() else {
        return refuse(
            ResponseCode::Refused,
            None,
            format!("the request from {src} for {qname} is not signed with a TSIG key"),
        );
    };
    let Some(peer) = candidates
        .iter()
        .find(|p| p.signer.signer_name() == &tsig.name)
    else {
        return refuse(
            ResponseCode::NotAuth,
            Some(TSigResponseContext::unknown_key(
                request.metadata.id,
                now,
                tsig.name.clone(),
            )),
            format!(
                "{src} signed its request for {qname} with key {}, which no {role} at that address has",
                tsig.name
            ),
        );
    };
    let Ok((mac, _, range)) = peer.signer.verify_message_byte(raw, None, true) else {
        return refuse(
            ResponseCode::NotAuth,
            Some(TSigResponseContext::bad_signature(
                request.metadata.id,
                now,
                peer.signer.clone(),
            )),
            format!(
                "the TSIG signature of {} ({src}) does not verify with key {}: the {role} has another secret",
                peer.name, tsig.name
            ),
        );
    };
    if !range.contains(&now) {
        return refuse(
            ResponseCode::NotAuth,
            Some(TSigResponseContext::new(
                request.metadata.id,
                now,
                peer.signer.clone(),
                mac,
                Some(TsigError::BadTime),
            )),
            format!(
                "the TSIG time of {} ({src}) is more than {FUDGE} s from this server's clock",
                peer.name
            ),
        );
    }
    Ok((*peer, mac))
}

/// Signs the single-message answer `m` to a signed request from a secondary (its SOA
/// queries, say). `None` when the request was not signed; an error answer when it does not
/// verify.
pub fn sign_answer(
    peers: &[Peer],
    request: &Message,
    raw: &[u8],
    src: IpAddr,
    now: u64,
    m: Message,
) -> Option<Message> {
    request.signature()?;
    let zone = LowerName::new(request.queries.first()?.name());
    let mut m = m;
    // A signed query for a name inside the zone: find the secondary by its key alone, zone or
    // not, so a secondary's SOA query for its zone is answered signed.
    let ctx = match authenticate(peers, request, raw, src, &zone, now, "secondary") {
        Ok((peer, mac)) => {
            TSigResponseContext::new(request.metadata.id, now, peer.signer.clone(), mac, None)
        }
        Err(r) => {
            m = reply(request, r.rcode);
            r.tsig?
        }
    };
    let bytes = m.to_vec().ok()?;
    m.signature = Some(ctx.sign(&bytes).ok()?);
    Some(m)
}

/// RFC 1982 serial arithmetic: whether `a` is newer than `b`.
pub fn newer(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < (1 << 31)
}

fn client_serial(request: &Message) -> Option<u32> {
    request.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    })
}

/// The whole zone: SOA, the rest, SOA.
fn axfr(zone: &Zone) -> Vec<Record> {
    let mut out = vec![zone.soa.clone()];
    out.extend(zone.records_but_soa().cloned());
    out.push(zone.soa.clone());
    out
}

/// One condensed difference from `old` (a journal version, SOA included) to `zone`.
fn ixfr_diff(zone: &Zone, old: &[Record]) -> Vec<Record> {
    let key = |r: &Record| {
        (
            LowerName::new(&r.name),
            r.record_type(),
            r.ttl,
            r.data.clone(),
        )
    };
    let is_soa = |r: &&Record| matches!(r.data, RData::SOA(_));
    let new: Vec<&Record> = zone.records_but_soa().collect();
    let new_keys: BTreeSet<_> = new.iter().map(|r| key(r)).collect();
    let old_keys: BTreeSet<_> = old.iter().filter(|r| !is_soa(r)).map(key).collect();
    let old_soa = old
        .iter()
        .find(|r| is_soa(r))
        .cloned()
        .unwrap_or_else(|| zone.soa.clone());
    let mut out = vec![zone.soa.clone(), old_soa];
    out.extend(
        old.iter()
            .filter(|r| !is_soa(r) && !new_keys.contains(&key(r)))
            .cloned(),
    );
    out.push(zone.soa.clone());
    out.extend(
        new.into_iter()
            .filter(|r| !old_keys.contains(&key(r)))
            .cloned(),
    );
    out.push(zone.soa.clone());
    out
}

/// The empty answer to `request` with `rcode`: its id, opcode and question.
pub fn reply(request: &Message, rcode: ResponseCode) -> Message {
    let mut m = Message::new(
        request.metadata.id,
        MessageType::Response,
        request.metadata.op_code,
    );
    m.metadata.response_code = rcode;
    m.metadata.recursion_desired = request.metadata.recursion_desired;
    m.queries = request.queries.clone();
    m
}

/// `records` in messages of at most [`MESSAGE_BYTES`] of records each (always at least one
/// record per message, and at least one message).
fn split(request: &Message, records: &[Record]) -> Vec<Message> {
    let mut out = vec![];
    let mut current = reply(request, ResponseCode::NoError);
    current.metadata.authoritative = true;
    let mut bytes = 0;
    for r in records {
        let size = record_len(r);
        if !current.answers.is_empty() && bytes + size > MESSAGE_BYTES {
            let mut next = reply(request, ResponseCode::NoError);
            next.metadata.authoritative = true;
            next.queries.clear();
            out.push(std::mem::replace(&mut current, next));
            bytes = 0;
        }
        current.answers.push(r.clone());
        bytes += size;
    }
    out.push(current);
    out
}

fn record_len(r: &Record) -> usize {
    let mut buf = Vec::with_capacity(64);
    let mut enc = BinEncoder::new(&mut buf);
    match r.emit(&mut enc) {
        Ok(()) => buf.len(),
        Err(_) => 512,
    }
}

/// The TSIG chain of a multi-message answer.
struct Chain {
    signer: TSigner,
    prev_mac: Vec<u8>,
    time: u64,
    first: bool,
}

impl Chain {
    fn sign(&mut self, m: &mut Message) -> Option<()> {
        let unsigned = m.to_vec().ok()?;
        let id = m.metadata.id;
        let record = match self.first {
            true => TSigResponseContext::new(
                id,
                self.time,
                self.signer.clone(),
                self.prev_mac.clone(),
                None,
            )
            .sign(&unsigned)
            .ok()?,
            false => {
                let mut tbs = Vec::with_capacity(unsigned.len() + self.prev_mac.len() + 10);
                tbs.extend_from_slice(&(self.prev_mac.len() as u16).to_be_bytes());
                tbs.extend_from_slice(&self.prev_mac);
                tbs.extend_from_slice(&unsigned);
                tbs.extend_from_slice(&((self.time >> 32) as u16).to_be_bytes());
                tbs.extend_from_slice(&(self.time as u32).to_be_bytes());
                tbs.extend_from_slice(&self.signer.fudge().to_be_bytes());
                let mac = self.signer.sign(&tbs).ok()?;
                let tsig = TSIG::new(
                    self.signer.algorithm().clone(),
                    self.time,
                    self.signer.fudge(),
                    mac,
                    id,
                    None,
                    vec![],
                );
                Box::new(make_tsig_record(self.signer.signer_name().clone(), tsig))
            }
        };
        self.prev_mac = record.data.mac.clone();
        self.first = false;
        m.signature = Some(record);
        Some(())
    }
}

#[cfg(test)]
mod tests;
