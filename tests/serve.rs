//! The standby server (issue 6, begun) against a crawled fixture: the original URLs answered as
//! the origin answered them, by Host name, with 304s, ranges, HEAD, hostile targets refused,
//! and a snapshot switch under load without a failed request.

use crate::common;

/// SHA-256 in hex (the body store's content address).
fn sha256_hex(b: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, b)
        .as_ref()
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::fixture::Fixture;
use common::Daemon;

struct Server(Child, SocketAddr);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(d: &Daemon) -> Server {
    let addr: SocketAddr = format!("127.0.0.1:{}", common::free_port("127.0.0.1"))
        .parse()
        .unwrap();
    let child = common::cmd()
        .args(["serve", "--listen", &addr.to_string(), "-c"])
        .arg(d.config_path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    common::wait_until(Duration::from_secs(10), "the standby server", || {
        TcpStream::connect(addr).is_ok()
    });
    Server(child, addr)
}

fn setup() -> (Fixture, Daemon, Server) {
    let f = Fixture::start();
    let d = Daemon::prepare(&f.config("scheduled = false"));
    let (code, out, err) = d.cli(&["mirror", "fixture"]);
    assert_eq!(code, 0, "{out}{err}");
    let s = serve(&d);
    (f, d, s)
}

/// A client that sends every name to the standby server, as DNS would after a failover.
fn client(s: &Server) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .resolve("www.fixture.test", s.1)
        .resolve("fixture.test", s.1)
        .resolve("unknown.test", s.1)
        .build()
        .unwrap()
}

fn url(s: &Server, host: &str, path: &str) -> String {
    format!("http://{host}:{}{path}", s.1.port())
}

/// One raw request (the target exactly as given, no client normalisation); the status code.
fn raw_status(addr: SocketAddr, target: &str) -> (u16, String) {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = c.write_all(
        format!("GET {target} HTTP/1.1\r\nHost: www.fixture.test\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, text)
}

#[test]
fn answers_the_original_urls_as_the_origin_did() {
    let (f, _d, s) = setup();
    let rt = common::rt();
    let c = client(&s);
    rt.block_on(async {
        let get = |host: &'static str, path: &'static str| c.get(url(&s, host, path)).send();
        // By Host name: the domain and the alias; an unknown name gets a plain 404.
        let about = get("www.fixture.test", "/about").await.unwrap();
        assert_eq!(about.status(), 200);
        assert_eq!(about.headers()["content-type"], "text/html");
        assert!(about.headers()["x-understudy-snapshot"]
            .to_str()
            .unwrap()
            .starts_with("standby copy "));
        let etag = about.headers()["etag"].to_str().unwrap().to_string();
        let lm = about.headers()["last-modified"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(
            about.bytes().await.unwrap(),
            std::fs::read(f.www.join("about.html")).unwrap(),
            "byte for byte"
        );
        assert_eq!(get("fixture.test", "/about").await.unwrap().status(), 200);
        assert_eq!(get("unknown.test", "/about").await.unwrap().status(), 404);
        // Query strings, redirects, real 404s.
        let js = get("www.fixture.test", "/js/app.js?v=3").await.unwrap();
        assert_eq!(
            (js.status().as_u16(), js.text().await.unwrap()),
            (200, "console.log('app v3');".to_string())
        );
        assert_eq!(
            get("www.fixture.test", "/js/app.js?v=4")
                .await
                .unwrap()
                .status(),
            404,
            "another query is another URL"
        );
        let old = get("www.fixture.test", "/old").await.unwrap();
        assert_eq!(old.status(), 301);
        assert!(old.headers()["location"]
            .to_str()
            .unwrap()
            .ends_with("/about"));
        assert_eq!(
            get("www.fixture.test", "/missing").await.unwrap().status(),
            404
        );
        assert_eq!(
            get("www.fixture.test", "/q?a=1&b=2")
                .await
                .unwrap()
                .status(),
            200
        );
        // 304 for both validators.
        let r = c
            .get(url(&s, "www.fixture.test", "/about"))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 304);
        let r = c
            .get(url(&s, "www.fixture.test", "/about"))
            .header("if-modified-since", &lm)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 304);
        let r = c
            .get(url(&s, "www.fixture.test", "/about"))
            .header("if-none-match", "\"other\"")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // Range and HEAD.
        let r = c
            .get(url(&s, "www.fixture.test", "/about"))
            .header("range", "bytes=0-3")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 206);
        assert_eq!(r.bytes().await.unwrap(), "<h1>".as_bytes());
        let r = c
            .get(url(&s, "www.fixture.test", "/about"))
            .header("range", "bytes=9999-")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 416);
        let r = c
            .head(url(&s, "www.fixture.test", "/about"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-length"]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
                > 0
        );
        assert!(r.bytes().await.unwrap().is_empty());
        let r = c
            .post(url(&s, "www.fixture.test", "/about"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405);
    });
    // curl, as a visitor's tool would ask.
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--resolve"])
        .arg(format!("www.fixture.test:{}:127.0.0.1", s.1.port()))
        .arg(url(&s, "www.fixture.test", "/blog/post-1"))
        .output()
        .expect("curl is installed by .ci/run");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
}

/// One raw request, exactly these bytes; the status code.
fn raw_request(addr: SocketAddr, request: &str) -> u16 {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = c.write_all(request.as_bytes());
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    String::from_utf8_lossy(&out)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// RFC 9112 §3.2: two Host headers, or none on HTTP/1.1, is a 400 (issue 11, item 5).
#[test]
fn two_host_headers_or_none_on_http_1_1_is_a_bad_request() {
    let (_f, _d, s) = setup();
    let two = "GET /about HTTP/1.1\r\nHost: www.fixture.test\r\nHost: unknown.test\r\nConnection: close\r\n\r\n";
    assert_eq!(raw_request(s.1, two), 400, "two Host headers");
    let two_same = "GET /about HTTP/1.1\r\nHost: www.fixture.test\r\nHost: www.fixture.test\r\nConnection: close\r\n\r\n";
    assert_eq!(
        raw_request(s.1, two_same),
        400,
        "two Host headers, even equal ones"
    );
    assert_eq!(
        raw_request(s.1, "GET /about HTTP/1.1\r\nConnection: close\r\n\r\n"),
        400,
        "no Host on HTTP/1.1"
    );
    // Controls: one Host is answered; HTTP/1.0 may omit it (no site matches it then).
    assert_eq!(
        raw_request(
            s.1,
            "GET /about HTTP/1.1\r\nHost: www.fixture.test\r\nConnection: close\r\n\r\n"
        ),
        200
    );
    assert_eq!(raw_request(s.1, "GET /about HTTP/1.0\r\n\r\n"), 404);
}

#[test]
fn hostile_request_targets_never_reach_a_file() {
    let (_f, _d, s) = setup();
    let nasty = [
        "/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "/..%2f..%2f..%2fetc%2fpasswd",
        "/....//....//etc/passwd",
        "/..\\..\\etc\\passwd",
        "/%5c..%5c..%5cetc%5cpasswd",
        "/about%00.html",
        "/about/..%00/",
        "//etc/passwd",
        "/%252e%252e/etc/passwd",
        "/.%2e/.%2e/etc/passwd",
        "/%c0%ae%c0%ae/etc/passwd",
        "/img/../../../../root/.ssh/id_rsa",
        "/snapshots/current",
        "/bodies/00/00",
        "/understudy.db",
        "/mirror/fixture/current",
        "etc/passwd",
        "*",
        "http://evil.test/etc/passwd",
    ];
    for t in nasty {
        let (code, text) = raw_status(s.1, t);
        assert!(matches!(code, 400 | 404), "{t}: {code}\n{text}");
        assert!(!text.contains("root:x:0"), "{t} leaked /etc/passwd");
    }
    // A target of absurd length is refused, not looked up.
    let (code, _) = raw_status(s.1, &format!("/{}", "a".repeat(20_000)));
    assert!(matches!(code, 400 | 414 | 431), "{code}");
}

#[test]
fn a_snapshot_switch_under_load_fails_no_request() {
    let (f, d, s) = setup();
    let rt = common::rt();
    let c = client(&s);
    let u = url(&s, "www.fixture.test", "/about");
    // Eight clients asking in a loop while a new snapshot is published underneath them.
    let load: Vec<_> = (0..8)
        .map(|_| {
            let c = c.clone();
            let u = u.clone();
            rt.spawn(async move {
                let mut seen = Vec::new();
                let start = Instant::now();
                while start.elapsed() < Duration::from_secs(4) {
                    let r = c.get(&u).send().await.expect("no failed request");
                    assert_eq!(r.status(), 200);
                    seen.push(r.text().await.unwrap());
                }
                seen
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    f.set(
        "about.html",
        "<h1>About, new edition</h1><a href=\"/\">home</a>",
    );
    let (code, out, err) = d.cli(&["mirror", "fixture"]);
    assert_eq!(code, 0, "{out}{err}");
    let seen: Vec<String> = load
        .into_iter()
        .flat_map(|h| rt.block_on(h).unwrap())
        .collect();
    assert!(
        seen.iter().any(|b| b.contains("new edition")),
        "the new snapshot was served"
    );
    assert!(seen.first().is_some_and(|b| !b.contains("new edition")));
    assert!(
        seen.iter().all(|b| b.starts_with("<h1>About")),
        "every answer is one snapshot's or the other's"
    );
}

#[test]
fn text_is_compressed_for_clients_that_take_it() {
    use std::io::Read;
    let (f, d, s) = setup();
    // Compressed at publish time, beside the bodies: the index page's brotli form is stored.
    let origin_hash = sha256_hex(&std::fs::read(f.www.join("index.html")).unwrap());
    let stored = d
        .data_dir()
        .join("mirror/fixture/bodies")
        .join(&origin_hash[..2])
        .join(format!("{origin_hash}.br"));
    assert!(stored.exists(), "{} is not stored", stored.display());
    let rt = common::rt();
    let c = client(&s);
    let origin = std::fs::read(f.www.join("index.html")).unwrap();
    rt.block_on(async {
        let get = |accept: &'static str| {
            c.get(url(&s, "www.fixture.test", "/"))
                .header("accept-encoding", accept)
                .send()
        };
        let br = get("gzip, deflate, br").await.unwrap();
        assert_eq!(br.headers()["content-encoding"], "br");
        assert_eq!(br.headers()["vary"], "Accept-Encoding");
        assert!(
            br.headers()["etag"].to_str().unwrap().starts_with("W/"),
            "the compressed representation's tag is weak"
        );
        let packed = br.bytes().await.unwrap();
        assert!(packed.len() < origin.len());
        assert_eq!(
            packed,
            std::fs::read(&stored).unwrap(),
            "the stored form is what is served"
        );
        let mut plain = Vec::new();
        brotli::Decompressor::new(&packed[..], 4096)
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, origin, "brotli decodes to the origin's bytes");
        let gz = get("gzip;q=1, br;q=0").await.unwrap();
        assert_eq!(gz.headers()["content-encoding"], "gzip");
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&gz.bytes().await.unwrap()[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, origin);
        let none = get("identity").await.unwrap();
        assert!(none.headers().get("content-encoding").is_none());
        assert_eq!(none.bytes().await.unwrap(), origin);
        // Ranges are of the identity body; images are not compressed again.
        let r = c
            .get(url(&s, "www.fixture.test", "/"))
            .header("accept-encoding", "br")
            .header("range", "bytes=0-9")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 206);
        assert!(r.headers().get("content-encoding").is_none());
        assert_eq!(r.bytes().await.unwrap(), &origin[..10]);
    });
}

/// With `[standby]` the daemon itself serves the copies; its first crawl happens at start (no
/// snapshot yet), and the banner marks HTML pages as the read-only copy.
#[test]
fn the_daemon_serves_the_copy_with_a_banner() {
    let f = Fixture::start();
    let config = f.config("").replace(
        "[[sites]]",
        "[standby]\nlisten = [\"127.0.0.1:0\"]\nbanner = true\n[[sites]]",
    );
    let mut d = Daemon::start(&config);
    let addr = d.info.standby[0];
    let s = Server(Command::new("true").spawn().unwrap(), addr);
    let rt = common::rt();
    let c = client(&s);
    let page = rt.block_on(async {
        let start = Instant::now();
        loop {
            let r = c
                .get(url(&s, "www.fixture.test", "/about"))
                .send()
                .await
                .unwrap();
            if r.status() == 200 {
                break r;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no snapshot served: {}",
                r.status()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    assert!(
        page.headers()["etag"].to_str().unwrap().starts_with("W/"),
        "the bannered page is another representation"
    );
    let text = rt.block_on(page.text()).unwrap();
    assert!(text.contains("read-only copy of the site as of"), "{text}");
    assert!(
        text.contains("<h1>About</h1>"),
        "the page itself is intact: {text}"
    );
    let img = rt.block_on(async {
        c.get(url(&s, "www.fixture.test", "/img/a.png"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
    });
    assert_eq!(
        img,
        "image bytes of a.png".as_bytes(),
        "only HTML gets the banner"
    );
    assert_eq!(d.stop(), 0);
}
