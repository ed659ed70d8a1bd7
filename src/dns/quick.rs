//! Answers given once, reused: the built-in server's per-worker answer cache. Pure: a map and
//! the byte work around it; the server ([`super::server`]) owns one per UDP worker and clears it
//! whenever the zones are replaced.
//!
//! Only a **plain query** is answered from here, recognised on its bytes without decoding the
//! message: QR clear, opcode QUERY, one question (its name in plain labels, no compression),
//! class IN, not a zone transfer, no answer or authority records, and at most one additional
//! record, an OPT of EDNS version 0 — so no TSIG, no NOTIFY, nothing whose answer depends on
//! who asks or when. Everything else, and the first question of each kind, goes to
//! [`super::respond::respond`].
//!
//! Two plain queries have the same answer, byte for byte, when their [`QuestionKey`]s are
//! equal (the question as sent, letter case included; EDNS or not and the DO bit; the size
//! limit the answer must fit: 512, the client's EDNS size capped at
//! [`UDP_MAX`](super::respond::UDP_MAX), or TCP's 65,535) — except for what [`Quick::get`]
//! patches in: the request's ID and its RD bit. The case stays in the key because the answer's
//! names are compressed against the question only where the case is the same, so a question in
//! other letters gives other bytes (a resolver that randomises the case, "0x20", fills an entry
//! per spelling). A property test checks this against `respond` for random questions, IDs,
//! cases and sizes.
//!
//! Only NOERROR, NXDOMAIN and REFUSED answers are kept, at most [`MAX_ANSWERS`] per worker
//! (then the cache starts over, so a flood of random names costs memory once, not forever).

use std::collections::HashMap;

use hickory_proto::op::ResponseCode;

use super::respond::UDP_MAX;

/// Answers kept per worker before the cache starts over.
pub const MAX_ANSWERS: usize = 16_384;

/// What a reusable answer is looked up by (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct QuestionKey(Vec<u8>);

/// Where the question's name lies in a request (and in its answer): from byte 12 on.
const QNAME_AT: usize = 12;

/// The key of `raw` if it is a plain query, with the length of its question's name.
pub fn key(raw: &[u8], tcp: bool) -> Option<(QuestionKey, usize)> {
    if raw.len() < 17 || raw[2] & 0x80 != 0 || (raw[2] >> 3) & 0x0f != 0 {
        return None;
    }
    let count = |at: usize| u16::from_be_bytes([raw[at], raw[at + 1]]);
    let (qd, an, ns, ar) = (count(4), count(6), count(8), count(10));
    if qd != 1 || an != 0 || ns != 0 || ar > 1 {
        return None;
    }
    // The name: plain labels up to the root label.
    let mut at = QNAME_AT;
    loop {
        let len = usize::from(*raw.get(at)?);
        if len == 0 {
            at += 1;
            break;
        }
        if len > 63 {
            return None;
        }
        at += 1 + len;
        if at - QNAME_AT > 255 {
            return None;
        }
    }
    let qlen = at - QNAME_AT;
    let question_end = at + 4;
    let question = raw.get(QNAME_AT..question_end)?;
    let qtype = u16::from_be_bytes([raw[at], raw[at + 1]]);
    let qclass = u16::from_be_bytes([raw[at + 2], raw[at + 3]]);
    // Transfers and the OPT pseudo-type are never plain; the class must be IN.
    if qclass != 1 || matches!(qtype, 41 | 250 | 251 | 252) {
        return None;
    }
    let (edns, dnssec_ok, payload) = match ar {
        0 if raw.len() == question_end => (false, false, 512),
        1 => {
            // An OPT record: root owner, type 41, class = payload, TTL = ext-rcode, version,
            // flags; then its options, which must end the message.
            let opt = raw.get(question_end..question_end + 11)?;
            let rdlen = usize::from(u16::from_be_bytes([opt[9], opt[10]]));
            if opt[0] != 0
                || opt[1..3] != [0, 41]
                || opt[5..7] != [0, 0]
                || raw.len() != question_end + 11 + rdlen
            {
                return None;
            }
            let payload = u16::from_be_bytes([opt[3], opt[4]]).clamp(512, UDP_MAX);
            (true, opt[7] & 0x80 != 0, payload)
        }
        _ => return None,
    };
    let limit: u16 = if tcp { u16::MAX } else { payload };
    let mut k = Vec::with_capacity(question.len() + 4);
    k.push(u8::from(edns) | u8::from(dnssec_ok) << 1);
    k.extend_from_slice(&limit.to_be_bytes());
    k.extend_from_slice(question);
    Some((QuestionKey(k), qlen))
}

/// One worker's answers, valid for one version of the zones.
#[derive(Default)]
pub struct Quick {
    answers: HashMap<QuestionKey, (Vec<u8>, ResponseCode)>,
}

impl Quick {
    /// Forgets every answer (the zones were replaced).
    pub fn clear(&mut self) {
        self.answers.clear();
    }

    /// The kept answer for `key`, made the answer to `raw`: its ID and RD bit.
    pub fn get(&self, key: &QuestionKey, raw: &[u8]) -> Option<(Vec<u8>, ResponseCode)> {
        let (template, rcode) = self.answers.get(key)?;
        let mut out = template.clone();
        out[0] = raw[0];
        out[1] = raw[1];
        out[2] = (out[2] & !0x01) | (raw[2] & 0x01);
        Some((out, *rcode))
    }

    /// Keeps `answer` (the one message [`super::respond::respond`] gave to a plain query of
    /// `key`) when it is of a kind worth keeping.
    pub fn put(&mut self, key: QuestionKey, qlen: usize, answer: &[u8], rcode: ResponseCode) {
        let keep = matches!(
            rcode,
            ResponseCode::NoError | ResponseCode::NXDomain | ResponseCode::Refused
        );
        // The answer echoes the question in place (it always does; checked, not assumed).
        let echoes = answer.len() >= QNAME_AT + qlen
            && answer[4..6] == [0, 1]
            && answer[QNAME_AT..QNAME_AT + qlen] == key.0[3..3 + qlen];
        if !keep || !echoes {
            return;
        }
        if self.answers.len() >= MAX_ANSWERS {
            self.answers.clear();
        }
        self.answers.insert(key, (answer.to_vec(), rcode));
    }

    pub fn len(&self) -> usize {
        self.answers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }
}

#[cfg(test)]
mod tests;
