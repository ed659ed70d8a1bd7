//! RFC 2136 dynamic update, signed with TSIG (RFC 8945), for BIND, Knot and any server that
//! speaks it.
//!
//! One UPDATE message per batch: for each RRset, "delete the RRset" then "add each record", with
//! no prerequisites (the replace is unconditional), plus the ownership TXT at
//! `_understudy.<name>`. The server applies an UPDATE atomically, so a batch is all or nothing.
//! Messages go over UDP, or TCP when larger than 512 bytes or when the answer is truncated.
//! Responses are checked against the TSIG key; the server's rcode (and TSIG error) is reported.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::rdata::{A, AAAA, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::{owner_marker, Key, Outcome, Provider, ProviderError, RrSet, OWNER_TEXT};

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

/// Standard base64 (RFC 4648), padding optional, whitespace ignored.
pub fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return Err(format!("invalid character `{}`", c as char)),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if out.is_empty() {
        return Err("empty".to_string());
    }
    Ok(out)
}

pub struct Rfc2136 {
    pub server: SocketAddr,
    signer: Option<TSigner>,
    key_name: Option<Name>,
    pub timeout: Duration,
}

impl Rfc2136 {
    pub fn new(
        server: SocketAddr,
        key: Option<TsigKey>,
        timeout: Duration,
    ) -> Result<Self, String> {
        let key_name = key.as_ref().map(|k| k.name.clone());
        let signer = match key {
            None => None,
            Some(k) => Some(
                TSigner::new(k.secret, k.algorithm, k.name, 300)
                    .map_err(|e| format!("TSIG key: {e}"))?,
            ),
        };
        Ok(Rfc2136 {
            server,
            signer,
            key_name,
            timeout,
        })
    }

    /// Sends a message (signed when we have a key) and returns the answer and whether its
    /// signature checked out (None when unsigned).
    async fn exchange(
        &self,
        mut msg: Message,
    ) -> Result<(Message, Option<Result<(), String>>), ProviderError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut verifier = match &self.signer {
            Some(s) => msg
                .finalize(s, now)
                .map_err(|e| ProviderError::Protocol(format!("cannot sign: {e}")))?,
            None => None,
        };
        let wire = msg
            .to_vec()
            .map_err(|e| ProviderError::Protocol(format!("cannot encode: {e}")))?;
        let bytes = if wire.len() > 512 {
            self.tcp(&wire).await?
        } else {
            let b = self.udp(&wire, msg.metadata.id).await?;
            match Message::from_vec(&b) {
                Ok(m) if m.metadata.truncation => self.tcp(&wire).await?,
                _ => b,
            }
        };
        let reply = Message::from_vec(&bytes).map_err(|e| {
            ProviderError::Protocol(format!("garbage answer from {}: {e}", self.server))
        })?;
        if reply.metadata.id != msg.metadata.id {
            return Err(ProviderError::Protocol(format!(
                "answer from {} has the wrong id",
                self.server
            )));
        }
        let signature = match (&mut verifier, reply.signature.is_some()) {
            (Some(v), true) => Some(v.verify(&bytes).map(|_| ()).map_err(|e| e.to_string())),
            (Some(_), false) => Some(Err("the answer is not signed".to_string())),
            (None, _) => None,
        };
        Ok((reply, signature))
    }

    async fn udp(&self, wire: &[u8], id: u16) -> Result<Vec<u8>, ProviderError> {
        let bind: SocketAddr = if self.server.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        }
        .parse()
        .expect("literal");
        let unreachable =
            |e: std::io::Error| ProviderError::Unreachable(format!("{}: {e}", self.server));
        let sock = UdpSocket::bind(bind).await.map_err(unreachable)?;
        sock.connect(self.server).await.map_err(unreachable)?;
        sock.send(wire).await.map_err(unreachable)?;
        let mut buf = vec![0u8; 65_535];
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                Err(_) => {
                    return Err(ProviderError::Unreachable(format!(
                        "no answer from {} within {:?}",
                        self.server, self.timeout
                    )))
                }
                Ok(r) => r.map_err(unreachable)?,
            };
            if n >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == id {
                return Ok(buf[..n].to_vec());
            }
        }
    }

    async fn tcp(&self, wire: &[u8]) -> Result<Vec<u8>, ProviderError> {
        let fut = async {
            let mut s = TcpStream::connect(self.server).await?;
            s.write_all(&(wire.len() as u16).to_be_bytes()).await?;
            s.write_all(wire).await?;
            let len = s.read_u16().await? as usize;
            let mut buf = vec![0u8; len];
            s.read_exact(&mut buf).await?;
            Ok::<_, std::io::Error>(buf)
        };
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(b)) => Ok(b),
            Ok(Err(e)) => Err(ProviderError::Unreachable(format!(
                "{} over TCP: {e}",
                self.server
            ))),
            Err(_) => Err(ProviderError::Unreachable(format!(
                "no answer from {} over TCP within {:?}",
                self.server, self.timeout
            ))),
        }
    }

    fn rcode_error(&self, zone: &Name, reply: &Message) -> ProviderError {
        let tsig_error = reply
            .signature
            .as_ref()
            .and_then(|s| s.data.error.as_ref())
            .map(|e| format!(" (TSIG error {e:?})"))
            .unwrap_or_default();
        let key = self
            .key_name
            .as_ref()
            .map(|k| format!("key {k}"))
            .unwrap_or_else(|| "no TSIG key".to_string());
        match reply.metadata.response_code {
            ResponseCode::Refused => ProviderError::Auth(format!("{} answered REFUSED for zone {zone} with {key}{tsig_error}: the server does not allow this key (or address) to update the zone", self.server)),
            ResponseCode::NotAuth => ProviderError::Auth(format!("{} answered NOTAUTH for zone {zone} with {key}{tsig_error}: wrong key name, secret or algorithm, a clock off by more than 5 minutes, or the server is not authoritative", self.server)),
            ResponseCode::NotZone | ResponseCode::NXDomain => ProviderError::ZoneNotFound(format!("{} is not authoritative for {zone} ({})", self.server, reply.metadata.response_code)),
            ResponseCode::ServFail => ProviderError::Unreachable(format!("{} answered SERVFAIL", self.server)),
            other => ProviderError::Rejected(format!("{} answered {other}{tsig_error}", self.server)),
        }
    }
}

#[async_trait::async_trait]
impl Provider for Rfc2136 {
    fn describe(&self) -> String {
        match &self.key_name {
            Some(k) => format!("rfc2136 at {} (TSIG key {k})", self.server),
            None => format!("rfc2136 at {} (no TSIG)", self.server),
        }
    }

    async fn read(
        &self,
        _zone: &Name,
        keys: &[Key],
    ) -> Result<BTreeMap<Key, RrSet>, ProviderError> {
        let mut out = BTreeMap::new();
        for (name, rtype) in keys {
            let reply = crate::dns::client::query(self.server, name, *rtype, self.timeout)
                .await
                .map_err(|e| ProviderError::Unreachable(e.to_string()))?;
            match reply.rcode {
                ResponseCode::NoError | ResponseCode::NXDomain => {}
                ResponseCode::Refused => {
                    return Err(ProviderError::Auth(format!(
                        "{} refused to answer for {name}",
                        self.server
                    )))
                }
                other => {
                    return Err(ProviderError::Unreachable(format!(
                        "{} answered {other} for {name}",
                        self.server
                    )))
                }
            }
            let ttl = reply
                .message
                .answers
                .iter()
                .find(|r| r.record_type() == *rtype)
                .map(|r| r.ttl);
            if let Some(ttl) = ttl {
                out.insert(
                    (name.clone(), *rtype),
                    RrSet::new(name.clone(), *rtype, ttl, reply.addrs),
                );
            }
        }
        Ok(out)
    }

    async fn marked(&self, _zone: &Name, keys: &[Key]) -> Result<BTreeSet<Key>, ProviderError> {
        let mut out = BTreeSet::new();
        for k in keys {
            let reply = crate::dns::client::query(
                self.server,
                &owner_marker(&k.0),
                RecordType::TXT,
                self.timeout,
            )
            .await
            .map_err(|e| ProviderError::Unreachable(e.to_string()))?;
            let owned = reply.message.answers.iter().any(|r| match &r.data {
                hickory_proto::rr::RData::TXT(t) => t
                    .txt_data
                    .iter()
                    .any(|c| super::is_owner_text(&String::from_utf8_lossy(c))),
                _ => false,
            });
            if owned {
                out.insert(k.clone());
            }
        }
        Ok(out)
    }

    async fn apply(&self, zone: &Name, changes: &[RrSet]) -> Result<Vec<Outcome>, ProviderError> {
        let mut msg = Message::new(rand_id(), MessageType::Query, OpCode::Update);
        let mut zq = Query::query(zone.clone(), RecordType::SOA);
        zq.query_class = DNSClass::IN;
        msg.add_query(zq);
        let mut owners = BTreeSet::new();
        for c in changes {
            let mut delete = Record::update0(c.name.clone(), 0, c.rtype);
            delete.dns_class = DNSClass::ANY;
            msg.add_authority(delete);
            for ip in &c.addrs {
                let data = match ip {
                    std::net::IpAddr::V4(v4) => RData::A(A(*v4)),
                    std::net::IpAddr::V6(v6) => RData::AAAA(AAAA(*v6)),
                };
                msg.add_authority(Record::from_rdata(c.name.clone(), c.ttl, data));
            }
            let owner = owner_marker(&c.name);
            if owners.insert(owner.clone()) {
                let mut delete = Record::update0(owner.clone(), 0, RecordType::TXT);
                delete.dns_class = DNSClass::ANY;
                msg.add_authority(delete);
                msg.add_authority(Record::from_rdata(
                    owner,
                    c.ttl,
                    RData::TXT(TXT::new(vec![OWNER_TEXT.to_string()])),
                ));
            }
        }
        let (reply, signature) = match self.exchange(msg).await {
            Ok(r) => r,
            // Sent but no answer: it may have been applied.
            Err(ProviderError::Unreachable(why)) if why.starts_with("no answer") => {
                return Ok(changes
                    .iter()
                    .map(|_| Outcome::CouldNotConfirm(why.clone()))
                    .collect());
            }
            Err(e) => return Err(e),
        };
        if reply.metadata.response_code != ResponseCode::NoError {
            return Err(self.rcode_error(zone, &reply));
        }
        if let Some(Err(why)) = signature {
            let why =
                format!("the server said NOERROR but its answer failed the TSIG check ({why})");
            return Ok(changes
                .iter()
                .map(|_| Outcome::CouldNotConfirm(why.clone()))
                .collect());
        }
        Ok(changes.iter().map(|_| Outcome::Applied).collect())
    }

    async fn set_txt(
        &self,
        zone: &Name,
        name: &Name,
        values: &[String],
    ) -> Result<(), ProviderError> {
        let mut msg = Message::new(rand_id(), MessageType::Query, OpCode::Update);
        let mut zq = Query::query(zone.clone(), RecordType::SOA);
        zq.query_class = DNSClass::IN;
        msg.add_query(zq);
        let mut delete = Record::update0(name.clone(), 0, RecordType::TXT);
        delete.dns_class = DNSClass::ANY;
        msg.add_authority(delete);
        for v in values {
            msg.add_authority(Record::from_rdata(
                name.clone(),
                10,
                RData::TXT(TXT::new(vec![v.clone()])),
            ));
        }
        let (reply, _) = self.exchange(msg).await?;
        if reply.metadata.response_code != ResponseCode::NoError {
            return Err(self.rcode_error(zone, &reply));
        }
        Ok(())
    }

    async fn check(&self, zone: &Name) -> Result<String, ProviderError> {
        // A signed SOA query: proves the server is authoritative and, when a key is set, that
        // the server knows the key (it answers NOTAUTH/BADKEY otherwise). Writes nothing.
        let mut msg = Message::new(rand_id(), MessageType::Query, OpCode::Query);
        msg.add_query(Query::query(zone.clone(), RecordType::SOA));
        let (reply, signature) = self.exchange(msg).await?;
        if reply.metadata.response_code != ResponseCode::NoError {
            return Err(self.rcode_error(zone, &reply));
        }
        if !reply.metadata.authoritative {
            return Err(ProviderError::ZoneNotFound(format!(
                "{} answers for {zone} but is not authoritative for it",
                self.server
            )));
        }
        if let Some(Err(why)) = signature {
            return Err(ProviderError::Auth(format!(
                "{}'s answer failed the TSIG check: {why}",
                self.server
            )));
        }
        let serial = reply.answers.iter().find_map(|r| match &r.data {
            RData::SOA(s) => Some(s.serial),
            _ => None,
        });
        Ok(format!(
            "{} is authoritative for {zone} (serial {}){}",
            self.server,
            serial.map(|s| s.to_string()).unwrap_or("?".into()),
            if self.signer.is_some() {
                ", TSIG key accepted"
            } else {
                ""
            }
        ))
    }
}

fn rand_id() -> u16 {
    (crate::util::now_millis() as u16)
        ^ (std::process::id() as u16).rotate_left(7)
        ^ Message::query().metadata.id
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
        assert!(format!("{k:?}").contains("<redacted>"));
    }

    #[test]
    fn secret_containing_double_slash_is_not_cut_as_a_comment() {
        // tsig-keygen output is random base64; "//" inside the quoted secret is not a comment.
        let k =
            parse_bind_key("key \"k\" { // a comment\n algorithm hmac-sha256; /* another */ secret \"ab//cd+/ef==\"; }; # end\n").unwrap();
        assert_eq!(k.secret, base64_decode("ab//cd+/ef==").unwrap());
        assert_eq!(k.secret.len(), 7);
    }

    #[test]
    fn base64_round_trips_known_vectors() {
        assert_eq!(base64_decode("Zm9vYmFy").unwrap(), b"foobar");
        assert_eq!(base64_decode("Zm9vYg==").unwrap(), b"foob");
        assert_eq!(base64_decode("Zm9v YmE=").unwrap(), b"fooba");
    }
}
