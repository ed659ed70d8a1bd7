//! External DNS providers behind one trait, and the types the reconciler speaks.
//!
//! # The contract every [`Provider`] keeps
//!
//! - [`Provider::read`] returns the current value of each requested RRset that exists (absent
//!   ones are simply missing from the map). It never writes.
//! - [`Provider::apply`] replaces each given RRset wholesale (an UPSERT of the whole set) in one
//!   zone, in as few calls as the provider allows (one batch for RFC 2136, PowerDNS, Route 53).
//!   It returns one [`Outcome`] per change, in order: `Applied` when the provider said it took
//!   it; `Rejected` with the provider's reason when it refused that change; `CouldNotConfirm`
//!   when the request may or may not have taken effect (a timeout after sending, a change still
//!   pending). An `Err` means the whole batch failed before anything could have been applied, or
//!   may have been: [`ProviderError::is_transient`] says whether retrying can help.
//! - It touches only the RRsets it is given, plus the provider's way of marking them as owned
//!   by understudy (a record comment, or a TXT record at `_understudy.<name>`). It never deletes
//!   or rewrites anything else.
//! - [`Provider::set_txt`] replaces (or, given no values, removes) the TXT RRset at one
//!   `_acme-challenge` name for ACME DNS-01, unmarked (only [`crate::standby::acme`] writes those names,
//!   and only while an order is open), and returns once the provider holds it.
//! - [`Provider::marked`] says which of the given (existing) RRsets carry that ownership
//!   marker, so `dns plan` and `check-config` can warn before understudy takes over a record set
//!   someone else made. It never writes.
//! - [`Provider::check`] proves read access to the zone with the configured credentials and
//!   changes nothing.
//! - Every network call has a timeout; nothing panics on a garbage answer (it becomes
//!   `ProviderError::Protocol`).

pub mod cloudflare;
pub mod powerdns;
pub mod rfc2136;
pub mod route53;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use hickory_proto::rr::{Name, RecordType};

/// (owner name, type) of an RRset.
pub type Key = (Name, RecordType);

/// The value of an address RRset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RrSet {
    pub name: Name,
    pub rtype: RecordType,
    pub ttl: u32,
    /// Sorted, deduplicated.
    pub addrs: Vec<IpAddr>,
}

impl RrSet {
    pub fn new(name: Name, rtype: RecordType, ttl: u32, mut addrs: Vec<IpAddr>) -> Self {
        addrs.sort();
        addrs.dedup();
        RrSet {
            name,
            rtype,
            ttl,
            addrs,
        }
    }

    pub fn key(&self) -> Key {
        (self.name.clone(), self.rtype)
    }
}

impl std::fmt::Display for RrSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let addrs: Vec<String> = self.addrs.iter().map(|a| a.to_string()).collect();
        write!(
            f,
            "{} {} {} {}",
            self.name,
            self.ttl,
            self.rtype,
            addrs.join(",")
        )
    }
}

/// What became of one change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    Rejected(String),
    CouldNotConfirm(String),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Network trouble or a server error: retry later.
    #[error("cannot reach the provider: {0}")]
    Unreachable(String),
    /// Rate limited: retry after the given time, or with backoff.
    #[error("rate limited by the provider{}", .retry_after.map(|d| format!(" (retry after {} s)", d.as_secs())).unwrap_or_default())]
    Throttled { retry_after: Option<Duration> },
    /// Credentials refused or lacking permission: fix the config.
    #[error("the provider refused the credentials: {0}")]
    Auth(String),
    /// The zone is not there (or not visible with these credentials).
    #[error("zone not found: {0}")]
    ZoneNotFound(String),
    /// The provider refused the request as a whole.
    #[error("the provider rejected the change: {0}")]
    Rejected(String),
    /// The provider answered something we cannot understand.
    #[error("unexpected answer from the provider: {0}")]
    Protocol(String),
}

impl ProviderError {
    /// Whether retrying the same request later can succeed without a config change.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ProviderError::Unreachable(_)
                | ProviderError::Throttled { .. }
                | ProviderError::Protocol(_)
        )
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::Throttled { retry_after } => *retry_after,
            _ => None,
        }
    }
}

#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// "rfc2136 at 127.0.0.1:53 (TSIG key understudy.)": for logs and `dns plan`.
    fn describe(&self) -> String;

    /// Replaces the TXT record set at `name` (ACME DNS-01 challenge records, which only
    /// [`crate::standby::acme`] writes, so no ownership marker); no values removes it. Returns once the
    /// provider has it (Route 53: INSYNC).
    async fn set_txt(
        &self,
        zone: &Name,
        name: &Name,
        values: &[String],
    ) -> Result<(), ProviderError>;

    /// The TTL this provider will store when asked for `wanted` (some have a minimum). The
    /// reconciler plans with it, so a clamped TTL does not look like a difference forever.
    fn ttl_for(&self, wanted: u32) -> u32 {
        wanted
    }

    async fn read(&self, zone: &Name, keys: &[Key]) -> Result<BTreeMap<Key, RrSet>, ProviderError>;

    async fn apply(&self, zone: &Name, changes: &[RrSet]) -> Result<Vec<Outcome>, ProviderError>;
    /// Which of `keys` carry understudy's ownership marker (a record comment, or the TXT at
    /// [`owner_marker`]). Read-only.
    async fn marked(
        &self,
        zone: &Name,
        keys: &[Key],
    ) -> Result<std::collections::BTreeSet<Key>, ProviderError>;

    async fn check(&self, zone: &Name) -> Result<String, ProviderError>;
}

impl ProviderError {
    /// An HTTP transport failure (refused, reset, timed out): retry later.
    pub fn unreachable_http(e: reqwest::Error, what: &str) -> ProviderError {
        ProviderError::Unreachable(crate::http::transport_error(e, what))
    }
}

/// The TXT owner name that marks `name` as managed by understudy, for providers without
/// record comments.
pub fn owner_marker(name: &Name) -> Name {
    Name::from_ascii("_understudy")
        .expect("valid label")
        .append_domain(name)
        .unwrap_or_else(|_| name.clone())
}

/// Whether a comment or TXT value is understudy's ownership marker.
pub fn is_owner_text(text: &str) -> bool {
    text.contains("heritage=understudy")
}

pub const OWNER_TEXT: &str =
    "heritage=understudy; this record set is managed by understudy, edits will be overwritten";
