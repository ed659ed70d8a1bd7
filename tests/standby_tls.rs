//! The standby server's HTTPS and readiness: certificates issued and renewed by ACME DNS-01
//! against a real Pebble validating through understudy's own DNS server, served by SNI for each
//! name (checked with Pebble's root), user-supplied certificate files, and readiness (snapshot
//! age, certificate) as an endpoint and as the gate that keeps the decision from failing over
//! to a standby that is not ready.

use crate::common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::ca::Ca;
use common::fixture::Fixture;
use common::pebble::Pebble;
use common::{free_port, wait_until, Daemon, Nginx};
use hickory_proto::rr::RecordType;

/// A client that sends `names` to `addr` (as DNS would after a failover) and trusts only `root`.
fn client(addr: SocketAddr, names: &[&str], root: &str) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for c in understudy::tls::parse_ca_pem(root.as_bytes()).unwrap() {
        roots.add(c).unwrap();
    }
    let mut tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    // A full handshake per request (no pooled connection, no session resumption), so the
    // certificate served now is the one seen.
    tls.resumption = rustls::client::Resumption::disabled();
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .use_preconfigured_tls(tls);
    for n in names {
        b = b.resolve(n, addr);
    }
    b.build().unwrap()
}

/// The DER of the certificate the server presented, and the answer's status and body.
async fn fetch(c: &reqwest::Client, url: &str) -> Result<(Vec<u8>, u16, String), String> {
    let r = c.get(url).send().await.map_err(|e| format!("{e:?}"))?;
    let der = r
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|t| t.peer_certificate())
        .map(|d| d.to_vec())
        .unwrap_or_default();
    let status = r.status().as_u16();
    Ok((der, status, r.text().await.unwrap_or_default()))
}

fn leaf_der(pem_file: &Path) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_file_iter(pem_file)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

fn serial(pem_file: &Path) -> String {
    understudy::tls::info(&leaf_der(pem_file)).unwrap().serial
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn acme_dns01_issues_and_renews_and_each_name_is_served_with_its_certificate() {
    // The primary: nginx over HTTPS with a certificate of a private CA (the probes and the
    // crawler trust it through ca_file).
    let origin_ca = Ca::new();
    let (cert, key) = origin_ca.issue_names(&["www.shop.test", "shop.test"]);
    let primary = Nginx::start_tls("127.0.0.1", "the shop", &cert, &key);
    let dns: SocketAddr = format!("127.0.0.1:{}", free_port("127.0.0.1"))
        .parse()
        .unwrap();
    // Certificates that live 30 s: renewal is due 20 s after issuance.
    let pebble = Pebble::start(dns, 30);
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("origin-ca.pem"), origin_ca.pem()).unwrap();
    let config = format!(
        r#"data_dir = "{{DATA}}"
[dns]
listen = ["{dns}"]
[[dns.zones]]
name = "shop.test"
[api]
listen = "127.0.0.1:0"
[standby]
listen = ["127.0.0.1:0"]
https_listen = ["127.0.0.1:0"]
[standby.acme]
directory = "{directory}"
contact = ["mailto:ops@shop.test"]
ca_file = "{pebble_ca}"
[[sites]]
name = "shop"
domain = "www.shop.test"
aliases = ["shop.test"]
primary = "{primary}"
standby = "127.0.0.2"
[sites.probe]
scheme = "https"
port = {port}
interval = "1s"
ca_file = "{origin_ca}"
"#,
        directory = pebble.directory(),
        pebble_ca = pebble.listener_ca.display(),
        primary = primary.addr,
        port = primary.addr.port(),
        origin_ca = work.path().join("origin-ca.pem").display(),
    );
    let d = Daemon::start(&config);
    let https = d.info.standby_https[0];
    let dir = d.data_dir().join("certs").join("shop");
    wait_until(Duration::from_secs(60), "the first certificate", || {
        dir.join("cert.pem").exists()
    });
    let first = serial(&dir.join("cert.pem"));
    // Pebble validated both names by asking our DNS server (it may reuse a valid authorization
    // for a later order, so only the first one is counted).
    let validations = || {
        pebble
            .log()
            .matches("set VALID by completed challenge")
            .count()
    };
    let start = Instant::now();
    while validations() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{} validations:\n{}",
            validations(),
            pebble.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for f in ["cert.pem", "key.pem"] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f} is private");
    }
    let account = std::fs::read_dir(d.data_dir().join("acme"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(mode(&account), 0o600, "the ACME account key is private");

    let rt = common::rt();
    let c = client(
        https,
        &["www.shop.test", "shop.test", "other.test"],
        &pebble.issuing_root,
    );
    let port = https.port();
    rt.block_on(async {
        // Both names over HTTPS with the issued certificate, verified against Pebble's root,
        // once the first crawl is published.
        for host in ["www.shop.test", "shop.test"] {
            let start = Instant::now();
            loop {
                let got = fetch(&c, &format!("https://{host}:{port}/")).await;
                if let Ok((der, 200, body)) = &got {
                    assert_eq!(
                        der,
                        &leaf_der(&dir.join("cert.pem")),
                        "{host}: the stored certificate is the one served"
                    );
                    assert!(body.contains("the shop"), "{body}");
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "{host}: {got:?}\n{}",
                    d.log()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        // A name this standby does not serve gets no certificate at all.
        assert!(fetch(&c, &format!("https://other.test:{port}/"))
            .await
            .is_err());
        // Ready: snapshot present, certificate valid for both names.
        let (_, status, body) = fetch(
            &c,
            &format!("https://www.shop.test:{port}/.well-known/understudy/ready"),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{body}");
        let r: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(r["ready"], true, "{r}");
        assert_eq!(r["certificate"]["serial"], first.as_str(), "{r}");
    });
    // HTTP/2 by ALPN, with curl.
    common::need("curl", "curl");
    std::fs::write(work.path().join("pebble-root.pem"), &pebble.issuing_root).unwrap();
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--http2",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
            "--cacert",
        ])
        .arg(work.path().join("pebble-root.pem"))
        .args([
            "--resolve",
            &format!("shop.test:{port}:127.0.0.1"),
            &format!("https://shop.test:{port}/"),
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2 200",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Renewal at two thirds of the lifetime: a new certificate, served without a restart.
    wait_until(Duration::from_secs(60), "the renewed certificate", || {
        serial(&dir.join("cert.pem")) != first
    });
    let renewed = leaf_der(&dir.join("cert.pem"));
    rt.block_on(async {
        let start = Instant::now();
        loop {
            let (der, status, _) = fetch(&c, &format!("https://www.shop.test:{port}/"))
                .await
                .unwrap();
            if der == renewed {
                assert_eq!(status, 200);
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "the renewed certificate is not served"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    assert!(
        d.log()
            .matches("certificate obtained by ACME DNS-01")
            .count()
            >= 2,
        "{}",
        d.log()
    );
    let issued = d.events_of("certificate-issued");
    assert!(
        issued.len() >= 2,
        "issuance and renewal are events: {issued:#?}"
    );
    assert!(
        issued[0]["reason"]
            .as_str()
            .unwrap()
            .contains("issued by ACME, valid until"),
        "{issued:#?}"
    );
    // The challenge records are gone once the orders are done.
    let txt = common::query(d.dns(), "_acme-challenge.www.shop.test", RecordType::TXT).unwrap();
    assert!(txt.message.answers.is_empty(), "{:?}", txt.message.answers);
}

#[test]
fn user_certificate_files_are_served_and_reloaded_and_a_missing_certificate_is_not_ready() {
    let ca = Ca::new();
    let (cert, key) = ca.issue_names(&["www.own.test", "www.bare.test"]);
    let primary = Nginx::start_tls("127.0.0.1", "own site", &cert, &key);
    let work = tempfile::tempdir().unwrap();
    let (own_cert, own_key) = ca.issue_names(&["www.own.test"]);
    std::fs::write(work.path().join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(work.path().join("own.pem"), &own_cert).unwrap();
    std::fs::write(work.path().join("own.key"), &own_key).unwrap();
    let site = |name: &str| {
        format!(
            "[[sites]]\nname = \"{name}\"\ndomain = \"www.{name}.test\"\nprimary = \"{}\"\nstandby = \"127.0.0.2\"\n[sites.probe]\nscheme = \"https\"\nport = {}\ninterval = \"1s\"\nca_file = \"{}\"\n",
            primary.addr,
            primary.addr.port(),
            work.path().join("ca.pem").display()
        )
    };
    let config = format!(
        "data_dir = \"{{DATA}}\"\n[dns]\nlisten = [\"127.0.0.1:0\"]\n[[dns.zones]]\nname = \"own.test\"\n[[dns.zones]]\nname = \"bare.test\"\n[api]\nlisten = \"127.0.0.1:0\"\n[standby]\nlisten = [\"127.0.0.1:0\"]\nhttps_listen = [\"127.0.0.1:0\"]\n{}[sites.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n{}",
        site("own"),
        work.path().join("own.pem").display(),
        work.path().join("own.key").display(),
        site("bare"),
    );
    let d = Daemon::start(&config);
    let (http, https) = (d.info.standby[0], d.info.standby_https[0]);
    let rt = common::rt();
    let tls = client(https, &["www.own.test", "www.bare.test"], &ca.pem());
    let plain = client(http, &["www.own.test", "www.bare.test"], &ca.pem());
    rt.block_on(async {
        let ready = |host: &'static str| {
            let plain = plain.clone();
            async move {
                let (_, status, body) = fetch(
                    &plain,
                    &format!("http://{host}:{}/.well-known/understudy/ready", http.port()),
                )
                .await
                .unwrap();
                (
                    status,
                    serde_json::from_str::<serde_json::Value>(&body).unwrap(),
                )
            }
        };
        let start = Instant::now();
        while ready("www.own.test").await.0 != 200 {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "own never ready: {:?}\n{}",
                ready("www.own.test").await,
                d.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (der, status, body) = fetch(&tls, &format!("https://www.own.test:{}/", https.port()))
            .await
            .unwrap();
        assert_eq!(
            (status, der),
            (200, leaf_der(&work.path().join("own.pem"))),
            "{body}"
        );
        // The other site has its snapshot but no certificate: not ready, and no TLS for it.
        wait_until(Duration::from_secs(20), "bare's snapshot", || {
            d.data_dir()
                .join("mirror")
                .join("bare")
                .join("current")
                .exists()
        });
        let (status, r) = ready("www.bare.test").await;
        assert_eq!(status, 503, "{r}");
        assert_eq!(r["ready"], false);
        assert_eq!(r["problems"], serde_json::json!(["no certificate"]), "{r}");
        assert!(r["snapshot"]["id"].is_string(), "{r}");
        assert!(
            fetch(&tls, &format!("https://www.bare.test:{}/", https.port()))
                .await
                .is_err()
        );

        // Files replaced by another tool (a renewal): the new certificate is served.
        let (new_cert, new_key) = ca.issue_names(&["www.own.test"]);
        std::fs::write(work.path().join("own.key"), &new_key).unwrap();
        std::fs::write(work.path().join("own.pem"), &new_cert).unwrap();
        let want = leaf_der(&work.path().join("own.pem"));
        let start = Instant::now();
        loop {
            let (der, _, _) = fetch(&tls, &format!("https://www.own.test:{}/", https.port()))
                .await
                .unwrap();
            if der == want {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the replaced certificate is not served\n{}",
                d.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

/// The decision's readiness gate: with a fresh copy the site fails over to this standby; once
/// the copy is older than max_snapshot_age, the same outage keeps the primary record and alerts.
#[test]
fn no_failover_to_a_standby_whose_copy_is_too_old() {
    let mut f = Fixture::start();
    let standby_port = free_port("127.0.0.2");
    let config = f
        .config("")
        .replace("standby = \"127.0.0.2\"", &format!("standby = \"127.0.0.2:{standby_port}\""))
        .replace("[[sites]]", &format!("[standby]\nlisten = [\"127.0.0.2:{standby_port}\"]\nmax_snapshot_age = \"12s\"\n[[sites]]"))
        .replace("interval = \"1s\"", "interval = \"300ms\"\nsuccesses_to_up = 2\nhold_down = \"1s\"");
    let d = Daemon::start(&config);
    let ready_url = format!("http://127.0.0.2:{standby_port}/.well-known/understudy/ready");
    let rt = common::rt();
    let c = client(
        format!("127.0.0.2:{standby_port}").parse().unwrap(),
        &["www.fixture.test"],
        &Ca::new().pem(),
    );
    let ready = || {
        rt.block_on(fetch(
            &c,
            &ready_url.replace("127.0.0.2", "www.fixture.test"),
        ))
        .map(|r| r.1)
        .unwrap_or(0)
    };
    wait_until(Duration::from_secs(20), "the first copy is ready", || {
        ready() == 200
    });
    d.wait_standby_ready();

    // A fresh copy: the outage fails over to it.
    f.nginx.kill();
    d.wait_answer("www.fixture.test", "127.0.0.2", Duration::from_secs(10));
    f.nginx.restart();
    d.wait_answer("www.fixture.test", "127.0.0.1", Duration::from_secs(15));

    // The copy ages past 12 s (no crawl is due): not ready, and the next outage stays put.
    wait_until(Duration::from_secs(20), "the copy is too old", || {
        ready() == 503
    });
    f.nginx.kill();
    wait_until(Duration::from_secs(10), "primary-down", || {
        d.phase() == "primary-down"
    });
    let s = d.status();
    let reason = s["sites"][0]["reason"].as_str().unwrap().to_string();
    assert!(
        reason.contains("not ready")
            && reason.contains("snapshot is")
            && reason.contains("more than max_snapshot_age 12s"),
        "{reason}"
    );
    assert!(
        !reason.contains("snapshot is 0ms"),
        "the age is given in seconds: {reason}"
    );
    assert_eq!(
        d.answer("www.fixture.test"),
        vec!["127.0.0.1".parse::<std::net::IpAddr>().unwrap()],
        "the records stay on the primary"
    );
}

/// The same gate for a standby on another machine: the deciding daemon's standby probes ask the
/// remote understudy's readiness report (`standby_readiness = true`), so its stale copy keeps the
/// records on the primary too.
#[test]
fn a_remote_standbys_readiness_gates_failover() {
    let mut f = Fixture::start();
    let standby_port = free_port("127.0.0.2");
    // The standby machine: serves the copy, with a short max_snapshot_age.
    let remote = f
        .config("")
        .replace("[[sites]]", &format!("[standby]\nlisten = [\"127.0.0.2:{standby_port}\"]\nmax_snapshot_age = \"8s\"\n[[sites]]"));
    let standby = Daemon::start(&remote);
    // The deciding daemon: no copy of its own; it asks the standby's readiness.
    let decider = f
        .config("scheduled = false")
        .replace(
            "standby = \"127.0.0.2\"",
            &format!("standby = \"127.0.0.2:{standby_port}\""),
        )
        .replace(
            "interval = \"1s\"",
            "interval = \"300ms\"\nstandby_readiness = true",
        );
    let d = Daemon::start(&decider);
    wait_until(Duration::from_secs(20), "the remote copy is ready", || {
        d.status()["sites"][0]["last_standby_probe"]["ok"] == true
    });
    // The remote copy ages past 8 s: the standby probe fails with the 503, and an outage stays put.
    wait_until(
        Duration::from_secs(20),
        "the remote copy is too old",
        || {
            d.status()["sites"][0]["last_standby_probe"]["detail"]
                .as_str()
                .is_some_and(|s| s.contains("503"))
        },
    );
    f.nginx.kill();
    wait_until(Duration::from_secs(10), "primary-down", || {
        d.phase() == "primary-down"
    });
    assert_eq!(
        d.answer("www.fixture.test"),
        vec!["127.0.0.1".parse::<std::net::IpAddr>().unwrap()],
        "{}",
        standby.log()
    );
}
