//! The PowerDNS Authoritative HTTP API (`/api/v1`): read the zone's RRsets, replace ours with
//! one PATCH per batch (`changetype: REPLACE`), ownership noted in each RRset's comment.
//!
//! Status codes: 204 applied; 401/403 bad or missing API key; 404 zone (or server id) unknown;
//! 422 the change was refused (the body's `error` says why); 5xx and transport errors retry.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use hickory_proto::rr::{Name, RecordType};
use serde::{Deserialize, Serialize};

use super::{Key, Outcome, Provider, ProviderError, RrSet, OWNER_TEXT};
use crate::config::{PowerDnsConfig, Secret};

pub struct PowerDns {
    base: String,
    server_id: String,
    api_key: Secret,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct ZoneJson {
    #[serde(default)]
    rrsets: Vec<RrsetJson>,
}

#[derive(Deserialize, Serialize)]
struct RrsetJson {
    name: String,
    #[serde(rename = "type")]
    rtype: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttl: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    changetype: Option<String>,
    #[serde(default)]
    records: Vec<RecordJson>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    comments: Vec<CommentJson>,
}

#[derive(Deserialize, Serialize)]
struct RecordJson {
    content: String,
    #[serde(default)]
    disabled: bool,
}

#[derive(Deserialize, Serialize)]
struct CommentJson {
    content: String,
    #[serde(default)]
    account: String,
}

#[derive(Deserialize)]
struct ErrorJson {
    error: String,
}

impl PowerDns {
    pub fn new(cfg: &PowerDnsConfig, timeout: Duration) -> Result<Self, String> {
        Ok(PowerDns {
            base: cfg.url.trim_end_matches('/').to_string(),
            server_id: cfg.server_id.clone(),
            api_key: cfg.api_key.clone(),
            http: crate::http::client(timeout)?,
        })
    }

    fn zone_url(&self, zone: &Name) -> String {
        format!(
            "{}/api/v1/servers/{}/zones/{}",
            self.base,
            self.server_id,
            zone.to_ascii()
        )
    }

    async fn error_for(&self, zone: &Name, resp: reqwest::Response) -> ProviderError {
        let status = resp.status();
        let retry = crate::http::retry_after(resp.headers());
        let body = resp.text().await.unwrap_or_default();
        let why = serde_json::from_str::<ErrorJson>(&body)
            .map(|e| e.error)
            .unwrap_or_else(|_| body.chars().take(200).collect());
        match status.as_u16() {
            401 | 403 => ProviderError::Auth(format!(
                "PowerDNS at {} answered {status}: check api_key (the webserver's api-key setting)",
                self.base
            )),
            404 => ProviderError::ZoneNotFound(format!(
                "PowerDNS at {} has no zone {zone} on server `{}` ({why})",
                self.base, self.server_id
            )),
            422 | 400 => ProviderError::Rejected(format!("PowerDNS refused the change: {why}")),
            429 => ProviderError::Throttled { retry_after: retry },
            _ => ProviderError::Unreachable(format!(
                "PowerDNS at {} answered {status}: {why}",
                self.base
            )),
        }
    }

    async fn get_zone(&self, zone: &Name) -> Result<ZoneJson, ProviderError> {
        let resp = self
            .http
            .get(self.zone_url(zone))
            .header("X-API-Key", &self.api_key.0)
            .send()
            .await
            .map_err(|e| {
                ProviderError::unreachable_http(e, &format!("PowerDNS at {}", self.base))
            })?;
        if !resp.status().is_success() {
            return Err(self.error_for(zone, resp).await);
        }
        resp.json::<ZoneJson>()
            .await
            .map_err(|e| ProviderError::Protocol(format!("PowerDNS zone JSON: {e}")))
    }
}

#[async_trait::async_trait]
impl Provider for PowerDns {
    fn describe(&self) -> String {
        format!("powerdns at {} (server {})", self.base, self.server_id)
    }

    async fn read(&self, zone: &Name, keys: &[Key]) -> Result<BTreeMap<Key, RrSet>, ProviderError> {
        let z = self.get_zone(zone).await?;
        let mut out = BTreeMap::new();
        for set in z.rrsets {
            let Ok(name) = Name::from_ascii(&set.name) else {
                continue;
            };
            let Ok(rtype) = set.rtype.parse::<RecordType>() else {
                continue;
            };
            let key = (name.to_lowercase(), rtype);
            if !keys
                .iter()
                .any(|k| k.0.to_lowercase() == key.0 && k.1 == rtype)
            {
                continue;
            }
            let addrs: Vec<IpAddr> = set
                .records
                .iter()
                .filter(|r| !r.disabled)
                .filter_map(|r| r.content.parse().ok())
                .collect();
            let original = keys
                .iter()
                .find(|k| k.0.to_lowercase() == key.0 && k.1 == rtype)
                .expect("checked")
                .clone();
            out.insert(
                original.clone(),
                RrSet::new(original.0, rtype, set.ttl.unwrap_or(0), addrs),
            );
        }
        Ok(out)
    }

    async fn marked(
        &self,
        zone: &Name,
        keys: &[Key],
    ) -> Result<std::collections::BTreeSet<Key>, ProviderError> {
        let z = self.get_zone(zone).await?;
        let mut out = std::collections::BTreeSet::new();
        for set in z.rrsets {
            if !set
                .comments
                .iter()
                .any(|c| super::is_owner_text(&c.content))
            {
                continue;
            }
            let Ok(name) = Name::from_ascii(&set.name) else {
                continue;
            };
            if let Some(k) = keys
                .iter()
                .find(|k| k.0.to_lowercase() == name.to_lowercase() && k.1.to_string() == set.rtype)
            {
                out.insert(k.clone());
            }
        }
        Ok(out)
    }

    async fn apply(&self, zone: &Name, changes: &[RrSet]) -> Result<Vec<Outcome>, ProviderError> {
        let rrsets: Vec<RrsetJson> = changes
            .iter()
            .map(|c| RrsetJson {
                name: c.name.to_ascii(),
                rtype: c.rtype.to_string(),
                ttl: Some(c.ttl),
                changetype: Some("REPLACE".to_string()),
                records: c
                    .addrs
                    .iter()
                    .map(|a| RecordJson {
                        content: a.to_string(),
                        disabled: false,
                    })
                    .collect(),
                comments: vec![CommentJson {
                    content: OWNER_TEXT.to_string(),
                    account: "understudy".to_string(),
                }],
            })
            .collect();
        let result = self
            .http
            .patch(self.zone_url(zone))
            .header("X-API-Key", &self.api_key.0)
            .json(&serde_json::json!({ "rrsets": rrsets }))
            .send()
            .await;
        let resp = match result {
            Ok(r) => r,
            // Sent but unanswered: PowerDNS may have applied it.
            Err(e) if e.is_timeout() => {
                let why = format!("no answer from PowerDNS at {} in time", self.base);
                return Ok(changes
                    .iter()
                    .map(|_| Outcome::CouldNotConfirm(why.clone()))
                    .collect());
            }
            Err(e) => {
                return Err(ProviderError::unreachable_http(
                    e,
                    &format!("PowerDNS at {}", self.base),
                ))
            }
        };
        if resp.status().is_success() {
            return Ok(changes.iter().map(|_| Outcome::Applied).collect());
        }
        Err(self.error_for(zone, resp).await)
    }

    async fn set_txt(
        &self,
        zone: &Name,
        name: &Name,
        values: &[String],
    ) -> Result<(), ProviderError> {
        // TXT content is given in zone-file form: each string quoted.
        let quote = |v: &String| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""));
        let rrset = RrsetJson {
            name: name.to_ascii(),
            rtype: "TXT".to_string(),
            ttl: (!values.is_empty()).then_some(10),
            changetype: Some(
                if values.is_empty() {
                    "DELETE"
                } else {
                    "REPLACE"
                }
                .to_string(),
            ),
            records: values
                .iter()
                .map(|v| RecordJson {
                    content: quote(v),
                    disabled: false,
                })
                .collect(),
            comments: vec![],
        };
        let resp = self
            .http
            .patch(self.zone_url(zone))
            .header("X-API-Key", &self.api_key.0)
            .json(&serde_json::json!({ "rrsets": [rrset] }))
            .send()
            .await
            .map_err(|e| {
                ProviderError::unreachable_http(e, &format!("PowerDNS at {}", self.base))
            })?;
        if resp.status().is_success() {
            return Ok(());
        }
        Err(self.error_for(zone, resp).await)
    }

    async fn check(&self, zone: &Name) -> Result<String, ProviderError> {
        let z = self.get_zone(zone).await?;
        Ok(format!(
            "PowerDNS at {} holds {zone} ({} RRsets); API key accepted",
            self.base,
            z.rrsets.len()
        ))
    }
}
