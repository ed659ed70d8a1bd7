//! Proxy mode (issue 16): the standby fronts the site. A visitor's request goes through the
//! daemon's standby listener to the real nginx origin; with the origin killed, every GET is
//! answered from the copy at once (the first one included), a POST gets the read-only 503,
//! and once the origin is back and stable the origin answers again. The records never move.

use crate::common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::fixture::Fixture;
use common::netns::Netns;
use common::*;

/// The fixture site in proxy mode, its standby listener on 127.0.0.2 at the origin's port (so
/// the standby probes reach it), probes every 200 ms.
fn proxy_config(f: &Fixture, extra_site: &str) -> (String, SocketAddr) {
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
        .replace(
            "interval = \"1s\"",
            "interval = \"200ms\"\ntimeout = \"300ms\"\nfailures_to_down = 3\nsuccesses_to_up = 2\nhold_down = \"1s\"",
        );
    (cfg, standby)
}

/// A visitor whose resolver says the site is at the standby (as the records do).
struct Visitor {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    port: u16,
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

    fn send(&self, method: reqwest::Method, path: &str, accept: &str) -> Got {
        self.rt.block_on(async {
            let r = self
                .client
                .request(
                    method,
                    format!("http://www.fixture.test:{}{path}", self.port),
                )
                .header("accept", accept)
                .body("x=1")
                .send()
                .await
                .unwrap();
            let from = r
                .headers()
                .get("x-understudy-served-from")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_else(|| "origin".into());
            Got {
                status: r.status().as_u16(),
                from,
                headers: r.headers().clone(),
                body: r.text().await.unwrap_or_default(),
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
    let (cfg, standby) = proxy_config(&f, "");
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
/// visitor loops: no request fails, and the longest wait is about the detection time, not the
/// 30 s a request on a pooled connection would otherwise wait.
#[test]
fn a_silent_drop_mid_traffic_fails_no_request() {
    need("nft", "nftables");
    let ns = Netns::new("us-proxy");
    let n = std::process::id() % 100_000;
    ns.link(
        &format!("usp{n}o"),
        "10.234.0.1/30",
        &format!("usp{n}i"),
        "10.234.0.2/30",
    );
    let port = free_port("127.0.0.2");
    let origin: SocketAddr = format!("10.234.0.2:{port}").parse().unwrap();
    let f = Fixture::start_in(&ns.name, origin);
    let (cfg, standby) = proxy_config(&f, "");
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
    assert!(gap < Duration::from_secs(5), "a request waited {gap:?}");
}
