//! The whole loop with an external provider: the daemon fails a site over and back with BIND
//! (RFC 2136 + TSIG) holding the zone, and the `dns plan` / `dns apply` / `check-config`
//! commands against it, through the real binary.

use crate::common;

use std::time::Duration;

use common::authdns::{AuthServer, Kind};
use common::*;
use hickory_proto::rr::RecordType;

fn config(
    bind: &AuthServer,
    key_file: &std::path::Path,
    primary: std::net::SocketAddr,
    standby: std::net::SocketAddr,
) -> String {
    format!(
        r#"data_dir = "{{DATA}}"
[dns]
listen = ["127.0.0.1:0"]
ttl = 30
[[providers]]
name = "bind"
type = "rfc2136"
server = "{server}"
tsig_key_file = "{key}"
timeout = "2s"
[[dns.zones]]
name = "example.test"
provider = "bind"
[api]
listen = "127.0.0.1:0"
[[sites]]
name = "shop"
domain = "www.example.test"
primary = "{primary}"
standby = "{standby}"
[sites.probe]
scheme = "http"
interval = "200ms"
timeout = "300ms"
successes_to_up = 2
hold_down = "1s"
"#,
        server = bind.addr,
        key = key_file.display()
    )
}

/// A key file as tsig-keygen writes it, with the right name and algorithm but a wrong secret.
fn wrong_key_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("bad.key");
    std::fs::write(&path, "key \"understudy\" {\n\talgorithm hmac-sha256;\n\tsecret \"d3Jvbmcgd3Jvbmcgd3Jvbmcgd3Jvbmcgd3Jvbmc=\";\n};\n")
        .unwrap();
    path
}

fn wait_bind(bind: &AuthServer, want: &str) -> Duration {
    common::wait_until(
        Duration::from_secs(20),
        &format!("BIND to answer {want}"),
        || bind.rdata("www.example.test", RecordType::A) == [want],
    )
}

#[test]
fn plan_apply_and_failover_through_bind() {
    let bind = AuthServer::start(Kind::Bind, "hmac-sha256");
    let mut primary = Nginx::start("127.0.0.1", "primary");
    let standby = Nginx::start("127.0.0.2", "standby");
    // The CLI commands first, with no daemon running.
    let mut d = Daemon::prepare(&config(&bind, &bind.key_file, primary.addr, standby.addr));
    let s0 = bind.serial().unwrap();

    let (code, _, err) = d.cli(&["check-config"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("provider ok: zone example.test.") && err.contains("TSIG key accepted"),
        "{err}"
    );

    let (code, out, err) = d.cli(&["dns", "plan"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("zone example.test. at rfc2136"), "{out}");
    assert!(
        out.contains("1 to change")
            && out.contains("www.example.test. A (absent)  ->  www.example.test. 30 A 127.0.0.1"),
        "{out}"
    );
    assert_eq!(bind.serial().unwrap(), s0, "plan writes nothing");
    assert!(bind.rdata("www.example.test", RecordType::A).is_empty());

    let (code, out, err) = d.cli(&["dns", "apply"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("applied and confirmed"), "{out}");
    assert_eq!(bind.rdata("www.example.test", RecordType::A), ["127.0.0.1"]);
    let (_, out, _) = d.cli(&["dns", "plan"]);
    assert!(out.contains("0 to change"), "{out}");

    d.restart_after_stop();
    d.wait_standby_ready();
    primary.kill();
    let took = wait_bind(&bind, "127.0.0.2");
    assert!(took < Duration::from_secs(5), "BIND changed after {took:?}");
    primary.restart();
    wait_bind(&bind, "127.0.0.1");
    // Records understudy does not own were never touched.
    assert_eq!(
        bind.rdata("www.example.test", RecordType::TXT),
        ["not managed by understudy"]
    );
    assert_eq!(
        bind.rdata("mail.example.test", RecordType::A),
        ["192.0.2.25"]
    );
}

/// Issue 11, item 7: with a wrong TSIG key the failover is decided but not published, and
/// `status` says so (FAILING, the provider's error, the answer of the zone's own server),
/// instead of asking the built-in listener and claiming the records point at the standby.
#[test]
fn status_tells_the_truth_when_the_provider_refuses() {
    let bind = AuthServer::start(Kind::Bind, "hmac-sha256");
    let mut primary = Nginx::start("127.0.0.1", "primary");
    let standby = Nginx::start("127.0.0.2", "standby");
    let dir = tempfile::tempdir().unwrap();
    let bad_key = wrong_key_file(dir.path());
    let d = Daemon::start(&config(&bind, &bad_key, primary.addr, standby.addr));
    d.wait_standby_ready();
    primary.kill();
    wait_until(Duration::from_secs(10), "failed over", || {
        d.phase() == "failed-over"
    });
    wait_until(Duration::from_secs(10), "the reconciler's report", || {
        d.status()["sites"][0]["dns"][0]["state"] == "failing"
    });
    let (_, out, _) = d.cli(&["status"]);
    assert!(
        out.contains("records:    should point at the standby 127.0.0.2"),
        "{out}"
    );
    assert!(
        out.contains("zone example.test. at rfc2136")
            && out.contains("FAILING since")
            && out.contains("NOTAUTH"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "(asked {}, an authoritative server of the zone)  ← not what understudy wants yet",
            bind.addr
        )),
        "{out}"
    );
    assert!(
        !out.contains("Refused"),
        "asked the built-in listener:\n{out}"
    );
    // The channels hear of it once, not at every retry.
    let failing = d.events_of("dns-unconfirmed");
    assert_eq!(failing.len(), 1, "{failing:#?}");
    let why = failing[0]["reason"].as_str().unwrap();
    assert!(
        why.contains("zone example.test. at rfc2136") && why.contains("NOTAUTH"),
        "{why}"
    );
    assert!(
        bind.rdata("www.example.test", RecordType::A).is_empty(),
        "nothing was written with a wrong key"
    );
    let (code, out, err) = d.cli(&["drain", "shop", "--force"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("should point at the standby") && out.contains("FAILING"),
        "{out}"
    );
}

/// Issue 11, item 7: a managed record changed by hand at the provider (here with `nsupdate`) is
/// noticed and put back within `dns.refresh`, and shown as drift.
#[test]
fn a_manual_edit_at_the_provider_is_repaired_and_reported() {
    need("nsupdate", "bind9-dnsutils");
    let bind = AuthServer::start(Kind::Bind, "hmac-sha256");
    let primary = Nginx::start("127.0.0.1", "primary");
    let standby = Nginx::start("127.0.0.2", "standby");
    let cfg = config(&bind, &bind.key_file, primary.addr, standby.addr)
        .replace("ttl = 30\n", "ttl = 30\nrefresh = \"2s\"\n");
    let d = Daemon::start(&cfg);
    wait_bind(&bind, "127.0.0.1");
    wait_until(Duration::from_secs(10), "confirmed", || {
        d.status()["sites"][0]["dns"][0]["state"] == "in-sync"
    });
    let (_, out, _) = d.cli(&["status"]);
    assert!(
        out.contains("zone example.test. at rfc2136")
            && out.contains("published and confirmed by its servers"),
        "{out}"
    );

    bind.update("update delete www.example.test A\nupdate add www.example.test 30 A 192.0.2.99\n");
    assert_eq!(
        bind.rdata("www.example.test", RecordType::A),
        ["192.0.2.99"]
    );
    let took = wait_bind(&bind, "127.0.0.1");
    assert!(
        took < Duration::from_secs(8),
        "repaired after {took:?}, refresh is 2 s"
    );
    assert!(
        d.log()
            .contains("drift: www.example.test. A was changed outside understudy"),
        "{}",
        d.log()
    );
    let (_, out, _) = d.cli(&["status"]);
    assert!(
        out.contains("drift:      www.example.test. A was changed outside understudy")
            && out.contains("192.0.2.99"),
        "{out}"
    );
    // Foreign records at the same name were left alone.
    assert_eq!(
        bind.rdata("www.example.test", RecordType::TXT),
        ["not managed by understudy"]
    );
}

/// Issue 11, item 11: before understudy writes a provider zone, `dns plan` and `check-config`
/// warn about an unmanaged AAAA at a managed name (it keeps IPv6 visitors on a dead primary)
/// and about a record set it would take over without an ownership marker.
#[test]
fn plan_and_check_config_warn_about_foreign_address_records() {
    need("nsupdate", "bind9-dnsutils");
    let bind = AuthServer::start(Kind::Bind, "hmac-sha256");
    bind.update("update add www.example.test 300 AAAA 2001:db8::5\nupdate add www.example.test 300 A 203.0.113.5\n");
    let d = Daemon::prepare(&config(
        &bind,
        &bind.key_file,
        "127.0.0.1:1".parse().unwrap(),
        "127.0.0.2:1".parse().unwrap(),
    ));
    let (code, out, err) = d.cli(&["dns", "plan"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("warning: www.example.test. 300 AAAA 2001:db8::5 is at a managed name but not managed by understudy"), "{out}");
    assert!(out.contains("warning: www.example.test. 300 A 203.0.113.5 exists without understudy's ownership marker"), "{out}");
    let (code, _, err) = d.cli(&["check-config"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("warning: zone example.test. at rfc2136")
            && err.contains("AAAA 2001:db8::5 is at a managed name"),
        "{err}"
    );
    // Once understudy wrote the set it carries the marker; the foreign AAAA is still worth a word.
    let (code, out, err) = d.cli(&["dns", "apply"]);
    assert_eq!(code, 0, "{out}{err}");
    let (_, out, _) = d.cli(&["dns", "plan"]);
    assert!(!out.contains("ownership marker"), "{out}");
    assert!(
        out.contains("AAAA 2001:db8::5 is at a managed name"),
        "{out}"
    );
}

#[test]
fn check_config_says_clearly_when_the_key_is_wrong() {
    let bind = AuthServer::start(Kind::Bind, "hmac-sha256");
    let dir = tempfile::tempdir().unwrap();
    let bad_key = wrong_key_file(dir.path());
    let cfg = config(
        &bind,
        &bad_key,
        "127.0.0.1:1".parse().unwrap(),
        "127.0.0.2:1".parse().unwrap(),
    )
    .replace("{DATA}", &dir.path().join("data").display().to_string());
    std::fs::write(dir.path().join("c.toml"), cfg).unwrap();
    let out = common::cmd()
        .args(["check-config", "-c"])
        .arg(dir.path().join("c.toml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("provider error: zone example.test.") && err.contains("NOTAUTH"),
        "{err}"
    );
    let out = common::cmd()
        .args(["check-config", "--offline", "-c"])
        .arg(dir.path().join("c.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains(&format!("tsig_key_file = \"{}\"", bad_key.display())),
        "{printed}"
    );
    assert!(
        !printed.contains("d3Jvbmcgd3Jvbmcg"),
        "the secret is never printed:\n{printed}"
    );
}

/// Issue 14: the end of a provider's failing streak is told too (`dns-confirmed`, with how
/// long it lasted), once: BIND stopped while a failover must be written, then started again.
#[test]
fn a_provider_back_after_failing_is_told_once_as_confirmed() {
    let mut bind = AuthServer::start(Kind::Bind, "hmac-sha256");
    let mut primary = Nginx::start("127.0.0.1", "primary");
    let standby = Nginx::start("127.0.0.2", "standby");
    let d = Daemon::start(&config(&bind, &bind.key_file, primary.addr, standby.addr));
    wait_bind(&bind, "127.0.0.1");
    d.wait_standby_ready();
    bind.stop();
    primary.kill();
    wait_until(Duration::from_secs(20), "the first failure told", || {
        d.events_of("dns-unconfirmed").len() == 1
    });
    assert!(d.events_of("dns-confirmed").is_empty());
    bind.restart();
    wait_bind(&bind, "127.0.0.2");
    wait_until(Duration::from_secs(20), "the recovery told", || {
        !d.events_of("dns-confirmed").is_empty()
    });
    std::thread::sleep(Duration::from_secs(1));
    let back = d.events_of("dns-confirmed");
    assert_eq!(back.len(), 1, "{back:#?}");
    let why = back[0]["reason"].as_str().unwrap();
    assert!(
        why.contains("zone example.test. at rfc2136") && why.contains("of failures"),
        "{why}"
    );
    assert_eq!(
        d.events_of("dns-unconfirmed").len(),
        1,
        "one streak, one message"
    );
}
