//! The standby's certificates: what a certificate says (names, validity), whether it is good for
//! a site now, when to renew it, where it is kept, and SNI selection.
//!
//! A site's certificate comes either from files the user gives (`[sites.tls]`, re-read when they
//! change) or from ACME ([`crate::standby::acme`]), kept in `<data_dir>/certs/<site>/` as `cert.pem`
//! (the chain) and `key.pem`, both mode 0600, each written whole (temp file + rename) so a crash
//! never leaves half a pair. The decisions here ([`problems`], [`renew_at`], [`covers`]) are pure:
//! time is an argument.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use serde::Serialize;

use crate::util::Millis;

/// What the leaf certificate of a chain says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CertInfo {
    /// DNS names of the subjectAltName extension, lower case (`*.example.com` for wildcards).
    pub names: Vec<String>,
    pub not_before: Millis,
    pub not_after: Millis,
    pub issuer: String,
    /// Hexadecimal, to tell a renewed certificate from the one it replaced.
    pub serial: String,
}

/// Reads the leaf (first) certificate of a DER chain.
pub fn info(leaf: &[u8]) -> Result<CertInfo, String> {
    use x509_parser::prelude::*;
    let (_, cert) =
        X509Certificate::from_der(leaf).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let ms = |t: ASN1Time| (t.timestamp().max(0) as u64).saturating_mul(1000);
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let GeneralName::DNSName(d) = n {
                names.push(d.trim_end_matches('.').to_ascii_lowercase());
            }
        }
    }
    Ok(CertInfo {
        names,
        not_before: ms(cert.validity().not_before),
        not_after: ms(cert.validity().not_after),
        issuer: cert.issuer().to_string(),
        serial: cert.raw_serial_as_string().replace(':', ""),
    })
}

/// Whether a certificate name (`www.example.com` or `*.example.com`) covers `host`. A wildcard
/// covers exactly one label, never the bare parent (RFC 6125 6.4.3).
pub fn covers(cert_name: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    match cert_name.strip_prefix("*.") {
        Some(parent) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
        None => cert_name == host,
    }
}

/// Why `cert` is not good for serving `hosts` at `now`; empty when it is.
pub fn problems(cert: Option<&CertInfo>, hosts: &[String], now: Millis) -> Vec<String> {
    let Some(c) = cert else {
        return vec!["no certificate".to_string()];
    };
    let mut out = Vec::new();
    if now < c.not_before {
        out.push("certificate not valid yet".to_string());
    }
    if now >= c.not_after {
        out.push(format!(
            "certificate expired {} ago",
            crate::util::human_duration(now - c.not_after)
        ));
    }
    for h in hosts {
        if !c.names.iter().any(|n| covers(n, h)) {
            out.push(format!("certificate does not cover {h}"));
        }
    }
    out
}

/// When a certificate should be replaced: at two thirds of its lifetime (for a 90-day
/// certificate, 30 days before it expires), as Let's Encrypt recommends.
pub fn renew_at(c: &CertInfo) -> Millis {
    c.not_before + c.not_after.saturating_sub(c.not_before) / 3 * 2
}

/// A certificate with its key, ready for rustls, and what it says.
#[derive(Debug)]
pub struct Pair {
    pub key: Arc<CertifiedKey>,
    pub info: CertInfo,
}

/// Parses a PEM chain (leaf first) and a PEM private key, and checks they belong together.
pub fn load_pair(chain_pem: &[u8], key_pem: &[u8]) -> Result<Pair, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem)
        .filter_map(Result::ok)
        .collect();
    let Some(leaf) = chain.first() else {
        return Err("no PEM certificate found".to_string());
    };
    let info = info(leaf)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| format!("no usable PEM private key: {e}"))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("unsupported private key: {e}"))?;
    let certified = CertifiedKey::new(chain, signer);
    certified
        .keys_match()
        .map_err(|e| format!("the certificate and the key do not belong together: {e}"))?;
    Ok(Pair {
        key: Arc::new(certified),
        info,
    })
}

/// Reads a pair from two files.
pub fn load_files(cert: &Path, key: &Path) -> Result<Pair, String> {
    let c = std::fs::read(cert).map_err(|e| format!("cannot read {}: {e}", cert.display()))?;
    let k = std::fs::read(key).map_err(|e| format!("cannot read {}: {e}", key.display()))?;
    load_pair(&c, &k).map_err(|e| format!("{}: {e}", cert.display()))
}

/// `<data_dir>/certs/<site>`: where ACME certificates of a site are kept.
pub fn store_dir(data_dir: &Path, site: &str) -> PathBuf {
    data_dir.join("certs").join(site)
}

/// Writes a chain and its key into `dir` (created 0700), each file 0600 and replaced whole. The
/// key goes first: a crash in between leaves the new key beside the old chain, which
/// [`load_pair`] rejects as a mismatch, and the next start issues again.
pub fn save(dir: &Path, chain_pem: &str, key_pem: &str) -> std::io::Result<()> {
    create_private_dir(dir)?;
    write_private(&dir.join("key.pem"), key_pem.as_bytes())?;
    write_private(&dir.join("cert.pem"), chain_pem.as_bytes())
}

/// Reads the pair kept in `dir`, if there is one.
pub fn load_stored(dir: &Path) -> Result<Option<Pair>, String> {
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    if !c.exists() {
        return Ok(None);
    }
    load_files(&c, &k).map(Some)
}

pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Writes `bytes` to `path` through a temp file created with mode 0600 (never readable by others,
/// not even for a moment), then renames it into place.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::util::write_atomic_mode(path, bytes, 0o600, true)
}

/// The certificate of every host name, swapped whole per site when one is issued or renewed.
#[derive(Debug, Default)]
pub struct Certs {
    by_host: RwLock<HashMap<String, Arc<Pair>>>,
}

impl Certs {
    /// Serves `pair` for every name of `hosts`.
    pub fn install(&self, hosts: &[String], pair: Arc<Pair>) {
        if let Ok(mut m) = self.by_host.write() {
            for h in hosts {
                m.insert(h.to_ascii_lowercase(), pair.clone());
            }
        }
    }

    /// The certificate served for `host`, if any.
    pub fn get(&self, host: &str) -> Option<Arc<Pair>> {
        self.by_host
            .read()
            .ok()?
            .get(&host.trim_end_matches('.').to_ascii_lowercase())
            .cloned()
    }
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // No SNI (or an unknown name): no certificate, so the handshake fails, as it should for
        // a name this standby does not serve.
        self.get(hello.server_name()?).map(|p| p.key.clone())
    }
}

/// The rustls server config of the standby: certificates by SNI, HTTP/2 and HTTP/1.1 by ALPN.
pub fn server_config(certs: Arc<Certs>) -> Result<rustls::ServerConfig, String> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_cert_resolver(certs);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Parses a PEM bundle into certificates; errors when there is none.
pub fn parse_ca_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err("no PEM certificate found".to_string());
    }
    Ok(certs)
}

/// A certificate's description for unit tests (no certificate behind it).
#[cfg(test)]
pub(crate) fn test_cert(names: &[&str], from: Millis, to: Millis) -> CertInfo {
    CertInfo {
        names: names.iter().map(|s| s.to_string()).collect(),
        not_before: from,
        not_after: to,
        issuer: "CN=test".into(),
        serial: "01".into(),
    }
}

/// A rustls acceptor from PEM files (ring provider; the pair is read and checked by
/// [`load_files`], like the standby's certificates).
pub fn acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, String> {
    let pair = load_files(cert, key)?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(pair.key)));
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// A client verifier that does not check a certificate's chain or names, only the
/// handshake's signatures (so a TLS server with the key did answer): either any certificate
/// (a probe with `insecure = true`) or exactly one, by its DER bytes (the CLI talking to the
/// API's configured certificate at an address it need not name).
#[derive(Debug)]
pub struct SignaturesOnly {
    pin: Option<CertificateDer<'static>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl SignaturesOnly {
    pub fn any(provider: Arc<rustls::crypto::CryptoProvider>) -> SignaturesOnly {
        SignaturesOnly {
            pin: None,
            provider,
        }
    }

    pub fn pinned(
        cert: CertificateDer<'static>,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> SignaturesOnly {
        SignaturesOnly {
            pin: Some(cert),
            provider,
        }
    }
}

impl rustls::client::danger::ServerCertVerifier for SignaturesOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match &self.pin {
            Some(pin) if pin.as_ref() != end_entity.as_ref() => Err(rustls::Error::General(
                "the server presented another certificate than the one configured".to_string(),
            )),
            _ => Ok(rustls::client::danger::ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Millis = 86_400_000;

    use super::test_cert as cert;

    #[test]
    fn wildcards_cover_one_label_only() {
        assert!(covers("www.example.com", "WWW.example.com."));
        assert!(covers("*.example.com", "www.example.com"));
        assert!(!covers("*.example.com", "example.com"));
        assert!(!covers("*.example.com", "a.b.example.com"));
        assert!(!covers("*.example.com", ".example.com"));
        assert!(!covers("www.example.com", "example.com"));
    }

    #[test]
    fn problems_name_what_is_wrong() {
        let hosts = vec!["www.example.com".to_string(), "example.com".to_string()];
        let c = cert(&["www.example.com", "example.com"], 10 * DAY, 100 * DAY);
        assert!(problems(Some(&c), &hosts, 50 * DAY).is_empty());
        assert_eq!(problems(None, &hosts, 50 * DAY), vec!["no certificate"]);
        assert_eq!(
            problems(Some(&c), &hosts, 5 * DAY),
            vec!["certificate not valid yet"]
        );
        assert_eq!(
            problems(Some(&c), &hosts, 100 * DAY),
            vec!["certificate expired 0ms ago"]
        );
        let partial = cert(&["www.example.com"], 10 * DAY, 100 * DAY);
        assert_eq!(
            problems(Some(&partial), &hosts, 50 * DAY),
            vec!["certificate does not cover example.com"]
        );
    }

    #[test]
    fn renewal_at_two_thirds_of_the_lifetime() {
        assert_eq!(renew_at(&cert(&[], 0, 90 * DAY)), 60 * DAY);
        assert_eq!(renew_at(&cert(&[], 30 * DAY, 36 * DAY)), 34 * DAY);
        // A certificate whose dates are upside down is due at once, not never.
        assert_eq!(renew_at(&cert(&[], 10 * DAY, 5 * DAY)), 10 * DAY);
    }

    #[test]
    fn pairs_load_and_mismatches_are_refused() {
        let a =
            rcgen::generate_simple_self_signed(vec!["a.test".to_string(), "*.b.test".to_string()])
                .unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["a.test".to_string()]).unwrap();
        let pair = load_pair(
            a.cert.pem().as_bytes(),
            a.signing_key.serialize_pem().as_bytes(),
        )
        .unwrap();
        assert_eq!(pair.info.names, vec!["a.test", "*.b.test"]);
        assert!(pair.info.not_after > pair.info.not_before);
        let err = load_pair(
            a.cert.pem().as_bytes(),
            b.signing_key.serialize_pem().as_bytes(),
        )
        .unwrap_err();
        assert!(err.contains("do not belong together"), "{err}");
        assert!(load_pair(b"garbage", b"garbage")
            .unwrap_err()
            .contains("no PEM certificate"));

        let dir = tempfile::tempdir().unwrap();
        let d = store_dir(dir.path(), "shop");
        assert!(load_stored(&d).unwrap().is_none());
        save(&d, &a.cert.pem(), &a.signing_key.serialize_pem()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        for f in ["cert.pem", "key.pem"] {
            assert_eq!(
                std::fs::metadata(d.join(f)).unwrap().permissions().mode() & 0o777,
                0o600,
                "{f}"
            );
        }
        assert_eq!(
            load_stored(&d).unwrap().unwrap().info.serial,
            pair.info.serial
        );
    }
}
