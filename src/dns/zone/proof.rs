//! The DNSSEC part of an answer from a signed zone, for a question with the DO bit (RFC 4035
//! §3.1). Without DO, or from an unsigned zone, answers are left as they are.
//!
//! - **An answer**: each RRset's RRSIGs beside it. From a wildcard, the signatures are the
//!   wildcard's with the asked name as owner (their label count tells a validator so), and the
//!   NSEC that covers the asked name proves no closer name exists (§3.1.3.3).
//! - **NODATA**: the NSEC at the name (its type list lacks the asked type); for an empty
//!   non-terminal, which owns none, the NSEC that covers it; from a wildcard, the NSEC covering
//!   the name and the wildcard's own NSEC (§3.1.3.1, §3.1.3.4).
//! - **NXDOMAIN**: the NSEC covering the name and the one covering the wildcard at its closest
//!   encloser, which proves no wildcard could have answered (§3.1.3.2).
//! - **A referral**: the DS set and its RRSIG when the child is signed, else the NSEC at the
//!   delegation point, which proves there is no DS (§3.1.4).
//! - The SOA of a negative answer carries its RRSIG; every NSEC carries its own.

use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

use super::{wildcard_of, Answer, Zone};

pub(super) struct Proof<'z> {
    zone: &'z Zone,
    on: bool,
    answers: Vec<Record>,
    authorities: Vec<Record>,
}

impl<'z> Proof<'z> {
    pub(super) fn new(zone: &'z Zone, dnssec_ok: bool) -> Proof<'z> {
        let on = dnssec_ok
            && zone
                .records
                .contains_key(&(zone.origin.clone(), RecordType::NSEC));
        Proof {
            zone,
            on,
            answers: vec![],
            authorities: vec![],
        }
    }

    /// `records` answered `name` (from `wildcard` when one answered for it).
    pub(super) fn answered(
        &mut self,
        name: &LowerName,
        records: &[Record],
        wildcard: Option<&LowerName>,
    ) {
        if !self.on || records.iter().any(|r| r.record_type() == RecordType::RRSIG) {
            // ANY already carries the name's RRSIGs among its records.
            return;
        }
        let mut types: Vec<RecordType> = records.iter().map(|r| r.record_type()).collect();
        types.dedup();
        let source = wildcard.unwrap_or(name);
        for t in types {
            let sigs = self.sigs(source, t);
            self.answers.extend(sigs.into_iter().map(|mut s| {
                s.name = Name::from(name.clone());
                s
            }));
        }
        if wildcard.is_some() {
            self.covering(name);
        }
    }

    pub(super) fn referred(&mut self, cut: &LowerName) {
        if !self.on {
            return;
        }
        match self.zone.records.get(&(cut.clone(), RecordType::DS)) {
            Some(ds) => {
                self.authorities.extend(ds.iter().cloned());
                let sigs = self.sigs(cut, RecordType::DS);
                self.authorities.extend(sigs);
            }
            None => self.nsec_at(cut),
        }
    }

    pub(super) fn no_data(&mut self, name: &LowerName, wildcard: Option<&LowerName>) {
        if !self.on {
            return;
        }
        match wildcard {
            Some(w) => {
                self.covering(name);
                self.nsec_at(w);
            }
            None if self
                .zone
                .records
                .contains_key(&(name.clone(), RecordType::NSEC)) =>
            {
                self.nsec_at(name)
            }
            None => self.covering(name),
        }
    }

    pub(super) fn no_name(&mut self, name: &LowerName, closest_encloser: &LowerName) {
        if !self.on {
            return;
        }
        self.covering(name);
        if let Some(w) = wildcard_of(closest_encloser) {
            self.covering(&w);
        }
    }

    /// `answer` with the proofs gathered (and the SOA's RRSIG beside a negative answer's SOA).
    pub(super) fn finish(mut self, mut answer: Answer) -> Answer {
        if !self.on {
            return answer;
        }
        if answer
            .authorities
            .iter()
            .any(|r| r.record_type() == RecordType::SOA)
        {
            let sigs = self.sigs(&self.zone.origin, RecordType::SOA);
            self.authorities.extend(sigs);
        }
        answer.answers.extend(self.answers);
        for r in self.authorities {
            if !answer.authorities.contains(&r) {
                answer.authorities.push(r);
            }
        }
        answer
    }

    /// The RRSIGs at `name` over its `rtype` set.
    fn sigs(&self, name: &LowerName, rtype: RecordType) -> Vec<Record> {
        self.zone
            .records
            .get(&(name.clone(), RecordType::RRSIG))
            .map(|sigs| {
                sigs.iter()
                    .filter(|s| match &s.data {
                        RData::DNSSEC(DNSSECRData::RRSIG(sig)) => sig.input().type_covered == rtype,
                        _ => false,
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The NSEC at `name` and its RRSIG.
    fn nsec_at(&mut self, name: &LowerName) {
        if let Some(nsec) = self.zone.records.get(&(name.clone(), RecordType::NSEC)) {
            self.authorities.extend(nsec.iter().cloned());
            let sigs = self.sigs(name, RecordType::NSEC);
            self.authorities.extend(sigs);
        }
    }

    /// The NSEC whose owner is the last one before `name` in canonical order (so its next
    /// name, after `name`, proves `name` is not there), and its RRSIG.
    fn covering(&mut self, name: &LowerName) {
        let before = self
            .zone
            .records
            .range(..(name.clone(), RecordType::Unknown(0)))
            .rev()
            .find(|((_, t), _)| *t == RecordType::NSEC)
            .map(|((n, _), _)| n.clone());
        if let Some(owner) = before {
            self.nsec_at(&owner);
        }
    }
}
