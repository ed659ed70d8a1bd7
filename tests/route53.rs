//! Route 53 through the official AWS SDK.
//!
//! Against moto's Route 53 endpoint: hosted zone looked up by name, create, update, idempotent
//! re-apply (no ChangeResourceRecordSets call), 100 names in one call, the endpoint cut
//! mid-run (the latest value lands), records not ours untouched, ownership TXT.
//!
//! moto answers INSYNC at once and checks no signature, so our own code paths for those are
//! tested against a local endpoint that records requests and plays Route 53's documented
//! answers: the request is SigV4-signed with the configured key, a PENDING change is polled
//! with GetChange until INSYNC (or reported "could not confirm"), and an InvalidClientTokenId
//! error becomes a clear credentials error with nothing written.

use crate::common;
use common::name;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::moto::{Moto, Relay};
use common::rt;
use hickory_proto::rr::{Name, RecordType};
use understudy::config::Secret;
use understudy::dns::provider::route53::{Route53, Route53Config};
use understudy::dns::provider::{Key, Outcome, Provider, ProviderError, RrSet};
use understudy::dns::ManagedRecords;
use understudy::reconcile::{Pass, Reconciler};

const TIMEOUT: Duration = Duration::from_secs(5);

fn settings(endpoint: &str) -> Route53Config {
    Route53Config {
        hosted_zone_id: None,
        region: "us-east-1".into(),
        endpoint: Some(endpoint.into()),
        profile: None,
        credentials: Some((
            "AKIDUNDERSTUDYTEST".into(),
            Secret("understudy-test-secret".into()),
        )),
        confirm_timeout: Duration::from_secs(5),
    }
}

/// Counts `apply` calls (each is exactly one ChangeResourceRecordSets request).
struct Counting(Arc<dyn Provider>, Arc<AtomicUsize>);

#[async_trait::async_trait]
impl Provider for Counting {
    fn describe(&self) -> String {
        self.0.describe()
    }
    async fn read(&self, zone: &Name, keys: &[Key]) -> Result<BTreeMap<Key, RrSet>, ProviderError> {
        self.0.read(zone, keys).await
    }
    async fn apply(&self, zone: &Name, changes: &[RrSet]) -> Result<Vec<Outcome>, ProviderError> {
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0.apply(zone, changes).await
    }
    async fn set_txt(
        &self,
        zone: &Name,
        name: &Name,
        values: &[String],
    ) -> Result<(), ProviderError> {
        self.0.set_txt(zone, name, values).await
    }
    async fn marked(
        &self,
        zone: &Name,
        keys: &[Key],
    ) -> Result<std::collections::BTreeSet<Key>, ProviderError> {
        self.0.marked(zone, keys).await
    }
    async fn check(&self, zone: &Name) -> Result<String, ProviderError> {
        self.0.check(zone).await
    }
}

use common::moto::sdk;

async fn setup_zone(c: &aws_sdk_route53::Client) -> String {
    use aws_sdk_route53::types::*;
    let id = common::moto::create_zone(c, &format!("t{}", std::process::id())).await;
    let rr = |n: &str, t: RrType, v: &str| {
        Change::builder()
            .action(ChangeAction::Create)
            .resource_record_set(
                ResourceRecordSet::builder()
                    .name(n)
                    .r#type(t)
                    .ttl(300)
                    .resource_records(ResourceRecord::builder().value(v).build().unwrap())
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    };
    let batch = ChangeBatch::builder()
        .changes(rr(
            "www.example.test.",
            RrType::Txt,
            "\"not managed by understudy\"",
        ))
        .changes(rr("example.test.", RrType::Mx, "10 mail.example.test."))
        .changes(rr("mail.example.test.", RrType::A, "192.0.2.25"))
        .build()
        .unwrap();
    c.change_resource_record_sets()
        .hosted_zone_id(&id)
        .change_batch(batch)
        .send()
        .await
        .unwrap();
    id
}

async fn values(
    c: &aws_sdk_route53::Client,
    zone_id: &str,
    n: &str,
    t: aws_sdk_route53::types::RrType,
) -> Vec<String> {
    let r = c
        .list_resource_record_sets()
        .hosted_zone_id(zone_id)
        .send()
        .await
        .unwrap();
    let mut v: Vec<String> = r
        .resource_record_sets()
        .iter()
        .filter(|s| s.name() == n && *s.r#type() == t)
        .flat_map(|s| s.resource_records().iter().map(|r| r.value().to_string()))
        .collect();
    v.sort();
    v
}

fn reconciler(provider: Arc<dyn Provider>) -> Reconciler {
    Reconciler {
        zone: name("example.test"),
        provider,
        ttl: 30,
        verify: vec![],
        verify_timeout: Duration::from_secs(1),
        refresh: Duration::from_secs(300),
    }
}

fn desired(r: &Reconciler, pairs: &[(&str, &str)]) -> BTreeMap<Key, RrSet> {
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
    r.desired(&m)
}

/// The ACME DNS-01 TXT records through Route 53 (moto): set, replaced, removed (a DELETE that
/// names the record set as it is), and the foreign TXT at the site's name untouched.
#[test]
fn moto_acme_challenge_records_come_and_go() {
    use aws_sdk_route53::types::RrType;
    let moto = Moto::start();
    let endpoint = format!("http://{}", moto.addr);
    let rt = rt();
    let setup = sdk(&endpoint);
    let zone_id = rt.block_on(setup_zone(&setup));
    let p = Route53::new(&settings(&endpoint), TIMEOUT);
    common::challenge_records_round_trip(&p, |n| {
        let quoted = rt.block_on(values(&setup, &zone_id, &format!("{n}."), RrType::Txt));
        quoted
            .iter()
            .map(|v| v.trim_matches('"').to_string())
            .collect()
    });
}

#[test]
fn moto_create_update_idempotent_batch_untouched() {
    use aws_sdk_route53::types::RrType;
    let moto = Moto::start();
    let endpoint = format!("http://{}", moto.addr);
    let rt = rt();
    let setup = sdk(&endpoint);
    let zone_id = rt.block_on(setup_zone(&setup));
    let calls = Arc::new(AtomicUsize::new(0));
    let r = reconciler(Arc::new(Counting(
        Arc::new(Route53::new(&settings(&endpoint), TIMEOUT)),
        calls.clone(),
    )));

    let want = desired(
        &r,
        &[
            ("www.example.test", "192.0.2.10"),
            ("example.test", "192.0.2.10"),
            ("www.example.test", "2001:db8::10"),
        ],
    );
    let mut known = None;
    match rt.block_on(r.pass(&want, &mut known)).unwrap() {
        Pass::Applied(v) => assert!(
            v.iter().all(|(_, o, _)| *o == Outcome::Applied) && v.len() == 3,
            "{v:?}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one ChangeResourceRecordSets for the batch"
    );
    assert_eq!(
        rt.block_on(values(&setup, &zone_id, "www.example.test.", RrType::A)),
        ["192.0.2.10"]
    );
    assert_eq!(
        rt.block_on(values(&setup, &zone_id, "www.example.test.", RrType::Aaaa)),
        ["2001:db8::10"]
    );
    let owner = rt.block_on(values(
        &setup,
        &zone_id,
        "_understudy.www.example.test.",
        RrType::Txt,
    ));
    assert!(owner[0].contains("heritage=understudy"), "{owner:?}");
    // Issue 11, item 11: the marker is read back; a record set someone else made has none.
    let keys = [
        (name("www.example.test"), RecordType::A),
        (name("mail.example.test"), RecordType::A),
    ];
    let marked = rt
        .block_on(r.provider.marked(&name("example.test"), &keys))
        .unwrap();
    assert_eq!(marked.into_iter().collect::<Vec<_>>(), [keys[0].clone()]);

    // Idempotent: a fresh read, and no ChangeResourceRecordSets.
    let mut fresh = None;
    assert_eq!(
        rt.block_on(r.pass(&want, &mut fresh)).unwrap(),
        Pass::InSync
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Update, then 100 names at once: one call each.
    let want2 = desired(
        &r,
        &[
            ("www.example.test", "192.0.2.20"),
            ("example.test", "192.0.2.10"),
            ("www.example.test", "2001:db8::10"),
        ],
    );
    rt.block_on(r.pass(&want2, &mut known)).unwrap();
    assert_eq!(
        rt.block_on(values(&setup, &zone_id, "www.example.test.", RrType::A)),
        ["192.0.2.20"]
    );
    let names: Vec<String> = (0..100).map(|i| format!("site{i}.example.test")).collect();
    let many = desired(
        &r,
        &names
            .iter()
            .map(|n| (n.as_str(), "192.0.2.1"))
            .collect::<Vec<_>>(),
    );
    let before = calls.load(Ordering::SeqCst);
    let mut k2 = None;
    rt.block_on(r.pass(&many, &mut k2)).unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        before + 1,
        "100 changes in one batch"
    );
    assert_eq!(
        rt.block_on(values(&setup, &zone_id, "site99.example.test.", RrType::A)),
        ["192.0.2.1"]
    );

    // Not ours: untouched.
    assert_eq!(
        rt.block_on(values(&setup, &zone_id, "www.example.test.", RrType::Txt)),
        ["\"not managed by understudy\""]
    );
    assert_eq!(
        rt.block_on(values(&setup, &zone_id, "example.test.", RrType::Mx)),
        ["10 mail.example.test."]
    );
    assert_eq!(
        rt.block_on(values(&setup, &zone_id, "mail.example.test.", RrType::A)),
        ["192.0.2.25"]
    );
    assert!(rt
        .block_on(r.provider.check(&name("example.test")))
        .unwrap()
        .contains("readable"));
    assert!(matches!(
        rt.block_on(r.provider.check(&name("nosuch.test"))),
        Err(ProviderError::ZoneNotFound(_))
    ));
}

#[test]
fn endpoint_cut_mid_run_latest_value_lands() {
    use aws_sdk_route53::types::RrType;
    let moto = Moto::start();
    let relay = Relay::start(moto.addr);
    let setup = sdk(&format!("http://{}", moto.addr));
    let zone_id = rt().block_on(setup_zone(&setup));
    let r = reconciler(Arc::new(Route53::new(
        &settings(&format!("http://{}", relay.addr)),
        TIMEOUT,
    )));
    let mut provider = (relay, setup, zone_id);
    common::latest_value_lands_after_outage(
        &mut provider,
        r,
        |(_, setup, zone)| rt().block_on(values(setup, zone, "www.example.test.", RrType::A)),
        |(relay, _, _)| relay.set_up(false),
        |(relay, _, _)| relay.set_up(true),
    );
}

/// A Route 53 stand-in that records requests and answers from a script.
/// (method, path, headers, body) of one recorded request.
type Recorded = (String, String, BTreeMap<String, String>, String);

struct Recorder {
    addr: std::net::SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    _rt: tokio::runtime::Runtime,
}

#[derive(Clone, Copy, PartialEq)]
enum Script {
    PendingThenInsync,
    PendingForever,
    BadToken,
}

impl Recorder {
    fn start(script: Script) -> Recorder {
        use http_body_util::{BodyExt, Full};
        let requests: Arc<Mutex<Vec<_>>> = Arc::default();
        let log = requests.clone();
        let (addr, rt) = crate::common::http_server(
            move |req: hyper::Request<hyper::body::Incoming>| {
                let log = log.clone();
                async move {
                    let method = req.method().to_string();
                    let path = req.uri().path().to_string();
                    let headers: BTreeMap<String, String> = req
                        .headers()
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                        .collect();
                    let body = String::from_utf8_lossy(
                        &req.into_body().collect().await.unwrap().to_bytes(),
                    )
                    .to_string();
                    let polls = {
                        let mut l = log.lock().unwrap();
                        l.push((method.clone(), path.clone(), headers, body));
                        l.iter()
                            .filter(|(m, p, _, _)| m == "GET" && p.contains("/change/"))
                            .count()
                    };
                    let ns = "https://route53.amazonaws.com/doc/2013-04-01/";
                    let (status, xml) = if script == Script::BadToken {
                        (403, format!("<ErrorResponse xmlns=\"{ns}\"><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message></Error><RequestId>r1</RequestId></ErrorResponse>"))
                    } else if path.ends_with("/rrset/") || path.ends_with("/rrset") {
                        (200, format!("<ChangeResourceRecordSetsResponse xmlns=\"{ns}\"><ChangeInfo><Id>/change/C2UNDERSTUDY</Id><Status>PENDING</Status><SubmittedAt>2026-11-24T00:00:00Z</SubmittedAt></ChangeInfo></ChangeResourceRecordSetsResponse>"))
                    } else {
                        let status = if script == Script::PendingThenInsync && polls >= 2 {
                            "INSYNC"
                        } else {
                            "PENDING"
                        };
                        (200, format!("<GetChangeResponse xmlns=\"{ns}\"><ChangeInfo><Id>/change/C2UNDERSTUDY</Id><Status>{status}</Status><SubmittedAt>2026-11-24T00:00:00Z</SubmittedAt></ChangeInfo></GetChangeResponse>"))
                    };
                    let mut resp = hyper::Response::new(Full::new(bytes::Bytes::from(xml)));
                    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                    resp.headers_mut()
                        .insert("content-type", "text/xml".parse().unwrap());
                    resp
                }
            },
        );
        Recorder {
            addr,
            requests,
            _rt: rt,
        }
    }
}

fn recorder_provider(rec: &Recorder, confirm: Duration) -> Route53 {
    Route53::new(
        &Route53Config {
            hosted_zone_id: Some("/hostedzone/Z0UNDERSTUDY".into()),
            confirm_timeout: confirm,
            ..settings(&format!("http://{}", rec.addr))
        },
        TIMEOUT,
    )
}

fn one_change() -> Vec<RrSet> {
    vec![RrSet::new(
        name("www.example.test"),
        RecordType::A,
        30,
        vec!["192.0.2.10".parse().unwrap()],
    )]
}

#[test]
fn requests_are_sigv4_signed_and_pending_is_polled_until_insync() {
    let rec = Recorder::start(Script::PendingThenInsync);
    let p = recorder_provider(&rec, Duration::from_secs(20));
    let out = rt()
        .block_on(p.apply(&name("example.test"), &one_change()))
        .unwrap();
    assert_eq!(out, [Outcome::Applied]);
    let reqs = rec.requests.lock().unwrap();
    let (method, path, headers, body) = &reqs[0];
    assert_eq!(
        (method.as_str(), path.as_str()),
        ("POST", "/2013-04-01/hostedzone/Z0UNDERSTUDY/rrset")
    );
    let auth = &headers["authorization"];
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDUNDERSTUDYTEST/"),
        "{auth}"
    );
    assert!(auth.contains("/us-east-1/route53/aws4_request"), "{auth}");
    assert!(
        auth.contains("SignedHeaders=") && auth.contains("host") && auth.contains("x-amz-date"),
        "{auth}"
    );
    let sig = auth.split("Signature=").nth(1).unwrap();
    assert!(
        sig.len() == 64 && sig.chars().all(|c| c.is_ascii_hexdigit()),
        "{sig}"
    );
    assert!(headers.contains_key("x-amz-date"));
    assert!(
        !auth.contains("understudy-test-secret") && !body.contains("understudy-test-secret"),
        "the secret never travels"
    );
    assert!(
        body.contains("<Action>UPSERT</Action>")
            && body.contains("<Name>www.example.test.</Name>")
            && body.contains("<Value>192.0.2.10</Value>"),
        "{body}"
    );
    assert!(
        body.contains("_understudy.www.example.test."),
        "ownership TXT in the same batch: {body}"
    );
    let polls: Vec<_> = reqs
        .iter()
        .filter(|(m, p, _, _)| m == "GET" && p == "/2013-04-01/change/C2UNDERSTUDY")
        .collect();
    assert_eq!(polls.len(), 2, "PENDING once, then INSYNC");
    assert!(polls
        .iter()
        .all(|(_, _, h, _)| h["authorization"].starts_with("AWS4-HMAC-SHA256")));
}

#[test]
fn change_pending_past_the_bound_could_not_confirm() {
    let rec = Recorder::start(Script::PendingForever);
    let p = recorder_provider(&rec, Duration::from_secs(3));
    let out = rt()
        .block_on(p.apply(&name("example.test"), &one_change()))
        .unwrap();
    match &out[0] {
        Outcome::CouldNotConfirm(why) => assert!(
            why.contains("C2UNDERSTUDY") && why.contains("PENDING"),
            "{why}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn invalid_token_is_a_clear_credentials_error() {
    let rec = Recorder::start(Script::BadToken);
    let p = recorder_provider(&rec, Duration::from_secs(3));
    let rt = rt();
    let err = rt
        .block_on(p.apply(&name("example.test"), &one_change()))
        .unwrap_err();
    assert!(matches!(err, ProviderError::Auth(_)), "{err}");
    assert!(err.to_string().contains("InvalidClientTokenId"), "{err}");
    assert!(!err.is_transient());
    assert!(matches!(
        rt.block_on(p.check(&name("example.test"))),
        Err(ProviderError::Auth(_))
    ));
}
