//! Certificates for the standby by ACME DNS-01 (RFC 8555 8.4), obtained ahead of need.
//!
//! HTTP-01 cannot work for a standby: while DNS points at the primary, the CA's validation goes
//! to the primary. DNS-01 proves control of the name through a TXT record at
//! `_acme-challenge.<name>`, which understudy can publish on its own DNS side. Those TXT records
//! have one owner, this module: it publishes them through a [`ChallengeDns`] just before telling
//! the CA to look, and removes them when the order is done (either way).
//!
//! [`Manager::run`] keeps every ACME site's certificate current: issued at start when missing or
//! not covering the site's names, renewed at two thirds of its lifetime ([`crate::tls::renew_at`]),
//! retried with doubling backoff (1 min up to 6 h) after a failure. New certificates are saved
//! (0600) and swapped into the SNI table without a restart. The account key is created once and
//! kept in `<data_dir>/acme/account-<hash of the directory URL>.json` (0600).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::rr::Name;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use tokio_util::sync::CancellationToken;

use crate::config::AcmeConfig;
use crate::tls::{CertInfo, Certs};
use crate::util::Millis;

/// Publishes (or, with no values, removes) the TXT record set of a challenge name.
#[async_trait::async_trait]
pub trait ChallengeDns: Send + Sync {
    async fn publish(&self, name: &Name, values: &[String]) -> Result<(), String>;
}

/// First retry after a failed issuance; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Millis = 60_000;
const MAX_BACKOFF: Millis = 6 * 3_600_000;
/// Even with nothing due, look again this often (a clock step, a replaced file).
const RECHECK: Millis = 3_600_000;

/// When to next try to obtain a certificate for `hosts`. Pure.
/// - no certificate, or one that does not cover every name: now (or after the backoff);
/// - otherwise at [`crate::tls::renew_at`], or after the backoff once that has passed and
///   attempts failed.
pub fn next_attempt(
    cert: Option<&CertInfo>,
    hosts: &[String],
    failures: u32,
    last_failure: Option<Millis>,
    now: Millis,
) -> Millis {
    let due = match cert {
        Some(c)
            if hosts
                .iter()
                .all(|h| c.names.iter().any(|n| crate::tls::covers(n, h))) =>
        {
            crate::tls::renew_at(c)
        }
        _ => now,
    };
    match (failures, last_failure) {
        (0, _) | (_, None) => due,
        (n, Some(at)) => due.max(at + backoff(n)),
    }
}

/// 1 min, 2 min, 4 min, ... up to 6 h.
pub fn backoff(failures: u32) -> Millis {
    FIRST_BACKOFF
        .saturating_mul(1u64 << failures.saturating_sub(1).min(20))
        .min(MAX_BACKOFF)
}

/// One site whose certificate ACME keeps.
#[derive(Clone, Debug)]
pub struct AcmeSite {
    pub site: String,
    /// Domain first, then aliases: the certificate's names.
    pub hosts: Vec<String>,
}

/// The last attempt of a site, for the readiness report.
#[derive(Clone, Debug, Default)]
struct Attempts {
    failures: u32,
    last_failure: Option<Millis>,
    last_error: Option<String>,
}

pub struct Manager {
    cfg: AcmeConfig,
    data_dir: PathBuf,
    dns: Arc<dyn ChallengeDns>,
    certs: Arc<Certs>,
    attempts: Mutex<HashMap<String, Attempts>>,
    /// Where issuance and the first failure of a streak are logged as events.
    events: Option<crate::store::Store>,
}

impl Manager {
    pub fn new(
        cfg: AcmeConfig,
        data_dir: &Path,
        dns: Arc<dyn ChallengeDns>,
        certs: Arc<Certs>,
    ) -> Manager {
        Manager {
            cfg,
            data_dir: data_dir.to_path_buf(),
            dns,
            certs,
            attempts: Mutex::new(HashMap::new()),
            events: None,
        }
    }

    /// Logs issuance and failures to the event log (and so to the notification channels).
    pub fn with_events(mut self, store: crate::store::Store) -> Manager {
        self.events = Some(store);
        self
    }

    fn event(&self, site: &str, kind: crate::events::EventKind, reason: &str) {
        if let Some(store) = &self.events {
            let _ = store.append_event(&crate::store::NewEvent {
                site,
                at: crate::util::now_millis(),
                kind,
                reason,
                ..Default::default()
            });
        }
    }

    /// The last failure of a site's issuance, if its latest attempt failed.
    pub fn last_error(&self, site: &str) -> Option<String> {
        self.attempts.lock().ok()?.get(site)?.last_error.clone()
    }

    /// Keeps every site's certificate current until `cancel`.
    pub async fn run(self: Arc<Self>, sites: Vec<AcmeSite>, cancel: CancellationToken) {
        let mut account: Option<Account> = None;
        loop {
            let now = crate::util::now_millis();
            let mut next = now + RECHECK;
            for s in &sites {
                let at = {
                    let a = self
                        .attempts
                        .lock()
                        .map(|m| m.get(&s.site).cloned().unwrap_or_default())
                        .unwrap_or_default();
                    let cert = self.certs.get(&s.hosts[0]).map(|p| p.info.clone());
                    next_attempt(cert.as_ref(), &s.hosts, a.failures, a.last_failure, now)
                };
                if at > now {
                    next = next.min(at);
                    continue;
                }
                let result = match &account {
                    Some(a) => Ok(a.clone()),
                    None => self.account().await,
                };
                let result = match result {
                    Ok(a) => {
                        account = Some(a.clone());
                        tokio::select! {
                            r = self.obtain(&a, s) => r,
                            _ = cancel.cancelled() => return,
                        }
                    }
                    Err(e) => Err(e),
                };
                let mut attempts = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
                let a = attempts.entry(s.site.clone()).or_default();
                match result {
                    Ok(info) => {
                        tracing::info!(site = %s.site, names = %info.names.join(", "), not_after = %crate::util::utc(info.not_after), serial = %info.serial, "certificate obtained by ACME DNS-01");
                        *a = Attempts::default();
                        drop(attempts);
                        self.event(
                            &s.site,
                            crate::events::EventKind::CertificateIssued,
                            &format!(
                                "a certificate for {} was issued by ACME, valid until {} (serial {})",
                                info.names.join(", "),
                                crate::util::utc(info.not_after),
                                info.serial
                            ),
                        );
                    }
                    Err(e) => {
                        a.failures += 1;
                        a.last_failure = Some(crate::util::now_millis());
                        tracing::warn!(site = %s.site, error = %e, retry_in = %crate::util::human_duration(backoff(a.failures)), "could not obtain a certificate");
                        let first = a.failures == 1;
                        a.last_error = Some(e.clone());
                        next = next.min(crate::util::now_millis() + backoff(a.failures));
                        drop(attempts);
                        if first {
                            self.event(
                                &s.site,
                                crate::events::EventKind::CertificateRenewalFailing,
                                &format!(
                                    "could not obtain a certificate for {}: {e}",
                                    s.hosts.join(", ")
                                ),
                            );
                        }
                    }
                }
                // Look at the other sites again with a fresh clock.
                next = next.min(crate::util::now_millis());
            }
            let wait = Duration::from_millis(next.saturating_sub(crate::util::now_millis()));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = cancel.cancelled() => return,
            }
        }
    }

    /// The ACME account: restored from the data directory, or created there.
    async fn account(&self) -> Result<Account, String> {
        let path = self
            .data_dir
            .join("acme")
            .join(format!("account-{}.json", short_hash(&self.cfg.directory)));
        let builder = || match &self.cfg.ca_file {
            Some(root) => Account::builder_with_root(root),
            None => Account::builder(),
        };
        if let Ok(bytes) = std::fs::read(&path) {
            let creds: AccountCredentials = serde_json::from_slice(&bytes)
                .map_err(|e| format!("{} is not an ACME account file: {e}", path.display()))?;
            return builder()
                .map_err(|e| format!("ACME client: {e}"))?
                .from_credentials(creds)
                .await
                .map_err(|e| format!("ACME directory {}: {e}", self.cfg.directory));
        }
        let contact: Vec<&str> = self.cfg.contact.iter().map(String::as_str).collect();
        let (account, creds) = builder()
            .map_err(|e| format!("ACME client: {e}"))?
            .create(
                &NewAccount {
                    contact: &contact,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                self.cfg.directory.clone(),
                None,
            )
            .await
            .map_err(|e| format!("creating an ACME account at {}: {e}", self.cfg.directory))?;
        let json = serde_json::to_vec_pretty(&creds).map_err(|e| e.to_string())?;
        crate::tls::create_private_dir(path.parent().unwrap_or(Path::new(".")))
            .and_then(|_| crate::tls::write_private(&path, &json))
            .map_err(|e| format!("cannot save the ACME account in {}: {e}", path.display()))?;
        tracing::info!(directory = %self.cfg.directory, id = %account.id(), "ACME account created");
        Ok(account)
    }

    /// One order for the site's names, its challenge records always removed afterwards.
    async fn obtain(&self, account: &Account, site: &AcmeSite) -> Result<CertInfo, String> {
        let mut published: Vec<Name> = Vec::new();
        let result = self.order(account, site, &mut published).await;
        for name in &published {
            if let Err(e) = self.dns.publish(name, &[]).await {
                tracing::warn!(name = %name, error = %e, "could not remove an ACME challenge record");
            }
        }
        let (chain, key) = result?;
        let pair = crate::tls::load_pair(chain.as_bytes(), key.as_bytes())
            .map_err(|e| format!("the CA's certificate: {e}"))?;
        crate::tls::save(
            &crate::tls::store_dir(&self.data_dir, &site.site),
            &chain,
            &key,
        )
        .map_err(|e| format!("cannot save the certificate: {e}"))?;
        let info = pair.info.clone();
        self.certs.install(&site.hosts, Arc::new(pair));
        Ok(info)
    }

    async fn order(
        &self,
        account: &Account,
        site: &AcmeSite,
        published: &mut Vec<Name>,
    ) -> Result<(String, String), String> {
        let ids: Vec<Identifier> = site
            .hosts
            .iter()
            .map(|h| Identifier::Dns(h.clone()))
            .collect();
        let mut order = account
            .new_order(&NewOrder::new(&ids))
            .await
            .map_err(|e| format!("new order: {e}"))?;
        // Every pending authorization's TXT value, by challenge name (a name and its wildcard
        // share one), published before any challenge is declared ready.
        let mut values: BTreeMap<Name, Vec<String>> = BTreeMap::new();
        let mut ready: Vec<String> = Vec::new();
        {
            let mut auths = order.authorizations();
            while let Some(a) = auths.next().await {
                let mut a = a.map_err(|e| format!("authorization: {e}"))?;
                match a.status {
                    AuthorizationStatus::Valid => continue,
                    AuthorizationStatus::Pending => {}
                    other => return Err(format!("authorization is {other:?}")),
                }
                let ch = a
                    .challenge(ChallengeType::Dns01)
                    .ok_or("the CA offers no dns-01 challenge")?;
                let host = ch.identifier().to_string();
                let name = Name::from_ascii(format!(
                    "_acme-challenge.{}.",
                    host.trim_start_matches("*.").trim_end_matches('.')
                ))
                .map_err(|e| format!("challenge name for {host}: {e}"))?;
                values
                    .entry(name)
                    .or_default()
                    .push(ch.key_authorization().dns_value());
                ready.push(ch.url.clone());
            }
        }
        for (name, vals) in &values {
            self.dns
                .publish(name, vals)
                .await
                .map_err(|e| format!("publishing {name} TXT: {e}"))?;
            published.push(name.clone());
        }
        // Declare every challenge ready (their records are all out now).
        {
            let mut auths = order.authorizations();
            while let Some(a) = auths.next().await {
                let mut a = a.map_err(|e| format!("authorization: {e}"))?;
                if let Some(mut ch) = a.challenge(ChallengeType::Dns01) {
                    if ready.contains(&ch.url) {
                        ch.set_ready()
                            .await
                            .map_err(|e| format!("challenge: {e}"))?;
                    }
                }
            }
        }
        let retry = RetryPolicy::new().timeout(Duration::from_secs(90));
        let status = order
            .poll_ready(&retry)
            .await
            .map_err(|e| format!("waiting for validation: {e}"))?;
        if status != OrderStatus::Ready {
            return Err(format!("the order is {status:?} after validation"));
        }
        let key = order
            .finalize()
            .await
            .map_err(|e| format!("finalize: {e}"))?;
        let chain = order
            .poll_certificate(&retry)
            .await
            .map_err(|e| format!("certificate: {e}"))?;
        Ok((chain, key))
    }
}

fn short_hash(s: &str) -> String {
    crate::util::sha256_hex(s.as_bytes())[..12].to_string()
}

/// ACME DNS-01 challenge records, through whoever holds the zone: the built-in server or the
/// zone's provider.
pub struct ChallengeZones {
    pub zones: Vec<(
        hickory_proto::rr::Name,
        Arc<dyn crate::dns::provider::Provider>,
    )>,
}

#[async_trait::async_trait]
impl ChallengeDns for ChallengeZones {
    async fn publish(
        &self,
        name: &hickory_proto::rr::Name,
        values: &[String],
    ) -> Result<(), String> {
        match crate::net::deepest_zone(&self.zones, |(z, _)| z, name) {
            Some((zone, p)) => p
                .set_txt(zone, name, values)
                .await
                .map_err(|e| e.to_string()),
            None => Err(format!("{name} is in no configured zone")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Millis = 86_400_000;

    use crate::tls::test_cert as cert;

    #[test]
    fn issued_at_once_renewed_at_two_thirds_backed_off_after_failures() {
        let hosts = vec!["www.example.com".to_string(), "example.com".to_string()];
        let now = 100 * DAY;
        assert_eq!(
            next_attempt(None, &hosts, 0, None, now),
            now,
            "no certificate: now"
        );
        let good = cert(&["www.example.com", "example.com"], 90 * DAY, 180 * DAY);
        assert_eq!(
            next_attempt(Some(&good), &hosts, 0, None, now),
            150 * DAY,
            "at two thirds"
        );
        let partial = cert(&["www.example.com"], 90 * DAY, 180 * DAY);
        assert_eq!(
            next_attempt(Some(&partial), &hosts, 0, None, now),
            now,
            "a name was added: now"
        );
        // Failures: the due time moves by the backoff from the last failure, not earlier.
        assert_eq!(next_attempt(None, &hosts, 1, Some(now), now), now + 60_000);
        assert_eq!(next_attempt(None, &hosts, 3, Some(now), now), now + 240_000);
        assert_eq!(
            next_attempt(Some(&good), &hosts, 2, Some(now), now),
            150 * DAY,
            "not due yet: the backoff is moot"
        );
        assert_eq!(backoff(1), 60_000);
        assert_eq!(backoff(30), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
