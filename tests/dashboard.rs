//! The dashboard in a real browser (headless Chromium): a failover seen live on the overview
//! and in the site's timeline, an action refused without a session and carried out with one;
//! the public status page (HTML, Atom, JSON) saying only what a visitor should see; and the
//! probe history behind the site page. Screenshots: `target/test-artifacts/dashboard-*.png`.

use std::time::Duration;

use fantoccini::Locator;

use crate::common::browser::Browser;
use crate::common::*;

const PASSWORD: &str = "correct horse battery staple";

/// A plain-HTTP client that follows no redirect (the test looks at each answer).
fn client() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A daemon with one site (nginx primary and standby), a dashboard password, and the extra
/// config `extra` (tables after the site's).
fn daemon(primary: &Nginx, standby: &Nginx, extra: &str) -> Daemon {
    let config = one_site(primary.addr, standby.addr, extra).replace(
        "[api]\nlisten = \"127.0.0.1:0\"\n",
        "[api]\nlisten = \"127.0.0.1:0\"\npassword_file = \"dashboard.password\"\n",
    );
    let mut d = Daemon::prepare(&config);
    let mut hash = cmd()
        .arg("password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(hash.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let out = hash.wait_with_output().unwrap();
    assert!(out.status.success());
    std::fs::write(d.dir.path().join("dashboard.password"), &out.stdout).unwrap();
    d.restart_after_stop();
    d
}

#[test]
fn a_failover_shows_live_and_actions_need_a_session() {
    let mut primary = Nginx::start("127.0.0.1", "primary");
    let standby = Nginx::start("127.0.0.2", "standby");
    let d = daemon(&primary, &standby, "");
    let base = format!("http://{}", d.info.api);
    rt().block_on(async {
        let b = Browser::start().await;
        let c = &b.client;
        // Reading needs no login on loopback while no token is configured.
        c.goto(&format!("{base}/")).await.unwrap();
        b.wait_text(
            "tr[data-site=shop] .badge",
            "healthy",
            Duration::from_secs(15),
        )
        .await;
        b.screenshot("dashboard-1-overview-healthy").await;
        // A marker the page keeps only if it is never reloaded: the change must come live.
        c.execute("window.__still_here = 1; return 1", vec![])
            .await
            .unwrap();
        primary.kill();
        b.wait_text(
            "tr[data-site=shop] .badge",
            "failed-over",
            Duration::from_secs(20),
        )
        .await;
        let kept = c
            .execute("return window.__still_here || 0", vec![])
            .await
            .unwrap();
        assert_eq!(
            kept,
            serde_json::json!(1),
            "the overview was reloaded, not refreshed in place"
        );
        assert!(
            b.text("tr[data-site=shop]").await.contains("127.0.0.2"),
            "the DNS answer column shows the standby"
        );
        b.screenshot("dashboard-2-overview-failed-over").await;

        // The site's page: the failover in the timeline, with its measured detection.
        c.goto(&format!("{base}/sites/shop")).await.unwrap();
        b.wait_text("#timeline", "failed-over", Duration::from_secs(5))
            .await;
        let timeline = b.text("#timeline").await;
        assert!(
            timeline.contains("after the first failed probe"),
            "{timeline}"
        );
        b.screenshot("dashboard-3-site-timeline").await;

        // Drain without a session: refused, and shown as refused; nothing changed.
        b.click("#actions button[value=drain]").await;
        b.wait_text("[role=alert]", "Refused", Duration::from_secs(5))
            .await;
        assert!(b
            .text("[role=alert]")
            .await
            .contains("needs a signed-in session"));
        b.screenshot("dashboard-4-drain-refused").await;
        assert_eq!(d.phase(), "failed-over");

        // A wrong password opens nothing; the right one does, and the drain is carried out.
        c.goto(&format!("{base}/login")).await.unwrap();
        let pw = c.find(Locator::Css("input[name=password]")).await.unwrap();
        pw.send_keys("not the password").await.unwrap();
        b.click("button[type=submit]").await;
        b.wait_text(
            "[role=alert]",
            "not the one configured",
            Duration::from_secs(5),
        )
        .await;
        let pw = c.find(Locator::Css("input[name=password]")).await.unwrap();
        pw.send_keys(PASSWORD).await.unwrap();
        b.click("button[type=submit]").await;
        b.wait_text("header .who", "signed in", Duration::from_secs(5))
            .await;
        c.goto(&format!("{base}/sites/shop")).await.unwrap();
        b.click("#actions button[value=drain]").await;
        b.wait_text("[role=status]", "Drained", Duration::from_secs(5))
            .await;
        b.wait_text("#live h2 .badge", "drained", Duration::from_secs(5))
            .await;
        b.screenshot("dashboard-5-drained-with-session").await;
        b.close().await;
    });
    assert_eq!(d.phase(), "drained");
    let log = d.log();
    assert!(
        log.contains("dashboard action refused: no session"),
        "{log}"
    );
    assert!(!log.contains(PASSWORD), "the password is never logged");
}

/// A form posted with the session's cookie but without its CSRF token (what another page
/// could try) is refused, and so is one from another origin.
#[test]
fn forms_without_the_csrf_token_or_from_elsewhere_are_refused() {
    let primary = Nginx::start("127.0.0.1", "primary");
    let standby = Nginx::start("127.0.0.2", "standby");
    let d = daemon(&primary, &standby, "");
    let base = format!("http://{}", d.info.api);
    let client = client();
    let login = client
        .post(format!("{base}/login"))
        .form(&[("password", PASSWORD)])
        .send()
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_string();
    let page = client
        .get(format!("{base}/sites/shop"))
        .header("cookie", &session)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(csrf.len(), 32);
    let post = |fields: &[(&str, &str)], origin: Option<&str>| {
        let mut r = client
            .post(format!("{base}/sites/shop/drain"))
            .header("cookie", &session)
            .form(fields);
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.send().unwrap().status().as_u16()
    };
    assert_eq!(post(&[], None), 403, "no token");
    assert_eq!(
        post(&[("csrf", "0123456789abcdef0123456789abcdef")], None),
        403,
        "a wrong token"
    );
    assert_eq!(
        post(&[("csrf", &csrf)], Some("http://evil.example")),
        403,
        "another origin"
    );
    assert_eq!(d.phase(), "healthy");
    assert_eq!(
        post(&[("csrf", &csrf)], Some(&base)),
        303,
        "the dashboard's own form"
    );
    assert_eq!(d.phase(), "drained");
    // Logging out ends the session: its cookie no longer acts.
    let out = client
        .post(format!("{base}/logout"))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .unwrap();
    assert_eq!(out.status(), 303);
    let release = client
        .post(format!("{base}/sites/shop/release"))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .unwrap();
    assert_eq!(release.status(), 403);
}

/// With a read token configured, the dashboard is not open to anonymous readers: it sends
/// them to the login page, and answers the session or the token.
#[test]
fn with_tokens_reading_needs_a_session_or_a_token() {
    let primary = Nginx::start("127.0.0.1", "primary");
    let standby = Nginx::start("127.0.0.2", "standby");
    let token = "0123456789abcdef0123456789abcdef";
    let d = daemon(
        &primary,
        &standby,
        &format!("[[api.tokens]]\nname = \"ro\"\nscope = \"read\"\ntoken = \"{token}\"\n"),
    );
    let base = format!("http://{}", d.info.api);
    let client = client();
    let anon = client.get(format!("{base}/")).send().unwrap();
    assert_eq!(anon.status(), 303);
    assert_eq!(anon.headers()["location"], "/login");
    let with_token = client
        .get(format!("{base}/sites/shop"))
        .bearer_auth(token)
        .send()
        .unwrap();
    assert_eq!(with_token.status(), 200);
    assert!(with_token.text().unwrap().contains("www.example.test"));
}

/// The public page: plain words, incidents paired, no address (until configured), Atom and
/// JSON; and the probe history the site page reads (failed probes with their reasons, uptime).
#[test]
fn the_status_page_tells_visitors_only_what_they_should_see() {
    let mut primary = Nginx::start("127.0.0.1", "primary");
    let standby = Nginx::start("127.0.0.2", "standby");
    let port = free_port("127.0.0.1");
    let d = daemon(
        &primary,
        &standby,
        &format!("[status_page]\nlisten = [\"127.0.0.1:{port}\"]\ntitle = \"Example Hosting\"\n"),
    );
    let page = format!("http://127.0.0.1:{port}");
    let http = client();
    let get = |path: &str| http.get(format!("{page}{path}")).send().unwrap();
    let json: serde_json::Value = get("/status.json").json().unwrap();
    assert_eq!(json["sites"][0]["state"], "operational");
    d.fail_over(&mut primary);
    // One look serves every visitor for 5 s, so the page follows within that.
    wait_until(Duration::from_secs(10), "the page to say standby", || {
        get("/status.json").json::<serde_json::Value>().unwrap()["sites"][0]["state"] == "standby"
    });
    let json: serde_json::Value = get("/status.json").json().unwrap();
    assert_eq!(json["sites"][0]["incidents"][0]["kind"], "outage");
    assert!(json["sites"][0].get("address").is_none());
    let html = get("/").text().unwrap();
    assert!(
        html.contains("Example Hosting") && html.contains("read-only copy"),
        "{html}"
    );
    let atom = get("/feed.atom");
    assert_eq!(atom.headers()["content-type"], "application/atom+xml");
    let atom = atom.text().unwrap();
    assert!(
        atom.contains("<entry>") && atom.contains("www.example.test: outage"),
        "{atom}"
    );
    for body in [&html, &atom, &json.to_string()] {
        assert!(!body.contains("127.0.0."), "an address leaked: {body}");
        assert!(!body.contains("refused"), "a probe's reason leaked: {body}");
    }
    let post = http.post(format!("{page}/")).send().unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(get("/nothing").status(), 404);

    // The history the dashboard reads: failed probes are kept with their reason (written
    // within 10 s), and the primary's uptime over 24 h is below 100%.
    let site = format!("http://{}/sites/shop", d.info.api);
    wait_until(
        Duration::from_secs(30),
        "failed probes in the site page",
        || {
            http.get(&site)
                .send()
                .unwrap()
                .text()
                .unwrap()
                .contains("Failed probes, last 24 h")
        },
    );
    let text = http.get(&site).send().unwrap().text().unwrap();
    assert!(text.contains("connection refused"), "{text}");
    // The minutes in progress reach the store within 10 s: the primary's day is not 100%.
    let day_uptime = |text: &str| {
        text.split("<td>24 hours</td><td class=\"num\">")
            .nth(1)
            .and_then(|r| r.split('<').next())
            .unwrap_or("")
            .to_string()
    };
    wait_until(
        Duration::from_secs(30),
        "the primary's 24 h uptime below 100%",
        || {
            let u = day_uptime(&http.get(&site).send().unwrap().text().unwrap());
            u.ends_with('%') && u != "100%"
        },
    );
}
