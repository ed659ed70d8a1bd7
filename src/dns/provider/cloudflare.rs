//! Cloudflare API v4: API token (Bearer), zone id looked up by name (or configured), records
//! listed with pagination, updated with PUT, created with POST, extras deleted.
//!
//! Every response has the v4 envelope `{success, errors: [{code, message}], messages, result,
//! result_info: {page, per_page, count, total_count, total_pages}}`. 401/403 (e.g. code 10000
//! "Authentication error") mean bad or under-privileged token; 429 means rate limited, retried
//! after `Retry-After`. Cloudflare has no batch write for plain records here, so a change is a
//! few calls; a change interrupted half-way is re-read and finished on the next pass.
//!
//! `proxied` is kept as found on existing records unless configured; new records get the
//! configured value or false. TTLs below 60 s (not allowed outside Enterprise) are written as
//! 60; a proxied record (whose TTL Cloudflare fixes to "auto") reads back as that same TTL so
//! the plan stays quiet. Ownership is noted in each record's `comment`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use hickory_proto::rr::{Name, RecordType};
use serde::{Deserialize, Serialize};

use super::{Key, Outcome, Provider, ProviderError, RrSet};
use crate::config::Secret;

pub use crate::config::CloudflareConfig;
const OWNER_COMMENT: &str =
    "managed by understudy (heritage=understudy); edits will be overwritten";

pub struct Cloudflare {
    endpoint: String,
    token: Secret,
    zone_id: Option<String>,
    proxied: Option<bool>,
    /// The TTL understudy writes (already raised to Cloudflare's minimum).
    ttl: u32,
    http: reqwest::Client,
    zone_ids: Mutex<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct Envelope<T> {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    errors: Vec<ApiError>,
    result: Option<T>,
    result_info: Option<ResultInfo>,
}

#[derive(Deserialize, Debug)]
struct ApiError {
    code: i64,
    message: String,
}

#[derive(Deserialize)]
struct ResultInfo {
    #[serde(default)]
    page: u32,
    #[serde(default)]
    total_pages: u32,
}

#[derive(Deserialize)]
struct ZoneJson {
    id: String,
}

#[derive(Deserialize, Serialize, Clone, Debug)]
struct RecordJson {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    id: String,
    #[serde(rename = "type")]
    rtype: String,
    name: String,
    content: String,
    ttl: u32,
    #[serde(default)]
    proxied: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
}

impl Cloudflare {
    pub fn new(cfg: &CloudflareConfig, ttl: u32, timeout: Duration) -> Result<Self, String> {
        Ok(Cloudflare {
            endpoint: cfg.endpoint.trim_end_matches('/').to_string(),
            token: cfg.api_token.clone(),
            zone_id: cfg.zone_id.clone(),
            proxied: cfg.proxied,
            ttl: ttl.max(60),
            http: crate::http::client(timeout)?,
            zone_ids: Mutex::new(BTreeMap::new()),
        })
    }

    /// Sends a request and unwraps the v4 envelope; maps HTTP status and error codes.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<(T, Option<ResultInfo>), ProviderError> {
        let resp = req
            .bearer_auth(&self.token.0)
            .send()
            .await
            .map_err(|e| ProviderError::unreachable_http(e, "Cloudflare API"))?;
        let status = resp.status();
        let retry = crate::http::retry_after(resp.headers());
        let text = resp
            .text()
            .await
            .map_err(|e| ProviderError::unreachable_http(e, "Cloudflare API"))?;
        let env: Result<Envelope<T>, _> = serde_json::from_str(&text);
        let errors = match &env {
            Ok(e) => e
                .errors
                .iter()
                .map(|e| format!("{} (code {})", e.message, e.code))
                .collect::<Vec<_>>()
                .join("; "),
            Err(_) => text.chars().take(200).collect(),
        };
        match status.as_u16() {
            429 => return Err(ProviderError::Throttled { retry_after: retry }),
            401 | 403 => {
                return Err(ProviderError::Auth(format!(
                    "Cloudflare answered {status}: {errors}; the token needs Zone:Read and DNS:Edit on the zone"
                )))
            }
            500..=599 => return Err(ProviderError::Unreachable(format!("Cloudflare answered {status}: {errors}"))),
            _ => {}
        }
        let env = env.map_err(|e| {
            ProviderError::Protocol(format!(
                "Cloudflare answered {status} with something that is not the v4 envelope: {e}"
            ))
        })?;
        if !status.is_success() || !env.success {
            if env
                .errors
                .iter()
                .any(|e| matches!(e.code, 9109 | 10000 | 1000 | 6003 | 6111))
            {
                return Err(ProviderError::Auth(format!(
                    "Cloudflare answered {status}: {errors}"
                )));
            }
            return Err(ProviderError::Rejected(format!(
                "Cloudflare answered {status}: {errors}"
            )));
        }
        let result = env.result.ok_or_else(|| {
            ProviderError::Protocol("Cloudflare's answer has no result".to_string())
        })?;
        Ok((result, env.result_info))
    }

    async fn zone_id(&self, zone: &Name) -> Result<String, ProviderError> {
        if let Some(id) = &self.zone_id {
            return Ok(id.clone());
        }
        let zname = zone.to_ascii().trim_end_matches('.').to_string();
        if let Some(id) = self
            .zone_ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&zname)
        {
            return Ok(id.clone());
        }
        let (zones, _): (Vec<ZoneJson>, _) = self
            .call(
                self.http
                    .get(format!("{}/zones", self.endpoint))
                    .query(&[("name", zname.as_str())]),
            )
            .await?;
        let id = zones.into_iter().next().map(|z| z.id).ok_or_else(|| {
            ProviderError::ZoneNotFound(format!(
                "Cloudflare has no zone {zname} visible to this token"
            ))
        })?;
        self.zone_ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(zname, id.clone());
        Ok(id)
    }

    /// Every record of `rtype` (and `name`, if given) in the zone, across all pages.
    async fn list(
        &self,
        zone_id: &str,
        rtype: RecordType,
        name: Option<&str>,
    ) -> Result<Vec<RecordJson>, ProviderError> {
        let mut out = vec![];
        let mut page = 1u32;
        loop {
            let mut q = vec![
                ("type", rtype.to_string()),
                ("page", page.to_string()),
                ("per_page", "100".to_string()),
            ];
            if let Some(n) = name {
                q.push(("name", n.to_string()));
            }
            let (records, info): (Vec<RecordJson>, _) = self
                .call(
                    self.http
                        .get(format!("{}/zones/{zone_id}/dns_records", self.endpoint))
                        .query(&q),
                )
                .await?;
            out.extend(records);
            match info {
                Some(i) if i.page < i.total_pages && page < 10_000 => page = i.page.max(page) + 1,
                _ => return Ok(out),
            }
        }
    }

    async fn apply_one(&self, zone_id: &str, change: &RrSet) -> Result<Outcome, ProviderError> {
        let name = change.name.to_ascii().trim_end_matches('.').to_string();
        let existing = self.list(zone_id, change.rtype, Some(&name)).await?;
        let existing: Vec<RecordJson> = existing
            .into_iter()
            .filter(|r| r.name.eq_ignore_ascii_case(&name))
            .collect();
        let mut spare: Vec<&RecordJson> = existing.iter().collect();
        let base = format!("{}/zones/{zone_id}/dns_records", self.endpoint);
        for ip in &change.addrs {
            let content = ip.to_string();
            // Prefer the record that already has this content, then any other we own.
            let pos = spare
                .iter()
                .position(|r| r.content == content)
                .or(if spare.is_empty() { None } else { Some(0) });
            let reused = pos.map(|p| spare.remove(p));
            let proxied = self.proxied.or(reused.map(|r| r.proxied)).unwrap_or(false);
            let body = RecordJson {
                id: String::new(),
                rtype: change.rtype.to_string(),
                name: name.clone(),
                content,
                ttl: if proxied { 1 } else { self.ttl },
                proxied,
                comment: Some(OWNER_COMMENT.to_string()),
            };
            let result: Result<(RecordJson, _), _> = match reused {
                Some(r) => {
                    self.call(self.http.put(format!("{base}/{}", r.id)).json(&body))
                        .await
                }
                None => self.call(self.http.post(&base).json(&body)).await,
            };
            match result {
                Ok(_) => {}
                Err(ProviderError::Rejected(why)) => return Ok(Outcome::Rejected(why)),
                Err(e) => return Err(e),
            }
        }
        for r in spare {
            let result: Result<(serde_json::Value, _), _> = self
                .call(self.http.delete(format!("{base}/{}", r.id)))
                .await;
            match result {
                Ok(_) => {}
                Err(ProviderError::Rejected(why)) => return Ok(Outcome::Rejected(why)),
                Err(e) => return Err(e),
            }
        }
        Ok(Outcome::Applied)
    }
}

#[async_trait::async_trait]
impl Provider for Cloudflare {
    fn describe(&self) -> String {
        format!("cloudflare at {}", self.endpoint)
    }

    fn ttl_for(&self, wanted: u32) -> u32 {
        wanted.max(60)
    }

    async fn read(&self, zone: &Name, keys: &[Key]) -> Result<BTreeMap<Key, RrSet>, ProviderError> {
        let zone_id = self.zone_id(zone).await?;
        let mut out = BTreeMap::new();
        for rtype in [RecordType::A, RecordType::AAAA] {
            if !keys.iter().any(|k| k.1 == rtype) {
                continue;
            }
            let mut by_name: BTreeMap<String, (u32, Vec<IpAddr>)> = BTreeMap::new();
            for r in self.list(&zone_id, rtype, None).await? {
                let Ok(ip) = r.content.parse::<IpAddr>() else {
                    continue;
                };
                let ttl = if r.proxied { self.ttl } else { r.ttl };
                let e = by_name
                    .entry(r.name.to_ascii_lowercase())
                    .or_insert((ttl, vec![]));
                e.1.push(ip);
            }
            for k in keys.iter().filter(|k| k.1 == rtype) {
                let n = crate::net::host_of(&k.0);
                if let Some((ttl, addrs)) = by_name.remove(&n) {
                    out.insert(k.clone(), RrSet::new(k.0.clone(), rtype, ttl, addrs));
                }
            }
        }
        Ok(out)
    }

    async fn marked(
        &self,
        zone: &Name,
        keys: &[Key],
    ) -> Result<std::collections::BTreeSet<Key>, ProviderError> {
        let zone_id = self.zone_id(zone).await?;
        let mut out = std::collections::BTreeSet::new();
        for rtype in [RecordType::A, RecordType::AAAA] {
            if !keys.iter().any(|k| k.1 == rtype) {
                continue;
            }
            let owned: Vec<String> = self
                .list(&zone_id, rtype, None)
                .await?
                .into_iter()
                .filter(|r| r.comment.as_deref().is_some_and(super::is_owner_text))
                .map(|r| r.name.to_ascii_lowercase())
                .collect();
            for k in keys.iter().filter(|k| k.1 == rtype) {
                if owned.contains(&crate::net::host_of(&k.0)) {
                    out.insert(k.clone());
                }
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
        let name = name.to_ascii().trim_end_matches('.').to_string();
        let base = format!("{}/zones/{zone_id}/dns_records", self.endpoint);
        let existing: Vec<RecordJson> = self
            .list(&zone_id, RecordType::TXT, Some(&name))
            .await?
            .into_iter()
            .filter(|r| r.name.eq_ignore_ascii_case(&name))
            .collect();
        // Cloudflare stores TXT records one by one: add what is missing, then drop the rest.
        for v in values.iter().filter(|v| {
            !existing
                .iter()
                .any(|r| r.content.trim_matches('"') == v.as_str())
        }) {
            let body = RecordJson {
                id: String::new(),
                rtype: "TXT".to_string(),
                name: name.clone(),
                content: v.clone(),
                ttl: self.ttl_for(60),
                proxied: false,
                comment: Some(OWNER_COMMENT.to_string()),
            };
            let _: (RecordJson, _) = self.call(self.http.post(&base).json(&body)).await?;
        }
        for r in existing.iter().filter(|r| {
            !values
                .iter()
                .any(|v| r.content.trim_matches('"') == v.as_str())
        }) {
            let _: (serde_json::Value, _) = self
                .call(self.http.delete(format!("{base}/{}", r.id)))
                .await?;
        }
        Ok(())
    }

    async fn apply(&self, zone: &Name, changes: &[RrSet]) -> Result<Vec<Outcome>, ProviderError> {
        let zone_id = self.zone_id(zone).await?;
        let mut out = vec![];
        for c in changes {
            out.push(self.apply_one(&zone_id, c).await?);
        }
        Ok(out)
    }

    async fn check(&self, zone: &Name) -> Result<String, ProviderError> {
        let zone_id = self.zone_id(zone).await?;
        let n = self.list(&zone_id, RecordType::A, None).await?.len();
        Ok(format!(
            "Cloudflare zone {zone} (id {zone_id}) readable with this token ({n} A records)"
        ))
    }
}
