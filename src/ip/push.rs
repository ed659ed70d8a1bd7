//! The push source: for a standby that does not run on the home line, the home side reports its
//! address. The endpoint speaks the dyndns2 update protocol that home routers' built-in DDNS
//! clients already use (`GET /nic/update?hostname=NAME&myip=ADDR` with HTTP Basic auth), and
//! `understudy report` speaks the same.
//!
//! A pushed address goes through the same checks as any answer ([`super::agree::validate`]:
//! one public address, allow-list for labs) and then becomes this source's answer in the next
//! round, which is started at once. Answers (dyndns2 return codes): `good ADDR` (new),
//! `nochg ADDR` (same as before), `badauth` (401), `notfqdn` (no hostname), `nohost` (a
//! hostname understudy does not manage), and, outside dyndns2's list, `badip REASON` (400) for
//! an address that is not public: retrying it is pointless, so it gets its own word.
//! The endpoint is HTTPS unless it listens on loopback (config check).
//!
//! It is meant to face the internet, so failed logins are throttled ([`Throttle`], pure, with
//! the time as an argument): each client address gets [`FREE_FAILURES`] tries, then must wait
//! a doubling delay (1 s, 2 s, 4 s, ... at most 15 min) after each further failure, and is
//! answered `429 Too Many Requests` with `Retry-After` (which routers' DDNS clients honour)
//! without its credentials being checked. When more than [`GLOBAL_FAILURES`] logins fail in a
//! minute overall (many addresses), only addresses that logged in successfully in the last day
//! are still checked. A success forgets the address's failures. Failures are logged once per
//! address and streak, and otherwise summed up at most once a minute, so a flood of attempts
//! cannot flood the log. Credentials are compared in constant time; the config refuses a
//! password shorter than [`crate::config::MIN_PUSH_PASSWORD`] characters.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::agree::{validate, Family, Net};
use crate::config::Secret;

/// The latest pushed address per family, with the time it was pushed (Unix ms).
#[derive(Clone, Default)]
pub struct PushBoard(Arc<Mutex<BTreeMap<Family, (IpAddr, u64)>>>);

impl PushBoard {
    pub fn get(&self, family: Family, max_age: Duration, now: u64) -> Result<IpAddr, String> {
        match self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&family)
        {
            None => Err("nothing pushed yet".to_string()),
            Some((_, at)) if now.saturating_sub(*at) > max_age.as_millis() as u64 => Err(format!(
                "last push is older than {}",
                crate::util::human(max_age)
            )),
            Some((ip, _)) => Ok(*ip),
        }
    }

    fn put(&self, ip: IpAddr, now: u64) -> bool {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let same = m.get(&Family::of(&ip)).is_some_and(|(old, _)| *old == ip);
        m.insert(Family::of(&ip), (ip, now));
        !same
    }
}

/// What the endpoint needs to decide.
#[derive(Clone)]
pub struct PushAuth {
    pub username: String,
    pub password: Secret,
    /// Names a client may update (the `[[ddns]]` names and `auto` sites' domains), lowercase,
    /// without the final dot.
    pub hostnames: Vec<String>,
    pub allow: Vec<Net>,
}

/// Decides one update request; pure apart from the board. Returns (HTTP status, body).
pub fn update(
    auth: &PushAuth,
    board: &PushBoard,
    authorization: Option<&str>,
    query: &str,
    peer: IpAddr,
    now: u64,
) -> (StatusCode, String) {
    if !authorized(auth, authorization) {
        return (StatusCode::UNAUTHORIZED, "badauth".to_string());
    }
    let params: BTreeMap<String, String> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect();
    let Some(hostnames) = params.get("hostname").filter(|h| !h.is_empty()) else {
        return (StatusCode::OK, "notfqdn".to_string());
    };
    for h in hostnames.split(',') {
        if !auth
            .hostnames
            .iter()
            .any(|k| k.eq_ignore_ascii_case(h.trim().trim_end_matches('.')))
        {
            return (StatusCode::OK, "nohost".to_string());
        }
    }
    // dyndns2: without myip, the address the request came from.
    let raw = params
        .get("myip")
        .cloned()
        .unwrap_or_else(|| peer.to_string());
    let family = if raw.contains(':') {
        Family::Ipv6
    } else {
        Family::Ipv4
    };
    match validate(&raw, family, &auth.allow) {
        Err(why) => (StatusCode::BAD_REQUEST, format!("badip {why}")),
        Ok(ip) => {
            if board.put(ip, now) {
                (StatusCode::OK, format!("good {ip}"))
            } else {
                (StatusCode::OK, format!("nochg {ip}"))
            }
        }
    }
}

fn authorized(auth: &PushAuth, header: Option<&str>) -> bool {
    let Some(b64) = header.and_then(|h| {
        h.strip_prefix("Basic ")
            .or_else(|| h.strip_prefix("basic "))
    }) else {
        return false;
    };
    let Ok(decoded) = crate::util::base64_decode(b64.trim()) else {
        return false;
    };
    let Ok(text) = String::from_utf8(decoded) else {
        return false;
    };
    let Some((user, pass)) = text.split_once(':') else {
        return false;
    };
    constant_time_eq(user.as_bytes(), auth.username.as_bytes())
        & constant_time_eq(pass.as_bytes(), auth.password.0.as_bytes())
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

/// Failed logins an address may make before it has to wait.
pub const FREE_FAILURES: u32 = 5;
/// Failed logins per minute, over all addresses, above which only known-good addresses are
/// checked.
pub const GLOBAL_FAILURES: usize = 100;
const MAX_DELAY_MS: u64 = 15 * 60_000;
/// An address's failures are forgotten after an hour without one.
const FORGET_AFTER_MS: u64 = 3_600_000;
/// An address that logged in successfully stays "known good" this long.
const GOOD_FOR_MS: u64 = 86_400_000;
/// At most this many addresses are remembered (the oldest are forgotten first).
const MAX_TRACKED: usize = 4_096;

#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    last: u64,
}

/// The login throttle of the push endpoint (see the module doc for the rules).
#[derive(Debug, Default)]
pub struct Throttle {
    failures: HashMap<IpAddr, Failures>,
    good: HashMap<IpAddr, u64>,
    /// Times of the failed logins of the last minute, over all addresses.
    recent: VecDeque<u64>,
    /// Failures (and refusals) not logged one by one since `summary_at`, and from whom.
    quiet: u64,
    quiet_from: HashSet<IpAddr>,
    summary_at: u64,
}

/// Whether a request may have its credentials checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    Check,
    /// Answer 429 with this `Retry-After`, in whole seconds.
    Wait(u64),
}

impl Throttle {
    /// Before checking credentials from `peer` at `now`.
    pub fn gate(&mut self, peer: IpAddr, now: u64) -> Gate {
        while self
            .recent
            .front()
            .is_some_and(|t| now.saturating_sub(*t) >= 60_000)
        {
            self.recent.pop_front();
        }
        let known_good = self
            .good
            .get(&peer)
            .is_some_and(|t| now.saturating_sub(*t) < GOOD_FOR_MS);
        if let Some(f) = self.failures.get(&peer).copied() {
            if now.saturating_sub(f.last) >= FORGET_AFTER_MS {
                self.failures.remove(&peer);
            } else if f.count >= FREE_FAILURES {
                let delay = (1_000u64 << (f.count - FREE_FAILURES).min(20)).min(MAX_DELAY_MS);
                let until = f.last.saturating_add(delay);
                if now < until {
                    return Gate::Wait((until - now).div_ceil(1_000));
                }
            }
        }
        if !known_good && self.recent.len() >= GLOBAL_FAILURES {
            let oldest = self.recent.front().copied().unwrap_or(now);
            return Gate::Wait((oldest + 60_000).saturating_sub(now).div_ceil(1_000).max(1));
        }
        Gate::Check
    }

    /// After a failed login; returns what to log now, if anything (the first failure of a
    /// streak, the moment an address starts to wait, or a summary at most once a minute).
    pub fn failed(&mut self, peer: IpAddr, now: u64) -> Option<String> {
        self.recent.push_back(now);
        if self.failures.len() >= MAX_TRACKED && !self.failures.contains_key(&peer) {
            if let Some(oldest) = self
                .failures
                .iter()
                .min_by_key(|(_, f)| f.last)
                .map(|(ip, _)| *ip)
            {
                self.failures.remove(&oldest);
            }
        }
        let f = self.failures.entry(peer).or_insert(Failures {
            count: 0,
            last: now,
        });
        f.count = f.count.saturating_add(1);
        f.last = now;
        match f.count {
            1 => Some(format!("failed login from {peer}")),
            n if n == FREE_FAILURES => Some(format!(
                "{n} failed logins in a row from {peer}; it now waits 1s after each further one, doubling up to {}",
                crate::util::human_duration(MAX_DELAY_MS)
            )),
            _ => self.quietly(peer, now),
        }
    }

    /// A request answered 429: counted in the summary, not logged alone.
    pub fn refused(&mut self, peer: IpAddr, now: u64) -> Option<String> {
        self.quietly(peer, now)
    }

    /// After a successful login: the address's failures are forgotten and it is known good.
    pub fn succeeded(&mut self, peer: IpAddr, now: u64) {
        self.failures.remove(&peer);
        if self.good.len() >= MAX_TRACKED && !self.good.contains_key(&peer) {
            self.good
                .retain(|_, t| now.saturating_sub(*t) < GOOD_FOR_MS);
        }
        if self.good.len() < MAX_TRACKED || self.good.contains_key(&peer) {
            self.good.insert(peer, now);
        }
    }

    fn quietly(&mut self, peer: IpAddr, now: u64) -> Option<String> {
        self.quiet += 1;
        if self.quiet_from.len() < MAX_TRACKED {
            self.quiet_from.insert(peer);
        }
        if now.saturating_sub(self.summary_at) < 60_000 {
            return None;
        }
        let line = format!(
            "{} more failed or throttled login(s) from {} address(es) since the last summary (logged once a minute)",
            self.quiet,
            self.quiet_from.len()
        );
        (self.quiet, self.summary_at) = (0, now);
        self.quiet_from.clear();
        Some(line)
    }
}

/// Serves the endpoint until `cancel`; `pushed` is notified after every accepted push (the loop
/// and its limits: [`crate::http::server`]; a connection lasts at most a minute).
pub async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    auth: PushAuth,
    board: PushBoard,
    pushed: Arc<tokio::sync::Notify>,
    cancel: CancellationToken,
) {
    let throttle = Mutex::new(Throttle::default());
    let opts = crate::http::server::Options {
        name: "push endpoint",
        max_connections: 1024,
        header_timeout: Duration::from_secs(10),
        http2: false,
        max_lifetime: Some(Duration::from_secs(60)),
        grace: Duration::from_secs(2),
        cores: None,
    };
    crate::http::server::serve(listener, tls, opts, cancel, move |req, peer| {
        let answer = route(req, &auth, &board, &pushed, &throttle, peer);
        async move { answer }
    })
    .await;
}

fn route(
    req: Request<hyper::body::Incoming>,
    auth: &PushAuth,
    board: &PushBoard,
    pushed: &tokio::sync::Notify,
    throttle: &Mutex<Throttle>,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    let now = crate::util::now_millis();
    let mut retry_after = None;
    let (status, body) = if req.uri().path() == "/nic/update" {
        let mut t = throttle.lock().unwrap_or_else(|e| e.into_inner());
        match t.gate(peer.ip(), now) {
            Gate::Wait(secs) => {
                if let Some(line) = t.refused(peer.ip(), now) {
                    tracing::warn!("push endpoint: {line}");
                }
                retry_after = Some(secs);
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("abuse too many failed logins; retry after {secs}s"),
                )
            }
            Gate::Check => {
                let header = req
                    .headers()
                    .get(hyper::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok());
                let r = update(
                    auth,
                    board,
                    header,
                    req.uri().query().unwrap_or(""),
                    peer.ip(),
                    now,
                );
                if r.0 == StatusCode::UNAUTHORIZED {
                    if let Some(line) = t.failed(peer.ip(), now) {
                        tracing::warn!(%peer, "push refused: {line}");
                    }
                } else {
                    t.succeeded(peer.ip(), now);
                    tracing::info!(%peer, "push: {}", r.1);
                }
                if r.1.starts_with("good") {
                    pushed.notify_one();
                }
                r
            }
        }
    } else {
        (
            StatusCode::NOT_FOUND,
            "not found; updates go to /nic/update".to_string(),
        )
    };
    let mut resp = Response::new(Full::new(Bytes::from(format!("{body}\n"))));
    if let Some(secs) = retry_after {
        resp.headers_mut().insert(
            hyper::header::RETRY_AFTER,
            hyper::header::HeaderValue::from(secs),
        );
    }
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        "text/plain".parse().expect("valid"),
    );
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            "Basic realm=\"understudy\"".parse().expect("valid"),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> PushAuth {
        PushAuth {
            username: "home".into(),
            password: Secret("s3cret".into()),
            hostnames: vec!["home.example.com".into()],
            allow: vec![],
        }
    }

    fn basic(user: &str, pass: &str) -> String {
        // "home:s3cret" and friends, base64 by hand-made table (test only).
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let input = format!("{user}:{pass}").into_bytes();
        let mut out = String::new();
        for chunk in input.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        format!("Basic {out}")
    }

    #[test]
    fn dyndns2_answers() {
        let (a, b) = (auth(), PushBoard::default());
        let peer: IpAddr = "8.8.4.4".parse().unwrap();
        let ok = basic("home", "s3cret");
        assert_eq!(
            update(
                &a,
                &b,
                Some(&ok),
                "hostname=home.example.com&myip=8.8.8.8",
                peer,
                1
            )
            .1,
            "good 8.8.8.8"
        );
        assert_eq!(
            update(
                &a,
                &b,
                Some(&ok),
                "hostname=home.example.com&myip=8.8.8.8",
                peer,
                2
            )
            .1,
            "nochg 8.8.8.8"
        );
        assert_eq!(
            b.get(Family::Ipv4, Duration::from_secs(60), 3)
                .unwrap()
                .to_string(),
            "8.8.8.8"
        );
        assert_eq!(
            update(&a, &b, Some(&ok), "hostname=home.example.com", peer, 4).1,
            "good 8.8.4.4",
            "no myip: the peer"
        );
        assert_eq!(
            update(
                &a,
                &b,
                Some(&basic("home", "wrong")),
                "hostname=home.example.com&myip=1.1.1.1",
                peer,
                5
            )
            .0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            update(
                &a,
                &b,
                None,
                "hostname=home.example.com&myip=1.1.1.1",
                peer,
                5
            )
            .1,
            "badauth"
        );
        assert_eq!(
            update(
                &a,
                &b,
                Some("Basic !!!"),
                "hostname=home.example.com",
                peer,
                5
            )
            .1,
            "badauth"
        );
        assert_eq!(
            update(&a, &b, Some(&ok), "myip=1.1.1.1", peer, 6).1,
            "notfqdn"
        );
        assert_eq!(
            update(
                &a,
                &b,
                Some(&ok),
                "hostname=other.example.com&myip=1.1.1.1",
                peer,
                6
            )
            .1,
            "nohost"
        );
        let (status, body) = update(
            &a,
            &b,
            Some(&ok),
            "hostname=home.example.com&myip=192.168.1.5",
            peer,
            7,
        );
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body.starts_with("badip 192.168.1.5 is not a public address"),
            "{body}"
        );
        assert_eq!(
            b.get(Family::Ipv4, Duration::from_secs(60), 8)
                .unwrap()
                .to_string(),
            "8.8.4.4",
            "refused pushes change nothing"
        );
        assert!(
            b.get(Family::Ipv4, Duration::from_millis(1), 1_000)
                .is_err(),
            "too old"
        );
        assert_eq!(
            update(
                &a,
                &b,
                Some(&ok),
                "hostname=home.example.com&myip=2a00%3A1450%3A4001%3A%3A1",
                peer,
                9
            )
            .1,
            "good 2a00:1450:4001::1"
        );
    }

    /// Issue 11, item 4: five free tries per address, then a doubling wait answered with 429;
    /// many addresses at once trip the global limit, which known-good addresses pass.
    #[test]
    fn failed_logins_are_throttled_per_address_and_overall() {
        let mut t = Throttle::default();
        let bad: IpAddr = "203.0.113.9".parse().unwrap();
        let mut logged = 0;
        for i in 0..FREE_FAILURES {
            assert_eq!(t.gate(bad, 1_000 + u64::from(i)), Gate::Check, "try {i}");
            logged += usize::from(t.failed(bad, 1_000 + u64::from(i)).is_some());
        }
        let last = 1_000 + u64::from(FREE_FAILURES) - 1;
        assert_eq!(t.gate(bad, last + 10), Gate::Wait(1));
        assert_eq!(
            t.gate(bad, last + 1_000),
            Gate::Check,
            "after 1 s one more try"
        );
        t.failed(bad, last + 1_000);
        assert_eq!(t.gate(bad, last + 1_500), Gate::Wait(2), "then 2 s");
        t.gate(bad, last + 3_000);
        t.failed(bad, last + 3_000);
        assert_eq!(t.gate(bad, last + 3_001), Gate::Wait(4), "then 4 s");
        assert_eq!(
            logged, 2,
            "the first failure and the start of the wait are logged, no more"
        );
        // A success forgets the failures.
        t.succeeded(bad, last + 10_000);
        assert_eq!(t.gate(bad, last + 10_001), Gate::Check);
        // The wait is capped, and an hour without failures forgets them.
        let mut t = Throttle::default();
        for i in 0..40 {
            t.failed(bad, i);
        }
        assert_eq!(t.gate(bad, 40), Gate::Wait(MAX_DELAY_MS / 1_000));
        assert_eq!(t.gate(bad, 39 + FORGET_AFTER_MS), Gate::Check);

        // Many addresses, each within its free tries, together over the global limit.
        let mut t = Throttle::default();
        let good: IpAddr = "198.51.100.1".parse().unwrap();
        t.succeeded(good, 0);
        for i in 0..GLOBAL_FAILURES {
            let ip = IpAddr::from([203, 0, 113, (i % 250) as u8]);
            assert_eq!(t.gate(ip, 1_000), Gate::Check);
            t.failed(ip, 1_000);
        }
        let stranger: IpAddr = "192.0.2.200".parse().unwrap();
        assert_eq!(t.gate(stranger, 2_000), Gate::Wait(59));
        assert_eq!(
            t.gate(good, 2_000),
            Gate::Check,
            "a known-good address is still checked"
        );
        assert_eq!(
            t.gate(stranger, 61_000),
            Gate::Check,
            "a minute later the rate is down"
        );
    }

    #[test]
    fn the_log_is_summed_up_at_most_once_a_minute() {
        let mut t = Throttle::default();
        let mut lines = vec![];
        for i in 0..2_000u64 {
            let ip = IpAddr::from([203, 0, 113, 9]);
            let at = 120_000 + i * 100;
            let line = match t.gate(ip, at) {
                Gate::Check => t.failed(ip, at),
                Gate::Wait(_) => t.refused(ip, at),
            };
            lines.extend(line);
        }
        // 200 s of attempts: the first failure, the start of the wait, and a summary a minute.
        assert!(lines.len() <= 2 + 4, "{lines:#?}");
        assert!(
            lines.iter().any(|l| l.contains("since the last summary")),
            "{lines:#?}"
        );
    }

    #[test]
    fn comparisons_and_decoding() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert_eq!(percent_decode("a%20b+c%3A"), "a b c:");
        assert_eq!(percent_decode("%zz%"), "%zz%");
        assert_eq!(percent_decode("%4"), "%4");
    }
}
