//! A local stand-in for the Cloudflare API v4, the one provider no real server exists for here.
//! It follows Cloudflare's documented requests and responses: Bearer token auth, the
//! `{success, errors: [{code, message}], messages, result, result_info}` envelope, page/per_page
//! pagination with `total_pages`, `type`/`name` filters on `dns_records`, POST/PUT/DELETE of
//! records, 403 code 10000 "Authentication error" for a bad token, 400 validation errors
//! (TTL must be 1 or 60–86400; A content must be IPv4), and 429 with `Retry-After` (code 971)
//! when asked to throttle.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};

pub const ZONE_ID: &str = "023e105f4ecef8ad9ca31a8372d0c353";

#[derive(Clone, Debug)]
pub struct Rec {
    pub id: String,
    pub rtype: String,
    pub name: String,
    pub content: String,
    pub ttl: u32,
    pub proxied: bool,
    pub comment: Option<String>,
}

#[derive(Default)]
pub struct State {
    pub token: String,
    pub records: BTreeMap<String, Rec>,
    pub next_id: u64,
    /// Answer this many next requests with 429.
    pub throttle: u32,
    pub retry_after: u64,
    /// (method, path?query) of every request.
    pub log: Vec<(String, String)>,
}

impl State {
    pub fn add(
        &mut self,
        rtype: &str,
        name: &str,
        content: &str,
        ttl: u32,
        proxied: bool,
    ) -> String {
        self.next_id += 1;
        let id = format!("{:032x}", self.next_id);
        self.records.insert(
            id.clone(),
            Rec {
                id: id.clone(),
                rtype: rtype.into(),
                name: name.into(),
                content: content.into(),
                ttl,
                proxied,
                comment: None,
            },
        );
        id
    }

    pub fn writes(&self) -> usize {
        self.log.iter().filter(|(m, _)| m != "GET").count()
    }

    pub fn find(&self, rtype: &str, name: &str) -> Vec<Rec> {
        self.records
            .values()
            .filter(|r| r.rtype == rtype && r.name == name)
            .cloned()
            .collect()
    }
}

pub struct FakeCloudflare {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
    _rt: tokio::runtime::Runtime,
}

impl FakeCloudflare {
    pub fn start(token: &str) -> FakeCloudflare {
        let state = Arc::new(Mutex::new(State {
            token: token.into(),
            ..Default::default()
        }));
        let st = state.clone();
        let (addr, rt) = super::http_server(move |req| handle(req, st.clone()));
        FakeCloudflare {
            addr,
            state,
            _rt: rt,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}/client/v4", self.addr)
    }
}

fn envelope(status: StatusCode, result: Value, info: Option<Value>) -> Response<Full<Bytes>> {
    let mut body = json!({ "success": true, "errors": [], "messages": [], "result": result });
    if let Some(i) = info {
        body["result_info"] = i;
    }
    respond(status, body)
}

fn failure(status: StatusCode, code: i64, message: &str) -> Response<Full<Bytes>> {
    respond(
        status,
        json!({ "success": false, "errors": [{ "code": code, "message": message }], "messages": [], "result": null }),
    )
}

fn respond(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r
}

fn rec_json(r: &Rec) -> Value {
    json!({
        "id": r.id, "zone_id": ZONE_ID, "zone_name": "example.test", "name": r.name, "type": r.rtype,
        "content": r.content, "proxiable": true, "proxied": r.proxied, "ttl": r.ttl, "comment": r.comment,
        "tags": [], "created_on": "2026-11-24T00:00:00Z", "modified_on": "2026-11-24T00:00:00Z"
    })
}

fn query(req: &Request<hyper::body::Incoming>) -> BTreeMap<String, String> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("%2E", ".").replace("%2e", ".")))
        .collect()
}

/// Checks a record body as Cloudflare does; returns the error response on failure.
fn validate(body: &Value) -> Result<Rec, Box<Response<Full<Bytes>>>> {
    let s = |k: &str| body.get(k).and_then(|v| v.as_str()).map(String::from);
    let (Some(rtype), Some(name), Some(content)) = (s("type"), s("name"), s("content")) else {
        return Err(Box::new(failure(
            StatusCode::BAD_REQUEST,
            9000,
            "DNS name, type and content are required",
        )));
    };
    let ttl = body.get("ttl").and_then(|v| v.as_u64()).unwrap_or(1) as u32;
    if ttl != 1 && !(60..=86_400).contains(&ttl) {
        return Err(bad(
            StatusCode::BAD_REQUEST,
            9021,
            "Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic.",
        ));
    }
    if rtype == "A" && content.parse::<std::net::Ipv4Addr>().is_err() {
        return Err(bad(
            StatusCode::BAD_REQUEST,
            9005,
            "Content for A record must be a valid IPv4 address.",
        ));
    }
    if rtype == "AAAA" && content.parse::<std::net::Ipv6Addr>().is_err() {
        return Err(bad(
            StatusCode::BAD_REQUEST,
            9006,
            "Content for AAAA record must be a valid IPv6 address.",
        ));
    }
    if !(name == "example.test" || name.ends_with(".example.test")) {
        return Err(bad(
            StatusCode::BAD_REQUEST,
            9007,
            "Content for the DNS name is not within the zone.",
        ));
    }
    let proxied = body
        .get("proxied")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    Ok(Rec {
        id: String::new(),
        rtype,
        name,
        content,
        ttl,
        proxied,
        comment: s("comment"),
    })
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    st: Arc<Mutex<State>>,
) -> Response<Full<Bytes>> {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let q = query(&req);
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body: Value = {
        let bytes = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if bytes.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice(&bytes) {
                Ok(v) => v,
                Err(_) => {
                    return failure(
                        StatusCode::BAD_REQUEST,
                        6007,
                        "Malformed JSON in request body",
                    )
                }
            }
        }
    };
    let mut s = st.lock().unwrap();
    s.log.push((
        method.clone(),
        format!(
            "{path}?{}",
            q.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        ),
    ));
    if s.throttle > 0 {
        s.throttle -= 1;
        let mut r = failure(
            StatusCode::TOO_MANY_REQUESTS,
            971,
            "Please wait and consider throttling your request speed",
        );
        r.headers_mut()
            .insert("retry-after", s.retry_after.to_string().parse().unwrap());
        return r;
    }
    match auth.strip_prefix("Bearer ") {
        None => return failure(StatusCode::BAD_REQUEST, 6003, "Invalid request headers"),
        Some(t) if t != s.token => {
            return failure(StatusCode::FORBIDDEN, 10000, "Authentication error")
        }
        Some(_) => {}
    }
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["client", "v4", "zones"]) => {
            let zones: Vec<Value> = if q.get("name").is_none_or(|n| n == "example.test") {
                vec![json!({ "id": ZONE_ID, "name": "example.test", "status": "active" })]
            } else {
                vec![]
            };
            let n = zones.len();
            envelope(
                StatusCode::OK,
                json!(zones),
                Some(
                    json!({ "page": 1, "per_page": 20, "count": n, "total_count": n, "total_pages": 1 }),
                ),
            )
        }
        (_, ["client", "v4", "zones", zid, ..]) if *zid != ZONE_ID => failure(
            StatusCode::NOT_FOUND,
            7003,
            "Could not route to /zones, perhaps your object identifier is invalid?",
        ),
        ("GET", ["client", "v4", "zones", _, "dns_records"]) => {
            let page: usize = q
                .get("page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(1)
                .max(1);
            let per_page: usize = q
                .get("per_page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(100)
                .clamp(5, 5_000_000);
            let all: Vec<&Rec> = s
                .records
                .values()
                .filter(|r| q.get("type").is_none_or(|t| *t == r.rtype))
                .filter(|r| q.get("name").is_none_or(|n| *n == r.name))
                .collect();
            let total = all.len();
            let items: Vec<Value> = all
                .iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|r| rec_json(r))
                .collect();
            let count = items.len();
            let pages = total.div_ceil(per_page).max(1);
            envelope(
                StatusCode::OK,
                json!(items),
                Some(
                    json!({ "page": page, "per_page": per_page, "count": count, "total_count": total, "total_pages": pages }),
                ),
            )
        }
        ("POST", ["client", "v4", "zones", _, "dns_records"]) => match validate(&body) {
            Err(r) => *r,
            Ok(new) => {
                let id = s.add(&new.rtype, &new.name, &new.content, new.ttl, new.proxied);
                s.records.get_mut(&id).unwrap().comment = new.comment;
                let r = s.records[&id].clone();
                envelope(StatusCode::OK, rec_json(&r), None)
            }
        },
        ("PUT", ["client", "v4", "zones", _, "dns_records", rid]) => {
            match (s.records.contains_key(*rid), validate(&body)) {
                (false, _) => failure(StatusCode::NOT_FOUND, 81044, "Record does not exist."),
                (_, Err(r)) => *r,
                (true, Ok(new)) => {
                    let r = Rec {
                        id: rid.to_string(),
                        ..new
                    };
                    s.records.insert(rid.to_string(), r.clone());
                    envelope(StatusCode::OK, rec_json(&r), None)
                }
            }
        }
        ("DELETE", ["client", "v4", "zones", _, "dns_records", rid]) => {
            match s.records.remove(*rid) {
                None => failure(StatusCode::NOT_FOUND, 81044, "Record does not exist."),
                Some(_) => envelope(StatusCode::OK, json!({ "id": rid }), None),
            }
        }
        _ => failure(StatusCode::NOT_FOUND, 7000, "No route for that URI"),
    }
}

fn bad(status: StatusCode, code: i64, message: &str) -> Box<Response<Full<Bytes>>> {
    Box::new(failure(status, code, message))
}
