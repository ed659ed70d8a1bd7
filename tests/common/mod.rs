//! Helpers shared by the integration tests: the real daemon as a child process, real nginx
//! origins, a silent-drop server, and DNS questions. Everything listens on 127.0.0.0/8 with
//! ephemeral ports and is stopped by PID when the helper is dropped.

pub mod authdns;
pub mod browser;
pub mod ca;
pub mod chaosnet;
pub mod cloudflare_fake;
pub mod faultproxy;
pub mod fixture;
pub mod moto;
pub mod netns;
pub mod pdns;
pub mod pebble;
pub mod secondary;

use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::rr::{Name, RecordType};
use understudy::app::RuntimeInfo;
use understudy::dns::client;

/// The binary under test (integration tests), or the release build (benchmarks).
pub const BIN: &str = match option_env!("CARGO_BIN_EXE_understudy") {
    Some(b) => b,
    None => "target/release/understudy",
};

/// The one way tests run the binary: `understudy` with no standard input (as in CI).
pub fn cmd() -> Command {
    let mut c = Command::new(BIN);
    c.stdin(Stdio::null());
    c
}

/// A free TCP port on `ip` (bound and released; good enough on loopback).
pub fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The one poll-until-deadline of the tests: asks `f` every 20 ms until it gives `Some`, and
/// returns that and how long it took. After `limit` the test fails with `what()` (evaluated
/// then, so it can show the current state or the daemon's log).
pub fn wait<T>(
    limit: Duration,
    what: impl FnOnce() -> String,
    mut f: impl FnMut() -> Option<T>,
) -> (T, Duration) {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return (v, start.elapsed());
        }
        if start.elapsed() >= limit {
            panic!("timed out after {limit:?} waiting for {}", what());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// [`wait`] for a condition; returns how long it took.
pub fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    wait(limit, || what.to_string(), || f().then_some(())).1
}

/// A one-thread runtime of a test's own and a TCP listener on 127.0.0.1 (an ephemeral port)
/// bound in it: what every in-test server ([`http_server`], the moto relay) starts from.
pub fn loopback_listener() -> (tokio::runtime::Runtime, tokio::net::TcpListener, SocketAddr) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    (rt, listener, addr)
}

/// An HTTP/1.1 server on 127.0.0.1 (an ephemeral port) answering every request with
/// `handle`, on a runtime of its own: it stops when the returned runtime is dropped. The
/// documented fakes and receivers of the tests are built on it.
pub fn http_server<H, Fut>(handle: H) -> (SocketAddr, tokio::runtime::Runtime)
where
    H: Fn(hyper::Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = hyper::Response<http_body_util::Full<bytes::Bytes>>>
        + Send
        + 'static,
{
    let (rt, listener, addr) = loopback_listener();
    rt.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handle = handle.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let answer = handle(req);
                    async move { Ok::<_, std::convert::Infallible>(answer.await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, rt)
}

/// The understudy daemon, started with `run -c <dir>/understudy.toml`.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
    pub info: RuntimeInfo,
}

impl Daemon {
    /// Writes `config` (with `{DATA}` replaced by the data directory) and starts the daemon.
    pub fn start(config: &str) -> Daemon {
        let mut d = Daemon::prepare(config);
        d.spawn();
        d
    }

    /// Writes the config but does not start the daemon (`restart_after_stop` starts it).
    pub fn prepare(config: &str) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let mut text = config.replace("{DATA}", &dir.path().join("data").display().to_string());
        // Traffic stays on this machine: no checks of the default public references, unless
        // the test sets its own.
        if !text.contains("[watcher]") {
            text.push('\n');
            text.push_str(NO_REFERENCES);
        }
        std::fs::write(dir.path().join("understudy.toml"), text).unwrap();
        let info = RuntimeInfo {
            pid: 0,
            dns: vec![],
            api: "127.0.0.1:1".parse().unwrap(),
            started_at: 0,
            push: None,
            standby: vec![],
            standby_https: vec![],
        };
        Daemon {
            dir,
            child: None,
            info,
        }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("understudy.toml")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The event log's rows of one kind, newest first (`GET /api/v1/events?kind=`).
    pub fn events_of(&self, kind: &str) -> Vec<serde_json::Value> {
        let api = understudy::api::ApiClient::plain(self.info.api, Some(self.token()));
        let path = format!("/api/v1/events?kind={kind}&limit=100");
        let (code, body) = rt()
            .block_on(understudy::api::call(&api, hyper::Method::GET, &path))
            .unwrap();
        assert!(
            code.is_success(),
            "{code}: {}",
            String::from_utf8_lossy(&body)
        );
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        v["events"].as_array().unwrap().clone()
    }

    /// The running daemon's own API token (`<data_dir>/api.token`, a write token).
    pub fn token(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("api.token"))
            .expect("the daemon writes api.token at its start")
            .trim()
            .to_string()
    }

    /// Reads the runtime file again (a reload binds anew); true when it is a newer start's.
    pub fn reload_info(&mut self) -> bool {
        match RuntimeInfo::read(&self.data_dir()) {
            Some(info) if info.started_at != self.info.started_at => {
                self.info = info;
                true
            }
            _ => false,
        }
    }

    fn spawn(&mut self) {
        let _ = std::fs::remove_file(self.data_dir().join("daemon.json"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .unwrap();
        let child = cmd()
            .args(["run", "-c"])
            .arg(self.config_path())
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let start = Instant::now();
        loop {
            if let Some(info) = RuntimeInfo::read(&self.data_dir()) {
                self.info = info;
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("daemon exited with {status} at start:\n{}", self.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "daemon did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    pub fn dns(&self) -> SocketAddr {
        self.info.dns[0]
    }

    /// SIGTERM, and wait for a clean exit; returns the exit code.
    pub fn stop(&mut self) -> i32 {
        let mut child = self.child.take().expect("running");
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            if start.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                panic!(
                    "daemon did not stop within 10 s of SIGTERM:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, as a crash or an OOM kill would: no shutdown code runs.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        let _ = child.kill();
        let _ = child.wait();
    }

    pub fn restart(&mut self) {
        assert_eq!(self.stop(), 0, "clean exit on SIGTERM:\n{}", self.log());
        self.spawn();
    }

    /// Starts the daemon again after [`Daemon::stop`].
    pub fn restart_after_stop(&mut self) {
        assert!(self.child.is_none());
        self.spawn();
    }

    /// Runs the CLI against this daemon's config; returns (exit code, stdout, stderr).
    /// `understudy mirror SITE --json`: the exit code and the crawl's report.
    pub fn crawl_json(&self, site: &str) -> (i32, serde_json::Value) {
        let (code, out, err) = self.cli(&["mirror", "crawl", site, "--json"]);
        let report = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("no JSON report ({e}): {out}\n{err}"));
        (code, report)
    }

    /// The published snapshot of `site`.
    pub fn snapshot(&self, site: &str) -> understudy::mirror::snapshot::Manifest {
        understudy::mirror::snapshot::SnapshotStore::open(&self.data_dir(), site)
            .unwrap()
            .current()
            .unwrap()
            .unwrap_or_else(|| panic!("no published snapshot of {site}"))
    }

    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = cmd()
            .args(args)
            .arg("-c")
            .arg(self.config_path())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    /// The site's status as JSON, from `understudy status --json`.
    /// `status --json` as JSON, for a test that looks at the wire form.
    pub fn status(&self) -> serde_json::Value {
        let (code, out, err) = self.cli(&["status", "--json"]);
        assert_eq!(code, 0, "status failed: {err}");
        serde_json::from_str(&out).unwrap()
    }

    /// `status --json` as the API's own type: a field renamed or retyped fails to compile here.
    pub fn report(&self) -> understudy::api::StatusReply {
        serde_json::from_value(self.status()).expect("status --json is a StatusReply")
    }

    /// The first site's phase as `status` writes it ("failed-over").
    pub fn phase(&self) -> String {
        let phase = self.report().sites[0].phase;
        serde_json::to_value(phase)
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn answer(&self, name: &str) -> Vec<IpAddr> {
        answer(self.dns(), name)
    }

    pub fn wait_standby_ready(&self) {
        wait_until(Duration::from_secs(10), "standby ready", || {
            self.report().sites[0].standby_ready
        });
    }

    /// With the standby known ready, stops `primary` and waits until the site's answer is the
    /// standby (127.0.0.2).
    pub fn fail_over(&self, primary: &mut Nginx) {
        self.wait_standby_ready();
        primary.kill();
        self.wait_answer("www.example.test", "127.0.0.2", Duration::from_secs(10));
    }

    /// Waits until `name` answers `want`; returns how long it took.
    pub fn wait_answer(&self, name: &str, want: &str, limit: Duration) -> Duration {
        let want: IpAddr = want.parse().unwrap();
        wait(
            limit,
            || {
                format!(
                    "{name} to answer {want}; status: {}\n{}",
                    self.status(),
                    self.log()
                )
            },
            || (self.answer(name) == [want]).then_some(()),
        )
        .1
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- daemon log ----\n{}", self.log());
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The A answer for `name` from `server`, asked with understudy's hickory-proto client.
pub fn answer(server: SocketAddr, name: &str) -> Vec<IpAddr> {
    query(server, name, RecordType::A)
        .map(|r| r.addrs)
        .unwrap_or_default()
}

pub fn query(server: SocketAddr, name: &str, t: RecordType) -> anyhow::Result<client::Reply> {
    let n = Name::from_ascii(format!("{}.", name.trim_end_matches('.'))).unwrap();
    rt().block_on(client::query(server, &n, t, Duration::from_secs(2)))
}

/// A config of one site `name` (`www.NAME.test` in the built-in zone `NAME.test`) whose primary
/// is 127.0.0.1:`port`, for crawls: `data_dir` as given (`{DATA}` for [`Daemon::prepare`]),
/// `scheme` for the probe (and so the crawl), and extra lines for `[sites.probe]` and
/// `[sites.mirror]`.
#[allow(
    dead_code,
    reason = "each of the tests and benches that include this module uses some"
)]
pub fn one_site_config(
    data_dir: &str,
    name: &str,
    port: u16,
    scheme: &str,
    probe: &str,
    mirror: &str,
) -> String {
    format!(
        "data_dir = \"{data_dir}\"\n[dns]\nlisten = [\"127.0.0.1:0\"]\n[[dns.zones]]\nname = \"{name}.test\"\n\
         [api]\nlisten = \"127.0.0.1:0\"\n\
         [[sites]]\nname = \"{name}\"\ndomain = \"www.{name}.test\"\nprimary = \"127.0.0.1:{port}\"\nstandby = \"127.0.0.2\"\n\
         [sites.probe]\nscheme = \"{scheme}\"\nport = {port}\n{probe}\n[sites.mirror]\n{mirror}\n"
    )
}

/// Every file under `dir`, at any depth (the benches count and read crawlers' output).
#[allow(
    dead_code,
    reason = "the benches in examples/ use it; the tests do not"
)]
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files
}

/// The benches' reference crawler: `wget2 --mirror -p -k -E` with 8 threads, into `dir`.
#[allow(
    dead_code,
    reason = "the benches in examples/ use it; the tests do not"
)]
pub fn wget2_mirror(dir: &Path, url: &str) -> Command {
    let mut c = Command::new("wget2");
    c.args([
        "--mirror",
        "-p",
        "-k",
        "-E",
        "-q",
        "--robots=off",
        "--no-proxy",
        "--max-threads=8",
        "--tries=2",
        "--timeout=10",
        "-P",
    ])
    .arg(dir)
    .arg(url);
    c
}

/// nginx as a real origin, in the foreground as a child process, on `ip:port`.
pub struct Nginx {
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    child: Option<Child>,
    label: String,
    tls: bool,
    /// Serve `dir/www` as text/plain instead of a fixed page.
    files: bool,
    /// A server block body of the test's own instead (`{DIR}` is the nginx directory).
    custom: Option<String>,
    /// Offer HTTP/2 (with TLS, by ALPN).
    http2: bool,
    /// Run inside this network namespace (its address is one of the namespace's).
    netns: Option<String>,
    /// More of the `http` block (an `upstream`, say).
    http_extra: String,
}

pub fn need(tool: &str, package: &str) {
    let found = std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p)
            .chain([PathBuf::from("/usr/sbin")])
            .any(|d| d.join(tool).exists())
    });
    assert!(found, "`{tool}` is not installed: run `apt-get install {package}` (or `bash .ci/run`, which installs every test dependency)");
}

fn nginx_bin() -> PathBuf {
    need("nginx", "nginx-light");
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("nginx"))
}

impl Nginx {
    pub fn start(ip: &str, label: &str) -> Nginx {
        Nginx::start_at(SocketAddr::new(ip.parse().unwrap(), free_port(ip)), label)
    }

    /// nginx on a given address (several origins on one port, different 127.0.0.x).
    pub fn start_at(addr: SocketAddr, label: &str) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let mut n = Nginx {
            dir,
            addr,
            child: None,
            label: label.to_string(),
            tls: false,
            files: false,
            custom: None,
            http2: false,
            netns: None,
            http_extra: String::new(),
        };
        n.restart();
        n
    }

    /// nginx serving the files in `self.dir/www` as text/plain (an IP echo service whose
    /// answer a test changes by rewriting a file).
    pub fn start_files(ip: &str) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("www")).unwrap();
        let addr = SocketAddr::new(ip.parse().unwrap(), free_port(ip));
        let mut n = Nginx {
            dir,
            addr,
            child: None,
            label: "files".to_string(),
            tls: false,
            files: true,
            custom: None,
            http2: false,
            netns: None,
            http_extra: String::new(),
        };
        n.restart();
        n
    }

    /// nginx with the test's own server block body (locations); `{DIR}` in it is replaced by
    /// nginx's directory, where the test puts its files.
    pub fn start_custom(ip: &str, dir: tempfile::TempDir, server_body: &str) -> Nginx {
        Nginx::custom(ip, dir, server_body, false)
    }

    /// [`Nginx::start_custom`] over TLS with the given certificate and key (PEM), offering
    /// HTTP/2 and HTTP/1.1.
    pub fn start_custom_h2(
        ip: &str,
        dir: tempfile::TempDir,
        server_body: &str,
        cert: &str,
        key: &str,
    ) -> Nginx {
        std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
        std::fs::write(dir.path().join("key.pem"), key).unwrap();
        Nginx::custom(ip, dir, server_body, true)
    }

    /// [`Nginx::start_custom`] inside the network namespace `netns`, on `addr` there (the
    /// namespace's own address and any port: nothing else listens in it).
    #[allow(dead_code, reason = "the proxy tests use it")]
    pub fn start_custom_in(
        netns: &str,
        addr: SocketAddr,
        dir: tempfile::TempDir,
        server_body: &str,
    ) -> Nginx {
        Nginx::plain_custom(addr, dir, server_body, Some(netns.to_string()), "")
    }

    /// [`Nginx::start_custom`] on a given address, with `http_extra` added to the `http` block
    /// (the proxy bench's reference: an `upstream` with a backup).
    #[allow(dead_code, reason = "the proxy bench uses it")]
    pub fn start_custom_at(
        addr: SocketAddr,
        dir: tempfile::TempDir,
        server_body: &str,
        http_extra: &str,
    ) -> Nginx {
        Nginx::plain_custom(addr, dir, server_body, None, http_extra)
    }

    /// A plain-HTTP nginx with a server body of the test's own, started.
    fn plain_custom(
        addr: SocketAddr,
        dir: tempfile::TempDir,
        server_body: &str,
        netns: Option<String>,
        http_extra: &str,
    ) -> Nginx {
        let body = server_body.replace("{DIR}", &dir.path().display().to_string());
        let mut n = Nginx {
            dir,
            addr,
            child: None,
            label: "custom".to_string(),
            tls: false,
            files: false,
            custom: Some(body),
            http2: false,
            netns,
            http_extra: http_extra.to_string(),
        };
        n.restart();
        n
    }

    fn custom(ip: &str, dir: tempfile::TempDir, server_body: &str, h2: bool) -> Nginx {
        let addr = SocketAddr::new(ip.parse().unwrap(), free_port(ip));
        let body = server_body.replace("{DIR}", &dir.path().display().to_string());
        let mut n = Nginx {
            dir,
            addr,
            child: None,
            label: "custom".to_string(),
            tls: h2,
            files: false,
            custom: Some(body),
            http2: h2,
            netns: None,
            http_extra: String::new(),
        };
        n.restart();
        n
    }

    /// Writes the body served at `/name`.
    pub fn set_file(&self, name: &str, body: &str) {
        let tmp = self.dir.path().join("www").join(format!(".{name}.tmp"));
        std::fs::write(&tmp, body).unwrap();
        std::fs::rename(&tmp, self.dir.path().join("www").join(name)).unwrap();
    }

    /// nginx serving HTTPS with the given certificate and key (PEM).
    pub fn start_tls(ip: &str, label: &str, cert: &str, key: &str) -> Nginx {
        let port = free_port(ip);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
        std::fs::write(dir.path().join("key.pem"), key).unwrap();
        let mut n = Nginx {
            dir,
            addr: SocketAddr::new(ip.parse().unwrap(), port),
            child: None,
            label: label.to_string(),
            tls: true,
            files: false,
            custom: None,
            http2: false,
            netns: None,
            http_extra: String::new(),
        };
        n.restart();
        n
    }

    fn write_conf(&self) -> PathBuf {
        let d = self.dir.path().display();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\nerror_log {d}/error.log;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             {extra}\x20 server {{\n    listen {addr}{ssl};\n{tls}    location / {{ default_type text/html; return 200 \"<h1>{label}</h1>\\n\"; }}\n  }}\n}}\n",
            addr = self.addr,
            extra = self.http_extra,
            label = self.label,
            ssl = match (self.tls, self.http2) {
                (true, true) => " ssl http2",
                (true, false) => " ssl",
                _ => "",
            },
            tls = if self.tls { format!("    ssl_certificate {d}/cert.pem;\n    ssl_certificate_key {d}/key.pem;\n") } else { String::new() },
        );
        let conf = if self.files {
            conf.replace(
                &format!(
                    "location / {{ default_type text/html; return 200 \"<h1>{}</h1>\\n\"; }}",
                    self.label
                ),
                &format!("location / {{ root {d}/www; default_type text/plain; }}"),
            )
        } else {
            conf
        };
        let conf = match &self.custom {
            Some(body) => conf.replace(
                &format!(
                    "    location / {{ default_type text/html; return 200 \"<h1>{}</h1>\\n\"; }}\n",
                    self.label
                ),
                body,
            ),
            None => conf,
        };
        let path = self.dir.path().join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        path
    }

    /// (Re)starts nginx on the same address and waits until it accepts connections.
    pub fn restart(&mut self) {
        let conf = self.write_conf();
        let mut cmd = match &self.netns {
            None => Command::new(nginx_bin()),
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(nginx_bin());
                c
            }
        };
        let child = cmd
            .arg("-p")
            .arg(self.dir.path())
            .arg("-e")
            .arg(self.dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        wait(
            Duration::from_secs(10),
            || {
                format!(
                    "nginx to start on {}: {}",
                    self.addr,
                    std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
                )
            },
            || match &self.netns {
                None => TcpStream::connect_timeout(&self.addr, Duration::from_millis(200))
                    .ok()
                    .map(drop),
                Some(ns) => faultproxy::connects_in(ns, self.addr).then_some(()),
            },
        );
    }

    /// Kills nginx by PID: from now on connections are refused.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Accepts TCP connections and never answers: a hung server or a dropping firewall.
pub struct Silent {
    pub addr: SocketAddr,
    _thread: std::thread::JoinHandle<()>,
}

impl Silent {
    pub fn start(ip: &str) -> Silent {
        let l = TcpListener::bind((ip, 0)).unwrap();
        let addr = l.local_addr().unwrap();
        let thread = std::thread::spawn(move || {
            let mut held = vec![];
            for s in l.incoming().flatten() {
                held.push(s);
            }
        });
        Silent {
            addr,
            _thread: thread,
        }
    }
}

/// A config for one site `www.example.test` (+ alias `example.test`) with fast probes.
/// The start every daemon config in the tests shares: the data directory (`{DATA}`, see
/// [`Daemon::start`]), the built-in DNS server and the control API on ephemeral loopback ports,
/// and the built-in `zones`. Ends with a newline.
pub fn preamble(zones: &[&str]) -> String {
    let mut s = "data_dir = \"{DATA}\"\n[dns]\nlisten = [\"127.0.0.1:0\"]\n".to_string();
    for z in zones {
        s.push_str(&format!("[[dns.zones]]\nname = \"{z}\"\n"));
    }
    s.push_str("[api]\nlisten = \"127.0.0.1:0\"\n");
    s.push_str(NO_REFERENCES);
    s
}

/// Every test's daemon checks no public references: its traffic stays on this machine.
pub const NO_REFERENCES: &str = "[watcher]\nreferences = []\n";

pub fn one_site(primary: SocketAddr, standby: SocketAddr, extra_probe: &str) -> String {
    format!(
        r#"data_dir = "{{DATA}}"
[dns]
listen = ["127.0.0.1:0"]
ttl = 30
[[dns.zones]]
name = "example.test"
records = ["@ MX 10 mail", "mail A 192.0.2.25", "@ TXT \"v=spf1 -all\""]
[api]
listen = "127.0.0.1:0"
[watcher]
references = []
[[sites]]
name = "shop"
domain = "www.example.test"
aliases = ["example.test"]
primary = "{primary}"
standby = "{standby}"
[sites.probe]
scheme = "http"
interval = "200ms"
timeout = "300ms"
failures_to_down = 3
successes_to_up = 2
hold_down = "2s"
{extra_probe}
"#
    )
}

pub fn data_file(d: &Daemon) -> PathBuf {
    d.data_dir().join("understudy.db")
}

/// The provider goes away while the desired value of `www.example.test A` changes twice, then
/// comes back: the latest value must land (nothing lost, nothing stale). `read` gives the
/// values the provider holds; `cut` and `restore` take it away and bring it back.
pub fn latest_value_lands_after_outage<S>(
    server: &mut S,
    r: understudy::reconcile::Reconciler,
    read: impl Fn(&S) -> Vec<String>,
    cut: impl Fn(&mut S),
    restore: impl Fn(&mut S),
) {
    let name = Name::from_ascii("www.example.test.").unwrap();
    // The reconciler runs in the background while this thread plays with the provider.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut managed = understudy::dns::ManagedRecords::default();
    managed.set(
        name.clone(),
        RecordType::A,
        vec!["192.0.2.1".parse().unwrap()],
    );
    let (tx, rx) = tokio::sync::watch::channel(managed.clone());
    let cancel = tokio_util::sync::CancellationToken::new();
    let handle = rt.spawn(r.run(rx, cancel.clone()));
    let wait = |server: &S, want: &str| {
        wait(
            Duration::from_secs(30),
            || format!("{want} to land (holds {:?})", read(server)),
            || (read(server) == [want]).then_some(()),
        );
    };
    wait(server, "192.0.2.1");
    cut(server);
    for ip in ["192.0.2.2", "192.0.2.3"] {
        managed.set(name.clone(), RecordType::A, vec![ip.parse().unwrap()]);
        tx.send_replace(managed.clone());
        std::thread::sleep(Duration::from_millis(700));
    }
    restore(server);
    wait(server, "192.0.2.3");
    cancel.cancel();
    rt.block_on(handle).unwrap();
}

/// The ACME challenge TXT round trip every provider must pass, in zone `example.test` whose
/// `www` name holds a foreign TXT "not managed by understudy": two values set, replaced by
/// one, removed, the foreign record untouched. `txt(name)` reads the values (unquoted, any
/// order) straight from the provider's server.
pub fn challenge_records_round_trip(
    p: &dyn understudy::dns::provider::Provider,
    txt: impl Fn(&str) -> Vec<String>,
) {
    let rt = rt();
    let zone = Name::from_ascii("example.test.").unwrap();
    let at = Name::from_ascii("_acme-challenge.www.example.test.").unwrap();
    let sorted = |n: &str| {
        let mut v = txt(n);
        v.sort();
        v
    };
    rt.block_on(p.set_txt(&zone, &at, &["first-token".into(), "second-token".into()]))
        .unwrap();
    assert_eq!(
        sorted("_acme-challenge.www.example.test"),
        ["first-token", "second-token"]
    );
    rt.block_on(p.set_txt(&zone, &at, &["third-token".into()]))
        .unwrap();
    assert_eq!(sorted("_acme-challenge.www.example.test"), ["third-token"]);
    rt.block_on(p.set_txt(&zone, &at, &[])).unwrap();
    assert!(sorted("_acme-challenge.www.example.test").is_empty());
    // Removing what is not there is not an error.
    rt.block_on(p.set_txt(&zone, &at, &[])).unwrap();
    assert_eq!(sorted("www.example.test"), ["not managed by understudy"]);
}

/// A fully qualified name from "www.example.test".
pub fn name(s: &str) -> hickory_proto::rr::Name {
    hickory_proto::rr::Name::from_ascii(format!("{s}.")).unwrap()
}

/// The RRsets for (name, address) pairs, TTL 30, A or AAAA by the address.
pub fn desired(
    pairs: &[(&str, &str)],
) -> std::collections::BTreeMap<understudy::dns::provider::Key, understudy::dns::provider::RrSet> {
    pairs
        .iter()
        .map(|(n, ip)| {
            let ip: IpAddr = ip.parse().unwrap();
            let t = if ip.is_ipv4() {
                RecordType::A
            } else {
                RecordType::AAAA
            };
            let r = understudy::dns::provider::RrSet::new(name(n), t, 30, vec![ip]);
            (r.key(), r)
        })
        .collect()
}

/// How many changes a reconcile pass applied; each must be applied and confirmed.
pub fn applied(p: &understudy::reconcile::Pass) -> usize {
    use understudy::reconcile::Pass;
    match p {
        Pass::InSync => 0,
        Pass::Applied(v) => {
            assert!(
                v.iter()
                    .all(|(_, o, c)| *o == understudy::dns::provider::Outcome::Applied && *c),
                "{v:?}"
            );
            v.len()
        }
    }
}

/// User + system CPU time in ms of `pid` and its child processes that are still running
/// (nginx's workers).
#[allow(dead_code, reason = "the benches use it")]
pub fn cpu_ms(pid: u32) -> f64 {
    let ticks = |pid: &str| -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the parenthesised command: state is 3rd, utime 14th, stime 15th.
        let rest = stat.rsplit_once(')').map_or("", |r| r.1);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let get = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        get(11) + get(12)
    };
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    let total: f64 = ticks(&pid.to_string()) + children.split_whitespace().map(ticks).sum::<f64>();
    // USER_HZ is 100 on Linux.
    total * 10.0
}

/// What `wrk --latency` measured.
#[allow(dead_code, reason = "the benches use it")]
pub struct WrkFigures {
    pub rps: f64,
    /// As wrk prints them ("1.23ms").
    pub p50: String,
    pub p99: String,
}

/// `wrk` with `threads` threads and `conns` keep-alive connections for `secs` against `url`,
/// with `Host: host`.
#[allow(dead_code, reason = "the benches use it")]
pub fn wrk(url: &str, host: &str, secs: u32, threads: u32, conns: u32) -> WrkFigures {
    need("wrk", "wrk");
    let out = Command::new("wrk")
        .args([
            &format!("-t{threads}"),
            &format!("-c{conns}"),
            &format!("-d{secs}s"),
            "--latency",
            "-H",
            &format!("Host: {host}"),
            url,
        ])
        .output()
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    let pct = |p: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(p))
            .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string())
            .unwrap_or_default()
    };
    if rps == 0.0 {
        eprintln!("wrk said: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    WrkFigures {
        rps,
        p50: pct("50%"),
        p99: pct("99%"),
    }
}

/// h2load at `rate` requests/s in total over `conns` HTTP/1.1 connections for `secs`: the rate
/// it reached and the p50 and p99 request times in ms, from its per-request log.
#[allow(dead_code, reason = "the benches use it")]
pub fn fixed_rate(
    url: &str,
    host: &str,
    rate: f64,
    secs: u32,
    conns: u32,
    dir: &std::path::Path,
) -> (f64, f64, f64) {
    let mut times = fixed_rate_times(url, host, rate, secs, conns, dir);
    if times.is_empty() {
        return (0.0, f64::NAN, f64::NAN);
    }
    times.sort_by(f64::total_cmp);
    (
        times.len() as f64 / f64::from(secs),
        percentile(&times, 0.50),
        percentile(&times, 0.99),
    )
}

/// The `q` quantile of `sorted` (nearest rank below).
#[allow(dead_code, reason = "the benches use it")]
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q) as usize]
}

/// As [`fixed_rate`], but every successful request's time in ms, in the order h2load logged them.
#[allow(dead_code, reason = "the benches use it")]
pub fn fixed_rate_times(
    url: &str,
    host: &str,
    rate: f64,
    secs: u32,
    conns: u32,
    dir: &std::path::Path,
) -> Vec<f64> {
    need("h2load", "nghttp2-client");
    let log = dir.join("h2load.tsv");
    // h2load appends to its log.
    let _ = std::fs::remove_file(&log);
    let out = Command::new("h2load")
        .args([
            "--h1",
            "-t2",
            &format!("-c{conns}"),
            "-D",
            &secs.to_string(),
        ])
        .arg(format!("--rps={:.0}", (rate / f64::from(conns)).max(1.0)))
        .arg(format!("--log-file={}", log.display()))
        .args(["-H", &format!(":authority: {host}"), url])
        .output()
        .expect("h2load runs");
    let times: Vec<f64> = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let status = f.nth(1)?;
            let us: f64 = f.next()?.trim().parse().ok()?;
            (status == "200").then_some(us / 1000.0)
        })
        .collect();
    if times.is_empty() {
        eprintln!("h2load said: {}", String::from_utf8_lossy(&out.stdout));
    }
    times
}
