//! The reference extractors: any body as HTML (rewritten for the offline export too), CSS, a
//! web-app manifest, a sitemap, a script and JSON. Every reference found must be an absolute
//! URL; nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use understudy::mirror::extract::{self, Kind};
use url::Url;

fuzz_target!(|data: &[u8]| {
    let base = Url::parse("https://www.example.test/docs/page.html").unwrap();
    let mut rewrite = |u: &Url| Some(format!("../{}", u.path()));
    let _ = extract::html(data, &base, &mut rewrite);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = extract::css(text, &base, &mut |_| None);
        let _ = extract::decode_entities(text);
    }
    let _ = extract::manifest(data, &base, &mut |_| None);
    let _ = extract::sitemap(data, &base);
    for kind in [
        Kind::Html,
        Kind::Css,
        Kind::Manifest,
        Kind::Sitemap,
        Kind::Script,
        Kind::Json,
        Kind::Other,
    ] {
        let found = extract::discover(kind, data, &base);
        for u in found.refs.iter().chain(&found.guesses) {
            assert!(u.has_host() || u.scheme() == "data", "not absolute: {u}");
        }
    }
});
