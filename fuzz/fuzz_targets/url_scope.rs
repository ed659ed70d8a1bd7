//! The URL scope resolver: any reference text against a page, then the scope check. A URL in
//! scope must have the site's own scheme, host and port.
#![no_main]

use libfuzzer_sys::fuzz_target;
use understudy::mirror::scope::{resolve, Scope};
use url::Url;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let origin = Url::parse("https://www.example.test/").unwrap();
    let other = Url::parse("http://cdn.example.test:8080/").unwrap();
    let scope = Scope::new([&origin, &other]);
    for base in [
        "https://www.example.test/a/b/c.html?x=1",
        "http://cdn.example.test:8080/",
    ] {
        let base = Url::parse(base).unwrap();
        if let Some(u) = resolve(&base, raw) {
            if scope.contains(&u) {
                let key = (u.scheme(), u.host_str(), u.port_or_known_default());
                assert!(
                    key == ("https", Some("www.example.test"), Some(443))
                        || key == ("http", Some("cdn.example.test"), Some(8080)),
                    "in scope but not the site's: {u}"
                );
            }
        }
    }
});
