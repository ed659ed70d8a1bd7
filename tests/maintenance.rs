//! `understudy maintenance SITE --for D -- COMMAND` (issue 14): drains, waits for the DNS and
//! the TTL, runs the command while visitors are on the standby, raises no down alert while the
//! primary is off, and releases once the primary is back.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{cmd, need, one_site, Daemon, Nginx};

fn events(d: &Daemon) -> Vec<serde_json::Value> {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "5"])
        .arg(format!(
            "http://{}/api/v1/events?site=shop&limit=50",
            d.info.api
        ))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut list = v["events"].as_array().unwrap().clone();
    list.reverse();
    list
}

#[test]
fn maintenance_drains_runs_the_command_on_the_standby_and_releases() {
    need("curl", "curl");
    need("dig", "bind9-dnsutils");
    let mut primary = Nginx::start("127.0.0.1", "primary");
    let standby = Nginx::start("127.0.0.2", "standby");
    let d = Daemon::start(&one_site(primary.addr, standby.addr, "").replace("ttl = 30", "ttl = 1"));
    d.wait_standby_ready();
    let before = events(&d).len();
    let work = tempfile::tempdir().unwrap();
    let w = work.path().display();
    let dns = d.dns();
    // The "reboot script": what visitors' DNS says while it runs, then it waits for the test.
    let script = format!(
        "dig +short @{} -p {} www.example.test > {w}/during; echo \"$UNDERSTUDY_SITE\" > {w}/site; \
         touch {w}/started; while [ ! -f {w}/done ]; do sleep 0.1; done; exit 0",
        dns.ip(),
        dns.port()
    );
    let out = std::fs::File::create(work.path().join("out")).unwrap();
    let mut child = cmd()
        .arg("-c")
        .arg(d.config_path())
        .args([
            "maintenance",
            "shop",
            "--for",
            "60s",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let output = || std::fs::read_to_string(work.path().join("out")).unwrap_or_default();
    let start = std::time::Instant::now();
    while !work.path().join("started").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the command did not run:\n{}",
            output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let during = std::fs::read_to_string(work.path().join("during")).unwrap();
    assert_eq!(
        during.trim(),
        "127.0.0.2",
        "visitors are on the standby while it runs"
    );
    assert_eq!(
        std::fs::read_to_string(work.path().join("site"))
            .unwrap()
            .trim(),
        "shop"
    );
    assert!(
        output().contains("waiting 1s (the records' TTL)"),
        "{}",
        output()
    );

    // The primary goes away for its reboot: no failover, no alert, still drained.
    primary.kill();
    std::thread::sleep(Duration::from_millis(2_000));
    assert_eq!(d.phase(), "drained");
    let kinds: Vec<String> = events(&d)[before..]
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        ["drained"],
        "nothing but the drain while the primary is off"
    );
    assert!(
        !d.log().contains("ALERT"),
        "no down alert for a site in maintenance:\n{}",
        d.log()
    );

    // Back, and the command ends: released once the primary passes its probes.
    primary.restart();
    std::fs::write(work.path().join("done"), "").unwrap();
    let status = wait_child(&mut child, Duration::from_secs(30));
    assert_eq!(status, Some(0), "{}", output());
    assert!(output().contains("released shop: healthy"), "{}", output());
    assert_eq!(
        d.answer("www.example.test"),
        ["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
    );
    let evs = events(&d)[before..].to_vec();
    let kinds: Vec<&str> = evs.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["drained", "released"], "{evs:#?}");
    let drained = evs[0]["reason"].as_str().unwrap();
    assert!(drained.contains("maintenance until"), "{drained}");
    assert!(
        drained.contains("sh -c"),
        "the reason says what ran: {drained}"
    );
    let released = evs[1]["reason"].as_str().unwrap();
    assert!(released.contains("maintenance done"), "{released}");
}

#[test]
fn maintenance_runs_nothing_when_the_standby_is_not_ready() {
    let primary = Nginx::start("127.0.0.1", "primary");
    let d = Daemon::start(&one_site(primary.addr, "127.0.0.2:1".parse().unwrap(), ""));
    // Let the standby's probes fail a few times.
    std::thread::sleep(Duration::from_millis(800));
    let work = tempfile::tempdir().unwrap();
    let marker = work.path().join("ran");
    let out = cmd()
        .arg("-c")
        .arg(d.config_path())
        .args(["maintenance", "shop", "--for", "10s", "--", "touch"])
        .arg(&marker)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("maintenance refused") && err.contains("nothing was run"),
        "{err}"
    );
    assert!(!marker.exists());
    assert_eq!(d.phase(), "healthy");
}

fn wait_child(child: &mut std::process::Child, limit: Duration) -> Option<i32> {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// A scheduled window: drained `drain_before` its start with the window's reason, held
/// through it, released at its end.
#[test]
fn a_scheduled_window_drains_before_and_releases_after() {
    need("curl", "curl");
    let primary = Nginx::start("127.0.0.1", "primary");
    let standby = Nginx::start("127.0.0.2", "standby");
    let soon = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(4);
    let at = soon
        .to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string();
    // The window opens at the whole second `at` names.
    let start = at
        .parse::<jiff::civil::DateTime>()
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp();
    let window = format!(
        "[[sites.maintenance]]\nname = \"reboot\"\nat = \"{at}\"\nduration = \"3s\"\ndrain_before = \"1s\"\n"
    );
    let d = Daemon::start(&format!(
        "{}{window}",
        one_site(primary.addr, standby.addr, "")
    ));
    d.wait_standby_ready();
    let before = events(&d).len();
    assert_eq!(d.phase(), "healthy", "not yet");
    let drained = crate::common::wait_until(Duration::from_secs(10), "the window's drain", || {
        d.phase() == "drained"
    });
    let drained_at = jiff::Timestamp::now();
    assert!(
        drained_at < start,
        "drained before the window opens ({drained_at} vs {start}, after {drained:?})"
    );
    assert_eq!(
        d.answer("www.example.test"),
        ["127.0.0.2".parse::<std::net::IpAddr>().unwrap()]
    );
    crate::common::wait_until(Duration::from_secs(10), "the window's release", || {
        d.phase() == "healthy"
    });
    assert!(jiff::Timestamp::now() >= start + jiff::SignedDuration::from_secs(3));
    let evs = events(&d)[before..].to_vec();
    let kinds: Vec<&str> = evs.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["drained", "released"], "{evs:#?}");
    assert!(
        evs[0]["reason"]
            .as_str()
            .unwrap()
            .contains("maintenance window `reboot` from"),
        "{evs:#?}"
    );
    assert!(
        evs[1]["reason"]
            .as_str()
            .unwrap()
            .contains("maintenance window `reboot` ended"),
        "{evs:#?}"
    );
}
