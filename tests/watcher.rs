//! The watcher watched (issue 14): a watcher whose own link is cut does not fail sites over
//! (it abstains), and says so once its link is back; its heartbeat pings while all is well and
//! stops when it is offline.
//!
//! The daemon runs in a network namespace this test makes, with two links to this machine's
//! namespace: the *uplink* (10.231.0.0/30: the primary and the reference address behind it)
//! and a *local* link (10.232.0.0/30: the standby, as on the standby machine's own LAN).
//! Cutting the uplink is the watcher's own link failing while nothing else did.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;

use crate::common::netns::Netns;
use crate::common::{wait_until, Nginx};

const PRIMARY_IP: &str = "10.231.0.1";
const STANDBY_IP: &str = "10.232.0.1";

struct Lab {
    ns: Netns,
    uplink: String,
}

impl Lab {
    fn new() -> Lab {
        crate::common::need("dig", "bind9-dnsutils");
        let ns = Netns::new("us-watch");
        let n = std::process::id() % 100_000;
        let uplink = format!("usu{n}n");
        ns.link(
            &format!("usu{n}r"),
            "10.231.0.1/30",
            &uplink,
            "10.231.0.2/30",
        );
        ns.link(
            &format!("usl{n}r"),
            "10.232.0.1/30",
            &format!("usl{n}n"),
            "10.232.0.2/30",
        );
        Lab { ns, uplink }
    }

    fn uplink(&self, up: bool) {
        let state = if up { "up" } else { "down" };
        self.ns
            .ip(&["-n", &self.ns.name, "link", "set", &self.uplink, state]);
    }
}

fn config(dir: &Path, primary: SocketAddr, standby: SocketAddr, watcher: &str) {
    let text = format!(
        r#"data_dir = "{}"
[dns]
listen = ["127.0.0.1:0"]
[[dns.zones]]
name = "example.test"
[api]
listen = "127.0.0.1:0"
[watcher]
{watcher}
[[sites]]
name = "shop"
domain = "www.example.test"
primary = "{primary}"
standby = "{standby}"
[sites.probe]
scheme = "http"
interval = "200ms"
timeout = "300ms"
failures_to_down = 3
successes_to_up = 2
hold_down = "1s"
"#,
        dir.join("data").display()
    );
    std::fs::write(dir.join("c.toml"), text).unwrap();
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("log")).unwrap_or_default()
}

#[test]
fn a_cut_of_the_watchers_own_link_fails_nothing_over() {
    let lab = Lab::new();
    let mut primary = Nginx::start(PRIMARY_IP, "primary");
    let standby = Nginx::start(STANDBY_IP, "standby");
    let reference = TcpListener::bind((PRIMARY_IP, 0)).unwrap();
    let ref_addr = reference.local_addr().unwrap();
    let answer = |dns: SocketAddr| lab.ns.dig(dns, "www.example.test", "A");
    let settle = |dns: SocketAddr, want: &str, limit: u64| {
        wait_until(
            Duration::from_secs(limit),
            &format!("the answer {want}"),
            || answer(dns) == want,
        )
    };

    // Without references, the cut looks like the primary failing: a false failover. (This is
    // what the abstention below prevents; it shows the lab can fail a site over.)
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), primary.addr, standby.addr, "references = []");
    let (d, info) = lab.ns.start_daemon(dir.path());
    settle(info.dns[0], PRIMARY_IP, 10);
    std::thread::sleep(Duration::from_secs(2)); // the standby probed ready
    lab.uplink(false);
    settle(info.dns[0], STANDBY_IP, 10);
    lab.uplink(true);
    drop(d);

    // With the reference behind the same uplink, the cut is the watcher's own: it abstains.
    let dir = tempfile::tempdir().unwrap();
    config(
        dir.path(),
        primary.addr,
        standby.addr,
        &format!("references = [\"{ref_addr}\"]\ncheck_every = \"1s\""),
    );
    let (d, info) = lab.ns.start_daemon(dir.path());
    settle(info.dns[0], PRIMARY_IP, 10);
    std::thread::sleep(Duration::from_secs(2));
    lab.uplink(false);
    let cut = Instant::now();
    wait_until(
        Duration::from_secs(10),
        "watcher offline in the log",
        || log(dir.path()).contains("watcher offline"),
    );
    while cut.elapsed() < Duration::from_secs(4) {
        assert_eq!(
            answer(info.dns[0]),
            PRIMARY_IP,
            "failed over although only the watcher's link was cut:\n{}",
            log(dir.path())
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    lab.uplink(true);
    wait_until(Duration::from_secs(10), "watcher online in the log", || {
        log(dir.path()).contains("watcher online again")
    });
    assert_eq!(answer(info.dns[0]), PRIMARY_IP);
    let store = understudy::store::Store::open_read_only(&dir.path().join("data"))
        .unwrap()
        .expect("a state database");
    let told: Vec<_> = store
        .events(None, 100)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "watcher-offline")
        .collect();
    assert_eq!(told.len(), 1, "one event for the spell: {told:?}");
    assert!(told[0].reason.contains("were not acted on"), "{told:?}");
    assert!(
        store
            .events(Some("shop"), 100)
            .unwrap()
            .iter()
            .all(|e| e.kind != "failed-over"),
        "no failover was recorded"
    );

    // A real outage, with the link up, still fails over.
    primary.kill();
    settle(info.dns[0], STANDBY_IP, 10);
    drop(d);
    drop(reference);
}

#[test]
fn the_heartbeat_pings_while_all_is_well() {
    let hits: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let h = hits.clone();
    let (addr, _rt) = crate::common::http_server(move |req| {
        let h = h.clone();
        async move {
            h.lock()
                .unwrap()
                .push((Instant::now(), req.uri().path().to_string()));
            hyper::Response::new(Full::new(Bytes::from_static(b"OK")))
        }
    });
    let keys = tempfile::tempdir().unwrap();
    let url_file = keys.path().join("hb.url");
    std::fs::write(&url_file, format!("http://{addr}/ping/6f1c-secret-uuid\n")).unwrap();
    let text = format!(
        "{}[watcher]\nreferences = []\nheartbeat_url_file = \"{}\"\nheartbeat_every = \"1s\"\n",
        crate::common::preamble(&["example.test"]).replace(crate::common::NO_REFERENCES, ""),
        url_file.display()
    );
    let mut d = crate::common::Daemon::start(&text);
    wait_until(Duration::from_secs(10), "three heartbeats", || {
        hits.lock().unwrap().len() >= 3
    });
    let got = hits.lock().unwrap().clone();
    assert!(
        got.iter().all(|(_, p)| p == "/ping/6f1c-secret-uuid"),
        "{got:?}"
    );
    let gap = got[2].0 - got[1].0;
    assert!(
        gap >= Duration::from_millis(900) && gap < Duration::from_secs(3),
        "every second: {gap:?}"
    );
    let (_, shown, _) = d.cli(&["check-config"]);
    assert!(
        shown.contains("heartbeat_url_file") && !shown.contains("secret-uuid"),
        "{shown}"
    );
    assert!(!d.log().contains("secret-uuid"));
    // Stopped, it pings no more: the silence is what the switch notices.
    assert_eq!(d.stop(), 0);
    let n = hits.lock().unwrap().len();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(hits.lock().unwrap().len(), n);
}

/// Issue 14, left from its first pass: while the watcher's own link is down (its references
/// stop answering) the heartbeat is silent, so the dead man's switch elsewhere fires; it pings
/// again once the link is back.
#[test]
fn the_heartbeat_stops_while_the_watcher_is_offline() {
    let hits: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let h = hits.clone();
    let (addr, _rt) = crate::common::http_server(move |_req| {
        let h = h.clone();
        async move {
            h.lock().unwrap().push(Instant::now());
            hyper::Response::new(Full::new(Bytes::from_static(b"OK")))
        }
    });
    // The reference: a listener of the test's own, dropped to cut the "link".
    let reference = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ref_addr = reference.local_addr().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let url_file = keys.path().join("hb.url");
    std::fs::write(&url_file, format!("http://{addr}/ping/x\n")).unwrap();
    let text = format!(
        "{}[watcher]\nreferences = [\"{ref_addr}\"]\ncheck_every = \"1s\"\nheartbeat_url_file = \"{}\"\nheartbeat_every = \"1s\"\n",
        crate::common::preamble(&["example.test"]).replace(crate::common::NO_REFERENCES, ""),
        url_file.display()
    );
    let d = crate::common::Daemon::start(&text);
    wait_until(
        Duration::from_secs(10),
        "two heartbeats while online",
        || hits.lock().unwrap().len() >= 2,
    );
    drop(reference);
    // Within a round (1 s) and a beat (1 s) the pings stop, and stay stopped.
    std::thread::sleep(Duration::from_millis(2_500));
    let n = hits.lock().unwrap().len();
    std::thread::sleep(Duration::from_millis(3_000));
    assert_eq!(
        hits.lock().unwrap().len(),
        n,
        "no heartbeat while no reference answers\n{}",
        d.log()
    );
    // The link back (the same address answers again): the pings resume.
    let _back = std::net::TcpListener::bind(ref_addr).unwrap();
    wait_until(Duration::from_secs(10), "the heartbeat to resume", || {
        hits.lock().unwrap().len() > n
    });
}
