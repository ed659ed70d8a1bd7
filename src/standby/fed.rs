//! A copy fed by traffic (`[sites.proxy] refresh_from_traffic = true`, off by default): a
//! cacheable 200 answer to a GET passing through the proxy replaces the copy's entry for that
//! URL, so a page's copy can be as fresh as its last visit rather than the last crawl.
//!
//! Bounded and cautious by design:
//! - kept **in memory**, at most [`FED_BUDGET`] bytes per site (then it starts over) and
//!   [`FED_MAX_BODY`] per answer; a restart forgets it, and a newly published snapshot (the
//!   next crawl, validated and published atomically as always) supersedes it;
//! - only what any shared cache could keep ([`cacheable`], pure): a GET without `Cookie` or
//!   `Authorization`, answered 200 without `Set-Cookie`, `Cache-Control: private`,
//!   `no-store` or `no-cache`, a `Vary` other than `Accept-Encoding`, or a content coding
//!   (the copy keeps bodies as they are, not as one client's encoding).

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use hyper::header::{self, HeaderMap};

use crate::mirror::snapshot::Entry;

/// The most bytes of fed answers kept per site.
pub const FED_BUDGET: usize = 32 << 20;
/// The largest answer kept.
pub const FED_MAX_BODY: usize = 1 << 20;

/// One site's fed entries, valid for one snapshot.
#[derive(Default)]
pub(super) struct Fed(Mutex<FedInner>);

#[derive(Default)]
struct FedInner {
    snapshot: String,
    entries: HashMap<String, (Entry, Bytes, u64)>,
    bytes: usize,
}

impl Fed {
    /// The fed answer for `key` (entry, body, when it passed), if one passed since snapshot
    /// `snapshot` was published.
    pub(super) fn get(&self, snapshot: &str, key: &str) -> Option<(Entry, Bytes, u64)> {
        let f = self.0.lock().unwrap_or_else(|e| e.into_inner());
        (f.snapshot == snapshot)
            .then(|| f.entries.get(key).cloned())
            .flatten()
    }

    pub(super) fn put(&self, snapshot: &str, key: String, entry: Entry, body: Bytes, at: u64) {
        let mut f = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if f.snapshot != snapshot || f.bytes + body.len() > FED_BUDGET {
            *f = FedInner {
                snapshot: snapshot.to_string(),
                ..Default::default()
            };
        }
        f.bytes += body.len();
        if let Some((_, old, _)) = f.entries.insert(key, (entry, body, at)) {
            f.bytes -= old.len();
        }
    }
}

/// Whether a GET's answer may feed the copy (the module doc's rules).
pub fn cacheable(request: &HeaderMap, status: u16, answer: &HeaderMap) -> bool {
    let has = |h: &HeaderMap, n: header::HeaderName| h.contains_key(n);
    let words = |n: header::HeaderName| -> String {
        answer
            .get_all(n)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",")
            .to_ascii_lowercase()
    };
    let cc = words(header::CACHE_CONTROL);
    let vary_ok = words(header::VARY)
        .split(',')
        .map(str::trim)
        .all(|v| v.is_empty() || v == "accept-encoding");
    let coding = words(header::CONTENT_ENCODING);
    let small = answer
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_none_or(|n| n <= FED_MAX_BODY);
    status == 200
        && !has(request, header::COOKIE)
        && !has(request, header::AUTHORIZATION)
        && !has(answer, header::SET_COOKIE)
        && !["private", "no-store", "no-cache"]
            .iter()
            .any(|d| cc.contains(d))
        && vary_ok
        && (coding.is_empty() || coding == "identity")
        && small
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn only_what_a_shared_cache_could_keep_feeds_the_copy() {
        let ok = h(&[("content-type", "text/html"), ("vary", "Accept-Encoding")]);
        assert!(cacheable(&h(&[]), 200, &ok));
        let refused = [
            (h(&[("cookie", "s=1")]), 200, h(&[])),
            (h(&[("authorization", "Bearer x")]), 200, h(&[])),
            (h(&[]), 404, h(&[])),
            (h(&[]), 200, h(&[("set-cookie", "s=1")])),
            (h(&[]), 200, h(&[("cache-control", "private, max-age=60")])),
            (h(&[]), 200, h(&[("cache-control", "no-store")])),
            (h(&[]), 200, h(&[("vary", "Cookie")])),
            (h(&[]), 200, h(&[("content-encoding", "gzip")])),
            (h(&[]), 200, h(&[("content-length", "2000000")])),
        ];
        for (req, status, answer) in refused {
            assert!(
                !cacheable(&req, status, &answer),
                "{req:?} {status} {answer:?}"
            );
        }
    }

    #[test]
    fn a_new_snapshot_or_a_full_budget_starts_over() {
        let f = Fed::default();
        let e = Entry {
            status: 200,
            content_type: None,
            content_encoding: None,
            location: None,
            etag: None,
            last_modified: None,
            body: None,
            length: 2,
        };
        f.put("s1", "k".into(), e.clone(), Bytes::from_static(b"hi"), 5);
        assert_eq!(f.get("s1", "k").map(|x| x.2), Some(5));
        assert!(f.get("s2", "k").is_none(), "a newer snapshot supersedes it");
        f.put("s2", "k2".into(), e, Bytes::from(vec![0; FED_BUDGET]), 6);
        assert!(f.get("s2", "k").is_none());
        assert!(f.get("s2", "k2").is_some());
    }
}
