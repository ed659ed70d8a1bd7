//! Mirror benchmark, driven by `bench/mirror` (not a test).
//!
//! A generated site (N pages, default 2,000, each ~4 KB with a stylesheet and images; a
//! sitemap with `<lastmod>`, as static site generators and CMSs write one) is served by nginx
//! **through a delaying proxy that adds 20 ms to every response**, as a home origin behind a
//! residential line is not on loopback. The proxy counts requests and body bytes. In the same
//! run, three tools mirror it:
//! - `wget --mirror -p -k -E` (the user's recipe today; one connection);
//! - `wget2 --mirror -p -k -E --max-threads=8`;
//! - `understudy mirror` at concurrency 8.
//!
//! With `h2` as the third argument the proxy speaks HTTPS (a CA of the run's own) with HTTP/2
//! offered by ALPN, and only the first crawl of wget2 and understudy is measured.
//!
//! Three rounds: a first crawl into an empty directory/store, a second of the unchanged site,
//! and a third after 1% of the pages changed (content and sitemap `<lastmod>`). For each tool
//! and round it prints wall time, pages/s (site pages / wall time), requests, bytes and, in the
//! third round, how many of the changed pages the copy has in their new version.

// A benchmark uses a few of the test helpers.
#[allow(dead_code)]
#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

const NGINX: &str = r#"
    root {DIR}/www;
    types { text/html html; text/css css; image/png png; application/xml xml; }
    default_type application/octet-stream;
    index index.html;
    location = /sitemap.xml { try_files /sitemap-$host.xml =404; }
    location / { try_files $uri $uri.html $uri/ =404; }
"#;

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    bytes: AtomicU64,
}

/// The delaying proxy: forwards each request to nginx over kept-alive connections, waits
/// `delay`, then answers with nginx's status, headers and body.
async fn proxy(
    listener: tokio::net::TcpListener,
    upstream: SocketAddr,
    delay: Duration,
    counters: Arc<Counters>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let client = client.clone();
        let counters = counters.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let client = client.clone();
                let counters = counters.clone();
                async move {
                    counters.requests.fetch_add(1, Ordering::Relaxed);
                    let (parts, _) = req.into_parts();
                    let pq = parts
                        .uri
                        .path_and_query()
                        .map(|p| p.as_str())
                        .unwrap_or("/");
                    let mut headers = reqwest::header::HeaderMap::new();
                    // HTTP/2 carries the host in `:authority`; nginx wants it as Host.
                    if let Some(a) = parts.uri.authority() {
                        if let Ok(v) = reqwest::header::HeaderValue::from_str(a.as_str()) {
                            headers.insert(reqwest::header::HOST, v);
                        }
                    }
                    for (k, v) in parts.headers.iter() {
                        if !matches!(
                            k.as_str(),
                            "connection" | "keep-alive" | "transfer-encoding" | "te" | "upgrade"
                        ) {
                            headers.append(k.clone(), v.clone());
                        }
                    }
                    let method =
                        reqwest::Method::from_bytes(parts.method.as_str().as_bytes()).unwrap();
                    let started = Instant::now();
                    let resp = client
                        .request(method, format!("http://{upstream}{pq}"))
                        .headers(headers)
                        .send()
                        .await;
                    let mut out = hyper::Response::builder();
                    let body = match resp {
                        Ok(r) => {
                            out = out.status(r.status().as_u16());
                            for (k, v) in r.headers().iter() {
                                if !matches!(
                                    k.as_str(),
                                    "connection" | "keep-alive" | "transfer-encoding"
                                ) {
                                    out = out.header(k.as_str(), v.as_bytes());
                                }
                            }
                            r.bytes().await.unwrap_or_default()
                        }
                        Err(_) => {
                            out = out.status(502);
                            Bytes::new()
                        }
                    };
                    counters
                        .bytes
                        .fetch_add(body.len() as u64, Ordering::Relaxed);
                    tokio::time::sleep(delay.saturating_sub(started.elapsed())).await;
                    Ok::<_, Infallible>(out.body(Full::new(body)).unwrap())
                }
            });
            match tls {
                // HTTPS with HTTP/2 and HTTP/1.1 by ALPN.
                Some(acceptor) => {
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
                }
                None => {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                }
            }
        });
    }
}

fn write(root: &Path, rel: &str, body: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

const LOREM: &str =
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. ";

fn page(i: usize, n: usize, marker: &str) -> String {
    let mut links = String::new();
    for j in [i + 1, i + 2, i + 3, 2 * i + 1, 2 * i + 2] {
        if j < n {
            links.push_str(&format!("<li><a href=\"/p/{j}\">Page {j}</a></li>\n"));
        }
    }
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Page {i}</title>\n<link rel=\"stylesheet\" href=\"/css/site.css\">\n</head><body>\n<header><img src=\"/img/logo.png\" alt=\"logo\"><a href=\"/\">Home</a></header>\n<main><h1>Page {i}</h1><p>{marker}</p>\n<img src=\"/img/{}.png\" alt=\"\">\n<p>{}</p>\n<ul>{links}</ul></main></body></html>\n",
        i % 100,
        LOREM.repeat(25)
    )
}

fn sitemap(host: &str, n: usize, lastmod: &dyn Fn(usize) -> &'static str) -> String {
    let mut s =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n");
    s.push_str(&format!(
        "<url><loc>http://{host}/</loc><lastmod>2026-10-01</lastmod></url>\n"
    ));
    for i in 0..n {
        s.push_str(&format!(
            "<url><loc>http://{host}/p/{i}</loc><lastmod>{}</lastmod></url>\n",
            lastmod(i)
        ));
    }
    s.push_str("</urlset>\n");
    s
}

struct Run {
    secs: f64,
    requests: u64,
    bytes: u64,
    picked_up: Option<usize>,
}

fn timed(counters: &Counters, cmd: &mut Command) -> Run {
    counters.requests.store(0, Ordering::Relaxed);
    counters.bytes.store(0, Ordering::Relaxed);
    let start = Instant::now();
    let out = cmd.output().expect("tool starts");
    let secs = start.elapsed().as_secs_f64();
    if let Ok(r) = serde_json::from_slice::<serde_json::Value>(&out.stdout) {
        eprintln!(
            "  understudy: {} in {} ms by its own clock, {} reused, {} not modified",
            r["outcome"], r["duration_ms"], r["reused"], r["not_modified"]
        );
    }
    if !out.status.success() && out.status.code() != Some(8) {
        // wget exits 8 when some URL answered an error (our generated site has none, but a
        // 404 sitemap for another host counts); anything else is a failed run.
        eprintln!(
            "{:?} exited {}: {}",
            cmd,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Run {
        secs,
        requests: counters.requests.load(Ordering::Relaxed),
        bytes: counters.bytes.load(Ordering::Relaxed),
        picked_up: None,
    }
}

/// How many of the changed pages' markers appear in the files under `dir`.
fn markers_in_files(dir: &Path, changed: &[usize]) -> usize {
    let mut text = String::new();
    for p in common::files_under(dir) {
        if p.extension().is_some_and(|x| x == "html") {
            text.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
        }
    }
    changed
        .iter()
        .filter(|i| text.contains(&format!("CHANGED-{i}-")))
        .count()
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let delay = Duration::from_millis(
        std::env::args()
            .nth(2)
            .and_then(|a| a.parse().ok())
            .unwrap_or(20),
    );
    for tool in ["wget", "wget2"] {
        common::need(tool, tool);
    }
    let bin = PathBuf::from("target/release/understudy");
    assert!(
        bin.exists(),
        "build the release binary first (bench/mirror does)"
    );

    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    for i in 0..n {
        write(
            &www,
            &format!("p/{i}.html"),
            page(i, n, "original").as_bytes(),
        );
    }
    let index: String = (0..10)
        .map(|j| format!("<a href=\"/p/{j}\">Page {j}</a>\n"))
        .collect();
    write(
        &www,
        "index.html",
        format!(
            "<!doctype html><link rel=\"stylesheet\" href=\"/css/site.css\"><h1>Home</h1>{index}"
        )
        .as_bytes(),
    );
    write(
        &www,
        "css/site.css",
        b"body { background: url(/img/bg.png) } header { height: 40px }\n",
    );
    for i in 0..100 {
        write(
            &www,
            &format!("img/{i}.png"),
            &vec![(i % 251) as u8; 8 * 1024],
        );
    }
    write(&www, "img/logo.png", &[7u8; 4096]);
    write(&www, "img/bg.png", &[9u8; 16 * 1024]);
    let urls = n + 1 + 1 + 100 + 2;
    let nginx = common::Nginx::start_custom(
        "127.0.0.1",
        tempfile::tempdir().unwrap(),
        &NGINX.replace("{DIR}", &dir.path().display().to_string()),
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let counters = Arc::new(Counters::default());
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let proxy_addr = listener.local_addr().unwrap();
    // `h2` as the third argument: the proxy speaks HTTPS with HTTP/2 (and HTTP/1.1) by ALPN,
    // with a certificate from a CA of the run's own, and only the first crawl is measured.
    let h2 = std::env::args().nth(3).is_some_and(|a| a == "h2");
    let ca_file = dir.path().join("ca.pem");
    let tls = h2.then(|| {
        let ca = common::ca::Ca::new();
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let (cert, key) = ca.issue_names(&["www.bench.test", "127.0.0.1"]);
        use rustls::pki_types::pem::PemObject;
        let chain: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(cert.as_bytes())
            .map(Result::unwrap)
            .collect();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    });
    rt.spawn(proxy(listener, nginx.addr, delay, counters.clone(), tls));
    let port = proxy_addr.port();
    let write_sitemaps = |lastmod: &dyn Fn(usize) -> &'static str| {
        write(
            &www,
            "sitemap-www.bench.test.xml",
            sitemap(&format!("www.bench.test:{port}"), n, lastmod).as_bytes(),
        );
        write(
            &www,
            "sitemap-127.0.0.1.xml",
            sitemap(&format!("127.0.0.1:{port}"), n, lastmod).as_bytes(),
        );
    };
    write_sitemaps(&|_| "2026-10-01");

    let config = common::one_site_config(
        &dir.path().join("data").display().to_string(),
        "bench",
        port,
        if h2 { "https" } else { "http" },
        &if h2 {
            format!("ca_file = \"{}\"", ca_file.display())
        } else {
            String::new()
        },
        "concurrency = 8",
    );
    std::fs::write(dir.path().join("understudy.toml"), config).unwrap();
    // BENCH_SKIP_WGET=1 leaves the slow single-connection wget out (for quick iterations): its
    // rows and the ratios that need it are then not printed.
    let skip_wget = std::env::var_os("BENCH_SKIP_WGET").is_some() || h2;
    let wget_dir = dir.path().join("wget");
    let wget2_dir = dir.path().join("wget2");
    let url = format!("{}://127.0.0.1:{port}/", if h2 { "https" } else { "http" });

    println!(
        "mirror benchmark: {n} pages ({urls} URLs), nginx behind a proxy adding {} ms per response{}",
        delay.as_millis(),
        if h2 { ", over HTTPS with HTTP/2 offered (first crawl only)" } else { "" }
    );
    let changed: Vec<usize> = (0..n.div_ceil(100)).map(|k| (k * 97 + 50) % n).collect();
    let mut results: Vec<(&str, &str, Run)> = Vec::new();
    let rounds: &[&str] = if h2 {
        &["first"]
    } else {
        &["first", "unchanged", "1% changed"]
    };
    for &round in rounds {
        if round == "1% changed" {
            std::thread::sleep(Duration::from_millis(1100)); // a new Last-Modified second
            for &i in &changed {
                write(
                    &www,
                    &format!("p/{i}.html"),
                    page(i, n, &format!("CHANGED-{i}-")).as_bytes(),
                );
            }
            write_sitemaps(&|i| {
                if changed.contains(&i) {
                    "2026-11-24"
                } else {
                    "2026-10-01"
                }
            });
        }
        let mut wget = Command::new("wget");
        wget.args([
            "--mirror",
            "-p",
            "-k",
            "-E",
            "-q",
            "-e",
            "robots=off",
            "--no-proxy",
            "-P",
        ])
        .arg(&wget_dir)
        .arg(&url);
        if !skip_wget {
            let mut r = timed(&counters, &mut wget);
            if round == "1% changed" {
                r.picked_up = Some(markers_in_files(&wget_dir, &changed));
            }
            results.push(("wget", round, r));
        }

        let mut wget2 = common::wget2_mirror(&wget2_dir, &url);
        if h2 {
            // wget2 offers HTTP/2 by ALPN by default; it only needs to trust the run's CA.
            wget2.arg(format!("--ca-certificate={}", ca_file.display()));
        }
        let mut r = timed(&counters, &mut wget2);
        if round == "1% changed" {
            r.picked_up = Some(markers_in_files(&wget2_dir, &changed));
        }
        results.push(("wget2", round, r));

        let mut us = Command::new(&bin);
        us.args(["mirror", "bench", "--json", "-c"])
            .arg(dir.path().join("understudy.toml"));
        let mut r = timed(&counters, &mut us);
        if round == "1% changed" {
            let store = understudy::mirror::snapshot::SnapshotStore::open(
                &dir.path().join("data"),
                "bench",
            )
            .unwrap();
            let m = store.current().unwrap().expect("published");
            let found = changed
                .iter()
                .filter(|i| {
                    m.entries
                        .get(&format!("http://www.bench.test:{port}/p/{i}"))
                        .and_then(|e| e.body.as_ref())
                        .is_some_and(|h| {
                            String::from_utf8_lossy(&store.body(h).unwrap())
                                .contains(&format!("CHANGED-{i}-"))
                        })
                })
                .count();
            r.picked_up = Some(found);
        }
        results.push(("understudy", round, r));
    }

    println!(
        "\n{:<12} {:<11} {:>8} {:>9} {:>9} {:>12} {:>10}",
        "tool", "round", "secs", "pages/s", "requests", "bytes", "changes"
    );
    for (tool, round, r) in &results {
        println!(
            "{:<12} {:<11} {:>8.2} {:>9.1} {:>9} {:>12} {:>10}",
            tool,
            round,
            r.secs,
            n as f64 / r.secs,
            r.requests,
            r.bytes,
            r.picked_up
                .map(|p| format!("{p}/{}", changed.len()))
                .unwrap_or_default()
        );
    }
    let find = |tool: &str, round: &str| {
        results
            .iter()
            .find(|(t, r, _)| *t == tool && *r == round)
            .map(|(_, _, r)| r)
    };
    let get = |tool: &str, round: &str| find(tool, round).expect("measured");
    let us1 = get("understudy", "first");
    if h2 {
        println!(
            "\nratio (understudy / reference):\n  first crawl over HTTP/2 pages/s: vs wget2 {:.2}x (target: clearly > 1x)",
            get("wget2", "first").secs / us1.secs
        );
        drop(nginx);
        return;
    }
    let us2 = get("understudy", "unchanged");
    let us3 = get("understudy", "1% changed");
    println!("\nratios (understudy / reference):");
    match find("wget", "first") {
        Some(w) => println!(
            "  first crawl pages/s: vs wget {:.2}x (target >= 6x, limit 8x), vs wget2 {:.2}x (target > 1x)",
            w.secs / us1.secs,
            get("wget2", "first").secs / us1.secs
        ),
        None => println!(
            "  first crawl pages/s: vs wget2 {:.2}x (target > 1x); wget skipped (BENCH_SKIP_WGET)",
            get("wget2", "first").secs / us1.secs
        ),
    }
    println!(
        "  unchanged re-crawl: {:.2}% of the first crawl's bytes (target < 2%), {:.3} of its time (target < 0.2)",
        us2.bytes as f64 * 100.0 / us1.bytes.max(1) as f64,
        us2.secs / us1.secs
    );
    for tool in ["wget", "wget2"]
        .into_iter()
        .filter(|t| find(t, "first").is_some())
    {
        println!(
            "  {tool} unchanged re-crawl for comparison: {:.1}% of its first crawl's bytes, {:.3} of its time",
            get(tool, "unchanged").bytes as f64 * 100.0 / get(tool, "first").bytes.max(1) as f64,
            get(tool, "unchanged").secs / get(tool, "first").secs
        );
    }
    println!(
        "  1% change picked up: understudy {}/{} (target all)",
        us3.picked_up.unwrap_or(0),
        changed.len()
    );
    drop(nginx);
}
