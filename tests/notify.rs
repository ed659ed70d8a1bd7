//! Notifications (issue 14): a failover and a failback reach a webhook receiver, signed, once
//! each and in order, through a 429, a receiver that is down, and a daemon restart in between;
//! `notify test` reports each channel's outcome.
//!
//! The receiver is this file's: the native webhook is understudy's own documented format
//! (`src/notify/mod.rs`), so the test checks it the way a receiver would, the signature over
//! the raw body with ring's HMAC, not with understudy's code.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};

use crate::common::{one_site, wait_until, Daemon, Nginx};

const SECRET: &str = "test-webhook-signing-key";

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Hit {
    path: String,
    /// ntfy's headers, and the bearer token.
    title: Option<String>,
    priority: Option<String>,
    authorization: Option<String>,
    event: String,
    delivery: String,
    signature: Option<String>,
    body: Vec<u8>,
    answered: u16,
}

#[derive(Default)]
struct State {
    hits: Vec<Hit>,
    /// Answer 503 to everything while set.
    down: bool,
    /// Answer this many requests with 429 and `Retry-After: 1` first.
    throttle: usize,
    /// Answer everything with this status and JSON body (an ntfy error, say).
    refuse: Option<(u16, &'static str)>,
}

struct Receiver {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    _rt: tokio::runtime::Runtime,
}

impl Receiver {
    fn start() -> Receiver {
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let (addr, rt) = crate::common::http_server(move |req| handle(req, st.clone()));
        Receiver {
            addr,
            state,
            _rt: rt,
        }
    }

    fn hits(&self) -> Vec<Hit> {
        self.state.lock().unwrap().hits.clone()
    }

    /// The messages it accepted (answered 2xx), in order.
    fn accepted(&self) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|h| h.answered == 200)
            .collect()
    }
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    st: Arc<Mutex<State>>,
) -> Response<Full<Bytes>> {
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let path = req.uri().path().to_string();
    let (title, priority, authorization) =
        (header("title"), header("priority"), header("authorization"));
    let (event, delivery, signature) = (
        header("x-understudy-event").unwrap_or_default(),
        header("x-understudy-delivery").unwrap_or_default(),
        header("x-understudy-signature-256"),
    );
    let body = req.into_body().collect().await.unwrap().to_bytes().to_vec();
    let mut s = st.lock().unwrap();
    let (status, retry_after) = if let Some((code, _)) = s.refuse {
        (StatusCode::from_u16(code).unwrap(), None)
    } else if s.down {
        (StatusCode::SERVICE_UNAVAILABLE, None)
    } else if s.throttle > 0 {
        s.throttle -= 1;
        (StatusCode::TOO_MANY_REQUESTS, Some("1"))
    } else {
        (StatusCode::OK, None)
    };
    let reply = s.refuse.map_or("{}", |(_, body)| body);
    s.hits.push(Hit {
        path,
        title,
        priority,
        authorization,
        event,
        delivery,
        signature,
        body,
        answered: status.as_u16(),
    });
    let mut r = Response::builder().status(status);
    if let Some(a) = retry_after {
        r = r.header("retry-after", a);
    }
    r.body(Full::new(Bytes::from_static(reply.as_bytes())))
        .unwrap()
}

/// What a receiver does first: the signature over the raw body, then the JSON.
fn verified(h: &Hit) -> serde_json::Value {
    let sig = h.signature.as_deref().expect("signed");
    let hex = sig.strip_prefix("sha256=").expect("sha256=<hex>");
    let tag: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    ring::hmac::verify(&key, &h.body, &tag).expect("the signature verifies");
    serde_json::from_slice(&h.body).unwrap()
}

/// One site, and a webhook channel `ops` to `hook` with `extra` keys (e.g. its `events`).
fn config(
    primary: SocketAddr,
    standby: SocketAddr,
    hook: SocketAddr,
    dir: &std::path::Path,
    extra: &str,
) -> String {
    let key = dir.join("hook.key");
    std::fs::write(&key, format!("{SECRET}\n")).unwrap();
    format!(
        "{}\n[[notify]]\nname = \"ops\"\nurl = \"webhook+http://{hook}/hook\"\nsecret_file = \"{}\"\n{extra}\n",
        one_site(primary, standby, ""),
        key.display()
    )
}
#[test]
fn a_failover_and_its_failback_reach_the_webhook_once_each_through_outages_and_a_restart() {
    let mut primary = Nginx::start("127.0.0.1", "primary");
    let standby = Nginx::start("127.0.0.2", "standby");
    let hook = Receiver::start();
    let keys = tempfile::tempdir().unwrap();
    // The first try is throttled: the message must come on the next, after Retry-After.
    hook.state.lock().unwrap().throttle = 1;
    let mut d = Daemon::start(&config(
        primary.addr,
        standby.addr,
        hook.addr,
        keys.path(),
        "events = [\"failed-over\", \"failed-back\"]",
    ));
    d.wait_standby_ready();
    assert!(
        hook.hits().is_empty(),
        "nothing happened yet: {:?}",
        hook.hits()
    );

    primary.kill();
    d.wait_answer("www.example.test", "127.0.0.2", Duration::from_secs(10));
    wait_until(Duration::from_secs(10), "the failover message", || {
        !hook.accepted().is_empty()
    });
    let hits = hook.hits();
    assert_eq!(hits[0].answered, 429);
    assert_eq!(
        hits[0].delivery, hits[1].delivery,
        "a retry is the same delivery"
    );
    let m = verified(&hook.accepted()[0]);
    assert_eq!(hook.accepted()[0].event, "failed-over");
    assert_eq!(m["kind"], "failed-over");
    assert_eq!(m["site"], "shop");
    assert_eq!(m["severity"], "warning");
    assert_eq!(m["title"], "shop failed over to the standby");
    let text = m["text"].as_str().unwrap();
    assert!(
        text.contains("127.0.0.2")
            && text.contains("TTL (30s)")
            && text.contains("after the first failed probe"),
        "{text}"
    );

    // The receiver goes down; the failback is tried, not lost.
    hook.state.lock().unwrap().down = true;
    primary.restart();
    d.wait_answer("www.example.test", "127.0.0.1", Duration::from_secs(15));
    wait_until(
        Duration::from_secs(10),
        "a try of the failback message",
        || hook.hits().iter().any(|h| h.event == "failed-back"),
    );
    // And the daemon restarts while it is undelivered.
    assert_eq!(d.stop(), 0);
    hook.state.lock().unwrap().down = false;
    d.restart_after_stop();
    wait_until(Duration::from_secs(10), "the failback message", || {
        hook.accepted().len() >= 2
    });
    std::thread::sleep(Duration::from_millis(700));
    let accepted = hook.accepted();
    let kinds: Vec<&str> = accepted.iter().map(|h| h.event.as_str()).collect();
    assert_eq!(
        kinds,
        ["failed-over", "failed-back"],
        "each once, in order: {:?}",
        hook.hits()
    );
    let back = verified(&accepted[1]);
    assert_eq!(back["severity"], "info");
    assert!(
        back["text"].as_str().unwrap().contains("It lasted"),
        "{back}"
    );
    assert_ne!(accepted[0].delivery, accepted[1].delivery);
    let tries_of_back = hook
        .hits()
        .iter()
        .filter(|h| h.delivery == accepted[1].delivery)
        .count();
    assert!(tries_of_back >= 2, "tried while down, then delivered");
}

/// The watcher is watched: its start and its stop are told (the stop before the process
/// exits), and a channel with `min_severity = "warning"` gets the stop but not the start.
#[test]
fn the_daemon_says_when_it_starts_and_stops() {
    let primary = Nginx::start("127.0.0.1", "primary");
    let standby = Nginx::start("127.0.0.2", "standby");
    let (all, urgent) = (Receiver::start(), Receiver::start());
    let keys = tempfile::tempdir().unwrap();
    let text = format!(
        "{}[[notify]]\nname = \"urgent\"\nurl = \"webhook+http://{}/hook\"\nmin_severity = \"warning\"\n",
        config(primary.addr, standby.addr, all.addr, keys.path(), ""),
        urgent.addr
    );
    let mut d = Daemon::start(&text);
    wait_until(Duration::from_secs(10), "the start message", || {
        !all.accepted().is_empty()
    });
    let started = verified(&all.accepted()[0]);
    assert_eq!(started["kind"], "daemon-started");
    assert_eq!(started["site"], "(daemon)");
    assert_eq!(d.stop(), 0);
    let kinds =
        |r: &Receiver| -> Vec<String> { r.accepted().iter().map(|h| h.event.clone()).collect() };
    assert_eq!(kinds(&all), ["daemon-started", "daemon-stopped"]);
    assert_eq!(kinds(&urgent), ["daemon-stopped"]);
    let stopped = verified(&all.accepted()[1]);
    assert_eq!(stopped["severity"], "warning");
    assert!(
        stopped["text"]
            .as_str()
            .unwrap()
            .contains("Nothing is watched"),
        "{stopped}"
    );
}

#[test]
fn notify_test_says_what_each_channel_answered() {
    let hook = Receiver::start();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let keys = tempfile::tempdir().unwrap();
    let text = format!(
        "{}[[notify]]\nname = \"dead\"\nurl = \"webhook+http://{dead_addr}/hook\"\n",
        config(
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.2:1".parse().unwrap(),
            hook.addr,
            keys.path(),
            ""
        )
    );
    let d = Daemon::prepare(&text);
    let (code, out, err) = d.cli(&["notify", "test"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("ops: delivered in"), "{out}");
    assert!(
        out.contains("dead: NOT delivered: webhook channel `dead`") && out.contains("refused"),
        "{out}"
    );
    let m = verified(&hook.accepted()[0]);
    assert_eq!(m["kind"], "test");
    assert!(!out.contains(SECRET) && !err.contains(SECRET));

    let (code, out, _) = d.cli(&["notify", "test", "ops"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(hook.accepted().len(), 2);
    let (code, _, err) = d.cli(&["notify", "test", "nosuch"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no channel is named `nosuch`; the channels are: ops, dead"),
        "{err}"
    );
}

/// aiosmtpd (PyPI), a real SMTP server, writing what it receives into a Maildir.
struct Smtp {
    addr: SocketAddr,
    maildir: tempfile::TempDir,
    child: std::process::Child,
}

impl Smtp {
    /// `tls`: "starttls" (required by the server), "smtps" (TLS from the first byte).
    fn start(tls: &str, cert: &std::path::Path, key: &std::path::Path) -> Smtp {
        let bin = std::env::var_os("UNDERSTUDY_AIOSMTPD")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/aiosmtpd")
            });
        assert!(
            bin.exists(),
            "aiosmtpd not found at {}: run `.venv/bin/pip install aiosmtpd` (bash .ci/run does this), or set UNDERSTUDY_AIOSMTPD",
            bin.display()
        );
        let port = crate::common::free_port("127.0.0.1");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let maildir = tempfile::tempdir().unwrap();
        let flags = if tls == "smtps" {
            ["--smtpscert", "--smtpskey"]
        } else {
            ["--tlscert", "--tlskey"]
        };
        let child = std::process::Command::new(bin)
            .args(["-n", "-l", &addr.to_string()])
            .args([flags[0], &cert.display().to_string()])
            .args([flags[1], &key.display().to_string()])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.path().join("box"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_until(Duration::from_secs(20), "aiosmtpd listening", || {
            std::net::TcpStream::connect(addr).is_ok()
        });
        Smtp {
            addr,
            maildir,
            child,
        }
    }

    /// Every mail received, as text.
    fn mails(&self) -> Vec<String> {
        let new = self.maildir.path().join("box/new");
        let mut out: Vec<String> = std::fs::read_dir(new)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect();
        out.sort();
        out
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn mail_goes_out_over_starttls_and_implicit_tls_to_a_real_smtp_server() {
    let ca = crate::common::ca::Ca::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = ca.issue("127.0.0.1");
    let (cert_f, key_f, ca_f) = (
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
        dir.path().join("ca.pem"),
    );
    std::fs::write(&cert_f, cert).unwrap();
    std::fs::write(&key_f, key).unwrap();
    std::fs::write(&ca_f, ca.pem()).unwrap();
    for (tls, encryption) in [("starttls", "explicittls"), ("smtps", "implicittls")] {
        let smtp = Smtp::start(tls, &cert_f, &key_f);
        let text = format!(
            "{}[[notify]]\nname = \"mail\"\nurl = \"smtp://{}/?fromaddress=understudy@example.test&toaddresses=ops@example.test,me@example.test&encryption={encryption}\"\nca_file = \"{}\"\n",
            one_site("127.0.0.1:1".parse().unwrap(), "127.0.0.2:1".parse().unwrap(), ""),
            smtp.addr,
            ca_f.display()
        );
        let d = Daemon::prepare(&text);
        let (code, out, err) = d.cli(&["notify", "test"]);
        assert_eq!(code, 0, "{tls}: {out}{err}");
        assert!(out.contains("mail: delivered in"), "{out}");
        let mails = smtp.mails();
        assert_eq!(mails.len(), 1, "{tls}: {mails:?}");
        let m = &mails[0];
        // The server's certificate is checked: without the CA that issued it, nothing is sent.
        let d = Daemon::prepare(&text.replace(&format!("ca_file = \"{}\"\n", ca_f.display()), ""));
        let (code, out, _) = d.cli(&["notify", "test"]);
        assert_eq!(code, 1, "{tls}: {out}");
        assert!(out.contains("mail: NOT delivered"), "{out}");
        assert_eq!(smtp.mails().len(), 1);
        for part in [
            "Subject: [understudy] understudy test message",
            "From: understudy@example.test",
            "ops@example.test",
            "me@example.test",
            "X-Understudy-Event: test",
            "This channel is set up",
        ] {
            assert!(m.contains(part), "{tls}: {part:?} missing from:\n{m}");
        }
    }
}

/// ntfy, to a receiver that answers as ntfy's publish API documents: the topic is the path,
/// title and priority are headers, the access token a bearer token, the text the body; an
/// unauthorized token gets 401 with ntfy's JSON error and is reported, not retried.
#[test]
fn ntfy_gets_the_title_a_priority_and_the_token() {
    let ntfy = Receiver::start();
    let keys = tempfile::tempdir().unwrap();
    std::fs::write(keys.path().join("ntfy.token"), "tk_understudytesttoken\n").unwrap();
    let text = format!(
        "{}[[notify]]\nname = \"phone\"\nurl = \"ntfy://{}/alerts?scheme=http\"\nsecret_file = \"{}\"\n",
        one_site("127.0.0.1:1".parse().unwrap(), "127.0.0.2:1".parse().unwrap(), ""),
        ntfy.addr,
        keys.path().join("ntfy.token").display()
    );
    let d = Daemon::prepare(&text);
    let (code, out, err) = d.cli(&["notify", "test"]);
    assert_eq!(code, 0, "{out}{err}");
    let h = &ntfy.accepted()[0];
    assert_eq!(h.path, "/alerts");
    assert_eq!(h.title.as_deref(), Some("understudy test message"));
    assert_eq!(h.priority.as_deref(), Some("default"));
    assert_eq!(
        h.authorization.as_deref(),
        Some("Bearer tk_understudytesttoken")
    );
    assert!(String::from_utf8_lossy(&h.body).contains("This channel is set up"));

    ntfy.state.lock().unwrap().refuse = Some((
        401,
        r#"{"code":40101,"http":401,"error":"unauthorized","link":"https://ntfy.sh/docs/publish/#authentication"}"#,
    ));
    let (code, out, _) = d.cli(&["notify", "test", "phone"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("phone: NOT delivered: ntfy channel `phone` answered 401 Unauthorized")
            && out.contains("unauthorized"),
        "{out}"
    );
    assert!(!out.contains("tk_understudytesttoken"), "{out}");
}
