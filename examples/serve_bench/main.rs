//! Standby-server benchmark, driven by `bench/serve` (not a test).
//!
//! nginx (a worker per core, sendfile on) serves a directory with a 10 KB HTML page and a 200 KB
//! image; understudy crawls that nginx and serves the snapshot. For each file, in each of
//! several runs:
//!
//! 1. wrk (2 threads, 64 connections, keep-alive) loads each server as fast as it answers:
//!    requests/s, and the server's CPU time per request.
//! 2. Both are offered the same fixed rate (half of nginx's), where latency measures the server
//!    rather than how the two cores were shared with the load generator, by two generators:
//!    - h2load `--rps`, whose clients send in step (bursts of dozens within microseconds);
//!      printed as "burst p99";
//!    - [`open_loop`]: each connection's requests arrive as a Poisson process and are timed
//!      from when they were due, the way independent visitors arrive. Its p99 is the target.
//!
//! Each phase is cut into slices with the servers taking turns ([`SLICES`]), so the shared
//! machine's changes of speed, which are larger than the difference measured, fall on both.
//! Prints the ratios of every run (requests/s with its confidence interval over the slice
//! pairs) and understudy's idle resident memory.
//!
//! `serve_bench [SECONDS=10] [RUNS=3]`

// A benchmark uses a few of the test helpers.
#[allow(dead_code)]
#[path = "../../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;
mod open_loop;

use common::cpu_ms;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

/// nginx as it would be deployed: a worker per core, sendfile, access log off.
const NGINX: &str = "daemon off;\nmaster_process on;\nworker_processes auto;\npid {DIR}/nginx.pid;\nerror_log {DIR}/error.log;\n\
events { worker_connections 4096; }\n\
http {\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  keepalive_requests 100000;\n\
  client_body_temp_path {DIR}/body;\n  proxy_temp_path {DIR}/proxy;\n  fastcgi_temp_path {DIR}/fastcgi;\n  uwsgi_temp_path {DIR}/uwsgi;\n  scgi_temp_path {DIR}/scgi;\n\
  types { text/html html; image/png png; }\n\
  server { listen {ADDR}; root {DIR}/www; index index.html; location / { } }\n}\n";

/// Each phase alternates the two servers this many times, a slice of the phase's seconds
/// each, the first to go alternating too: a change in the shared machine's speed during a
/// run then falls on both servers alike instead of on whichever ran at the time. Each pair of
/// slices also gives one requests/s ratio, and their spread says how far a run's ratio can be
/// trusted ([`interval`]).
const SLICES: u32 = 10;

/// Which server goes first in slice `k`: nginx (0) in even slices, understudy (1) in odd.
fn turns(k: u32) -> [usize; 2] {
    if k.is_multiple_of(2) {
        [0, 1]
    } else {
        [1, 0]
    }
}

/// The fixed-rate phase offers this share (percent) of nginx's closed-loop rate.
const FIXED_SHARE: f64 = 50.0;

/// One file's ratios (understudy / nginx) in one run.
struct Ratios {
    file: &'static str,
    rps: f64,
    /// The 95 % confidence interval of `rps`.
    rps_interval: (f64, f64),
    cpu: f64,
    burst_p99: f64,
    open_p99: f64,
}

/// The given percentiles of `times` (sorted here); NaN when there are none.
fn percentiles<const N: usize>(times: &mut [f64], at: [f64; N]) -> [f64; N] {
    times.sort_by(f64::total_cmp);
    at.map(|p| {
        if times.is_empty() {
            f64::NAN
        } else {
            common::percentile(times, p)
        }
    })
}

/// The 95 % confidence interval of the geometric mean of `ratios` (one per pair of slices),
/// by Student's t on their logarithms: on this shared machine the speed moves by several
/// percent between slices, so a run's ratio of 0.98 or 1.02 may be a tie, and the interval
/// says whether it is. NaNs when there are fewer than two.
fn interval(ratios: &[f64]) -> (f64, f64) {
    // Two-sided 95 % quantiles of t for 1..=12 degrees of freedom, then 2.0 (close enough
    // above that for a bench).
    const T95: [f64; 12] = [
        12.71, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
    ];
    let n = ratios.len();
    if n < 2 {
        return (f64::NAN, f64::NAN);
    }
    let logs: Vec<f64> = ratios.iter().map(|r| r.ln()).collect();
    let mean = logs.iter().sum::<f64>() / n as f64;
    let var = logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = T95.get(n - 2).copied().unwrap_or(2.0) * (var / n as f64).sqrt();
    ((mean - half).exp(), (mean + half).exp())
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let secs: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    common::need("wrk", "wrk");
    common::need("h2load", "nghttp2-client");
    let bin = "target/release/understudy";
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    let filler = "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>\n".repeat(160);
    let html = format!("<!doctype html><title>Bench</title><img src=\"/img.png\">\n{filler}");
    std::fs::write(www.join("index.html"), &html.as_bytes()[..10 * 1024]).unwrap();
    std::fs::write(www.join("img.png"), vec![0x5au8; 200 * 1024]).unwrap();
    common::need("nginx", "nginx-light");
    let nginx_addr: std::net::SocketAddr = format!("127.0.0.1:{}", common::free_port("127.0.0.1"))
        .parse()
        .unwrap();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(
        &conf,
        NGINX
            .replace("{DIR}", &dir.path().display().to_string())
            .replace("{ADDR}", &nginx_addr.to_string()),
    )
    .unwrap();
    let mut nginx = Command::new(if std::path::Path::new("/usr/sbin/nginx").exists() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    })
    .arg("-p")
    .arg(dir.path())
    .arg("-e")
    .arg(dir.path().join("error.log"))
    .arg("-c")
    .arg(&conf)
    .spawn()
    .unwrap();
    common::wait_until(Duration::from_secs(10), "nginx", || {
        TcpStream::connect(nginx_addr).is_ok()
    });
    let port = nginx_addr.port();
    let config = format!(
        "data_dir = \"{}\"\n[dns]\nlisten = [\"127.0.0.1:0\"]\n[[dns.zones]]\nname = \"serve.test\"\n[[sites]]\nname = \"bench\"\ndomain = \"www.serve.test\"\nprimary = \"127.0.0.1:{port}\"\nstandby = \"127.0.0.2\"\n[sites.probe]\nscheme = \"http\"\nport = {port}\n[sites.mirror]\nscheduled = false\n",
        dir.path().join("data").display()
    );
    let cfg = dir.path().join("understudy.toml");
    std::fs::write(&cfg, config).unwrap();
    let st = Command::new(bin)
        .args(["mirror", "bench", "-c"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "the crawl of the nginx site failed");
    let listen = format!("127.0.0.1:{}", common::free_port("127.0.0.1"));
    let mut server = Command::new(bin)
        .args(["serve", "--listen", &listen, "-c"])
        .arg(&cfg)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    common::wait_until(Duration::from_secs(10), "understudy serve", || {
        TcpStream::connect(&listen).is_ok()
    });
    std::thread::sleep(Duration::from_millis(300));
    let idle = rss_kib(server.id());

    let slice = (secs / SLICES).max(1);
    let runs: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    println!(
        "standby server benchmark, same machine, same run, {runs} run(s):\n\
         - each phase is {SLICES} slices of {slice}s per server, the servers taking turns\n\
         - wrk -t2 -c64, keep-alive: as many requests as each server answers (closed loop)\n\
         - CPU: the server's user+system time per 1000 of those requests\n\
         - fixed rate: both servers are offered the same {FIXED_SHARE:.0}% of nginx's wrk rate, 64\n\
         \x20 connections, and every request's time is pooled over the slices:\n\
         \x20 burst p99: h2load -t2 --h1 --rps (its clients send in step, in bursts);\n\
         \x20 open p50/p99: Poisson arrivals per connection, timed from when each was due\n"
    );
    let urls = |path: &str| {
        [
            (
                format!("http://{nginx_addr}{path}"),
                "www.serve.test".to_string(),
            ),
            (
                format!("http://{listen}{path}"),
                format!("www.serve.test:{port}"),
            ),
        ]
    };
    let pids = [nginx.id(), server.id()];
    let addrs: [std::net::SocketAddr; 2] = [nginx_addr, listen.parse().expect("an address")];
    let mut summary: Vec<Ratios> = Vec::new();
    for run in 1..=runs {
        println!("run {run} of {runs}");
        println!(
            "{:<10} {:<11} {:>10} {:>10} {:>11} {:>9} {:>9} {:>9}",
            "server",
            "file",
            "wrk req/s",
            "CPU ms/1k",
            "fixed req/s",
            "burst p99",
            "open p50",
            "open p99"
        );
        for (name, path) in [("10 KB html", "/"), ("200 KB png", "/img.png")] {
            let targets = urls(path);
            // Closed loop: requests answered and CPU used, summed over the slices.
            let (mut answered, mut cpu) = ([0.0f64; 2], [0.0f64; 2]);
            let mut pairs = Vec::new();
            for k in 0..SLICES {
                let mut slice_rps = [0.0f64; 2];
                for i in turns(k) {
                    let (url, host) = &targets[i];
                    let cpu0 = cpu_ms(pids[i]);
                    slice_rps[i] = common::wrk(url, host, slice, 2, 64).rps;
                    cpu[i] += cpu_ms(pids[i]) - cpu0;
                    answered[i] += slice_rps[i] * f64::from(slice);
                }
                pairs.push(slice_rps[1] / slice_rps[0].max(1.0));
            }
            let total = f64::from(slice * SLICES);
            let rps = answered.map(|a| a / total);
            let cpu_per_1k = [0, 1].map(|i| cpu[i] / (answered[i] / 1000.0).max(1.0));
            // Fixed rate: every request's time, pooled over the slices.
            let rate = rps[0] * FIXED_SHARE / 100.0;
            let mut burst: [Vec<f64>; 2] = Default::default();
            for k in 0..SLICES {
                for i in turns(k) {
                    let (url, host) = &targets[i];
                    burst[i].extend(common::fixed_rate_times(
                        url,
                        host,
                        rate,
                        slice,
                        64,
                        dir.path(),
                    ));
                }
            }
            let mut open: [Vec<f64>; 2] = Default::default();
            for k in 0..SLICES {
                for i in turns(k) {
                    open[i].extend(open_loop::times(open_loop::Load {
                        addr: addrs[i],
                        host: &targets[i].1,
                        path,
                        rate,
                        secs: slice,
                        conns: 64,
                        threads: 2,
                    }));
                }
            }
            let (mut burst_p99, mut open_p99) = ([f64::NAN; 2], [f64::NAN; 2]);
            for i in 0..2 {
                let [b99] = percentiles(&mut burst[i], [0.99]);
                let [o50, o99] = percentiles(&mut open[i], [0.50, 0.99]);
                (burst_p99[i], open_p99[i]) = (b99, o99);
                println!(
                    "{:<10} {:<11} {:>10.0} {:>10.1} {:>11.0} {:>7.2}ms {:>7.2}ms {:>7.2}ms",
                    ["nginx", "understudy"][i],
                    name,
                    rps[i],
                    cpu_per_1k[i],
                    open[i].len() as f64 / total,
                    b99,
                    o50,
                    o99
                );
            }
            summary.push(Ratios {
                file: name,
                rps: rps[1] / rps[0].max(1.0),
                rps_interval: interval(&pairs),
                cpu: cpu_per_1k[1] / cpu_per_1k[0].max(f64::MIN_POSITIVE),
                burst_p99: burst_p99[1] / burst_p99[0],
                open_p99: open_p99[1] / open_p99[0],
            });
        }
        println!();
    }
    println!(
        "ratios (understudy / nginx) per run; targets: requests/s >= 1.0, open-loop p99 <= 1.0;\n\
         [lo-hi]: 95% confidence interval of the requests/s ratio from its {SLICES} slice pairs \
         (one that holds 1.0 is a tie)"
    );
    for name in ["10 KB html", "200 KB png"] {
        let of = |f: &dyn Fn(&Ratios) -> String| {
            summary
                .iter()
                .filter(|s| s.file == name)
                .map(f)
                .collect::<Vec<_>>()
                .join(" ")
        };
        let x = |v: f64| format!("{v:.2}x");
        println!(
            "  {name}: requests/s {}; CPU per request {}; open-loop p99 {}; burst p99 {}",
            of(&|s| format!(
                "{} [{:.2}-{:.2}]",
                x(s.rps),
                s.rps_interval.0,
                s.rps_interval.1
            )),
            of(&|s| x(s.cpu)),
            of(&|s| x(s.open_p99)),
            of(&|s| x(s.burst_p99))
        );
    }
    println!(
        "understudy idle RSS: {:.1} MB (target <= 20 MB); after load: {:.1} MB",
        idle as f64 / 1024.0,
        rss_kib(server.id()) as f64 / 1024.0
    );
    let _ = server.kill();
    let _ = server.wait();
    // The master stops its workers on SIGQUIT (a SIGKILL would orphan them).
    let _ = Command::new("kill")
        .args(["-QUIT", &nginx.id().to_string()])
        .status();
    let _ = nginx.wait();
}
