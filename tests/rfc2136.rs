//! RFC 2136 + TSIG against real BIND 9 and Knot servers started by the test: create, update,
//! idempotent re-apply (no write: the SOA serial stays), many names in one batch (the serial
//! moves once), the server stopped mid-run (the latest value lands after it returns), wrong
//! credentials (clear error, nothing written), and records understudy does not own untouched.

use crate::common;
use common::{applied, desired, name};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::authdns::{AuthServer, Kind};
use common::rt;
use hickory_proto::rr::{Name, RecordType};
use understudy::config::{parse_bind_key, Rfc2136Config, TsigKey};
use understudy::dns::provider::rfc2136::Rfc2136;
use understudy::dns::provider::{Key, ProviderError, RrSet};
use understudy::reconcile::{Pass, Reconciler};

fn zone() -> Name {
    name("example.test")
}

fn key(server: &AuthServer) -> TsigKey {
    parse_bind_key(&std::fs::read_to_string(&server.key_file).unwrap()).unwrap()
}

fn reconciler(server: &AuthServer, key: Option<TsigKey>) -> Reconciler {
    Reconciler {
        zone: zone(),
        provider: Arc::new(
            Rfc2136::new(
                &Rfc2136Config {
                    server: server.addr,
                    key,
                },
                Duration::from_secs(2),
            )
            .unwrap(),
        ),
        ttl: 30,
        verify: vec![server.addr],
        verify_timeout: Duration::from_secs(5),
        refresh: Duration::from_secs(300),
    }
}

/// The ACME DNS-01 TXT records (published by `standby.acme` for a zone on this server): set,
/// replaced, removed, and nothing else at the name touched.
fn acme_challenge_records(kind: Kind) {
    let server = AuthServer::start(kind, "hmac-sha256");
    let p = Rfc2136::new(
        &Rfc2136Config {
            server: server.addr,
            key: Some(key(&server)),
        },
        Duration::from_secs(2),
    )
    .unwrap();
    common::challenge_records_round_trip(&p, |n| server.rdata(n, RecordType::TXT));
}

fn create_update_idempotent(kind: Kind, alg: &str) {
    let server = AuthServer::start(kind, alg);
    let r = reconciler(&server, Some(key(&server)));
    let rt = rt();
    let mut known = None;
    let s0 = server.serial().unwrap();

    // Create.
    let want = desired(&[
        ("www.example.test", "192.0.2.10"),
        ("example.test", "192.0.2.10"),
        ("www.example.test", "2001:db8::10"),
    ]);
    assert_eq!(applied(&rt.block_on(r.pass(&want, &mut known)).unwrap()), 3);
    assert_eq!(
        server.rdata("www.example.test", RecordType::A),
        ["192.0.2.10"]
    );
    assert_eq!(
        server.rdata("www.example.test", RecordType::AAAA),
        ["2001:db8::10"]
    );
    assert_eq!(server.rdata("example.test", RecordType::A), ["192.0.2.10"]);
    let owner = server.rdata("_understudy.www.example.test", RecordType::TXT);
    assert!(
        owner[0].contains("heritage=understudy"),
        "ownership marked: {owner:?}"
    );
    let s1 = server.serial().unwrap();
    assert!(s1 > s0);

    // Idempotent: same desired, fresh reader → no UPDATE at all (serial unchanged).
    let mut fresh = None;
    assert_eq!(
        rt.block_on(r.pass(&want, &mut fresh)).unwrap(),
        Pass::InSync
    );
    assert_eq!(
        rt.block_on(r.pass(&want, &mut known)).unwrap(),
        Pass::InSync
    );
    assert_eq!(server.serial().unwrap(), s1, "no write on re-apply");

    // Update one name.
    let want2 = desired(&[
        ("www.example.test", "192.0.2.20"),
        ("example.test", "192.0.2.10"),
        ("www.example.test", "2001:db8::10"),
    ]);
    assert_eq!(
        applied(&rt.block_on(r.pass(&want2, &mut known)).unwrap()),
        1
    );
    assert_eq!(
        server.rdata("www.example.test", RecordType::A),
        ["192.0.2.20"]
    );

    // Records understudy does not own are untouched, even at the same name.
    assert_eq!(
        server.rdata("www.example.test", RecordType::TXT),
        ["not managed by understudy"]
    );
    assert_eq!(
        server.rdata("example.test", RecordType::MX),
        ["10 mail.example.test."]
    );
    assert_eq!(
        server.rdata("mail.example.test", RecordType::A),
        ["192.0.2.25"]
    );
    assert_eq!(
        server.rdata("ns1.example.test", RecordType::A),
        ["127.0.0.1"]
    );
}

fn many_in_one_batch(kind: Kind) {
    let server = AuthServer::start(kind, "hmac-sha256");
    let r = reconciler(&server, Some(key(&server)));
    let rt = rt();
    let names: Vec<String> = (0..100).map(|i| format!("site{i}.example.test")).collect();
    let want: BTreeMap<Key, RrSet> = desired(
        &names
            .iter()
            .map(|n| (n.as_str(), "192.0.2.1"))
            .collect::<Vec<_>>(),
    );
    let s0 = server.serial().unwrap();
    let mut known = None;
    assert_eq!(
        applied(&rt.block_on(r.pass(&want, &mut known)).unwrap()),
        100
    );
    // One UPDATE message: the serial moved exactly once.
    assert_eq!(
        server.serial().unwrap(),
        s0 + 1,
        "100 changes must go in one batch"
    );
    assert_eq!(
        server.rdata("site99.example.test", RecordType::A),
        ["192.0.2.1"]
    );
}

fn wrong_credentials(kind: Kind) {
    let server = AuthServer::start(kind, "hmac-sha256");
    let rt = rt();
    let want = desired(&[("www.example.test", "192.0.2.66")]);
    let s0 = server.serial().unwrap();
    let mut bad = key(&server);
    bad.secret = b"this is not the right secret at all".to_vec();
    for (what, k) in [
        ("wrong secret", Some(bad.clone())),
        ("no key", None),
        (
            "unknown key name",
            Some(TsigKey {
                name: name("nobody"),
                ..bad
            }),
        ),
    ] {
        let r = reconciler(&server, k);
        let mut known = None;
        let err = rt.block_on(r.pass(&want, &mut known)).unwrap_err();
        assert!(matches!(err, ProviderError::Auth(_)), "{what}: {err}");
        let text = err.to_string();
        assert!(
            text.contains("REFUSED") || text.contains("NOTAUTH"),
            "{what}: {text}"
        );
        assert!(!err.is_transient(), "{what}");
        let check = rt.block_on(r.provider.check(&zone()));
        if what == "no key" {
            assert!(check.is_ok(), "reading needs no key: {check:?}");
        } else {
            assert!(
                matches!(check, Err(ProviderError::Auth(_))),
                "{what}: check must say the key is wrong: {check:?}"
            );
        }
    }
    assert_eq!(server.serial().unwrap(), s0, "nothing written");
    assert!(server.rdata("www.example.test", RecordType::A).is_empty());
    let ok = rt
        .block_on(
            reconciler(&server, Some(key(&server)))
                .provider
                .check(&zone()),
        )
        .unwrap();
    assert!(
        ok.contains("authoritative") && ok.contains("TSIG key accepted"),
        "{ok}"
    );
}

fn server_down_then_back_latest_value_lands(kind: Kind) {
    let mut server = AuthServer::start(kind, "hmac-sha256");
    let r = reconciler(&server, Some(key(&server)));
    common::latest_value_lands_after_outage(
        &mut server,
        r,
        |s| s.rdata("www.example.test", RecordType::A),
        AuthServer::stop,
        AuthServer::restart,
    );
}

macro_rules! suite {
    ($m:ident, $kind:expr) => {
        mod $m {
            use super::*;
            #[test]
            fn create_update_idempotent_untouched_sha256() {
                create_update_idempotent($kind, "hmac-sha256");
            }
            #[test]
            fn create_update_idempotent_untouched_sha512() {
                create_update_idempotent($kind, "hmac-sha512");
            }
            #[test]
            fn hundred_names_in_one_batch() {
                many_in_one_batch($kind);
            }
            #[test]
            fn wrong_credentials_clear_error_nothing_written() {
                wrong_credentials($kind);
            }
            #[test]
            fn acme_challenge_records_come_and_go() {
                super::acme_challenge_records($kind);
            }
            #[test]
            fn server_down_then_back_latest_value_lands() {
                super::server_down_then_back_latest_value_lands($kind);
            }
        }
    };
}

suite!(bind, Kind::Bind);
suite!(knot, Kind::Knot);
