//! The dashboard's pages as HTML (maud): the overview and a site's page. Everything here takes
//! data already gathered (`super::gather`) and returns markup; nothing is read or decided.
//! Every page reads without JavaScript; `/live.js` only swaps the `#live` part for a fresh
//! one every few seconds.

use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::control::SiteStatus;
use crate::decide::{Phase, Target};
use crate::history::Bucket;
use crate::util::{ago, human_duration, utc};

const STYLE: &str = r#"
:root{--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e;--moved:#0969da;--mute:#57606a;--line:#d0d7de}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
header{display:flex;gap:1em;align-items:center;padding:.6em 1.2em;background:#24292f;color:#fff;flex-wrap:wrap}
header a{color:#fff}header h1{font-size:1.1em;margin:0}header .who{margin-left:auto}
main{padding:1em 1.2em;max-width:1400px}a{color:var(--moved)}
table{border-collapse:collapse;width:100%;background:#fff}th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600;background:#eaeef2}.mute{color:var(--mute)}.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:.05em .55em;border-radius:1em;font-weight:600;font-size:.9em;color:#fff;white-space:nowrap}
.healthy{background:var(--ok)}.suspect,.recovering{background:var(--warn)}.failed-over{background:var(--moved)}
.primary-down{background:var(--bad)}.drained,.maintenance{background:#6e7781}
.counts span{margin-right:1em}.card{background:#fff;border:1px solid var(--line);border-radius:6px;padding:.8em 1em;margin:0 0 1em}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:1em}
.notice{padding:.6em 1em;border-radius:6px;margin:0 0 1em;border:1px solid}.notice.ok{background:#dafbe1;border-color:var(--ok)}
.notice.refused{background:#ffebe9;border-color:var(--bad)}form.inline{display:inline}button{cursor:pointer;margin-right:.4em}
svg.chart{width:100%;height:140px;background:#fff}svg .p{stroke:var(--moved);fill:none}svg .s{stroke:var(--warn);fill:none}
svg .f{fill:var(--bad)}ol.timeline{padding-left:1.2em}ol.timeline li{margin:.3em 0}
"#;

/// The state a visitor of the dashboard sees: the phase, with a drain for a maintenance
/// window shown as maintenance.
pub fn state_word(s: &SiteStatus) -> &'static str {
    match s.phase {
        Phase::Drained if s.reason.contains("maintenance window") => "maintenance",
        p => p.as_str(),
    }
}

/// Trouble first: sites off their primary or about to be, then the ones waiting on something.
pub fn trouble_rank(s: &SiteStatus) -> u8 {
    let dns_lagging = s.dns.iter().any(|d| !d.confirmed);
    match s.phase {
        Phase::PrimaryDown => 0,
        Phase::FailedOver => 1,
        Phase::Suspect => 2,
        Phase::Recovering => 3,
        _ if dns_lagging || !s.standby_ready => 4,
        Phase::Drained => 5,
        Phase::Healthy => 6,
    }
}

/// Who is looking: whether they may act, and the form token if so.
pub struct Viewer<'a> {
    pub csrf: Option<&'a str>,
    /// Whether a password is configured at all (else there is no login).
    pub can_login: bool,
}

fn layout(title: &str, viewer: &Viewer<'_>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · understudy" }
                style { (PreEscaped(STYLE)) }
                script src="/live.js" defer {}
            }
            body {
                header {
                    h1 { a href="/" { "understudy" } }
                    span.mute { (title) }
                    span.who {
                        @if viewer.csrf.is_some() {
                            "signed in · "
                            form.inline method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(viewer.csrf.unwrap_or_default());
                                button type="submit" { "Log out" }
                            }
                        } @else if viewer.can_login {
                            a href="/login" { "Log in to act" }
                        } @else {
                            span title="set [api] password_file to log in" { "read-only" }
                        }
                    }
                }
                (body)
            }
        }
    }
}

fn badge(word: &str) -> Markup {
    html! { span class={"badge " (word)} { (word) } }
}

/// The overview's query: search words, page (from 1), sites per page.
pub struct Listing<'a> {
    pub q: &'a str,
    pub page: usize,
    pub per_page: usize,
}

/// The overview: counts by state, then the sites (already filtered, sorted and cut to one
/// page) with their state, since when and why, and where their DNS stands.
pub fn overview(
    all: &[SiteStatus],
    shown: &[&SiteStatus],
    matching: usize,
    list: &Listing<'_>,
    viewer: &Viewer<'_>,
    now: u64,
    fragment: bool,
) -> Markup {
    let mut counts: Vec<(&str, usize)> = vec![];
    for s in all {
        let w = state_word(s);
        match counts.iter_mut().find(|(k, _)| *k == w) {
            Some((_, n)) => *n += 1,
            None => counts.push((w, 1)),
        }
    }
    counts.sort_by_key(|(w, _)| {
        all.iter()
            .find(|s| state_word(s) == *w)
            .map(trouble_rank)
            .unwrap_or(9)
    });
    let pages = matching.div_ceil(list.per_page).max(1);
    let live = html! {
        p.counts {
            strong { (all.len()) @if all.len() == 1 { " site: " } @else { " sites: " } }
            @for (w, n) in &counts { span { (badge(w)) " " (n) } }
        }
        table #sites {
            thead { tr { th { "State" } th { "Site" } th { "Since" } th { "Why" } th { "DNS answer" } th { "DNS confirmed" } } }
            tbody {
                @for s in shown {
                    tr data-site=(s.name) {
                        td { (badge(state_word(s))) }
                        td { a href={"/sites/" (url_part(&s.name))} { (s.name) } br; span.mute { (s.domain) } }
                        td title=(utc(s.since)) { (ago(now.saturating_sub(s.since))) }
                        td { (s.reason) }
                        td { (s.published) " " span.mute { "(" (match s.target { Target::Primary => "primary", Target::Standby => "standby" }) ")" } }
                        td {
                            @for d in &s.dns {
                                div {
                                    (d.server) ": "
                                    @if d.confirmed { "confirmed" } @else { strong { (d.state) } }
                                    @if let Some(e) = &d.last_error { br; span.mute { (e) } }
                                }
                            }
                        }
                    }
                }
                @if shown.is_empty() { tr { td colspan="6" { "No site matches." } } }
            }
        }
        p {
            "Page " (list.page) " of " (pages) " (" (matching) " matching) "
            @if list.page > 1 { a href=(page_link(list.q, list.page - 1)) { "← previous" } " " }
            @if list.page < pages { a href=(page_link(list.q, list.page + 1)) { "next →" } }
        }
    };
    if fragment {
        return live;
    }
    layout(
        "Sites",
        viewer,
        html! {
            main {
                form method="get" action="/" {
                    input type="search" name="q" value=(list.q) size="40" placeholder="name, domain, state or reason";
                    " " button type="submit" { "Search" }
                }
                div #live data-refresh="2" { (live) }
            }
        },
    )
}

fn page_link(q: &str, page: usize) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    if !q.is_empty() {
        s.append_pair("q", q);
    }
    s.append_pair("page", &page.to_string());
    format!("/?{}", s.finish())
}

/// A site name as one path segment.
pub fn url_part(name: &str) -> String {
    url::form_urlencoded::byte_serialize(name.as_bytes()).collect()
}

/// What a site's page shows beyond its status.
pub struct SiteDetail {
    /// (label, primary %, standby %) for 24 h, 7 d, 30 d.
    pub uptime: Vec<(&'static str, Option<f64>, Option<f64>)>,
    /// The last 24 h in equal steps, primary and standby.
    pub chart: (Vec<Option<Bucket>>, Vec<Option<Bucket>>),
    pub events: Vec<crate::store::Event>,
    pub failures: Vec<(u8, u64, String)>,
    /// The crawl whose snapshot is served, and the newest crawl.
    pub served: Option<crate::mirror::crawl::Report>,
    pub last_crawl: Option<crate::mirror::crawl::Report>,
    pub addresses: Vec<(String, String, u64)>,
}

/// The outcome of an action, shown at the top of the site's page.
pub enum ActionOutcome {
    Done(String),
    Refused(String),
}

pub fn site_page(
    s: &SiteStatus,
    d: &SiteDetail,
    viewer: &Viewer<'_>,
    notice: Option<&ActionOutcome>,
    now: u64,
    fragment: bool,
) -> Markup {
    let live = html! {
        div.card {
            h2 { (badge(state_word(s))) " " (s.name) " " span.mute { (s.domain) } }
            p { "Since " (utc(s.since)) " (" (ago(now.saturating_sub(s.since))) "): " (s.reason) }
            p {
                "Records point at the " strong { (match s.target { Target::Primary => "primary", Target::Standby => "standby" }) }
                ": " (s.published) ". Primary " (s.primary) ", standby " (s.standby)
                @if !s.standby_ready { " — " strong { "the standby is not ready" } }
            }
            @for dn in &s.dns {
                p.mute {
                    "Zone " (dn.zone) " at " (dn.server) ": " (dn.state)
                    @if dn.confirmed { ", confirmed by its servers" } @else { ", not confirmed yet" }
                    @if let Some(v) = &dn.at_provider { " (holds " (v.join(", ")) ")" }
                    @if let Some(e) = &dn.last_error { " — " (e) }
                }
            }
            @if let Some(p) = &s.proxy {
                p.mute { "Proxy: " (p.proxied) " proxied, " (p.from_copy) " from the copy, " (p.refused) " refused"
                    @if p.open { " — the copy is answering" } }
            }
        }
        div.grid {
            div.card {
                h3 { "Uptime" }
                table {
                    tr { th {} th.num { "primary" } th.num { "standby" } }
                    @for (label, p, sb) in &d.uptime {
                        tr { td { (label) } td.num { (pct(*p)) } td.num { (pct(*sb)) } }
                    }
                }
            }
            div.card {
                h3 { "Probe latency, last 24 h" }
                (chart(&d.chart.0, &d.chart.1))
                p.mute { span style="color:var(--moved)" { "— primary" } " " span style="color:var(--warn)" { "— standby" } " " span style="color:var(--bad)" { "▮ failures" } }
                @for (side, probe) in [("primary", &s.last_primary_probe), ("standby", &s.last_standby_probe)] {
                    @if let Some(p) = probe {
                        p { "Last " (side) " probe " (ago(now.saturating_sub(p.at))) ": " (p.detail)
                            @if let Some(exp) = p.cert_expires { br; span.mute { "certificate expires " (utc(exp)) " (in " (human_duration(exp.saturating_sub(now))) ")" } } }
                    }
                }
            }
            div.card {
                h3 { "Snapshot" }
                @if let Some(r) = &d.served {
                    p { "Served: crawled " (utc(r.started_at)) " (" (ago(now.saturating_sub(r.started_at + r.duration_ms))) "), "
                        (r.pages) " pages, " (crate::util::bytes(r.bytes)) }
                } @else { p { "No published snapshot." } }
                @if let Some(r) = &d.last_crawl {
                    p { "Last crawl " (utc(r.started_at)) ": " strong { (r.outcome) }
                        @if let Some(why) = &r.reason { " — " (why) } }
                }
            }
        }
        div.card {
            h3 { "Incidents and changes" }
            ol.timeline #timeline {
                @for e in &d.events {
                    li data-kind=(e.kind) { span.mute { (utc(e.at)) } " " strong { (e.kind) } " " (e.reason)
                        @if let (Some(b), Some(a)) = (&e.records_before, &e.records_after) { br; span.mute { (b) " → " (a) } } }
                }
                @if d.events.is_empty() { li { "Nothing yet." } }
            }
        }
        @if !d.failures.is_empty() {
            div.card {
                h3 { "Failed probes, last 24 h (newest " (d.failures.len()) ")" }
                table { @for (side, at, why) in &d.failures {
                    tr { td.mute { (utc(*at)) } td { (if *side == 0 { "primary" } else { "standby" }) } td { (why) } }
                } }
            }
        }
        @if !d.addresses.is_empty() {
            div.card {
                h3 { "Public address history" }
                table { @for (family, addr, at) in &d.addresses { tr { td.mute { (utc(*at)) } td { (family) } td { (addr) } } } }
            }
        }
    };
    if fragment {
        return live;
    }
    let path = format!("/sites/{}", url_part(&s.name));
    layout(
        &s.name,
        viewer,
        html! {
            main {
                @match notice {
                    Some(ActionOutcome::Done(w)) => div.notice.ok role="status" { (w) },
                    Some(ActionOutcome::Refused(w)) => div.notice.refused role="alert" { "Refused: " (w) },
                    None => {},
                }
                div.card #actions {
                    @for (action, label) in [("drain", "Drain to standby"), ("release", "Release"), ("crawl", "Crawl now"), ("reverify", "Re-verify DNS")] {
                        form.inline method="post" action={(path) "/" (action)} {
                            input type="hidden" name="csrf" value=(viewer.csrf.unwrap_or_default());
                            button type="submit" name="action" value=(action) { (label) }
                        }
                    }
                    @if viewer.csrf.is_none() { span.mute { " Actions need a signed-in session." } }
                }
                div #live data-refresh="2" { (live) }
            }
        },
    )
}

fn pct(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 99.995 => "100%".to_string(),
        Some(v) => format!("{v:.2}%"),
        None => "–".to_string(),
    }
}

/// Two latency lines and the failures as bars, in an inline SVG (no script, no asset).
fn chart(primary: &[Option<Bucket>], standby: &[Option<Bucket>]) -> Markup {
    let n = primary.len().max(1);
    let max = primary
        .iter()
        .chain(standby)
        .flatten()
        .filter_map(|b| b.mean_ms())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let line = |points: &[Option<Bucket>]| {
        let mut d = String::new();
        let mut pen = false;
        for (i, p) in points.iter().enumerate() {
            match p.and_then(|b| b.mean_ms()) {
                Some(ms) => {
                    let (x, y) = (
                        i as f64 * 1000.0 / n as f64,
                        95.0 - 90.0 * f64::from(ms) / max,
                    );
                    // A segment's first point is drawn as a short stroke, so a lone point shows.
                    match pen {
                        true => d.push_str(&format!("L{x:.1},{y:.1} ")),
                        false => d.push_str(&format!("M{x:.1},{y:.1} h2 ")),
                    }
                    pen = true;
                }
                None => pen = false,
            }
        }
        d
    };
    let bars: Vec<(f64, f64)> = primary
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let b = (*p)?;
            (b.failures > 0).then(|| {
                let share = f64::from(b.failures) / f64::from(b.probes.max(1));
                (i as f64 * 1000.0 / n as f64, 30.0 * share)
            })
        })
        .collect();
    html! {
        svg.chart viewBox="0 0 1000 100" preserveAspectRatio="none" role="img" aria-label="probe latency over the last 24 hours" {
            @for (x, h) in &bars { rect.f x=(format!("{x:.1}")) y=(format!("{:.1}", 100.0 - h)) width=(format!("{:.1}", 1000.0 / n as f64)) height=(format!("{h:.1}")) {} }
            path.p d=(line(primary)) stroke-width="1.5" {}
            path.s d=(line(standby)) stroke-width="1.5" {}
        }
        p.mute { "Top of the chart: " (format!("{max:.0} ms")) " (5-minute means)" }
    }
}

/// The login form, with what went wrong last time.
pub fn login(problem: Option<&str>, can_login: bool) -> Markup {
    let viewer = Viewer {
        csrf: None,
        can_login,
    };
    layout(
        "Log in",
        &viewer,
        html! {
            main {
                div.card {
                    @if let Some(p) = problem { div.notice.refused role="alert" { (p) } }
                    @if can_login {
                        form method="post" action="/login" {
                            label { "Password " input type="password" name="password" autocomplete="current-password" autofocus; }
                            " " button type="submit" { "Log in" }
                        }
                    } @else {
                        p { "No password is configured, so the dashboard is read-only. Set " code { "[api] password_file" }
                            " to a file made with " code { "understudy password" } " to act from here." }
                    }
                }
            }
        },
    )
}

/// A page that only says why something was refused (a request without a session).
pub fn refused(why: &str, can_login: bool) -> Markup {
    let viewer = Viewer {
        csrf: None,
        can_login,
    };
    layout(
        "Refused",
        &viewer,
        html! { main { div.notice.refused role="alert" { "Refused: " (why) } p { a href="/" { "Back to the sites" } } } },
    )
}
