//! The fuzz targets' bodies, one function each, shared by the cargo-fuzz binaries
//! (`fuzz/fuzz_targets/<name>.rs`) and the test suite, which replays every committed input
//! through them (`tests/fuzz_corpus.rs`: the seed corpora in `fuzz/corpus/<name>/` and each
//! crash found, kept in `fuzz/regressions/<name>/`). So a crash the fuzzer finds becomes a
//! regression test of the normal suite by committing its input.

#![allow(dead_code)]
#![allow(clippy::single_match)]

use hickory_proto::rr::{LowerName, Name, RecordType};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;
use understudy::config::Secret;
use understudy::dns::respond::respond;
use understudy::dns::zone::{Apex, Zone, ZoneSet};
use understudy::dns::ManagedRecords;
use understudy::ip::agree::{non_public, validate};
use understudy::ip::push::{update, PushAuth, PushBoard};
use understudy::ip::{answer_text, interface_address, upnp, Family};
use understudy::mirror::extract::{self, Kind};
use understudy::mirror::scope::{resolve, Scope};
use understudy::mirror::snapshot::Entry;
use understudy::standby::fallback::{find, Found};
use understudy::standby::lookup_key;
use url::Url;

/// A target: any bytes in, nothing out; a panic is a finding.
pub type Target = fn(&[u8]);

/// Every target, by name.
pub const ALL: &[(&str, Target)] = &[
    ("dns_request", dns_request),
    ("zone_build", zone_build),
    ("config_toml", config_toml),
    ("html_css_extract", html_css_extract),
    ("url_scope", url_scope),
    ("snapshot_key", snapshot_key),
    ("ip_answer", ip_answer),
    ("dyndns2", dyndns2),
    ("tsig_key", tsig_key),
];

fn zones() -> &'static ZoneSet {
    static Z: OnceLock<ZoneSet> = OnceLock::new();
    Z.get_or_init(|| {
        let cfg = understudy::config::parse(
            Path::new("fuzz.toml"),
            r#"
[[dns.zones]]
name = "example.test"
records = ["@ MX 10 mail", "mail A 192.0.2.25", "blog CNAME www", "ext CNAME elsewhere.org.",
           "*.wild TXT \"w\"", "sub NS ns.sub", "ns.sub A 192.0.2.53", "a.b.deep TXT \"x\"",
           "@ CAA 0 issue \"letsencrypt.org\""]
"#,
        )
        .expect("the fuzz zone loads");
        let z = &cfg.dns.zones[0];
        let mut m = ManagedRecords::default();
        m.set(
            Name::from_ascii("www.example.test.").unwrap(),
            RecordType::A,
            vec!["192.0.2.10".parse().unwrap()],
        );
        let apex = Apex {
            origin: &z.origin,
            nameservers: &z.nameservers,
            hostmaster: &z.hostmaster,
        };
        ZoneSet {
            zones: vec![Zone::build(&apex, &z.records, &m, 30, 7)],
            published_ms: 0,
        }
    })
}

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

/// The built-in DNS server's request handler: any bytes, over UDP and TCP, against a zone
/// with a wildcard, a delegation with glue, CNAME chains and a managed record. It must answer
/// or stay silent, never panic.
pub fn dns_request(data: &[u8]) {
    let src: SocketAddr = "192.0.2.99:5353".parse().unwrap();
    let z = zones();
    let _ = respond(z, &[], &[], data, src, false, 0);
    let _ = respond(z, &[], &[], data, src, true, 0);
}

/// The zone builder: each line of the input is a `records` entry of a `[[dns.zones]]` table
/// (as an operator writes them). Whatever the config accepts must build into a zone that
/// answers lookups; whatever it refuses must be refused with an error, not a panic.
pub fn zone_build(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines: Vec<String> = text.lines().take(32).map(str::to_string).collect();
    let records = serde_json::to_string(&lines).unwrap();
    let toml = format!("[[dns.zones]]\nname = \"example.test\"\nrecords = {records}\n");
    let Ok(cfg) = understudy::config::parse(Path::new("fuzz.toml"), &toml) else {
        return;
    };
    let z = &cfg.dns.zones[0];
    let apex = Apex {
        origin: &z.origin,
        nameservers: &z.nameservers,
        hostmaster: &z.hostmaster,
    };
    let zone = Zone::build(&apex, &z.records, &ManagedRecords::default(), 30, 1);
    let _ = zone.content();
    let set = ZoneSet {
        zones: vec![zone],
        published_ms: 0,
    };
    for r in &z.records {
        let name = LowerName::new(&r.name);
        let _ = set.lookup(&name, r.record_type(), false);
        let _ = set.lookup(&name, RecordType::ANY, true);
    }
    if let Ok(n) = Name::from_ascii("nothing.here.example.test.") {
        let _ = set.lookup(&LowerName::new(&n), RecordType::A, true);
    }
}

/// The TOML config loader: any text. A config either loads or gets an error naming the file,
/// line and key; it never panics, and an error never carries a secret's value.
pub fn config_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match understudy::config::parse(Path::new("fuzz.toml"), text) {
        Ok(cfg) => {
            let _ = format!("{cfg:?}");
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains("fuzz.toml"),
                "an error that names no file: {msg}"
            );
        }
    }
}

/// The reference extractors: any body as HTML (rewritten for the offline export too), CSS, a
/// web-app manifest, a sitemap, a script and JSON. Every reference found must be an absolute
/// URL; nothing may panic.
pub fn html_css_extract(data: &[u8]) {
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
}

/// The URL scope resolver: any reference text against a page, then the scope check. A URL in
/// scope must have the site's own scheme, host and port.
pub fn url_scope(data: &[u8]) {
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
}

/// The standby's request-target → snapshot key lookup and its fallback for unseen URLs:
/// any request target. A key, when there is one, stays on the site's origin; the fallback
/// never answers with an entry the snapshot does not hold.
pub fn snapshot_key(data: &[u8]) {
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
}

/// The public-address sources' answer parsers: an HTTP echo's body (plain or JSON), a UPnP
/// router's device description, and `ip -j addr` output. Whatever they accept as an address
/// must be a public one of the asked family.
pub fn ip_answer(data: &[u8]) {
    for field in [None, Some("ip"), Some("data.address")] {
        if let Ok(text) = answer_text(data, field) {
            for family in [Family::Ipv4, Family::Ipv6] {
                if let Ok(ip) = validate(&text, family, &[]) {
                    assert_eq!(Family::of(&ip), family);
                    assert!(non_public(&ip).is_none(), "{ip} accepted");
                }
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = upnp::control_url(text);
    }
    let _ = interface_address(data, "eth0", Family::Ipv4);
    let _ = interface_address(data, "eth0", Family::Ipv6);
}

/// The dyndns2 update endpoint's request parser: any query string and Authorization header.
/// Only the right credentials change anything, and only to a public address.
pub fn dyndns2(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first line is the Authorization header, the rest the query.
    let (authorization, query) = text.split_once('\n').unwrap_or(("", text));
    let auth = PushAuth {
        username: "home".into(),
        password: Secret("a-long-enough-password".into()),
        hostnames: vec!["home.example.com".into()],
        allow: vec![],
    };
    let board = PushBoard::default();
    let peer: IpAddr = "198.51.100.7".parse().unwrap();
    let (status, _body) = update(&auth, &board, Some(authorization), query, peer, 1_000);
    if let Ok(ip) = board.get(Family::Ipv4, std::time::Duration::from_secs(60), 1_000) {
        assert!(status.is_success(), "the board changed on {status}");
        assert!(understudy::ip::agree::non_public(&ip).is_none() || ip == peer);
    }
    // The right credentials too, with the fuzzed query.
    let good = "Basic aG9tZTphLWxvbmctZW5vdWdoLXBhc3N3b3Jk";
    let _ = update(&auth, &board, Some(good), query, peer, 2_000);
}

/// The TSIG key file parser (`tsig-keygen` output, as operators paste it): any text. A key it
/// accepts has a name and a secret.
pub fn tsig_key(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = understudy::config::parse_bind_key(text) {
        let _ = format!("{key:?}");
    }
}
