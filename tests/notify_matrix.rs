//! Matrix notifications against a real homeserver: Synapse (PyPI `matrix-synapse`, installed
//! into `.venv` by `.ci/run`), started by the test on a loopback port with no federation and
//! no key servers, so it talks to nobody but this test and understudy.
//!
//! understudy logs in as a user with its password (or uses an access token), joins the room by
//! its alias or id, and posts; the test reads the room's timeline back as a client would.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{wait_until, Daemon, Nginx};

const BOT_PASSWORD: &str = "bot-password-not-shown";
const SHARED: &str = "registration-shared-secret-for-tests";

struct Synapse {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    child: Child,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

fn venv_bin(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(".venv/bin")
        .join(name)
}

impl Synapse {
    fn start() -> Synapse {
        let bin = std::env::var_os("UNDERSTUDY_SYNAPSE")
            .map(PathBuf::from)
            .unwrap_or_else(|| venv_bin("synapse_homeserver"));
        assert!(
            bin.exists(),
            "Synapse not found at {}: run `.venv/bin/pip install matrix-synapse` (bash .ci/run does this), or set UNDERSTUDY_SYNAPSE",
            bin.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let port = crate::common::free_port("127.0.0.1");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let d = dir.path().display();
        // No federation listener, no trusted key servers (nothing is fetched from matrix.org),
        // no metrics, no registration but by the shared secret.
        let config = format!(
            r#"server_name: "localhost"
pid_file: "{d}/homeserver.pid"
listeners:
  - port: {port}
    bind_addresses: ["127.0.0.1"]
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: "{d}/homeserver.db"
media_store_path: "{d}/media"
signing_key_path: "{d}/signing.key"
registration_shared_secret: "{SHARED}"
report_stats: false
trusted_key_servers: []
suppress_key_server_warning: true
enable_metrics: false
url_preview_enabled: false
"#
        );
        let cfg = dir.path().join("homeserver.yaml");
        std::fs::write(&cfg, config).unwrap();
        let status = Command::new(&bin)
            .args(["-c", &cfg.display().to_string(), "--generate-keys"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "synapse --generate-keys failed");
        let log = std::fs::File::create(dir.path().join("out.log")).unwrap();
        let child = Command::new(&bin)
            .args(["-c", &cfg.display().to_string()])
            .current_dir(dir.path())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let rt = crate::common::rt();
        let http = understudy::http::client_with_ca(Duration::from_secs(10), None).unwrap();
        let s = Synapse {
            addr,
            dir,
            child,
            rt,
            http,
        };
        wait_until(Duration::from_secs(60), "synapse answering", || {
            s.call("GET", "/_matrix/client/versions", None, None).0 == 200
        });
        s
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("out.log")).unwrap_or_default()
    }

    /// One client-server API call: status and JSON body.
    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("http://{}{path}", self.addr);
        self.rt.block_on(async {
            let mut req = self.http.request(method.parse().unwrap(), url);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            if let Some(b) = body {
                req = req.json(&b);
            }
            match req.send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    (status, r.json().await.unwrap_or(Value::Null))
                }
                Err(_) => (0, Value::Null),
            }
        })
    }

    /// Registers `user` (by the shared secret, as an admin would) and logs it in.
    fn user(&self, user: &str, password: &str) -> String {
        let out = Command::new(venv_bin("register_new_matrix_user"))
            .args(["-u", user, "-p", password, "--no-admin", "-k", SHARED])
            .arg(format!("http://{}", self.addr))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}\n{}", self.log());
        let (status, body) = self.call(
            "POST",
            "/_matrix/client/v3/login",
            None,
            Some(json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": password})),
        );
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    /// The bodies of the room's text messages, oldest first.
    fn messages(&self, token: &str, room: &str) -> Vec<String> {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/messages?dir=b&limit=100",
            room.replace('!', "%21").replace(':', "%3A")
        );
        let (status, body) = self.call("GET", &path, Some(token), None);
        assert_eq!(status, 200, "{body}");
        let mut out: Vec<String> = body["chunk"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "m.room.message")
            .filter_map(|e| e["content"]["body"].as_str().map(str::to_string))
            .collect();
        out.reverse();
        out
    }
}

impl Drop for Synapse {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- synapse log ----\n{}", self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_failover_reaches_a_matrix_room_on_a_real_homeserver() {
    let hs = Synapse::start();
    // The operator's own account makes the room and invites nobody: understudy's user joins
    // it by its alias, since the room is public.
    let owner = hs.user("owner", "owner-password");
    let (status, room) = hs.call(
        "POST",
        "/_matrix/client/v3/createRoom",
        Some(&owner),
        Some(json!({"room_alias_name": "ops", "preset": "public_chat", "name": "ops"})),
    );
    assert_eq!(status, 200, "{room}");
    let room_id = room["room_id"].as_str().unwrap().to_string();
    let bot_token = hs.user("understudy", BOT_PASSWORD);

    let mut primary = Nginx::start("127.0.0.1", "primary");
    let standby = Nginx::start("127.0.0.2", "standby");
    let keys = tempfile::tempdir().unwrap();
    std::fs::write(keys.path().join("pw"), format!("{BOT_PASSWORD}\n")).unwrap();
    std::fs::write(keys.path().join("token"), format!("{bot_token}\n")).unwrap();
    let text = format!(
        "{}\n[[notify]]\nname = \"room\"\nurl = \"matrix://understudy@{}/?rooms=%23ops:localhost&disabletls=yes\"\nsecret_file = \"{}\"\nevents = [\"failed-over\"]\ngroup_wait = \"0s\"\n\
         [[notify]]\nname = \"by-token\"\nurl = \"matrix://{}/?rooms={room_id}&disabletls=yes\"\nsecret_file = \"{}\"\nevents = []\n",
        crate::common::one_site(primary.addr, standby.addr, ""),
        hs.addr,
        keys.path().join("pw").display(),
        hs.addr,
        keys.path().join("token").display(),
    );
    let mut d = Daemon::start(&text);
    let (code, out, err) = d.cli(&["notify", "test"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("room: delivered in") && out.contains("by-token: delivered in"),
        "{out}"
    );
    let got = hs.messages(&owner, &room_id);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got.iter()
            .all(|m| m.starts_with("understudy test message\n\n")),
        "{got:?}"
    );

    d.fail_over(&mut primary);
    wait_until(Duration::from_secs(15), "the failover in the room", || {
        hs.messages(&owner, &room_id).len() == 3
    });
    let last = hs.messages(&owner, &room_id).pop().unwrap();
    assert!(
        last.starts_with("shop failed over to the standby\n\n"),
        "{last}"
    );
    assert!(last.contains("127.0.0.2"), "{last}");
    assert_eq!(d.stop(), 0);
    let log = d.log();
    assert!(
        !log.contains(BOT_PASSWORD) && !log.contains(&bot_token),
        "a secret in the log"
    );

    // A wrong password is refused by the homeserver, and said so.
    std::fs::write(keys.path().join("pw"), "not-the-password\n").unwrap();
    let (code, out, _) = d.cli(&["notify", "test", "room"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("room: NOT delivered: matrix channel `room` answered 403 Forbidden")
            && out.contains("M_FORBIDDEN")
            && out.contains("(login)"),
        "{out}"
    );
}
