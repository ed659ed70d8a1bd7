//! The offline export: a snapshot written as a directory tree that browses over `file://`,
//! what a `wget --mirror -k -E` user expects from a backup.
//!
//! File names (decided once for the whole snapshot, so they are stable and collision-free):
//! - `<host>/<path>`, with `<host>_<port>` for a non-default port;
//! - a path ending in `/` gets `index.html`;
//! - a query becomes part of the name before the extension: `app.js?v=3` → `app@v=3.js`
//!   (hashed when long);
//! - `.html` is added to HTML whose name does not end in `.html`/`.htm`: `/about` →
//!   `about.html`;
//! - a name that would collide (with another URL's, or with a directory another URL needs)
//!   gets `@<8 hex of the URL's hash>` before the extension.
//!
//! Every reference kind the crawler discovers is rewritten: to a relative path when the
//! snapshot has the target (redirects followed), to the absolute original URL when it is in
//! scope but not in the snapshot (so nothing points at a missing local file). Redirects become
//! small pages that refresh to their target. Files are written aside and renamed into place.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use anyhow::Context;
use url::Url;

use super::extract::{self, is_html, Kind};
use super::snapshot::{Manifest, SnapshotStore};
use crate::util::sha256_hex;

/// What an export wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exported {
    pub files: usize,
    pub bytes: u64,
    /// References rewritten to a local file.
    pub local: usize,
    /// In-scope references the snapshot does not have, rewritten to the original absolute URL.
    pub absolute: usize,
}

/// Splits a file name into stem and extension (".js"), the extension only when short and
/// plain.
fn split_ext(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i)
            if i > 0
                && name.len() - i <= 6
                && name[i + 1..].chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            (&name[..i], &name[i..])
        }
        _ => (name, ""),
    }
}

/// The natural relative file path of a URL (before collision handling).
pub fn natural_path(u: &Url, html: bool) -> String {
    let host = u.host_str().unwrap_or("_");
    let top = match u.port() {
        Some(p) => format!("{host}_{p}"),
        None => host.to_string(),
    };
    let mut segs: Vec<String> = u
        .path()
        .split('/')
        .skip(1)
        .map(|s| {
            if s.is_empty() {
                "_".to_string()
            } else {
                s.to_string()
            }
        })
        .collect();
    let last = segs.pop().unwrap_or_default();
    let mut name = if last == "_" || last.is_empty() {
        "index.html".to_string()
    } else {
        last
    };
    if let Some(q) = u.query() {
        let q = q.replace('/', "%2F");
        let q = if q.len() > 80 {
            sha256_hex(q.as_bytes())[..16].to_string()
        } else {
            q
        };
        let (stem, ext) = split_ext(&name);
        name = format!("{stem}@{q}{ext}");
    }
    if html {
        let lower = name.to_ascii_lowercase();
        if !(lower.ends_with(".html") || lower.ends_with(".htm")) {
            name.push_str(".html");
        }
    }
    let mut parts = vec![top];
    parts.extend(segs);
    parts.push(name);
    parts.join("/")
}

/// File paths for every URL of the manifest that gets a file (bodies and redirects).
pub fn plan(m: &Manifest) -> BTreeMap<String, String> {
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut taken: BTreeSet<String> = BTreeSet::new();
    let mut wanted: Vec<(String, String)> = Vec::new();
    for (key, e) in &m.entries {
        let Ok(u) = Url::parse(key) else { continue };
        let redirect = (300..400).contains(&e.status) && e.location.is_some();
        if e.body.is_none() && !redirect {
            continue;
        }
        wanted.push((
            key.clone(),
            natural_path(&u, redirect || is_html(e.content_type.as_deref())),
        ));
    }
    // Every directory some file needs; a file may not take one of these names.
    let dirs: BTreeSet<String> = wanted
        .iter()
        .flat_map(|(_, p)| {
            let parts: Vec<&str> = p.split('/').collect();
            (1..parts.len()).map(move |i| parts[..i].join("/").to_ascii_lowercase())
        })
        .collect();
    for (key, path) in wanted {
        let lower = path.to_ascii_lowercase();
        // Case-insensitive: the copy may land on a file system that folds case.
        let path = if taken.contains(&lower) || dirs.contains(&lower) {
            let (dir, file) = path.rsplit_once('/').unwrap_or(("", &path));
            let (stem, ext) = split_ext(file);
            format!("{dir}/{stem}@{}{ext}", &sha256_hex(key.as_bytes())[..8])
        } else {
            path
        };
        taken.insert(path.to_ascii_lowercase());
        names.insert(key, path);
    }
    names
}

/// A relative reference from the file at `from` to the file at `to` (both export paths).
fn relative(from: &str, to: &str) -> String {
    let from_dir: Vec<&str> =
        from.split('/').collect::<Vec<_>>()[..from.split('/').count() - 1].to_vec();
    let to_parts: Vec<&str> = to.split('/').collect();
    let common = from_dir
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count();
    let mut out: Vec<String> = vec!["..".to_string(); from_dir.len() - common];
    out.extend(to_parts[common..].iter().map(|s| {
        s.replace('%', "%25")
            .replace('#', "%23")
            .replace('?', "%3F")
    }));
    out.join("/")
}

/// Writes the browsable copy of `m` under `dir`.
pub fn export(
    store: &SnapshotStore,
    m: &Manifest,
    scope: &super::scope::Scope,
    dir: &Path,
) -> anyhow::Result<Exported> {
    let names = plan(m);
    // A URL → the file that answers it, following the snapshot's redirects.
    let target = |u: &Url| -> Option<&String> {
        let (key, _) = m.resolve_redirects(u.as_str())?;
        names.get(key)
    };
    let mut out = Exported::default();
    let mut made: HashSet<PathBuf> = HashSet::new();
    for (key, path) in &names {
        let e = &m.entries[key];
        let base = Url::parse(key).expect("planned from parsed URLs");
        let mut local = 0;
        let mut absolute = 0;
        let mut map = |u: &Url| -> Option<String> {
            if let Some(t) = target(u) {
                local += 1;
                return Some(relative(path, t));
            }
            if scope.contains(u) {
                absolute += 1;
                return Some(u.to_string());
            }
            None
        };
        let bytes = if (300..400).contains(&e.status) {
            let loc = e.location.as_deref().and_then(|l| base.join(l).ok());
            let href = match loc {
                Some(l) => map(&l).unwrap_or_else(|| l.to_string()),
                None => String::new(),
            };
            let href = href.replace('&', "&amp;").replace('"', "&quot;");
            format!("<!doctype html><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"0; url={href}\"><title>Moved</title><a href=\"{href}\">Moved here</a>\n").into_bytes()
        } else {
            let body = store.body(e.body.as_deref().expect("planned entries have bodies"))?;
            match (e.content_encoding.is_none())
                .then(|| Kind::of(e.content_type.as_deref(), &base, &body))
            {
                Some(Kind::Html) => extract::html(&body, &base, &mut map),
                Some(Kind::Css) => {
                    extract::css(&String::from_utf8_lossy(&body), &base, &mut map).into_bytes()
                }
                Some(Kind::Manifest) => extract::manifest(&body, &base, &mut map).unwrap_or(body),
                _ => body,
            }
        };
        out.local += local;
        out.absolute += absolute;
        let file = dir.join(path);
        let parent = file.parent().expect("export paths have a directory");
        if !made.contains(parent) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
            made.insert(parent.to_path_buf());
        }
        crate::util::write_atomic(&file, &bytes)?;
        out.files += 1;
        out.bytes += bytes.len() as u64;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mirror::snapshot::Entry;

    fn entry(status: u16, ct: &str, location: Option<&str>) -> Entry {
        Entry {
            status,
            content_type: Some(ct.into()),
            content_encoding: None,
            location: location.map(String::from),
            etag: None,
            last_modified: None,
            body: if location.is_some() {
                None
            } else {
                Some("0".repeat(64))
            },
            length: 1,
        }
    }

    #[test]
    fn names_are_stable_readable_and_distinct() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            natural_path(&u("https://e.test/"), true),
            "e.test/index.html"
        );
        assert_eq!(
            natural_path(&u("https://e.test/about"), true),
            "e.test/about.html"
        );
        assert_eq!(
            natural_path(&u("https://e.test/a/b.html"), true),
            "e.test/a/b.html"
        );
        assert_eq!(
            natural_path(&u("https://e.test/app.js?v=3"), false),
            "e.test/app@v=3.js"
        );
        assert_eq!(
            natural_path(&u("https://e.test/list?page=2&x=a/b"), true),
            "e.test/list@page=2&x=a%2Fb.html"
        );
        assert_eq!(
            natural_path(&u("http://e.test:8080/x/"), true),
            "e.test_8080/x/index.html"
        );
        assert_eq!(
            natural_path(&u("https://e.test/a%20b.png"), false),
            "e.test/a%20b.png"
        );
        let mut m = Manifest {
            id: "1".into(),
            site: "s".into(),
            created_at: 0,
            entry: "https://e.test/".into(),
            entries: BTreeMap::new(),
            skipped: BTreeMap::new(),
        };
        for (k, ct) in [
            ("https://e.test/about", "text/html"),
            ("https://e.test/about.html", "text/html"),
            ("https://e.test/data", "application/json"),
            ("https://e.test/data/x", "application/json"),
            ("https://e.test/A.png", "image/png"),
            ("https://e.test/a.png", "image/png"),
        ] {
            m.entries.insert(k.into(), entry(200, ct, None));
        }
        m.entries.insert(
            "https://e.test/old".into(),
            entry(301, "text/html", Some("/about")),
        );
        let p = plan(&m);
        let files: BTreeSet<String> = p.values().map(|f| f.to_ascii_lowercase()).collect();
        assert_eq!(files.len(), p.len(), "distinct even case-folded: {p:#?}");
        assert_eq!(p["https://e.test/about"], "e.test/about.html");
        assert!(
            p["https://e.test/about.html"].starts_with("e.test/about@"),
            "{p:#?}"
        );
        assert!(
            p["https://e.test/data"].starts_with("e.test/data@"),
            "a file cannot take a directory's name: {p:#?}"
        );
        assert_eq!(p["https://e.test/data/x"], "e.test/data/x");
        assert_eq!(p["https://e.test/old"], "e.test/old.html");
        assert_eq!(plan(&m), p, "stable");
    }

    #[test]
    fn relative_paths() {
        assert_eq!(relative("e.test/index.html", "e.test/a/b.png"), "a/b.png");
        assert_eq!(relative("e.test/a/b/c.html", "e.test/a/d.css"), "../d.css");
        assert_eq!(
            relative("e.test/a/c.html", "cdn.test/x.png"),
            "../../cdn.test/x.png"
        );
        assert_eq!(
            relative("e.test/x.html", "e.test/a%20b@q=1.png"),
            "a%2520b@q=1.png"
        );
    }
}
