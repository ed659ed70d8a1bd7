//! The public status page (`[status_page]`, its promises: `crate::config::StatusPageConfig`):
//! `/` (HTML), `/feed.atom` (Atom, RFC 4287) and `/status.json`, on a listener of its own.
//!
//! What a visitor sees is made here from the controller's status and the event log, in plain
//! words chosen from the event's *kind* and the site's phase, never from a reason's text
//! (reasons hold addresses, error messages and probe details). Only the configured sites are
//! shown, and an address only with `show_addresses`. Reading needs nothing; nothing can be
//! changed here. One look at the sites serves every request for 5 s.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{header, Method, Request, Response, StatusCode};
use maud::{html, PreEscaped, DOCTYPE};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, StatusPageConfig};
use crate::control::{Message, SiteStatus};
use crate::decide::Phase;
use crate::events::EventKind;
use crate::util::{human_duration, utc};

/// How far back incidents are listed.
const HISTORY_MS: u64 = 90 * 86_400_000;

/// One site as a visitor sees it.
#[derive(serde::Serialize)]
struct PublicSite {
    name: String,
    domain: String,
    /// "operational", "standby", "down", "maintenance".
    state: &'static str,
    words: String,
    since: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<String>,
    incidents: Vec<Incident>,
    maintenance: Vec<Window>,
}

#[derive(serde::Serialize, Clone)]
struct Incident {
    site: String,
    /// "outage", "maintenance", "degraded".
    kind: &'static str,
    started: u64,
    ended: Option<u64>,
    words: String,
}

#[derive(serde::Serialize)]
struct Window {
    name: String,
    start: u64,
    end: u64,
}

/// A phase in a visitor's words (proxy mode: the copy answering is the standby's state).
fn plain(s: &SiteStatus) -> (&'static str, String) {
    let copy = s.proxy.as_ref().is_some_and(|p| p.open);
    match s.phase {
        Phase::Drained if s.reason.contains("maintenance window") => (
            "maintenance",
            "Under scheduled maintenance: a read-only copy is served".to_string(),
        ),
        Phase::FailedOver | Phase::Recovering | Phase::Drained => (
            "standby",
            "Served from a read-only copy while the site's own server is away".to_string(),
        ),
        Phase::PrimaryDown => ("down", "Not answering; being worked on".to_string()),
        _ if copy => (
            "standby",
            "Served from a read-only copy while the site's own server is away".to_string(),
        ),
        Phase::Healthy | Phase::Suspect => ("operational", "Operational".to_string()),
    }
}

/// Incidents from a site's events (newest first in, newest first out): an outage from a
/// failover (or both-down) to the failback, a maintenance from a drain to its release.
fn incidents(site: &str, events: &[crate::store::Event]) -> Vec<Incident> {
    let mut out: Vec<Incident> = vec![];
    let mut open: Option<Incident> = None;
    for e in events.iter().rev() {
        let Some(kind) = EventKind::from_word(&e.kind) else {
            continue;
        };
        match kind {
            EventKind::FailedOver | EventKind::BothDown if open.is_none() => {
                open = Some(Incident {
                    site: site.to_string(),
                    kind: "outage",
                    started: e.at,
                    ended: None,
                    words: match kind {
                        EventKind::BothDown => "The site and its copy stopped answering".into(),
                        _ => "The site's server stopped answering; a read-only copy was served"
                            .into(),
                    },
                })
            }
            EventKind::Drained if open.is_none() => {
                open = Some(Incident {
                    site: site.to_string(),
                    kind: if e.reason.contains("maintenance window") {
                        "maintenance"
                    } else {
                        "degraded"
                    },
                    started: e.at,
                    ended: None,
                    words: "Moved to a read-only copy for planned work".into(),
                })
            }
            EventKind::FailedBack | EventKind::Released => {
                if let Some(mut i) = open.take() {
                    i.ended = Some(e.at);
                    i.words.push_str(&format!(
                        "; resolved after {}",
                        human_duration(e.at.saturating_sub(i.started) / 1000 * 1000)
                    ));
                    out.push(i);
                }
            }
            _ => {}
        }
    }
    out.extend(open);
    out.reverse();
    out
}

/// How long one look at the sites serves every visitor (a busy page asks the controller and
/// the event log at most this often, whatever the traffic).
const FRESH_MS: u64 = 5_000;

struct Page {
    cfg: Arc<Config>,
    page: StatusPageConfig,
    tx: mpsc::Sender<Message>,
    store: crate::store::Store,
    /// The last look, and when it was taken.
    last: tokio::sync::Mutex<Option<(u64, Arc<Vec<PublicSite>>)>>,
}

impl Page {
    /// The sites as visitors see them, at most [`FRESH_MS`] old.
    async fn current(&self, now: u64) -> Option<Arc<Vec<PublicSite>>> {
        let mut last = self.last.lock().await;
        if let Some((at, sites)) = last.as_ref() {
            if now < at + FRESH_MS {
                return Some(sites.clone());
            }
        }
        let sites = Arc::new(self.sites(now).await?);
        *last = Some((now, sites.clone()));
        Some(sites)
    }

    async fn sites(&self, now: u64) -> Option<Vec<PublicSite>> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Message::Status { reply }).await.ok()?;
        let (all, _, _) = rx.await.ok()?;
        let mut out = vec![];
        for s in all {
            if self
                .page
                .sites
                .as_ref()
                .is_some_and(|l| !l.contains(&s.name))
            {
                continue;
            }
            let events = self
                .store
                .events_page(Some(&s.name), None, None, 200)
                .unwrap_or_default();
            let events: Vec<_> = events
                .into_iter()
                .filter(|e| e.at + HISTORY_MS >= now)
                .collect();
            let (state, words) = plain(&s);
            let maintenance = self
                .cfg
                .sites
                .iter()
                .find(|c| c.name == s.name)
                .map(|c| {
                    c.maintenance
                        .iter()
                        .filter_map(|w| {
                            w.occurrence(now).map(|o| Window {
                                name: w.name.clone(),
                                start: o.start,
                                end: o.end,
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push(PublicSite {
                incidents: incidents(&s.name, &events),
                address: self.page.show_addresses.then(|| s.published.clone()),
                name: s.name,
                domain: s.domain,
                state,
                words,
                since: s.since,
                maintenance,
            });
        }
        Some(out)
    }
}

fn reply(status: StatusCode, kind: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, header::HeaderValue::from_static(kind));
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("max-age=10"),
    );
    r
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn rfc3339(ms: u64) -> String {
    jiff::Timestamp::from_millisecond(ms as i64)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn render_html(title: &str, sites: &[PublicSite]) -> String {
    const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;max-width:760px;margin:2em auto;padding:0 1em;color:#1f2328}\
        .s{border:1px solid #d0d7de;border-radius:6px;padding:.7em 1em;margin:.8em 0}.operational{color:#1a7f37}\
        .standby,.maintenance{color:#9a6700}.down{color:#cf222e}.mute{color:#57606a}";
    let all_ok = sites.iter().all(|s| s.state == "operational");
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                link rel="alternate" type="application/atom+xml" href="/feed.atom" title=(title);
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { (title) }
                p { strong { @if all_ok { "All systems operational" } @else { "Some sites are affected" } } }
                @for s in sites {
                    div.s {
                        h2 { (s.domain) }
                        p class=(s.state) { strong { (s.words) } " " span.mute { "since " (utc(s.since)) } }
                        @if let Some(a) = &s.address { p.mute { "Answering at " (a) } }
                        @for w in &s.maintenance { p { "Scheduled maintenance: " (utc(w.start)) " to " (utc(w.end)) } }
                        @if s.incidents.is_empty() { p.mute { "No incidents in the last 90 days." } }
                        ul { @for i in &s.incidents { li { (utc(i.started)) ": " (i.words) } } }
                    }
                }
                p.mute { a href="/feed.atom" { "Atom feed" } " · " a href="/status.json" { "JSON" } }
            }
        }
    }
    .into_string()
}

fn render_atom(title: &str, sites: &[PublicSite], now: u64) -> String {
    let mut items: Vec<&Incident> = sites.iter().flat_map(|s| &s.incidents).collect();
    items.sort_by_key(|i| std::cmp::Reverse(i.ended.unwrap_or(i.started)));
    let updated = items
        .first()
        .map(|i| i.ended.unwrap_or(i.started))
        .unwrap_or(now);
    let mut o = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n<title>{}</title>\n<id>urn:understudy:status</id>\n<updated>{}</updated>\n<link rel=\"alternate\" href=\"/\"/>\n<author><name>{}</name></author>\n",
        escape(title),
        rfc3339(updated),
        escape(title)
    );
    for i in items {
        let site = sites.iter().find(|s| s.name == i.site);
        let domain = site.map(|s| s.domain.as_str()).unwrap_or("");
        o.push_str(&format!(
            "<entry>\n<title>{}: {}</title>\n<id>urn:understudy:incident:{}:{}</id>\n<updated>{}</updated>\n<published>{}</published>\n<summary>{}</summary>\n</entry>\n",
            escape(domain),
            i.kind,
            escape(&i.site),
            i.started,
            rfc3339(i.ended.unwrap_or(i.started)),
            rfc3339(i.started),
            escape(&i.words)
        ));
    }
    o.push_str("</feed>\n");
    o
}

/// Serves the page until `cancel` fires.
pub async fn serve(
    listener: TcpListener,
    cfg: Arc<Config>,
    tx: mpsc::Sender<Message>,
    store: crate::store::Store,
    cancel: CancellationToken,
) {
    let Some(page) = cfg.status_page.clone() else {
        return;
    };
    let page = Arc::new(Page {
        cfg,
        page,
        tx,
        store,
        last: Default::default(),
    });
    let opts = crate::http::server::Options {
        name: "status page",
        max_connections: 1024,
        header_timeout: Duration::from_secs(5),
        http2: false,
        max_lifetime: None,
        grace: Duration::from_secs(1),
        cores: None,
    };
    crate::http::server::serve(
        listener,
        None,
        opts,
        cancel,
        move |req: Request<hyper::body::Incoming>, _| {
            let page = page.clone();
            async move {
                if !matches!(*req.method(), Method::GET | Method::HEAD) {
                    return reply(
                        StatusCode::METHOD_NOT_ALLOWED,
                        "text/plain; charset=utf-8",
                        "this page is read-only\n".into(),
                    );
                }
                let now = crate::util::now_millis();
                let Some(sites) = page.current(now).await else {
                    return reply(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "text/plain; charset=utf-8",
                        "stopping\n".into(),
                    );
                };
                let title = &page.page.title;
                let mut r = match req.uri().path() {
                    "/" => reply(
                        StatusCode::OK,
                        "text/html; charset=utf-8",
                        render_html(title, &sites),
                    ),
                    "/feed.atom" => reply(
                        StatusCode::OK,
                        "application/atom+xml",
                        render_atom(title, &sites, now),
                    ),
                    "/status.json" => reply(
                        StatusCode::OK,
                        "application/json",
                        serde_json::to_string_pretty(
                            &serde_json::json!({ "title": title, "sites": sites.as_slice() }),
                        )
                        .unwrap_or_default(),
                    ),
                    _ => reply(
                        StatusCode::NOT_FOUND,
                        "text/plain; charset=utf-8",
                        "not found; see /\n".into(),
                    ),
                };
                if req.method() == Method::HEAD {
                    *r.body_mut() = Full::new(Bytes::new());
                }
                r
            }
        },
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(at: u64, kind: &str, reason: &str) -> crate::store::Event {
        crate::store::Event {
            id: at as i64,
            site: "a".into(),
            at,
            kind: kind.into(),
            from_phase: None,
            to_phase: None,
            reason: reason.into(),
            records_before: None,
            records_after: None,
        }
    }

    /// Incidents pair a failover with its failback and a drain with its release, and never
    /// carry a reason's words (which hold addresses).
    #[test]
    fn incidents_pair_and_hide_reasons() {
        let newest_first = vec![
            ev(9_000, "released", "r"),
            ev(8_000, "drained", "maintenance window `w` from ..."),
            ev(5_000, "failed-back", "primary 192.0.2.1 answers"),
            ev(4_000, "transition", "x"),
            ev(
                2_000,
                "failed-over",
                "primary 192.0.2.1: connection refused",
            ),
            ev(1_000, "failed-over", "older, unpaired"),
        ];
        let got = incidents("a", &newest_first);
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].kind, got[0].started, got[0].ended),
            ("maintenance", 8_000, Some(9_000))
        );
        assert_eq!(
            (got[1].kind, got[1].started, got[1].ended),
            ("outage", 1_000, Some(5_000))
        );
        for i in &got {
            assert!(!i.words.contains("192.0.2"), "{}", i.words);
        }
        let open = incidents("a", &[ev(3_000, "failed-over", "x")]);
        assert_eq!(open[0].ended, None);
    }

    #[test]
    fn the_feed_is_escaped() {
        let site = PublicSite {
            name: "a".into(),
            domain: "<x>&y".into(),
            state: "operational",
            words: "ok".into(),
            since: 0,
            address: None,
            incidents: vec![Incident {
                site: "a".into(),
                kind: "outage",
                started: 1,
                ended: None,
                words: "w".into(),
            }],
            maintenance: vec![],
        };
        let atom = render_atom("t<", &[site], 5);
        assert!(atom.contains("<title>t&lt;</title>"));
        assert!(atom.contains("&lt;x&gt;&amp;y: outage"));
    }
}
