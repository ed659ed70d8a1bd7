//! Proxy mode (issue 16): the standby fronts the site. A visitor's request goes through the
//! daemon's standby listener to the real nginx origin; with the origin killed, every GET is
//! answered from the copy at once (the first one included), a POST gets the read-only 503,
//! and once the origin is back and stable the origin answers again. The records never move.

use crate::common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::fixture::Fixture;
use common::netns::{Child_, Netns};
use common::*;

/// Probes every 200 ms, down after 3 failures, back after 2 successes and 1 s.
const FAST_PROBES: &str = "interval = \"200ms\"\ntimeout = \"300ms\"\nfailures_to_down = 3\nsuccesses_to_up = 2\nhold_down = \"1s\"";

/// The fixture site in proxy mode, its standby listener on 127.0.0.2 at the origin's port (so
/// the standby probes reach it), with `probes` in `[sites.probe]`.
fn proxy_config(f: &Fixture, extra_site: &str, probes: &str) -> (String, SocketAddr) {
    let port = f.port();
    let standby: SocketAddr = format!("127.0.0.2:{port}").parse().unwrap();
    let cfg = f
        .config("")
        .replace(
            "standby = \"127.0.0.2\"\n",
            &format!("standby = \"127.0.0.2\"\nmode = \"proxy\"\n{extra_site}"),
        )
        .replace(
            "[[sites]]",
            &format!("[standby]\nlisten = [\"{standby}\"]\n[watcher]\nreferences = []\n[[sites]]"),
        )
        .replace("interval = \"1s\"", probes);
    (cfg, standby)
}

/// A visitor whose resolver says the site is at the standby (as the records do).
struct Visitor {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    port: u16,
}

/// Who answered: "snapshot" when the copy did (it says so), else "origin".
fn served_from(h: &reqwest::header::HeaderMap) -> String {
    h.get("x-understudy-served-from")
        .map(|v| v.to_str().unwrap_or("?").to_string())
        .unwrap_or_else(|| "origin".into())
}

/// What a visitor got: status, who answered (the copy says so in a header), headers, body.
struct Got {
    status: u16,
    from: String,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Visitor {
    fn new(standby: SocketAddr) -> Visitor {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Visitor {
            rt: common::rt(),
            client: reqwest::Client::builder()
                .no_proxy()
                .resolve("www.fixture.test", standby)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
            port: standby.port(),
        }
    }

    /// A request's answer; a transport error is status 0 with the error as the body.
    fn send(&self, method: reqwest::Method, path: &str, accept: &str) -> Got {
        self.rt.block_on(async {
            let sent = self
                .client
                .request(
                    method,
                    format!("http://www.fixture.test:{}{path}", self.port),
                )
                .header("accept", accept)
                .body("x=1")
                .send()
                .await;
            match sent {
                Ok(r) => Got {
                    status: r.status().as_u16(),
                    from: served_from(r.headers()),
                    headers: r.headers().clone(),
                    body: r.text().await.unwrap_or_default(),
                },
                Err(e) => Got {
                    status: 0,
                    from: String::new(),
                    headers: Default::default(),
                    body: format!("{e:?}"),
                },
            }
        })
    }

    fn get(&self, path: &str) -> Got {
        self.send(reqwest::Method::GET, path, "*/*")
    }
}

#[test]
fn the_standby_fronts_the_site_and_answers_from_the_copy_the_moment_the_origin_dies() {
    let mut f = Fixture::start();
    let (cfg, standby) = proxy_config(&f, "", FAST_PROBES);
    let d = Daemon::start(&cfg);
    let c = Visitor::new(standby);
    // The records point at the standby from the start, and never move.
    assert_eq!(d.answer("www.fixture.test"), [standby.ip()]);
    wait_until(
        Duration::from_secs(30),
        "the first crawl to publish",
        || d.report().sites[0].standby_ready,
    );

    // Through the proxy to the origin.
    let r = c.get("/about");
    assert_eq!((r.status, r.from.as_str()), (200, "origin"));
    let origin_body = r.body;
    let post = c.send(reqwest::Method::POST, "/about", "*/*");
    assert_ne!(post.status, 503, "a POST reaches the origin while it is up");

    // The origin dies: the very next GET is answered from the copy, no error in between.
    f.nginx.kill();
    let t = Instant::now();
    let r = c.get("/about");
    assert_eq!((r.status, r.from.as_str()), (200, "snapshot"));
    assert!(r.headers.contains_key("age"));
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(r.body, origin_body);
    for _ in 0..20 {
        let r = c.get("/about");
        assert_eq!((r.status, r.from.as_str()), (200, "snapshot"));
    }
    // A write is never replayed nor answered from the copy.
    let post = c.send(reqwest::Method::POST, "/about", "text/html");
    assert_eq!(post.status, 503);
    assert!(post.headers.contains_key("retry-after"));
    assert!(post.body.contains("not received"));

    // The decision follows; the records stay on the standby; status and metrics say so.
    wait_until(
        Duration::from_secs(10),
        "the decision to have the primary down",
        || d.phase() == "failed-over",
    );
    assert_eq!(d.answer("www.fixture.test"), [standby.ip()]);
    let p = d.report().sites[0]
        .proxy
        .clone()
        .expect("a proxied site's counts");
    assert!(
        p.open && p.copy_since.is_some() && p.from_copy >= 21 && p.refused >= 1,
        "{p:?}"
    );
    let (code, words, _) = d.cli(&["status"]);
    assert_eq!(code, 0);
    assert!(
        words.contains("proxy:      THE COPY ANSWERS since"),
        "{words}"
    );
    let metrics = c.rt.block_on(async {
        reqwest::Client::new()
            .get(format!("http://{}/metrics", d.info.api))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert!(
        metrics.contains("understudy_proxy_requests_total{site=\"fixture\",answered_by=\"copy\"}"),
        "{metrics}"
    );

    // Back, and stable: the origin answers again.
    f.nginx.restart();
    wait_until(
        Duration::from_secs(15),
        "the origin to answer again",
        || c.get("/about").from == "origin",
    );
    assert_eq!(d.phase(), "healthy");
    assert!(!d.report().sites[0].proxy.clone().unwrap().open);
}

/// What each request of a steady visitor loop got, and when.
struct Loop {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<Vec<(Instant, u16, String)>>,
}

impl Loop {
    /// GETs of `/about` every 20 ms, each waiting for its answer (at most 10 s).
    fn start(standby: SocketAddr) -> Loop {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let c = Visitor::new(standby);
            let mut got = vec![];
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                let r = c.get("/about");
                got.push((Instant::now(), r.status, r.from));
                std::thread::sleep(Duration::from_millis(20));
            }
            got
        });
        Loop { stop, handle }
    }

    fn finish(self) -> Vec<(Instant, u16, String)> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}

/// The longest time between two answers in `got`.
fn longest_gap(got: &[(Instant, u16, String)]) -> Duration {
    got.windows(2)
        .map(|w| w[1].0 - w[0].0)
        .max()
        .unwrap_or_default()
}

/// The origin's packets silently dropped (nftables inside the namespace it runs in) while a
/// visitor loops, with the default probes (every 2 s, 1 s timeout): no request fails, and the
/// longest wait stays near the liveness check's (a request on the pooled connection waits
/// 200 ms, then a new connection is refused its 500 ms), not the decision's seconds nor the
/// 30 s such a request would otherwise wait.
#[test]
fn a_silent_drop_mid_traffic_fails_no_request() {
    need("nft", "nftables");
    let (ns, home) = Netns::linked("us-proxy", "usp", 234);
    let port = free_port("127.0.0.2");
    let origin = SocketAddr::new(home, port);
    let f = Fixture::start_in(&ns.name, origin);
    let (cfg, standby) = proxy_config(&f, "", "interval = \"2s\"");
    let d = Daemon::start(&cfg);
    wait_until(
        Duration::from_secs(30),
        "the first crawl to publish",
        || d.report().sites[0].standby_ready,
    );
    let visitor = Loop::start(standby);
    std::thread::sleep(Duration::from_millis(500));
    let dropped = Instant::now();
    let nft = |rule: &str| {
        let out = ns.exec(&["nft", rule]).output().unwrap();
        assert!(
            out.status.success(),
            "nft {rule}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    nft("add table inet us_cut");
    nft("add chain inet us_cut input { type filter hook input priority 0; }");
    nft(&format!("add rule inet us_cut input tcp dport {port} drop"));
    wait_until(
        Duration::from_secs(10),
        "the decision to have the primary down",
        || d.phase() == "failed-over",
    );
    std::thread::sleep(Duration::from_millis(500));
    let got = visitor.finish();
    let failed: Vec<_> = got.iter().filter(|(_, s, _)| *s != 200).collect();
    assert!(failed.is_empty(), "failed requests: {failed:?}");
    let after: Vec<_> = got.iter().filter(|(t, ..)| *t > dropped).collect();
    assert!(
        after.iter().any(|(_, _, from)| from == "snapshot"),
        "{after:?}"
    );
    let gap = longest_gap(&got);
    eprintln!(
        "silent drop: longest wait between answers {gap:?}, {} requests",
        got.len()
    );
    assert!(
        gap < Duration::from_millis(1_500),
        "a request waited {gap:?}"
    );
}

type Seen = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// Base64 (RFC 4648, padded): the WebSocket handshake's accept value.
fn b64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The accept value for a WebSocket key (RFC 6455 §4.2.2).
fn ws_accept(key: &str) -> String {
    let d = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        format!("{key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11").as_bytes(),
    );
    b64(d.as_ref())
}

/// An origin that answers `GET /` (the probes) with 200 and upgrades `/ws` to a WebSocket
/// that echoes each frame back (RFC 6455, unmasked as a server sends).
/// Every request head it got is kept in `seen`.
fn ws_origin(addr: SocketAddr, seen: Seen) -> std::thread::JoinHandle<()> {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind(addr).unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut s = s;
                let mut head = vec![];
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if s.read(&mut b).unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(b[0]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                seen.lock().unwrap().push(head.clone());
                let key = head.lines().find_map(|l| {
                    l.to_ascii_lowercase()
                        .starts_with("sec-websocket-key:")
                        .then(|| l.split_once(':').unwrap().1.trim().to_string())
                });
                let Some(key) = key else {
                    let _ = s.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n",
                    );
                    return;
                };
                let _ = s.write_all(format!("HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {}\r\n\r\n", ws_accept(&key)).as_bytes());
                // Echo frames: [fin+op, mask+len(<126), mask key, payload].
                loop {
                    let mut h = [0u8; 2];
                    if s.read_exact(&mut h).is_err() {
                        return;
                    }
                    let len = usize::from(h[1] & 0x7f);
                    let mut mask = [0u8; 4];
                    let _ = s.read_exact(&mut mask);
                    let mut p = vec![0u8; len];
                    let _ = s.read_exact(&mut p);
                    for (i, x) in p.iter_mut().enumerate() {
                        *x ^= mask[i % 4];
                    }
                    let mut frame = vec![h[0], len as u8];
                    frame.extend_from_slice(&p);
                    if s.write_all(&frame).is_err() {
                        return;
                    }
                }
            });
        }
    })
}

/// A proxied site whose origin is [`ws_origin`] on 127.0.0.1 (heads kept in `seen`), its
/// standby on 127.0.0.2 at the same port, probes every 200 ms.
struct RawSite {
    port: u16,
    standby: SocketAddr,
    seen: Seen,
    daemon: Daemon,
    _origin: std::thread::JoinHandle<()>,
}

impl RawSite {
    fn start() -> RawSite {
        let port = free_port("127.0.0.1");
        let origin: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let standby: SocketAddr = format!("127.0.0.2:{port}").parse().unwrap();
        let seen = Seen::default();
        let thread = ws_origin(origin, seen.clone());
        let cfg = format!(
            "{}[standby]\nlisten = [\"{standby}\"]\n[[sites]]\nname = \"shop\"\ndomain = \"www.example.test\"\nprimary = \"{origin}\"\nstandby = \"127.0.0.2\"\nmode = \"proxy\"\n[sites.probe]\nscheme = \"http\"\nport = {port}\ninterval = \"200ms\"\ntimeout = \"300ms\"\n[sites.mirror]\nevery = \"1d\"\n",
            preamble(&["example.test"])
        );
        RawSite {
            port,
            standby,
            seen,
            daemon: Daemon::start(&cfg),
            _origin: thread,
        }
    }
}

/// A WebSocket through the standby while the origin is up: the handshake (the origin's
/// accept value) and frames both ways pass through. (While the circuit is open an upgrade gets
/// the read-only 503 like a write: there is no copy of a conversation.)
#[test]
fn a_websocket_passes_through_while_the_origin_is_up() {
    use std::io::{Read, Write};
    // (Bound, not `..`: an unbound daemon would be dropped, so stopped, at once.)
    let RawSite {
        port,
        standby,
        seen,
        daemon: _daemon,
        ..
    } = RawSite::start();
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let mut s = std::net::TcpStream::connect(standby).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(format!("GET /ws HTTP/1.1\r\nhost: www.example.test:{port}\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: {key}\r\nsec-websocket-version: 13\r\n\r\n").as_bytes()).unwrap();
    let mut head = vec![];
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut b).unwrap(),
            1,
            "{}",
            String::from_utf8_lossy(&head)
        );
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains(&format!(
            "sec-websocket-accept: {}",
            ws_accept(key).to_ascii_lowercase()
        )),
        "{head}"
    );
    for text in ["hello", "through the standby"] {
        let mask = [1u8, 2, 3, 4];
        let mut frame = vec![0x81, 0x80 | text.len() as u8];
        frame.extend_from_slice(&mask);
        frame.extend(text.bytes().enumerate().map(|(i, c)| c ^ mask[i % 4]));
        s.write_all(&frame).unwrap();
        let mut h = [0u8; 2];
        s.read_exact(&mut h).unwrap();
        let mut p = vec![0u8; usize::from(h[1] & 0x7f)];
        s.read_exact(&mut p).unwrap();
        assert_eq!(
            (h[0], String::from_utf8(p).unwrap()),
            (0x81, text.to_string())
        );
    }
    // What the origin saw: the visitor's Host, who the visitor is, the upgrade's own headers.
    let head = seen
        .lock()
        .unwrap()
        .iter()
        .find(|h| h.starts_with("GET /ws "))
        .cloned()
        .unwrap()
        .to_ascii_lowercase();
    for want in [
        format!("host: www.example.test:{port}"),
        "x-forwarded-for: 127.0.0.1".to_string(),
        "x-forwarded-proto: http".to_string(),
        "upgrade: websocket".to_string(),
        format!("sec-websocket-key: {}", key.to_ascii_lowercase()),
    ] {
        assert!(
            head.contains(&want),
            "{want} missing from what the origin got:\n{head}"
        );
    }
}

/// Requests a front proxy must refuse, sent raw to the standby: each is refused there (400 or
/// 431) and none reaches the origin, which sees only the probes. A request with both
/// Content-Length and Transfer-Encoding may instead be read by its Transfer-Encoding (RFC 9112
/// §6.3) if the connection is then closed: what was smuggled after it never reaches the origin.
#[test]
fn smuggling_attempts_are_refused_at_the_standby() {
    use std::io::{Read, Write};
    let RawSite {
        port,
        standby,
        seen,
        daemon: d,
        ..
    } = RawSite::start();
    let host = format!("host: www.example.test:{port}");
    let big = format!("x-big: {}", "a".repeat(70_000));
    let attempts = [
        ("CL and TE", format!("POST /a HTTP/1.1\r\n{host}\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n{host}\r\n\r\n")),
        ("two CLs", format!("POST /a HTTP/1.1\r\n{host}\r\ncontent-length: 4\r\ncontent-length: 40\r\n\r\nabcd")),
        ("obs-fold", format!("GET /a HTTP/1.1\r\n{host}\r\nx-folded: one\r\n two\r\n\r\n")),
        ("bad chunk size", format!("POST /a HTTP/1.1\r\n{host}\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nabcd\r\n0\r\n\r\n")),
        ("TE not chunked last", format!("POST /a HTTP/1.1\r\n{host}\r\ntransfer-encoding: chunked, identity\r\n\r\n4\r\nabcd\r\n0\r\n\r\n")),
        ("oversized headers", format!("GET /a HTTP/1.1\r\n{host}\r\n{big}\r\n\r\n")),
        ("two Hosts", format!("GET /a HTTP/1.1\r\n{host}\r\nhost: other.test\r\n\r\n")),
    ];
    let probes_before = seen.lock().unwrap().len();
    let mut wrong = vec![];
    for (what, raw) in &attempts {
        let mut s = std::net::TcpStream::connect(standby).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let _ = s.write_all(raw.as_bytes());
        // Everything the standby sends until it closes the connection (a 2 s read timeout
        // would mean it kept it open).
        let mut answer = vec![];
        let closed = s.read_to_end(&mut answer).is_ok();
        let text = String::from_utf8_lossy(&answer).to_string();
        let status = text.lines().next().unwrap_or("").to_string();
        let refused = status.starts_with("HTTP/1.1 400") || status.starts_with("HTTP/1.1 431");
        let read_by_te = *what == "CL and TE" && closed && text.matches("HTTP/1.1").count() == 1;
        if !(refused || read_by_te) {
            wrong.push(format!("{what}: {status:?} (closed: {closed})"));
        }
    }
    assert!(wrong.is_empty(), "not refused: {wrong:?}");
    std::thread::sleep(Duration::from_millis(300));
    let reached: Vec<String> = seen.lock().unwrap()[probes_before..]
        .iter()
        .filter(|h| !h.starts_with("GET / ") && !h.contains("(standby mirror)"))
        .cloned()
        .collect();
    // Only the chunked-read POST of "CL and TE" may arrive, framed anew and alone.
    assert!(
        reached.len() <= 1
            && reached.iter().all(|h| h.starts_with("POST /a ")
                && !h.to_ascii_lowercase().contains("content-length: 4")),
        "reached the origin: {reached:?}"
    );
    assert!(!reached.iter().any(|h| h.contains("smuggled")));
    // A visitor's broken body is the visitor's fault: the circuit stays closed (it was tripped,
    // and the bad chunk answered 503, before the proxy told the two apart).
    let p = d.report().sites[0].proxy.clone().unwrap();
    assert!(!p.open && p.from_copy == 0, "{p:?}");
}

/// `refresh_from_traffic = true`: a page changed at the origin and visited through the proxy
/// is what the copy answers once the origin is gone; a page not visited since the crawl is
/// the crawl's. (Off by default: without it the crawl's page is answered.)
#[test]
fn a_copy_fed_by_traffic_answers_the_last_visit() {
    let mut f = Fixture::start();
    let (cfg, standby) = proxy_config(
        &f,
        "[sites.proxy]\nrefresh_from_traffic = true\n",
        FAST_PROBES,
    );
    let d = Daemon::start(&cfg);
    let c = Visitor::new(standby);
    wait_until(
        Duration::from_secs(30),
        "the first crawl to publish",
        || d.report().sites[0].standby_ready,
    );
    let crawled_blog = c.get("/blog/post-1").body;
    f.set("about.html", "<h1>About, as edited after the crawl</h1>");
    let r = c.get("/about");
    assert_eq!(
        (r.from.as_str(), r.body.as_str()),
        ("origin", "<h1>About, as edited after the crawl</h1>")
    );
    f.set(
        "blog/post-1.html",
        "<p>post one, edited but never visited</p>",
    );
    f.nginx.kill();
    let r = c.get("/about");
    assert_eq!(r.from, "snapshot");
    assert_eq!(
        r.body, "<h1>About, as edited after the crawl</h1>",
        "the last visit's answer"
    );
    assert!(r.headers["age"].to_str().unwrap().parse::<u64>().unwrap() < 30);
    let r = c.get("/blog/post-1");
    assert_eq!(
        (r.from.as_str(), r.body),
        ("snapshot", crawled_blog),
        "not visited: the crawl's"
    );
}

/// An sshd of the test's own on `addr`, letting `key` in as root to set up reverse tunnels;
/// stopped by PID when dropped.
struct Sshd {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &std::path::Path) {
    let ok = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "ssh-keygen");
}

impl Sshd {
    fn start(addr: SocketAddr, client_pub: &std::path::Path) -> Sshd {
        need("sshd", "openssh-server");
        // sshd insists on its privilege separation directory.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host"));
        std::fs::copy(client_pub, d.join("authorized_keys")).unwrap();
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port {}\nListenAddress {}\nHostKey {}/host\nAuthorizedKeysFile {}/authorized_keys\nPidFile {}/sshd.pid\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                 StrictModes no\nAllowTcpForwarding remote\nGatewayPorts no\nPermitTTY no\nX11Forwarding no\n",
                addr.port(),
                addr.ip(),
                d.display(),
                d.display(),
                d.display()
            ),
        )
        .unwrap();
        let child = std::process::Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(d.join("log")).unwrap())
            .spawn()
            .unwrap();
        let s = Sshd { child, _dir: dir };
        wait_until(Duration::from_secs(10), "sshd to listen", || {
            std::net::TcpStream::connect(addr).is_ok()
        });
        s
    }
}

/// Reaching home behind NAT (issue 16): the home namespace accepts no connection from outside
/// (nftables), so the standby cannot reach the origin directly; home dials out with an SSH
/// reverse tunnel, the standby proxies to the tunnel's end, and when the tunnel drops (home
/// unreachable) the copy answers.
#[test]
fn the_standby_reaches_a_home_behind_nat_through_a_reverse_tunnel() {
    need("nft", "nftables");
    need("ssh", "openssh-client");
    let (ns, home) = Netns::linked("us-home", "uth", 237);
    let port = free_port("127.0.0.2");
    let origin = SocketAddr::new(home, port);
    let f = Fixture::start_in(&ns.name, origin);
    // From now on, no way in: the home is behind "NAT".
    for rule in [
        "add table inet nat_like",
        "add chain inet nat_like input { type filter hook input priority 0; policy drop; }",
        "add rule inet nat_like input ct state established,related accept",
        "add rule inet nat_like input iif lo accept",
    ] {
        let out = ns.exec(&["nft", rule]).output().unwrap();
        assert!(
            out.status.success(),
            "nft {rule}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    assert!(
        std::net::TcpStream::connect_timeout(&origin, Duration::from_millis(500)).is_err(),
        "the home namespace must refuse connections from outside"
    );
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("home");
    keygen(&key);
    let sshd_addr: SocketAddr = format!("10.237.0.1:{}", free_port("127.0.0.1"))
        .parse()
        .unwrap();
    let _sshd = Sshd::start(sshd_addr, &keys.path().join("home.pub"));
    // The tunnel's end on the standby: 127.0.0.1:T, forwarded to the origin at home.
    let tunnel_port = free_port("127.0.0.1");
    let tunnel: SocketAddr = format!("127.0.0.1:{tunnel_port}").parse().unwrap();
    let mut ssh = Child_(
        ns.exec(&[
            "ssh",
            "-N",
            "-i",
            &key.display().to_string(),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ExitOnForwardFailure=yes",
            "-o",
            "ServerAliveInterval=5",
            "-p",
            &sshd_addr.port().to_string(),
            "-R",
            &format!("127.0.0.1:{tunnel_port}:{origin}"),
            &format!("root@{}", sshd_addr.ip()),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap(),
    );
    wait_until(Duration::from_secs(10), "the reverse tunnel", || {
        std::net::TcpStream::connect(tunnel).is_ok()
    });
    let standby: SocketAddr = format!("127.0.0.2:{tunnel_port}").parse().unwrap();
    let cfg = f
        .config("")
        .replace(
            &format!("primary = \"{origin}\"\n"),
            &format!("primary = \"{tunnel}\"\n"),
        )
        .replace(
            &format!("port = {port}\n"),
            &format!("port = {tunnel_port}\n"),
        )
        .replace(
            "standby = \"127.0.0.2\"\n",
            "standby = \"127.0.0.2\"\nmode = \"proxy\"\n",
        )
        .replace(
            "[[sites]]",
            &format!("[standby]\nlisten = [\"{standby}\"]\n[[sites]]"),
        )
        .replace("interval = \"1s\"", FAST_PROBES);
    assert!(cfg.contains(&format!("primary = \"{tunnel}\"")), "{cfg}");
    let d = Daemon::start(&cfg);
    wait_until(
        Duration::from_secs(30),
        "the first crawl, through the tunnel",
        || d.report().sites[0].standby_ready,
    );
    let c = Visitor::new(standby);
    let r = c.get("/about");
    assert_eq!((r.status, r.from.as_str()), (200, "origin"), "{}", r.body);
    // The home's link gone (the tunnel drops): the copy answers.
    let _ = ssh.0.kill();
    let _ = ssh.0.wait();
    let r = c.get("/about");
    assert_eq!((r.status, r.from.as_str()), (200, "snapshot"));
}

/// HTTPS on both legs and HTTP/2 from the visitor: the standby serves the site's name with its
/// own certificate files, passes the request to an HTTPS origin whose certificate it checks
/// against the name (a private CA, as the probes do), and answers from the copy once the
/// origin is gone.
#[test]
fn https_and_http2_visitors_go_through_and_fall_back() {
    let ca = common::ca::Ca::new();
    let (cert, key) = ca.issue("www.example.test");
    let mut origin = Nginx::start_tls("127.0.0.1", "origin", &cert, &key);
    let port = origin.addr.port();
    let standby: SocketAddr = format!("127.0.0.2:{port}").parse().unwrap();
    let files = tempfile::tempdir().unwrap();
    let (scert, skey) = ca.issue("www.example.test");
    for (name, text) in [("ca.pem", ca.pem()), ("s.pem", scert), ("s.key", skey)] {
        std::fs::write(files.path().join(name), text).unwrap();
    }
    let f = |n: &str| files.path().join(n).display().to_string();
    let cfg = format!(
        "{}[standby]\nlisten = [\"127.0.0.2:0\"]\nhttps_listen = [\"{standby}\"]\n[[sites]]\nname = \"shop\"\ndomain = \"www.example.test\"\nprimary = \"{}\"\nstandby = \"127.0.0.2\"\nmode = \"proxy\"\n\
         [sites.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n[sites.probe]\nscheme = \"https\"\nport = {port}\nca_file = \"{}\"\n{FAST_PROBES}\n",
        preamble(&["example.test"]),
        origin.addr,
        f("s.pem"),
        f("s.key"),
        f("ca.pem")
    );
    let d = Daemon::start(&cfg);
    wait_until(
        Duration::from_secs(30),
        "the copy and the certificate",
        || d.report().sites[0].standby_ready,
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for c in understudy::tls::parse_ca_pem(ca.pem().as_bytes()).unwrap() {
        roots.add(c).unwrap();
    }
    let mut tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let client = reqwest::Client::builder()
        .no_proxy()
        .tls_backend_preconfigured(tls)
        .resolve("www.example.test", standby)
        .build()
        .unwrap();
    let rt = common::rt();
    let get = || {
        rt.block_on(async {
            let r = client
                .get(format!("https://www.example.test:{port}/"))
                .send()
                .await
                .unwrap();
            (
                r.version(),
                r.status().as_u16(),
                served_from(r.headers()),
                r.text().await.unwrap(),
            )
        })
    };
    let (version, status, from, body) = get();
    assert_eq!(version, reqwest::Version::HTTP_2);
    assert_eq!((status, from.as_str()), (200, "origin"));
    assert!(body.contains("origin"), "{body}");
    origin.kill();
    let (version, status, from, again) = get();
    assert_eq!(
        (version, status, from.as_str()),
        (reqwest::Version::HTTP_2, 200, "snapshot")
    );
    assert_eq!(again, body);
}
