//! Dynamic DNS reaction time, driven by `bench/ddns-reaction` inside a network namespace that
//! script creates (not a test).
//!
//! Time from the line's address changing to the built-in DNS server answering the new one,
//! p50/p95 over N changes, for (a) an HTTP echo source polled every 5 s and (b) the interface
//! source, which reacts to netlink events. Side by side, the reference: ddclient 3.10 with the
//! same echo service, updating a real BIND over RFC 2136 (`nsupdate`), run one-shot every 5 s
//! the way a cron job would run it (its daemon mode cannot poll faster than every 60 s). The release binary runs as a child process; the
//! echo service is a small HTTP responder in this process; the interface is a veth in the
//! namespace.

// A benchmark uses a few of the test helpers.
#[allow(dead_code)]
#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use understudy::dns::client;
use understudy::dns::zone::fqdn;

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("iproute2");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An echo service answering whatever `answer` holds.
async fn echo(answer: Arc<Mutex<String>>) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            let answer = answer.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req| {
                    let body = answer.lock().unwrap().clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::from(body),
                        )))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

fn start_daemon(bin: &str, dir: &std::path::Path, source: &str) -> (Kill, SocketAddr) {
    let data = dir.join("data");
    let _ = std::fs::remove_dir_all(&data);
    std::fs::write(
        dir.join("c.toml"),
        format!(
            "data_dir = \"{}\"\n[dns]\nlisten = [\"127.0.0.1:0\"]\n[[dns.zones]]\nname = \"home.test\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
             [ip]\ninterval = \"5s\"\nquorum = 1\nallow = [\"192.0.2.0/24\"]\n{source}\n[[ddns]]\nname = \"home.home.test\"\nfamilies = [\"ipv4\"]\n",
            data.display()
        ),
    )
    .unwrap();
    let child = Kill(
        Command::new(bin)
            .args(["run", "-c"])
            .arg(dir.join("c.toml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    loop {
        if let Some(i) = understudy::app::RuntimeInfo::read(&data) {
            return (child, i.dns[0]);
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "understudy did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn answer(server: SocketAddr) -> Option<IpAddr> {
    client::query(
        server,
        &fqdn("home.home.test"),
        hickory_proto::rr::RecordType::A,
        Duration::from_millis(300),
    )
    .await
    .ok()?
    .addrs
    .first()
    .copied()
}

async fn wait_for(server: SocketAddr, want: IpAddr, limit: Duration) -> Option<f64> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if answer(server).await == Some(want) {
            return Some(t0.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

/// Runs ddclient one-shot every 5 s (as cron would) against BIND and times N changes.
fn ddclient_reference(
    current: Arc<Mutex<String>>,
    echo_addr: SocketAddr,
    dir: &std::path::Path,
    n: usize,
    mut jitter: impl FnMut() -> Duration,
) -> Vec<f64> {
    let bind = common::authdns::AuthServer::start(common::authdns::Kind::Bind, "hmac-sha256");
    *current.lock().unwrap() = "192.0.2.1".to_string();
    let conf = dir.join("ddclient.conf");
    std::fs::write(
        &conf,
        format!(
            "protocol=nsupdate\nusev4=webv4\nwebv4=http://{echo_addr}/\nserver={}\nlogin=/usr/bin/nsupdate\npassword={}\nzone=example.test\nttl=60\ncache={}\nhome.example.test\n",
            bind.addr,
            bind.key_file.display(),
            dir.join("ddclient.cache").display()
        ),
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (s2, conf2) = (stop.clone(), conf.clone());
    let runner = std::thread::spawn(move || {
        while !s2.load(Ordering::SeqCst) {
            let _ = Command::new("ddclient")
                .args(["-foreground", "-daemon", "0", "-force", "-quiet", "-file"])
                .arg(&conf2)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            std::thread::sleep(Duration::from_secs(5));
        }
    });
    let answer = || bind.rdata("home.example.test", hickory_proto::rr::RecordType::A);
    let t0 = Instant::now();
    while answer() != ["192.0.2.1"] {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "ddclient never published: check {}",
            conf.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut out = vec![];
    for i in 0..n {
        std::thread::sleep(jitter());
        let new = format!("192.0.2.{}", 10 + i % 200);
        *current.lock().unwrap() = new.clone();
        let t0 = Instant::now();
        loop {
            if answer() == [new.clone()] {
                out.push(t0.elapsed().as_secs_f64());
                break;
            }
            if t0.elapsed() > Duration::from_secs(20) {
                eprintln!("ddclient: change {i} not seen within 20 s");
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        eprintln!(
            "ddclient #{:>2}: {:.3} s",
            i + 1,
            out.last().copied().unwrap_or(f64::NAN)
        );
    }
    stop.store(true, Ordering::SeqCst);
    let _ = runner.join();
    out
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let bin = args
        .next()
        .unwrap_or_else(|| "target/release/understudy".into());
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let dir = std::env::temp_dir().join(format!("understudy-ddns-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut jitter = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        Duration::from_millis(seed % 5_000)
    };

    // (a) HTTP echo polled every 5 s.
    let current = Arc::new(Mutex::new("192.0.2.1".to_string()));
    let echo_addr = echo(current.clone()).await;
    let (daemon, dns) = start_daemon(
        &bin,
        &dir,
        &format!("[[ip.sources]]\nname = \"echo\"\ntype = \"http\"\nfamily = \"ipv4\"\nurl = \"http://{echo_addr}/\""),
    );
    wait_for(dns, "192.0.2.1".parse().unwrap(), Duration::from_secs(20))
        .await
        .expect("first address");
    let mut polled = vec![];
    for i in 0..n {
        tokio::time::sleep(jitter()).await; // a random phase against the poll
        let new: IpAddr = format!("192.0.2.{}", 10 + i % 200).parse().unwrap();
        *current.lock().unwrap() = new.to_string();
        match wait_for(dns, new, Duration::from_secs(20)).await {
            Some(t) => polled.push(t),
            None => eprintln!("polling: change {i} not seen within 20 s"),
        }
        eprintln!(
            "polling #{:>2}: {:.3} s",
            i + 1,
            polled.last().copied().unwrap_or(f64::NAN)
        );
    }
    drop(daemon);

    // (b) the interface source with netlink events (poll still 5 s, so it cannot explain <5 s).
    ip(&[
        "link", "add", "wan0", "type", "veth", "peer", "name", "wan1",
    ]);
    ip(&["link", "set", "wan0", "up"]);
    ip(&["link", "set", "wan1", "up"]);
    ip(&["addr", "add", "192.0.2.1/24", "dev", "wan0"]);
    let (daemon, dns) =
        start_daemon(&bin, &dir, "[[ip.sources]]\nname = \"wan\"\ntype = \"interface\"\ninterface = \"wan0\"\nfamily = \"ipv4\"");
    wait_for(dns, "192.0.2.1".parse().unwrap(), Duration::from_secs(20))
        .await
        .expect("first address");
    let mut events = vec![];
    let mut old = "192.0.2.1".to_string();
    for i in 0..n {
        tokio::time::sleep(jitter() / 10).await;
        let new = format!("192.0.2.{}", 10 + i % 200);
        // Delete first: a second address in the same subnet would be "secondary" and vanish
        // with the primary. The clock starts at the delete.
        let t0 = Instant::now();
        ip(&["addr", "del", &format!("{old}/24"), "dev", "wan0"]);
        ip(&["addr", "add", &format!("{new}/24"), "dev", "wan0"]);
        let new_ip: IpAddr = new.parse().unwrap();
        match wait_for(dns, new_ip, Duration::from_secs(20)).await {
            Some(_) => events.push(t0.elapsed().as_secs_f64()),
            None => eprintln!("events: change {i} not seen within 20 s"),
        }
        eprintln!(
            "events  #{:>2}: {:.3} s",
            i + 1,
            events.last().copied().unwrap_or(f64::NAN)
        );
        old = new;
    }
    drop(daemon);
    let _ = Command::new("ip").args(["link", "del", "wan0"]).status();

    // (c) the reference: ddclient, one-shot every 5 s, same echo service, into BIND. It runs on
    // a plain thread: the BIND helper blocks, which an async context must not do.
    let have_ddclient = std::path::Path::new("/usr/bin/ddclient").exists()
        || std::path::Path::new("/usr/sbin/ddclient").exists();
    let mut reference: Vec<f64> = if have_ddclient {
        let (current, dir) = (current.clone(), dir.clone());
        std::thread::spawn(move || ddclient_reference(current, echo_addr, &dir, n, jitter))
            .join()
            .expect("ddclient measurement")
    } else {
        vec![]
    };
    let _ = std::fs::remove_dir_all(&dir);

    println!();
    println!(
        "dynamic DNS reaction: address change -> built-in DNS server answers it ({n} changes each)"
    );
    println!("{:<34} {:>9} {:>9} {:>9}", "source", "p50", "p95", "max");
    for (label, v) in [
        ("HTTP echo, polled every 5 s", &mut polled),
        ("interface, netlink events", &mut events),
        ("ddclient, every 5 s (reference)", &mut reference),
    ] {
        if v.is_empty() {
            println!("{label:<34} (no change seen)");
            continue;
        }
        let max = v.iter().cloned().fold(0.0, f64::max);
        println!(
            "{:<34} {:>8.3}s {:>8.3}s {:>8.3}s",
            label,
            pct(v, 50.0),
            pct(v, 95.0),
            max
        );
    }
    if !reference.is_empty() && !polled.is_empty() && !events.is_empty() {
        println!(
            "ratio p95 understudy/ddclient: polling {:.2}, events {:.3}",
            pct(&mut polled, 95.0) / pct(&mut reference, 95.0),
            pct(&mut events, 95.0) / pct(&mut reference, 95.0)
        );
    }
    if !have_ddclient {
        println!("ddclient is not installed (apt-get install ddclient): the reference was not run");
    }
    if !events.is_empty() {
        println!(
            "target: event source p95 < 1 s -> {}",
            if pct(&mut events, 95.0) < 1.0 {
                "met"
            } else {
                "NOT met"
            }
        );
    }
}
