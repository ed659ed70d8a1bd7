//! The push source: for a standby that does not run on the home line, the home side reports its
//! address. The endpoint speaks the dyndns2 update protocol that home routers' built-in DDNS
//! clients already use (`GET /nic/update?hostname=NAME&myip=ADDR` with HTTP Basic auth), and
//! `understudy report` speaks the same.
//!
//! A pushed address goes through the same checks as any answer ([`super::agree::validate`]:
//! one public address, allow-list for labs) and then becomes this source's answer in the next
//! round, which is started at once. Answers (dyndns2 return codes): `good ADDR` (new),
//! `nochg ADDR` (same as before), `badauth` (401), `notfqdn` (no hostname), `nohost` (a
//! hostname understudy does not manage), and, outside dyndns2's list, `badip REASON` (400) for
//! an address that is not public: retrying it is pointless, so it gets its own word.
//! The endpoint is HTTPS unless it listens on loopback (config check).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::agree::{validate, Family, Net};
use crate::config::Secret;

/// The latest pushed address per family, with the time it was pushed (Unix ms).
#[derive(Clone, Default)]
pub struct PushBoard(Arc<Mutex<BTreeMap<Family, (IpAddr, u64)>>>);

impl PushBoard {
    pub fn get(&self, family: Family, max_age: Duration, now: u64) -> Result<IpAddr, String> {
        match self.0.lock().unwrap_or_else(|e| e.into_inner()).get(&family) {
            None => Err("nothing pushed yet".to_string()),
            Some((_, at)) if now.saturating_sub(*at) > max_age.as_millis() as u64 => {
                Err(format!("last push is older than {}", crate::util::human_duration(max_age.as_millis() as u64)))
            }
            Some((ip, _)) => Ok(*ip),
        }
    }

    fn put(&self, ip: IpAddr, now: u64) -> bool {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let same = m.get(&Family::of(&ip)).is_some_and(|(old, _)| *old == ip);
        m.insert(Family::of(&ip), (ip, now));
        !same
    }
}

/// What the endpoint needs to decide.
#[derive(Clone)]
pub struct PushAuth {
    pub username: String,
    pub password: Secret,
    /// Names a client may update (the `[[ddns]]` names and `auto` sites' domains), lowercase,
    /// without the final dot.
    pub hostnames: Vec<String>,
    pub allow: Vec<Net>,
}

/// Decides one update request; pure apart from the board. Returns (HTTP status, body).
pub fn update(
    auth: &PushAuth,
    board: &PushBoard,
    authorization: Option<&str>,
    query: &str,
    peer: IpAddr,
    now: u64,
) -> (StatusCode, String) {
    if !authorized(auth, authorization) {
        return (StatusCode::UNAUTHORIZED, "badauth".to_string());
    }
    let params: BTreeMap<String, String> =
        query.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), percent_decode(v))).collect();
    let Some(hostnames) = params.get("hostname").filter(|h| !h.is_empty()) else {
        return (StatusCode::OK, "notfqdn".to_string());
    };
    for h in hostnames.split(',') {
        if !auth.hostnames.iter().any(|k| k.eq_ignore_ascii_case(h.trim().trim_end_matches('.'))) {
            return (StatusCode::OK, "nohost".to_string());
        }
    }
    // dyndns2: without myip, the address the request came from.
    let raw = params.get("myip").cloned().unwrap_or_else(|| peer.to_string());
    let family = if raw.contains(':') { Family::Ipv6 } else { Family::Ipv4 };
    match validate(&raw, family, &auth.allow) {
        Err(why) => (StatusCode::BAD_REQUEST, format!("badip {why}")),
        Ok(ip) => {
            if board.put(ip, now) {
                (StatusCode::OK, format!("good {ip}"))
            } else {
                (StatusCode::OK, format!("nochg {ip}"))
            }
        }
    }
}

fn authorized(auth: &PushAuth, header: Option<&str>) -> bool {
    let Some(b64) = header.and_then(|h| h.strip_prefix("Basic ").or_else(|| h.strip_prefix("basic "))) else { return false };
    let Ok(decoded) = crate::dns::provider::rfc2136::base64_decode(b64.trim()) else { return false };
    let Ok(text) = String::from_utf8(decoded) else { return false };
    let Some((user, pass)) = text.split_once(':') else { return false };
    constant_time_eq(user.as_bytes(), auth.username.as_bytes()) & constant_time_eq(pass.as_bytes(), auth.password.0.as_bytes())
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                Ok(v) => {
                    out.push(v);
                    i += 3;
                    continue;
                }
                Err(_) => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

/// Serves the endpoint until `cancel`; `pushed` is notified after every accepted push.
pub async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    auth: PushAuth,
    board: PushBoard,
    pushed: Arc<tokio::sync::Notify>,
    cancel: CancellationToken,
) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(_) => continue,
            },
        };
        let (auth, board, pushed, tls, cancel) = (auth.clone(), board.clone(), pushed.clone(), tls.clone(), cancel.clone());
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let (auth, board, pushed) = (auth.clone(), board.clone(), pushed.clone());
                async move { Ok::<_, std::convert::Infallible>(route(req, &auth, &board, &pushed, peer)) }
            });
            let builder = hyper::server::conn::http1::Builder::new();
            let run = async {
                match tls {
                    None => {
                        let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                    }
                    Some(acceptor) => {
                        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                            let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                        }
                    }
                }
            };
            tokio::select! {
                _ = run => {}
                _ = cancel.cancelled() => {}
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            }
        });
    }
}

fn route(
    req: Request<hyper::body::Incoming>,
    auth: &PushAuth,
    board: &PushBoard,
    pushed: &tokio::sync::Notify,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    let (status, body) = if req.uri().path() == "/nic/update" {
        let header = req.headers().get(hyper::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let r = update(auth, board, header, req.uri().query().unwrap_or(""), peer.ip(), crate::util::now_millis());
        if r.1.starts_with("good") {
            pushed.notify_one();
        }
        if r.0 == StatusCode::OK || r.0 == StatusCode::BAD_REQUEST {
            tracing::info!(%peer, "push: {}", r.1);
        } else {
            tracing::warn!(%peer, "push refused: {}", r.1);
        }
        r
    } else {
        (StatusCode::NOT_FOUND, "not found; updates go to /nic/update".to_string())
    };
    let mut resp = Response::new(Full::new(Bytes::from(format!("{body}\n"))));
    *resp.status_mut() = status;
    resp.headers_mut().insert(hyper::header::CONTENT_TYPE, "text/plain".parse().expect("valid"));
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(hyper::header::WWW_AUTHENTICATE, "Basic realm=\"understudy\"".parse().expect("valid"));
    }
    resp
}

/// A rustls acceptor from PEM files (ring provider; the pair is read and checked by
/// [`crate::tls::load_files`], like the standby's certificates).
pub fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> Result<tokio_rustls::TlsAcceptor, String> {
    let pair = crate::tls::load_files(cert, key)?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(pair.key)));
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> PushAuth {
        PushAuth { username: "home".into(), password: Secret("s3cret".into()), hostnames: vec!["home.example.com".into()], allow: vec![] }
    }

    fn basic(user: &str, pass: &str) -> String {
        // "home:s3cret" and friends, base64 by hand-made table (test only).
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let input = format!("{user}:{pass}").into_bytes();
        let mut out = String::new();
        for chunk in input.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        format!("Basic {out}")
    }

    #[test]
    fn dyndns2_answers() {
        let (a, b) = (auth(), PushBoard::default());
        let peer: IpAddr = "8.8.4.4".parse().unwrap();
        let ok = basic("home", "s3cret");
        assert_eq!(update(&a, &b, Some(&ok), "hostname=home.example.com&myip=8.8.8.8", peer, 1).1, "good 8.8.8.8");
        assert_eq!(update(&a, &b, Some(&ok), "hostname=home.example.com&myip=8.8.8.8", peer, 2).1, "nochg 8.8.8.8");
        assert_eq!(b.get(Family::Ipv4, Duration::from_secs(60), 3).unwrap().to_string(), "8.8.8.8");
        assert_eq!(update(&a, &b, Some(&ok), "hostname=home.example.com", peer, 4).1, "good 8.8.4.4", "no myip: the peer");
        assert_eq!(
            update(&a, &b, Some(&basic("home", "wrong")), "hostname=home.example.com&myip=1.1.1.1", peer, 5).0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(update(&a, &b, None, "hostname=home.example.com&myip=1.1.1.1", peer, 5).1, "badauth");
        assert_eq!(update(&a, &b, Some("Basic !!!"), "hostname=home.example.com", peer, 5).1, "badauth");
        assert_eq!(update(&a, &b, Some(&ok), "myip=1.1.1.1", peer, 6).1, "notfqdn");
        assert_eq!(update(&a, &b, Some(&ok), "hostname=other.example.com&myip=1.1.1.1", peer, 6).1, "nohost");
        let (status, body) = update(&a, &b, Some(&ok), "hostname=home.example.com&myip=192.168.1.5", peer, 7);
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.starts_with("badip 192.168.1.5 is not a public address"), "{body}");
        assert_eq!(b.get(Family::Ipv4, Duration::from_secs(60), 8).unwrap().to_string(), "8.8.4.4", "refused pushes change nothing");
        assert!(b.get(Family::Ipv4, Duration::from_millis(1), 1_000).is_err(), "too old");
        assert_eq!(
            update(&a, &b, Some(&ok), "hostname=home.example.com&myip=2a00%3A1450%3A4001%3A%3A1", peer, 9).1,
            "good 2a00:1450:4001::1"
        );
    }

    #[test]
    fn comparisons_and_decoding() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert_eq!(percent_decode("a%20b+c%3A"), "a b c:");
        assert_eq!(percent_decode("%zz%"), "%zz%");
        assert_eq!(percent_decode("%4"), "%4");
    }
}
