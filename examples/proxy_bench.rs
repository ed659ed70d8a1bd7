//! Proxy mode against nginx as the best equivalent, driven by `bench/proxy` (not a test).
//!
//! The origin is nginx serving 50 pages of 10 KB, inside a network namespace of the bench's
//! own (so its packets can be dropped silently with nftables). In front of it, side by side:
//! - understudy's standby in proxy mode (default probes: every 2 s, 200 ms while suspect, 1 s
//!   timeout, down after 3; `connect_timeout` 1 s);
//! - nginx with `upstream { server ORIGIN max_fails=1 fail_timeout=10s; server COPY backup; }`,
//!   `proxy_next_upstream error timeout http_502 http_503 http_504` and
//!   `proxy_connect_timeout 1s`, its backup the same copy served by `understudy serve`.
//!
//! It measures (1) the healthy path: wrk through each and straight to the origin, requests/s
//! and p50/p99; (2) outages under a steady request loop against each (one request at a time,
//! 10 s client timeout): the origin killed (refused), then its packets silently dropped, each
//! for 12 s: failed requests and the longest gap between two good answers; (3) what DNS mode
//! gives on the same refused outage: when a DNS-mode site on the same origin has its records
//! moved, and the TTL resolvers may keep the old answer for.
//!
//! `proxy_bench [SECONDS=5]` (the wrk phase's length). Needs root (a network namespace).

#[allow(dead_code)]
#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::netns::Netns;
use common::*;

const PAGES: usize = 50;
const OUTAGE: Duration = Duration::from_secs(12);

fn site_files(www: &std::path::Path) {
    std::fs::create_dir_all(www).unwrap();
    let mut index = String::from("<!doctype html><title>bench</title>\n");
    for i in 0..PAGES {
        index.push_str(&format!("<a href=\"/p{i}.html\">page {i}</a>\n"));
        let body = format!(
            "<!doctype html><title>page {i}</title><p>{}</p>\n",
            "lorem ipsum ".repeat(850)
        );
        std::fs::write(www.join(format!("p{i}.html")), body).unwrap();
    }
    std::fs::write(www.join("index.html"), index).unwrap();
}

/// One request at a time against `addr` (Host `host`), until stopped: (when, ok).
struct Loop {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Vec<(Instant, bool)>>,
}

impl Loop {
    fn start(addr: SocketAddr, host: &'static str) -> Loop {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let rt = rt();
            let c = reqwest::Client::builder()
                .no_proxy()
                .resolve(host, addr)
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            let mut got = vec![];
            let mut i = 0usize;
            while !s.load(Ordering::Relaxed) {
                let url = format!("http://{host}:{}/p{}.html", addr.port(), i % PAGES);
                i += 1;
                let ok = rt.block_on(async {
                    match c.get(&url).send().await {
                        Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                        Err(_) => false,
                    }
                });
                got.push((Instant::now(), ok));
                std::thread::sleep(Duration::from_millis(10));
            }
            got
        });
        Loop { stop, handle }
    }

    /// Failed requests, and the longest time between two good answers.
    fn finish(self) -> (usize, usize, Duration) {
        self.stop.store(true, Ordering::Relaxed);
        let got = self.handle.join().unwrap();
        let failed = got.iter().filter(|(_, ok)| !ok).count();
        let good: Vec<Instant> = got.iter().filter(|(_, ok)| *ok).map(|(t, _)| *t).collect();
        let gap = good
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or_default();
        (got.len(), failed, gap)
    }
}

/// nginx as the reference proxy: the origin first, the copy as backup.
fn nginx_proxy(listen: SocketAddr, origin: SocketAddr, copy: SocketAddr) -> Nginx {
    Nginx::start_custom_at(
        listen,
        tempfile::tempdir().unwrap(),
        "    location / { proxy_pass http://home; proxy_set_header Host $host; \
         proxy_next_upstream error timeout http_502 http_503 http_504; proxy_connect_timeout 1s; }\n",
        &format!(
            "  upstream home {{ server {origin} max_fails=1 fail_timeout=10s; server {copy} backup; }}\n"
        ),
    )
}

fn main() {
    let secs: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    need("nft", "nftables");
    let (ns, home_ip) = Netns::linked("us-pbench", "upb", 236);
    let port = free_port("127.0.0.2");
    let origin = SocketAddr::new(home_ip, port);
    let standby: SocketAddr = format!("127.0.0.2:{port}").parse().unwrap();
    let copy: SocketAddr = format!("127.0.0.4:{port}").parse().unwrap();
    let reference: SocketAddr = format!("127.0.0.3:{port}").parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    site_files(&dir.path().join("www"));
    let mut home = Nginx::start_custom_in(
        &ns.name,
        origin,
        dir,
        "    location / { root {DIR}/www; index index.html; }\n",
    );
    let cfg = format!(
        "{}[standby]\nlisten = [\"{standby}\"]\n\
         [[sites]]\nname = \"proxied\"\ndomain = \"www.bench.test\"\nprimary = \"{origin}\"\nstandby = \"127.0.0.2\"\nmode = \"proxy\"\n\
         [sites.probe]\nscheme = \"http\"\nport = {port}\nsuccesses_to_up = 2\nhold_down = \"2s\"\n\
         [[sites]]\nname = \"dnsmode\"\ndomain = \"dns.bench.test\"\nprimary = \"{origin}\"\nstandby = \"127.0.0.2\"\n\
         [sites.probe]\nscheme = \"http\"\nport = {port}\nsuccesses_to_up = 2\nhold_down = \"2s\"\n",
        preamble(&["bench.test"])
    );
    let d = Daemon::start(&cfg);
    wait_until(
        Duration::from_secs(60),
        "both copies to be published",
        || d.report().sites.iter().all(|s| s.standby_ready),
    );
    // The reference's backup: the same copy, served by `understudy serve`.
    let config = d.config_path();
    let copy_server = Child(
        cmd()
            .args(["serve", "--listen", &copy.to_string(), "-c"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until(Duration::from_secs(10), "understudy serve", || {
        std::net::TcpStream::connect(copy).is_ok()
    });
    let _ref = nginx_proxy(reference, origin, copy);
    let ttl = 30;

    println!("origin: nginx with {PAGES} pages of 10 KB, in a network namespace; wrk -t1 -c8 for {secs} s (closed loop),");
    println!("then h2load at one fixed rate for all three (half of nginx's closed-loop rate, 8 connections)\n");
    println!(
        "{:<28} {:>11} {:>9} {:>9} {:>13} {:>13}",
        "healthy path", "requests/s", "p50", "p99", "fixed p50 ms", "fixed p99 ms"
    );
    let fronts = [
        ("direct to the origin", origin),
        ("understudy (proxy mode)", standby),
        ("nginx (upstream + backup)", reference),
    ];
    let closed: Vec<WrkFigures> = fronts
        .iter()
        .map(|(_, addr)| {
            wrk(
                &format!("http://{addr}/p1.html"),
                "www.bench.test",
                secs,
                1,
                8,
            )
        })
        .collect();
    let rate = closed[2].rps / 2.0;
    let tmp = tempfile::tempdir().unwrap();
    let mut fixed = vec![];
    for ((name, addr), w) in fronts.iter().zip(&closed) {
        let (_, p50, p99) = fixed_rate(
            &format!("http://{addr}/p1.html"),
            "www.bench.test",
            rate,
            secs,
            8,
            tmp.path(),
        );
        fixed.push((p50, p99));
        println!(
            "{name:<28} {:>11.0} {:>9} {:>9} {p50:>13.2} {p99:>13.2}",
            w.rps, w.p50, w.p99
        );
    }
    println!(
        "understudy / nginx: {:.2}× requests/s; at {rate:.0} requests/s p50 {:.2}×, p99 {:.2}×; p50 over direct +{:.2} ms (goal ≤ +1 ms), p99 goal ≤ nginx's",
        closed[1].rps / closed[2].rps,
        fixed[1].0 / fixed[2].0,
        fixed[1].1 / fixed[2].1,
        fixed[1].0 - fixed[0].0
    );

    println!(
        "\noutages of {} s under a steady request loop against each (one at a time)",
        OUTAGE.as_secs()
    );
    println!(
        "{:<14} {:<26} {:>9} {:>8} {:>16}",
        "outage", "front", "requests", "failed", "longest gap"
    );
    let mut dns_moved = None;
    for kind in ["refused", "silent drop"] {
        let ours = Loop::start(standby, "www.bench.test");
        let theirs = Loop::start(reference, "www.bench.test");
        std::thread::sleep(Duration::from_secs(1));
        let t0 = Instant::now();
        match kind {
            "refused" => home.kill(),
            _ => {
                for rule in [
                    "add table inet us_cut".to_string(),
                    "add chain inet us_cut input { type filter hook input priority 0; }"
                        .to_string(),
                    format!("add rule inet us_cut input tcp dport {port} drop"),
                ] {
                    let ok = ns.exec(&["nft", &rule]).status().unwrap().success();
                    assert!(ok, "nft {rule}");
                }
            }
        }
        while t0.elapsed() < OUTAGE {
            if kind == "refused"
                && dns_moved.is_none()
                && answer(d.dns(), "dns.bench.test") == [standby.ip()]
            {
                dns_moved = Some(t0.elapsed());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        match kind {
            "refused" => home.restart(),
            _ => {
                let ok = ns
                    .exec(&["nft", "delete table inet us_cut"])
                    .status()
                    .unwrap()
                    .success();
                assert!(ok);
            }
        }
        std::thread::sleep(Duration::from_secs(1));
        for (name, l) in [
            ("understudy (proxy mode)", ours),
            ("nginx (upstream + backup)", theirs),
        ] {
            let (total, failed, gap) = l.finish();
            println!(
                "{kind:<14} {name:<26} {total:>9} {failed:>8} {:>14.0}ms",
                gap.as_secs_f64() * 1e3
            );
        }
        // Both back on the origin before the next outage.
        wait_until(
            Duration::from_secs(30),
            "the proxied site back on its origin",
            || {
                d.report()
                    .sites
                    .iter()
                    .all(|s| s.phase == understudy::decide::Phase::Healthy)
            },
        );
    }
    match dns_moved {
        Some(m) => println!(
            "\nDNS mode on the refused outage: records moved to the standby after {:.2} s; a visitor behind a caching resolver may keep the old answer for the TTL ({ttl} s) more: up to {:.1} s of errors",
            m.as_secs_f64(),
            m.as_secs_f64() + f64::from(ttl)
        ),
        None => println!("\nDNS mode: the records did not move within the outage"),
    }
    drop(copy_server);
}

/// A child process killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
