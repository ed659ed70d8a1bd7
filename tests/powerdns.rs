//! The PowerDNS HTTP API provider against a real pdns_server (sqlite3 backend): create, update,
//! idempotent re-apply (no PATCH: the serial stays), 100 names in one PATCH (the serial moves
//! once), the server stopped mid-run (the latest value lands), a wrong API key (clear error,
//! nothing written), records not ours untouched, ownership comment set.

use crate::common;
use common::{applied, desired, name};

use std::sync::Arc;
use std::time::Duration;

use common::pdns::{Pdns, API_KEY};
use common::rt;
use hickory_proto::rr::RecordType;
use understudy::config::{PowerDnsConfig, Secret};
use understudy::dns::provider::powerdns::PowerDns;
use understudy::dns::provider::ProviderError;
use understudy::reconcile::{Pass, Reconciler};

fn reconciler(p: &Pdns, key: &str) -> Reconciler {
    Reconciler {
        zone: name("example.test"),
        provider: Arc::new(
            PowerDns::new(
                &PowerDnsConfig {
                    url: p.api.clone(),
                    server_id: "localhost".into(),
                    api_key: Secret(key.to_string()),
                },
                Duration::from_secs(3),
            )
            .unwrap(),
        ),
        ttl: 30,
        verify: vec![p.dns],
        verify_timeout: Duration::from_secs(5),
        refresh: Duration::from_secs(300),
    }
}

/// The ACME DNS-01 TXT records (`standby.acme` for a zone held by PowerDNS): set, replaced,
/// removed, and the foreign TXT at the site's name untouched.
#[test]
fn acme_challenge_records_come_and_go() {
    let p = Pdns::start();
    let provider = PowerDns::new(
        &PowerDnsConfig {
            url: p.api.clone(),
            server_id: "localhost".into(),
            api_key: Secret(API_KEY.to_string()),
        },
        Duration::from_secs(3),
    )
    .unwrap();
    common::challenge_records_round_trip(&provider, |n| p.rdata(n, RecordType::TXT));
}

#[test]
fn create_update_idempotent_untouched() {
    let p = Pdns::start();
    let r = reconciler(&p, API_KEY);
    let rt = rt();
    let s0 = p.serial().unwrap();
    let mut known = None;
    let want = desired(&[
        ("www.example.test", "192.0.2.10"),
        ("example.test", "192.0.2.10"),
        ("www.example.test", "2001:db8::10"),
    ]);
    assert_eq!(applied(&rt.block_on(r.pass(&want, &mut known)).unwrap()), 3);
    assert_eq!(p.rdata("www.example.test", RecordType::A), ["192.0.2.10"]);
    assert_eq!(
        p.rdata("www.example.test", RecordType::AAAA),
        ["2001:db8::10"]
    );
    assert_eq!(p.rdata("example.test", RecordType::A), ["192.0.2.10"]);
    let s1 = p.serial().unwrap();
    assert_eq!(s1, s0 + 1, "one PATCH for the batch");

    let mut fresh = None;
    assert_eq!(
        rt.block_on(r.pass(&want, &mut fresh)).unwrap(),
        Pass::InSync
    );
    assert_eq!(p.serial().unwrap(), s1, "no write on re-apply");

    let want2 = desired(&[
        ("www.example.test", "192.0.2.20"),
        ("example.test", "192.0.2.10"),
        ("www.example.test", "2001:db8::10"),
    ]);
    assert_eq!(
        applied(&rt.block_on(r.pass(&want2, &mut known)).unwrap()),
        1
    );
    assert_eq!(p.rdata("www.example.test", RecordType::A), ["192.0.2.20"]);

    assert_eq!(
        p.rdata("www.example.test", RecordType::TXT),
        ["not managed by understudy"]
    );
    assert_eq!(
        p.rdata("example.test", RecordType::MX),
        ["10 mail.example.test."]
    );
    assert_eq!(p.rdata("mail.example.test", RecordType::A), ["192.0.2.25"]);

    // Ownership is recorded as an RRset comment.
    let conn = rusqlite::Connection::open(p.dir.path().join("pdns.sqlite3")).unwrap();
    let comment: String = conn
        .query_row(
            "SELECT comment FROM comments WHERE name = 'www.example.test' AND type = 'A'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(comment.contains("heritage=understudy"), "{comment}");
    // Issue 11, item 11: the marker is read back; a record set someone else made has none.
    let keys = [
        (name("www.example.test"), RecordType::A),
        (name("mail.example.test"), RecordType::A),
    ];
    let marked = rt
        .block_on(r.provider.marked(&name("example.test"), &keys))
        .unwrap();
    assert_eq!(marked.into_iter().collect::<Vec<_>>(), [keys[0].clone()]);
}

#[test]
fn hundred_names_in_one_patch() {
    let p = Pdns::start();
    let r = reconciler(&p, API_KEY);
    let rt = rt();
    let names: Vec<String> = (0..100).map(|i| format!("site{i}.example.test")).collect();
    let want = desired(
        &names
            .iter()
            .map(|n| (n.as_str(), "192.0.2.1"))
            .collect::<Vec<_>>(),
    );
    let s0 = p.serial().unwrap();
    let mut known = None;
    assert_eq!(
        applied(&rt.block_on(r.pass(&want, &mut known)).unwrap()),
        100
    );
    assert_eq!(
        p.serial().unwrap(),
        s0 + 1,
        "100 changes must go in one PATCH"
    );
}

#[test]
fn wrong_api_key_clear_error_nothing_written() {
    let p = Pdns::start();
    let rt = rt();
    let s0 = p.serial().unwrap();
    let r = reconciler(&p, "wrong-key");
    let mut known = None;
    let err = rt
        .block_on(r.pass(&desired(&[("www.example.test", "192.0.2.66")]), &mut known))
        .unwrap_err();
    assert!(matches!(err, ProviderError::Auth(_)), "{err}");
    assert!(err.to_string().contains("check api_key"), "{err}");
    let check = rt.block_on(r.provider.check(&name("example.test")));
    assert!(matches!(check, Err(ProviderError::Auth(_))), "{check:?}");
    let missing = rt.block_on(reconciler(&p, API_KEY).provider.check(&name("nosuch.test")));
    assert!(
        matches!(missing, Err(ProviderError::ZoneNotFound(_))),
        "{missing:?}"
    );
    assert_eq!(p.serial().unwrap(), s0);
    assert!(p.rdata("www.example.test", RecordType::A).is_empty());
    let ok = rt
        .block_on(
            reconciler(&p, API_KEY)
                .provider
                .check(&name("example.test")),
        )
        .unwrap();
    assert!(ok.contains("API key accepted"), "{ok}");
}

#[test]
fn server_down_then_back_latest_value_lands() {
    let mut p = Pdns::start();
    let r = reconciler(&p, API_KEY);
    common::latest_value_lands_after_outage(
        &mut p,
        r,
        |p| p.rdata("www.example.test", RecordType::A),
        Pdns::stop,
        Pdns::restart,
    );
}
