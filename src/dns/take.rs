//! Zone transfers in: the request this server sends its primary for a zone it holds as a
//! secondary, and the answer's messages turned into the zone's next version. Pure: the
//! replica task ([`super::replica`]) owns the connection and the TSIG verifier, and feeds each
//! verified message to a [`Taker`].
//!
//! Rules:
//! - **The request.** With a version held: IXFR carrying its SOA in the authority section
//!   (RFC 1995 §3); with none: AXFR. The IXFR is also the SOA check: a primary with nothing
//!   newer answers the SOA alone.
//! - **The answer's forms** (RFC 1995 §4, RFC 5936 §2.2), told apart by the first two records:
//!   a single SOA whose serial is not newer than the held one: up to date; SOA(n), SOA(old)
//!   with old ≠ n: a chain of differences, each "SOA(from), deletions, SOA(to), additions",
//!   ending at the SOA(n) that would start a difference from n; SOA(n) and anything else: the
//!   whole zone, ending at the second SOA(n).
//! - **What is refused** (the transfer fails, nothing held changes): an rcode other than
//!   NOERROR; a record outside the zone, of a class other than IN, or a second SOA name; a
//!   first record that is not the zone's SOA; a difference that starts from a serial other
//!   than the one reached, or deletes a record the version does not hold; an answer whose
//!   serial is not newer than the held one (RFC 1982), so serials only move forward however
//!   either server restarts; more than [`MAX_RECORDS`] records; records after the end. An
//!   IXFR refused for its content is asked again as AXFR by the caller.
//! - **Matching.** A deletion matches a held record by name (case-insensitive), type and data;
//!   the TTL is not part of a record's identity.

use std::collections::BTreeMap;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};

use super::transfer::newer;

/// The most records one transfer may hold (a bound on memory for a hostile primary).
pub const MAX_RECORDS: usize = 1_000_000;

/// The transfer request for `zone`, given the SOA of the version held (if any).
pub fn request(zone: &Name, held_soa: Option<&Record>, id: u16) -> Message {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    let rtype = match held_soa {
        Some(_) => RecordType::IXFR,
        None => RecordType::AXFR,
    };
    let mut q = Query::query(zone.clone(), rtype);
    q.set_query_class(DNSClass::IN);
    m.add_query(q);
    if let Some(soa) = held_soa {
        m.add_authority(soa.clone());
    }
    m
}

/// What a finished transfer gave.
#[derive(Debug, PartialEq)]
pub enum Taken {
    /// Nothing newer than the held version.
    UpToDate { serial: u32 },
    /// The zone's new version: every record, the SOA first.
    Version {
        records: Vec<Record>,
        /// "AXFR", "IXFR" (differences) or "IXFR-full" (an IXFR answered with the whole zone).
        kind: &'static str,
    },
}

/// Why a transfer was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakeError(pub String);

impl std::fmt::Display for TakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TakeError {}

type Key = (LowerName, RecordType, RData);

fn key(r: &Record) -> Key {
    (LowerName::new(&r.name), r.record_type(), r.data.clone())
}

fn soa_serial(r: &Record) -> Option<u32> {
    match &r.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    }
}

#[derive(Debug)]
enum Stage {
    /// Before the first record.
    Start,
    /// After the first SOA, before the second record.
    AfterFirst,
    /// Whole zone: collecting until the closing SOA.
    Full,
    /// In a difference: deleting records until the SOA it goes to.
    Deleting,
    /// In a difference: adding records until the next SOA.
    Adding,
    Done,
}

/// Reads one transfer's answer, message by message.
pub struct Taker {
    origin: LowerName,
    ixfr: bool,
    held_serial: Option<u32>,
    /// The held version's records (SOA excluded), for differences.
    held: BTreeMap<Key, Record>,
    stage: Stage,
    /// The serial the answer ends at (its first SOA).
    end: u32,
    end_soa: Option<Record>,
    /// The serial the differences have reached.
    at: u32,
    /// The version being built (SOA excluded).
    records: BTreeMap<Key, Record>,
    count: usize,
    kind: &'static str,
}

impl Taker {
    /// Reads the answer to [`request`] for `origin`; `held` is the version held (SOA first),
    /// if any.
    pub fn new(origin: &Name, held: Option<&[Record]>) -> Taker {
        let held_serial = held.and_then(|h| h.iter().find_map(soa_serial));
        let held = held
            .unwrap_or_default()
            .iter()
            .filter(|r| r.record_type() != RecordType::SOA)
            .map(|r| (key(r), r.clone()))
            .collect();
        Taker {
            origin: LowerName::new(origin),
            ixfr: held_serial.is_some(),
            held_serial,
            held,
            stage: Stage::Start,
            end: 0,
            end_soa: None,
            at: 0,
            records: BTreeMap::new(),
            count: 0,
            kind: "AXFR",
        }
    }

    fn refuse<T>(&self, why: impl Into<String>) -> Result<T, TakeError> {
        Err(TakeError(why.into()))
    }

    /// Takes the next message of the answer; `Some` once the answer is complete (later
    /// messages are an error).
    pub fn feed(&mut self, m: &Message) -> Result<Option<Taken>, TakeError> {
        if m.metadata.message_type != MessageType::Response {
            return self.refuse("a message that is not a response");
        }
        if m.metadata.response_code != ResponseCode::NoError {
            return self.refuse(format!(
                "the primary answered {}{}",
                m.metadata.response_code,
                match m.metadata.response_code {
                    ResponseCode::Refused | ResponseCode::NotAuth =>
                        ": it does not allow this server (address and TSIG key) to transfer the zone",
                    _ => "",
                }
            ));
        }
        for r in &m.answers {
            self.record(r)?;
        }
        match self.stage {
            Stage::Done => Ok(Some(self.finish())),
            // A single SOA in the whole first message: up to date (or over UDP, "ask by TCP").
            Stage::AfterFirst if self.ixfr => {
                if let Some(held) = self.held_serial {
                    if !newer(self.end, held) {
                        self.stage = Stage::Done;
                        return Ok(Some(Taken::UpToDate { serial: held }));
                    }
                }
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    fn record(&mut self, r: &Record) -> Result<(), TakeError> {
        let name = LowerName::new(&r.name);
        if r.dns_class != DNSClass::IN {
            return self.refuse(format!("a record of class {}: {r}", r.dns_class));
        }
        if !self.origin.zone_of(&name) {
            return self.refuse(format!("{} is outside the zone {}", r.name, self.origin));
        }
        self.count += 1;
        if self.count > MAX_RECORDS {
            return self.refuse(format!("more than {MAX_RECORDS} records"));
        }
        let serial = soa_serial(r);
        if serial.is_some() && name != self.origin {
            return self.refuse(format!("an SOA record at {} below the apex", r.name));
        }
        match (&self.stage, serial) {
            (Stage::Start, Some(s)) => {
                if let Some(held) = self.held_serial {
                    if s != held && !newer(s, held) {
                        return self.refuse(format!(
                            "the primary's serial {s} is older than the one held here ({held}); keeping {held}"
                        ));
                    }
                }
                self.end = s;
                self.end_soa = Some(r.clone());
                self.stage = Stage::AfterFirst;
            }
            (Stage::Start, None) => {
                return self.refuse(format!("the answer starts with {r}, not the zone's SOA"))
            }
            (Stage::AfterFirst, Some(s)) if self.ixfr && s != self.end => {
                if Some(s) != self.held_serial {
                    return self.refuse(format!(
                        "the differences start from serial {s}, not the held {}",
                        self.held_serial.unwrap_or_default()
                    ));
                }
                self.kind = "IXFR";
                self.records = std::mem::take(&mut self.held);
                self.at = s;
                self.stage = Stage::Deleting;
            }
            (Stage::AfterFirst, Some(_)) => {
                // SOA, SOA: the whole zone is the SOA alone.
                self.kind = if self.ixfr { "IXFR-full" } else { "AXFR" };
                self.stage = Stage::Done;
            }
            (Stage::AfterFirst, None) => {
                self.kind = if self.ixfr { "IXFR-full" } else { "AXFR" };
                self.records.insert(key(r), r.clone());
                self.stage = Stage::Full;
            }
            (Stage::Full, Some(s)) if s == self.end => self.stage = Stage::Done,
            (Stage::Full, Some(s)) => {
                return self.refuse(format!(
                    "a second SOA (serial {s}) inside the zone of serial {}",
                    self.end
                ))
            }
            (Stage::Full, None) => {
                self.records.insert(key(r), r.clone());
            }
            (Stage::Deleting, Some(s)) => {
                if !newer(s, self.at) {
                    return self.refuse(format!(
                        "a difference from serial {} to {s}, which is not newer",
                        self.at
                    ));
                }
                self.at = s;
                self.stage = Stage::Adding;
            }
            (Stage::Deleting, None) => {
                if self.records.remove(&key(r)).is_none() {
                    return self.refuse(format!(
                        "a difference deletes {r}, which serial {} does not hold",
                        self.at
                    ));
                }
            }
            (Stage::Adding, Some(s)) if s == self.end && self.at == self.end => {
                self.stage = Stage::Done
            }
            (Stage::Adding, Some(s)) => {
                if s != self.at {
                    return self.refuse(format!(
                        "a difference starts from serial {s}, but the differences reached {}",
                        self.at
                    ));
                }
                self.stage = Stage::Deleting;
            }
            (Stage::Adding, None) => {
                self.records.insert(key(r), r.clone());
            }
            (Stage::Done, _) => {
                return self.refuse(format!("a record after the transfer's closing SOA: {r}"))
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Taken {
        if self.kind != "IXFR" && self.held_serial == Some(self.end) {
            // The whole zone again at the held serial: nothing newer.
            return Taken::UpToDate { serial: self.end };
        }
        let soa = self.end_soa.take().expect("done after the first SOA");
        let mut records = vec![soa];
        records.extend(std::mem::take(&mut self.records).into_values());
        Taken::Version {
            records,
            kind: self.kind,
        }
    }

    /// Whether the answer so far is a complete one (for a connection that ends).
    pub fn done(&self) -> bool {
        matches!(self.stage, Stage::Done)
    }
}

#[cfg(test)]
mod tests;
