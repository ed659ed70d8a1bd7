//! The dyndns2 update endpoint's request parser: any query string and Authorization header.
//! Only the right credentials change anything, and only to a public address.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use understudy::config::Secret;
use understudy::ip::push::{update, PushAuth, PushBoard};
use understudy::ip::Family;

fuzz_target!(|data: &[u8]| {
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
});
