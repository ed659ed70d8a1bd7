//! `[api]`: where the control API listens, who may use it, and over what.
//!
//! ```toml
//! [api]
//! listen = "127.0.0.1:9353"                 # the default
//! tls_cert = "/etc/understudy/api.crt"      # HTTPS (both or neither)
//! tls_key = "/etc/understudy/api.key"
//!
//! password_file = "/etc/understudy/dashboard.password"  # the dashboard's login (below)
//!
//! [[api.tokens]]
//! name = "grafana"                          # for the log; default tokens[N]
//! scope = "read"                            # "read" or "write"
//! token_file = "/etc/understudy/grafana.token"   # or token / token_env
//! ```
//!
//! Every action needs a write token. The daemon makes one of its own at each start, in
//! `<data_dir>/api.token` (mode 0600), for the CLI on this machine (`crate::api`); configured
//! tokens are for scripts and other machines. While no token is configured, reading on the
//! loopback listener needs none (a local Prometheus scrapes as before); once any is, every
//! request needs one. A non-loopback `listen` is refused unless tokens are configured (an
//! unauthenticated API reachable from the network would let anyone drain every site), and
//! warned about without HTTPS (a token sent in clear can be replayed by whoever sees it).
//!
//! The dashboard (`crate::web`) is served on the same listener. Reading it follows the API's
//! rule (anonymous on loopback while no token is configured); its actions need a browser
//! session, opened by logging in with the password whose Argon2id hash (a PHC string,
//! `$argon2id$v=19$...`, made by `understudy password`) is in `password_file`. Without it the
//! dashboard is read-only and says so.

use super::*;

/// The shortest token accepted: 128 bits as hex is 32 characters; 16 is the floor.
pub const MIN_TOKEN_LEN: usize = 16;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    pub(super) listen: Option<Spanned<String>>,
    pub(super) tls_cert: Option<Spanned<String>>,
    pub(super) tls_key: Option<Spanned<String>>,
    pub(super) password_file: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) tokens: Vec<Spanned<RawToken>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawToken {
    pub(super) name: Option<Spanned<String>>,
    pub(super) scope: Option<Spanned<String>>,
    pub(super) token: Option<Spanned<String>>,
    pub(super) token_file: Option<Spanned<String>>,
    pub(super) token_env: Option<Spanned<String>>,
}

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenScope {
    /// Every `GET`.
    Read,
    /// Every `GET` and every action.
    Write,
}

#[derive(Debug, Clone)]
pub struct ApiToken {
    pub name: String,
    pub scope: TokenScope,
    pub token: Secret,
}

#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Where the control API listens (`status`, `drain`, `release`, scripts, Prometheus).
    pub listen: SocketAddr,
    /// HTTPS: the certificate chain and key files (PEM).
    pub tls: Option<(PathBuf, PathBuf)>,
    pub tokens: Vec<ApiToken>,
    /// The dashboard's password: the file and the Argon2 hash (PHC string) it holds.
    pub password: Option<(PathBuf, Secret)>,
}

impl Cx<'_> {
    pub(super) fn build_api(&self, raw: Option<Spanned<RawApi>>) -> R<ApiConfig> {
        let default_listen: SocketAddr = "127.0.0.1:9353".parse().expect("valid literal");
        let Some(raw) = raw else {
            return Ok(ApiConfig {
                listen: default_listen,
                tls: None,
                tokens: vec![],
                password: None,
            });
        };
        let a = raw.into_inner();
        let mut tokens: Vec<ApiToken> = Vec::new();
        for (i, t) in a.tokens.into_iter().enumerate() {
            let span = t.span();
            let t = t.into_inner();
            let base = format!("api.tokens[{i}]");
            let name = match &t.name {
                Some(n) if n.get_ref().trim().is_empty() => {
                    return self.err(n.span(), &format!("{base}.name"), "the name is empty")
                }
                Some(n) => n.get_ref().trim().to_string(),
                None => base.clone(),
            };
            if tokens.iter().any(|o| o.name == name) {
                let span = t.name.as_ref().map(|n| n.span()).unwrap_or(span.clone());
                return self.err(
                    span,
                    &format!("{base}.name"),
                    format!("another token is named `{name}`; names tell tokens apart in the log"),
                );
            }
            let scope = match &t.scope {
                None => {
                    return self.err(
                        span,
                        &format!("{base}.scope"),
                        "say what the token may do: scope = \"read\" (every GET) or \"write\" (also drain, release, crawl, re-verify, notify test)",
                    )
                }
                Some(s) => match s.get_ref().as_str() {
                    "read" => TokenScope::Read,
                    "write" => TokenScope::Write,
                    other => {
                        return self.err(
                            s.span(),
                            &format!("{base}.scope"),
                            format!("`{other}` is not a scope; use \"read\" or \"write\""),
                        )
                    }
                },
            };
            let given = [&t.token, &t.token_file, &t.token_env];
            let Some((token, tspan)) =
                self.secret("token", &t.token, &t.token_file, &t.token_env, &base)?
            else {
                return self.err(
                    span,
                    &format!("{base}.token"),
                    "the token is missing: give token_file (a file holding it), token_env or token",
                );
            };
            let key = self.secret_key_given(&base, "token", given);
            let token = Secret(token.0.trim().to_string());
            if token.0.len() < MIN_TOKEN_LEN || token.0.chars().any(|c| !c.is_ascii_graphic()) {
                return self.err(
                    tspan,
                    &key,
                    format!(
                        "the token is shorter than {MIN_TOKEN_LEN} characters or holds spaces or \
                         non-ASCII characters; make one with `openssl rand -hex 32`"
                    ),
                );
            }
            if tokens.iter().any(|o| o.token.0 == token.0) {
                return self.err(
                    tspan,
                    &key,
                    "the same token is given twice; give each user its own",
                );
            }
            tokens.push(ApiToken { name, scope, token });
        }
        let tls = match (&a.tls_cert, &a.tls_key) {
            (None, None) => None,
            (Some(c), Some(k)) => {
                let (c2, k2) = (
                    self.resolve_path(c.get_ref()),
                    self.resolve_path(k.get_ref()),
                );
                crate::tls::acceptor(&c2, &k2)
                    .or_else(|e| self.err(c.span(), "api.tls_cert", e))?;
                Some((c2, k2))
            }
            (Some(c), None) => return self.err(c.span(), "api.tls_cert", "needs tls_key too"),
            (None, Some(k)) => return self.err(k.span(), "api.tls_key", "needs tls_cert too"),
        };
        let listen = match a.listen {
            None => default_listen,
            Some(l) => {
                let addr: SocketAddr = l.get_ref().parse().or_else(|_| {
                    self.err(
                        l.span(),
                        "api.listen",
                        format!(
                            "`{}` is not an address with a port, e.g. \"127.0.0.1:9353\"",
                            l.get_ref()
                        ),
                    )
                })?;
                if !addr.ip().is_loopback() {
                    if tokens.is_empty() {
                        return self.err(
                            l.span(),
                            "api.listen",
                            format!(
                                "{addr} is not a loopback address, and no [[api.tokens]] are \
                                 configured: anyone who can reach it could drain every site. \
                                 Add tokens (and tls_cert/tls_key for HTTPS), or listen on \
                                 127.0.0.1"
                            ),
                        );
                    }
                    if tls.is_none() {
                        self.warn(
                            l.span(),
                            "api.listen",
                            format!(
                                "{addr} is not a loopback address and the API has no \
                                 tls_cert/tls_key: tokens cross the network in clear"
                            ),
                        );
                    }
                }
                addr
            }
        };
        let password = match &a.password_file {
            None => None,
            Some(f) => {
                let text = self.read_named_file(f, "api.password_file", None)?;
                let hash = text.trim();
                if argon2::password_hash::PasswordHash::new(hash)
                    .map(|h| h.algorithm.as_str().starts_with("argon2"))
                    != Ok(true)
                {
                    return self.err(
                        f.span(),
                        "api.password_file",
                        "the file does not hold an Argon2 hash (a line starting `$argon2id$`); \
                         make one with `understudy password > FILE` (the password itself never \
                         goes in the file)",
                    );
                }
                Some((self.resolve_path(f.get_ref()), Secret(hash.to_string())))
            }
        };
        Ok(ApiConfig {
            listen,
            tls,
            tokens,
            password,
        })
    }
}
