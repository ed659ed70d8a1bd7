//! Speculative discovery: what only scripts and JSON load (URLs in string literals) is found,
//! and a wrong guess is recorded without failing the crawl or counting as an error.

use crate::common;

use common::fixture::Fixture;
use common::Daemon;

/// What the fixture's single-page app loads only from scripts and JSON: none of it is linked
/// from HTML or CSS.
const LOADED_BY_SCRIPTS: &[&str] = &[
    "/spa/home.json",
    "/spa/data/menu.json",
    "/spa/img/hero.png",
    "/spa/chunk-1.js",
    "/spa/img/from-chunk.png",
    "/spa/config.json",
    "/spa/img/logo.svg",
    "/spa/page-2.json",
    "/spa/img/ld.png",
];

fn write_app(f: &Fixture) {
    let port = f.port();
    f.set(
        "spa/index.html",
        &format!(
            r#"<!doctype html><title>App</title><div id="app"></div>
<script>
  const routes = {{ home: "/spa/home.json" }};
  fetch('/spa/data/menu.json').then(r => r.json());
  const hero = new Image(); hero.src = "img/hero.png";
  // "/spa/in-a-comment.png" is never fetched
  const quoted = /"\/spa\/[a-z]+.png"/g;
  const missing = "/spa/gone.json";
  const offsite = "http://203.0.113.5/tracker.js";
  const unknown = `/spa/${{routes.home}}.png`;
</script>
<script type="application/ld+json">{{"@context": "https://schema.org", "logo": "http://www.fixture.test:{port}/spa/img/ld.png"}}</script>
<script src="/spa/app.js"></script>"#
        ),
    );
    f.set(
        "spa/app.js",
        "import('./chunk-1.js');\nfetch(\"/spa/config.json\").then(r => r.json());\n",
    );
    f.set(
        "spa/chunk-1.js",
        "export const img = '/spa/img/from-chunk.png';",
    );
    f.set(
        "spa/config.json",
        r#"{"logo": "/spa/img/logo.svg", "pages": {"next": "page-2.json"}, "title": "not a url"}"#,
    );
    f.set("spa/page-2.json", r#"{"done": true}"#);
    f.set("spa/home.json", r#"{"home": true}"#);
    f.set("spa/data/menu.json", r#"["a", "b"]"#);
    for img in ["hero.png", "from-chunk.png", "logo.svg", "ld.png"] {
        f.set(&format!("spa/img/{img}"), &format!("image bytes of {img}"));
    }
}

#[test]
fn urls_only_scripts_load_are_guessed_and_a_wrong_guess_is_no_error() {
    let f = Fixture::start();
    write_app(&f);
    let start = f.url("/spa/");
    let d = Daemon::prepare(&f.config(&format!("start = [\"{start}\"]")));
    let (code, r) = d.crawl_json("fixture");
    assert_eq!(
        (code, r["outcome"].as_str()),
        (0, Some("published")),
        "{r:#}"
    );
    let m = d.snapshot("fixture");

    let recovered: Vec<&str> = LOADED_BY_SCRIPTS
        .iter()
        .copied()
        .filter(|p| m.entries.get(&f.url(p)).is_some_and(|e| e.status == 200))
        .collect();
    println!(
        "speculative discovery recovered {} of the {} URLs the fixture's scripts and JSON load",
        recovered.len(),
        LOADED_BY_SCRIPTS.len()
    );
    assert_eq!(recovered, LOADED_BY_SCRIPTS, "{:#?}", m.entries.keys());

    // The wrong guess is recorded, not stored, not an error.
    let gone = f.url("/spa/gone.json");
    assert!(!m.entries.contains_key(&gone));
    assert_eq!(
        m.skipped.get(&gone).map(String::as_str),
        Some("speculative: the origin answered 404"),
        "{:#?}",
        m.skipped
    );
    assert_eq!(r["errors"], 0, "{r:#}");
    assert_eq!(r["guesses_kept"], LOADED_BY_SCRIPTS.len() as u64, "{r:#}");
    assert_eq!(r["guesses_missed"], 1, "{r:#}");

    // Comments, regular expressions, templates with holes and other hosts are not guessed.
    for p in ["/spa/in-a-comment.png", "/spa/[a-z]+.png"] {
        let u = f.url(p);
        assert!(
            !m.entries.contains_key(&u) && !m.skipped.contains_key(&u),
            "{p} was guessed"
        );
    }
    assert!(
        m.entries
            .keys()
            .chain(m.skipped.keys())
            .all(|u| u.starts_with(&f.origin())),
        "a URL of another origin was taken: {:#?} {:#?}",
        m.entries.keys(),
        m.skipped
    );

    // A guess is not a reference: verify finds nothing unanswerable.
    let (code, out, err) = d.cli(&["mirror", "verify", "fixture"]);
    assert_eq!(code, 0, "{out}{err}");

    // The human summary says what the guesses gave.
    let (_, out, _) = d.cli(&["mirror", "crawl", "fixture"]);
    assert!(
        out.contains("guessed from scripts and JSON: 9 found, 1 not on the origin (not errors)"),
        "{out}"
    );
}

/// A URL first guessed (and missed) and then referred to from HTML is a reference after all:
/// its 404 is stored as the origin's answer, as for any referenced missing page.
#[test]
fn a_guess_referred_to_later_is_a_reference() {
    let f = Fixture::start();
    f.set(
        "spa/index.html",
        r#"<script>fetch("/spa/nothing.json")</script><a href="/spa/deeper">on</a>"#,
    );
    f.set(
        "spa/deeper.html",
        r#"<a href="/spa/nothing.json">a link to it</a>"#,
    );
    let start = f.url("/spa/");
    let d = Daemon::prepare(&f.config(&format!("start = [\"{start}\"]")));
    let (code, r) = d.crawl_json("fixture");
    assert_eq!(code, 0, "{r:#}");
    let m = d.snapshot("fixture");
    let u = f.url("/spa/nothing.json");
    assert_eq!(m.entries.get(&u).map(|e| e.status), Some(404), "{m:#?}");
    assert!(!m.skipped.contains_key(&u), "{:#?}", m.skipped);
}
