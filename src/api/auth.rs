//! Who may do what through the API: bearer tokens (RFC 6750) with a read or write scope.
//!
//! Pure: the tokens are given, the request's `Authorization` header is an argument, and the
//! answer is who it is or why not. Tokens are compared by their SHA-256 digests, so the time a
//! comparison takes says nothing about how much of a guess was right.
//!
//! The rules (`crate::config::api` says why):
//! - an action (anything but `GET`/`HEAD`) needs a write token: a configured one, or the
//!   daemon's own local token (`<data_dir>/api.token`, what the CLI sends);
//! - a read needs any token once tokens are configured, and none while only the local token
//!   exists (the listener is then loopback only);
//! - a token that is given and matches none is refused, even where none was needed: a script
//!   with a stale token should hear about it, not be served as anonymous.

use hyper::StatusCode;

use crate::config::{ApiToken, TokenScope};

/// The name of the daemon's own token in the log.
pub const LOCAL: &str = "local";

type Digest = [u8; 32];

fn digest(token: &str) -> Digest {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The tokens one daemon accepts.
#[derive(Clone)]
pub struct Tokens {
    configured: Vec<(String, TokenScope, Digest)>,
    local: Digest,
}

/// Who a request came from, when it is allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A token, by its name (`local` for the daemon's own).
    Token(String),
    /// No token, where none is needed.
    Anonymous,
}

/// Why a request is refused: the status (401 or 403) and words for the JSON error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    /// `WWW-Authenticate` value.
    pub challenge: String,
    pub why: String,
}

impl Tokens {
    pub fn new(configured: &[ApiToken], local: &str) -> Tokens {
        Tokens {
            configured: configured
                .iter()
                .map(|t| (t.name.clone(), t.scope, digest(&t.token.0)))
                .collect(),
            local: digest(local),
        }
    }

    /// Whether a request with this `Authorization` header may do what `need` says.
    pub fn check(&self, authorization: Option<&[u8]>, need: TokenScope) -> Result<Caller, Refusal> {
        let refuse = |status, error: &str, why: String| Refusal {
            status,
            challenge: format!("Bearer realm=\"understudy\", error=\"{error}\""),
            why,
        };
        let Some(header) = authorization else {
            if need == TokenScope::Read && self.configured.is_empty() {
                return Ok(Caller::Anonymous);
            }
            let why = match need {
                TokenScope::Write => "an action needs a write token: send `Authorization: Bearer <token>` (the CLI on this machine uses <data_dir>/api.token)",
                TokenScope::Read => "this API needs a token: send `Authorization: Bearer <token>`",
            };
            return Err(Refusal {
                status: StatusCode::UNAUTHORIZED,
                challenge: "Bearer realm=\"understudy\"".to_string(),
                why: why.to_string(),
            });
        };
        let token = std::str::from_utf8(header)
            .ok()
            .and_then(|h| {
                let (scheme, rest) = h.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|t| !t.is_empty());
        let Some(token) = token else {
            return Err(refuse(
                StatusCode::UNAUTHORIZED,
                "invalid_request",
                "the Authorization header is not `Bearer <token>`".to_string(),
            ));
        };
        let d = digest(token);
        let found = if d == self.local {
            Some((LOCAL, TokenScope::Write))
        } else {
            self.configured
                .iter()
                .find(|(_, _, t)| *t == d)
                .map(|(n, s, _)| (n.as_str(), *s))
        };
        match found {
            None => Err(refuse(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the token is not one this daemon accepts".to_string(),
            )),
            Some((name, scope)) if scope < need => Err(refuse(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                format!("token `{name}` may only read; an action needs a write token"),
            )),
            Some((name, _)) => Ok(Caller::Token(name.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn tokens(configured: &[(&str, TokenScope, &str)]) -> Tokens {
        let list: Vec<ApiToken> = configured
            .iter()
            .map(|(n, s, t)| ApiToken {
                name: n.to_string(),
                scope: *s,
                token: Secret(t.to_string()),
            })
            .collect();
        Tokens::new(&list, "local-token-0123456789")
    }

    #[test]
    fn the_rules_in_the_module_doc_hold() {
        use TokenScope::{Read, Write};
        let none = tokens(&[]);
        let some = tokens(&[
            ("grafana", Read, "read-token-0123456789"),
            ("ops", Write, "write-token-0123456789"),
        ]);
        let ok = |n: &str| Ok::<_, StatusCode>(Caller::Token(n.to_string()));
        type Case<'a> = (
            &'a Tokens,
            Option<&'a str>,
            TokenScope,
            Result<Caller, StatusCode>,
        );
        let cases: Vec<Case> = vec![
            // No tokens configured: reading is open, acting needs the local token.
            (&none, None, Read, Ok(Caller::Anonymous)),
            (&none, None, Write, Err(StatusCode::UNAUTHORIZED)),
            (
                &none,
                Some("Bearer local-token-0123456789"),
                Write,
                ok(LOCAL),
            ),
            (
                &none,
                Some("bearer  local-token-0123456789 "),
                Write,
                ok(LOCAL),
            ),
            (
                &none,
                Some("Bearer wrong-token-0123456789"),
                Read,
                Err(StatusCode::UNAUTHORIZED),
            ),
            (
                &none,
                Some("Basic dXNlcjpwYXNz"),
                Read,
                Err(StatusCode::UNAUTHORIZED),
            ),
            (&none, Some("Bearer"), Read, Err(StatusCode::UNAUTHORIZED)),
            (&none, Some("Bearer "), Write, Err(StatusCode::UNAUTHORIZED)),
            // Tokens configured: every request needs one, actions a write one.
            (&some, None, Read, Err(StatusCode::UNAUTHORIZED)),
            (
                &some,
                Some("Bearer read-token-0123456789"),
                Read,
                ok("grafana"),
            ),
            (
                &some,
                Some("Bearer read-token-0123456789"),
                Write,
                Err(StatusCode::FORBIDDEN),
            ),
            (
                &some,
                Some("Bearer write-token-0123456789"),
                Write,
                ok("ops"),
            ),
            (
                &some,
                Some("Bearer write-token-0123456789"),
                Read,
                ok("ops"),
            ),
            (
                &some,
                Some("Bearer local-token-0123456789"),
                Write,
                ok(LOCAL),
            ),
            (
                &some,
                Some("Bearer read-token-012345678"),
                Read,
                Err(StatusCode::UNAUTHORIZED),
            ),
        ];
        for (t, header, need, want) in cases {
            let got = t
                .check(header.map(str::as_bytes), need)
                .map_err(|r| r.status);
            assert_eq!(got, want, "{header:?} for {need:?}");
        }
        // A refusal never repeats the token it was given.
        let r = some
            .check(Some(b"Bearer guess-guess-guess-guess"), Read)
            .unwrap_err();
        assert!(!r.why.contains("guess"), "{}", r.why);
        assert!(r.challenge.contains("invalid_token"), "{}", r.challenge);
    }
}
