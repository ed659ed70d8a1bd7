//! Open-loop load for `bench/serve`: visitors who arrive on their own, not in step.
//!
//! Each keep-alive connection asks at the times of its own Poisson process (the connections'
//! rates add up to the offered rate), and a request's time is counted from when it was *due*,
//! not from when it could be sent: a request that waits behind a slow answer on its connection
//! counts that wait (the load does not slow down when the server does, so there is no
//! "coordinated omission"). This is the model of wrk2's constant-throughput mode and of
//! independent visitors, and what a server's tail latency means to them.
//!
//! Why not only `h2load --rps`: its clients' timers fire together in one pass of its event
//! loop, so 87-93 % of its requests leave within 20 µs of the one before (measured here), in
//! bursts of dozens; its p99 then measures how fast a burst of its own making drains, which two
//! equally quick servers split by chance. The bench prints both.
//!
//! Each of `threads` threads drives its share of the connections from one `epoll`, waiting with
//! a timeout in nanoseconds (`epoll_pwait2`) until the next arrival, its timer slack set to 1
//! ns, so arrivals are not rounded to the millisecond and bunched.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::num::NonZeroU64;
use std::time::{Duration, Instant};

use rustix::buffer::spare_capacity;
use rustix::event::{epoll, Timespec};

/// What to ask, how often and for how long.
#[derive(Clone, Copy)]
pub struct Load<'a> {
    pub addr: SocketAddr,
    pub host: &'a str,
    pub path: &'a str,
    /// Requests per second over all connections.
    pub rate: f64,
    pub secs: u32,
    pub conns: usize,
    pub threads: usize,
}

/// After the last arrival, answers still owed are waited for this long.
const DRAIN: Duration = Duration::from_secs(2);

/// Every answered request's time in milliseconds, from when it was due to its last byte. Only
/// `200` answers count; anything else, or a connection the server closes, is reported on
/// stderr and its requests left out.
pub fn times(load: Load<'_>) -> Vec<f64> {
    // Every connection is opened before the first arrival, and all threads start together.
    let start = Instant::now() + Duration::from_millis(200);
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..load.threads)
            .map(|t| {
                let conns = (t..load.conns).step_by(load.threads).count();
                s.spawn(move || drive(load, conns, t as u64, start))
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().expect("a load thread"))
            .collect()
    })
}

/// A small, seedable generator (splitmix64): the arrival times, with no crate for it.
struct Rng(u64);

impl Rng {
    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// The time to the next arrival of a Poisson process of `rate` per second.
    fn gap(&mut self, rate: f64) -> Duration {
        Duration::from_secs_f64(-self.unit().ln() / rate)
    }
}

/// One keep-alive connection: its next arrival, the requests due and not yet sent, and the
/// answer being read.
struct Conn {
    stream: TcpStream,
    next: Instant,
    waiting: VecDeque<Instant>,
    /// When the request in flight was due.
    in_flight: Option<Instant>,
    head: Vec<u8>,
    /// Body bytes still to come, once the head is read.
    body_left: Option<usize>,
    status_ok: bool,
    closed: bool,
}

impl Conn {
    fn send_next(&mut self, request: &[u8]) {
        if self.in_flight.is_some() || self.closed {
            return;
        }
        if let Some(due) = self.waiting.pop_front() {
            // A request is far smaller than an idle socket's buffer.
            match self.stream.write(request) {
                Ok(n) if n == request.len() => self.in_flight = Some(due),
                other => {
                    eprintln!("open-loop load: cannot send a request: {other:?}");
                    self.closed = true;
                }
            }
        }
    }

    /// Reads what arrived; returns the times (ms) of the answers it completed.
    fn read(&mut self, buf: &mut [u8], out: &mut Vec<f64>) {
        loop {
            let n = match self.stream.read(buf) {
                Ok(0) => {
                    eprintln!("open-loop load: the server closed a connection");
                    self.closed = true;
                    return;
                }
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    eprintln!("open-loop load: {e}");
                    self.closed = true;
                    return;
                }
            };
            match self.body_left {
                Some(left) => self.body_left = Some(left.saturating_sub(n)),
                None => {
                    self.head.extend_from_slice(&buf[..n]);
                    let Some(end) = self.head.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    // Read in place: the generator's own work per answer is kept small, as
                    // it shares the cores with the server it measures.
                    let head = &self.head[..end];
                    self.status_ok = head.starts_with(b"HTTP/1.1 200");
                    let Some(length) = content_length(head) else {
                        eprintln!("open-loop load: an answer without a content-length");
                        self.closed = true;
                        return;
                    };
                    let body_so_far = self.head.len() - (end + 4);
                    self.body_left = Some(length.saturating_sub(body_so_far));
                }
            }
            if self.body_left == Some(0) {
                if let Some(due) = self.in_flight.take() {
                    if self.status_ok {
                        out.push(due.elapsed().as_secs_f64() * 1000.0);
                    }
                }
                self.head.clear();
                self.body_left = None;
            }
        }
    }
}

/// The `Content-Length` of a response head (any case).
fn content_length(head: &[u8]) -> Option<usize> {
    const NAME: &[u8] = b"content-length:";
    head.split(|&b| b == b'\n').find_map(|line| {
        let value = line
            .get(..NAME.len())
            .filter(|n| n.eq_ignore_ascii_case(NAME))
            .map(|_| &line[NAME.len()..])?;
        std::str::from_utf8(value).ok()?.trim().parse().ok()
    })
}

/// One thread's connections from `start` for `load.secs` seconds.
fn drive(load: Load<'_>, conns: usize, seed: u64, start: Instant) -> Vec<f64> {
    let _ = rustix::thread::set_current_timer_slack(NonZeroU64::new(1));
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: understudy-bench\r\n\r\n",
        load.path, load.host
    )
    .into_bytes();
    let per_conn = load.rate / load.conns as f64;
    let mut rng = Rng(0x5eed_0000 + seed);
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC).expect("epoll");
    let mut all: Vec<Conn> = (0..conns)
        .map(|i| {
            let stream = TcpStream::connect(load.addr).expect("connect to the server");
            stream.set_nodelay(true).expect("nodelay");
            stream.set_nonblocking(true).expect("nonblocking");
            epoll::add(
                &ep,
                &stream,
                epoll::EventData::new_u64(i as u64),
                epoll::EventFlags::IN,
            )
            .expect("epoll add");
            Conn {
                stream,
                next: start + rng.gap(per_conn),
                waiting: VecDeque::new(),
                in_flight: None,
                head: Vec::with_capacity(1024),
                body_left: None,
                status_ok: false,
                closed: false,
            }
        })
        .collect();
    let end = start + Duration::from_secs(u64::from(load.secs));
    let mut out = Vec::with_capacity((per_conn * conns as f64 * f64::from(load.secs)) as usize);
    let mut buf = vec![0u8; 256 * 1024];
    let mut events: Vec<epoll::Event> = Vec::with_capacity(64);
    std::thread::sleep(start.saturating_duration_since(Instant::now()));
    loop {
        let now = Instant::now();
        let mut soonest = end;
        for c in all.iter_mut() {
            while c.next <= now && c.next < end {
                c.waiting.push_back(c.next);
                c.next += rng.gap(per_conn);
            }
            soonest = soonest.min(c.next);
            c.send_next(&request);
        }
        let owed = all
            .iter()
            .any(|c| !c.closed && (c.in_flight.is_some() || !c.waiting.is_empty()));
        if now >= end && (!owed || now >= end + DRAIN) {
            break;
        }
        let wait = if now >= end {
            Duration::from_millis(10)
        } else {
            soonest.saturating_duration_since(now)
        };
        let timeout = Timespec::try_from(wait).expect("a short wait");
        events.clear();
        match epoll::wait(&ep, spare_capacity(&mut events), Some(&timeout)) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => panic!("epoll_wait: {e}"),
        }
        for ev in &events {
            let i = ev.data.u64() as usize;
            all[i].read(&mut buf, &mut out);
            all[i].send_next(&request);
        }
    }
    out
}
