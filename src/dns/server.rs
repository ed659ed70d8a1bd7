//! The built-in authoritative DNS server's sockets: UDP and TCP on every listen address,
//! answering each request with [`super::respond::respond`] from the current [`ZoneSet`].
//!
//! The zones are replaced as a whole through [`ZoneHandle::replace`], so a query sees either
//! the old or the new zones, never a mix; the handle is also a watch channel, which is how the
//! NOTIFY sender ([`super::notify`]) learns of every published serial. An accepted NOTIFY
//! from a primary wakes that zone's replica task ([`Kicks`]).
//!
//! - **UDP**: [`udp_threads`] threads share each socket ([`UdpWorker`], started by the
//!   composition root), each blocking in `recv_from`, answering and sending, one request at a
//!   time: no event loop between the socket and the answer (through tokio's, the kernel's
//!   wake-ups cost more than the answers; measured in `bench/dns-serve`). Each keeps its own
//!   [`Quick`] cache of plain queries' answers, cleared when the zones are replaced; a
//!   receive times out every [`UDP_POLL`] to see the shutdown.
//! - **TCP** (RFC 7766): length-prefixed messages, pipelined queries answered in order, a
//!   connection idle for [`TCP_IDLE`] closed, at most [`TCP_MAX_CONNECTIONS`] at once (the
//!   next accept waits), every refused transfer followed by closing the connection. A
//!   transfer's messages are written one after another on the same connection.
//!
//! Garbage is dropped or answered FORMERR by the pure layer; nothing here panics on input.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hickory_proto::rr::{LowerName, Name};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::notify::SecondaryBoard;
use super::quick::{self, Quick};
use super::respond::{respond, DnsReply};
use super::transfer::Peer;
use super::zone::ZoneSet;
use crate::config::DnsConfig;

/// How often a UDP thread waiting for a request looks at the shutdown.
pub const UDP_POLL: Duration = Duration::from_millis(250);

/// Threads answering on each UDP socket: one per core, at least 2, at most 8.
pub fn udp_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8))
}
/// A TCP connection with no request for this long is closed.
pub const TCP_IDLE: Duration = Duration::from_secs(10);
pub const TCP_MAX_CONNECTIONS: usize = 256;

/// Shared, atomically replaceable zones; subscribers see every replacement.
#[derive(Clone)]
pub struct ZoneHandle(Arc<watch::Sender<Arc<ZoneSet>>>);

impl Default for ZoneHandle {
    fn default() -> Self {
        ZoneHandle::new(ZoneSet::default())
    }
}

impl ZoneHandle {
    pub fn new(zones: ZoneSet) -> Self {
        ZoneHandle(Arc::new(watch::channel(Arc::new(zones)).0))
    }

    pub fn replace(&self, zones: ZoneSet) {
        self.0.send_replace(Arc::new(zones));
    }

    pub fn current(&self) -> Arc<ZoneSet> {
        self.0.borrow().clone()
    }

    /// Sees each replacement from now on.
    pub fn subscribe(&self) -> watch::Receiver<Arc<ZoneSet>> {
        self.0.subscribe()
    }
}

/// What every socket answers from.
struct Shared {
    zones: ZoneHandle,
    peers: Vec<Peer>,
    board: SecondaryBoard,
    /// The primaries NOTIFY is taken from, and the replica tasks it wakes.
    primaries: Vec<Peer>,
    kicks: Kicks,
}

/// A bound built-in server; [`DnsServer::run`] answers until shutdown.
pub struct DnsServer {
    udp: Vec<std::net::UdpSocket>,
    tcp: Vec<TcpListener>,
    shared: Arc<Shared>,
    pub addrs: Vec<SocketAddr>,
}

impl DnsServer {
    /// Binds UDP and TCP on every address (port 0 picks a free port, the same one for UDP and
    /// TCP). `peers` may transfer the zones; `board` hears of each transfer.
    pub async fn bind(
        listen: &[SocketAddr],
        zones: ZoneHandle,
        peers: Vec<Peer>,
        board: SecondaryBoard,
        primaries: Vec<Peer>,
        kicks: Kicks,
    ) -> anyhow::Result<Self> {
        let (mut udp, mut tcp, mut addrs) = (vec![], vec![], vec![]);
        for want in listen {
            // Bind TCP first: with port 0 it picks the port, and UDP then takes the same one.
            let t = TcpListener::bind(want)
                .await
                .with_context(|| bind_hint("TCP", want))?;
            let addr = t.local_addr()?;
            let u = std::net::UdpSocket::bind(addr).with_context(|| bind_hint("UDP", &addr))?;
            u.set_read_timeout(Some(UDP_POLL))?;
            udp.push(u);
            tcp.push(t);
            addrs.push(addr);
        }
        Ok(DnsServer {
            udp,
            tcp,
            shared: Arc::new(Shared {
                zones,
                peers,
                board,
                primaries,
                kicks,
            }),
            addrs,
        })
    }

    /// The UDP side: [`udp_threads`] workers per socket, each to be run on a thread of its
    /// own until `shutdown` (the composition root starts and joins them).
    pub fn udp_workers(&self, shutdown: &CancellationToken) -> anyhow::Result<Vec<UdpWorker>> {
        let mut out = vec![];
        for sock in &self.udp {
            for _ in 0..udp_threads() {
                out.push(UdpWorker {
                    sock: sock
                        .try_clone()
                        .context("cannot share the DNS UDP socket")?,
                    shared: self.shared.clone(),
                    shutdown: shutdown.clone(),
                });
            }
        }
        Ok(out)
    }

    /// Answers over TCP until `shutdown`; returns when every connection has ended. (UDP:
    /// [`DnsServer::udp_workers`].)
    pub async fn run(self, shutdown: CancellationToken) {
        let tasks = TaskTracker::new();
        for l in self.tcp {
            tasks.spawn(tcp_loop(l, self.shared.clone(), shutdown.clone()));
        }
        tasks.close();
        tasks.wait().await;
    }
}

fn now_secs() -> u64 {
    crate::util::now_millis() / 1_000
}

/// One thread's share of a UDP socket ([`DnsServer::udp_workers`]).
pub struct UdpWorker {
    sock: std::net::UdpSocket,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
}

impl UdpWorker {
    /// Receives, answers and sends until the shutdown (blocking: run it on its own thread).
    pub fn run(self) {
        let mut updates = self.shared.zones.subscribe();
        let mut zones = updates.borrow_and_update().clone();
        let mut quick = Quick::default();
        let mut buf = vec![0u8; 65_535];
        while !self.shutdown.is_cancelled() {
            let (n, src) = match self.sock.recv_from(&mut buf) {
                Ok(r) => r,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
                Err(e) => {
                    // ICMP errors of earlier sends surface here on some systems: not fatal.
                    tracing::debug!("dns udp receive: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            if updates.has_changed().unwrap_or(false) {
                zones = updates.borrow_and_update().clone();
                quick.clear();
            }
            let raw = &buf[..n];
            let plain = quick::key(raw, false);
            let kept = plain.as_ref().and_then(|(k, _)| quick.get(k, raw));
            let messages = match kept {
                Some((bytes, rcode)) => {
                    crate::metrics::get().dns_query(rcode.into());
                    vec![bytes]
                }
                None => {
                    let reply = answer(&self.shared, &zones, raw, src, false);
                    if let (Some((k, qlen)), Some(rcode), [one]) =
                        (plain, reply.rcode, reply.messages.as_slice())
                    {
                        quick.put(k, qlen, one, rcode);
                    }
                    reply.messages
                }
            };
            for m in messages {
                if let Err(e) = self.sock.send_to(&m, src) {
                    tracing::debug!(%src, "could not send a DNS answer: {e}");
                }
            }
        }
    }
}

/// Answers one request from `zones` and does the bookkeeping (metrics, logs, NOTIFY
/// wake-ups, the secondaries' board).
fn answer(shared: &Shared, zones: &ZoneSet, raw: &[u8], src: SocketAddr, tcp: bool) -> DnsReply {
    let reply = respond(
        zones,
        &shared.peers,
        &shared.primaries,
        raw,
        src,
        tcp,
        now_secs(),
    );
    if let Some(rcode) = reply.rcode {
        crate::metrics::get().dns_query(rcode.into());
    }
    if let Some(why) = &reply.refused {
        match why.starts_with("NOTIFY") {
            true => tracing::warn!(%src, "refused: {why}"),
            false => tracing::warn!(%src, "zone transfer refused: {why}"),
        }
    }
    if let Some(zone) = &reply.notified {
        tracing::debug!(%src, %zone, "NOTIFY accepted from the primary");
        shared.kicks.kick(zone);
    }
    if let Some(s) = &reply.served {
        tracing::info!(%src, secondary = %s.peer, zone = %s.zone, serial = s.serial, kind = s.kind, records = s.records, "zone transfer served");
        shared.board.transferred(s, crate::util::now_millis());
    }
    reply
}

async fn tcp_loop(listener: TcpListener, shared: Arc<Shared>, shutdown: CancellationToken) {
    let conns = TaskTracker::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(TCP_MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("dns tcp accept failed: {e}; trying again in 100 ms");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let (shared, stop) = (shared.clone(), shutdown.clone());
        conns.spawn(async move {
            let _permit = permit;
            tokio::select! {
                _ = tcp_connection(stream, peer, &shared) => {}
                _ = stop.cancelled() => {}
            }
        });
    }
    drop(listener);
    conns.close();
    conns.wait().await;
}

async fn tcp_connection(mut stream: TcpStream, peer: SocketAddr, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; 65_535];
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let n = usize::from(u16::from_be_bytes(len));
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut buf[..n])).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let reply = answer(shared, &shared.zones.current(), &buf[..n], peer, true);
        for m in reply.messages {
            let Ok(len) = u16::try_from(m.len()) else {
                tracing::warn!(%peer, "a DNS answer of {} bytes does not fit a TCP message", m.len());
                return;
            };
            let mut framed = Vec::with_capacity(m.len() + 2);
            framed.extend_from_slice(&len.to_be_bytes());
            framed.extend_from_slice(&m);
            if stream.write_all(&framed).await.is_err() {
                return;
            }
        }
        if reply.close {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

fn bind_hint(proto: &str, addr: &SocketAddr) -> String {
    let extra = if addr.port() < 1024 {
        " (ports below 1024 need root or CAP_NET_BIND_SERVICE; for a trial use e.g. 127.0.0.1:5353)"
    } else {
        ""
    };
    format!("cannot listen for DNS over {proto} on {addr}{extra}")
}

/// One wake-up per zone held as a secondary: the server rings it on an accepted NOTIFY.
#[derive(Clone, Default)]
pub struct Kicks(Arc<BTreeMap<LowerName, Arc<Notify>>>);

impl Kicks {
    pub fn new(dns: &DnsConfig) -> Kicks {
        Kicks(Arc::new(
            dns.primaries
                .iter()
                .flat_map(|p| p.zones.iter())
                .map(|z| (LowerName::new(z), Arc::new(Notify::new())))
                .collect(),
        ))
    }

    pub fn kick(&self, zone: &LowerName) {
        if let Some(n) = self.0.get(zone) {
            n.notify_one();
        }
    }

    /// What a replica task waits on for `zone`.
    pub fn waiter(&self, zone: &Name) -> Arc<Notify> {
        self.0
            .get(&LowerName::new(zone))
            .cloned()
            .unwrap_or_default()
    }
}
