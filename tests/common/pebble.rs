//! Pebble, Let's Encrypt's ACME test server (Debian package `pebble`), on 127.0.0.1 with
//! ephemeral ports, validating DNS-01 challenges against a DNS server the test names. Its own
//! HTTPS listener uses a certificate from a throwaway CA made here; the root that signs the
//! certificates it issues is fetched from its management interface (it changes every start).

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::ca::Ca;
use super::{free_port, need, wait_until};

pub struct Pebble {
    pub dir: tempfile::TempDir,
    child: Child,
    pub addr: SocketAddr,
    pub management: SocketAddr,
    /// The CA of Pebble's own HTTPS listener (for `standby.acme.ca_file`).
    pub listener_ca: PathBuf,
    /// The root of the certificates Pebble issues (PEM).
    pub issuing_root: String,
}

impl Pebble {
    /// Starts Pebble asking `dns` for challenge records; certificates live `validity_secs`.
    pub fn start(dns: SocketAddr, validity_secs: u64) -> Pebble {
        need("pebble", "pebble");
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new();
        let (cert, key) = ca.issue_names(&["127.0.0.1", "localhost"]);
        std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
        std::fs::write(dir.path().join("key.pem"), key).unwrap();
        let listener_ca = dir.path().join("listener-ca.pem");
        std::fs::write(&listener_ca, ca.pem()).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port("127.0.0.1"))
            .parse()
            .unwrap();
        let management: SocketAddr = format!("127.0.0.1:{}", free_port("127.0.0.1"))
            .parse()
            .unwrap();
        let config = serde_json::json!({
            "pebble": {
                "listenAddress": addr.to_string(),
                "managementListenAddress": management.to_string(),
                "certificate": dir.path().join("cert.pem"),
                "privateKey": dir.path().join("key.pem"),
                "httpPort": free_port("127.0.0.1"),
                "tlsPort": free_port("127.0.0.1"),
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false,
                "certificateValidityPeriod": validity_secs,
            }
        });
        std::fs::write(dir.path().join("pebble.json"), config.to_string()).unwrap();
        let log = std::fs::File::create(dir.path().join("pebble.log")).unwrap();
        let child = Command::new("pebble")
            .arg("-config")
            .arg(dir.path().join("pebble.json"))
            .args(["-dnsserver", &dns.to_string(), "-strict"])
            // No random validation delays, no rejected nonces, and (mostly) a fresh
            // authorization for every order: Pebble may still hand back one that is valid.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut p = Pebble {
            dir,
            child,
            addr,
            management,
            listener_ca,
            issuing_root: String::new(),
        };
        wait_until(Duration::from_secs(15), "pebble", || {
            TcpStream::connect(addr).is_ok() && TcpStream::connect(management).is_ok()
        });
        p.issuing_root = p.fetch_root();
        p
    }

    pub fn directory(&self) -> String {
        format!("https://{}/dir", self.addr)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }

    fn fetch_root(&self) -> String {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ca =
            reqwest::Certificate::from_pem(&std::fs::read(&self.listener_ca).unwrap()).unwrap();
        let client = reqwest::Client::builder()
            .no_proxy()
            .tls_certs_only([ca])
            .build()
            .unwrap();
        let url = format!("https://{}/roots/0", self.management);
        super::rt()
            .block_on(async {
                client
                    .get(&url)
                    .send()
                    .await?
                    .error_for_status()?
                    .text()
                    .await
            })
            .unwrap_or_else(|e| panic!("{url}: {e}\n{}", self.log()))
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
