//! Real secondaries of the built-in server: BIND 9 (`named`), Knot (`knotd`) and PowerDNS
//! (`pdns_server`, sqlite3 backend), each on 127.0.0.1 with an ephemeral port, taking the zone
//! `example.test` from a primary by AXFR/IXFR with its own TSIG key (made by `tsig-keygen`),
//! accepting NOTIFY from it, and allowing `dig AXFR` from loopback so the tests can compare
//! what each holds. Stopped by PID.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, need};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecondaryKind {
    Bind,
    Knot,
    Pdns,
}

pub struct Secondary {
    pub kind: SecondaryKind,
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub key_name: String,
    pub key_file: PathBuf,
    pub secret: String,
    child: Option<Child>,
}

impl Secondary {
    /// Picks a port and makes a TSIG key named `key_name`; [`Secondary::start`] starts it.
    pub fn prepare(kind: SecondaryKind, key_name: &str) -> Secondary {
        match kind {
            SecondaryKind::Bind => need("named", "bind9"),
            SecondaryKind::Knot => need("knotd", "knot"),
            SecondaryKind::Pdns => need("pdns_server", "pdns-server"),
        }
        let dir = tempfile::tempdir().unwrap();
        let (key_file, secret) = super::authdns::tsig_keygen(dir.path(), key_name, "hmac-sha256");
        Secondary {
            kind,
            addr: SocketAddr::new("127.0.0.1".parse().unwrap(), free_port("127.0.0.1")),
            dir,
            key_name: key_name.to_string(),
            key_file,
            secret,
            child: None,
        }
    }

    /// The same key name with another secret: a secondary whose key is wrong.
    pub fn with_wrong_secret(mut self) -> Secondary {
        self.secret = "d3Jvbmcgc2VjcmV0IHdyb25nIHNlY3JldCB3cm9uZyE=".to_string();
        self
    }

    /// Holds the key `name` with `secret` instead of its own (a primary with one key for all
    /// its secondaries: BIND or Knot as `bench/dns-secondaries`' reference).
    #[allow(dead_code, reason = "only the bench's reference uses it")]
    pub fn with_key(mut self, name: &str, secret: &str) -> Secondary {
        self.key_name = name.to_string();
        self.secret = secret.to_string();
        self
    }

    /// Writes its config for `primary` and starts it (it then asks the primary for the zone).
    pub fn start(&mut self, primary: SocketAddr) {
        let d = self.dir.path().display().to_string();
        let (port, pip, pport) = (self.addr.port(), primary.ip(), primary.port());
        let (key, secret) = (&self.key_name, &self.secret);
        match self.kind {
            SecondaryKind::Bind => std::fs::write(
                self.dir.path().join("named.conf"),
                format!(
                    "options {{\n directory \"{d}\";\n listen-on port {port} {{ 127.0.0.1; }};\n listen-on-v6 {{ none; }};\n \
                     pid-file \"{d}/named.pid\";\n session-keyfile \"{d}/session.key\";\n recursion no;\n dnssec-validation no;\n \
                     notify no;\n allow-transfer {{ 127.0.0.1; }};\n}};\ncontrols {{ }};\n\
                     key \"{key}\" {{ algorithm hmac-sha256; secret \"{secret}\"; }};\n\
                     zone \"example.test\" {{ type secondary; file \"{d}/example.test.bak\"; \
                     primaries {{ {pip} port {pport} key \"{key}\"; }}; allow-notify {{ {pip}; }}; }};\n"
                ),
            )
            .unwrap(),
            SecondaryKind::Knot => {
                std::fs::create_dir_all(self.dir.path().join("db")).unwrap();
                std::fs::write(
                    self.dir.path().join("knot.conf"),
                    format!(
                        "server:\n  listen: 127.0.0.1@{port}\n  rundir: {d}\n\
                         database:\n  storage: {d}/db\n\
                         log:\n  - target: stderr\n    any: info\n\
                         key:\n  - id: {key}\n    algorithm: hmac-sha256\n    secret: {secret}\n\
                         remote:\n  - id: primary\n    address: {pip}@{pport}\n    key: {key}\n\
                         acl:\n  - id: notify_from_primary\n    address: {pip}\n    key: {key}\n    action: notify\n\
                         \x20 - id: transfer_out\n    address: 127.0.0.1\n    action: transfer\n\
                         zone:\n  - domain: example.test\n    master: primary\n    acl: [notify_from_primary, transfer_out]\n    \
                         file: {d}/example.test.zone\n    zonefile-sync: -1\n    journal-content: changes\n"
                    ),
                )
                .unwrap();
            }
            SecondaryKind::Pdns => {
                let schema = "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql";
                let conn = rusqlite::Connection::open(self.dir.path().join("pdns.sqlite3")).unwrap();
                conn.execute_batch(&std::fs::read_to_string(schema).unwrap())
                    .unwrap();
                conn.execute(
                    "INSERT INTO domains (name, type, master) VALUES ('example.test', 'SLAVE', ?1)",
                    [primary.to_string()],
                )
                .unwrap();
                conn.execute(
                    "INSERT INTO tsigkeys (name, algorithm, secret) VALUES (?1, 'hmac-sha256', ?2)",
                    [key, secret],
                )
                .unwrap();
                conn.execute(
                    "INSERT INTO domainmetadata (domain_id, kind, content) VALUES (1, 'AXFR-MASTER-TSIG', ?1)",
                    [key],
                )
                .unwrap();
                std::fs::write(
                    self.dir.path().join("pdns.conf"),
                    format!(
                        "launch=gsqlite3\ngsqlite3-database={d}/pdns.sqlite3\nlocal-address=127.0.0.1\nlocal-port={port}\n\
                         secondary=yes\nallow-axfr-ips=127.0.0.0/8\nallow-notify-from=127.0.0.0/8\n\
                         security-poll-suffix=\ncache-ttl=0\nquery-cache-ttl=0\nnegquery-cache-ttl=0\nsocket-dir={d}\n\
                         daemon=no\nguardian=no\ndisable-syslog=yes\nloglevel=6\nwebserver=no\napi=no\n"
                    ),
                )
                .unwrap();
            }
        }
        self.spawn();
    }

    fn spawn(&mut self) {
        let d = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("server.log"))
            .unwrap();
        let mut cmd = match self.kind {
            SecondaryKind::Bind => {
                let mut c = Command::new("/usr/sbin/named");
                c.args(["-g", "-n", "1", "-c"]).arg(d.join("named.conf"));
                c
            }
            SecondaryKind::Knot => {
                let mut c = Command::new("/usr/sbin/knotd");
                c.arg("-c").arg(d.join("knot.conf"));
                c
            }
            SecondaryKind::Pdns => {
                let mut c = Command::new("/usr/sbin/pdns_server");
                c.arg(format!("--config-dir={}", d.display()));
                c
            }
        };
        self.child = Some(cmd.stdout(Stdio::null()).stderr(log).spawn().unwrap());
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

    /// The addresses it answers for `name` A, sorted (empty while it has no zone).
    pub fn a(&self, name: &str) -> Vec<String> {
        let Ok(r) = super::query(self.addr, name, hickory_proto::rr::RecordType::A) else {
            return vec![];
        };
        let mut v: Vec<String> = r
            .message
            .answers
            .iter()
            .filter(|a| a.record_type() == hickory_proto::rr::RecordType::A)
            .map(|a| a.data.to_string())
            .collect();
        v.sort();
        v
    }

    /// The zone as `dig AXFR` gets it from this secondary, normalized ([`axfr_lines`]).
    pub fn axfr(&self) -> Vec<String> {
        axfr_lines(self.addr, None)
    }
}

impl Drop for Secondary {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- {:?} secondary log ----\n{}", self.kind, self.log());
        }
        self.stop();
    }
}

/// What `dig AXFR example.test` from `server` (signed with `key` = "name:secret") prints.
fn dig_axfr(server: SocketAddr, key: Option<&str>) -> String {
    need("dig", "bind9-dnsutils");
    let mut c = Command::new("dig");
    c.args([
        &format!("@{}", server.ip()),
        "-p",
        &server.port().to_string(),
        "example.test",
        "AXFR",
        "+nocomments",
        "+nostats",
        "+time=3",
        "+tries=1",
    ]);
    if let Some(k) = key {
        c.args(["-y", &format!("hmac-sha256:{k}")]);
    }
    String::from_utf8_lossy(&c.output().unwrap().stdout).to_string()
}

/// The zone as `dig AXFR` from `server` gives it, as a zone file: its lines as they are
/// (signatures are case-sensitive base64), without comments, the TSIG or the closing SOA.
#[allow(dead_code, reason = "the DNS tests and benches use it")]
pub fn axfr_zone_file(server: SocketAddr, key: Option<&str>) -> String {
    let mut soa_seen = false;
    dig_axfr(server, key)
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .filter(|l| !l.split_whitespace().any(|w| w == "TSIG"))
        .filter(|l| {
            let soa = l.split_whitespace().nth(3) == Some("SOA");
            let keep = !(soa && soa_seen);
            soa_seen |= soa;
            keep
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `dig AXFR example.test` from `server` (signed with `key` = "name:secret"): its records one
/// per line, fields separated by one space, lowercased, sorted, without comments or the
/// repeated closing SOA. Empty when the transfer fails.
pub fn axfr_lines(server: SocketAddr, key: Option<&str>) -> Vec<String> {
    let text = dig_axfr(server, key);
    if text.contains("Transfer failed") || text.contains("failed:") {
        return vec![];
    }
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        // dig prints the TSIG of a signed transfer as a record: not zone data.
        .filter(|l| !l.contains("\tANY\tTSIG\t") && !l.split_whitespace().any(|w| w == "TSIG"))
        .map(|l| {
            l.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase()
        })
        .collect();
    lines.sort();
    lines.dedup();
    lines
}

/// Waits up to `limit` for `f`, returning how long it took.
pub fn within(limit: Duration, what: &str, f: impl FnMut() -> bool) -> Duration {
    super::wait_until(limit, what, f)
}
