//! The standby copy against a real origin: nginx serving a fixture site with every reference
//! kind, query-string assets, extension-less pages, redirects, a real 404, a soft-404 app
//! shell, a URL trap, a gzip bomb and hostile hrefs. The real binary crawls it.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::fixture::Fixture;
use common::Daemon;
use understudy::mirror::extract;
use understudy::mirror::snapshot::{Manifest, SnapshotStore};
use url::Url;

fn crawl(d: &Daemon) -> serde_json::Value {
    let (code, out, err) = d.cli(&["mirror", "fixture", "--json"]);
    let report: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("no JSON report ({e}): {out}\n{err}"));
    assert!(
        code == 0 || report["outcome"] != "published",
        "exit {code} for {report}"
    );
    report
}

fn current(d: &Daemon) -> (SnapshotStore, Manifest) {
    let s = SnapshotStore::open(&d.data_dir(), "fixture").unwrap();
    let m = s.current().unwrap().expect("a published snapshot");
    (s, m)
}

#[test]
fn crawl_records_every_reference_kind_and_stops_traps() {
    let f = Fixture::start();
    let d = Daemon::prepare(&f.config(""));
    let r = crawl(&d);
    assert_eq!(r["outcome"], "published", "{r:#}");
    let (store, m) = current(&d);
    let has = |p: &str| {
        m.entries
            .get(&f.url(p))
            .unwrap_or_else(|| panic!("{p} missing from the snapshot: {:#?}", m.entries.keys()))
    };

    for p in [
        "/",
        "/about",
        "/blog/",
        "/blog/post-1",
        "/blog/deep/6",
        "/css/site.css?v=3",
        "/js/app.js?v=3",
        "/css/print.css",
        "/css/imp.css",
        "/img/pre-1.png",
        "/img/pre-2.png",
        "/favicon.ico",
        "/app.webmanifest",
        "/img/icon-192.png",
        "/refreshed",
        "/img/bg.png",
        "/img/inline.png",
        "/img/a.png",
        "/img/ml-300.png",
        "/img/ml-600.png",
        "/img/lazy.png",
        "/img/lazy-2.png",
        "/img/p.webp",
        "/img/p2.webp",
        "/img/poster.jpg",
        "/media/v.mp4",
        "/img/o.svg",
        "/img/in-svg.png",
        "/img/svg-img.png",
        "/img/sprite.svg",
        "/img/body.png",
        "/img/set-1.png",
        "/img/set-2.png",
        "/fonts/f.woff2",
        "/img/from-import.png",
        "/absolute",
        "/only-in-sitemap",
        "/sitemap.xml",
        "/robots.txt",
        "/private/secret",
        "/q?a=1&b=2",
        "/app/deep/link",
    ] {
        assert_eq!(has(p).status, 200, "{p}");
    }
    assert!(
        m.entries
            .contains_key(&format!("http://fixture.test:{}/alias-page", f.port())),
        "the alias is in scope"
    );
    // Served as the origin sent it: the extension-less page is HTML, byte for byte.
    let about = has("/about");
    assert_eq!(about.content_type.as_deref(), Some("text/html"));
    assert!(about.etag.is_some() && about.last_modified.is_some());
    assert_eq!(
        store.body(about.body.as_ref().unwrap()).unwrap(),
        std::fs::read(f.www.join("about.html")).unwrap()
    );
    // Redirects and real 404s as such; the off-scope redirect recorded, not followed.
    let old = has("/old");
    assert_eq!(
        (old.status, old.location.as_deref(), old.body.as_ref()),
        (301, Some(&*f.url("/about")).or(Some("/about")), None)
    );
    assert_eq!(has("/missing").status, 404);
    assert_eq!(
        has("/etc/passwd").status,
        404,
        "dot segments resolve inside the site"
    );
    assert_eq!(has("/away").status, 302);
    assert_eq!(r["errors"], 0, "{r:#}");
    // Nothing outside the scope, ever.
    for k in m.entries.keys().chain(m.skipped.keys()) {
        let u = Url::parse(k).unwrap();
        assert!(
            u.host_str().unwrap().ends_with("fixture.test")
                && u.port() == Some(f.port())
                && u.scheme() == "http",
            "off-scope URL in the snapshot: {k}"
        );
    }
    assert!(!m
        .entries
        .keys()
        .any(|k| k.contains("commented-out") || k.contains("creds")));
    // Traps and bombs stop at their limits, and say so.
    let hit = &r["limits_hit"];
    for limit in [
        "max_segment_repeats",
        "max_query_variants",
        "max_url_length",
        "decompression bomb (max_response_bytes)",
    ] {
        assert!(
            hit[limit].as_u64().unwrap_or(0) > 0,
            "{limit} not hit: {r:#}"
        );
    }
    assert!(!m.entries.contains_key(&f.url("/bomb.html")));
    let trap_pages = m.entries.keys().filter(|k| k.contains("/trap/")).count();
    assert!((20..=70).contains(&trap_pages), "{trap_pages} trap pages");
    assert!(r["fetched"].as_u64().unwrap() < 200, "{r:#}");

    // verify: every in-scope reference is answered (limits are reported apart).
    let (code, out, err) = d.cli(&["mirror", "verify", "fixture"]);
    assert_eq!(code, 0, "verify found holes:\n{out}\n{err}");
    assert!(out.contains(" 0 unanswerable"), "{out}");
    assert!(
        out.contains("not fetched by design (max_segment_repeats)"),
        "{out}"
    );
}

/// Every reference in the exported HTML/CSS that is relative resolves to a file in the export.
fn assert_browses_offline(dir: &Path) {
    let mut checked = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .to_string();
            let kind = match path.extension().and_then(|x| x.to_str()) {
                Some("html") => extract::Kind::Html,
                Some("css") => extract::Kind::Css,
                Some("svg") => extract::Kind::Html,
                _ => continue,
            };
            // Resolve as a browser would under file://, with a stand-in host for the export.
            let base = Url::parse("http://export.invalid/")
                .unwrap()
                .join(&rel.replace('%', "%25"))
                .unwrap();
            for u in extract::references(kind, &std::fs::read(&path).unwrap(), &base) {
                if u.host_str() != Some("export.invalid") {
                    continue;
                }
                let local = percent_decode(u.path().trim_start_matches('/'));
                assert!(
                    dir.join(&local).is_file(),
                    "{rel} refers to {local}, which the export lacks"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 40, "only {checked} local references checked");
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn export_browses_offline() {
    let f = Fixture::start();
    let d = Daemon::prepare(&f.config(""));
    assert_eq!(crawl(&d)["outcome"], "published");
    let out = d.dir.path().join("export");
    let (code, stdout, err) = d.cli(&["mirror", "export", "fixture", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{err}");
    let host = out.join(format!("www.fixture.test_{}", f.port()));
    for file in [
        "index.html",
        "about.html",
        "blog/index.html",
        "blog/deep/6.html",
        "js/app@v=3.js",
        "css/site@v=3.css",
        "q@a=1&b=2.html",
        "old.html",
    ] {
        assert!(
            host.join(file).is_file(),
            "{file} missing from the export ({stdout})"
        );
    }
    let index = std::fs::read_to_string(host.join("index.html")).unwrap();
    assert!(index.contains(r#"href="about.html""#), "{index}");
    assert!(
        index.contains("img/ml-300.png 300w,"),
        "multi-line srcset rewritten in place: {index}"
    );
    assert!(index.contains(r#"href="css/site@v=3.css""#), "{index}");
    assert!(
        index.contains("javascript:alert(1)"),
        "other references untouched"
    );
    let css = std::fs::read_to_string(host.join("css/site@v=3.css")).unwrap();
    assert!(
        css.contains(r#"url("../img/body.png")"#) && css.contains(r#""../img/set-1.png""#),
        "{css}"
    );
    assert_browses_offline(&out);

    // `verify` and `export` walk the same references of the same snapshot: the in-scope ones
    // verify counts are the ones export made local or left pointing at the site.
    let number = |text: &str, before: &str| -> u64 {
        let head = &text[..text
            .find(before)
            .unwrap_or_else(|| panic!("no `{before}` in {text}"))];
        let digits: String = head
            .trim_end()
            .rsplit(' ')
            .next()
            .unwrap()
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        digits.parse().unwrap()
    };
    let (code, verified, err) = d.cli(&["mirror", "verify", "fixture"]);
    assert_eq!(code, 0, "{verified}{err}");
    let refs = number(&verified, " in-scope references");
    let (local, absolute) = (
        number(&stdout, " references made local"),
        number(&stdout, " left pointing at the site"),
    );
    assert_eq!(refs, local + absolute, "verify: {verified}export: {stdout}");
}

#[test]
fn recrawl_is_incremental_and_finds_a_deep_change_behind_a_304() {
    let f = Fixture::start();
    let d = Daemon::prepare(&f.config(""));
    let first = crawl(&d);
    assert_eq!(first["outcome"], "published");
    let (_, m1) = current(&d);

    let second = crawl(&d);
    assert_eq!(second["outcome"], "published", "{second:#}");
    assert_eq!(
        second["new_bodies"], 0,
        "unchanged site, no new bodies: {second:#}"
    );
    let with_validators = m1
        .entries
        .values()
        .filter(|e| e.status == 200 && e.etag.is_some())
        .count() as u64;
    assert!(
        second["not_modified"].as_u64().unwrap() >= with_validators,
        "every file with validators answered 304: {second:#}"
    );
    // The gzip bomb is fetched (and stopped) on every crawl; everything else was a 304 or a
    // small generated page.
    let bomb = std::fs::metadata(f.nginx.dir.path().join("bomb.gz"))
        .unwrap()
        .len();
    let (b1, b2) = (
        first["bytes"].as_u64().unwrap() - bomb,
        second["bytes"].as_u64().unwrap() - bomb,
    );
    assert!(b2 < b1 / 2, "{b1} then {b2} bytes besides the bomb");

    // One page deep in the site changes; the front page (and the pages leading there) answer
    // 304, so the way down is found from the stored copies.
    std::thread::sleep(Duration::from_millis(1100)); // a new Last-Modified second
    f.set(
        "blog/deep/5.html",
        r#"<p>deep 5, edited</p><a href="6">next</a><a href="7">new</a>"#,
    );
    f.set("blog/deep/7.html", "<p>a new page</p>");
    let third = crawl(&d);
    assert_eq!(third["outcome"], "published", "{third:#}");
    let (store, m3) = current(&d);
    let e5 = &m3.entries[&f.url("/blog/deep/5")];
    assert_eq!(
        String::from_utf8(store.body(e5.body.as_ref().unwrap()).unwrap()).unwrap(),
        r#"<p>deep 5, edited</p><a href="6">next</a><a href="7">new</a>"#
    );
    assert_eq!(
        m3.entries[&f.url("/blog/deep/7")].status,
        200,
        "the new page is picked up"
    );
    assert_eq!(
        third["new_bodies"], 2,
        "the edited page and the new one: {third:#}"
    );
    assert!(
        third["not_modified"].as_u64().unwrap() > 30,
        "front page and the rest answered 304: {third:#}"
    );
}

#[test]
fn a_dead_origin_or_a_killed_crawl_leaves_the_published_snapshot() {
    let mut f = Fixture::start();
    // Enough pages that a crawl one request at a time is still running when it is killed.
    let many: String = (0..3000)
        .map(|i| format!("<a href=\"/gen/{i}\">{i}</a>\n"))
        .collect();
    f.set("gen.html", &many);
    for i in 0..3000 {
        f.set(&format!("gen/{i}.html"), &format!("<p>generated {i}</p>"));
    }
    let mut idx = std::fs::read_to_string(f.www.join("index.html")).unwrap();
    idx = idx.replace("</body>", "<a href=\"/gen\">generated</a></body>");
    f.set("index.html", &idx);
    let d = Daemon::prepare(&f.config("concurrency = 1"));
    let first = crawl(&d);
    assert_eq!(first["outcome"], "published", "{first:#}");
    let (_, good) = current(&d);

    // The crawler process killed halfway: nothing changes, and the next crawl cleans up.
    let mut child = common::cmd()
        .args(["mirror", "fixture", "-c"])
        .arg(d.config_path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let partial = || {
        std::fs::read_dir(d.data_dir().join("mirror/fixture/snapshots"))
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".partial"))
    };
    common::wait_until(Duration::from_secs(20), "a crawl in progress", partial);
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        current(&d).1.id,
        good.id,
        "a killed crawl publishes nothing"
    );
    assert!(
        partial(),
        "the killed crawl's leftovers are there until the next crawl"
    );

    // The origin stops mid-crawl: the crawl is rejected, the last good snapshot stays.
    let child_proc = common::cmd()
        .args(["mirror", "fixture", "--json", "-c"])
        .arg(d.config_path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    common::wait_until(Duration::from_secs(20), "a crawl in progress", partial);
    std::thread::sleep(Duration::from_millis(200));
    f.nginx.kill();
    let out = child_proc.wait_with_output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["outcome"], "rejected", "{report:#}");
    assert!(
        report["reason"]
            .as_str()
            .unwrap()
            .contains("the origin stopped answering"),
        "{report:#}"
    );
    let (store, now) = current(&d);
    assert_eq!(now.id, good.id);
    assert!(!partial(), "the rejected crawl cleaned up after itself");
    for e in now.entries.values().filter_map(|e| e.body.as_ref()) {
        store
            .body(e)
            .expect("every body of the published snapshot is still there");
    }
    let (code, hist, _) = d.cli(&["mirror", "history", "fixture"]);
    assert_eq!(code, 0);
    assert!(
        hist.contains("rejected") && hist.contains("published"),
        "{hist}"
    );
    // The event log has each crawl's outcome, for the operator's channels (issue 14).
    let conn = rusqlite::Connection::open(d.data_dir().join("understudy.db")).unwrap();
    let crawls: Vec<(String, String)> = conn
        .prepare("SELECT kind, reason FROM events WHERE kind LIKE 'crawl-%' ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let last = crawls.last().expect("crawls are logged");
    assert_eq!(last.0, "crawl-rejected", "{crawls:?}");
    assert!(
        last.1.contains("the origin stopped answering"),
        "{crawls:?}"
    );
    assert!(
        crawls
            .iter()
            .any(|(k, r)| k == "crawl-published" && r.contains(&good.id)),
        "{crawls:?}"
    );
    assert!(
        !hist.contains("ago ago"),
        "issue 13: \"7s ago ago\": {hist}"
    );
}

/// A site may be named like a `mirror` subcommand (issue 13: `history` could not be named):
/// `mirror crawl NAME` crawls it; a site without crawls says so (it printed nothing).
#[test]
fn a_site_named_like_a_subcommand() {
    let f = Fixture::start();
    let config = f
        .config("scheduled = false")
        .replace("name = \"fixture\"", "name = \"history\"");
    let config = format!(
        "{config}\n[[sites]]\nname = \"other\"\ndomain = \"other.fixture.test\"\nprimary = \"127.0.0.1\"\nstandby = \"127.0.0.2\"\n"
    );
    let d = Daemon::prepare(&config);
    let (code, out, err) = d.cli(&["mirror", "crawl", "history"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, hist, err) = d.cli(&["mirror", "history", "history"]);
    assert_eq!(code, 0, "{err}");
    assert!(hist.contains("published"), "{hist}");
    let (code, hist, err) = d.cli(&["mirror", "history", "other"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(hist.trim(), "no crawls of other recorded yet");
}

#[test]
fn robots_txt_when_asked_and_one_failing_url_does_not_abort() {
    let f = Fixture::start();
    let idx = std::fs::read_to_string(f.www.join("index.html")).unwrap();
    f.set(
        "index.html",
        &idx.replace("</body>", "<a href=\"/flaky\">always 503</a></body>"),
    );
    let d = Daemon::prepare(&f.config("robots = true"));
    let r = crawl(&d);
    assert_eq!(r["outcome"], "published", "{r:#}");
    let (_, m) = current(&d);
    assert!(!m.entries.contains_key(&f.url("/private/secret")));
    assert_eq!(
        m.skipped.get(&f.url("/private/secret")).map(String::as_str),
        Some("robots.txt")
    );
    // /flaky: retried, then counted as an error; never stored; the crawl goes on.
    assert!(
        !m.entries.contains_key(&f.url("/flaky")),
        "a 503 is never stored"
    );
    assert_eq!(r["errors"], 1, "{r:#}");
    assert!(
        r["error_samples"][0]
            .as_str()
            .unwrap()
            .contains("/flaky: the origin answered 503"),
        "{r:#}"
    );
    assert!(
        r["requests"].as_u64().unwrap() > r["fetched"].as_u64().unwrap(),
        "the 503 was retried"
    );
    let (code, out, _) = d.cli(&["mirror", "verify", "fixture"]);
    assert_eq!(code, 1, "verify names the hole: {out}");
    assert!(out.contains("/flaky  (from "), "{out}");
}

#[test]
fn the_daemon_crawls_on_schedule_and_records_it() {
    let f = Fixture::start();
    let mut d = Daemon::start(&f.config("every = \"1h\""));
    common::wait_until(Duration::from_secs(30), "the scheduled crawl", || {
        SnapshotStore::open(&d.data_dir(), "fixture")
            .unwrap()
            .current()
            .unwrap()
            .is_some()
    });
    let (code, hist, _) = d.cli(&["mirror", "history", "fixture"]);
    assert_eq!(code, 0);
    assert!(hist.contains("published"), "{hist}");
    // A manual crawl while the daemon runs works too (one at a time per site).
    assert_eq!(crawl(&d)["outcome"], "published");
    assert_eq!(d.stop(), 0);
}

/// A sitemap with `<lastmod>` for 60 pages: an unchanged re-crawl takes most pages from the
/// stored copy without a request; a page whose lastmod moved is fetched; a sitemap that does
/// not follow the pages' changes is caught by the sample and distrusted.
#[test]
fn sitemap_lastmod_saves_requests_and_a_stale_sitemap_is_caught() {
    let f = Fixture::start();
    let sitemap = |stamp: &dyn Fn(usize) -> String| {
        let urls: String = (0..60)
            .map(|i| {
                format!(
                    "<url><loc>{}</loc><lastmod>{}</lastmod></url>",
                    f.url(&format!("/s/{i}")),
                    stamp(i)
                )
            })
            .collect();
        f.set(
            "sitemap.xml",
            &format!(r#"<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>"#),
        );
    };
    let pages = |text: &str| {
        for i in 0..60 {
            f.set(
                &format!("s/{i}.html"),
                &format!("<p>{text} {i}</p><img src=\"/img/a.png\">"),
            );
        }
    };
    pages("version 1");
    sitemap(&|_| "2026-11-01".to_string());
    let d = Daemon::prepare(&f.config(""));
    let first = crawl(&d);
    assert_eq!(first["outcome"], "published", "{first:#}");
    assert_eq!(first["reused"], 0);

    let second = crawl(&d);
    assert_eq!(second["outcome"], "published", "{second:#}");
    let reused = second["reused"].as_u64().unwrap();
    assert!(
        (40..=50).contains(&reused),
        "most pages from the stored copy, a sample checked: {second:#}"
    );
    assert!(
        second["requests"].as_u64().unwrap() + 40 <= first["requests"].as_u64().unwrap(),
        "{first:#}\n{second:#}"
    );
    let (store, m) = current(&d);
    assert_eq!(
        m.entries[&f.url("/s/59")].status,
        200,
        "reused pages stay in the snapshot"
    );
    assert_eq!(
        store
            .body(m.entries[&f.url("/s/59")].body.as_ref().unwrap())
            .unwrap(),
        b"<p>version 1 59</p><img src=\"/img/a.png\">"
    );

    // One page changes and says so in the sitemap. (nginx's validators are the file's mtime in
    // seconds and its size: a sitemap rewritten within the same second at the same length would
    // answer 304, so the change waits for the next second.)
    std::thread::sleep(Duration::from_millis(1100));
    f.set("s/33.html", "<p>version 2 33</p>");
    sitemap(&|i| {
        if i == 33 {
            "2026-11-24".to_string()
        } else {
            "2026-11-01".to_string()
        }
    });
    let third = crawl(&d);
    let (store, m) = current(&d);
    assert_eq!(
        store
            .body(m.entries[&f.url("/s/33")].body.as_ref().unwrap())
            .unwrap(),
        b"<p>version 2 33</p>",
        "{third:#}"
    );
    assert_eq!(third["sitemap_distrusted"], false);

    // Every page changes (a new template), the sitemap does not: the sample notices.
    pages("version 3");
    let fourth = crawl(&d);
    assert_eq!(fourth["sitemap_distrusted"], true, "{fourth:#}");
    let (store, m) = current(&d);
    for i in 0..60 {
        let body = store
            .body(m.entries[&f.url(&format!("/s/{i}"))].body.as_ref().unwrap())
            .unwrap();
        assert!(
            String::from_utf8(body).unwrap().contains("version 3"),
            "page {i} is stale after a distrusted sitemap"
        );
    }
}

/// The data directory on a small tmpfs (mounted by the test, as root): a crawl that runs out of
/// space fails with a clear error, and the published snapshot is untouched.
#[test]
fn a_full_disk_leaves_the_published_snapshot() {
    let f = Fixture::start();
    let d = Daemon::prepare(&f.config("scheduled = false"));
    std::fs::create_dir_all(d.data_dir()).unwrap();
    let mount = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(d.data_dir())
        .status()
        .unwrap();
    assert!(
        mount.success(),
        "mounting a tmpfs needs root (bash .ci/run runs as root)"
    );
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(d.data_dir());
    assert_eq!(crawl(&d)["outcome"], "published");
    let (_, good) = current(&d);
    // 3 MB of new pages cannot fit.
    let big: String = "x".repeat(600 * 1024);
    for i in 0..5 {
        f.set(&format!("big/{i}.html"), &format!("<p>{i}</p>{big}"));
    }
    let idx = std::fs::read_to_string(f.www.join("index.html")).unwrap();
    let links: String = (0..5)
        .map(|i| format!("<a href=\"/big/{i}\">big {i}</a>"))
        .collect();
    f.set(
        "index.html",
        &idx.replace("</body>", &format!("{links}</body>")),
    );
    let (code, out, err) = d.cli(&["mirror", "fixture"]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        format!("{out}{err}").contains("No space left on device"),
        "{out}{err}"
    );
    let (store, now) = current(&d);
    assert_eq!(now.id, good.id);
    for e in now.entries.values().filter_map(|e| e.body.as_ref()) {
        store
            .body(e)
            .expect("every body of the published snapshot is still there");
    }
}

/// An extra origin (a CDN host, pinned by `resolve`) is in scope; and when the public port
/// differs from the primary's (NAT), URLs keep the public port while requests go to the
/// primary's, with the public authority in Host.
#[test]
fn extra_hosts_and_a_port_forwarded_primary() {
    let f = Fixture::start();
    let port = f.port();
    let idx = std::fs::read_to_string(f.www.join("index.html")).unwrap();
    f.set(
        "index.html",
        &idx.replace(
            "</body>",
            &format!("<img src=\"http://cdn.fixture.test:{port}/img/cdn.png\"></body>"),
        ),
    );
    f.set("img/cdn.png", "from the CDN");
    let config = f
        .config(&format!("extra_hosts = [\"http://cdn.fixture.test:{port}\"]\nresolve = {{ \"cdn.fixture.test\" = \"127.0.0.1\" }}"))
        .replace(&format!("[sites.probe]\nscheme = \"http\"\nport = {port}"), "[sites.probe]\nscheme = \"http\"\nport = 8080");
    let d = Daemon::prepare(&config);
    let r = crawl(&d);
    assert_eq!(r["outcome"], "published", "{r:#}");
    let (_, m) = current(&d);
    assert_eq!(m.entry, "http://www.fixture.test:8080/");
    assert_eq!(
        m.entries["http://www.fixture.test:8080/about"].status, 200,
        "public port in the key, primary's port on the wire"
    );
    // nginx writes its own port into the absolute Location; recorded as the origin sent it.
    assert_eq!(
        m.entries["http://www.fixture.test:8080/old"]
            .location
            .as_deref(),
        Some(&*format!("http://www.fixture.test:{port}/about"))
    );
    assert_eq!(
        m.entries[&format!("http://cdn.fixture.test:{port}/img/cdn.png")].status,
        200,
        "the extra origin is crawled"
    );
}

/// A crawl cut short by a global limit keeps the last good copy of what it did not reach.
#[test]
fn a_crawl_cut_short_keeps_what_it_did_not_reach() {
    let f = Fixture::start();
    let d = Daemon::prepare(&f.config("scheduled = false"));
    assert_eq!(crawl(&d)["outcome"], "published");
    let (_, full) = current(&d);
    let text = std::fs::read_to_string(d.config_path())
        .unwrap()
        .replace("[sites.mirror]", "[sites.mirror]\nmax_pages = 15");
    std::fs::write(d.config_path(), text).unwrap();
    let r = crawl(&d);
    assert!(r["limits_hit"]["max_pages"].as_u64().unwrap() > 0, "{r:#}");
    assert_eq!(r["outcome"], "published", "{r:#}");
    let (_, now) = current(&d);
    assert!(now.id != full.id);
    for key in full.entries.keys() {
        assert!(
            now.entries.contains_key(key),
            "{key} vanished from the standby after a crawl cut short"
        );
    }
}

/// `max_time` stops requests in flight: the report still counts every request the origin saw
/// (it counted only the answered ones, so it was short of the origin's log).
#[test]
fn a_crawl_stopped_by_max_time_counts_every_request_sent() {
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    let links: String = (0..12)
        .map(|i| format!("<a href=\"/slow/{i}.bin\">{i}</a>"))
        .collect();
    common::fixture::write(&www, "index.html", links.as_bytes());
    for i in 0..12 {
        common::fixture::write(&www, &format!("slow/{i}.bin"), &vec![b'x'; 64 * 1024]);
    }
    // Each slow file takes 16 s at 4 KB/s; nginx logs a request when it ends, also when the
    // client goes away.
    let nginx = common::Nginx::start_custom(
        "127.0.0.1",
        dir,
        "    access_log {DIR}/access.log;\n    root {DIR}/www;\n    location /slow/ { limit_rate 4k; }\n",
    );
    let port = nginx.addr.port();
    let d = Daemon::prepare(&common::one_site_config(
        "{DATA}",
        "slow",
        port,
        "http",
        "",
        "scheduled = false\nconcurrency = 4\nmax_time = \"2s\"",
    ));
    let (_, r) = d.crawl_json("slow");
    assert!(
        r["limits_hit"]["max_time"].as_u64().unwrap_or(0) > 0,
        "{r:#}"
    );
    let log = nginx.dir.path().join("access.log");
    let logged = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count() as u64
    };
    // robots.txt, sitemap.xml, the index and the slow files in flight: at least 7. nginx
    // writes an aborted request's line when it ends, which may be after the crawl returned.
    // The defect was a report *short* of what the origin logged; a request the crawler had
    // started when max_time struck may not have reached nginx yet (then nginx logs nothing),
    // so the report may count up to `concurrency` more, never fewer.
    let sent = r["requests"].as_u64().unwrap_or(0);
    assert!(sent >= 7, "{r:#}");
    common::wait_until(Duration::from_secs(10), "nginx to log 7 requests", || {
        logged() >= 7
    });
    std::thread::sleep(Duration::from_millis(500));
    let seen = logged();
    assert!(
        sent >= seen && sent <= seen + 4,
        "the report counts {sent} requests, nginx logged {seen}: {r:#}"
    );
}
