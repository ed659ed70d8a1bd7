//! `understudy demo`: the whole idea in under a minute, on loopback, with nothing installed.
//!
//! Starts a sample primary (127.0.0.1) and standby (127.0.0.2) web server, the daemon with the
//! built-in DNS server on an ephemeral port, then stops the primary, shows the DNS answer move
//! to the standby, restores the primary and shows the failback after the hold-down. Also home of
//! [`SampleServer`], the controllable origin the benchmarks use.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app;
use crate::control::SiteStatus;
use crate::dns::client;
use crate::dns::zone::fqdn;

/// How a [`SampleServer`] treats connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Answers every request with a small HTML page.
    Serving,
    /// Listener closed: connections are refused.
    Refusing,
    /// Accepts connections and never answers (a hung server, or a firewall that drops).
    Silent,
}

/// A tiny origin on a fixed address whose behaviour can be switched at once.
pub struct SampleServer {
    pub addr: SocketAddr,
    label: String,
    mode: Mode,
    stop: CancellationToken,
    tracker: TaskTracker,
}

impl SampleServer {
    pub async fn start(addr: SocketAddr, label: &str) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        let addr = listener.local_addr()?;
        let mut s = SampleServer {
            addr,
            label: label.to_string(),
            mode: Mode::Serving,
            stop: CancellationToken::new(),
            tracker: TaskTracker::new(),
        };
        s.spawn(listener, Mode::Serving);
        Ok(s)
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    fn spawn(&mut self, listener: TcpListener, mode: Mode) {
        let stop = CancellationToken::new();
        self.stop = stop.clone();
        self.mode = mode;
        let label = self.label.clone();
        let tracker = self.tracker.clone();
        self.tracker.spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    _ = stop.cancelled() => break,
                    r = listener.accept() => match r { Ok(c) => c, Err(_) => continue },
                };
                let (stop, label) = (stop.clone(), label.clone());
                tracker.spawn(async move {
                    if mode == Mode::Silent {
                        // Hold the connection open, say nothing.
                        stop.cancelled().await;
                        drop(stream);
                        return;
                    }
                    let svc = hyper::service::service_fn(move |_req| {
                        let body = format!("<!doctype html><title>{label}</title><h1>This is the {label} server</h1>\n");
                        async move { Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from(body)))) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
                    tokio::select! {
                        _ = conn => {}
                        _ = stop.cancelled() => {}
                    }
                });
            }
        });
    }

    /// Switches behaviour; existing connections are cut.
    pub async fn set_mode(&mut self, mode: Mode) -> anyhow::Result<()> {
        if mode == self.mode {
            return Ok(());
        }
        self.stop.cancel();
        // Let the old accept loop drop its listener before binding again.
        for _ in 0..100 {
            if self.tracker.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if mode == Mode::Refusing {
            self.mode = mode;
            return Ok(());
        }
        let mut last_err = None;
        for _ in 0..100 {
            match TcpListener::bind(self.addr).await {
                Ok(l) => {
                    self.spawn(l, mode);
                    return Ok(());
                }
                Err(e) => {
                    last_err = Some(e);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        anyhow::bail!(
            "cannot listen on {} again: {}",
            self.addr,
            last_err.map(|e| e.to_string()).unwrap_or_default()
        )
    }

    pub async fn shutdown(mut self) {
        let _ = self.set_mode(Mode::Refusing).await;
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// Polls `server` until `name`'s A answer is `want`; returns how long that took.
pub async fn wait_for_answer(
    server: SocketAddr,
    name: &str,
    want: IpAddr,
    limit: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let name = fqdn(name);
    loop {
        if let Ok(r) = client::query(
            server,
            &name,
            hickory_proto::rr::RecordType::A,
            Duration::from_millis(500),
        )
        .await
        {
            if r.addrs == [want] {
                return Ok(started.elapsed());
            }
        }
        if started.elapsed() > limit {
            anyhow::bail!(
                "the answer for {name} did not become {want} within {}",
                crate::util::human(limit)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn site_status(api: SocketAddr) -> anyhow::Result<SiteStatus> {
    let (_, body) = crate::api::call(
        &crate::api::ApiClient::plain(api, None),
        hyper::Method::GET,
        "/api/v1/status",
    )
    .await?;
    let reply: crate::api::StatusReply = serde_json::from_slice(&body)?;
    reply
        .sites
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no site"))
}

/// Runs the demo; prints a narrative on stdout.
pub async fn run() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("understudy-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run_in(&dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run_in(dir: &std::path::Path) -> anyhow::Result<()> {
    let total = Instant::now();
    let mut primary = SampleServer::start("127.0.0.1:0".parse()?, "primary").await?;
    let standby = SampleServer::start("127.0.0.2:0".parse()?, "standby")
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "{e}\nthe demo needs 127.0.0.2 on the loopback interface (standard on Linux)"
            )
        })?;
    let (p_ip, s_ip) = (primary.addr.ip(), standby.addr.ip());
    let config = format!(
        r#"# written by `understudy demo`
data_dir = "state"

[dns]
listen = ["127.0.0.1:0"]
ttl = 30

[[dns.zones]]
name = "demo.test"
records = ["ns1 A 127.0.0.1"]

[api]
listen = "127.0.0.1:0"

# Everything the demo watches is on this machine: no public references to check.
[watcher]
references = []

[[sites]]
domain = "www.demo.test"
aliases = ["demo.test"]
primary = "{}"
standby = "{}"

[sites.probe]
scheme = "http"
interval = "500ms"
timeout = "500ms"
failures_to_down = 3
successes_to_up = 3
hold_down = "5s"      # the default is 5m; shortened so the demo ends quickly

[sites.mirror]
scheduled = false     # the demo shows DNS failover; its sample servers are not crawled
"#,
        primary.addr, standby.addr
    );
    let config_path = dir.join("understudy.toml");
    std::fs::write(&config_path, &config)?;
    let cfg = crate::config::load(&config_path)?;
    crate::outln!(
        "understudy demo: one site, www.demo.test, with a primary and a standby web server"
    );
    crate::outln!("  primary  http://{}  (sample server)", primary.addr);
    crate::outln!("  standby  http://{}  (sample server)", standby.addr);
    let running = app::start(cfg).await?;
    let dns = running.dns[0];
    crate::outln!(
        "  built-in DNS server on {dns} (udp+tcp); probes every 500ms, down after 3 failures\n"
    );

    let outcome = async {
        let first = client::query(dns, &fqdn("www.demo.test"), hickory_proto::rr::RecordType::A, Duration::from_secs(1)).await?;
        crate::outln!("1. dig @{} -p {} www.demo.test A  →  {}  (the primary)", dns.ip(), dns.port(), show(&first.addrs));
        // Failover needs a ready standby: wait for its first probe.
        let ready_by = Instant::now() + Duration::from_secs(10);
        while !site_status(running.api).await?.standby_ready {
            anyhow::ensure!(Instant::now() < ready_by, "the standby never became ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        crate::outln!("2. stopping the primary (connections now refused) ...");
        primary.set_mode(Mode::Refusing).await?;
        let took = wait_for_answer(dns, "www.demo.test", s_ip, Duration::from_secs(30)).await?;
        let st = site_status(running.api).await?;
        crate::outln!("   answer moved to {s_ip} (the standby) {:.2} s after the primary stopped", took.as_secs_f64());
        crate::outln!("   why: {}", st.reason);

        crate::outln!("3. restoring the primary ...");
        primary.set_mode(Mode::Serving).await?;
        let took = wait_for_answer(dns, "www.demo.test", p_ip, Duration::from_secs(60)).await?;
        let st = site_status(running.api).await?;
        crate::outln!("   answer moved back to {p_ip} (the primary) {:.2} s after it came back", took.as_secs_f64());
        crate::outln!("   why: {}", st.reason);
        crate::outln!("   (failback waits until the primary has answered every probe for 5 s, at least 3 in a row, so a flapping primary is not trusted too soon)");
        Ok::<_, anyhow::Error>(())
    }
    .await;
    running.stop().await;
    primary.shutdown().await;
    standby.shutdown().await;
    outcome?;
    crate::outln!(
        "\ndone in {:.1} s. Next: write your own config (see README.md) and run `understudy run -c FILE`.",
        total.elapsed().as_secs_f64()
    );
    Ok(())
}

fn show(addrs: &[IpAddr]) -> String {
    if addrs.is_empty() {
        "(no address)".to_string()
    } else {
        addrs
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}
