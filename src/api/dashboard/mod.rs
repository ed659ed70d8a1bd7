//! The dashboard: server-rendered HTML on the control API's listener (`/`, `/sites/{site}`,
//! `/login`, `/logout`, `/live.js`), built from the same controller status and store reads as
//! the JSON routes.
//!
//! **Who may do what.** Reading follows the API (anonymous on loopback while no token is
//! configured, else a read token) or a signed-in session. Acting (drain, release, crawl now,
//! re-verify) needs a session, opened with the password of `[api] password_file`; a form
//! without one is answered 403 with a page that says so. Every form carries the session's
//! CSRF token, the cookie is `SameSite=Strict`, and `crate::api::check_request` has already
//! refused a foreign `Origin` or `Host`. Tokens keep working for scripts on `/api/v1`.
//!
//! **Speed.** The overview asks the controller for every site's status once, filters, sorts
//! by trouble and renders one page (100 sites); a site's page reads its history from the
//! packed tiers (`crate::history`). `/live.js` (below, written here, no dependencies) fetches
//! the page's `#live` part every 2 s while the tab is visible.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{header, Method, Request, Response, StatusCode};

use super::routes;
use super::Api;
use crate::control::Command;
use crate::history::{self, Tier, DAY};

mod pages;
pub mod session;

pub use session::{hash_password, Sessions};

type Reply = Response<Full<Bytes>>;

const LIVE_JS: &str = include_str!("live.js");
/// Sites on one page of the overview.
pub const PER_PAGE: usize = 100;
/// The request header `/live.js` sends to get only the `#live` part.
const FRAGMENT: &str = "x-understudy-fragment";

/// Whether `path` is the dashboard's (the rest of the listener is the JSON API).
pub fn is_dashboard(path: &str) -> bool {
    matches!(path, "/" | "/login" | "/logout" | "/live.js") || path.starts_with("/sites/")
}

fn html(status: StatusCode, markup: maud::Markup) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(markup.into_string())));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        "text/html; charset=utf-8".parse().expect("valid"),
    );
    h.insert(header::CACHE_CONTROL, "no-store".parse().expect("valid"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'"
            .parse()
            .expect("valid"),
    );
    h.insert("x-frame-options", "DENY".parse().expect("valid"));
    r
}

fn redirect(to: &str, cookie: Option<String>) -> Reply {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = to.parse() {
        r.headers_mut().insert(header::LOCATION, v);
    }
    if let Some(c) = cookie.and_then(|c| c.parse().ok()) {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    r
}

/// The form fields of a POST body (at most 16 KB).
async fn form(req: Request<hyper::body::Incoming>) -> Vec<(String, String)> {
    use http_body_util::BodyExt;
    let Ok(body) = http_body_util::Limited::new(req.into_body(), 16 * 1024)
        .collect()
        .await
    else {
        return vec![];
    };
    url::form_urlencoded::parse(&body.to_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub async fn route(
    api: &Api,
    req: Request<hyper::body::Incoming>,
    peer: SocketAddr,
    https: bool,
) -> Reply {
    let now = crate::util::now_millis();
    let path = req.uri().path().to_string();
    let cookie = req
        .headers()
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let session = api.sessions.find(cookie.as_deref(), now);
    let can_login = api.sessions.has_password();
    let method = req.method().clone();
    match (&method, path.as_str()) {
        (&Method::GET | &Method::HEAD, "/live.js") => {
            let mut r = Response::new(Full::new(Bytes::from_static(LIVE_JS.as_bytes())));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                "text/javascript; charset=utf-8".parse().expect("valid"),
            );
            return r;
        }
        (&Method::GET, "/login") => return html(StatusCode::OK, pages::login(None, can_login)),
        (&Method::POST, "/login") => {
            let fields = form(req).await;
            let password = field(&fields, "password").unwrap_or("");
            return match api.sessions.login(peer.ip(), password, now) {
                Ok(id) => redirect("/", Some(session::set_cookie(Some(&id), https))),
                Err(session::LoginRefused::NoPassword) => html(
                    StatusCode::FORBIDDEN,
                    pages::login(Some("no password is configured"), false),
                ),
                Err(session::LoginRefused::WrongPassword) => html(
                    StatusCode::UNAUTHORIZED,
                    pages::login(Some("that password is not the one configured"), true),
                ),
                Err(session::LoginRefused::Wait(s)) => {
                    let mut r = html(
                        StatusCode::TOO_MANY_REQUESTS,
                        pages::login(
                            Some(&format!(
                                "too many failed logins from here; try again in {s} s"
                            )),
                            true,
                        ),
                    );
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, s.to_string().parse().expect("valid"));
                    r
                }
            };
        }
        (&Method::POST, "/logout") => {
            let fields = form(req).await;
            if let Some(s) = &session {
                if field(&fields, "csrf").is_some_and(|t| session::same_token(t, &s.csrf)) {
                    api.sessions.logout(cookie.as_deref());
                }
            }
            return redirect("/", Some(session::set_cookie(None, https)));
        }
        _ => {}
    }
    // Everything else needs the right to read.
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    let may_read = session.is_some()
        || api
            .tokens
            .check(auth, crate::config::TokenScope::Read)
            .is_ok();
    if !may_read {
        return match can_login {
            true => redirect("/login", None),
            false => html(
                StatusCode::UNAUTHORIZED,
                pages::refused(
                    "reading needs a token here, and no password is configured for a browser",
                    false,
                ),
            ),
        };
    }
    let viewer = pages::Viewer {
        csrf: session.as_ref().map(|s| s.csrf.as_str()),
        can_login,
    };
    let fragment = req.headers().contains_key(FRAGMENT);
    let q: Vec<(String, String)> =
        url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let parts: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(routes::percent)
        .collect();
    match (
        &method,
        parts
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice(),
    ) {
        (&Method::GET | &Method::HEAD, [""]) => overview(api, &q, &viewer, now, fragment).await,
        (&Method::GET | &Method::HEAD, ["sites", site]) => {
            let notice = field(&q, "done")
                .and_then(done_words)
                .map(pages::ActionOutcome::Done);
            site_page(
                api,
                site,
                &viewer,
                notice.as_ref(),
                StatusCode::OK,
                now,
                fragment,
            )
            .await
        }
        (&Method::POST, ["sites", site, action]) => {
            let fields = form(req).await;
            let Some(s) = &session else {
                tracing::warn!(%peer, site, action, "dashboard action refused: no session");
                return html(
                    StatusCode::FORBIDDEN,
                    pages::refused(
                        &format!("{action} needs a signed-in session; log in first (scripts use a write token on /api/v1)"),
                        can_login,
                    ),
                );
            };
            if !field(&fields, "csrf").is_some_and(|t| session::same_token(t, &s.csrf)) {
                return html(
                    StatusCode::FORBIDDEN,
                    pages::refused(
                        "the form is stale or not this dashboard's; reload the page and try again",
                        can_login,
                    ),
                );
            }
            tracing::info!(%peer, site, action, "dashboard action");
            let outcome = match *action {
                "drain" => {
                    let note = Some("from the dashboard".to_string());
                    routes::site_command(api, site, Command::Drain { force: false, note })
                        .await
                        .map(|_| ())
                }
                "release" => {
                    let note = Some("from the dashboard".to_string());
                    routes::site_command(api, site, Command::Release { note })
                        .await
                        .map(|_| ())
                }
                "crawl" => routes::crawl_now(api, site).map(|_| ()),
                "reverify" => {
                    routes::reverify(api);
                    Ok(())
                }
                _ => Err(routes::fail(
                    StatusCode::NOT_FOUND,
                    format!("no action `{action}`"),
                )),
            };
            match outcome {
                Ok(()) => redirect(
                    &format!("/sites/{}?done={action}", pages::url_part(site)),
                    None,
                ),
                Err(routes::Fail(status, why)) => {
                    let notice = pages::ActionOutcome::Refused(why);
                    site_page(api, site, &viewer, Some(&notice), status, now, false).await
                }
            }
        }
        _ => html(
            StatusCode::NOT_FOUND,
            pages::refused("no such page", can_login),
        ),
    }
}

fn done_words(action: &str) -> Option<String> {
    Some(
        match action {
            "drain" => "Drained: the records point at the standby until released.",
            "release" => {
                "Released: the site returns to its primary once the primary passes its probes."
            }
            "crawl" => "A crawl starts now (or right after the one running).",
            "reverify" => "Every provider zone is read again and checked at its servers.",
            _ => return None,
        }
        .to_string(),
    )
}

/// Every site's status from the controller, or the page that says why there is none.
async fn sites(
    api: &Api,
    viewer: &pages::Viewer<'_>,
) -> Result<Vec<crate::control::SiteStatus>, Reply> {
    match routes::status(api).await {
        Ok((all, _, _)) => Ok(all),
        Err(routes::Fail(status, why)) => Err(html(status, pages::refused(&why, viewer.can_login))),
    }
}

async fn overview(
    api: &Api,
    q: &[(String, String)],
    viewer: &pages::Viewer<'_>,
    now: u64,
    fragment: bool,
) -> Reply {
    let all = match sites(api, viewer).await {
        Ok(all) => all,
        Err(reply) => return reply,
    };
    let words = field(q, "q").unwrap_or("").trim().to_lowercase();
    let page = field(q, "page")
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let mut shown: Vec<&crate::control::SiteStatus> = all
        .iter()
        .filter(|s| {
            words.is_empty()
                || words.split_whitespace().all(|w| {
                    s.name.to_lowercase().contains(w)
                        || s.domain.to_lowercase().contains(w)
                        || pages::state_word(s).contains(w)
                        || s.reason.to_lowercase().contains(w)
                })
        })
        .collect();
    shown.sort_by(|a, b| {
        pages::trouble_rank(a)
            .cmp(&pages::trouble_rank(b))
            .then(b.since.cmp(&a.since))
            .then(a.name.cmp(&b.name))
    });
    let matching = shown.len();
    let from = (page - 1).saturating_mul(PER_PAGE).min(matching);
    let to = (from + PER_PAGE).min(matching);
    let list = pages::Listing {
        q: &words,
        page,
        per_page: PER_PAGE,
    };
    html(
        StatusCode::OK,
        pages::overview(
            &all,
            &shown[from..to],
            matching,
            &list,
            viewer,
            now,
            fragment,
        ),
    )
}

async fn site_page(
    api: &Api,
    site: &str,
    viewer: &pages::Viewer<'_>,
    notice: Option<&pages::ActionOutcome>,
    status: StatusCode,
    now: u64,
    fragment: bool,
) -> Reply {
    let all = match sites(api, viewer).await {
        Ok(all) => all,
        Err(reply) => return reply,
    };
    let Some(s) = all.into_iter().find(|s| s.name == site) else {
        return html(
            StatusCode::NOT_FOUND,
            pages::refused(&format!("no site named `{site}`"), viewer.can_login),
        );
    };
    match detail(api, &s, now) {
        Ok(d) => html(
            status,
            pages::site_page(&s, &d, viewer, notice, now, fragment),
        ),
        Err(e) => {
            tracing::error!(site, "dashboard: {e}");
            html(
                StatusCode::INTERNAL_SERVER_ERROR,
                pages::refused(
                    &format!("reading the state database: {e}"),
                    viewer.can_login,
                ),
            )
        }
    }
}

/// A site's history, events, snapshot and addresses, from the store.
fn detail(
    api: &Api,
    s: &crate::control::SiteStatus,
    now: u64,
) -> Result<pages::SiteDetail, crate::store::StoreError> {
    let store = &api.store;
    let day_ago = now.saturating_sub(DAY);
    let mut minutes = vec![];
    let mut uptime = vec![];
    for side in [0u8, 1] {
        minutes.push(store.history(&s.name, side, Tier::Minute, day_ago, now + 1)?);
    }
    let hours: Vec<Vec<(u64, history::Bucket)>> = [0u8, 1]
        .iter()
        .map(|side| {
            store.history(
                &s.name,
                *side,
                Tier::Hour,
                now.saturating_sub(30 * DAY),
                now + 1,
            )
        })
        .collect::<Result<_, _>>()?;
    let since = |rows: &[(u64, history::Bucket)], from: u64| {
        history::uptime(rows.iter().filter(|(at, _)| *at >= from).map(|(_, b)| *b))
    };
    uptime.push((
        "24 hours",
        since(&minutes[0], day_ago),
        since(&minutes[1], day_ago),
    ));
    for (label, days) in [("7 days", 7), ("30 days", 30)] {
        let from = now.saturating_sub(days * DAY);
        uptime.push((label, since(&hours[0], from), since(&hours[1], from)));
    }
    let chart = (
        history::series(&minutes[0], day_ago, now + 1, 288),
        history::series(&minutes[1], day_ago, now + 1, 288),
    );
    let served: Vec<crate::mirror::crawl::Report> =
        store.crawls(Some(&s.name), Some("published"), 1)?;
    let last: Vec<crate::mirror::crawl::Report> = store.crawls(Some(&s.name), None, 1)?;
    let dynamic = api
        .cfg
        .sites
        .iter()
        .any(|c| c.name == s.name && c.primary_auto.is_some());
    let addresses = match dynamic {
        true => store
            .public_ip_history(20)?
            .into_iter()
            .map(|(f, a, at, _)| (f.to_string(), a.to_string(), at))
            .collect(),
        false => vec![],
    };
    Ok(pages::SiteDetail {
        uptime,
        chart,
        events: store.events_page(Some(&s.name), None, None, 50)?,
        failures: store.probe_failures(&s.name, day_ago, 20)?,
        served: served.into_iter().next(),
        last_crawl: last.into_iter().next(),
        addresses,
    })
}
