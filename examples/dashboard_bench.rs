//! The dashboard at N sites with a year of history (driven by `bench/dashboard`; not a test).
//!
//! Before the daemon starts, every site gets a synthetic year of probe history in the state
//! database, as the daemon would have packed it (`crate::history`: 31 days of minutes, 366
//! days of hours, both servers; probes every 2 s, latency around 20 ms with jitter, rare
//! failures, one outage a month). 1% of the sites point at a primary that refuses, so the
//! overview has trouble to sort first. Then, against the running daemon:
//! - server time (sequential requests on loopback, keep-alive off like a first visit) of the
//!   overview's first page, its last page, a search, a site's page and the live fragment;
//! - first contentful paint of the overview and a site page in headless Chromium (median of
//!   five loads), through chromedriver;
//! - the database's size and the daemon's RSS.
//!
//! Uptime Kuma and Gatus cannot run here (no Node.js service, no Go toolchain); their
//! maintainers' issue threads report the figures printed beside ours.
//!
//! Usage: dashboard_bench --understudy PATH [--sites N]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use understudy::demo::SampleServer;
use understudy::history::{self, Bucket, Tier, DAY};

struct Killer(Child);
impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// xorshift64*: deterministic noise without a dependency.
struct Noise(u64);
impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One slot of a healthy server: `probes` probes, latency around `base` ms, rarely a failure;
/// `down` makes it an outage slot.
fn slot(n: &mut Noise, probes: u32, base: u32, down: bool) -> Bucket {
    let mean = base + n.below(8) as u32;
    let failures = match down {
        true => probes,
        false => u32::from(n.below(2000) == 0),
    };
    Bucket {
        probes,
        failures,
        latency_sum_ms: u64::from(mean) * u64::from(probes),
        latency_max_ms: mean + n.below(40) as u32,
    }
}

/// A year of packed history for one site, both servers.
fn year(site: &str, seed: u64, now: u64) -> Vec<(String, u8, Tier, u64, Vec<u8>)> {
    let mut n = Noise(seed | 1);
    let mut out = vec![];
    let today = now / DAY;
    for side in 0..2u8 {
        let base = if side == 0 { 18 } else { 35 };
        // Minutes: the last 31 whole days; an outage of 20 minutes on one of them.
        let bad_day = today - 1 - n.below(31);
        for day in today - 31..today {
            let start_bad = (n.below(1400)) as usize;
            let slots: Vec<Bucket> = (0..1440)
                .map(|m| {
                    let down =
                        side == 0 && day == bad_day && (start_bad..start_bad + 20).contains(&m);
                    slot(&mut n, 30, base, down)
                })
                .collect();
            out.push((
                site.to_string(),
                side,
                Tier::Minute,
                day,
                history::pack(&slots),
            ));
        }
        // Hours: every block touching the last 366 days.
        let (first, _) = Tier::Hour.locate(now - 366 * DAY);
        let (last, _) = Tier::Hour.locate(now - DAY);
        for block in first..=last {
            let slots: Vec<Bucket> = (0..Tier::Hour.slots())
                .map(|h| {
                    let mut b = slot(&mut n, 1800, base, false);
                    if h % 700 == 3 {
                        b.failures = 600;
                    }
                    b
                })
                .collect();
            out.push((
                site.to_string(),
                side,
                Tier::Hour,
                block,
                history::pack(&slots),
            ));
        }
    }
    out
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// p50, p95 (ms) and the size of `path`'s page over `n` sequential GETs, each on a new
/// connection.
async fn server_time(
    api: std::net::SocketAddr,
    path: &str,
    fragment: bool,
    n: usize,
) -> (f64, f64, usize) {
    let mut ms = vec![];
    let mut size = 0;
    for _ in 0..n {
        let t = Instant::now();
        let stream = tokio::net::TcpStream::connect(api).await.unwrap();
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        let mut req = hyper::Request::get(path).header("host", api.to_string());
        if fragment {
            req = req.header("x-understudy-fragment", "1");
        }
        let resp = send
            .send_request(
                req.body(http_body_util::Empty::<bytes::Bytes>::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        size = body.len();
    }
    (percentile(&mut ms, 0.5), percentile(&mut ms, 0.95), size)
}

/// Median first contentful paint (ms) of `url` over five loads in headless Chromium.
async fn paint(url: &str) -> anyhow::Result<f64> {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let driver = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let _driver = Killer(driver);
    let profile = tempfile::tempdir()?;
    let caps: serde_json::Map<String, serde_json::Value> = serde_json::from_value(
        serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--disable-background-networking", "--disable-component-update",
                         format!("--user-data-dir={}", profile.path().display())]
            }
        }),
    )?;
    let mut client = None;
    for _ in 0..100 {
        if let Ok(c) = fantoccini::ClientBuilder::new(
            hyper_util::client::legacy::connect::HttpConnector::new(),
        )
        .capabilities(caps.clone())
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        {
            client = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let c = client.ok_or_else(|| anyhow::anyhow!("chromedriver did not start"))?;
    let mut ms = vec![];
    for _ in 0..5 {
        c.goto(url).await?;
        // The paint entry is buffered: an observer registered after the paint still gets it.
        let fcp = c
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 new PerformanceObserver((list) => {
                   const e = list.getEntriesByName('first-contentful-paint')[0];
                   if (e) done(e.startTime);
                 }).observe({ type: 'paint', buffered: true });
                 setTimeout(() => done(-1), 5000);",
                vec![],
            )
            .await?;
        ms.push(fcp.as_f64().unwrap_or(-1.0));
    }
    c.close().await?;
    Ok(percentile(&mut ms, 0.5))
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn size_mib(dir: &std::path::Path) -> f64 {
    ["understudy.db", "understudy.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len() as f64)
        .sum::<f64>()
        / 1_048_576.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
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
    let primary = SampleServer::start("127.0.0.1:0".parse()?, "primary").await?;
    let standby = SampleServer::start("127.0.0.2:0".parse()?, "standby").await?;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("u");
    let now = understudy::util::now_millis();

    // A year of history for every site, written the way the daemon packs it.
    let t = Instant::now();
    let store = understudy::store::Store::open(&data)?;
    let names: Vec<String> = (0..sites).map(|i| format!("site{i:05}")).collect();
    for (k, chunk) in names.chunks(100).enumerate() {
        let chunk: Vec<String> = chunk.to_vec();
        let blobs = tokio::task::spawn_blocking(move || {
            let mut all = vec![];
            for (j, name) in chunk.iter().enumerate() {
                all.extend(year(name, (k * 100 + j) as u64 * 7919 + 17, now));
            }
            all
        })
        .await?;
        store.put_history_blobs(&blobs)?;
    }
    drop(store);
    let db_mib = size_mib(&data);
    println!(
        "{sites} sites: a year of synthetic history written in {:.1} s; state database {db_mib:.1} MiB ({:.1} KiB per site)",
        t.elapsed().as_secs_f64(),
        db_mib * 1024.0 / sites as f64
    );

    let mut cfg = format!(
        "data_dir = \"{}\"\n[dns]\nlisten = [\"127.0.0.1:0\"]\n[[dns.zones]]\nname = \"example.test\"\n[api]\nlisten = \"127.0.0.1:0\"\n[watcher]\nreferences = []\n",
        data.display()
    );
    for (i, name) in names.iter().enumerate() {
        let p = if i % 100 == 42 { dead } else { primary.addr };
        cfg.push_str(&format!(
            "[[sites]]\nname = \"{name}\"\ndomain = \"s{i}.example.test\"\nprimary = \"{p}\"\nstandby = \"{}\"\n[sites.probe]\nscheme = \"http\"\ninterval = \"30s\"\nfast_interval = \"1s\"\ntimeout = \"2s\"\nfailures_to_down = 2\n",
            standby.addr
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
        if let Some(i) = understudy::app::RuntimeInfo::read(&data) {
            break i;
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(120),
            "the daemon did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Wait for the dead primaries to be failed over (the trouble the overview sorts first).
    let client = understudy::api::ApiClient::plain(info.api, None);
    loop {
        let Ok((_, body)) =
            understudy::api::call(&client, hyper::Method::GET, "/api/v1/sites").await
        else {
            // A daemon starting 2 × N probers may be slow to answer the first time.
            anyhow::ensure!(
                start.elapsed() < Duration::from_secs(180),
                "the daemon does not answer"
            );
            continue;
        };
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        let moved = v["sites"]
            .as_array()
            .map(|a| a.iter().filter(|s| s["phase"] == "failed-over").count())
            .unwrap_or(0);
        if moved >= sites / 100 {
            break;
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(180),
            "the dead primaries were not failed over"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "daemon up, {} sites failed over, after {:.1} s",
        sites / 100,
        start.elapsed().as_secs_f64()
    );

    let last = sites.div_ceil(100);
    let pages = [
        ("overview, page 1", "/".to_string(), false),
        ("overview, last page", format!("/?page={last}"), false),
        ("overview, search", "/?q=site00042".to_string(), false),
        ("overview, live fragment", "/".to_string(), true),
        (
            "site page (year of history)",
            "/sites/site00042".to_string(),
            false,
        ),
        (
            "site page, live fragment",
            "/sites/site00042".to_string(),
            true,
        ),
    ];
    println!("\nserver time, 100 sequential requests each, new connection each (loopback):");
    for (what, path, fragment) in &pages {
        let (p50, p95, size) = server_time(info.api, path, *fragment, 100).await;
        println!(
            "  {what:30} p50 {p50:7.1} ms   p95 {p95:7.1} ms   {:6} KB",
            size / 1024
        );
    }
    let base = format!("http://{}", info.api);
    let fcp_overview = paint(&format!("{base}/")).await?;
    let fcp_site = paint(&format!("{base}/sites/site00042")).await?;
    println!("\nfirst contentful paint in headless Chromium (median of 5 loads):");
    println!("  overview {fcp_overview:.0} ms, site page {fcp_site:.0} ms");
    println!(
        "\nstate database {:.1} MiB; daemon RSS {:.1} MiB",
        size_mib(&data),
        rss_mib(pid)
    );
    println!("\nreported by others (they cannot run here):");
    println!("  Uptime Kuma: ~45 s per UI action at 700 monitors (louislam/uptime-kuma#7079),");
    println!(
        "               50+ s to load the dashboard at 1,855 monitors (louislam/uptime-kuma#7616)"
    );
    println!("  Gatus:       the dashboard stops working somewhere in the hundreds of endpoints (TwiN/gatus#1557)");
    Ok(())
}
