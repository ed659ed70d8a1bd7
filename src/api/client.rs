//! The client half: how the CLI (and `demo`) call the daemon's API, with the daemon's local
//! token, over HTTPS when `[api]` has a certificate.
//!
//! The local token is made afresh at every start and written to `<data_dir>/api.token`, mode
//! 0600, so whoever may read the data directory (root, the daemon's user) may steer the daemon
//! and nobody else on the machine can. Over HTTPS the client trusts exactly the certificate
//! the config names (pinned by its DER bytes) rather than a name: it connects to an address,
//! often 127.0.0.1, which the certificate need not name.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::CertificateDer;
use tokio::net::TcpStream;

/// The daemon's own token, in the data directory.
pub const TOKEN_FILE: &str = "api.token";

/// Makes a new local token (256 random bits, hex) and writes it, mode 0600, whole.
pub fn write_local_token(data_dir: &Path) -> std::io::Result<String> {
    use ring::rand::SecureRandom;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| std::io::Error::other("no randomness for the API token"))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let path = data_dir.join(TOKEN_FILE);
    let tmp = data_dir.join(format!("{TOKEN_FILE}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(token.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(token)
}

/// Where the API is and how to speak to it.
#[derive(Clone, Debug)]
pub struct ApiClient {
    pub addr: SocketAddr,
    /// Sent as `Authorization: Bearer`; never printed.
    token: Option<String>,
    /// HTTPS, trusting exactly this certificate.
    pin: Option<CertificateDer<'static>>,
}

impl ApiClient {
    /// The running daemon of `cfg` at `addr`, with its local token (when this user may read it).
    pub fn local(cfg: &crate::config::Config, addr: SocketAddr) -> ApiClient {
        let token = std::fs::read_to_string(cfg.data_dir.join(TOKEN_FILE))
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        let pin = cfg.api.tls.as_ref().and_then(|(cert, _)| {
            let pem = std::fs::read(cert).ok()?;
            crate::tls::parse_ca_pem(&pem).ok()?.into_iter().next()
        });
        ApiClient { addr, token, pin }
    }

    /// Plain HTTP, with or without a token (tests, `demo`).
    pub fn plain(addr: SocketAddr, token: Option<String>) -> ApiClient {
        ApiClient {
            addr,
            token,
            pin: None,
        }
    }
}

/// One request to the daemon's API. `Err` means the daemon could not be reached.
pub async fn call(
    ep: &ApiClient,
    method: Method,
    path: &str,
) -> anyhow::Result<(StatusCode, Bytes)> {
    let addr = ep.addr;
    let fut = async {
        let stream = TcpStream::connect(addr).await?;
        let post = method == Method::POST;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, addr.to_string());
        if post {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        if let Some(t) = &ep.token {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = req.body(Full::new(if post {
            Bytes::from_static(b"{}")
        } else {
            Bytes::new()
        }))?;
        match &ep.pin {
            None => send(TokioIo::new(stream), req).await,
            Some(pin) => {
                let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(crate::tls::SignaturesOnly::pinned(
                    pin.clone(),
                    Arc::new(rustls::crypto::ring::default_provider()),
                )))
                .with_no_client_auth();
                let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
                let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                    .connect(name, stream)
                    .await?;
                send(TokioIo::new(tls), req).await
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .map_err(|_| anyhow::anyhow!("the daemon at {addr} did not answer within 10 s"))?
}

async fn send<IO>(io: IO, req: Request<Full<Bytes>>) -> anyhow::Result<(StatusCode, Bytes)>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(io).await?;
    let request = async {
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), 16 * 1024 * 1024)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .to_bytes();
        Ok::<_, anyhow::Error>((status, body))
    };
    crate::http::drive(conn, request).await
}
