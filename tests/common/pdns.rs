//! A real PowerDNS Authoritative server (sqlite3 backend, HTTP API on) for the provider tests,
//! on 127.0.0.1 with ephemeral DNS and API ports, stopped by PID.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, need};

pub const API_KEY: &str = "understudy-test-key";
const SCHEMA: &str = "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql";

pub struct Pdns {
    pub dir: tempfile::TempDir,
    pub dns: SocketAddr,
    pub api: String,
    child: Option<Child>,
}

impl Pdns {
    pub fn start() -> Pdns {
        need("pdns_server", "pdns-server");
        assert!(
            std::path::Path::new(SCHEMA).exists(),
            "{SCHEMA} missing: apt-get install pdns-backend-sqlite3"
        );
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("pdns.sqlite3");
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(&std::fs::read_to_string(SCHEMA).unwrap())
            .unwrap();
        // The zone every test starts from, with records understudy does not own. A serial
        // above today's date makes SOA-EDIT-API add exactly 1 per API change.
        conn.execute_batch(
            "INSERT INTO domains (name, type) VALUES ('example.test', 'NATIVE');
             INSERT INTO records (domain_id, name, type, content, ttl, disabled) VALUES
               (1, 'example.test', 'SOA', 'ns1.example.test. hostmaster.example.test. 2099010100 3600 600 1209600 30', 300, 0),
               (1, 'example.test', 'NS', 'ns1.example.test.', 300, 0),
               (1, 'ns1.example.test', 'A', '127.0.0.1', 300, 0),
               (1, 'example.test', 'MX', '10 mail.example.test.', 300, 0),
               (1, 'mail.example.test', 'A', '192.0.2.25', 300, 0),
               (1, 'www.example.test', 'TXT', '\"not managed by understudy\"', 300, 0);
             INSERT INTO domainmetadata (domain_id, kind, content) VALUES (1, 'SOA-EDIT-API', 'DEFAULT');",
        )
        .unwrap();
        drop(conn);
        let (dns_port, api_port) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
        let d = dir.path().display();
        std::fs::write(
            dir.path().join("pdns.conf"),
            format!(
                "launch=gsqlite3\ngsqlite3-database={d}/pdns.sqlite3\nlocal-address=127.0.0.1\nlocal-port={dns_port}\n\
                 api=yes\napi-key={API_KEY}\nwebserver=yes\nwebserver-address=127.0.0.1\nwebserver-port={api_port}\nwebserver-allow-from=127.0.0.0/8\n\
                 security-poll-suffix=\ncache-ttl=0\nquery-cache-ttl=0\nnegquery-cache-ttl=0\nsocket-dir={d}\ndaemon=no\nguardian=no\ndisable-syslog=yes\nloglevel=4\n"
            ),
        )
        .unwrap();
        let mut p = Pdns {
            dir,
            dns: format!("127.0.0.1:{dns_port}").parse().unwrap(),
            api: format!("http://127.0.0.1:{api_port}"),
            child: None,
        };
        p.restart();
        p
    }

    pub fn restart(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .unwrap();
        let bin = if std::path::Path::new("/usr/sbin/pdns_server").exists() {
            "/usr/sbin/pdns_server"
        } else {
            "pdns_server"
        };
        self.child = Some(
            Command::new(bin)
                .arg(format!("--config-dir={}", self.dir.path().display()))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        super::wait(
            Duration::from_secs(20),
            || format!("pdns to start:\n{}", self.log()),
            || {
                self.serial()?;
                std::net::TcpStream::connect(self.api.trim_start_matches("http://")).ok()
            },
        );
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn serial(&self) -> Option<u32> {
        let r = super::query(self.dns, "example.test", hickory_proto::rr::RecordType::SOA).ok()?;
        r.message.answers.iter().find_map(|a| match &a.data {
            hickory_proto::rr::RData::SOA(s) => Some(s.serial),
            _ => None,
        })
    }

    pub fn rdata(&self, name: &str, t: hickory_proto::rr::RecordType) -> Vec<String> {
        let r = super::query(self.dns, name, t).unwrap();
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

impl Drop for Pdns {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- pdns log ----\n{}", self.log());
        }
        self.stop();
    }
}
