//! The control API (issue 14): tokens and scopes against the real daemon, every documented
//! route answering as `docs/openapi.json` says, the actions doing what they say (drain,
//! release, crawl now, re-verify, notify test), the CLI through the daemon's own token and
//! over HTTPS, and schemathesis fuzzing the whole description.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;

use crate::common::{need, one_site, wait_until, Daemon, Nginx};

const READ: &str = "read-token-for-the-tests-0001";
const WRITE: &str = "write-token-for-the-tests-0002";

fn tokens() -> String {
    format!(
        "[[api.tokens]]\nname = \"grafana\"\nscope = \"read\"\ntoken = \"{READ}\"\n\
         [[api.tokens]]\nname = \"ops\"\nscope = \"write\"\ntoken = \"{WRITE}\"\n"
    )
}

/// One answer: status, headers (lower-case names), body as JSON (`Null` when it is not).
struct Answer {
    status: u16,
    headers: String,
    text: String,
    json: serde_json::Value,
}

fn request(api: SocketAddr, method: &str, path: &str, token: Option<&str>) -> Answer {
    let dir = tempfile::tempdir().unwrap();
    let (head, body) = (dir.path().join("head"), dir.path().join("body"));
    let mut c = Command::new("curl");
    c.args(["-s", "--max-time", "20", "-X", method, "-w", "%{http_code}"])
        .arg("-D")
        .arg(&head)
        .arg("-o")
        .arg(&body);
    if method == "POST" {
        c.args(["-H", "Content-Type: application/json", "-d", "{}"]);
    }
    if let Some(t) = token {
        c.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    let out = c.arg(format!("http://{api}{path}")).output().unwrap();
    let status: u16 = String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0);
    let text = std::fs::read_to_string(&body).unwrap_or_default();
    Answer {
        status,
        headers: std::fs::read_to_string(&head)
            .unwrap_or_default()
            .to_ascii_lowercase(),
        json: serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        text,
    }
}

/// A channel's receiver: counts what it is sent.
fn receiver() -> (SocketAddr, Arc<Mutex<Vec<String>>>, tokio::runtime::Runtime) {
    let hits = Arc::new(Mutex::new(Vec::new()));
    let h = hits.clone();
    let (addr, rt) =
        crate::common::http_server(move |req: hyper::Request<hyper::body::Incoming>| {
            let h = h.clone();
            async move {
                let event = req
                    .headers()
                    .get("x-understudy-event")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                h.lock().unwrap().push(event);
                hyper::Response::new(Full::new(Bytes::from_static(b"{}")))
            }
        });
    (addr, hits, rt)
}

#[test]
fn tokens_decide_who_reads_and_who_acts_and_every_route_answers() {
    need("curl", "curl");
    let primary = Nginx::start("127.0.0.1", "primary");
    let standby = Nginx::start("127.0.0.2", "standby");
    let (hook, hits, _rt) = receiver();
    let config = format!(
        "{}{}[[notify]]\nname = \"ops\"\nurl = \"webhook+http://{hook}/hook\"\nevents = [\"failed-over\"]\n",
        one_site(primary.addr, standby.addr, ""),
        tokens()
    );
    let d = Daemon::start(&config);
    let api = d.info.api;
    let get = |path: &str, token: Option<&str>| request(api, "GET", path, token);
    let post = |path: &str, token: Option<&str>| request(api, "POST", path, token);

    // Who may read: with tokens configured, nobody without one.
    let a = get("/api/v1/sites", None);
    assert_eq!(a.status, 401, "{}", a.text);
    assert!(
        a.headers.contains("www-authenticate: bearer"),
        "{}",
        a.headers
    );
    assert!(
        a.json["error"].as_str().unwrap().contains("token"),
        "{}",
        a.text
    );
    let a = get("/api/v1/sites", Some("not-a-token-of-this-daemon"));
    assert_eq!(a.status, 401);
    assert!(a.headers.contains("invalid_token"), "{}", a.headers);
    assert!(
        !a.text.contains("not-a-token"),
        "a refusal repeats no token: {}",
        a.text
    );
    let a = get("/api/v1/sites", Some(READ));
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["sites"][0]["name"], "shop");
    assert_eq!(get("/metrics", None).status, 401);
    let m = get("/metrics", Some(READ));
    assert_eq!(m.status, 200);
    assert!(
        m.headers.contains("application/openmetrics-text"),
        "{}",
        m.headers
    );

    // Who may act: a write token only.
    d.wait_standby_ready();
    let a = post("/api/v1/sites/shop/drain", Some(READ));
    assert_eq!(a.status, 403, "{}", a.text);
    assert!(a.headers.contains("insufficient_scope"), "{}", a.headers);
    assert_eq!(post("/api/v1/sites/shop/drain", None).status, 401);
    assert_eq!(d.phase(), "healthy", "nothing was drained");
    let a = post("/api/v1/sites/shop/drain", Some(WRITE));
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["phase"], "drained");
    assert_eq!(a.json["published"], "127.0.0.2");
    let a = post("/api/v1/sites/shop/drain", Some(WRITE));
    assert_eq!(
        a.status, 409,
        "draining twice is refused with a reason: {}",
        a.text
    );
    // Released once the primary has answered enough probes since (200 ms apart, two needed).
    std::thread::sleep(Duration::from_millis(1_000));
    let a = post("/api/v1/sites/shop/release", Some(WRITE));
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["published"], "127.0.0.1");
    assert!(
        d.log().contains("token=\"ops\"") || d.log().contains("token=ops"),
        "actions are logged with their token's name"
    );

    // The CLI speaks with the daemon's own token (tokens are configured, so reads need one).
    let (code, out, err) = d.cli(&["status"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = d.cli(&["drain", "shop"]);
    assert_eq!(code, 0, "{out}{err}");
    std::thread::sleep(Duration::from_millis(1_000));
    let (code, out, err) = d.cli(&["release", "shop"]);
    assert_eq!(code, 0, "{out}{err}");

    // The event log, a page at a time, newest first, filtered.
    let a = get("/api/v1/events?site=shop&limit=1", Some(READ));
    assert_eq!(a.status, 200, "{}", a.text);
    let first = a.json["events"][0]["id"].as_i64().unwrap();
    let next = a.json["next"].as_str().expect("a next page").to_string();
    let b = get(&next, Some(READ));
    let second = b.json["events"][0]["id"].as_i64().unwrap();
    assert!(second < first, "{first} then {second}");
    let drained = get("/api/v1/events?kind=drained", Some(READ));
    let kinds: Vec<&str> = drained.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["drained", "drained"], "{}", drained.text);
    assert!(drained.json["next"].is_null());
    for bad in [
        "/api/v1/events?kind=exploded",
        "/api/v1/events?limit=0",
        "/api/v1/events?limit=5000",
        "/api/v1/events?limit=ten",
        "/api/v1/events?before=-3",
        "/api/v1/events?limit=1&limit=2",
        "/api/v1/addresses?limit=0",
    ] {
        let a = get(bad, Some(READ));
        assert_eq!(a.status, 400, "{bad}: {}", a.text);
        assert!(a.json["error"].is_string(), "{bad}: {}", a.text);
    }

    // Every read route answers with the shape the description gives.
    let served = get("/api/v1/openapi.json", Some(READ));
    let in_repo = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json"),
    )
    .unwrap();
    assert_eq!(
        served.text, in_repo,
        "the daemon serves the description in the repository"
    );
    assert_eq!(get("/api/v1/sites/shop", Some(READ)).json["name"], "shop");
    assert_eq!(get("/api/v1/sites/nowhere", Some(READ)).status, 404);
    let snap = get("/api/v1/snapshots", Some(READ));
    assert_eq!(snap.json["snapshots"][0]["site"], "shop", "{}", snap.text);
    assert!(get("/api/v1/certificates", Some(READ)).json["certificates"].is_array());
    let addr = get("/api/v1/addresses", Some(READ));
    assert!(
        addr.json["current"].is_array() && addr.json["history"].is_array(),
        "{}",
        addr.text
    );
    let status = get("/api/v1/status", Some(READ));
    assert!(status.json["zones"].is_array(), "{}", status.text);

    // A known path asked with another method: 405 and what it answers.
    let a = get("/api/v1/sites/shop/drain", Some(WRITE));
    assert_eq!(a.status, 405);
    assert!(a.headers.contains("allow: post"), "{}", a.headers);
    let a = request(api, "DELETE", "/api/v1/sites", Some(WRITE));
    assert_eq!(a.status, 405);
    assert!(a.headers.contains("allow: get"), "{}", a.headers);
    // An action's body takes no options: a client that thinks it passes one is told.
    let out = Command::new("curl")
        .args(["-s", "-X", "POST", "-H", "Content-Type: application/json"])
        .args(["-H", &format!("Authorization: Bearer {WRITE}")])
        .args([
            "-d",
            "{\"force\": true}",
            "-w",
            "%{http_code}",
            "-o",
            "/dev/null",
        ])
        .arg(format!("http://{api}/api/v1/sites/shop/drain"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "400");
    assert_eq!(d.phase(), "healthy");

    // Crawl now: a new report appears.
    let count = || {
        get("/api/v1/crawls?site=shop", Some(READ)).json["crawls"]
            .as_array()
            .map_or(0, |c| c.len())
    };
    let before = count();
    let a = post("/api/v1/sites/shop/crawl", Some(WRITE));
    assert_eq!(a.status, 202, "{}", a.text);
    wait_until(Duration::from_secs(30), "the crawl asked for", || {
        count() > before
    });
    assert!(
        d.log().contains("crawl asked for through the API"),
        "{}",
        d.log()
    );
    assert_eq!(post("/api/v1/sites/nowhere/crawl", Some(WRITE)).status, 404);

    // Re-verify: accepted, and says there is no provider zone to re-read.
    let a = post("/api/v1/dns/reverify", Some(WRITE));
    assert_eq!(a.status, 202, "{}", a.text);
    assert_eq!(a.json["zones"], serde_json::json!([]));

    // Notify test: sent now, the outcome per channel.
    let a = post("/api/v1/notify/test", Some(WRITE));
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["results"][0]["channel"], "ops");
    assert_eq!(a.json["results"][0]["delivered"], true, "{}", a.text);
    assert!(
        hits.lock().unwrap().iter().any(|e| e == "test"),
        "{:?}",
        hits.lock().unwrap()
    );
    assert_eq!(
        post("/api/v1/notify/test?channel=pager", Some(WRITE)).status,
        404
    );
}

/// With no tokens configured (the default), reading on loopback needs none; every action
/// still needs a write token, and the daemon's own (which the CLI reads) is one.
#[test]
fn without_configured_tokens_reads_are_open_and_actions_need_the_local_token() {
    need("curl", "curl");
    let primary = Nginx::start("127.0.0.1", "primary");
    let standby = Nginx::start("127.0.0.2", "standby");
    let d = Daemon::start(&one_site(primary.addr, standby.addr, ""));
    d.wait_standby_ready();
    let api = d.info.api;
    assert_eq!(request(api, "GET", "/api/v1/sites", None).status, 200);
    assert_eq!(
        request(api, "POST", "/api/v1/sites/shop/drain", None).status,
        401
    );
    assert_eq!(
        request(api, "POST", "/api/v1/sites/shop/drain", Some(READ)).status,
        401
    );
    let token = d.token();
    assert_eq!(token.len(), 64, "256 random bits as hex");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(d.data_dir().join("api.token"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(
        mode & 0o777,
        0o600,
        "only the daemon's user reads the token"
    );
    let a = request(api, "POST", "/api/v1/sites/shop/drain", Some(&token));
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(d.phase(), "drained");
    std::thread::sleep(Duration::from_millis(1_000));
    // A restart makes a new token: a copy of the old one is worth nothing.
    let mut d = d;
    d.restart();
    assert_ne!(d.token(), token);
    assert_eq!(
        request(
            d.info.api,
            "POST",
            "/api/v1/sites/shop/release",
            Some(&token)
        )
        .status,
        401
    );
    let (code, out, err) = d.cli(&["release", "shop"]);
    assert_eq!(code, 0, "{out}{err}");
}

/// `[api] tls_cert/tls_key`: the API speaks HTTPS only, and the CLI trusts exactly the
/// configured certificate.
#[test]
fn the_api_over_https_and_the_cli_pins_its_certificate() {
    need("curl", "curl");
    let primary = Nginx::start("127.0.0.1", "primary");
    let standby = Nginx::start("127.0.0.2", "standby");
    let ca = crate::common::ca::Ca::new();
    let (cert, key) = ca.issue("api.example.test");
    let files = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (files.path().join("api.crt"), files.path().join("api.key"));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let config = one_site(primary.addr, standby.addr, "").replace(
        "[api]\nlisten = \"127.0.0.1:0\"\n",
        &format!(
            "[api]\nlisten = \"127.0.0.1:0\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            cert_path.display(),
            key_path.display()
        ),
    );
    assert!(config.contains("tls_cert"));
    let d = Daemon::start(&config);
    let (code, out, err) = d.cli(&["status"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("shop"), "{out}");
    let https = |extra: &[&str]| {
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "5",
            ])
            .args(extra)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let port = d.info.api.port();
    let ca_file = files.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let url = format!("https://api.example.test:{port}/api/v1/sites");
    let resolve = format!("api.example.test:{port}:127.0.0.1");
    assert_eq!(
        https(&[
            "--cacert",
            ca_file.to_str().unwrap(),
            "--resolve",
            &resolve,
            &url
        ]),
        "200"
    );
    // Plain HTTP gets no answer from a TLS listener.
    assert_eq!(
        https(&[&format!("http://127.0.0.1:{port}/api/v1/sites")]),
        "000"
    );
}

fn schemathesis() -> PathBuf {
    if let Some(p) = std::env::var_os("UNDERSTUDY_SCHEMATHESIS") {
        return PathBuf::from(p);
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/schemathesis");
    assert!(
        local.exists(),
        "schemathesis not found at {}: run `python3 -m venv .venv && .venv/bin/pip install schemathesis` (bash .ci/run does this), or set UNDERSTUDY_SCHEMATHESIS",
        local.display()
    );
    local
}

/// Schemathesis generates requests from `docs/openapi.json` (valid and invalid ones, every
/// method on every path) and checks each answer against it: no 5xx, status codes, content
/// types and bodies as described, invalid input refused, missing auth refused.
#[test]
fn schemathesis_finds_nothing_against_the_openapi_description() {
    let st = schemathesis();
    let primary = Nginx::start("127.0.0.1", "primary");
    let standby = Nginx::start("127.0.0.2", "standby");
    let d = Daemon::start(&format!(
        "{}{}",
        one_site(primary.addr, standby.addr, ""),
        tokens()
    ));
    let spec = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
    let out = Command::new(st)
        .arg("run")
        .arg(&spec)
        .args(["--url", &format!("http://{}", d.info.api)])
        .args(["-H", &format!("Authorization: Bearer {WRITE}")])
        .args(["--checks", "all", "--max-examples", "40", "--workers", "2"])
        .args(["--request-timeout", "20", "--no-color"])
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "schemathesis found problems:\n{text}");
    assert!(text.contains("passed"), "{text}");
    assert!(!d.log().contains("panicked"), "{}", d.log());
}
