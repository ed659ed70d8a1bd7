//! The push source: the home side reports its address to the standby's update endpoint with
//! the dyndns2 protocol (as a router would, here with reqwest and with `curl`) or with
//! `understudy report`. Right credentials update the name; wrong or missing ones get 401 and
//! change nothing; a non-public address is refused. Over HTTPS with a test CA too.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const PASSWORD: &str = "push-secret-1234";

fn config(extra_push: &str) -> String {
    let home = preamble(&["home.test"]);
    format!(
        r#"{home}
[ip]
interval = "60s"
quorum = 1
allow = ["192.0.2.0/24"]
[ip.push]
listen = "127.0.0.1:0"
username = "home"
password_env = "TEST_PUSH_PASSWORD"
{extra_push}
[[ip.sources]]
name = "home-router"
type = "push"
family = "ipv4"
[[ddns]]
name = "home.home.test"
"#
    )
}

fn start(extra_push: &str) -> Daemon {
    std::env::set_var("TEST_PUSH_PASSWORD", PASSWORD);
    Daemon::start(&config(extra_push))
}

fn push_url(d: &Daemon, scheme: &str) -> String {
    format!(
        "{scheme}://{}",
        d.info.push.expect("push endpoint in daemon.json")
    )
}

fn get(url: &str, auth: Option<(&str, &str)>) -> (u16, String) {
    rt().block_on(async {
        let c = understudy::http::client(Duration::from_secs(5)).unwrap();
        let mut req = c.get(url);
        if let Some((u, p)) = auth {
            req = req.basic_auth(u, Some(p));
        }
        let r = req.send().await.unwrap();
        (
            r.status().as_u16(),
            r.text().await.unwrap().trim().to_string(),
        )
    })
}

fn wait_answer(d: &Daemon, want: &str) {
    d.wait_answer("home.home.test", want, Duration::from_secs(10));
}

#[test]
fn dyndns2_updates_with_credentials_only() {
    let d = start("");
    let base = push_url(&d, "http");
    let url = |ip: &str| format!("{base}/nic/update?hostname=home.home.test&myip={ip}");

    assert_eq!(
        get(&url("192.0.2.7"), Some(("home", PASSWORD))),
        (200, "good 192.0.2.7".to_string())
    );
    wait_answer(&d, "192.0.2.7");
    assert_eq!(
        get(&url("192.0.2.7"), Some(("home", PASSWORD))),
        (200, "nochg 192.0.2.7".to_string())
    );

    // Wrong or missing credentials: 401, nothing changes.
    assert_eq!(
        get(&url("192.0.2.66"), Some(("home", "wrong"))),
        (401, "badauth".to_string())
    );
    assert_eq!(get(&url("192.0.2.66"), None), (401, "badauth".to_string()));
    assert_eq!(
        get(&url("192.0.2.66"), Some(("someone", PASSWORD))),
        (401, "badauth".to_string())
    );
    // A non-public address is refused; so is a name the standby does not manage.
    let (status, body) = get(&url("10.0.0.5"), Some(("home", PASSWORD)));
    assert_eq!(status, 400);
    assert!(
        body.starts_with("badip 10.0.0.5 is not a public address"),
        "{body}"
    );
    assert_eq!(
        get(
            &format!("{base}/nic/update?hostname=other.home.test&myip=192.0.2.8"),
            Some(("home", PASSWORD))
        )
        .1,
        "nohost"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        d.answer("home.home.test"),
        ["192.0.2.7".parse::<std::net::IpAddr>().unwrap()]
    );

    // `curl`, as a shell script or router would.
    let out = Command::new("curl")
        .args(["-s", "-u", &format!("home:{PASSWORD}"), &url("192.0.2.9")])
        .output()
        .expect("curl (installed with the base system)");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "good 192.0.2.9"
    );
    wait_answer(&d, "192.0.2.9");

    // `understudy report` from the home side.
    let out = common::cmd()
        .args([
            "report",
            "--to",
            &base,
            "--hostname",
            "home.home.test",
            "--user",
            "home",
            "--ip",
            "192.0.2.10",
        ])
        .env("UNDERSTUDY_PUSH_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "good 192.0.2.10"
    );
    wait_answer(&d, "192.0.2.10");
    let out = common::cmd()
        .args([
            "report",
            "--to",
            &base,
            "--hostname",
            "home.home.test",
            "--user",
            "home",
            "--ip",
            "192.0.2.11",
        ])
        .env("UNDERSTUDY_PUSH_PASSWORD", "wrong")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "badauth");
}

/// One update request from the loopback address `from`; (status, Retry-After, body).
fn get_from(from: &str, url: &str, pass: &str) -> (u16, Option<String>, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    rt().block_on(async {
        let c = reqwest::Client::builder()
            .no_proxy()
            .local_address(from.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap();
        let r = c
            .get(url)
            .basic_auth("home", Some(pass))
            .send()
            .await
            .unwrap();
        let retry = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        (
            r.status().as_u16(),
            retry,
            r.text().await.unwrap().trim().to_string(),
        )
    })
}

/// Issue 11, item 4: 200 wrong passwords in a row get 5 checks and then 429 + Retry-After, the
/// log stays short, and the right client elsewhere is not locked out; many addresses together
/// trip the global limit, which an address that logged in before still passes.
#[test]
fn brute_force_is_throttled_and_the_log_stays_short() {
    let d = start("");
    let url = format!(
        "{}/nic/update?hostname=home.home.test&myip=192.0.2.7",
        push_url(&d, "http")
    );
    assert_eq!(
        get_from("127.0.0.1", &url, PASSWORD).0,
        200,
        "the home side logs in (and is known good from now on)"
    );
    let mut codes = std::collections::BTreeMap::<u16, usize>::new();
    let mut retry_after = None;
    let flood = Instant::now();
    for i in 0..200 {
        let (code, retry, _) = get_from("127.0.0.3", &url, &format!("guess-{i}"));
        *codes.entry(code).or_default() += 1;
        if code == 429 {
            retry_after = retry_after.or(retry);
        }
    }
    // Five free tries, then one more each time the doubling wait (1 s, 2 s, 4 s, ...) is over.
    let extra = (flood.elapsed().as_secs_f64() + 1.0).log2().ceil() as usize + 1;
    let checked = codes.get(&401).copied().unwrap_or(0);
    assert!(checked <= 5 + extra, "{codes:?} in {:?}", flood.elapsed());
    assert_eq!(
        codes.get(&429).copied().unwrap_or(0),
        200 - checked,
        "{codes:?}"
    );
    let secs: u64 = retry_after.expect("Retry-After on 429").parse().unwrap();
    assert!((1..=900).contains(&secs), "{secs}");
    // Right after a failure the throttled address must wait, even with the right password; the
    // home side is not held up.
    let started = Instant::now();
    while get_from("127.0.0.3", &url, "one-more-guess").0 != 401 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never checked again after its wait"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(get_from("127.0.0.3", &url, PASSWORD).0, 429);
    assert_eq!(get_from("127.0.0.1", &url, PASSWORD).0, 200);
    let warns = d
        .log()
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("understudy::ip::push"))
        .count();
    assert!(
        warns <= 4,
        "{warns} warnings for about 200 failures:\n{}",
        d.log()
    );

    // Many addresses, each within its 5 free tries: past 100 failures in a minute, an address
    // never seen is no longer checked.
    let mut failures = checked + 1;
    'flood: for host in 10..40 {
        for i in 0..5 {
            match get_from(&format!("127.0.0.{host}"), &url, &format!("guess-{i}")).0 {
                401 => failures += 1,
                429 => break 'flood,
                other => panic!("{other}"),
            }
        }
    }
    assert!(
        failures >= 100,
        "the global limit tripped after only {failures} failures"
    );
    assert_eq!(
        get_from("127.0.0.60", &url, PASSWORD).0,
        429,
        "an address never seen waits while the flood lasts"
    );
    assert_eq!(
        get_from("127.0.0.1", &url, PASSWORD).0,
        200,
        "a known-good address is still served"
    );
}

#[test]
fn https_endpoint_with_a_test_ca() {
    let dir = tempfile::tempdir().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = params.clone().self_signed(&ca_key).unwrap();
    let mut leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf.subject_alt_names
        .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = leaf
        .signed_by(&key, &rcgen::Issuer::from_params(&params, &ca_key))
        .unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
    let d = start(&format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"",
        dir.path().join("cert.pem").display(),
        dir.path().join("key.pem").display()
    ));
    let out = common::cmd()
        .args([
            "report",
            "--to",
            &push_url(&d, "https"),
            "--hostname",
            "home.home.test",
            "--user",
            "home",
            "--ip",
            "192.0.2.20",
        ])
        .arg("--ca-file")
        .arg(dir.path().join("ca.pem"))
        .env("UNDERSTUDY_PUSH_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    wait_answer(&d, "192.0.2.20");
    // Plain HTTP to the HTTPS endpoint gets nowhere.
    let plain = rt().block_on(async {
        understudy::http::client(Duration::from_secs(3))
            .unwrap()
            .get(format!("{}/nic/update", push_url(&d, "http")))
            .send()
            .await
    });
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
}

#[test]
fn a_public_endpoint_without_tls_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = config("")
        .replace(
            "listen = \"127.0.0.1:0\"\nusername",
            "listen = \"0.0.0.0:8245\"\nusername",
        )
        .replace("{DATA}", &dir.path().display().to_string());
    std::fs::write(dir.path().join("c.toml"), text).unwrap();
    let out = common::cmd()
        .args(["check-config", "--offline", "-c"])
        .arg(dir.path().join("c.toml"))
        .env("TEST_PUSH_PASSWORD", "x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ip.push.listen: 0.0.0.0:8245 is not loopback, and the endpoint carries a password: give tls_cert and tls_key"),
        "{err}"
    );
}
