//! NOTIFY out (RFC 1996) to the secondaries of the built-in zones, and what each secondary
//! has been told and has taken ([`SecondaryBoard`], shown by `status`).
//!
//! [`run`] watches the published zones ([`super::server::ZoneHandle::subscribe`]). At start,
//! and whenever a zone's serial moves, every secondary of that zone (and every
//! `dns.also_notify` address) is sent a NOTIFY: opcode NOTIFY, AA set, the zone's SOA as the
//! question and its new SOA as the answer, signed with the secondary's TSIG key (also_notify
//! addresses unsigned). It is sent again after 1 s, 2 s, 4 s ... up to every 60 s until the
//! secondary answers NOERROR (signed with the same key, when the NOTIFY was), or a newer
//! serial replaces it. After [`WARN_AFTER`] unanswered tries the logs say so once, with what to
//! check, and `status` shows the secondary as not answering until it does.
//!
//! An answer that does not verify, comes from another address, or carries another id is
//! ignored (and logged at debug level): a forged "acknowledged" cannot stop the retries.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, LowerName, RecordType, TSigVerifier, TSigner};
use serde::Serialize;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::transfer::{Peer, Served, FUDGE};
use super::zone::ZoneSet;
use crate::config::{DnsConfig, TsigKey};

/// Unanswered tries before the logs and `status` say a secondary is not answering.
pub const WARN_AFTER: u32 = 5;
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);

/// A TSIG signer for `key` with this server's fudge.
pub fn signer(key: &TsigKey) -> Option<TSigner> {
    TSigner::new(
        key.secret.clone(),
        key.algorithm.clone(),
        key.name.clone(),
        FUDGE,
    )
    .ok()
}

/// The secondaries allowed to transfer, from the config.
pub fn peers(dns: &DnsConfig) -> Vec<Peer> {
    dns.secondaries
        .iter()
        .filter_map(|s| {
            Some(Peer {
                name: s.name.clone(),
                ip: s.address.ip(),
                signer: signer(&s.key)?,
                zones: s.zones.iter().map(LowerName::new).collect(),
            })
        })
        .collect()
}

/// Where NOTIFY goes.
#[derive(Clone)]
pub struct NotifyTarget {
    pub name: String,
    pub addr: SocketAddr,
    pub signer: Option<TSigner>,
    pub zones: Vec<LowerName>,
}

/// The secondaries and also_notify addresses of the config.
pub fn targets(dns: &DnsConfig) -> Vec<NotifyTarget> {
    let builtin: Vec<LowerName> = dns
        .zones
        .iter()
        .filter(|z| z.provider.is_none())
        .map(|z| LowerName::new(&z.origin))
        .collect();
    let mut out: Vec<NotifyTarget> = dns
        .secondaries
        .iter()
        .map(|s| NotifyTarget {
            name: s.name.clone(),
            addr: s.address,
            signer: signer(&s.key),
            zones: s.zones.iter().map(LowerName::new).collect(),
        })
        .collect();
    out.extend(dns.also_notify.iter().map(|a| NotifyTarget {
        name: format!("also_notify {a}"),
        addr: *a,
        signer: None,
        zones: builtin.clone(),
    }));
    out
}

/// Where one secondary stands for one zone.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct SecondaryState {
    pub secondary: String,
    pub zone: String,
    pub address: String,
    /// The serial it was last sent NOTIFY for.
    pub notified_serial: Option<u32>,
    /// The last serial whose NOTIFY it answered, and when (ms since the epoch).
    pub acked_serial: Option<u32>,
    pub acked_at: Option<u64>,
    /// Milliseconds from the zone's publication to the first NOTIFY of that serial.
    pub notify_after_ms: Option<u64>,
    /// Unanswered tries of the current NOTIFY.
    pub tries: u32,
    /// Why the last try failed (an error answer or no answer).
    pub last_error: Option<String>,
    /// The last transfer it took: serial, kind, when.
    pub transferred_serial: Option<u32>,
    pub transfer_kind: Option<String>,
    pub transferred_at: Option<u64>,
}

impl SecondaryState {
    /// Whether it has gone [`WARN_AFTER`] tries without answering.
    pub fn not_answering(&self) -> bool {
        self.tries >= WARN_AFTER
    }
}

/// Every secondary's state per zone; shared by the sender, the server and `status`.
#[derive(Clone, Default)]
pub struct SecondaryBoard(Arc<Mutex<BTreeMap<(String, String), SecondaryState>>>);

impl SecondaryBoard {
    fn with(&self, secondary: &str, zone: &str, f: impl FnOnce(&mut SecondaryState)) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let e = m
            .entry((secondary.to_string(), zone.to_string()))
            .or_insert_with(|| SecondaryState {
                secondary: secondary.to_string(),
                zone: zone.to_string(),
                ..Default::default()
            });
        f(e);
    }

    /// The server sent `s`.
    pub fn transferred(&self, s: &Served, at: u64) {
        self.with(&s.peer, &s.zone, |e| {
            e.transferred_serial = Some(s.serial);
            e.transfer_kind = Some(s.kind.to_string());
            e.transferred_at = Some(at);
        });
    }

    pub fn snapshot(&self) -> Vec<SecondaryState> {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.values().cloned().collect()
    }
}

struct Pending {
    serial: u32,
    id: u16,
    tries: u32,
    next: Instant,
    verifier: Option<TSigVerifier>,
}

/// Sends NOTIFY for every published change until shutdown.
pub async fn run(
    targets: Vec<NotifyTarget>,
    mut zones: watch::Receiver<Arc<ZoneSet>>,
    board: SecondaryBoard,
    shutdown: CancellationToken,
) {
    if targets.is_empty() {
        return;
    }
    let bind = |v6: bool| async move {
        let ip = match v6 {
            true => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            false => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        };
        UdpSocket::bind(SocketAddr::new(ip, 0)).await
    };
    let (v4, v6) = match (bind(false).await, bind(true).await) {
        (Ok(a), b) => (Some(a), b.ok()),
        (Err(e), Ok(b)) => {
            tracing::debug!("no IPv4 socket for NOTIFY: {e}");
            (None, Some(b))
        }
        (Err(e), Err(_)) => {
            tracing::error!("cannot open a UDP socket to send NOTIFY: {e}; secondaries will only see changes at their SOA refresh");
            return;
        }
    };
    for t in &targets {
        for z in &t.zones {
            board.with(&t.name, &z.to_string(), |e| e.address = t.addr.to_string());
        }
    }
    let mut pending: BTreeMap<(usize, LowerName), Pending> = BTreeMap::new();
    let mut seen: BTreeMap<LowerName, u32> = BTreeMap::new();
    let mut changed = true;
    let (mut buf4, mut buf6) = (vec![0u8; 4096], vec![0u8; 4096]);
    loop {
        if changed {
            changed = false;
            let set = zones.borrow_and_update().clone();
            for z in &set.zones {
                let serial = z.serial();
                if seen.insert(z.origin.clone(), serial) == Some(serial) {
                    continue;
                }
                for (i, t) in targets.iter().enumerate() {
                    if !t.zones.contains(&z.origin) {
                        continue;
                    }
                    pending.insert(
                        (i, z.origin.clone()),
                        Pending {
                            serial,
                            id: random_id(),
                            tries: 0,
                            next: Instant::now(),
                            verifier: None,
                        },
                    );
                    board.with(&t.name, &z.origin.to_string(), |e| {
                        e.notified_serial = Some(serial);
                        e.tries = 0;
                    });
                }
            }
        }
        // Send every NOTIFY that is due.
        let now = Instant::now();
        let set = zones.borrow().clone();
        for ((i, zone), p) in pending.iter_mut() {
            if p.next > now {
                continue;
            }
            let t = &targets[*i];
            let Some(z) = set.zones.iter().find(|z| &z.origin == zone) else {
                continue;
            };
            if p.tries > 0 {
                let why = format!("no answer to NOTIFY after {} tries", p.tries);
                board.with(&t.name, &zone.to_string(), |e| {
                    e.tries = p.tries;
                    if e.last_error
                        .as_deref()
                        .is_none_or(|l| l.starts_with("no answer"))
                    {
                        e.last_error = Some(why.clone());
                    }
                });
                if p.tries == WARN_AFTER {
                    tracing::warn!(secondary = %t.name, address = %t.addr, zone = %zone, serial = p.serial, "the secondary has not answered NOTIFY after {WARN_AFTER} tries; still trying: check that it is running, that it lists this server as its primary (with this address and the same TSIG key), and that nothing between drops UDP port {}", t.addr.port());
                }
            }
            if p.tries == 0 {
                let after = crate::util::now_millis().saturating_sub(set.published_ms);
                board.with(&t.name, &zone.to_string(), |e| {
                    e.notify_after_ms = Some(after)
                });
            }
            let mut m = Message::new(p.id, MessageType::Query, OpCode::Notify);
            m.metadata.authoritative = true;
            let mut q = Query::query(zone.clone().into(), RecordType::SOA);
            q.set_query_class(DNSClass::IN);
            m.add_query(q);
            m.add_answer(z.soa.clone());
            p.verifier = match &t.signer {
                Some(s) => m
                    .finalize(s, crate::util::now_millis() / 1_000)
                    .ok()
                    .flatten(),
                None => None,
            };
            let sock = match t.addr {
                SocketAddr::V4(_) => v4.as_ref(),
                SocketAddr::V6(_) => v6.as_ref(),
            };
            if let (Some(sock), Ok(bytes)) = (sock, m.to_vec()) {
                match sock.send_to(&bytes, t.addr).await {
                    Ok(_) => {
                        tracing::debug!(secondary = %t.name, zone = %zone, serial = p.serial, "NOTIFY sent")
                    }
                    Err(e) => tracing::debug!(secondary = %t.name, "NOTIFY not sent: {e}"),
                }
            }
            let wait = FIRST_RETRY
                .saturating_mul(1u32 << p.tries.min(6))
                .min(MAX_RETRY);
            p.tries += 1;
            p.next = now + wait;
        }
        let next = pending
            .values()
            .map(|p| p.next)
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        let got = tokio::select! {
            r = zones.changed() => {
                if r.is_err() { return; }
                changed = true;
                None
            }
            r = recv(v4.as_ref(), &mut buf4) => r.map(|(n, src)| (buf4[..n].to_vec(), src)),
            r = recv(v6.as_ref(), &mut buf6) => r.map(|(n, src)| (buf6[..n].to_vec(), src)),
            _ = tokio::time::sleep_until(next) => None,
            _ = shutdown.cancelled() => return,
        };
        if let Some((bytes, src)) = got {
            acknowledge(&targets, &mut pending, &board, &bytes, src);
        }
    }
}

async fn recv(sock: Option<&UdpSocket>, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
    match sock {
        Some(s) => s.recv_from(buf).await.ok(),
        None => std::future::pending().await,
    }
}

/// Matches an answer to its NOTIFY and records it.
fn acknowledge(
    targets: &[NotifyTarget],
    pending: &mut BTreeMap<(usize, LowerName), Pending>,
    board: &SecondaryBoard,
    bytes: &[u8],
    src: SocketAddr,
) {
    let Ok(m) = Message::from_vec(bytes) else {
        tracing::debug!(%src, "an undecodable answer to NOTIFY; ignored");
        return;
    };
    let key = pending.iter().find_map(|((i, z), p)| {
        let t = &targets[*i];
        (same_peer(t.addr, src) && p.id == m.metadata.id).then(|| (*i, z.clone()))
    });
    let Some(key) = key else {
        tracing::debug!(%src, id = m.metadata.id, "an answer to no NOTIFY in flight; ignored");
        return;
    };
    let t = &targets[key.0];
    let p = pending.get_mut(&key).expect("found above");
    if m.metadata.message_type != MessageType::Response || m.metadata.op_code != OpCode::Notify {
        return;
    }
    if let Some(v) = p.verifier.as_mut() {
        if let Err(e) = v.verify(bytes) {
            tracing::debug!(secondary = %t.name, "an answer to NOTIFY whose TSIG does not verify ({e}); ignored");
            let why = format!("its answer's TSIG signature does not verify: {e}");
            board.with(&t.name, &key.1.to_string(), |s| s.last_error = Some(why));
            return;
        }
    }
    let rcode = m.metadata.response_code;
    let zone = key.1.to_string();
    if rcode != ResponseCode::NoError {
        let why = format!(
            "answered NOTIFY with {rcode}{}",
            match rcode {
                ResponseCode::NotAuth =>
                    ": it does not accept this key, or it is not a secondary of the zone",
                ResponseCode::Refused => ": it does not take NOTIFY from this address for the zone",
                _ => "",
            }
        );
        if p.tries <= 1 {
            tracing::warn!(secondary = %t.name, zone = %zone, "the secondary {why}");
        }
        board.with(&t.name, &zone, |s| s.last_error = Some(why));
        return;
    }
    let (serial, tries) = (p.serial, p.tries);
    pending.remove(&key);
    if tries > WARN_AFTER {
        tracing::info!(secondary = %t.name, zone = %zone, serial, "the secondary answered NOTIFY again, after {tries} tries");
    }
    board.with(&t.name, &zone, |s| {
        s.acked_serial = Some(serial);
        s.acked_at = Some(crate::util::now_millis());
        s.tries = 0;
        s.last_error = None;
    });
}

/// An answer comes from the address NOTIFY went to (an IPv4 target may answer from its
/// IPv4-mapped IPv6 form).
fn same_peer(target: SocketAddr, src: SocketAddr) -> bool {
    let canon = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    canon(target.ip()) == canon(src.ip()) && target.port() == src.port()
}

pub fn random_id() -> u16 {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 2];
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    u16::from_be_bytes(b)
}
