//! A minimal DNS stub query over UDP (with TCP retry on truncation), built on hickory-proto's
//! message types. Used to read what a server really answers: by `status`, the demo, and tests.
//! Not a resolver: no recursion, no caching, one server.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// What a server answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub rcode: ResponseCode,
    pub authoritative: bool,
    pub addrs: Vec<IpAddr>,
    pub message: Message,
}

pub async fn query(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
    timeout: Duration,
) -> anyhow::Result<Reply> {
    query_class(
        server,
        name,
        rtype,
        hickory_proto::rr::DNSClass::IN,
        timeout,
    )
    .await
}

/// The same in another class (CH for `whoami.cloudflare`-style questions).
pub async fn query_class(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
    class: hickory_proto::rr::DNSClass,
    timeout: Duration,
) -> anyhow::Result<Reply> {
    let mut msg = Message::query();
    msg.metadata.recursion_desired = false;
    let mut q = Query::query(name.clone(), rtype);
    q.query_class = class;
    msg.add_query(q);
    let wire = msg.to_vec()?;
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse()?
    } else {
        "[::]:0".parse()?
    };
    let sock = UdpSocket::bind(bind).await?;
    sock.connect(server).await?;
    sock.send(&wire).await?;
    let mut buf = vec![0u8; 65_535];
    let reply = loop {
        let n = tokio::time::timeout(timeout, sock.recv(&mut buf))
            .await
            .map_err(|_| anyhow::anyhow!("no DNS answer from {server} within {timeout:?}"))??;
        let Ok(reply) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if reply.metadata.id == msg.metadata.id {
            break reply;
        }
    };
    let reply = if reply.metadata.truncation {
        tcp_query(server, &msg, timeout).await?
    } else {
        reply
    };
    let addrs = reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect();
    Ok(Reply {
        rcode: reply.metadata.response_code,
        authoritative: reply.metadata.authoritative,
        addrs,
        message: reply,
    })
}

pub async fn tcp_query(
    server: SocketAddr,
    msg: &Message,
    timeout: Duration,
) -> anyhow::Result<Message> {
    let fut = async {
        let mut s = TcpStream::connect(server).await?;
        let wire = msg.to_vec()?;
        s.write_all(&(wire.len() as u16).to_be_bytes()).await?;
        s.write_all(&wire).await?;
        let len = s.read_u16().await? as usize;
        let mut buf = vec![0u8; len];
        s.read_exact(&mut buf).await?;
        Ok::<_, anyhow::Error>(Message::from_vec(&buf)?)
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| anyhow::anyhow!("no DNS answer over TCP from {server} within {timeout:?}"))?
}
