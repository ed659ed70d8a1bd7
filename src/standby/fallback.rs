//! When a request's exact URL is not in the snapshot: the entry the origin would most likely
//! have answered with, or nothing. Pure; `standby::tests` and `tests/serve.rs` check it.
//!
//! Links in the wild carry what the crawl never saw: `?utm_source=…` and `?fbclid=…` from
//! newsletters and social media, cache busters (`style.css?v=1`), site searches answered by the
//! page's JavaScript (`search.html?q=…`), another percent-encoding case, a missing trailing
//! slash. A static origin answers all of them; a copy that knew only the exact URLs would
//! answer 404. The order, first match wins:
//!
//! 1. **Exact**: the URL as the crawler keyed it.
//! 2. **Percent-encoding case**: `%c3%a9` and `%C3%A9` are the same octets (RFC 3986 §6.2.2.1).
//! 3. **Tracking parameters removed**: the names in `tracking` (a configurable list, by default
//!    [`crate::config::TRACKING_PARAMS`]; a name ending in `*` is a prefix) are dropped and
//!    the rest looked up again.
//! 4. **Query ignored**, for a path whose answer does not depend on its query: the copy holds
//!    the path without a query and no variant of it with one. (A path with query variants in
//!    the copy, like `/cal?month=1` and `/cal?month=2`, answers 404 for one it does not hold.)
//!    When the copy holds no bare path but exactly one variant that is not a page (a style
//!    sheet, script, image, font), that variant: a cache buster names a version of the same
//!    file.
//! 5. **Trailing slash**: `/tutorial` when the copy holds `/tutorial/` is redirected there (301),
//!    as a static server redirects a directory.
//!
//! Every answer from steps 2–5 carries `X-Understudy-Answered-By` with the entry's URL and the
//! rule.

use std::collections::BTreeMap;

use url::Url;

use crate::mirror::extract::is_html;
use crate::mirror::snapshot::Entry;

/// What answers a request.
#[derive(Debug, PartialEq)]
pub enum Found<'a> {
    Exact(&'a Entry),
    /// Another entry, found by the rule named in `why`.
    Instead {
        key: String,
        entry: &'a Entry,
        why: &'static str,
    },
    /// Redirect (301) to this path and query.
    AddSlash(String),
    Nothing,
}

/// The entry for `key` (a URL as [`super::lookup_key`] makes it) by the rules of the module doc.
pub fn find<'a>(entries: &'a BTreeMap<String, Entry>, key: &str, tracking: &[String]) -> Found<'a> {
    if let Some(e) = entries.get(key) {
        return Found::Exact(e);
    }
    let instead = |k: String, why| {
        entries
            .get(&k)
            .map(|entry| Found::Instead { key: k, entry, why })
    };
    for k in percent_cases(key) {
        if let Some(f) = instead(k, "percent-encoding case") {
            return f;
        }
    }
    let Ok(url) = Url::parse(key) else {
        return Found::Nothing;
    };
    if let Some(without) = without_tracking(&url, tracking) {
        for k in std::iter::once(without.clone()).chain(percent_cases(&without)) {
            if let Some(f) = instead(k, "tracking parameters removed") {
                return f;
            }
        }
    }
    let mut bare = url.clone();
    bare.set_query(None);
    let bare_key = bare.to_string();
    if url.query().is_some() {
        let prefix = format!("{bare_key}?");
        let variants: Vec<(&String, &Entry)> = entries
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .take(2)
            .collect();
        match (entries.get(&bare_key), variants.as_slice()) {
            (Some(entry), []) => {
                return Found::Instead {
                    key: bare_key,
                    entry,
                    why: "query ignored",
                }
            }
            (None, [(k, entry)]) if !is_html(entry.content_type.as_deref()) => {
                return Found::Instead {
                    key: k.to_string(),
                    entry,
                    why: "query ignored",
                }
            }
            _ => {}
        }
    }
    if !url.path().ends_with('/') {
        let mut slashed = url.clone();
        slashed.set_path(&format!("{}/", url.path()));
        let mut slashed_bare = slashed.clone();
        slashed_bare.set_query(None);
        if entries.contains_key(slashed.as_str()) || entries.contains_key(slashed_bare.as_str()) {
            let target = match slashed.query() {
                Some(q) => format!("{}?{q}", slashed.path()),
                None => slashed.path().to_string(),
            };
            return Found::AddSlash(target);
        }
    }
    Found::Nothing
}

/// `key` with its percent-escapes in upper case, then in lower case, where that differs.
fn percent_cases(key: &str) -> Vec<String> {
    let recase = |upper: bool| {
        let mut out = String::with_capacity(key.len());
        let mut rest = key;
        while let Some(i) = rest.find('%') {
            out.push_str(&rest[..i]);
            let esc = rest.get(i..i + 3).filter(|e| {
                e.as_bytes()[1].is_ascii_hexdigit() && e.as_bytes()[2].is_ascii_hexdigit()
            });
            match esc {
                Some(e) if upper => out.push_str(&e.to_ascii_uppercase()),
                Some(e) => out.push_str(&e.to_ascii_lowercase()),
                None => out.push('%'),
            }
            rest = &rest[i + esc.map_or(1, |_| 3)..];
        }
        out.push_str(rest);
        out
    };
    let mut out = vec![];
    for k in [recase(true), recase(false)] {
        if k != key && !out.contains(&k) {
            out.push(k);
        }
    }
    out
}

/// `url` without the parameters named in `tracking`, if it had any.
fn without_tracking(url: &Url, tracking: &[String]) -> Option<String> {
    let query = url.query()?;
    let tracked = |name: &str| {
        let name = name.to_ascii_lowercase();
        tracking.iter().any(|t| match t.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == *t,
        })
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !tracked(p.split('=').next().unwrap_or("")))
        .collect();
    if kept.len() == query.split('&').filter(|p| !p.is_empty()).count() {
        return None;
    }
    let mut u = url.clone();
    u.set_query((!kept.is_empty()).then(|| kept.join("&")).as_deref());
    Some(u.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(content_type: &str) -> Entry {
        Entry {
            status: 200,
            content_type: Some(content_type.to_string()),
            ..Entry::default()
        }
    }

    #[test]
    fn the_fallback_order() {
        let o = "https://www.example.test";
        let mut m = BTreeMap::new();
        for (path, kind) in [
            ("/", "text/html"),
            ("/search.html", "text/html"),
            ("/caf%C3%A9", "text/html"),
            ("/tutorial/", "text/html"),
            ("/cal?month=1", "text/html"),
            ("/cal?month=2", "text/html"),
            ("/page?id=3", "text/html"),
            ("/style.css?v=3", "text/css"),
            ("/a.png", "image/png"),
            ("/list?page=2", "text/html"),
        ] {
            m.insert(format!("{o}{path}"), entry(kind));
        }
        let t = crate::config::default_tracking_params();
        let why = |path: &str| match find(&m, &format!("{o}{path}"), &t) {
            Found::Exact(_) => "exact".to_string(),
            Found::Instead { key, why, .. } => format!("{why}: {}", &key[o.len()..]),
            Found::AddSlash(to) => format!("301 {to}"),
            Found::Nothing => "404".to_string(),
        };
        assert_eq!(why("/search.html"), "exact");
        assert_eq!(why("/caf%c3%a9"), "percent-encoding case: /caf%C3%A9");
        assert_eq!(
            why("/list?page=2&utm_source=news&fbclid=x"),
            "tracking parameters removed: /list?page=2"
        );
        assert_eq!(why("/?utm_campaign=x"), "tracking parameters removed: /");
        assert_eq!(
            why("/search.html?q=frobnicate"),
            "query ignored: /search.html"
        );
        assert_eq!(why("/a.png?v=2"), "query ignored: /a.png");
        assert_eq!(why("/style.css?v=1"), "query ignored: /style.css?v=3");
        assert_eq!(
            why("/cal?month=3"),
            "404",
            "a path whose answer depends on its query"
        );
        assert_eq!(
            why("/page?id=7"),
            "404",
            "one page variant is not the others"
        );
        assert_eq!(why("/tutorial"), "301 /tutorial/");
        assert_eq!(why("/tutorial?utm_source=x"), "301 /tutorial/?utm_source=x");
        assert_eq!(why("/nowhere"), "404");
        assert_eq!(
            why("/search.html?fbclid=1"),
            "tracking parameters removed: /search.html"
        );
    }

    #[test]
    fn tracking_names_and_prefixes() {
        let t = vec!["utm_*".to_string(), "fbclid".to_string()];
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            without_tracking(&u("https://e.test/a?UTM_Source=1&x=2&fbclid=3"), &t),
            Some("https://e.test/a?x=2".to_string())
        );
        assert_eq!(without_tracking(&u("https://e.test/a?x=2"), &t), None);
        assert_eq!(
            without_tracking(&u("https://e.test/a?fbclid=3"), &t),
            Some("https://e.test/a".to_string())
        );
        assert_eq!(percent_cases("/a%c3%A9%zz"), ["/a%C3%A9%zz", "/a%c3%a9%zz"]);
        assert!(percent_cases("/plain").is_empty());
    }
}
