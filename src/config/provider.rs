//! `[[providers]]` and secrets: every provider type's keys, and a secret from a value, a file or
//! an environment variable (never echoed, even when pasted into a `*_file` key).

use super::cx::span_of;
use super::*;

/// The schemes of an HTTP API endpoint.
pub(super) const WEB: &[&str] = &["http", "https"];

/// `type = "rfc2136"`: dynamic updates to a primary server, TSIG-signed when a key is given.
#[derive(Debug, Clone)]
pub struct Rfc2136Config {
    pub server: SocketAddr,
    pub key: Option<TsigKey>,
}

/// `type = "powerdns"`: the PowerDNS Authoritative HTTP API.
#[derive(Debug, Clone)]
pub struct PowerDnsConfig {
    pub url: String,
    pub server_id: String,
    pub api_key: Secret,
}

/// `type = "route53"`: AWS Route 53.
#[derive(Clone, Debug)]
pub struct Route53Config {
    pub hosted_zone_id: Option<String>,
    pub region: String,
    /// Another endpoint than AWS's (tests use moto on 127.0.0.1).
    pub endpoint: Option<String>,
    pub profile: Option<String>,
    /// Access key id and secret; otherwise the standard credential chain.
    pub credentials: Option<(String, Secret)>,
    /// How long to wait for a change to be INSYNC.
    pub confirm_timeout: Duration,
}

/// The Cloudflare API v4 base used when `endpoint` is not given.
pub const CLOUDFLARE_ENDPOINT: &str = "https://api.cloudflare.com/client/v4";

/// `type = "cloudflare"`: the Cloudflare API v4.
#[derive(Debug, Clone)]
pub struct CloudflareConfig {
    pub endpoint: String,
    pub api_token: Secret,
    pub zone_id: Option<String>,
    /// None: keep what existing records have (new ones: not proxied).
    pub proxied: Option<bool>,
}

/// The TSIG keys of one table (a provider's, a secondary's), as given.
pub(super) struct RawTsig<'a> {
    pub(super) key_file: &'a Option<Spanned<String>>,
    pub(super) key_name: &'a Option<Spanned<String>>,
    pub(super) algorithm: &'a Option<Spanned<String>>,
    pub(super) secret: &'a Option<Spanned<String>>,
    pub(super) secret_file: &'a Option<Spanned<String>>,
    pub(super) secret_env: &'a Option<Spanned<String>>,
}

impl Cx<'_> {
    /// The dotted key a secret was given with (`ip.push.password_file`), for errors about it.
    pub(super) fn secret_key_given(
        &self,
        base: &str,
        key: &str,
        given: [&Option<Spanned<String>>; 3],
    ) -> String {
        let suffix = ["", "_file", "_env"]
            .into_iter()
            .zip(given)
            .find(|(_, v)| v.is_some())
            .map(|(s, _)| s)
            .unwrap_or("");
        format!("{base}.{key}{suffix}")
    }
    /// A TSIG key from `tsig_key_file` (as tsig-keygen writes it) or `tsig_key_name` +
    /// `tsig_algorithm` + `tsig_secret` (or `_file` / `_env`); `None` when none is given.
    pub(super) fn tsig_key(&self, t: RawTsig<'_>, base: &str) -> R<Option<TsigKey>> {
        let secret = self.secret("tsig_secret", t.secret, t.secret_file, t.secret_env, base)?;
        let key = match (&t.key_file, &t.key_name, secret) {
            (Some(f), None, None) => {
                let path = self.resolve_path(f.get_ref());
                let text = self.read_named_file(
                    f,
                    &format!("{base}.tsig_key_file"),
                    Some("tsig_secret_env"),
                )?;
                self.secret_sources.borrow_mut().insert(
                    format!("{base}.tsig_key_file"),
                    SecretFrom::File(path.clone()),
                );
                Some(parse_bind_key(&text).or_else(|e| {
                    self.err(
                        f.span(),
                        &format!("{base}.tsig_key_file"),
                        format!(
                            "{} is not a key file as written by tsig-keygen: {e}",
                            path.display()
                        ),
                    )
                })?)
            }
            (Some(f), _, _) => {
                return self.err(
                    f.span(),
                    &format!("{base}.tsig_key_file"),
                    "give either tsig_key_file or tsig_key_name with tsig_secret, not both",
                )
            }
            (None, Some(n), Some((secret, sspan))) => {
                let alg = match &t.algorithm {
                    None => hickory_proto::rr::rdata::tsig::TsigAlgorithm::HmacSha256,
                    Some(a) => tsig::algorithm(a.get_ref())
                        .or_else(|e| self.err(a.span(), &format!("{base}.tsig_algorithm"), e))?,
                };
                let bytes = crate::util::base64_decode(&secret.0).or_else(|e| {
                    self.err(
                        sspan,
                        &format!("{base}.tsig_secret"),
                        format!("not base64 ({e}); paste the secret from tsig-keygen"),
                    )
                })?;
                let name = self.dns_name(n, &format!("{base}.tsig_key_name"))?;
                Some(TsigKey {
                    name,
                    algorithm: alg,
                    secret: bytes,
                })
            }
            (None, Some(n), None) => {
                return self.err(
                    n.span(),
                    &format!("{base}.tsig_key_name"),
                    "needs tsig_secret (or tsig_secret_file / tsig_secret_env)",
                )
            }
            (None, None, Some((_, sspan))) => {
                return self.err(sspan, &format!("{base}.tsig_secret"), "needs tsig_key_name")
            }
            (None, None, None) => None,
        };
        Ok(key)
    }
    /// One secret from `value`, `<key>_file` or `<key>_env` (at most one of them).
    pub(super) fn secret(
        &self,
        key: &str,
        value: &Option<Spanned<String>>,
        file: &Option<Spanned<String>>,
        env: &Option<Spanned<String>>,
        base: &str,
    ) -> R<Option<(Secret, Range<usize>)>> {
        let given: Vec<(&str, &Spanned<String>)> = [("", value), ("_file", file), ("_env", env)]
            .into_iter()
            .filter_map(|(suffix, v)| v.as_ref().map(|v| (suffix, v)))
            .collect();
        match given.as_slice() {
            [] => Ok(None),
            [(suffix, v)] => {
                let k = format!("{base}.{key}{suffix}");
                let (text, from) = match *suffix {
                    "" => (v.get_ref().clone(), SecretFrom::Inline),
                    "_file" => (
                        self.read_named_file(v, &k, Some(&format!("{key}_env")))?
                            .trim()
                            .to_string(),
                        SecretFrom::File(self.resolve_path(v.get_ref())),
                    ),
                    _ => (
                        std::env::var(v.get_ref()).or_else(|_| {
                            self.err(
                                v.span(),
                                &k,
                                format!("the environment variable {} is not set", v.get_ref()),
                            )
                        })?,
                        SecretFrom::Env(v.get_ref().clone()),
                    ),
                };
                self.secret_sources
                    .borrow_mut()
                    .insert(format!("{base}.{key}"), from);
                if text.trim().is_empty() {
                    return self.err(v.span(), &k, "the secret is empty");
                }
                Ok(Some((Secret(text), v.span())))
            }
            [_, (suffix, v), ..] => self.err(
                v.span(),
                &format!("{base}.{key}{suffix}"),
                format!("give only one of {key}, {key}_file and {key}_env"),
            ),
        }
    }
    pub(super) fn build_provider(&self, i: usize, raw: Spanned<RawProvider>) -> R<ProviderConfig> {
        let span = raw.span();
        let p = raw.into_inner();
        let base = format!("providers[{i}]");
        let Some(name) = &p.name else {
            return self.err(
                span,
                &base,
                "missing key `name`: how zones refer to this provider, e.g. name = \"bind\"",
            );
        };
        let Some(kind) = &p.kind else {
            return self.err(span, &base, "missing key `type`: one of \"rfc2136\", \"powerdns\", \"cloudflare\" or \"route53\"");
        };
        let timeout = self.duration(
            &p.timeout,
            &format!("{base}.timeout"),
            Duration::from_secs(10),
            Duration::from_millis(100),
        )?;
        // Keys that belong to each type; any other key that is set is an error.
        let given = [
            ("server", span_of(&p.server)),
            ("tsig_key_file", span_of(&p.tsig_key_file)),
            ("tsig_key_name", span_of(&p.tsig_key_name)),
            ("tsig_algorithm", span_of(&p.tsig_algorithm)),
            ("tsig_secret", span_of(&p.tsig_secret)),
            ("tsig_secret_file", span_of(&p.tsig_secret_file)),
            ("tsig_secret_env", span_of(&p.tsig_secret_env)),
            ("url", span_of(&p.url)),
            ("server_id", span_of(&p.server_id)),
            ("api_key", span_of(&p.api_key)),
            ("api_key_file", span_of(&p.api_key_file)),
            ("api_key_env", span_of(&p.api_key_env)),
            ("endpoint", span_of(&p.endpoint)),
            ("api_token", span_of(&p.api_token)),
            ("api_token_file", span_of(&p.api_token_file)),
            ("api_token_env", span_of(&p.api_token_env)),
            ("zone_id", span_of(&p.zone_id)),
            ("proxied", span_of(&p.proxied)),
            ("hosted_zone_id", span_of(&p.hosted_zone_id)),
            ("region", span_of(&p.region)),
            ("profile", span_of(&p.profile)),
            ("access_key_id", span_of(&p.access_key_id)),
            ("secret_access_key", span_of(&p.secret_access_key)),
            ("secret_access_key_file", span_of(&p.secret_access_key_file)),
            ("secret_access_key_env", span_of(&p.secret_access_key_env)),
            ("confirm_timeout", span_of(&p.confirm_timeout)),
        ];
        const TYPES: &str = "\"rfc2136\", \"powerdns\", \"cloudflare\" or \"route53\"";
        let allowed: &[&str] = match kind.get_ref().as_str() {
            "rfc2136" => &[
                "server",
                "tsig_key_file",
                "tsig_key_name",
                "tsig_algorithm",
                "tsig_secret",
                "tsig_secret_file",
                "tsig_secret_env",
            ],
            "powerdns" => &["url", "server_id", "api_key", "api_key_file", "api_key_env"],
            "cloudflare" => &[
                "endpoint",
                "api_token",
                "api_token_file",
                "api_token_env",
                "zone_id",
                "proxied",
            ],
            "route53" => &[
                "endpoint",
                "hosted_zone_id",
                "region",
                "profile",
                "access_key_id",
                "secret_access_key",
                "secret_access_key_file",
                "secret_access_key_env",
                "confirm_timeout",
            ],
            other => {
                return self.err(
                    kind.span(),
                    &format!("{base}.type"),
                    format!("`{other}` is not a provider type: expected {TYPES}"),
                )
            }
        };
        self.keys_for_type(&base, kind.get_ref(), &given, allowed)?;
        let kind = match kind.get_ref().as_str() {
            "route53" => {
                let secret = self.secret(
                    "secret_access_key",
                    &p.secret_access_key,
                    &p.secret_access_key_file,
                    &p.secret_access_key_env,
                    &base,
                )?;
                let credentials = match (&p.access_key_id, secret) {
                    (Some(id), Some((secret, _))) => Some((id.get_ref().clone(), secret)),
                    (None, None) => None,
                    (Some(id), None) => return self.err(id.span(), &format!("{base}.access_key_id"), "needs secret_access_key (or secret_access_key_file / _env); or leave both out to use the standard AWS credential chain"),
                    (None, Some((_, s))) => return self.err(s, &format!("{base}.secret_access_key"), "needs access_key_id"),
                };
                let endpoint = match &p.endpoint {
                    None => None,
                    Some(e) => Some(self.url(e, &format!("{base}.endpoint"), WEB, "")?),
                };
                ProviderKind::Route53(Route53Config {
                    hosted_zone_id: p.hosted_zone_id.as_ref().map(|v| v.get_ref().clone()),
                    region: p
                        .region
                        .as_ref()
                        .map(|v| v.get_ref().clone())
                        .unwrap_or_else(|| "us-east-1".to_string()),
                    endpoint,
                    profile: p.profile.as_ref().map(|v| v.get_ref().clone()),
                    credentials,
                    confirm_timeout: self.duration(
                        &p.confirm_timeout,
                        &format!("{base}.confirm_timeout"),
                        Duration::from_secs(60),
                        Duration::from_secs(1),
                    )?,
                })
            }
            "cloudflare" => {
                let endpoint = match &p.endpoint {
                    None => CLOUDFLARE_ENDPOINT.to_string(),
                    Some(e) => self.url(e, &format!("{base}.endpoint"), WEB, "")?,
                };
                let Some((api_token, _)) = self.secret(
                    "api_token",
                    &p.api_token,
                    &p.api_token_file,
                    &p.api_token_env,
                    &base,
                )?
                else {
                    return self.err(
                        span,
                        &base,
                        "missing key `api_token` (or api_token_file / api_token_env): a Cloudflare API token with Zone:Read and DNS:Edit",
                    );
                };
                ProviderKind::Cloudflare(CloudflareConfig {
                    endpoint,
                    api_token,
                    zone_id: p.zone_id.as_ref().map(|z| z.get_ref().clone()),
                    proxied: p.proxied.as_ref().map(|v| *v.get_ref()),
                })
            }
            "powerdns" => {
                let Some(url) = &p.url else {
                    return self.err(span, &base, "missing key `url`: the PowerDNS API base, e.g. url = \"http://127.0.0.1:8081\"");
                };
                let url = self.url(url, &format!("{base}.url"), WEB, "")?;
                let Some((api_key, _)) = self.secret(
                    "api_key",
                    &p.api_key,
                    &p.api_key_file,
                    &p.api_key_env,
                    &base,
                )?
                else {
                    return self.err(
                        span,
                        &base,
                        "missing key `api_key` (or api_key_file / api_key_env): the PowerDNS webserver's api-key",
                    );
                };
                let server_id = p
                    .server_id
                    .as_ref()
                    .map(|s| s.get_ref().clone())
                    .unwrap_or_else(|| "localhost".to_string());
                ProviderKind::PowerDns(PowerDnsConfig {
                    url,
                    server_id,
                    api_key,
                })
            }
            // "rfc2136": every other type was handled or refused above.
            _ => {
                let Some(server) = &p.server else {
                    return self.err(
                        span,
                        &base,
                        "missing key `server`: the primary server's address for updates, e.g. server = \"192.0.2.53:53\"",
                    );
                };
                let server = server.get_ref().parse::<SocketAddr>().or_else(|_| {
                    self.err(
                        server.span(),
                        &format!("{base}.server"),
                        format!(
                            "`{}` is not an address with a port, e.g. \"192.0.2.53:53\"",
                            server.get_ref()
                        ),
                    )
                })?;
                let key = self.tsig_key(
                    RawTsig {
                        key_file: &p.tsig_key_file,
                        key_name: &p.tsig_key_name,
                        algorithm: &p.tsig_algorithm,
                        secret: &p.tsig_secret,
                        secret_file: &p.tsig_secret_file,
                        secret_env: &p.tsig_secret_env,
                    },
                    &base,
                )?;
                ProviderKind::Rfc2136(Rfc2136Config { server, key })
            }
        };
        Ok(ProviderConfig {
            name: name.get_ref().clone(),
            kind,
            timeout,
        })
    }
}

/// Whether a value given where a file path belongs looks like a secret instead: PEM text,
/// anything with whitespace, base64 padding, or a long run of key characters with no `.`
/// and no leading `/`, `./`, `../` or `~`. A false alarm only hides a file name from an error.
pub(crate) fn looks_like_secret(value: &str) -> bool {
    let v = value.trim();
    if v.contains("-----BEGIN") || v.contains(char::is_whitespace) || v.ends_with('=') {
        return true;
    }
    let path_like = v.starts_with('/')
        || v.starts_with("./")
        || v.starts_with("../")
        || v.starts_with('~')
        || v.contains('.');
    !path_like
        && v.len() >= 16
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '_' | '-' | ':'))
}
