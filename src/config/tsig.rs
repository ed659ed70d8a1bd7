//! TSIG keys (RFC 8945) for `rfc2136` providers: given inline (name, algorithm, base64 secret)
//! or as a key file written by BIND's `tsig-keygen`.

use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::Name;

use crate::util::base64_decode;

/// A TSIG key: name, algorithm and secret.
#[derive(Clone)]
pub struct TsigKey {
    pub name: Name,
    pub algorithm: TsigAlgorithm,
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TsigKey {{ name: {}, algorithm: {}, secret: <redacted> }}",
            self.name, self.algorithm
        )
    }
}

/// Parses "hmac-sha256" / "hmac-sha512" (the algorithms the issue asks for; hmac-sha384 works too).
pub fn algorithm(name: &str) -> Result<TsigAlgorithm, String> {
    match name
        .trim()
        .trim_end_matches('.')
        .to_ascii_lowercase()
        .as_str()
    {
        "hmac-sha256" => Ok(TsigAlgorithm::HmacSha256),
        "hmac-sha384" => Ok(TsigAlgorithm::HmacSha384),
        "hmac-sha512" => Ok(TsigAlgorithm::HmacSha512),
        other => Err(format!(
            "TSIG algorithm `{other}` is not supported: use hmac-sha256 or hmac-sha512"
        )),
    }
}

/// Parses a key file as written by BIND's `tsig-keygen` (or `ddns-confgen`):
///
/// ```text
/// key "understudy" {
///         algorithm hmac-sha256;
///         secret "c2VjcmV0...";
/// };
/// ```
pub fn parse_bind_key(text: &str) -> Result<TsigKey, String> {
    let cleaned = strip_comments(text);
    let rest = cleaned
        .trim_start()
        .strip_prefix("key")
        .ok_or("expected `key \"name\" { ... };`")?;
    let (name, rest) =
        quoted_or_word(rest.trim_start()).ok_or("expected the key name after `key`")?;
    let body = rest
        .trim_start()
        .strip_prefix('{')
        .ok_or("expected `{` after the key name")?;
    let body = body.split('}').next().ok_or("expected `}`")?;
    let (mut alg, mut secret) = (None, None);
    for stmt in body.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let (word, value) = stmt
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("cannot read `{stmt}`"))?;
        let value = value.trim().trim_matches('"');
        match word {
            "algorithm" => alg = Some(algorithm(value)?),
            "secret" => {
                secret = Some(
                    base64_decode(value).map_err(|e| format!("the secret is not base64: {e}"))?,
                )
            }
            other => return Err(format!("unknown statement `{other}` in the key")),
        }
    }
    let mut name = Name::from_ascii(&name).map_err(|e| format!("bad key name `{name}`: {e}"))?;
    name.set_fqdn(true);
    Ok(TsigKey {
        name,
        algorithm: alg.ok_or("the key has no `algorithm`")?,
        secret: secret.ok_or("the key has no `secret`")?,
    })
}

/// Removes `#`, `//` and `/* */` comments outside double quotes (a base64 secret may well
/// contain `//`), and flattens lines.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                out.push(c);
            }
            '#' if !quoted => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                out.push(' ');
            }
            '/' if !quoted && chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                out.push(' ');
            }
            '/' if !quoted && chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
                out.push(' ');
            }
            '\n' | '\r' | '\t' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

fn quoted_or_word(s: &str) -> Option<(String, &str)> {
    if let Some(r) = s.strip_prefix('"') {
        let end = r.find('"')?;
        Some((r[..end].to_string(), &r[end + 1..]))
    } else {
        let end = s.find(|c: char| c.is_whitespace() || c == '{')?;
        Some((s[..end].to_string(), &s[end..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tsig_keygen_files() {
        let k = parse_bind_key("key \"understudy\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0LXNlY3JldA==\";\n};\n").unwrap();
        assert_eq!(k.name.to_string(), "understudy.");
        assert_eq!(k.algorithm, TsigAlgorithm::HmacSha256);
        assert_eq!(k.secret, b"secret-secret");
        let k = parse_bind_key(
            "# made by hand\nkey up.example. { algorithm hmac-sha512; secret \"AAEC\"; };",
        )
        .unwrap();
        assert_eq!(
            (k.name.to_string(), k.algorithm.clone(), k.secret.clone()),
            (
                "up.example.".to_string(),
                TsigAlgorithm::HmacSha512,
                vec![0, 1, 2]
            )
        );
        assert!(
            parse_bind_key("key x { algorithm hmac-md5; secret \"AA==\"; };")
                .unwrap_err()
                .contains("not supported")
        );
        assert!(parse_bind_key("key x { algorithm hmac-sha256; };")
            .unwrap_err()
            .contains("no `secret`"));
        assert!(
            parse_bind_key("key x { algorithm hmac-sha256; secret \"!!\"; };")
                .unwrap_err()
                .contains("base64")
        );
        assert!(parse_bind_key("garbage").is_err());
        // Redacted: neither the secret nor its bytes appear when the key is printed.
        let printed = format!("{k:?}");
        assert!(
            !printed.contains("AAEC") && !printed.contains("[0, 1, 2]"),
            "{printed}"
        );
        let k = parse_bind_key(
            "key \"k\" { algorithm hmac-sha256; secret \"c2VjcmV0LXNlY3JldA==\"; };",
        )
        .unwrap();
        let printed = format!("{k:?} {:?}", Some(k.clone()));
        for leak in ["c2VjcmV0LXNlY3JldA", "secret-secret", "115, 101, 99"] {
            assert!(!printed.contains(leak), "{leak} in {printed}");
        }
    }

    #[test]
    fn secret_containing_double_slash_is_not_cut_as_a_comment() {
        // tsig-keygen output is random base64; "//" inside the quoted secret is not a comment.
        let k =
            parse_bind_key("key \"k\" { // a comment\n algorithm hmac-sha256; /* another */ secret \"ab//cd+/ef==\"; }; # end\n").unwrap();
        assert_eq!(k.secret, base64_decode("ab//cd+/ef==").unwrap());
        assert_eq!(k.secret.len(), 7);
    }
}
