//! The Cloudflare provider against the documented-behaviour fake (tests/common/cloudflare_fake.rs):
//! create, update, idempotent re-apply (no write), pagination, proxied kept as found, extra
//! records of a managed RRset removed, 429 + Retry-After honoured, a wrong token (clear error,
//! nothing written), records not ours untouched.

use crate::common;
use common::name;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cloudflare_fake::FakeCloudflare;
use common::rt;
use hickory_proto::rr::RecordType;
use understudy::config::{CloudflareConfig, Secret};
use understudy::dns::provider::cloudflare::Cloudflare;
use understudy::dns::provider::{Outcome, ProviderError};
use understudy::dns::ManagedRecords;
use understudy::reconcile::{Pass, Reconciler};

const TOKEN: &str = "cf-test-token";

fn reconciler(cf: &FakeCloudflare, token: &str, proxied: Option<bool>) -> Reconciler {
    Reconciler {
        zone: name("example.test"),
        provider: Arc::new(
            Cloudflare::new(
                &CloudflareConfig {
                    endpoint: cf.endpoint().to_string(),
                    api_token: Secret(token.into()),
                    zone_id: None,
                    proxied,
                },
                30,
                Duration::from_secs(3),
            )
            .unwrap(),
        ),
        ttl: 30,
        verify: vec![],
        verify_timeout: Duration::from_secs(1),
        refresh: Duration::from_secs(300),
    }
}

fn managed(pairs: &[(&str, &str)]) -> ManagedRecords {
    let mut m = ManagedRecords::default();
    for (n, ip) in pairs {
        let ip: std::net::IpAddr = ip.parse().unwrap();
        m.set(
            name(n),
            if ip.is_ipv4() {
                RecordType::A
            } else {
                RecordType::AAAA
            },
            vec![ip],
        );
    }
    m
}

fn applied(p: &Pass) -> usize {
    match p {
        Pass::InSync => 0,
        Pass::Applied(v) => {
            assert!(v.iter().all(|(_, o, _)| *o == Outcome::Applied), "{v:?}");
            v.len()
        }
    }
}

/// The ACME DNS-01 TXT records through the Cloudflare API: added and removed one by one, a
/// value already there kept, the foreign TXT at the site's name untouched.
#[test]
fn acme_challenge_records_come_and_go() {
    use understudy::dns::provider::Provider;
    let cf = FakeCloudflare::start(TOKEN);
    cf.state.lock().unwrap().add(
        "TXT",
        "www.example.test",
        "not managed by understudy",
        300,
        false,
    );
    let p = Cloudflare::new(
        &CloudflareConfig {
            endpoint: cf.endpoint().to_string(),
            api_token: Secret(TOKEN.into()),
            zone_id: None,
            proxied: None,
        },
        30,
        Duration::from_secs(3),
    )
    .unwrap();
    let rt = rt();
    let (zone, at) = (
        name("example.test"),
        name("_acme-challenge.www.example.test"),
    );
    let txt = || {
        let mut v: Vec<String> = cf
            .state
            .lock()
            .unwrap()
            .find("TXT", "_acme-challenge.www.example.test")
            .into_iter()
            .map(|r| r.content)
            .collect();
        v.sort();
        v
    };
    rt.block_on(p.set_txt(&zone, &at, &["first-token".into(), "second-token".into()]))
        .unwrap();
    assert_eq!(txt(), ["first-token", "second-token"]);
    let writes = cf.state.lock().unwrap().writes();
    rt.block_on(p.set_txt(&zone, &at, &["second-token".into(), "third-token".into()]))
        .unwrap();
    assert_eq!(txt(), ["second-token", "third-token"]);
    assert_eq!(
        cf.state.lock().unwrap().writes(),
        writes + 2,
        "one POST and one DELETE; the kept value untouched"
    );
    rt.block_on(p.set_txt(&zone, &at, &[])).unwrap();
    assert!(txt().is_empty());
    assert_eq!(
        cf.state
            .lock()
            .unwrap()
            .find("TXT", "www.example.test")
            .len(),
        1
    );
}

#[test]
fn create_update_idempotent_paginated_untouched() {
    let cf = FakeCloudflare::start(TOKEN);
    {
        let mut s = cf.state.lock().unwrap();
        // 250 records that are not ours: reading must page through them.
        for i in 0..250 {
            s.add(
                "A",
                &format!("h{i:03}.example.test"),
                "192.0.2.200",
                300,
                false,
            );
        }
        s.add(
            "TXT",
            "www.example.test",
            "not managed by understudy",
            300,
            false,
        );
        s.add("MX", "example.test", "mail.example.test", 300, false);
    }
    let r = reconciler(&cf, TOKEN, None);
    let rt = rt();
    let want = r.desired(&managed(&[
        ("www.example.test", "192.0.2.10"),
        ("example.test", "192.0.2.10"),
        ("www.example.test", "2001:db8::10"),
    ]));
    let mut known = None;
    assert_eq!(applied(&rt.block_on(r.pass(&want, &mut known)).unwrap()), 3);
    {
        let mut s = cf.state.lock().unwrap();
        let www = s.find("A", "www.example.test");
        assert_eq!(www.len(), 1);
        assert_eq!(
            (www[0].content.as_str(), www[0].ttl, www[0].proxied),
            ("192.0.2.10", 60, false),
            "TTL raised to Cloudflare's minimum"
        );
        assert!(www[0].comment.as_deref().unwrap().contains("understudy"));
        s.add("A", "mail.example.test", "192.0.2.25", 300, false);
        assert_eq!(
            s.find("AAAA", "www.example.test")[0].content,
            "2001:db8::10"
        );
        let pages: Vec<_> = s
            .log
            .iter()
            .filter(|(m, p)| m == "GET" && p.ends_with("type=A") && !p.contains("name="))
            .collect();
        assert!(
            pages.len() >= 3,
            "read paged through 250+ records: {pages:?}"
        );
    }

    // Issue 11, item 11: the marker is read back; a record set someone else made has none.
    let keys = [
        (name("www.example.test"), RecordType::A),
        (name("mail.example.test"), RecordType::A),
    ];
    let marked = rt
        .block_on(r.provider.marked(&name("example.test"), &keys))
        .unwrap();
    assert_eq!(marked.into_iter().collect::<Vec<_>>(), [keys[0].clone()]);

    // Idempotent: a fresh read, no write.
    let writes = cf.state.lock().unwrap().writes();
    let mut fresh = None;
    assert_eq!(
        rt.block_on(r.pass(&want, &mut fresh)).unwrap(),
        Pass::InSync
    );
    assert_eq!(
        cf.state.lock().unwrap().writes(),
        writes,
        "re-apply must not write"
    );

    // Update one.
    let want2 = r.desired(&managed(&[
        ("www.example.test", "192.0.2.20"),
        ("example.test", "192.0.2.10"),
        ("www.example.test", "2001:db8::10"),
    ]));
    assert_eq!(
        applied(&rt.block_on(r.pass(&want2, &mut known)).unwrap()),
        1
    );
    let s = cf.state.lock().unwrap();
    assert_eq!(s.find("A", "www.example.test")[0].content, "192.0.2.20");
    assert_eq!(
        s.find("TXT", "www.example.test").len(),
        1,
        "not ours: untouched"
    );
    assert_eq!(s.find("MX", "example.test").len(), 1);
    assert_eq!(
        s.records
            .values()
            .filter(|r| r.name.starts_with('h') && r.content == "192.0.2.200")
            .count(),
        250
    );
}

#[test]
fn proxied_is_kept_as_found_and_extras_removed() {
    let cf = FakeCloudflare::start(TOKEN);
    {
        let mut s = cf.state.lock().unwrap();
        s.add("A", "www.example.test", "192.0.2.1", 1, true);
        s.add("A", "www.example.test", "192.0.2.2", 1, true);
    }
    let r = reconciler(&cf, TOKEN, None);
    let rt = rt();
    let want = r.desired(&managed(&[("www.example.test", "192.0.2.30")]));
    let mut known = None;
    assert_eq!(applied(&rt.block_on(r.pass(&want, &mut known)).unwrap()), 1);
    let s = cf.state.lock().unwrap();
    let www = s.find("A", "www.example.test");
    assert_eq!(
        www.len(),
        1,
        "the RRset is exactly the desired one: {www:?}"
    );
    assert_eq!(
        (www[0].content.as_str(), www[0].proxied, www[0].ttl),
        ("192.0.2.30", true, 1),
        "proxied kept, TTL auto"
    );
    drop(s);
    // A proxied record reads back as in sync (its TTL is Cloudflare's to choose).
    let mut fresh = None;
    assert_eq!(
        rt.block_on(r.pass(&want, &mut fresh)).unwrap(),
        Pass::InSync
    );
}

#[test]
fn rate_limit_is_retried_after_retry_after() {
    let cf = FakeCloudflare::start(TOKEN);
    {
        let mut s = cf.state.lock().unwrap();
        s.throttle = 2;
        s.retry_after = 1;
    }
    let r = reconciler(&cf, TOKEN, None);
    let rt = rt();
    let mut known = None;
    let want = r.desired(&managed(&[("www.example.test", "192.0.2.10")]));
    let err = rt.block_on(r.pass(&want, &mut known)).unwrap_err();
    assert_eq!(
        err,
        ProviderError::Throttled {
            retry_after: Some(Duration::from_secs(1))
        }
    );
    assert!(err.is_transient());
    // The daemon loop waits Retry-After and lands the change.
    let started = Instant::now();
    let bg = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(managed(&[("www.example.test", "192.0.2.10")]));
    let cancel = tokio_util::sync::CancellationToken::new();
    let h = bg.spawn(reconciler(&cf, TOKEN, None).run(rx, cancel.clone()));
    while cf
        .state
        .lock()
        .unwrap()
        .find("A", "www.example.test")
        .is_empty()
    {
        assert!(started.elapsed() < Duration::from_secs(15), "never landed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "waited the Retry-After: {:?}",
        started.elapsed()
    );
    cancel.cancel();
    bg.block_on(h).unwrap();
}

#[test]
fn wrong_token_clear_error_nothing_written() {
    let cf = FakeCloudflare::start(TOKEN);
    let r = reconciler(&cf, "not-the-token", None);
    let rt = rt();
    let mut known = None;
    let err = rt
        .block_on(r.pass(
            &r.desired(&managed(&[("www.example.test", "192.0.2.10")])),
            &mut known,
        ))
        .unwrap_err();
    assert!(matches!(err, ProviderError::Auth(_)), "{err}");
    assert!(
        err.to_string()
            .contains("Authentication error (code 10000)"),
        "{err}"
    );
    assert!(matches!(
        rt.block_on(r.provider.check(&name("example.test"))),
        Err(ProviderError::Auth(_))
    ));
    assert_eq!(cf.state.lock().unwrap().writes(), 0);
    let good = reconciler(&cf, TOKEN, None);
    assert!(matches!(
        rt.block_on(good.provider.check(&name("other.test"))),
        Err(ProviderError::ZoneNotFound(_))
    ));
    assert!(rt
        .block_on(good.provider.check(&name("example.test")))
        .unwrap()
        .contains("readable"));
}

#[test]
fn api_unreachable_mid_run_latest_value_lands() {
    let cf = FakeCloudflare::start(TOKEN);
    let relay = common::moto::Relay::start(cf.addr);
    let endpoint = format!("http://{}/client/v4", relay.addr);
    let r = Reconciler {
        zone: name("example.test"),
        provider: Arc::new(
            Cloudflare::new(
                &CloudflareConfig {
                    endpoint: endpoint.to_string(),
                    api_token: Secret(TOKEN.into()),
                    zone_id: None,
                    proxied: None,
                },
                30,
                Duration::from_secs(3),
            )
            .unwrap(),
        ),
        ttl: 30,
        verify: vec![],
        verify_timeout: Duration::from_secs(1),
        refresh: Duration::from_secs(300),
    };
    let mut provider = (cf, relay);
    common::latest_value_lands_after_outage(
        &mut provider,
        r,
        |(cf, _)| {
            cf.state
                .lock()
                .unwrap()
                .find("A", "www.example.test")
                .into_iter()
                .map(|r| r.content)
                .collect()
        },
        |(_, relay)| relay.set_up(false),
        |(_, relay)| relay.set_up(true),
    );
    assert_eq!(
        provider
            .0
            .state
            .lock()
            .unwrap()
            .find("A", "www.example.test")
            .len(),
        1
    );
}
