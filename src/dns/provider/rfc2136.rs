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
use hickory_proto::rr::rdata::{A, AAAA, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::{owner_marker, Key, Outcome, Provider, ProviderError, RrSet, OWNER_TEXT};
pub use crate::config::{Rfc2136Config, TsigKey};

pub struct Rfc2136 {
    pub server: SocketAddr,
    signer: Option<TSigner>,
    key_name: Option<Name>,
    pub timeout: Duration,
}

impl Rfc2136 {
    pub fn new(cfg: &Rfc2136Config, timeout: Duration) -> Result<Self, String> {
        let server = cfg.server;
        let key_name = cfg.key.as_ref().map(|k| k.name.clone());
        let signer = match cfg.key.clone() {
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
