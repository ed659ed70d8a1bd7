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
//! The reference is the same secondaries without NOTIFY: they would see a change at their next
//! SOA refresh (the zone's SOA says 3,600 s), which is what the figures are compared with.

#[allow(dead_code)]
#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::time::{Duration, Instant};

use common::secondary::{Secondary, SecondaryKind};
use common::*;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let origin = Nginx::start("127.0.0.1", "primary");
    let standby = Nginx::start("127.0.0.2", "standby");
    let mut secs = vec![
        Secondary::prepare(SecondaryKind::Bind, "bind-xfr"),
        Secondary::prepare(SecondaryKind::Knot, "knot-xfr"),
        Secondary::prepare(SecondaryKind::Pdns, "pdns-xfr"),
    ];
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
        d.wait_answer("www.example.test", want, Duration::from_secs(5));
        let decided = Instant::now();
        std::thread::scope(|scope| {
            let handles: Vec<_> = secs
                .iter()
                .map(|s| {
                    scope.spawn(move || loop {
                        if s.a("www.example.test") == [want] {
                            return decided.elapsed().as_secs_f64() * 1e3;
                        }
                        if decided.elapsed() > Duration::from_secs(30) {
                            return f64::NAN;
                        }
                        std::thread::sleep(Duration::from_millis(2));
                    })
                })
                .collect();
            for (j, h) in handles.into_iter().enumerate() {
                seen[j].push(h.join().unwrap());
            }
        });
        // The daemon's own NOTIFY send latency for this change.
        for st in d.report().secondaries {
            if let Some(ms) = st.notify_after_ms {
                notify.push(ms as f64);
            }
        }
    }
    println!(
        "{:<28} {:>10} {:>10} {:>10}",
        "decision → answer on", "p50 ms", "p95 ms", "max ms"
    );
    for (s, v) in secs.iter().zip(seen.iter_mut()) {
        let missed = v.iter().filter(|x| x.is_nan()).count();
        let mut ok: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
        let (p50, p95, max) = (pct(&mut ok, 0.5), pct(&mut ok, 0.95), pct(&mut ok, 1.0));
        println!(
            "{:<28} {p50:>10.1} {p95:>10.1} {max:>10.1}{}",
            format!("{:?} (NOTIFY)", s.kind),
            if missed > 0 {
                format!("  ({missed} not seen in 30 s)")
            } else {
                String::new()
            }
        );
    }
    println!(
        "{:<28} {:>10} {:>10} {:>10}",
        "without NOTIFY (SOA refresh)", "≤3600000", "≤3600000", "3600000"
    );
    let (n50, n95) = (pct(&mut notify, 0.5), pct(&mut notify, 0.95));
    println!(
        "\nNOTIFY send latency (publication → sent), {} sends: p50 {n50:.1} ms, p95 {n95:.1} ms (goal ≤ 100 ms)",
        notify.len()
    );
    let worst = seen
        .iter_mut()
        .map(|v| {
            let mut ok: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
            pct(&mut ok, 0.95)
        })
        .fold(0.0, f64::max);
    println!(
        "worst p95 over the secondaries: {worst:.1} ms (goal ≤ 1000 ms); ratio to the SOA refresh: {:.6}×",
        worst / 3_600_000.0
    );
}
