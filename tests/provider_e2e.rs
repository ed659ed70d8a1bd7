//! The whole loop with an external provider: the daemon fails a site over and back with BIND
//! (RFC 2136 + TSIG) holding the zone, and the `dns plan` / `dns apply` / `check-config`
//! commands against it, through the real binary.

mod common;

use std::time::Duration;

use common::authdns::{AuthServer, Kind};
use common::*;
use hickory_proto::rr::RecordType;

fn config(bind: &AuthServer, key_file: &std::path::Path, primary: std::net::SocketAddr, standby: std::net::SocketAddr) -> String {
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

fn wait_bind(bind: &AuthServer, want: &str) -> Duration {
    let start = std::time::Instant::now();
    while bind.rdata("www.example.test", RecordType::A) != [want] {
        assert!(start.elapsed() < Duration::from_secs(20), "BIND never answered {want}");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
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
    assert!(err.contains("provider ok: zone example.test.") && err.contains("TSIG key accepted"), "{err}");

    let (code, out, err) = d.cli(&["dns", "plan"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("zone example.test. at rfc2136"), "{out}");
    assert!(out.contains("1 to change") && out.contains("www.example.test. A (absent)  ->  www.example.test. 30 A 127.0.0.1"), "{out}");
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
    assert_eq!(bind.rdata("www.example.test", RecordType::TXT), ["not managed by understudy"]);
    assert_eq!(bind.rdata("mail.example.test", RecordType::A), ["192.0.2.25"]);
}

#[test]
fn check_config_says_clearly_when_the_key_is_wrong() {
    let bind = AuthServer::start(Kind::Bind, "hmac-sha256");
    let dir = tempfile::tempdir().unwrap();
    let bad_key = dir.path().join("bad.key");
    std::fs::write(
        &bad_key,
        "key \"understudy\" {\n\talgorithm hmac-sha256;\n\tsecret \"d3Jvbmcgd3Jvbmcgd3Jvbmcgd3Jvbmcgd3Jvbmc=\";\n};\n",
    )
    .unwrap();
    let cfg = config(&bind, &bad_key, "127.0.0.1:1".parse().unwrap(), "127.0.0.2:1".parse().unwrap())
        .replace("{DATA}", &dir.path().join("data").display().to_string());
    std::fs::write(dir.path().join("c.toml"), cfg).unwrap();
    let out = std::process::Command::new(BIN).args(["check-config", "-c"]).arg(dir.path().join("c.toml")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("provider error: zone example.test.") && err.contains("NOTAUTH"), "{err}");
    let out = std::process::Command::new(BIN).args(["check-config", "--offline", "-c"]).arg(dir.path().join("c.toml")).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("tsig_secret = \"<redacted>\""));
}
