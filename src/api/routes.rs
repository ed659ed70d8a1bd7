//! The routes of `/api/v1` (their shapes: `docs/openapi.json`). Every answer is JSON, an
//! error is `{"error": "..."}` with a status that says whose fault it is (4xx: the request's,
//! 5xx: the daemon's), and a known path asked with another method gets 405 and `Allow`.

use std::collections::BTreeMap;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::oneshot;

use super::{error, json, Api, StatusReply};
use crate::control::{Command, CommandError, Message, PublicStatus, SiteStatus};
use crate::reconcile::ZoneStatus;

type Reply = Response<Full<Bytes>>;

/// A refusal on its way to becoming an error reply (small, unlike a reply).
pub(super) struct Fail(pub(super) StatusCode, pub(super) String);

pub(super) fn fail(status: StatusCode, why: impl Into<String>) -> Fail {
    Fail(status, why.into())
}

const SHUTTING_DOWN: &str = "the daemon is shutting down";
/// The most rows one page of a list gives.
const MAX_LIMIT: i64 = 1000;

/// The query string as a map; a name given twice is a bad request (which one was meant?).
fn query(req: &Request<hyper::body::Incoming>) -> Result<BTreeMap<String, String>, Fail> {
    let mut out = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(fail(
                StatusCode::BAD_REQUEST,
                format!("query parameter `{k}` is given more than once"),
            ));
        }
    }
    Ok(out)
}

fn int(q: &BTreeMap<String, String>, name: &str, min: i64, max: i64) -> Result<Option<i64>, Fail> {
    let Some(v) = q.get(name) else {
        return Ok(None);
    };
    match v.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(fail(
            StatusCode::BAD_REQUEST,
            format!(
                "query parameter `{name}` must be a whole number from {min} to {max}, not `{v}`"
            ),
        )),
    }
}

fn boolean(q: &BTreeMap<String, String>, name: &str) -> Result<bool, Fail> {
    match q.get(name).map(String::as_str) {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") | Some("") => Ok(true),
        Some(v) => Err(fail(
            StatusCode::BAD_REQUEST,
            format!("query parameter `{name}` must be true or false, not `{v}`"),
        )),
    }
}

/// `GET /api/v1/sites`, serialized straight from the statuses (no JSON tree in between: at
/// 1,000 sites that doubled the time).
#[derive(serde::Serialize)]
struct SitesReply {
    sites: Vec<SiteStatus>,
}

pub(super) type Status = (Vec<SiteStatus>, Vec<PublicStatus>, Vec<ZoneStatus>);

pub(super) async fn status(api: &Api) -> Result<Status, Fail> {
    let (reply, rx) = oneshot::channel();
    if api.tx.send(Message::Status { reply }).await.is_err() {
        return Err(fail(StatusCode::SERVICE_UNAVAILABLE, SHUTTING_DOWN));
    }
    rx.await
        .map_err(|_| fail(StatusCode::SERVICE_UNAVAILABLE, SHUTTING_DOWN))
}

fn store_error(e: crate::store::StoreError) -> Fail {
    tracing::error!("control API: {e}");
    fail(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("reading the state database: {e}"),
    )
}

fn no_site(site: &str) -> Fail {
    fail(StatusCode::NOT_FOUND, format!("no site named `{site}`"))
}

/// The methods each path answers, for 405 and `Allow`.
fn allowed(parts: &[&str]) -> Option<&'static str> {
    Some(match parts {
        ["metrics"] => "GET",
        ["api", "v1", "openapi.json" | "status" | "sites" | "events" | "crawls"] => "GET",
        ["api", "v1", "snapshots" | "certificates" | "addresses"] => "GET",
        ["api", "v1", "sites", _] => "GET",
        ["api", "v1", "sites", _, "drain" | "release" | "crawl"] => "POST",
        ["api", "v1", "dns", "reverify"] | ["api", "v1", "notify", "test"] => "POST",
        _ => return None,
    })
}

/// Whether `path` is an action's (answers POST).
pub(super) fn is_action(path: &str) -> bool {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    allowed(&parts) == Some("POST")
}

pub(super) async fn route(api: &Api, req: Request<hyper::body::Incoming>) -> Reply {
    let path = req.uri().path().to_string();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let Some(allow) = allowed(&parts) else {
        return error(
            StatusCode::NOT_FOUND,
            match parts.first() {
                Some(&"api") => format!("no route {path}; the routes are in /api/v1/openapi.json"),
                _ => {
                    "not found; the API lives under /api/v1/ (and metrics at /metrics)".to_string()
                }
            },
        );
    };
    let head_ok = allow == "GET" && req.method() == Method::HEAD;
    if req.method().as_str() != allow && !head_ok {
        let mut r = error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{path} answers {allow}, not {}", req.method()),
        );
        r.headers_mut().insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static(allow),
        );
        return r;
    }
    let q = match query(&req) {
        Ok(q) => q,
        Err(Fail(status, why)) => return error(status, why),
    };
    let method = req.method().clone();
    if method == Method::POST {
        if let Err(Fail(status, why)) = options_body(req).await {
            return error(status, why);
        }
    }
    let answer = match parts.as_slice() {
        ["metrics"] => metrics(api).await,
        ["api", "v1", "openapi.json"] => {
            let mut r = Response::new(Full::new(Bytes::from_static(super::OPENAPI.as_bytes())));
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/json"),
            );
            Ok(r)
        }
        ["api", "v1", "status"] => status(api).await.map(|(sites, public, zones)| {
            json(
                StatusCode::OK,
                &StatusReply {
                    sites,
                    public,
                    zones,
                    secondaries: api.secondaries.snapshot(),
                    replicas: api.replicas.snapshot(),
                },
            )
        }),
        ["api", "v1", "sites"] => status(api)
            .await
            .map(|(sites, _, _)| json(StatusCode::OK, &SitesReply { sites })),
        ["api", "v1", "sites", site] => status(api).await.and_then(|(sites, _, _)| {
            let site = percent(site);
            sites
                .into_iter()
                .find(|s| s.name == site)
                .map(|s| json(StatusCode::OK, &s))
                .ok_or_else(|| no_site(&site))
        }),
        ["api", "v1", "events"] => events(api, &q),
        ["api", "v1", "crawls"] => crawls(api, &q),
        ["api", "v1", "snapshots"] => snapshots(api),
        ["api", "v1", "certificates"] => certificates(api).await,
        ["api", "v1", "addresses"] => addresses(api, &q).await,
        ["api", "v1", "sites", site, action @ ("drain" | "release")] => {
            let force = match boolean(&q, "force") {
                Ok(f) => f,
                Err(Fail(status, why)) => return error(status, why),
            };
            // Words for the log: control characters become spaces (one line per event).
            let note = match q.get("reason") {
                Some(r) if r.is_empty() || r.chars().count() > 300 => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "query parameter `reason` is 1 to 300 characters",
                    )
                }
                Some(r) => Some(r.replace(|c: char| c.is_control(), " ").trim().to_string())
                    .filter(|r| !r.is_empty()),
                None => None,
            };
            let command = match *action {
                "drain" => Command::Drain { force, note },
                _ => Command::Release { note },
            };
            site_command(api, &percent(site), command).await
        }
        ["api", "v1", "sites", site, "crawl"] => crawl_now(api, &percent(site)),
        ["api", "v1", "dns", "reverify"] => Ok(reverify(api)),
        ["api", "v1", "notify", "test"] => notify_test(api, &q).await,
        _ => Err(fail(StatusCode::NOT_FOUND, format!("no route {path}"))),
    };
    let mut r = answer.unwrap_or_else(|Fail(status, why)| error(status, why));
    if method == Method::HEAD {
        *r.body_mut() = Full::new(Bytes::new());
    }
    r
}

/// An action's body: a JSON object with no options (`{}`); anything else is refused, so a
/// client that thinks it is passing an option learns that it is not.
async fn options_body(req: Request<hyper::body::Incoming>) -> Result<(), Fail> {
    use http_body_util::BodyExt;
    let body = http_body_util::Limited::new(req.into_body(), 64 * 1024)
        .collect()
        .await
        .map_err(|e| fail(StatusCode::BAD_REQUEST, format!("reading the body: {e}")))?
        .to_bytes();
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Object(m)) if m.is_empty() => Ok(()),
        Ok(serde_json::Value::Object(m)) => Err(fail(
            StatusCode::BAD_REQUEST,
            format!(
                "the body takes no options, but has `{}`; options are query parameters",
                m.keys().next().map(String::as_str).unwrap_or("")
            ),
        )),
        _ => Err(fail(
            StatusCode::BAD_REQUEST,
            "an action's body is a JSON object: `{}`",
        )),
    }
}

/// A path segment as the site's name (`%2E` and the like decoded; a `+` in a path is a `+`,
/// not the space it is in a query).
pub(super) fn percent(segment: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}

async fn metrics(api: &Api) -> Result<Reply, Fail> {
    let (sites, _, _) = status(api).await?;
    let views: Vec<crate::metrics::SiteView<'_>> = sites
        .iter()
        .map(|s| crate::metrics::SiteView {
            site: &s.name,
            phase: s.phase,
            target: s.target,
            primary: s
                .last_primary_probe
                .as_ref()
                .map(|p| (p.ok, p.cert_expires)),
            standby: s
                .last_standby_probe
                .as_ref()
                .map(|p| (p.ok, p.cert_expires)),
        })
        .collect();
    let mut r = Response::new(Full::new(Bytes::from(crate::metrics::render(&views))));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    Ok(r)
}

fn events(api: &Api, q: &BTreeMap<String, String>) -> Result<Reply, Fail> {
    let limit = int(q, "limit", 1, MAX_LIMIT)?.unwrap_or(100);
    let before = int(q, "before", 1, i64::MAX)?;
    let kind = match q.get("kind") {
        None => None,
        Some(k) => match crate::events::EventKind::from_word(k) {
            Some(_) => Some(k.as_str()),
            None => {
                let all: Vec<&str> = crate::events::EventKind::ALL
                    .iter()
                    .map(|k| k.as_str())
                    .collect();
                return Err(fail(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "`{k}` is not an event kind; the kinds are: {}",
                        all.join(", ")
                    ),
                ));
            }
        },
    };
    let site = q.get("site").map(String::as_str);
    let page = api
        .store
        .events_page(site, kind, before, limit as usize)
        .map_err(store_error)?;
    // The next page: older than the last event of this one, with the same filters.
    let next = match page.last() {
        Some(last) if page.len() == limit as usize => {
            let mut n = url::form_urlencoded::Serializer::new(String::new());
            if let Some(s) = site {
                n.append_pair("site", s);
            }
            if let Some(k) = kind {
                n.append_pair("kind", k);
            }
            n.append_pair("limit", &limit.to_string());
            n.append_pair("before", &last.id.to_string());
            Some(format!("/api/v1/events?{}", n.finish()))
        }
        _ => None,
    };
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "events": page, "next": next }),
    ))
}

fn crawls(api: &Api, q: &BTreeMap<String, String>) -> Result<Reply, Fail> {
    let limit = int(q, "limit", 1, MAX_LIMIT)?.unwrap_or(20);
    let site = q.get("site").map(String::as_str);
    let list: Vec<crate::mirror::crawl::Report> = api
        .store
        .crawls(site, None, limit as usize)
        .map_err(store_error)?;
    Ok(json(StatusCode::OK, &serde_json::json!({ "crawls": list })))
}

/// Per site: the crawl whose snapshot is served (the newest published one) and the newest
/// crawl of any outcome, so a rejected crawl shows beside the copy that is still served.
fn snapshots(api: &Api) -> Result<Reply, Fail> {
    let now = crate::util::now_millis();
    let mut out = Vec::new();
    for site in &api.cfg.sites {
        // The crawl whose snapshot is served, and the newest of any outcome: two indexed rows.
        let crawls = |outcome| -> Result<Vec<crate::mirror::crawl::Report>, Fail> {
            api.store
                .crawls(Some(&site.name), outcome, 1)
                .map_err(store_error)
        };
        let (list, served) = (crawls(None)?, crawls(Some("published"))?);
        let served = served.first();
        let age_ms = served.map(|r| now.saturating_sub(r.started_at + r.duration_ms));
        out.push(serde_json::json!({
            "site": site.name,
            "served": served,
            "age_ms": age_ms,
            "last_crawl": list.first(),
        }));
    }
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "snapshots": out }),
    ))
}

/// The certificates the probes last saw, primary's and standby's, of every HTTPS site.
async fn certificates(api: &Api) -> Result<Reply, Fail> {
    let (sites, _, _) = status(api).await?;
    let now = crate::util::now_millis();
    let mut out = Vec::new();
    for s in &sites {
        for (server, probe) in [
            ("primary", &s.last_primary_probe),
            ("standby", &s.last_standby_probe),
        ] {
            if let Some(p) = probe {
                if let Some(not_after) = p.cert_expires {
                    out.push(serde_json::json!({
                        "site": s.name,
                        "server": server,
                        "not_after": not_after,
                        "days_left": (not_after as i64 - now as i64) / 86_400_000,
                        "seen_at": p.at,
                    }));
                }
            }
        }
    }
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "certificates": out }),
    ))
}

async fn addresses(api: &Api, q: &BTreeMap<String, String>) -> Result<Reply, Fail> {
    let limit = int(q, "limit", 1, MAX_LIMIT)?.unwrap_or(100);
    let (_, current, _) = status(api).await?;
    let history: Vec<_> = api
        .store
        .public_ip_history(limit as usize)
        .map_err(store_error)?
        .into_iter()
        .map(|(family, address, at, sources)| {
            serde_json::json!({
                "family": family,
                "address": address.to_string(),
                "at": at,
                "sources": sources,
            })
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "current": current, "history": history }),
    ))
}

pub(super) async fn site_command(api: &Api, site: &str, command: Command) -> Result<Reply, Fail> {
    let (reply, rx) = oneshot::channel();
    let msg = Message::Command {
        site: site.to_string(),
        command,
        reply,
    };
    if api.tx.send(msg).await.is_err() {
        return Err(fail(StatusCode::SERVICE_UNAVAILABLE, SHUTTING_DOWN));
    }
    match rx.await {
        Ok(Ok(status)) => Ok(json(StatusCode::OK, &status)),
        Ok(Err(e @ CommandError::NoSuchSite(_))) => Err(fail(StatusCode::NOT_FOUND, e.to_string())),
        Ok(Err(e @ CommandError::Refused(_))) => Err(fail(StatusCode::CONFLICT, e.to_string())),
        Ok(Err(e @ CommandError::Failed(_))) => {
            Err(fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
        }
        Err(_) => Err(fail(StatusCode::SERVICE_UNAVAILABLE, SHUTTING_DOWN)),
    }
}

pub(super) fn crawl_now(api: &Api, site: &str) -> Result<Reply, Fail> {
    let Some(i) = api.cfg.sites.iter().position(|s| s.name == site) else {
        return Err(no_site(site));
    };
    let Some(wake) = &api.crawl_now[i] else {
        return Err(fail(
            StatusCode::CONFLICT,
            format!("site `{site}` has no [sites.mirror] schedule, so nothing crawls it here; `understudy mirror {site}` crawls once"),
        ));
    };
    // A permit is kept when the scheduler is busy: the next crawl then starts right after.
    wake.notify_one();
    Ok(json(
        StatusCode::ACCEPTED,
        &serde_json::json!({
            "accepted": format!("a crawl of `{site}` starts now (or right after the one running); its report appears in /api/v1/crawls"),
        }),
    ))
}

pub(super) fn reverify(api: &Api) -> Reply {
    api.reverify.send_modify(|n| *n += 1);
    let zones: Vec<String> = api
        .cfg
        .dns
        .zones
        .iter()
        .filter(|z| z.provider.is_some())
        .map(|z| z.origin.to_string())
        .collect();
    let words = match zones.is_empty() {
        true => "no zone is at an external provider; the built-in server answers what is published".to_string(),
        false => "every provider zone is read again, repaired where it differs, and checked at its authoritative servers; see /api/v1/status".to_string(),
    };
    json(
        StatusCode::ACCEPTED,
        &serde_json::json!({ "accepted": words, "zones": zones }),
    )
}

/// One test message to each channel (or the one named), sent now, not through the outbox.
async fn notify_test(api: &Api, q: &BTreeMap<String, String>) -> Result<Reply, Fail> {
    let only = q.get("channel");
    let channels: Vec<_> = api
        .cfg
        .notify
        .iter()
        .filter(|c| only.is_none_or(|n| &c.name == n))
        .collect();
    if channels.is_empty() {
        return Err(match only {
            Some(n) => fail(StatusCode::NOT_FOUND, format!("no channel is named `{n}`")),
            None => fail(
                StatusCode::CONFLICT,
                "no [[notify]] channels are configured",
            ),
        });
    }
    let msg = crate::notify::test_notice();
    let mut results = Vec::new();
    for ch in channels {
        let start = std::time::Instant::now();
        let outcome = match crate::notify::Channel::new(ch.clone()) {
            Ok(channel) => channel.send(&[], &msg).await.map_err(|e| e.to_string()),
            Err(e) => Err(format!("{e:#}")),
        };
        results.push(serde_json::json!({
            "channel": ch.name,
            "delivered": outcome.is_ok(),
            "error": outcome.err(),
            "ms": start.elapsed().as_millis() as u64,
        }));
    }
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "results": results }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The OpenAPI file and the router agree: every documented path and method is routed,
    /// and every routed path is documented.
    #[test]
    fn the_openapi_file_describes_every_route() {
        let spec: serde_json::Value = serde_json::from_str(super::super::OPENAPI).unwrap();
        let paths = spec["paths"].as_object().unwrap();
        let mut documented = Vec::new();
        for (path, item) in paths {
            let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
            let Some(allow) = allowed(&parts) else {
                panic!("{path} is documented but not routed");
            };
            let methods: Vec<String> = item
                .as_object()
                .unwrap()
                .keys()
                .map(|m| m.to_uppercase())
                .collect();
            assert_eq!(methods, [allow], "{path}");
            documented.push(path.clone());
        }
        let routed = [
            "/metrics",
            "/api/v1/openapi.json",
            "/api/v1/status",
            "/api/v1/sites",
            "/api/v1/events",
            "/api/v1/crawls",
            "/api/v1/snapshots",
            "/api/v1/certificates",
            "/api/v1/addresses",
            "/api/v1/sites/{site}",
            "/api/v1/sites/{site}/drain",
            "/api/v1/sites/{site}/release",
            "/api/v1/sites/{site}/crawl",
            "/api/v1/dns/reverify",
            "/api/v1/notify/test",
        ];
        for p in routed {
            assert!(
                documented.iter().any(|d| d == p),
                "{p} is routed but not documented"
            );
        }
        assert_eq!(documented.len(), routed.len());
        // The event kinds a filter accepts are the log's kinds.
        let mut kinds: Vec<String> = spec["paths"]["/api/v1/events"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "kind")
            .unwrap()["schema"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_string())
            .collect();
        let mut want: Vec<String> = crate::events::EventKind::ALL
            .iter()
            .map(|k| k.as_str().to_string())
            .collect();
        kinds.sort();
        want.sort();
        assert_eq!(kinds, want);
    }
}
