//! Secondaries benchmark, driven by `bench/dns-secondaries` (not a test).
//!
//! The release daemon serves `example.test` as a hidden primary of three real secondaries,
//! BIND, Knot and PowerDNS, each with its own TSIG key. N decisions (drain, release, drain, ...
//! of the one site, each a real decision of the controller) move `www.example.test` between
//! the primary and the standby. For each change it measures, per secondary, the time from the
//! built-in server answering the new address to that secondary answering it (every secondary
//! is asked every 2 ms, each from its own thread), and reads the daemon's own figure for the
//! NOTIFY send latency (publication → NOTIFY on the wire, `status`'s `notify_after_ms`).
//!
//! The reference is the same three secondaries behind BIND 9 and then Knot as the hidden
//! primary (default NOTIFY settings, one TSIG key for all three), each change made with
//! `nsupdate` and timed the same way: from the primary answering the new address to each
//! secondary answering it. Without NOTIFY at all a secondary would see a change at its next
//! SOA refresh (the zone's SOA says 3,600 s).

#[allow(dead_code)]
#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::time::{Duration, Instant};

use common::authdns::{AuthServer, Kind};
use common::secondary::{Secondary, SecondaryKind};
use common::*;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

const KINDS: [(SecondaryKind, &str); 3] = [
    (SecondaryKind::Bind, "bind-xfr"),
    (SecondaryKind::Knot, "knot-xfr"),
    (SecondaryKind::Pdns, "pdns-xfr"),
];

/// Per secondary, the ms from `since` until it answers `want` for www (NaN after 30 s).
fn seen_after(secs: &[Secondary], want: &str, since: Instant) -> Vec<f64> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = secs
            .iter()
            .map(|s| {
                scope.spawn(move || loop {
                    if s.a("www.example.test") == [want] {
                        return since.elapsed().as_secs_f64() * 1e3;
                    }
                    if since.elapsed() > Duration::from_secs(30) {
                        return f64::NAN;
                    }
                    std::thread::sleep(Duration::from_millis(2));
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// One table row per secondary; returns the worst p95.
fn rows(primary: &str, secs: &[Secondary], seen: &mut [Vec<f64>]) -> f64 {
    let mut worst = 0.0f64;
    for (s, v) in secs.iter().zip(seen.iter_mut()) {
        let missed = v.iter().filter(|x| x.is_nan()).count();
        let mut ok: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
        let (p50, p95, max) = (pct(&mut ok, 0.5), pct(&mut ok, 0.95), pct(&mut ok, 1.0));
        worst = worst.max(p95);
        println!(
            "{:<34} {p50:>10.1} {p95:>10.1} {max:>10.1}{}",
            format!("{primary} → {:?}", s.kind),
            if missed > 0 {
                format!("  ({missed} not seen in 30 s)")
            } else {
                String::new()
            }
        );
    }
    worst
}

/// BIND or Knot as the hidden primary of three fresh secondaries, `n` changes by `nsupdate`.
fn reference(kind: Kind, n: usize) -> Vec<Vec<f64>> {
    let prepared: Vec<Secondary> = KINDS
        .iter()
        .map(|(k, name)| Secondary::prepare(*k, name))
        .collect();
    let addrs: Vec<_> = prepared.iter().map(|s| s.addr).collect();
    let primary = AuthServer::start_notifying(kind, "hmac-sha256", &addrs);
    let mut secs: Vec<Secondary> = prepared
        .into_iter()
        .map(|s| s.with_key("understudy", &primary.key_secret))
        .collect();
    for s in secs.iter_mut() {
        s.start(primary.addr);
    }
    for s in &secs {
        wait_until(
            Duration::from_secs(30),
            "a secondary to take the zone",
            || !s.axfr().is_empty(),
        );
    }
    let mut seen: Vec<Vec<f64>> = vec![vec![]; secs.len()];
    for i in 0..n {
        let want = format!("192.0.2.{}", 1 + i % 2);
        primary.update(&format!(
            "update delete www.example.test A\nupdate add www.example.test 30 A {want}\n"
        ));
        while primary.rdata("www.example.test", hickory_proto::rr::RecordType::A) != [want.clone()]
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        let since = Instant::now();
        for (j, ms) in seen_after(&secs, &want, since).into_iter().enumerate() {
            seen[j].push(ms);
        }
    }
    seen
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let origin = Nginx::start("127.0.0.1", "primary");
    let standby = Nginx::start("127.0.0.2", "standby");
    let mut secs: Vec<Secondary> = KINDS
        .iter()
        .map(|(k, name)| Secondary::prepare(*k, name))
        .collect();
    let port = free_port("127.0.0.1");
    let mut config = one_site(origin.addr, standby.addr, "").replace(
        "listen = [\"127.0.0.1:0\"]\nttl = 30",
        &format!("listen = [\"127.0.0.1:{port}\"]\nttl = 30"),
    );
    for s in &secs {
        config.push_str(&format!(
            "\n[[dns.secondaries]]\nname = \"{:?}\"\naddress = \"{}\"\ntsig_key_file = \"{}\"\n",
            s.kind,
            s.addr,
            s.key_file.display()
        ));
    }
    let d = Daemon::start(&config);
    d.wait_standby_ready();
    for s in secs.iter_mut() {
        s.start(d.dns());
    }
    for s in &secs {
        wait_until(
            Duration::from_secs(30),
            "a secondary to take the zone",
            || s.a("www.example.test") == ["127.0.0.1"],
        );
    }
    println!("secondaries: BIND 9, Knot, PowerDNS (each its own TSIG key); {n} changes\n");
    let mut seen: Vec<Vec<f64>> = vec![vec![]; secs.len()];
    let mut notify: Vec<f64> = vec![];
    for i in 0..n {
        let (cmd, want) = match i % 2 {
            0 => ("drain", "127.0.0.2"),
            _ => ("release", "127.0.0.1"),
        };
        let (code, _, err) = d.cli(&[cmd, "shop"]);
        assert_eq!(code, 0, "{cmd}: {err}");
        // Asked every 1 ms, as the references' primaries are.
        let want_ip: std::net::IpAddr = want.parse().unwrap();
        let asked = Instant::now();
        while d.answer("www.example.test") != [want_ip] {
            assert!(
                asked.elapsed() < Duration::from_secs(5),
                "{cmd} did not move the answer"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let decided = Instant::now();
        for (j, ms) in seen_after(&secs, want, decided).into_iter().enumerate() {
            seen[j].push(ms);
        }
        // The daemon's own NOTIFY send latency for this change.
        for st in d.report().secondaries {
            if let Some(ms) = st.notify_after_ms {
                notify.push(ms as f64);
            }
        }
    }
    // The references, after understudy's daemon is done with its secondaries.
    let mut bind = reference(Kind::Bind, n);
    let mut knot = reference(Kind::Knot, n);
    println!(
        "{:<34} {:>10} {:>10} {:>10}",
        "primary answers → secondary does", "p50 ms", "p95 ms", "max ms"
    );
    let ours = rows("understudy", &secs, &mut seen);
    let theirs = rows("BIND 9 (nsupdate)", &secs, &mut bind);
    let knots = rows("Knot (nsupdate)", &secs, &mut knot);
    println!(
        "{:<34} {:>10} {:>10} {:>10}",
        "without NOTIFY (SOA refresh)", "≤3600000", "≤3600000", "3600000"
    );
    let (n50, n95) = (pct(&mut notify, 0.5), pct(&mut notify, 0.95));
    println!(
        "\nunderstudy's NOTIFY send latency (publication → sent), {} sends: p50 {n50:.1} ms, p95 {n95:.1} ms (goal ≤ 100 ms)",
        notify.len()
    );
    println!(
        "worst p95 over the secondaries: understudy {ours:.1} ms (goal ≤ 1000 ms), BIND {theirs:.1} ms, Knot {knots:.1} ms; understudy/BIND {:.2}×, understudy/Knot {:.2}×",
        ours / theirs,
        ours / knots
    );
}
