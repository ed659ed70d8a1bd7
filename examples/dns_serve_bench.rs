//! Authoritative serving speed, driven by `bench/dns-serve` (not a test).
//!
//! The release daemon serves `example.test`: 1,000 static names, wildcards, a delegation and a
//! managed-style `www`. BIND 9 and Knot serve the very same zone (taken from understudy by a
//! signed AXFR, serial included), each with its default threads, BIND with
//! `minimal-responses yes` so the three send the same bytes. dnsperf (Debian's) asks each of
//! them in turn the same query file (85% names that exist, 5% NODATA, 5% NXDOMAIN, 5% wildcard
//! names) for SECONDS at a bounded offered rate, over UDP on 127.0.0.1, RUNS rounds with the
//! order rotated; it prints each run's queries per second, latency, and each server's CPU time
//! per query, the medians and understudy's ratios.
//!
//! `dns_serve_bench [SECONDS=10] [RUNS=3]`

#[allow(dead_code)]
#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::net::SocketAddr;
use std::process::Command;

use common::authdns::{tsig_keygen, AuthServer, Kind};
use common::secondary::axfr_zone_file;
use common::*;

const NAMES: usize = 1_000;

fn config(key: &std::path::Path) -> String {
    let mut records: Vec<String> = (0..NAMES)
        .map(|i| format!("\"h{i} A 192.0.2.{}\"", i % 250 + 1))
        .collect();
    records.extend(
        [
            "www A 192.0.2.10",
            "www AAAA 2001:db8::10",
            "@ MX 10 mail",
            "mail A 192.0.2.25",
            "*.apps A 192.0.2.30",
            "sub NS ns1.sub",
            "ns1.sub A 192.0.2.53",
            "ns1 A 127.0.0.1",
        ]
        .iter()
        .map(|r| format!("{r:?}")),
    );
    format!(
        "data_dir = \"{{DATA}}\"\n[dns]\nlisten = [\"127.0.0.1:0\"]\n\
         [[dns.zones]]\nname = \"example.test\"\nnameservers = [\"ns1.example.test\"]\nrecords = [{}]\n\
         [[dns.secondaries]]\nname = \"bench\"\naddress = \"127.0.0.1:{}\"\ntsig_key_file = \"{}\"\n\
         [api]\nlisten = \"127.0.0.1:0\"\n",
        records.join(", "),
        free_port("127.0.0.1"),
        key.display()
    )
}

fn query_file(path: &std::path::Path) {
    let mut lines = String::new();
    for i in 0..20_000usize {
        let line = match i % 20 {
            0 => "www.example.test AAAA".to_string(),
            1 => format!("nx{i}.example.test A"),
            2 => "www.example.test TXT".to_string(),
            3 => format!("w{i}.apps.example.test A"),
            _ => format!("h{}.example.test A", (i * 7919) % NAMES),
        };
        lines.push_str(&line);
        lines.push('\n');
    }
    std::fs::write(path, lines).unwrap();
}

struct Figures {
    qps: f64,
    latency_ms: f64,
    lost: f64,
    cpu_us_per_query: f64,
}

fn dnsperf(addr: SocketAddr, pid: u32, queries: &std::path::Path, secs: u32) -> Figures {
    let cpu0 = cpu_ms(pid);
    let out = Command::new("dnsperf")
        .args([
            "-s",
            &addr.ip().to_string(),
            "-p",
            &addr.port().to_string(),
            "-d",
            &queries.display().to_string(),
            "-l",
            &secs.to_string(),
            "-c",
            "4",
            "-T",
            "1",
            "-q",
            "200",
            "-Q",
            "400000",
            "-t",
            "2",
        ])
        .output()
        .expect("dnsperf (apt-get install dnsperf)");
    let cpu = cpu_ms(pid) - cpu0;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let field = |key: &str| -> f64 {
        text.lines()
            .find(|l| l.trim_start().starts_with(key))
            .and_then(|l| l.split(':').nth(1))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    let qps = field("Queries per second");
    let completed = field("Queries completed");
    let sent = field("Queries sent");
    Figures {
        qps,
        latency_ms: field("Average Latency (s)") * 1e3,
        lost: if sent > 0.0 {
            (sent - completed) / sent * 100.0
        } else {
            f64::NAN
        },
        cpu_us_per_query: cpu * 1e3 / completed.max(1.0),
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let secs: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    need("dnsperf", "dnsperf");
    let keys = tempfile::tempdir().unwrap();
    let (key_file, secret) = tsig_keygen(keys.path(), "bench", "hmac-sha256");
    let d = Daemon::start(&config(&key_file));
    let zone = axfr_zone_file(d.dns(), Some(&format!("bench:{secret}")));
    let bind = AuthServer::serving(Kind::Bind, &zone, "minimal-responses yes;");
    let knot = AuthServer::serving(Kind::Knot, &zone, "");
    let queries = keys.path().join("queries.txt");
    query_file(&queries);
    let servers: Vec<(&str, SocketAddr, u32)> = vec![
        ("understudy", d.dns(), d.child.as_ref().unwrap().id()),
        ("BIND 9", bind.addr, bind.pid().unwrap()),
        ("Knot", knot.addr, knot.pid().unwrap()),
    ];
    println!(
        "{NAMES} names; dnsperf -c 4 -q 200 -Q 400000 for {secs} s each, UDP on 127.0.0.1; {runs} runs\n"
    );
    println!(
        "{:<5} {:<12} {:>12} {:>14} {:>10} {:>16}",
        "run", "server", "queries/s", "avg latency", "lost", "CPU per query"
    );
    let mut qps: Vec<Vec<f64>> = vec![vec![]; servers.len()];
    let mut cpu: Vec<Vec<f64>> = vec![vec![]; servers.len()];
    for run in 0..runs {
        for k in 0..servers.len() {
            let i = (run + k) % servers.len();
            let (name, addr, pid) = servers[i];
            let f = dnsperf(addr, pid, &queries, secs);
            println!(
                "{:<5} {:<12} {:>12.0} {:>11.3} ms {:>9.2}% {:>13.2} µs",
                run + 1,
                name,
                f.qps,
                f.latency_ms,
                f.lost,
                f.cpu_us_per_query
            );
            qps[i].push(f.qps);
            cpu[i].push(f.cpu_us_per_query);
        }
    }
    let q: Vec<f64> = qps.iter_mut().map(|v| median(v)).collect();
    let c: Vec<f64> = cpu.iter_mut().map(|v| median(v)).collect();
    println!("\nmedians:");
    for (i, (name, _, _)) in servers.iter().enumerate() {
        println!(
            "  {name:<12} {:>10.0} queries/s  {:>6.2} µs CPU per query",
            q[i], c[i]
        );
    }
    println!(
        "understudy / BIND: {:.2}× queries/s (goal ≥ 1.0×), {:.2}× CPU per query; understudy / Knot: {:.2}× queries/s, {:.2}× CPU per query",
        q[0] / q[1],
        c[0] / c[1],
        q[0] / q[2],
        c[0] / c[2]
    );
}
