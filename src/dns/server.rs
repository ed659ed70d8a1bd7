//! The built-in authoritative DNS server: hickory-server's listener with our own handler that
//! answers from the current [`ZoneSet`].
//!
//! Owns the sockets and the wire format of answers. The zones are replaced as a whole through
//! [`ZoneHandle::replace`], so a query sees either the old or the new zones, never a mix.
//! Malformed packets are dropped or answered FORMERR by hickory's decoder; nothing here panics
//! on input. Only QUERY is served: UPDATE, NOTIFY and the rest get NOTIMP.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_proto::op::{Edns, MessageType, Metadata, OpCode, ResponseCode};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use hickory_server::Server;
use tokio::net::{TcpListener, UdpSocket};

use super::zone::ZoneSet;

/// Shared, atomically replaceable zones.
#[derive(Clone, Default)]
pub struct ZoneHandle(Arc<RwLock<Arc<ZoneSet>>>);

impl ZoneHandle {
    pub fn new(zones: ZoneSet) -> Self {
        ZoneHandle(Arc::new(RwLock::new(Arc::new(zones))))
    }

    pub fn replace(&self, zones: ZoneSet) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(zones);
    }

    pub fn current(&self) -> Arc<ZoneSet> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

struct Handler {
    zones: ZoneHandle,
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let resp_edns = request.edns.as_ref().map(|req| {
            let mut e = Edns::new();
            e.set_max_payload(req.max_payload().max(512));
            e.set_version(0);
            e
        });
        let builder = MessageResponseBuilder::new(&request.queries, resp_edns.as_ref());
        let error = |rcode: ResponseCode| {
            let mut metadata = Metadata::response_from_request(&request.metadata);
            metadata.response_code = rcode;
            metadata
        };
        if request.metadata.message_type != MessageType::Query
            || request.metadata.op_code != OpCode::Query
        {
            crate::metrics::get().dns_query(ResponseCode::NotImp.into());
            let resp = builder.build_no_records(error(ResponseCode::NotImp));
            return send(&mut response_handle, resp, request).await;
        }
        let info = match request.request_info() {
            Ok(info) => info,
            Err(_) => {
                // Zero or several questions: FORMERR, as RFC 9619 allows only one.
                crate::metrics::get().dns_query(ResponseCode::FormErr.into());
                let resp = builder.build_no_records(error(ResponseCode::FormErr));
                return send(&mut response_handle, resp, request).await;
            }
        };
        let zones = self.zones.current();
        let answer = zones.lookup(info.query.name(), info.query.query_type());
        tracing::debug!(src = %info.src, name = %info.query.name(), qtype = %info.query.query_type(), rcode = %answer.rcode, "dns query");
        crate::metrics::get().dns_query(answer.rcode.into());
        let mut metadata = error(answer.rcode);
        metadata.authoritative = answer.authoritative;
        let resp = builder.build(
            metadata,
            answer.answers.iter(),
            answer.authorities.iter(),
            std::iter::empty(),
            std::iter::empty(),
        );
        send(&mut response_handle, resp, request).await
    }
}

async fn send<'a, R: ResponseHandler>(
    handle: &mut R,
    resp: hickory_server::zone_handler::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
        impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
        impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
        impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
    >,
    request: &Request,
) -> ResponseInfo {
    match handle.send_response(resp).await {
        Ok(info) => info,
        Err(e) => {
            tracing::debug!(src = %request.src(), "could not send a DNS response: {e}");
            let mut metadata = Metadata::response_from_request(&request.metadata);
            metadata.response_code = ResponseCode::ServFail;
            hickory_proto::op::Header {
                metadata,
                counts: Default::default(),
            }
            .into()
        }
    }
}

/// A running built-in server.
pub struct DnsServer {
    server: Server<Handler>,
    pub addrs: Vec<SocketAddr>,
}

impl DnsServer {
    /// Binds UDP and TCP on every address (port 0 picks a free port, the same one for UDP and
    /// TCP) and starts answering from `zones`.
    pub async fn bind(listen: &[SocketAddr], zones: ZoneHandle) -> anyhow::Result<Self> {
        use anyhow::Context;
        let mut server = Server::new(Handler { zones });
        let mut addrs = vec![];
        for want in listen {
            // Bind TCP first: with port 0 it picks the port, and UDP then takes the same one.
            let tcp = TcpListener::bind(want)
                .await
                .with_context(|| bind_hint("TCP", want))?;
            let addr = tcp.local_addr()?;
            let udp = UdpSocket::bind(addr)
                .await
                .with_context(|| bind_hint("UDP", &addr))?;
            server.register_listener(tcp, Duration::from_secs(5), 16 * 1024);
            server.register_socket(udp);
            addrs.push(addr);
        }
        Ok(DnsServer { server, addrs })
    }

    pub async fn shutdown(mut self) {
        if let Err(e) = self.server.shutdown_gracefully().await {
            tracing::warn!("dns server shutdown: {e}");
        }
    }
}

fn bind_hint(proto: &str, addr: &SocketAddr) -> String {
    let extra = if addr.port() < 1024 {
        " (ports below 1024 need root or CAP_NET_BIND_SERVICE; for a trial use e.g. 127.0.0.1:5353)"
    } else {
        ""
    };
    format!("cannot listen for DNS over {proto} on {addr}{extra}")
}
