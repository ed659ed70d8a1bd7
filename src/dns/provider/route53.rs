//! Amazon Route 53 through the official AWS SDK for Rust.
//!
//! Credentials come from the standard chain (environment, shared config/credentials files, a
//! named `profile`), or from the config. The hosted zone id is configured or looked up by name
//! (ListHostedZonesByName). A batch is one ChangeResourceRecordSets call of UPSERTs per zone,
//! plus an UPSERT of the ownership TXT at `_understudy.<name>`; then GetChange is polled until
//! INSYNC, within `confirm_timeout`, else the change is reported "could not confirm".
//! `Throttling` and `PriorRequestNotComplete` are rate limits (retried with backoff by the
//! reconciler). TLS goes through rustls with ring, like the rest of the binary.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use aws_sdk_route53::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet, RrType,
};
use aws_sdk_route53::Client;
use hickory_proto::rr::{Name, RecordType};
use tokio::sync::OnceCell;

use super::{owner_marker, Key, Outcome, Provider, ProviderError, RrSet, OWNER_TEXT};
pub use crate::config::Route53Config;

pub struct Route53 {
    settings: Route53Config,
    /// Timeout of each call.
    timeout: Duration,
    client: OnceCell<Client>,
    zone_ids: tokio::sync::Mutex<BTreeMap<String, String>>,
}

impl Route53 {
    pub fn new(cfg: &Route53Config, timeout: Duration) -> Self {
        Route53 {
            settings: cfg.clone(),
            timeout,
            client: OnceCell::new(),
            zone_ids: tokio::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// Whether a submitted change is (or becomes, within `confirm_timeout`) INSYNC.
    async fn insync(
        &self,
        client: &Client,
        info: &aws_sdk_route53::types::ChangeInfo,
    ) -> Result<bool, ProviderError> {
        if *info.status() == ChangeStatus::Insync {
            return Ok(true);
        }
        let id = info.id().to_string();
        wait_insync(
            || async {
                let r = client
                    .get_change()
                    .id(&id)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                Ok(r.change_info()
                    .is_some_and(|i| *i.status() == ChangeStatus::Insync))
            },
            self.settings.confirm_timeout,
            Duration::from_secs(2),
        )
        .await
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async {
                let s = &self.settings;
                let http = aws_smithy_http_client::Builder::new()
                    .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                        aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                    ))
                    .build_https();
                let timeouts = aws_config::timeout::TimeoutConfig::builder()
                    .operation_attempt_timeout(self.timeout)
                    .connect_timeout(self.timeout)
                    .build();
                let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .http_client(http.clone())
                    .timeout_config(timeouts)
                    .region(aws_config::Region::new(s.region.clone()));
                if let Some(p) = &s.profile {
                    // A named profile means exactly that profile: no silent fallback to other
                    // sources (instance metadata, environment) when it is missing.
                    let pc = aws_config::provider_config::ProviderConfig::default()
                        .with_http_client(http.clone())
                        .with_region(Some(aws_config::Region::new(s.region.clone())));
                    let creds = aws_config::profile::ProfileFileCredentialsProvider::builder()
                        .configure(&pc)
                        .profile_name(p)
                        .build();
                    loader = loader.profile_name(p).credentials_provider(creds);
                }
                if let Some((id, secret)) = &s.credentials {
                    loader = loader.credentials_provider(aws_credential_types::Credentials::new(
                        id,
                        &secret.0,
                        None,
                        None,
                        "understudy config",
                    ));
                }
                if let Some(e) = &s.endpoint {
                    loader = loader.endpoint_url(e);
                }
                // Retries are the reconciler's job (it always retries with the latest value).
                loader = loader.retry_config(aws_config::retry::RetryConfig::disabled());
                Client::new(&loader.load().await)
            })
            .await
    }

    async fn zone_id(&self, zone: &Name) -> Result<String, ProviderError> {
        if let Some(id) = &self.settings.hosted_zone_id {
            return Ok(id.trim_start_matches("/hostedzone/").to_string());
        }
        let zname = zone.to_ascii();
        if let Some(id) = self.zone_ids.lock().await.get(&zname) {
            return Ok(id.clone());
        }
        let resp = self
            .client()
            .await
            .list_hosted_zones_by_name()
            .dns_name(&zname)
            .max_items(1)
            .send()
            .await
            .map_err(sdk_error)?;
        let id = resp
            .hosted_zones()
            .iter()
            .find(|z| {
                z.name().eq_ignore_ascii_case(&zname)
                    && !z.config().is_some_and(|c| c.private_zone())
            })
            .map(|z| z.id().trim_start_matches("/hostedzone/").to_string())
            .ok_or_else(|| {
                ProviderError::ZoneNotFound(format!(
                    "Route 53 has no public hosted zone {zname} visible to these credentials"
                ))
            })?;
        self.zone_ids.lock().await.insert(zname, id.clone());
        Ok(id)
    }
}

fn rr_type(t: RecordType) -> RrType {
    match t {
        RecordType::AAAA => RrType::Aaaa,
        RecordType::TXT => RrType::Txt,
        _ => RrType::A,
    }
}

/// Maps an SDK error to what it means for the reconciler.
pub fn sdk_error<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    e: SdkError<E>,
) -> ProviderError {
    let code = e.code().unwrap_or("").to_string();
    let message = e.message().unwrap_or("").to_string();
    let text = || aws_sdk_route53::error::DisplayErrorContext(&e).to_string();
    match &e {
        SdkError::DispatchFailure(d)
            if !d.is_io() && !d.is_timeout() && text().contains("credential") =>
        {
            return ProviderError::Auth(format!(
                "Route 53: could not load AWS credentials: {}",
                short(&text())
            ))
        }
        SdkError::DispatchFailure(_) => {
            return ProviderError::Unreachable(format!(
                "Route 53: cannot send the request: {}",
                short(&text())
            ))
        }
        SdkError::TimeoutError(_) => {
            return ProviderError::Unreachable("Route 53: no answer in time".to_string())
        }
        SdkError::ResponseError(_) => {
            return ProviderError::Protocol(format!(
                "Route 53: unreadable answer: {}",
                short(&text())
            ))
        }
        SdkError::ConstructionFailure(_) => {
            return ProviderError::Protocol(format!(
                "Route 53: cannot build the request: {}",
                short(&text())
            ))
        }
        _ => {}
    }
    classify(&code, &message)
}

/// The SDK's error chains repeat themselves; keep the first 400 characters.
fn short(text: &str) -> String {
    let t: String = text.chars().take(400).collect();
    if t.len() < text.len() {
        format!("{t}...")
    } else {
        t
    }
}

/// Route 53 error codes → provider errors.
pub fn classify(code: &str, message: &str) -> ProviderError {
    let both = if message.is_empty() {
        code.to_string()
    } else {
        format!("{code}: {message}")
    };
    match code {
        "Throttling" | "ThrottlingException" | "PriorRequestNotComplete" | "RequestLimitExceeded" => ProviderError::Throttled { retry_after: None },
        "InvalidClientTokenId" | "SignatureDoesNotMatch" | "AccessDenied" | "AccessDeniedException" | "UnrecognizedClientException" | "InvalidSignatureException"
        | "ExpiredToken" | "ExpiredTokenException" | "MissingAuthenticationToken" | "IncompleteSignature" => {
            ProviderError::Auth(format!("Route 53 refused the credentials ({both}); they need route53:ListHostedZonesByName, ListResourceRecordSets, ChangeResourceRecordSets and GetChange"))
        }
        "NoSuchHostedZone" | "HostedZoneNotFound" => ProviderError::ZoneNotFound(format!("Route 53: {both}")),
        "InvalidChangeBatch" | "InvalidInput" | "InvalidArgument" => ProviderError::Rejected(format!("Route 53: {both}")),
        "" => ProviderError::Unreachable(format!("Route 53 failed without an error code{}", if message.is_empty() { String::new() } else { format!(": {message}") })),
        _ if code.starts_with("ServiceUnavailable") || code.starts_with("InternalError") || code.starts_with("InternalFailure") => ProviderError::Unreachable(format!("Route 53: {both}")),
        _ => ProviderError::Rejected(format!("Route 53: {both}")),
    }
}

/// Polls `status` (true = INSYNC) every `every` until true or `bound` has passed. Returns
/// whether it became INSYNC. An error from a poll is returned as is.
pub async fn wait_insync<F, Fut>(
    mut status: F,
    bound: Duration,
    every: Duration,
) -> Result<bool, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, ProviderError>>,
{
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        if status().await? {
            return Ok(true);
        }
        if tokio::time::Instant::now() + every > deadline {
            return Ok(false);
        }
        tokio::time::sleep(every).await;
    }
}

#[async_trait::async_trait]
impl Provider for Route53 {
    fn describe(&self) -> String {
        let at = match &self.settings.endpoint {
            Some(e) => format!("route53 at {e}"),
            None => format!("route53 ({})", self.settings.region),
        };
        match &self.settings.profile {
            Some(p) => format!("{at} with profile `{p}`"),
            None => at,
        }
    }

    async fn read(&self, zone: &Name, keys: &[Key]) -> Result<BTreeMap<Key, RrSet>, ProviderError> {
        let zone_id = self.zone_id(zone).await?;
        let client = self.client().await;
        let wanted: BTreeSet<(String, RecordType)> = keys
            .iter()
            .map(|(n, t)| (n.to_ascii().to_ascii_lowercase(), *t))
            .collect();
        let mut out = BTreeMap::new();
        let (mut next_name, mut next_type): (Option<String>, Option<RrType>) = (None, None);
        for _ in 0..10_000 {
            let mut req = client
                .list_resource_record_sets()
                .hosted_zone_id(&zone_id)
                .max_items(300);
            if let Some(n) = &next_name {
                req = req.start_record_name(n);
            }
            if let Some(t) = &next_type {
                req = req.start_record_type(t.clone());
            }
            let resp = req.send().await.map_err(sdk_error)?;
            for set in resp.resource_record_sets() {
                let rtype = match set.r#type() {
                    RrType::A => RecordType::A,
                    RrType::Aaaa => RecordType::AAAA,
                    _ => continue,
                };
                // Route 53 escapes some characters as \ooo; our names are plain LDH.
                let name = set.name().to_ascii_lowercase();
                if !wanted.contains(&(name.clone(), rtype)) {
                    continue;
                }
                let addrs: Vec<IpAddr> = set
                    .resource_records()
                    .iter()
                    .filter_map(|r| r.value().parse().ok())
                    .collect();
                if let Some(key) = keys
                    .iter()
                    .find(|(n, t)| n.to_ascii().eq_ignore_ascii_case(&name) && *t == rtype)
                {
                    out.insert(
                        key.clone(),
                        RrSet::new(key.0.clone(), rtype, set.ttl().unwrap_or(0) as u32, addrs),
                    );
                }
            }
            if !resp.is_truncated() {
                return Ok(out);
            }
            next_name = resp.next_record_name().map(String::from);
            next_type = resp.next_record_type().cloned();
        }
        Err(ProviderError::Protocol(
            "Route 53 kept paginating".to_string(),
        ))
    }

    async fn marked(&self, zone: &Name, keys: &[Key]) -> Result<BTreeSet<Key>, ProviderError> {
        let zone_id = self.zone_id(zone).await?;
        let client = self.client().await;
        let mut out = BTreeSet::new();
        for k in keys {
            let marker = super::owner_marker(&k.0).to_ascii().to_ascii_lowercase();
            let resp = client
                .list_resource_record_sets()
                .hosted_zone_id(&zone_id)
                .start_record_name(&marker)
                .start_record_type(RrType::Txt)
                .max_items(1)
                .send()
                .await
                .map_err(sdk_error)?;
            let owned = resp.resource_record_sets().iter().any(|set| {
                set.name().eq_ignore_ascii_case(&marker)
                    && set.r#type() == &RrType::Txt
                    && set
                        .resource_records()
                        .iter()
                        .any(|r| super::is_owner_text(r.value()))
            });
            if owned {
                out.insert(k.clone());
            }
        }
        Ok(out)
    }

    async fn set_txt(
        &self,
        zone: &Name,
        name: &Name,
        values: &[String],
    ) -> Result<(), ProviderError> {
        let zone_id = self.zone_id(zone).await?;
        let client = self.client().await;
        let build = |e: aws_sdk_route53::error::BuildError| {
            ProviderError::Protocol(format!("cannot build the change: {e}"))
        };
        let (action, set) = if values.is_empty() {
            // A DELETE must name the record set exactly as it is: read it first.
            let resp = client
                .list_resource_record_sets()
                .hosted_zone_id(&zone_id)
                .start_record_name(name.to_ascii())
                .start_record_type(RrType::Txt)
                .max_items(1)
                .send()
                .await
                .map_err(sdk_error)?;
            match resp.resource_record_sets().first() {
                Some(s)
                    if s.name().eq_ignore_ascii_case(&name.to_ascii())
                        && *s.r#type() == RrType::Txt =>
                {
                    (ChangeAction::Delete, s.clone())
                }
                _ => return Ok(()),
            }
        } else {
            let mut set = ResourceRecordSet::builder()
                .name(name.to_ascii())
                .r#type(RrType::Txt)
                .ttl(10);
            for v in values {
                set = set.resource_records(
                    ResourceRecord::builder()
                        .value(format!("\"{v}\""))
                        .build()
                        .map_err(build)?,
                );
            }
            (ChangeAction::Upsert, set.build().map_err(build)?)
        };
        let change = Change::builder()
            .action(action)
            .resource_record_set(set)
            .build()
            .map_err(build)?;
        let batch = ChangeBatch::builder()
            .changes(change)
            .comment("understudy: ACME challenge")
            .build()
            .map_err(build)?;
        let resp = client
            .change_resource_record_sets()
            .hosted_zone_id(&zone_id)
            .change_batch(batch)
            .send()
            .await
            .map_err(sdk_error)?;
        let info = resp.change_info().ok_or_else(|| {
            ProviderError::Protocol("Route 53 returned no ChangeInfo".to_string())
        })?;
        match self.insync(client, info).await? {
            true => Ok(()),
            false => Err(ProviderError::Unreachable(format!(
                "change {} is still PENDING after {:?}",
                info.id(),
                self.settings.confirm_timeout
            ))),
        }
    }

    async fn apply(&self, zone: &Name, changes: &[RrSet]) -> Result<Vec<Outcome>, ProviderError> {
        let zone_id = self.zone_id(zone).await?;
        let client = self.client().await;
        let build = |e: aws_sdk_route53::error::BuildError| {
            ProviderError::Protocol(format!("cannot build the change: {e}"))
        };
        let mut batch = vec![];
        let mut owners = BTreeSet::new();
        for c in changes {
            let mut set = ResourceRecordSet::builder()
                .name(c.name.to_ascii())
                .r#type(rr_type(c.rtype))
                .ttl(i64::from(c.ttl));
            for a in &c.addrs {
                set = set.resource_records(
                    ResourceRecord::builder()
                        .value(a.to_string())
                        .build()
                        .map_err(build)?,
                );
            }
            batch.push(
                Change::builder()
                    .action(ChangeAction::Upsert)
                    .resource_record_set(set.build().map_err(build)?)
                    .build()
                    .map_err(build)?,
            );
            let owner = owner_marker(&c.name);
            if owners.insert(owner.clone()) {
                let txt = ResourceRecordSet::builder()
                    .name(owner.to_ascii())
                    .r#type(RrType::Txt)
                    .ttl(i64::from(c.ttl))
                    .resource_records(
                        ResourceRecord::builder()
                            .value(format!("\"{OWNER_TEXT}\""))
                            .build()
                            .map_err(build)?,
                    )
                    .build()
                    .map_err(build)?;
                batch.push(
                    Change::builder()
                        .action(ChangeAction::Upsert)
                        .resource_record_set(txt)
                        .build()
                        .map_err(build)?,
                );
            }
        }
        let batch = ChangeBatch::builder()
            .set_changes(Some(batch))
            .comment("understudy: desired records")
            .build()
            .map_err(build)?;
        let resp = client
            .change_resource_record_sets()
            .hosted_zone_id(&zone_id)
            .change_batch(batch)
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(SdkError::TimeoutError(_)) => {
                let why = "no answer from Route 53 in time; the change may have been accepted"
                    .to_string();
                return Ok(changes
                    .iter()
                    .map(|_| Outcome::CouldNotConfirm(why.clone()))
                    .collect());
            }
            Err(e) => return Err(sdk_error(e)),
        };
        let Some(info) = resp.change_info() else {
            return Err(ProviderError::Protocol(
                "Route 53 accepted the change but returned no ChangeInfo".to_string(),
            ));
        };
        let change_id = info.id().to_string();
        if self.insync(client, info).await? {
            Ok(changes.iter().map(|_| Outcome::Applied).collect())
        } else {
            let why = format!(
                "change {change_id} is still PENDING after {:?}",
                self.settings.confirm_timeout
            );
            Ok(changes
                .iter()
                .map(|_| Outcome::CouldNotConfirm(why.clone()))
                .collect())
        }
    }

    async fn check(&self, zone: &Name) -> Result<String, ProviderError> {
        let zone_id = self.zone_id(zone).await?;
        self.client()
            .await
            .list_resource_record_sets()
            .hosted_zone_id(&zone_id)
            .max_items(1)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(format!(
            "Route 53 hosted zone {zone} (id {zone_id}) readable with these credentials"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn pending_then_insync_is_confirmed() {
        let polls = Arc::new(AtomicU32::new(0));
        let p = polls.clone();
        let ok = wait_insync(
            move || {
                let p = p.clone();
                async move { Ok(p.fetch_add(1, Ordering::SeqCst) >= 3) }
            },
            Duration::from_secs(60),
            Duration::from_secs(2),
        )
        .await
        .unwrap();
        assert!(ok);
        assert_eq!(
            polls.load(Ordering::SeqCst),
            4,
            "three PENDING answers, then INSYNC"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn pending_forever_gives_up_at_the_bound() {
        let started = tokio::time::Instant::now();
        let ok = wait_insync(
            || async { Ok(false) },
            Duration::from_secs(60),
            Duration::from_secs(2),
        )
        .await
        .unwrap();
        assert!(!ok);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(58) && waited <= Duration::from_secs(60),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_poll_is_reported() {
        let err = wait_insync(
            || async { Err(ProviderError::Throttled { retry_after: None }) },
            Duration::from_secs(60),
            Duration::from_secs(2),
        )
        .await
        .unwrap_err();
        assert!(err.is_transient());
    }

    #[test]
    fn error_codes_mean_what_route53_documents() {
        assert!(matches!(
            classify("Throttling", "Rate exceeded"),
            ProviderError::Throttled { .. }
        ));
        assert!(matches!(
            classify("PriorRequestNotComplete", ""),
            ProviderError::Throttled { .. }
        ));
        assert!(matches!(
            classify("InvalidClientTokenId", "bad"),
            ProviderError::Auth(_)
        ));
        assert!(matches!(
            classify("SignatureDoesNotMatch", ""),
            ProviderError::Auth(_)
        ));
        assert!(matches!(
            classify("AccessDenied", ""),
            ProviderError::Auth(_)
        ));
        assert!(matches!(
            classify("NoSuchHostedZone", ""),
            ProviderError::ZoneNotFound(_)
        ));
        assert!(matches!(
            classify("InvalidChangeBatch", "x"),
            ProviderError::Rejected(_)
        ));
        assert!(matches!(
            classify("ServiceUnavailable", ""),
            ProviderError::Unreachable(_)
        ));
        assert!(matches!(classify("", ""), ProviderError::Unreachable(_)));
    }
}
