//! DNS: the records understudy manages and the built-in authoritative server that serves them.
//!
//! - [`ManagedRecords`]: the desired A/AAAA values, computed by the controller from the
//!   decision core (design.md invariant 1: one owner per record).
//! - [`zone`]: builds the served zones from static config plus managed records, and answers
//!   queries from them (pure, no sockets).
//! - [`server`]: the listener (UDP and TCP) that answers from the current zones,
//!   swapped atomically on every change.
//! - [`builtin`]: the built-in zones' publisher, which the controller calls directly.
//! - [`provider`]: the contract of an external DNS (Route 53, RFC 2136, PowerDNS, Cloudflare)
//!   and one adapter per service; [`crate::reconcile`] drives them from the same
//!   `ManagedRecords`.
//! - [`transfer`] / [`notify`]: zone transfers and NOTIFY out, to `[[dns.secondaries]]`;
//!   [`take`] / [`replica`]: zones taken in from `[[dns.primaries]]` and served as their
//!   secondary.
//! - [`client`]: a minimal stub query, used by `status`, verification, the demo and the tests to
//!   ask a server.

pub mod builtin;
pub mod client;
pub mod keys;
pub mod notify;
pub mod provider;
pub mod quick;
pub mod replica;
pub mod respond;
pub mod rollover;
pub mod server;
pub mod take;
pub mod transfer;
pub mod zone;

use std::collections::BTreeMap;
use std::net::IpAddr;

use hickory_proto::rr::{Name, RecordType};

/// The desired value of every record understudy manages: (name, type) → addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManagedRecords(pub BTreeMap<(Name, RecordType), Vec<IpAddr>>);

impl ManagedRecords {
    pub fn set(&mut self, name: Name, rtype: RecordType, addrs: Vec<IpAddr>) {
        self.0.insert((name, rtype), addrs);
    }

    /// "www.example.com. A 192.0.2.1; example.com. A 192.0.2.1" — for logs and the event log.
    pub fn describe<'a>(&self, names: impl IntoIterator<Item = &'a Name>) -> String {
        let names: Vec<&Name> = names.into_iter().collect();
        self.0
            .iter()
            .filter(|((n, _), _)| names.contains(&n))
            .map(|((n, t), a)| {
                let addrs: Vec<String> = a.iter().map(|ip| ip.to_string()).collect();
                format!("{n} {t} {}", addrs.join(","))
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}
