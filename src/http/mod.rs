//! HTTP both ways.
//!
//! - [`server`]: the one accept loop every listener uses (the standby, the control API, the
//!   push endpoint), with a connection limit, accept backoff, a TLS handshake timeout, tracked
//!   connections and graceful shutdown.
//! - [`zerocopy`]: large stored bodies sent to plain-TCP clients by `sendfile(2)`.
//! - The client ([`client`]) for provider APIs (PowerDNS, Cloudflare), IP echo sources and
//!   `report`: reqwest over rustls with the ring provider and the public web PKI roots (or a
//!   given CA), one overall timeout per request, no proxies from the environment (a DNS change
//!   must not detour through whatever proxy a shell had set).

pub mod server;
pub mod zerocopy;

use std::sync::Arc;
use std::time::Duration;

/// A DNS resolver for reqwest that resolves nothing: a client given one fetches only the names
/// pinned to addresses with `resolve` (reqwest answers those before asking a resolver), so it
/// can never reach an address the system resolver found (the crawler, the proxy).
pub struct PinnedOnly;

impl reqwest::dns::Resolve for PinnedOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let why = format!("{} is not one of the pinned hosts", name.as_str());
        Box::pin(async move { Err(why.into()) })
    }
}

pub fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    client_with_ca(timeout, None)
}

/// The same, trusting only the CAs in `ca_file` (PEM) when one is given.
pub fn client_with_ca(
    timeout: Duration,
    ca_file: Option<&std::path::Path>,
) -> Result<reqwest::Client, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(f) => {
            let pem = std::fs::read(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
            for c in crate::tls::parse_ca_pem(&pem).map_err(|e| format!("{}: {e}", f.display()))? {
                roots.add(c).map_err(|e| format!("{}: {e}", f.display()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(timeout)
        .connect_timeout(timeout)
        .no_proxy()
        .user_agent(concat!("understudy/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// A transport error in words, with its causes ("PowerDNS at ...: error sending request: ...:
/// Connection refused"), or "no answer in time" for a timeout.
pub fn transport_error(e: reqwest::Error, what: &str) -> String {
    if e.is_timeout() {
        format!("{what}: no answer in time")
    } else {
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(&format!(": {s}"));
            src = s.source();
        }
        format!("{what}: {msg}")
    }
}

/// Seconds from a Retry-After header (delta-seconds form).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s.min(3_600)))
}

/// Runs a client request to completion while driving its connection. If the connection ends
/// first, the request is then finished (it fails, or completes from what was read).
pub async fn drive<C, T>(conn: C, request: impl std::future::Future<Output = T>) -> T
where
    C: std::future::Future,
{
    tokio::pin!(conn);
    tokio::pin!(request);
    tokio::select! {
        r = &mut request => r,
        _ = &mut conn => request.await,
    }
}
