//! Notifications when the home line fails (driven by `bench/notify`; not a test).
//!
//! N sites (default 1,000) share one primary sample server (127.0.0.1) and one standby
//! (127.0.0.2); three channels (the native webhook, a generic JSON webhook, ntfy) point at
//! one local receiver. With every standby ready, the bench measures the API at N sites (the
//! latency of `GET /api/v1/sites`, `/api/v1/status` and `/metrics`, sequential requests), then stops the
//! primary (connections refused: the home line down) and measures the time until every
//! channel has its failover message, how many messages each channel got (the goal: one
//! summary each, not N), and the daemon's CPU time and memory over the outage. There is no
//! reference tool to run beside it (Uptime Kuma would send one message per monitor).
//!
//! Usage: notify_bench --understudy PATH [--sites N]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use understudy::demo::{Mode, SampleServer};

struct Killer(Child);
impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the receiver got: (path, body, when).
type Got = Arc<Mutex<Vec<(String, String, Instant)>>>;

async fn receiver() -> (SocketAddr, Got) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let got: Got = Arc::default();
    let g = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let g = g.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let g = g.clone();
                        async move {
                            let path = req.uri().path().to_string();
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            g.lock().unwrap().push((
                                path,
                                String::from_utf8_lossy(&body).into_owned(),
                                Instant::now(),
                            ));
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                                Bytes::from_static(b"{}"),
                            )))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, got)
}

/// utime + stime of `pid`, in seconds, and its peak and current RSS in MiB.
fn usage(pid: u32) -> (f64, f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the ")".
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (cpu, kb("VmHWM:"), kb("VmRSS:"))
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// The daemon's `GET /api/v1/status`.
async fn status(api: SocketAddr) -> anyhow::Result<understudy::api::StatusReply> {
    let client = understudy::api::ApiClient::plain(api, None);
    let (_, body) = understudy::api::call(&client, hyper::Method::GET, "/api/v1/status").await?;
    Ok(serde_json::from_slice(&body)?)
}

async fn latency(api: SocketAddr, path: &str, n: usize) -> (f64, f64, usize) {
    let mut ms = Vec::new();
    let mut size = 0;
    for _ in 0..n {
        let t = Instant::now();
        let (status, body) = understudy::api::call(
            &understudy::api::ApiClient::plain(api, None),
            hyper::Method::GET,
            path,
        )
        .await
        .expect("the API answers");
        assert!(status.is_success(), "{path}: {status}");
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        size = body.len();
    }
    (percentile(&mut ms, 0.5), percentile(&mut ms, 0.95), size)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut bin = PathBuf::from("target/release/understudy");
    let mut sites = 1000usize;
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--understudy" => bin = PathBuf::from(v),
            "--sites" => sites = v.parse().expect("a number"),
            other => panic!("unknown argument {other}"),
        }
    }
    let mut primary = SampleServer::start("127.0.0.1:0".parse()?, "primary").await?;
    let standby = SampleServer::start("127.0.0.2:0".parse()?, "standby").await?;
    let (hook, got) = receiver().await;
    let dir = tempfile::tempdir()?;
    let mut cfg = format!(
        "data_dir = \"{}\"\n[dns]\nlisten = [\"127.0.0.1:0\"]\n[[dns.zones]]\nname = \"example.test\"\n[api]\nlisten = \"127.0.0.1:0\"\n[watcher]\nreferences = []\n",
        dir.path().join("u").display()
    );
    for (name, url) in [
        ("webhook", format!("webhook+http://{hook}/webhook")),
        ("generic", format!("generic+http://{hook}/generic")),
        ("ntfy", format!("ntfy://{hook}/alerts?scheme=http")),
    ] {
        cfg.push_str(&format!(
            "[[notify]]\nname = \"{name}\"\nurl = \"{url}\"\nevents = [\"failed-over\"]\n"
        ));
    }
    for i in 0..sites {
        cfg.push_str(&format!(
            "[[sites]]\nname = \"site{i:04}\"\ndomain = \"s{i}.example.test\"\nprimary = \"{}\"\nstandby = \"{}\"\n[sites.probe]\nscheme = \"http\"\ninterval = \"1s\"\ntimeout = \"500ms\"\nfailures_to_down = 3\n",
            primary.addr, standby.addr
        ));
    }
    std::fs::write(dir.path().join("c.toml"), cfg)?;
    let child = Command::new(&bin)
        .args(["run", "-c"])
        .arg(dir.path().join("c.toml"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = child.id();
    let _daemon = Killer(child);
    let start = Instant::now();
    let info = loop {
        if let Some(i) = understudy::app::RuntimeInfo::read(&dir.path().join("u")) {
            break i;
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(60),
            "the daemon did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    loop {
        let st = status(info.api).await?;
        if st.sites.len() == sites && st.sites.iter().all(|s| s.standby_ready) {
            break;
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(120),
            "standbys not ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "{sites} sites, every standby ready after {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let (a50, a95, asize) = latency(info.api, "/api/v1/sites", 100).await;
    println!(
        "GET /api/v1/sites at {sites} sites: p50 {a50:.1} ms, p95 {a95:.1} ms ({} KB)",
        asize / 1024
    );
    let (s50, s95, ssize) = latency(info.api, "/api/v1/status", 100).await;
    let (m50, m95, msize) = latency(info.api, "/metrics", 100).await;
    println!(
        "GET /api/v1/status at {sites} sites: p50 {s50:.1} ms, p95 {s95:.1} ms ({} KB)",
        ssize / 1024
    );
    println!(
        "GET /metrics at {sites} sites: p50 {m50:.1} ms, p95 {m95:.1} ms ({} KB)",
        msize / 1024
    );

    let (cpu0, _, _) = usage(pid);
    let before = got.lock().unwrap().len();
    let t0 = Instant::now();
    primary.set_mode(Mode::Refusing).await?;
    let channels = ["/webhook", "/generic", "/alerts"];
    // Each channel is done when the sites named in its messages cover all N.
    let covered = |path: &str| -> usize {
        got.lock().unwrap()[before..]
            .iter()
            .filter(|(p, ..)| p == path)
            .map(|(_, body, _)| {
                serde_json::from_str::<serde_json::Value>(body)
                    .ok()
                    .and_then(|v| v["sites"].as_array().map(|a| a.len()))
                    .unwrap_or_else(|| {
                        // generic and ntfy carry the count in their title / text.
                        body.split(" sites")
                            .next()
                            .and_then(|n| n.rsplit(['"', ' ']).next())
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(1)
                    })
            })
            .sum()
    };
    let mut done: Vec<Option<f64>> = vec![None; channels.len()];
    let (mut first_moved, mut all_moved) = (None, None);
    let mut polled = Instant::now();
    while done.iter().any(Option::is_none) && t0.elapsed() < Duration::from_secs(120) {
        if all_moved.is_none() && polled.elapsed() > Duration::from_millis(100) {
            polled = Instant::now();
            let st = status(info.api).await?;
            let moved = st
                .sites
                .iter()
                .filter(|s| s.published == "127.0.0.2")
                .count();
            if moved > 0 && first_moved.is_none() {
                first_moved = Some(t0.elapsed().as_secs_f64());
            }
            if moved == sites {
                all_moved = Some(t0.elapsed().as_secs_f64());
            }
        }
        for (i, c) in channels.iter().enumerate() {
            if done[i].is_none() && covered(c) >= sites {
                done[i] = Some(t0.elapsed().as_secs_f64());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "records moved: first site after {:.2} s, all {sites} after {:.2} s",
        first_moved.unwrap_or(f64::NAN),
        all_moved.unwrap_or(f64::NAN)
    );
    // Anything more that would come (a storm) comes now.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (cpu1, peak, rss) = usage(pid);
    let window = t0.elapsed().as_secs_f64();
    for (i, c) in channels.iter().enumerate() {
        let n = got.lock().unwrap()[before..]
            .iter()
            .filter(|(p, ..)| p == c)
            .count();
        match done[i] {
            Some(t) => println!(
                "channel {c}: all {sites} failovers told after {t:.2} s, in {n} message(s)"
            ),
            None => println!(
                "channel {c}: NOT all told within 120 s ({} sites covered, {n} message(s))",
                covered(c)
            ),
        }
    }
    println!(
        "daemon during the outage: {:.2} s CPU over {window:.1} s ({:.0}% of one core), RSS {rss:.1} MiB, peak {peak:.1} MiB",
        cpu1 - cpu0,
        (cpu1 - cpu0) / window * 100.0
    );
    drop(standby);
    Ok(())
}
