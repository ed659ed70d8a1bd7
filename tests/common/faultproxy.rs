//! A TCP fault proxy for the chaos suite: what toxiproxy does, in-repo (there is no toxiproxy
//! package here, and no `tc netem` or NFQUEUE on these machines). It listens on one address,
//! connects each client to one upstream, and applies the toxics in force to the bytes coming
//! back from the upstream (toxiproxy's default "downstream" stream), with toxiproxy's names and
//! meanings:
//!
//! - `Latency { ms, jitter_ms }`: every chunk is held `ms ± jitter_ms` before it is sent on.
//! - `Bandwidth { kib_per_s }`: chunks are paced to that rate.
//! - `SlowClose { ms }`: when the upstream closes, the client's side is closed `ms` later.
//! - `Timeout { ms }`: no data goes through; the connection is closed after `ms`, or held open
//!   for ever with 0 (a server that hangs mid-response).
//! - `Slicer { avg, variation, delay_us }`: chunks are cut into slices of `avg ± variation`
//!   bytes, `delay_us` apart.
//! - `LimitData { bytes }`: the connection is closed once that many bytes went through.
//! - `ResetPeer { ms }`: the connection is reset (TCP RST, by SO_LINGER 0) `ms` after it opened.
//!
//! Toxics are changed while the proxy runs ([`FaultProxy::set`]); a change applies to the
//! next chunk of every connection, open ones included.
//!
//! The proxy can run inside a network namespace: its runtime lives on a thread of its own that
//! moves into the namespace first (`setns`), so every socket it makes is the namespace's.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Debug, PartialEq)]
#[allow(
    dead_code,
    reason = "the chaos suite uses some of them; all are toxiproxy's"
)]
pub enum Toxic {
    Latency {
        ms: u64,
        jitter_ms: u64,
    },
    Bandwidth {
        kib_per_s: u64,
    },
    SlowClose {
        ms: u64,
    },
    Timeout {
        ms: u64,
    },
    Slicer {
        avg: usize,
        variation: usize,
        delay_us: u64,
    },
    LimitData {
        bytes: u64,
    },
    ResetPeer {
        ms: u64,
    },
}

type Toxics = Arc<Mutex<Vec<Toxic>>>;

pub struct FaultProxy {
    #[allow(dead_code, reason = "the suite knows the address it asked for")]
    pub addr: SocketAddr,
    toxics: Toxics,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Moves the calling thread into the network namespace `name` (made by `ip netns add`).
pub fn enter_netns(name: &str) {
    let f = std::fs::File::open(format!("/run/netns/{name}"))
        .unwrap_or_else(|e| panic!("network namespace {name}: {e}"));
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&f),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .unwrap_or_else(|e| panic!("setns into {name}: {e}"));
}

/// Whether a TCP connection to `addr` opens from inside the namespace `ns`.
pub fn connects_in(ns: &str, addr: SocketAddr) -> bool {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        enter_netns(&ns);
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    })
    .join()
    .unwrap_or(false)
}

impl FaultProxy {
    /// A proxy on `listen` to `upstream`, inside the namespace `netns` when given.
    pub fn start(netns: Option<&str>, listen: SocketAddr, upstream: SocketAddr) -> FaultProxy {
        let toxics: Toxics = Arc::default();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let netns = netns.map(str::to_string);
        let t = toxics.clone();
        let thread = std::thread::spawn(move || {
            if let Some(ns) = &netns {
                enter_netns(ns);
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let l = TcpListener::bind(listen).await.expect("fault proxy bind");
                ready_tx.send(l.local_addr().unwrap()).unwrap();
                let accept = async {
                    loop {
                        let Ok((client, _)) = l.accept().await else {
                            continue;
                        };
                        let t = t.clone();
                        tokio::spawn(async move {
                            let _ = connection(client, upstream, t).await;
                        });
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stop_rx => {}
                }
            });
            // Dropping the runtime drops every connection.
        });
        let addr = ready_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("fault proxy started");
        FaultProxy {
            addr,
            toxics,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Replaces the toxics in force (an empty list heals the link).
    pub fn set(&self, toxics: Vec<Toxic>) {
        *self.toxics.lock().unwrap() = toxics;
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn current(t: &Toxics) -> Vec<Toxic> {
    t.lock().unwrap().clone()
}

/// A small deterministic jitter source (xorshift), seeded per connection.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        if n == 0 {
            0
        } else {
            self.0 % n
        }
    }
}

async fn connection(
    mut client: TcpStream,
    upstream: SocketAddr,
    toxics: Toxics,
) -> std::io::Result<()> {
    let opened = tokio::time::Instant::now();
    let reset_at = current(&toxics).iter().find_map(|t| match t {
        Toxic::ResetPeer { ms } => Some(opened + Duration::from_millis(*ms)),
        _ => None,
    });
    if let Some(at) = reset_at {
        // Closing a socket with SO_LINGER 0 sends a RST instead of a FIN.
        client.set_zero_linger()?;
        if at <= tokio::time::Instant::now() {
            return Ok(());
        }
    }
    let mut server = TcpStream::connect(upstream).await?;
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    // Borrowed halves: dropping them closes nothing, so the socket is closed once, at the end
    // (with a RST when reset_peer set SO_LINGER 0), never with a FIN first.
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = server.split();
    // Client → upstream: untouched.
    let up = async {
        let _ = tokio::io::copy(&mut cr, &mut sw).await;
        let _ = sw.shutdown().await;
        std::future::pending::<()>().await
    };
    let seed = opened.elapsed().as_nanos() as u64 | 1;
    let down = async {
        let mut rng = Rng(seed ^ 0x9e37_79b9_7f4a_7c15);
        let mut sent: u64 = 0;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = sr.read(&mut buf).await?;
            if n == 0 {
                if let Some(ms) = current(&toxics).iter().find_map(|t| match t {
                    Toxic::SlowClose { ms } => Some(*ms),
                    _ => None,
                }) {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                cw.shutdown().await?;
                return Ok::<(), std::io::Error>(());
            }
            let mut chunk = &buf[..n];
            let now = current(&toxics);
            for t in &now {
                match t {
                    Toxic::Timeout { ms } => {
                        if *ms == 0 {
                            std::future::pending::<()>().await;
                        }
                        tokio::time::sleep(Duration::from_millis(*ms)).await;
                        return Ok(());
                    }
                    Toxic::Latency { ms, jitter_ms } => {
                        let j = rng.below(2 * jitter_ms + 1) as i64 - *jitter_ms as i64;
                        let d = (*ms as i64 + j).max(0) as u64;
                        tokio::time::sleep(Duration::from_millis(d)).await;
                    }
                    Toxic::Bandwidth { kib_per_s } if *kib_per_s > 0 => {
                        let us = chunk.len() as u64 * 1_000_000 / (kib_per_s * 1024);
                        tokio::time::sleep(Duration::from_micros(us)).await;
                    }
                    _ => {}
                }
            }
            let limit = now.iter().find_map(|t| match t {
                Toxic::LimitData { bytes } => Some(*bytes),
                _ => None,
            });
            if let Some(limit) = limit {
                let room = limit.saturating_sub(sent) as usize;
                if chunk.len() >= room {
                    cw.write_all(&chunk[..room]).await?;
                    return Ok(());
                }
            }
            let slicer = now.iter().find_map(|t| match t {
                Toxic::Slicer {
                    avg,
                    variation,
                    delay_us,
                } => Some((*avg, *variation, *delay_us)),
                _ => None,
            });
            match slicer {
                Some((avg, variation, delay_us)) => {
                    while !chunk.is_empty() {
                        let v = rng.below(2 * variation as u64 + 1) as i64 - variation as i64;
                        let size = ((avg as i64 + v).max(1) as usize).min(chunk.len());
                        cw.write_all(&chunk[..size]).await?;
                        chunk = &chunk[size..];
                        tokio::time::sleep(Duration::from_micros(delay_us)).await;
                    }
                }
                None => cw.write_all(chunk).await?,
            }
            sent += n as u64;
        }
    };
    let reset = async {
        match reset_at {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        _ = reset => Ok(()),
        r = down => r,
        _ = up => Ok(()),
    }
}
