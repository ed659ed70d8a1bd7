//! Standby-server benchmark, driven by `bench/serve` (not a test).
//!
//! nginx (a worker per core, sendfile on) serves a directory with a 10 KB HTML page and a 200 KB
//! image; understudy crawls that
//! nginx and serves the snapshot. wrk (2 threads, 64 connections, keep-alive) loads each in
//! the same run, for both files. Prints requests/s and p99 latency for both and the ratios, and
//! understudy's idle resident memory.

// A benchmark uses a few of the test helpers.
#[allow(dead_code)]
#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

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

fn wrk(url: &str, host: &str, secs: u32) -> (f64, String) {
    let out = Command::new("wrk")
        .args([
            "-t2",
            "-c64",
            &format!("-d{secs}s"),
            "--latency",
            "-H",
            &format!("Host: {host}"),
            url,
        ])
        .output()
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    let p99 = text
        .lines()
        .find(|l| l.trim_start().starts_with("99%"))
        .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string())
        .unwrap_or_default();
    if rps == 0.0 {
        eprintln!("wrk said: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    (rps, p99)
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

    println!(
        "standby server benchmark: wrk -t2 -c64 -d{secs}s, keep-alive, same machine, same run\n"
    );
    println!(
        "{:<10} {:<12} {:>12} {:>10}",
        "server", "file", "requests/s", "p99"
    );
    let mut rows = Vec::new();
    for (name, path) in [("10 KB html", "/"), ("200 KB png", "/img.png")] {
        let n = wrk(
            &format!("http://{nginx_addr}{path}"),
            "www.serve.test",
            secs,
        );
        let u = wrk(
            &format!("http://{listen}{path}"),
            &format!("www.serve.test:{port}"),
            secs,
        );
        println!("{:<10} {:<12} {:>12.0} {:>10}", "nginx", name, n.0, n.1);
        println!(
            "{:<10} {:<12} {:>12.0} {:>10}",
            "understudy", name, u.0, u.1
        );
        rows.push((name, n, u));
    }
    println!("\nratios (understudy / nginx), target >= 1.0 and p99 <= nginx's:");
    for (name, n, u) in rows {
        println!(
            "  {name}: requests/s {:.2}x, p99 {} vs {}",
            u.0 / n.0.max(1.0),
            u.1,
            n.1
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
