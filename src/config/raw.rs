//! The raw form: what serde reads from the TOML, every value with its span, nothing checked yet.
//! [`super::Cx`] turns it into a [`super::Config`] or a located error.

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) data_dir: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) providers: Vec<Spanned<RawProvider>>,
    pub(super) ip: Option<Spanned<ip::RawIp>>,
    #[serde(default)]
    pub(super) ddns: Vec<Spanned<ip::RawDdns>>,
    pub(super) dns: Option<Spanned<RawDns>>,
    pub(super) api: Option<Spanned<api::RawApi>>,
    pub(super) standby: Option<Spanned<RawStandby>>,
    #[serde(default)]
    pub(super) notify: Vec<Spanned<notify::RawNotify>>,
    pub(super) watcher: Option<Spanned<watcher::RawWatcher>>,
    pub(super) status_page: Option<Spanned<status_page::RawStatusPage>>,
    #[serde(default)]
    pub(super) sites: Vec<Spanned<RawSite>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStandby {
    pub(super) listen: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) https_listen: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) banner: Option<Spanned<bool>>,
    pub(super) max_snapshot_age: Option<Spanned<DurationValue>>,
    pub(super) tracking_params: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) acme: Option<Spanned<RawAcme>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAcme {
    pub(super) directory: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) contact: Vec<Spanned<String>>,
    pub(super) ca_file: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    pub(super) cert_file: Option<Spanned<String>>,
    pub(super) key_file: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDns {
    pub(super) listen: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) ttl: Option<Spanned<i64>>,
    pub(super) refresh: Option<Spanned<DurationValue>>,
    pub(super) verify_timeout: Option<Spanned<DurationValue>>,
    #[serde(default)]
    pub(super) zones: Vec<Spanned<RawZone>>,
    #[serde(default)]
    pub(super) secondaries: Vec<Spanned<RawPeer>>,
    pub(super) also_notify: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub(super) primaries: Vec<Spanned<RawPeer>>,
}

/// `[[dns.secondaries]]` (a nameserver that takes the built-in zones by zone transfer) and
/// `[[dns.primaries]]` (one this server takes zones from): the same keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPeer {
    pub(super) name: Option<Spanned<String>>,
    pub(super) address: Option<Spanned<String>>,
    pub(super) zones: Option<Vec<Spanned<String>>>,
    pub(super) tsig_key_file: Option<Spanned<String>>,
    pub(super) tsig_key_name: Option<Spanned<String>>,
    pub(super) tsig_algorithm: Option<Spanned<String>>,
    pub(super) tsig_secret: Option<Spanned<String>>,
    pub(super) tsig_secret_file: Option<Spanned<String>>,
    pub(super) tsig_secret_env: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawZone {
    pub(super) name: Option<Spanned<String>>,
    pub(super) provider: Option<Spanned<String>>,
    pub(super) verify: Option<Vec<Spanned<String>>>,
    pub(super) nameservers: Option<Vec<Spanned<String>>>,
    pub(super) hostmaster: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) records: Vec<Spanned<String>>,
    pub(super) dnssec: Option<Spanned<RawDnssec>>,
}

/// Every key any provider type takes; which apply to which type is checked in `build_provider`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProvider {
    pub(super) name: Option<Spanned<String>>,
    #[serde(rename = "type")]
    pub(super) kind: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<DurationValue>>,
    // rfc2136
    pub(super) server: Option<Spanned<String>>,
    pub(super) tsig_key_file: Option<Spanned<String>>,
    pub(super) tsig_key_name: Option<Spanned<String>>,
    pub(super) tsig_algorithm: Option<Spanned<String>>,
    pub(super) tsig_secret: Option<Spanned<String>>,
    pub(super) tsig_secret_file: Option<Spanned<String>>,
    pub(super) tsig_secret_env: Option<Spanned<String>>,
    // powerdns
    pub(super) url: Option<Spanned<String>>,
    pub(super) server_id: Option<Spanned<String>>,
    pub(super) api_key: Option<Spanned<String>>,
    pub(super) api_key_file: Option<Spanned<String>>,
    pub(super) api_key_env: Option<Spanned<String>>,
    // cloudflare
    pub(super) endpoint: Option<Spanned<String>>,
    pub(super) api_token: Option<Spanned<String>>,
    pub(super) api_token_file: Option<Spanned<String>>,
    pub(super) api_token_env: Option<Spanned<String>>,
    pub(super) zone_id: Option<Spanned<String>>,
    pub(super) proxied: Option<Spanned<bool>>,
    // route53
    pub(super) hosted_zone_id: Option<Spanned<String>>,
    pub(super) region: Option<Spanned<String>>,
    pub(super) profile: Option<Spanned<String>>,
    pub(super) access_key_id: Option<Spanned<String>>,
    pub(super) secret_access_key: Option<Spanned<String>>,
    pub(super) secret_access_key_file: Option<Spanned<String>>,
    pub(super) secret_access_key_env: Option<Spanned<String>>,
    pub(super) confirm_timeout: Option<Spanned<DurationValue>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSite {
    pub(super) name: Option<Spanned<String>>,
    pub(super) domain: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) aliases: Vec<Spanned<String>>,
    pub(super) primary: Option<Spanned<String>>,
    pub(super) standby: Option<Spanned<String>>,
    pub(super) probe: Option<Spanned<RawProbe>>,
    pub(super) mirror: Option<Spanned<mirror::RawMirror>>,
    pub(super) tls: Option<Spanned<RawTls>>,
    #[serde(default)]
    pub(super) maintenance: Vec<Spanned<maintenance::RawMaintenance>>,
    pub(super) mode: Option<Spanned<String>>,
    pub(super) proxy: Option<Spanned<RawProxy>>,
}

/// `[sites.proxy]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProxy {
    pub(super) connect_timeout: Option<Spanned<DurationValue>>,
    pub(super) response_timeout: Option<Spanned<DurationValue>>,
    pub(super) fallback_status: Option<Vec<Spanned<i64>>>,
    pub(super) max_request_body: Option<Spanned<i64>>,
    pub(super) refresh_from_traffic: Option<Spanned<bool>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProbe {
    pub(super) scheme: Option<Spanned<String>>,
    pub(super) port: Option<Spanned<i64>>,
    pub(super) method: Option<Spanned<String>>,
    pub(super) path: Option<Spanned<String>>,
    pub(super) expect_status: Option<Spanned<Vec<Spanned<StatusItem>>>>,
    pub(super) body_contains: Option<Spanned<String>>,
    pub(super) interval: Option<Spanned<DurationValue>>,
    pub(super) fast_interval: Option<Spanned<DurationValue>>,
    pub(super) timeout: Option<Spanned<DurationValue>>,
    pub(super) failures_to_down: Option<Spanned<i64>>,
    pub(super) successes_to_up: Option<Spanned<i64>>,
    pub(super) hold_down: Option<Spanned<DurationValue>>,
    pub(super) ca_file: Option<Spanned<String>>,
    pub(super) insecure: Option<Spanned<bool>>,
    pub(super) standby_readiness: Option<Spanned<bool>>,
}

/// A duration as written: a string with a unit ("2s"); a bare number is read only to be refused
/// with a clear message.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum DurationValue {
    Text(String),
    Int(i64),
    Float(f64),
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum StatusItem {
    Code(i64),
    Text(String),
}

/// `[dns.zones.dnssec]`: online signing of a built-in zone.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDnssec {
    pub(super) algorithm: Option<Spanned<String>>,
    pub(super) signature_lifetime: Option<Spanned<DurationValue>>,
    pub(super) resign_after: Option<Spanned<DurationValue>>,
    pub(super) zsk_lifetime: Option<Spanned<DurationValue>>,
}
