//! `[dns.zones.dnssec]`: online signing of a built-in zone (`dns::sign`, `dns::keys`).
//!
//! The table's presence turns signing on; every key is optional. Defaults follow Knot's
//! (ECDSA P-256, signatures valid 14 days and made again after 7, a new ZSK every 30 days).
//! A zone held by a provider cannot be signed here: its provider signs it, or not.

use super::*;

/// The signing algorithm of a zone's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnssecAlgorithm {
    /// ECDSAP256SHA256, algorithm 13 (the default).
    EcdsaP256,
    /// ED25519, algorithm 15.
    Ed25519,
}

impl DnssecAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            DnssecAlgorithm::EcdsaP256 => "ecdsap256sha256",
            DnssecAlgorithm::Ed25519 => "ed25519",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnssecConfig {
    pub algorithm: DnssecAlgorithm,
    /// How long a signature is valid (from an hour before it is made).
    pub signature_lifetime: Duration,
    /// A signature this old is made again (so one is never served near its expiry).
    pub resign_after: Duration,
    /// A zone-signing key this old is replaced (pre-published, then used, then withdrawn).
    pub zsk_lifetime: Duration,
}

impl Default for DnssecConfig {
    fn default() -> Self {
        DnssecConfig {
            algorithm: DnssecAlgorithm::EcdsaP256,
            signature_lifetime: Duration::from_secs(14 * 86_400),
            resign_after: Duration::from_secs(7 * 86_400),
            zsk_lifetime: Duration::from_secs(30 * 86_400),
        }
    }
}

impl Cx<'_> {
    pub(super) fn build_dnssec(
        &self,
        raw: Option<Spanned<RawDnssec>>,
        key: &str,
        provider: Option<&str>,
    ) -> R<Option<DnssecConfig>> {
        let Some(raw) = raw else { return Ok(None) };
        let key = format!("{key}.dnssec");
        if let Some(p) = provider {
            return self.err(
                raw.span(),
                &key,
                format!("this zone is held by provider `{p}`; only zones of the built-in server are signed here (sign it at the provider)"),
            );
        }
        let raw = raw.into_inner();
        let d = DnssecConfig::default();
        let algorithm = match &raw.algorithm {
            None => d.algorithm,
            Some(a) => match a.get_ref().to_ascii_lowercase().as_str() {
                "ecdsap256sha256" | "ecdsa-p256" | "13" => DnssecAlgorithm::EcdsaP256,
                "ed25519" | "15" => DnssecAlgorithm::Ed25519,
                other => {
                    return self.err(
                        a.span(),
                        &format!("{key}.algorithm"),
                        format!("`{other}` is not a signing algorithm understudy offers: \"ecdsap256sha256\" (the default) or \"ed25519\""),
                    )
                }
            },
        };
        let second = Duration::from_secs(1);
        let signature_lifetime = self.duration(
            &raw.signature_lifetime,
            &format!("{key}.signature_lifetime"),
            d.signature_lifetime,
            Duration::from_secs(3_600),
        )?;
        let resign_after = self.duration(
            &raw.resign_after,
            &format!("{key}.resign_after"),
            d.resign_after.min(signature_lifetime / 2),
            second,
        )?;
        if resign_after >= signature_lifetime {
            let at = raw.resign_after.as_ref().map(|v| v.span()).unwrap_or(0..0);
            return self.err(
                at,
                &format!("{key}.resign_after"),
                format!(
                    "{} is not shorter than signature_lifetime ({}): a signature must be made again before it expires",
                    human(resign_after),
                    human(signature_lifetime)
                ),
            );
        }
        let zsk_lifetime = self.duration(
            &raw.zsk_lifetime,
            &format!("{key}.zsk_lifetime"),
            d.zsk_lifetime,
            Duration::from_secs(10),
        )?;
        Ok(Some(DnssecConfig {
            algorithm,
            signature_lifetime,
            resign_after,
            zsk_lifetime,
        }))
    }
}
