//! moto's Route 53 endpoint (PyPI `moto[server]`), started on 127.0.0.1 with an ephemeral port
//! and stopped by PID, plus a TCP relay in front of it that a test can cut and restore (moto
//! keeps its state in memory, so "the provider goes away" is done by cutting the relay).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::free_port;

fn moto_server() -> PathBuf {
    if let Some(p) = std::env::var_os("UNDERSTUDY_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server");
    assert!(
        local.exists(),
        "moto_server not found at {}: run `python3 -m venv .venv && .venv/bin/pip install 'moto[server]'` (bash .ci/run does this), or set UNDERSTUDY_MOTO_SERVER",
        local.display()
    );
    local
}

pub struct Moto {
    pub addr: SocketAddr,
    child: Option<Child>,
    log: tempfile::NamedTempFile,
}

impl Moto {
    pub fn start() -> Moto {
        let port = free_port("127.0.0.1");
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap();
        let m = Moto {
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            child: Some(child),
            log,
        };
        super::wait(
            Duration::from_secs(30),
            || {
                format!(
                    "moto to start: {}",
                    std::fs::read_to_string(m.log.path()).unwrap_or_default()
                )
            },
            || std::net::TcpStream::connect(m.addr).ok(),
        );
        m
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A TCP relay to `target` that can refuse connections for a while.
pub struct Relay {
    pub addr: SocketAddr,
    up: Arc<Mutex<bool>>,
    _rt: tokio::runtime::Runtime,
}

impl Relay {
    pub fn start(target: SocketAddr) -> Relay {
        let (rt, listener, addr) = super::loopback_listener();
        let up = Arc::new(Mutex::new(true));
        let flag = up.clone();
        rt.spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                if !*flag.lock().unwrap() {
                    drop(inbound); // closed at once: the client sees a reset
                    continue;
                }
                tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        });
        Relay { addr, up, _rt: rt }
    }

    pub fn set_up(&self, up: bool) {
        *self.up.lock().unwrap() = up;
    }
}

/// An AWS SDK client of the test's own, for setting moto up and reading it back (ring TLS, like
/// the binary; fixed dummy credentials, which moto does not check).
pub fn sdk(endpoint: &str) -> aws_sdk_route53::Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let conf = aws_sdk_route53::Config::builder()
        .behavior_version(aws_sdk_route53::config::BehaviorVersion::latest())
        .http_client(http)
        .region(aws_sdk_route53::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_credential_types::Credentials::new(
            "AKIDSETUP",
            "setup",
            None,
            None,
            "test",
        ))
        .build();
    aws_sdk_route53::Client::from_conf(conf)
}

/// Creates the public hosted zone `example.test.` and returns its id.
pub async fn create_zone(c: &aws_sdk_route53::Client, reference: &str) -> String {
    let z = c
        .create_hosted_zone()
        .name("example.test.")
        .caller_reference(reference)
        .send()
        .await
        .unwrap();
    z.hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string()
}
