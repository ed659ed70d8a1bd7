//! The standby's request-target → snapshot key lookup and its fallback for unseen URLs:
//! any request target. A key, when there is one, stays on the site's origin; the fallback
//! never answers with an entry the snapshot does not hold.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use understudy::mirror::snapshot::Entry;
use understudy::standby::fallback::{find, Found};
use understudy::standby::lookup_key;
use url::Url;

fn entries() -> &'static BTreeMap<String, Entry> {
    static E: OnceLock<BTreeMap<String, Entry>> = OnceLock::new();
    E.get_or_init(|| {
        let ok = Entry {
            status: 200,
            ..Entry::default()
        };
        [
            "https://www.example.test/",
            "https://www.example.test/docs/",
            "https://www.example.test/caf%C3%A9.html",
            "https://www.example.test/style.css",
            "https://www.example.test/cal?month=1",
            "https://www.example.test/cal?month=2",
            "https://www.example.test/search.html",
        ]
        .into_iter()
        .map(|k| (k.to_string(), ok.clone()))
        .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(target) = std::str::from_utf8(data) else {
        return;
    };
    let origin = Url::parse("https://www.example.test/").unwrap();
    let tracking = vec!["utm_*".to_string(), "fbclid".to_string()];
    if let Some(key) = lookup_key(&origin, target) {
        assert!(
            key.starts_with("https://www.example.test/"),
            "a key off the origin: {key}"
        );
        match find(entries(), &key, &tracking) {
            Found::Instead { key: k, .. } => {
                assert!(entries().contains_key(&k), "an entry not held: {k}")
            }
            _ => {}
        }
    }
});
