//! Zones this server holds as a secondary of another primary (`[[dns.primaries]]`): one task
//! per zone takes it by IXFR/AXFR over TCP, keeps it in the store and serves it through the
//! built-in server ([`Builtin::set_replica`]).
//!
//! - **When.** At start (after serving the version kept in the store, before any listener
//!   answers), on every accepted NOTIFY from the primary ([`Kicks`], rung by the server), and
//!   every SOA refresh of the held version; after a failure every SOA retry. Refresh and retry
//!   are bounded to 10 s .. 1 h (a zone never taken is asked for every 10 s).
//! - **How.** One TCP connection per attempt, the request signed with the primary's key and
//!   every message of the answer checked against it (a message without a valid signature ends
//!   the attempt; RFC 8945 lets a primary leave some unsigned, BIND, Knot, PowerDNS and
//!   understudy sign them all). The IXFR is also the SOA check: nothing newer is answered by
//!   the SOA alone. An IXFR refused for its content ([`super::take`]) is asked again as AXFR.
//! - **What is kept.** A version is served only once it is complete and kept in the store
//!   (nothing half-taken is published); serials only move forward ([`super::take`] refuses an
//!   older one), and the store keeps the last one across restarts, so however the primary and
//!   this server restart, the serial this server serves never goes back.
//! - **Expiry.** A version the primary has not confirmed for the SOA's expire time is no
//!   longer served (the zone answers REFUSED, like one this server does not hold), as RFC 1034
//!   requires of a secondary; it is logged as an error.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::{LowerName, Name, RData};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::builtin::Builtin;
use super::server::Kicks;
use super::take::{self, Taken, Taker};
use super::transfer::Peer;
use super::zone::{decode_records, encode_records, Zone};
use crate::config::{DnsConfig, PrimaryConfig};
use crate::store::Store;

/// Waiting for a connection, or for the next message of an answer.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
const MIN_WAIT: Duration = Duration::from_secs(10);
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// The primaries NOTIFY is accepted from, from the config.
pub fn primaries(dns: &DnsConfig) -> Vec<Peer> {
    dns.primaries
        .iter()
        .filter_map(|p| {
            Some(Peer {
                name: p.name.clone(),
                ip: p.address.ip(),
                signer: super::notify::signer(&p.key)?,
                zones: p.zones.iter().map(LowerName::new).collect(),
            })
        })
        .collect()
}

/// What `status` shows of one zone held as a secondary.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ReplicaState {
    pub zone: String,
    pub primary: String,
    /// The serial served; `None` until the zone was first taken (or after it expired).
    pub serial: Option<u32>,
    /// When the primary last confirmed it (ms since the epoch).
    pub refreshed_at: Option<u64>,
    pub last_error: Option<String>,
}

/// Where each zone held as a secondary stands; the tasks write, `status` reads.
#[derive(Clone, Default)]
pub struct ReplicaBoard(Arc<Mutex<BTreeMap<String, ReplicaState>>>);

impl ReplicaBoard {
    fn with(&self, zone: &Name, primary: &str, f: impl FnOnce(&mut ReplicaState)) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let e = m.entry(zone.to_string()).or_insert_with(|| ReplicaState {
            zone: zone.to_string(),
            primary: primary.to_string(),
            ..Default::default()
        });
        f(e)
    }

    pub fn snapshot(&self) -> Vec<ReplicaState> {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.values().cloned().collect()
    }
}

/// The version of `zone` kept in the store, published at once (before any listener answers)
/// unless it expired; returns it with when it was last confirmed.
pub fn restore(store: &Store, builtin: &Builtin, zone: &Name) -> Option<(Zone, u64)> {
    let (serial, wire, refreshed) = store.replica(&zone.to_string()).ok()??;
    let Some(z) = decode_records(&wire).and_then(|r| Zone::from_records(zone, &r)) else {
        tracing::warn!(%zone, serial, "the kept copy of this zone does not decode; taking it again from the primary");
        return None;
    };
    if expired(&z, refreshed, crate::util::now_millis()) {
        tracing::error!(%zone, serial, "the kept copy of this zone has expired (its primary has not confirmed it for the SOA's expire time); not serving it until the primary answers");
        return Some((z, refreshed));
    }
    builtin.set_replica(z.clone());
    tracing::info!(%zone, serial, "serving the kept copy of this zone until its primary answers");
    Some((z, refreshed))
}

fn soa_times(z: &Zone) -> (Duration, Duration, Duration) {
    match &z.soa.data {
        RData::SOA(s) => (
            secs(s.refresh),
            secs(s.retry),
            Duration::from_secs(u64::from(s.expire.max(0) as u32)),
        ),
        _ => (MIN_WAIT, MIN_WAIT, MAX_WAIT),
    }
}

fn secs(v: i32) -> Duration {
    Duration::from_secs(u64::from(v.max(0) as u32)).clamp(MIN_WAIT, MAX_WAIT)
}

fn expired(z: &Zone, refreshed_ms: u64, now_ms: u64) -> bool {
    let (_, _, expire) = soa_times(z);
    now_ms.saturating_sub(refreshed_ms) > expire.as_millis() as u64
}

/// What every replica task is handed: where it serves, keeps and reports a zone, and its
/// NOTIFY wake-ups.
#[derive(Clone)]
pub struct Shared {
    pub builtin: Arc<Builtin>,
    pub store: Store,
    pub board: ReplicaBoard,
    pub kicks: Kicks,
}

/// Keeps `zone` taken from `primary` until shutdown; `held` is what [`restore`] found.
pub async fn run(
    primary: PrimaryConfig,
    zone: Name,
    held: Option<(Zone, u64)>,
    shared: Shared,
    shutdown: CancellationToken,
) {
    let Shared {
        builtin,
        store,
        board,
        kicks,
    } = shared;
    let kick = kicks.waiter(&zone);
    let Some(signer) = super::notify::signer(&primary.key) else {
        tracing::error!(%zone, primary = %primary.name, "the primary's TSIG key cannot sign; the zone is not taken");
        return;
    };
    let (mut held, mut refreshed) = match held {
        Some((z, r)) => (Some(z), r),
        None => (None, 0),
    };
    let mut served = held.is_some()
        && !expired(
            held.as_ref().expect("some"),
            refreshed,
            crate::util::now_millis(),
        );
    board.with(&zone, &primary.name, |s| {
        s.serial = served.then(|| held.as_ref().map(|z| z.serial())).flatten();
        s.refreshed_at = (refreshed > 0).then_some(refreshed);
    });
    let mut failing = false;
    loop {
        let result = match refresh(&primary, &signer, &zone, held.as_ref()).await {
            Err(e) if held.is_some() && e.ixfr_content => {
                tracing::info!(%zone, primary = %primary.name, "the IXFR answer was not taken ({}); asking for the whole zone", e.why);
                refresh(&primary, &signer, &zone, None).await
            }
            other => other,
        };
        let now = crate::util::now_millis();
        let wait = match result {
            Ok(Taken::UpToDate { serial }) => {
                refreshed = now;
                let _ = store.touch_replica(&zone.to_string(), now);
                tracing::debug!(%zone, serial, "the primary has nothing newer");
                if !served {
                    if let Some(z) = &held {
                        builtin.set_replica(z.clone());
                        served = true;
                    }
                }
                failing = false;
                board.with(&zone, &primary.name, |s| {
                    s.serial = held.as_ref().map(|z| z.serial());
                    s.refreshed_at = Some(now);
                    s.last_error = None;
                });
                held.as_ref().map(|z| soa_times(z).0).unwrap_or(MIN_WAIT)
            }
            Ok(Taken::Version { records, kind }) => match Zone::from_records(&zone, &records) {
                Some(z) => {
                    let serial = z.serial();
                    if let Err(e) = store.save_replica(
                        &zone.to_string(),
                        serial,
                        &encode_records(&records),
                        now,
                    ) {
                        tracing::warn!(%zone, serial, "cannot keep this version in the store ({e}); serving it, but a restart takes it again");
                    }
                    builtin.set_replica(z.clone());
                    tracing::info!(%zone, primary = %primary.name, serial, kind, records = records.len(), "zone taken from its primary");
                    refreshed = now;
                    served = true;
                    failing = false;
                    board.with(&zone, &primary.name, |s| {
                        s.serial = Some(serial);
                        s.refreshed_at = Some(now);
                        s.last_error = None;
                    });
                    let wait = soa_times(&z).0;
                    held = Some(z);
                    wait
                }
                None => {
                    failing = true;
                    MIN_WAIT
                }
            },
            Err(e) => {
                if !failing {
                    tracing::warn!(%zone, primary = %primary.name, address = %primary.address, "cannot take the zone from its primary: {}; still serving serial {:?}, retrying", e.why, held.as_ref().filter(|_| served).map(|z| z.serial()));
                } else {
                    tracing::debug!(%zone, "the primary still fails: {}", e.why);
                }
                failing = true;
                board.with(&zone, &primary.name, |s| s.last_error = Some(e.why.clone()));
                if served && held.as_ref().is_some_and(|z| expired(z, refreshed, now)) {
                    tracing::error!(%zone, primary = %primary.name, "the zone has expired: its primary has not confirmed it for the SOA's expire time; no longer serving it");
                    builtin.drop_replica(&zone);
                    served = false;
                    board.with(&zone, &primary.name, |s| s.serial = None);
                }
                held.as_ref().map(|z| soa_times(z).1).unwrap_or(MIN_WAIT)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = kick.notified() => tracing::debug!(%zone, "NOTIFY from the primary"),
            _ = shutdown.cancelled() => return,
        }
    }
}

struct Failed {
    why: String,
    /// The answer arrived but its content was refused (an IXFR worth asking again as AXFR).
    ixfr_content: bool,
}

fn failed(why: impl Into<String>) -> Failed {
    Failed {
        why: why.into(),
        ixfr_content: false,
    }
}

/// One attempt: a connection, the request, the answer read to its end.
async fn refresh(
    primary: &PrimaryConfig,
    signer: &hickory_proto::rr::TSigner,
    zone: &Name,
    held: Option<&Zone>,
) -> Result<Taken, Failed> {
    let held_records = held.map(|z| z.all_records());
    let id = super::notify::random_id();
    let mut req = take::request(zone, held.map(|z| &z.soa), id);
    let now = crate::util::now_millis() / 1_000;
    let mut verifier = req
        .finalize(signer, now)
        .map_err(|e| failed(format!("cannot sign the request: {e}")))?
        .ok_or_else(|| failed("cannot sign the request"))?;
    let bytes = req.to_vec().map_err(|e| failed(e.to_string()))?;
    let mut stream = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(primary.address))
        .await
        .map_err(|_| {
            failed(format!(
                "no TCP connection to {} within {IO_TIMEOUT:?}",
                primary.address
            ))
        })?
        .map_err(|e| failed(format!("cannot connect to {}: {e}", primary.address)))?;
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    stream
        .write_all(&framed)
        .await
        .map_err(|e| failed(format!("cannot send the request: {e}")))?;
    let mut taker = Taker::new(zone, held_records.as_deref());
    loop {
        let mut len = [0u8; 2];
        let read = async {
            stream.read_exact(&mut len).await?;
            let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
            stream.read_exact(&mut buf).await?;
            Ok::<_, std::io::Error>(buf)
        };
        let buf = match tokio::time::timeout(IO_TIMEOUT, read).await {
            Err(_) => {
                return Err(failed(format!(
                    "the primary sent nothing for {IO_TIMEOUT:?} in the middle of the answer"
                )))
            }
            Ok(Err(e)) => {
                return Err(failed(format!(
                    "the connection ended before the answer did: {e}"
                )))
            }
            Ok(Ok(b)) => b,
        };
        let m =
            Message::from_vec(&buf).map_err(|e| failed(format!("an undecodable message: {e}")))?;
        if m.metadata.id != id {
            return Err(failed(format!(
                "an answer with id {} to request {id}",
                m.metadata.id
            )));
        }
        if let Some(err) = m.signature().and_then(|t| t.data.error.as_ref()) {
            return Err(failed(format!(
                "the primary answered {} with TSIG error {err:?}: {}",
                m.metadata.response_code,
                match err {
                    hickory_proto::rr::rdata::tsig::TsigError::BadTime =>
                        "the two clocks differ by more than 5 minutes".to_string(),
                    hickory_proto::rr::rdata::tsig::TsigError::BadKey =>
                        format!("it has no key named {}", primary.key.name),
                    _ => format!("it has another secret for key {}", primary.key.name),
                }
            )));
        }
        if let Err(e) = verifier.verify(&buf) {
            let unsigned = m.signature().is_none();
            return Err(failed(match (unsigned, m.metadata.response_code) {
                (true, rc) if rc != hickory_proto::op::ResponseCode::NoError => format!(
                    "the primary answered {rc} unsigned: it does not allow this server (address and TSIG key {}) to transfer the zone",
                    primary.key.name
                ),
                (true, _) => "a message of the answer is not signed".to_string(),
                (false, _) => format!("the answer's TSIG signature does not verify ({e}): the primary has another secret for key {}", primary.key.name),
            }));
        }
        match taker.feed(&m) {
            Ok(Some(t)) => return Ok(t),
            Ok(None) => {}
            Err(e) => {
                return Err(Failed {
                    why: format!("the answer is refused: {e}"),
                    ixfr_content: held.is_some(),
                })
            }
        }
    }
}
