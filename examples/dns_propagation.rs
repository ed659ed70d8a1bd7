//! DNS propagation benchmark, driven by `bench/dns-propagation` (not a test).
//!
//! For each provider that can run here — the built-in server, BIND and Knot (RFC 2136 + TSIG),
//! PowerDNS (HTTP API), Route 53 (moto; it has no DNS server, so "answering" means GetChange
//! INSYNC and the record readable) — it times N single-record changes from "desired value
//! changed" to "the authoritative server answers it" (the reconciler's own verification asks
//! the server directly), and counts the provider calls for 100 sites changing at once.
//! Side by side, BIND's `nsupdate` does the same changes against the same BIND and Knot.
//! Cloudflare has no server that can run here and is left out.

// A benchmark uses a few of the test helpers.
#[allow(dead_code)]
#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::authdns::{AuthServer, Kind};
use hickory_proto::rr::{Name, RecordType};
use understudy::dns::provider::{Key, Outcome, Provider, ProviderError, RrSet};
use understudy::dns::ManagedRecords;
use understudy::reconcile::{Pass, Reconciler};

struct Counting {
    inner: Arc<dyn Provider>,
    reads: AtomicUsize,
    writes: AtomicUsize,
}

#[async_trait::async_trait]
impl Provider for Counting {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn ttl_for(&self, wanted: u32) -> u32 {
        self.inner.ttl_for(wanted)
    }
    async fn read(&self, zone: &Name, keys: &[Key]) -> Result<BTreeMap<Key, RrSet>, ProviderError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.read(zone, keys).await
    }
    async fn apply(&self, zone: &Name, changes: &[RrSet]) -> Result<Vec<Outcome>, ProviderError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.apply(zone, changes).await
    }
    async fn set_txt(
        &self,
        zone: &Name,
        name: &Name,
        values: &[String],
    ) -> Result<(), ProviderError> {
        self.inner.set_txt(zone, name, values).await
    }
    async fn marked(
        &self,
        zone: &Name,
        keys: &[Key],
    ) -> Result<std::collections::BTreeSet<Key>, ProviderError> {
        self.inner.marked(zone, keys).await
    }
    async fn check(&self, zone: &Name) -> Result<String, ProviderError> {
        self.inner.check(zone).await
    }
}

fn name(s: &str) -> Name {
    Name::from_ascii(format!("{s}.")).unwrap()
}

fn managed(names: &[String], last_octet: u32) -> ManagedRecords {
    let mut m = ManagedRecords::default();
    let ip = format!("192.0.2.{}", last_octet % 250 + 1).parse().unwrap();
    for n in names {
        m.set(name(n), RecordType::A, vec![ip]);
    }
    m
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

struct Row {
    provider: String,
    p50_ms: f64,
    p95_ms: f64,
    writes_for_100: usize,
    reads_for_100: usize,
}

/// N single changes through `Reconciler::pass` (known state kept, as in the daemon), then one
/// change of 100 names.
async fn measure(
    label: &str,
    provider: Arc<dyn Provider>,
    verify: Vec<SocketAddr>,
    changes: usize,
) -> Row {
    let counting = Arc::new(Counting {
        inner: provider,
        reads: AtomicUsize::new(0),
        writes: AtomicUsize::new(0),
    });
    let r = Reconciler {
        zone: name("example.test"),
        provider: counting.clone(),
        ttl: 60,
        verify,
        verify_timeout: Duration::from_secs(10),
        refresh: Duration::from_secs(3_600),
    };
    let one = vec!["www.example.test".to_string()];
    let mut known = None;
    r.pass(&r.desired(&managed(&one, 0)), &mut known)
        .await
        .expect("first pass");
    let mut times = vec![];
    for i in 1..=changes {
        let desired = r.desired(&managed(&one, i as u32));
        let t0 = Instant::now();
        match r.pass(&desired, &mut known).await.expect("pass") {
            Pass::Applied(v) => assert!(
                v.iter().all(|(_, o, ok)| *o == Outcome::Applied && *ok),
                "{label}: {v:?}"
            ),
            Pass::InSync => panic!("{label}: nothing changed"),
        }
        times.push(t0.elapsed().as_secs_f64() * 1_000.0);
    }
    let hundred: Vec<String> = (0..100).map(|i| format!("site{i}.example.test")).collect();
    let mut known = None;
    r.pass(&r.desired(&managed(&hundred, 7)), &mut known)
        .await
        .expect("100 names, first");
    let (w0, r0) = (
        counting.writes.load(Ordering::SeqCst),
        counting.reads.load(Ordering::SeqCst),
    );
    r.pass(&r.desired(&managed(&hundred, 8)), &mut known)
        .await
        .expect("100 names");
    let (w1, r1) = (
        counting.writes.load(Ordering::SeqCst),
        counting.reads.load(Ordering::SeqCst),
    );
    Row {
        provider: label.to_string(),
        p50_ms: pct(&mut times.clone(), 50.0),
        p95_ms: pct(&mut times, 95.0),
        writes_for_100: w1 - w0,
        reads_for_100: r1 - r0,
    }
}

/// The reference: `nsupdate -y` sending one change, then asking the server until it answers.
fn nsupdate_times(server: &AuthServer, changes: usize) -> (f64, f64, usize) {
    let key = format!("hmac-sha256:understudy:{}", server.key_secret);
    let send = |body: String| {
        let mut child = Command::new("nsupdate")
            .args(["-y", &key])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nsupdate (bind9-dnsutils)");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "nsupdate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let head = format!(
        "server {} {}\nzone example.test\n",
        server.addr.ip(),
        server.addr.port()
    );
    let mut times = vec![];
    for i in 1..=changes {
        let ip = format!("198.51.100.{}", i % 250 + 1);
        let t0 = Instant::now();
        send(format!("{head}update delete nsu.example.test. A\nupdate add nsu.example.test. 60 A {ip}\nsend\n"));
        while server.rdata("nsu.example.test", RecordType::A) != [ip.clone()] {
            std::thread::sleep(Duration::from_millis(1));
        }
        times.push(t0.elapsed().as_secs_f64() * 1_000.0);
    }
    // 100 names in one nsupdate "send": one UPDATE message.
    let mut body = head.clone();
    for i in 0..100 {
        body.push_str(&format!("update delete nsu{i}.example.test. A\nupdate add nsu{i}.example.test. 60 A 198.51.100.1\n"));
    }
    body.push_str("send\n");
    send(body);
    (pct(&mut times.clone(), 50.0), pct(&mut times, 95.0), 1)
}

fn main() {
    let changes: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut rows = vec![];
    let mut refs = vec![];

    // Built-in server.
    {
        let dir = tempfile::tempdir().unwrap();
        let cfg = understudy::config::parse(
            std::path::Path::new("bench.toml"),
            "[[dns.zones]]\nname = \"example.test\"\n",
        )
        .unwrap();
        let handle = understudy::dns::server::ZoneHandle::default();
        let builtin = Arc::new(understudy::dns::builtin::Builtin::new(
            cfg.dns.zones.clone(),
            60,
            handle.clone(),
            understudy::store::Store::open(dir.path()).unwrap(),
        ));
        builtin.publish_all(&ManagedRecords::default()).unwrap();
        let server = rt
            .block_on(understudy::dns::server::DnsServer::bind(
                &["127.0.0.1:0".parse().unwrap()],
                handle,
                vec![],
                Default::default(),
                vec![],
                Default::default(),
            ))
            .unwrap();
        let addr = server.addrs[0];
        let stop = tokio_util::sync::CancellationToken::new();
        let udp: Vec<_> = server
            .udp_workers(&stop)
            .unwrap()
            .into_iter()
            .map(|w| std::thread::spawn(move || w.run()))
            .collect();
        let running = rt.spawn(server.run(stop.clone()));
        rows.push(rt.block_on(measure("built-in server", builtin, vec![addr], changes)));
        stop.cancel();
        let _ = rt.block_on(running);
        for t in udp {
            let _ = t.join();
        }
    }
    for (kind, label) in [
        (Kind::Bind, "BIND 9 (RFC 2136)"),
        (Kind::Knot, "Knot (RFC 2136)"),
    ] {
        let server = AuthServer::start(kind, "hmac-sha256");
        let key =
            understudy::config::parse_bind_key(&std::fs::read_to_string(&server.key_file).unwrap())
                .unwrap();
        let p = Arc::new(
            understudy::dns::provider::rfc2136::Rfc2136::new(
                &understudy::config::Rfc2136Config {
                    server: server.addr,
                    key: Some(key),
                },
                Duration::from_secs(2),
            )
            .unwrap(),
        );
        rows.push(rt.block_on(measure(label, p, vec![server.addr], changes)));
        let (p50, p95, calls) = nsupdate_times(&server, changes);
        refs.push((
            format!("nsupdate → {}", label.split(' ').next().unwrap()),
            p50,
            p95,
            calls,
        ));
    }
    {
        let pdns = common::pdns::Pdns::start();
        let p = Arc::new(
            understudy::dns::provider::powerdns::PowerDns::new(
                &understudy::config::PowerDnsConfig {
                    url: pdns.api.clone(),
                    server_id: "localhost".into(),
                    api_key: understudy::config::Secret(common::pdns::API_KEY.into()),
                },
                Duration::from_secs(3),
            )
            .unwrap(),
        );
        rows.push(rt.block_on(measure("PowerDNS (HTTP API)", p, vec![pdns.dns], changes)));
    }
    {
        let moto = common::moto::Moto::start();
        let endpoint = format!("http://{}", moto.addr);
        rt.block_on(common::moto::create_zone(
            &common::moto::sdk(&endpoint),
            "bench",
        ));
        let settings = understudy::config::Route53Config {
            hosted_zone_id: None,
            region: "us-east-1".into(),
            endpoint: Some(endpoint),
            profile: None,
            credentials: Some((
                "AKIDBENCH".into(),
                understudy::config::Secret("bench".into()),
            )),
            confirm_timeout: Duration::from_secs(60),
        };
        rows.push(rt.block_on(measure(
            "Route 53 (moto, to INSYNC)",
            Arc::new(understudy::dns::provider::route53::Route53::new(
                &settings,
                Duration::from_secs(5),
            )),
            vec![],
            changes,
        )));
    }

    println!();
    println!("DNS propagation: desired change -> the authoritative server answers it ({changes} changes each; p50/p95 in ms)");
    println!("and provider calls when 100 sites change at once (state already known, as in the running daemon)\n");
    println!(
        "{:<30} {:>9} {:>9} {:>16} {:>14}",
        "provider", "p50", "p95", "write calls/100", "read calls/100"
    );
    for r in &rows {
        println!(
            "{:<30} {:>7.1}ms {:>7.1}ms {:>16} {:>14}",
            r.provider, r.p50_ms, r.p95_ms, r.writes_for_100, r.reads_for_100
        );
    }
    println!("\nreference tool, same servers:");
    for (label, p50, p95, calls) in &refs {
        println!(
            "{:<30} {:>7.1}ms {:>7.1}ms {:>16} {:>14}",
            label, p50, p95, calls, "-"
        );
    }
    for (row, (label, p50, _, _)) in rows.iter().skip(1).zip(&refs) {
        println!("ratio p50 understudy/{label} = {:.2}", row.p50_ms / p50);
    }
    println!(
        "\nCloudflare: no real server can run here (only the test fake), so it is not measured."
    );
}
