//! Real authoritative servers for the provider tests: BIND 9 (`named`) and Knot (`knotd`), each
//! started in the foreground on 127.0.0.1 with an ephemeral port, a fresh zone and a TSIG key
//! made by `tsig-keygen`, and stopped by PID.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, need};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bind,
    Knot,
}

pub struct AuthServer {
    pub kind: Kind,
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    /// The key file as tsig-keygen wrote it.
    pub key_file: PathBuf,
    /// The key's secret, for `nsupdate -y` in the propagation benchmark.
    #[allow(dead_code)]
    pub key_secret: String,
    child: Option<Child>,
}

/// The zone every test starts from: records understudy does not own, at and beside the names
/// it will manage.
pub const ZONE: &str = "$TTL 300
@       IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 1209600 30
@       IN NS  ns1.example.test.
ns1     IN A   127.0.0.1
@       IN MX  10 mail.example.test.
mail    IN A   192.0.2.25
www     IN TXT \"not managed by understudy\"
";

/// BIND's `named.conf` in `dir`: authoritative only, on 127.0.0.1:`port`, `options` added to
/// its options, `keys` (key statements) after them, and `example.test` as primary from
/// `dir/example.test.zone` with `zone_options`.
fn write_named_conf(
    dir: &std::path::Path,
    port: u16,
    options: &str,
    keys: &str,
    zone_options: &str,
) {
    let d = dir.display();
    std::fs::write(
        dir.join("named.conf"),
        format!(
            "options {{\n directory \"{d}\";\n listen-on port {port} {{ 127.0.0.1; }};\n listen-on-v6 {{ none; }};\n pid-file \"{d}/named.pid\";\n \
             session-keyfile \"{d}/session.key\";\n recursion no;\n dnssec-validation no;\n notify no;\n {options}\n}};\ncontrols {{ }};\n{keys}\n\
             zone \"example.test\" {{ type primary; file \"{d}/example.test.zone\"; {zone_options} }};\n"
        ),
    )
    .unwrap();
}

/// A TSIG key named `name` made by BIND's `tsig-keygen`, written to `dir/<name>.key` as the
/// tool wrote it: its path and its base64 secret. The one key maker of the tests and benches.
pub fn tsig_keygen(dir: &std::path::Path, name: &str, algorithm: &str) -> (PathBuf, String) {
    need("tsig-keygen", "bind9");
    let out = Command::new(if std::path::Path::new("/usr/sbin/tsig-keygen").exists() {
        "/usr/sbin/tsig-keygen"
    } else {
        "tsig-keygen"
    })
    .args(["-a", algorithm, name])
    .output()
    .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let secret = text
        .split("secret \"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let path = dir.join(format!("{name}.key"));
    std::fs::write(&path, &text).unwrap();
    (path, secret)
}

impl AuthServer {
    pub fn start(kind: Kind, algorithm: &str) -> AuthServer {
        AuthServer::start_inner(kind, algorithm, &[])
    }

    /// A primary that also lets its key transfer the zone and sends NOTIFY, signed with it, to
    /// each of `secondaries` on every change (understudy as its secondary; the reference of
    /// `bench/dns-secondaries`). Its key, `understudy`, is the one they must hold.
    #[allow(dead_code, reason = "the replica tests and a bench use it")]
    pub fn start_notifying(kind: Kind, algorithm: &str, secondaries: &[SocketAddr]) -> AuthServer {
        AuthServer::start_inner(kind, algorithm, secondaries)
    }

    /// BIND or Knot serving `zone` (zone-file text of `example.test`) as its primary; for
    /// BIND, `bind_options` is added to its `options` block. The reference the conformance test
    /// and `bench/dns-serve` ask beside understudy.
    #[allow(dead_code, reason = "the conformance test and a bench use it")]
    pub fn serving(kind: Kind, zone: &str, bind_options: &str) -> AuthServer {
        let dir = tempfile::tempdir().unwrap();
        let (key_file, key_secret) = tsig_keygen(dir.path(), "understudy", "hmac-sha256");
        let port = free_port("127.0.0.1");
        std::fs::write(dir.path().join("example.test.zone"), zone).unwrap();
        let d = dir.path().display().to_string();
        match kind {
            Kind::Bind => {
                need("named", "bind9");
                write_named_conf(dir.path(), port, bind_options, "", "");
            }
            Kind::Knot => {
                need("knotd", "knot");
                std::fs::create_dir_all(dir.path().join("db")).unwrap();
                std::fs::write(
                    dir.path().join("knot.conf"),
                    format!(
                        "server:\n  listen: 127.0.0.1@{port}\n  rundir: {d}\n\
                         database:\n  storage: {d}/db\n\
                         log:\n  - target: stderr\n    any: warning\n\
                         zone:\n  - domain: example.test\n    file: {d}/example.test.zone\n    zonefile-sync: -1\n    journal-content: none\n"
                    ),
                )
                .unwrap();
            }
        }
        AuthServer::run(kind, dir, port, key_file, key_secret)
    }

    /// Starts the server configured in `dir` on `port` and waits until it answers.
    fn run(
        kind: Kind,
        dir: tempfile::TempDir,
        port: u16,
        key_file: PathBuf,
        key_secret: String,
    ) -> AuthServer {
        let mut s = AuthServer {
            kind,
            dir,
            addr: SocketAddr::new("127.0.0.1".parse().unwrap(), port),
            key_file,
            key_secret,
            child: None,
        };
        s.restart();
        s
    }

    /// The server's process id (for its CPU time).
    #[allow(dead_code, reason = "a bench uses it")]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    fn start_inner(kind: Kind, algorithm: &str, notify: &[SocketAddr]) -> AuthServer {
        match kind {
            Kind::Bind => need("named", "bind9"),
            Kind::Knot => need("knotd", "knot"),
        }
        let dir = tempfile::tempdir().unwrap();
        let (key_file, key_secret) = tsig_keygen(dir.path(), "understudy", algorithm);
        let port = free_port("127.0.0.1");
        std::fs::write(dir.path().join("example.test.zone"), ZONE).unwrap();
        let d = dir.path().display().to_string();
        match kind {
            Kind::Bind => {
                let key = std::fs::read_to_string(&key_file).unwrap();
                let xfr = match notify {
                    [] => String::new(),
                    to => format!(
                        "allow-transfer {{ key \"understudy\"; }}; notify explicit; also-notify {{ {} }};",
                        to.iter()
                            .map(|a| format!("{} port {} key \"understudy\";", a.ip(), a.port()))
                            .collect::<String>()
                    ),
                };
                let zone = format!("allow-update {{ key \"understudy\"; }}; {xfr}");
                write_named_conf(dir.path(), port, "", &key, &zone);
            }
            Kind::Knot => {
                std::fs::create_dir_all(dir.path().join("db")).unwrap();
                let (remote, notify) = match notify {
                    [] => (String::new(), String::new()),
                    to => (
                        to.iter()
                            .enumerate()
                            .map(|(i, a)| {
                                format!(
                                    "  - id: replica{i}\n    address: {}@{}\n    key: understudy\n",
                                    a.ip(),
                                    a.port()
                                )
                            })
                            .fold("remote:\n".to_string(), |acc, r| acc + &r),
                        format!(
                            "    notify: [{}]\n",
                            (0..to.len())
                                .map(|i| format!("replica{i}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ),
                };
                std::fs::write(
                    dir.path().join("knot.conf"),
                    format!(
                        "server:\n  listen: 127.0.0.1@{port}\n  rundir: {d}\n\
                         database:\n  storage: {d}/db\n\
                         log:\n  - target: stderr\n    any: info\n\
                         key:\n  - id: understudy\n    algorithm: {algorithm}\n    secret: {key_secret}\n\
                         {remote}\
                         acl:\n  - id: update\n    key: understudy\n    action: update\n  - id: xfr\n    key: understudy\n    action: transfer\n\
                         zone:\n  - domain: example.test\n    file: {d}/example.test.zone\n    acl: [update, xfr]\n{notify}    zonefile-sync: -1\n    zonefile-load: difference-no-serial\n    journal-content: all\n    semantic-checks: off\n"
                    ),
                )
                .unwrap();
            }
        }
        AuthServer::run(kind, dir, port, key_file, key_secret)
    }

    /// (Re)starts the server and waits until it answers for the zone.
    pub fn restart(&mut self) {
        let d = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("server.log"))
            .unwrap();
        let mut cmd = match self.kind {
            Kind::Bind => {
                let mut c = Command::new("/usr/sbin/named");
                c.args(["-g", "-n", "1", "-c"]).arg(d.join("named.conf"));
                c
            }
            Kind::Knot => {
                let mut c = Command::new("/usr/sbin/knotd");
                c.arg("-c").arg(d.join("knot.conf"));
                c
            }
        };
        self.child = Some(cmd.stdout(Stdio::null()).stderr(log).spawn().unwrap());
        super::wait(
            Duration::from_secs(20),
            || format!("{:?} to start on {}:\n{}", self.kind, self.addr, self.log()),
            || self.serial(),
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// An edit by hand: `updates` (nsupdate's `update ...` lines) sent with BIND's own
    /// `nsupdate` and the zone's key, in one UPDATE.
    #[allow(dead_code, reason = "not every test binary or bench edits by hand")]
    pub fn update(&self, updates: &str) {
        super::need("nsupdate", "bind9-dnsutils");
        let script = format!(
            "server {} {}\nzone example.test\n{updates}send\n",
            self.addr.ip(),
            self.addr.port()
        );
        let mut child = Command::new("nsupdate")
            .arg("-k")
            .arg(&self.key_file)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        assert!(
            child.wait().unwrap().success(),
            "nsupdate to {:?}",
            self.kind
        );
    }

    /// The zone's SOA serial, if the server answers.
    pub fn serial(&self) -> Option<u32> {
        let r = super::query(
            self.addr,
            "example.test",
            hickory_proto::rr::RecordType::SOA,
        )
        .ok()?;
        r.message.answers.iter().find_map(|a| match &a.data {
            hickory_proto::rr::RData::SOA(s) => Some(s.serial),
            _ => None,
        })
    }

    /// The rdata strings of `name`/`t`, sorted.
    pub fn rdata(&self, name: &str, t: hickory_proto::rr::RecordType) -> Vec<String> {
        let r = super::query(self.addr, name, t).unwrap();
        let mut v: Vec<String> = r
            .message
            .answers
            .iter()
            .filter(|a| a.record_type() == t)
            .map(|a| a.data.to_string())
            .collect();
        v.sort();
        v
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- {:?} log ----\n{}", self.kind, self.log());
        }
        self.stop();
    }
}
