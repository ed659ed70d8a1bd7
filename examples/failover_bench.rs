//! Failover latency, understudy vs PowerDNS `ifurlup`, in one run (driven by
//! `bench/failover-latency`; not a test).
//!
//! One primary (127.0.0.1:P) and one standby (127.0.0.2:P) sample server. The understudy daemon
//! (the release binary, as deployed) and pdns_server with a LUA `ifurlup` record watch the same
//! primary. For each outage the primary either starts refusing connections or goes silent
//! (accepts, never answers); we poll both DNS servers every 10 ms and record when each first
//! answers the standby. Between outages the primary is restored and both must fail back.
//!
//! Usage: failover_bench --understudy PATH [--outages N] [--interval-ms MS] [--pdns-interval S]

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use understudy::demo::{Mode, SampleServer};
use understudy::dns::client;
use understudy::dns::zone::fqdn;

struct Args {
    understudy: PathBuf,
    outages: usize,
    interval_ms: u64,
    pdns_interval: u64,
}

fn args() -> Args {
    let mut a = Args {
        understudy: PathBuf::from("target/release/understudy"),
        outages: 20,
        interval_ms: 500,
        pdns_interval: 5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--understudy" => a.understudy = PathBuf::from(v),
            "--outages" => a.outages = v.parse().expect("number"),
            "--interval-ms" => a.interval_ms = v.parse().expect("number"),
            "--pdns-interval" => a.pdns_interval = v.parse().expect("number"),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

struct Killer(Child);
impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn a_of(server: SocketAddr) -> Option<IpAddr> {
    let r = client::query(
        server,
        &fqdn("www.example.test"),
        hickory_proto::rr::RecordType::A,
        Duration::from_millis(300),
    )
    .await
    .ok()?;
    (r.addrs.len() == 1).then(|| r.addrs[0])
}

async fn wait_both(servers: &[SocketAddr], want: IpAddr, limit: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let mut all = true;
        for s in servers {
            all &= a_of(*s).await == Some(want);
        }
        if all {
            return Ok(());
        }
        anyhow::ensure!(
            start.elapsed() < limit,
            "servers did not all answer {want} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args();
    let dir = tempfile_dir();
    // Same port on both addresses: ifurlup's URL carries one port for every candidate.
    let mut primary = SampleServer::start("127.0.0.1:0".parse()?, "primary").await?;
    let port = primary.addr.port();
    let standby =
        SampleServer::start(SocketAddr::new("127.0.0.2".parse()?, port), "standby").await?;
    let (p_ip, s_ip) = (primary.addr.ip(), standby.addr.ip());

    // understudy
    let ucfg = format!(
        "data_dir = \"{d}/u\"\n[dns]\nlisten = [\"127.0.0.1:0\"]\n[[dns.zones]]\nname = \"example.test\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
         [[sites]]\ndomain = \"www.example.test\"\nprimary = \"127.0.0.1:{port}\"\nstandby = \"127.0.0.2:{port}\"\n\
         [sites.probe]\nscheme = \"http\"\ninterval = \"{i}ms\"\ntimeout = \"1s\"\nfailures_to_down = 3\nsuccesses_to_up = 2\nhold_down = \"1s\"\n",
        d = dir.display(),
        i = a.interval_ms
    );
    std::fs::write(dir.join("understudy.toml"), ucfg)?;
    let _u = Killer(
        Command::new(&a.understudy)
            .args(["run", "-c"])
            .arg(dir.join("understudy.toml"))
            .stderr(Stdio::null())
            .spawn()?,
    );
    let started = Instant::now();
    let info = loop {
        if let Some(i) = understudy::app::RuntimeInfo::read(&dir.join("u")) {
            break i;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(20),
            "understudy did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let udns = info.dns[0];

    // PowerDNS with the bind backend and one LUA record.
    let pport = free_port();
    let pdir = dir.join("pdns");
    std::fs::create_dir_all(&pdir)?;
    std::fs::write(
        pdir.join("example.test.zone"),
        format!(
            "$TTL 30\n@ IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 1209600 30\n@ IN NS ns1.example.test.\nns1 IN A 127.0.0.1\n\
             www IN LUA A \"ifurlup('http://www.example.test:{port}/', {{{{'127.0.0.1'}}, {{'127.0.0.2'}}}}, {{timeout=1}})\"\n"
        ),
    )?;
    std::fs::write(
        pdir.join("named.conf"),
        format!(
            "zone \"example.test\" {{ file \"{}/example.test.zone\"; }};\n",
            pdir.display()
        ),
    )?;
    std::fs::write(
        pdir.join("pdns.conf"),
        format!(
            "launch=bind\nbind-config={d}/named.conf\nlocal-address=127.0.0.1\nlocal-port={pport}\nenable-lua-records=yes\n\
             lua-health-checks-interval={pi}\nsecurity-poll-suffix=\ncache-ttl=0\nquery-cache-ttl=0\nnegquery-cache-ttl=0\n\
             socket-dir={d}\ndaemon=no\nguardian=no\ndisable-syslog=yes\nloglevel=3\n",
            d = pdir.display(),
            pi = a.pdns_interval
        ),
    )?;
    let _p = Killer(
        Command::new("pdns_server")
            .arg(format!("--config-dir={}", pdir.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let pdns: SocketAddr = format!("127.0.0.1:{pport}").parse()?;
    wait_both(&[udns, pdns], p_ip, Duration::from_secs(60)).await?;

    let mut results: Vec<(&str, Vec<f64>, Vec<f64>, usize)> = vec![];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for (kind, mode) in [("refused", Mode::Refusing), ("silent drop", Mode::Silent)] {
        let (mut us, mut pd, mut timeouts) = (vec![], vec![], 0);
        for n in 0..a.outages {
            wait_both(&[udns, pdns], p_ip, Duration::from_secs(60)).await?;
            // A random phase against both checkers' timers.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            tokio::time::sleep(Duration::from_millis(seed % 1_000)).await;
            primary.set_mode(mode).await?;
            let t0 = Instant::now();
            let (mut u_at, mut p_at) = (None, None);
            while (u_at.is_none() || p_at.is_none()) && t0.elapsed() < Duration::from_secs(30) {
                if u_at.is_none() && a_of(udns).await == Some(s_ip) {
                    u_at = Some(t0.elapsed().as_secs_f64());
                }
                if p_at.is_none() && a_of(pdns).await == Some(s_ip) {
                    p_at = Some(t0.elapsed().as_secs_f64());
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            match (u_at, p_at) {
                (Some(u), Some(p)) => {
                    us.push(u);
                    pd.push(p);
                    eprintln!("{kind} #{:>2}: understudy {u:.2}s  powerdns {p:.2}s", n + 1);
                }
                _ => {
                    timeouts += 1;
                    eprintln!(
                        "{kind} #{:>2}: timed out (understudy {u_at:?}, powerdns {p_at:?})",
                        n + 1
                    );
                }
            }
            primary.set_mode(Mode::Serving).await?;
        }
        us.sort_by(f64::total_cmp);
        pd.sort_by(f64::total_cmp);
        results.push((kind, us, pd, timeouts));
    }

    println!();
    println!(
        "failover latency: time from the primary failing to the DNS answer moving to the standby ({} outages of each kind)",
        a.outages
    );
    println!(
        "  understudy: probe every {} ms, every {} ms while suspect (fast_interval, the default), timeout 1 s, down after 3 failed probes in a row",
        a.interval_ms,
        (a.interval_ms / 10).clamp(50, 250)
    );
    println!(
        "  PowerDNS {}: LUA ifurlup, lua-health-checks-interval={} s, timeout 1 s, down after 1 failed check",
        pdns_version(),
        a.pdns_interval
    );
    println!();
    println!(
        "{:<12} {:<11} {:>7} {:>7} {:>7}",
        "outage", "server", "p50", "p95", "max"
    );
    for (kind, us, pd, timeouts) in &results {
        for (name, v) in [("understudy", us), ("powerdns", pd)] {
            println!(
                "{:<12} {:<11} {:>6.2}s {:>6.2}s {:>6.2}s",
                kind,
                name,
                percentile(v, 50.0),
                percentile(v, 95.0),
                v.last().copied().unwrap_or(f64::NAN)
            );
        }
        println!(
            "{:<12} ratio p95 understudy/powerdns = {:.2}   (p50 ratio {:.2}){}",
            kind,
            percentile(us, 95.0) / percentile(pd, 95.0),
            percentile(us, 50.0) / percentile(pd, 50.0),
            if *timeouts > 0 {
                format!("   {timeouts} outage(s) timed out")
            } else {
                String::new()
            }
        );
    }
    primary.shutdown().await;
    standby.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn pdns_version() -> String {
    let out = Command::new("pdns_server").arg("--version").output().ok();
    out.and_then(|o| {
        let text =
            String::from_utf8_lossy(&o.stderr).to_string() + &String::from_utf8_lossy(&o.stdout);
        text.split_whitespace()
            .skip_while(|w| *w != "Server")
            .nth(1)
            .map(String::from)
    })
    .unwrap_or_else(|| "?".to_string())
}

fn tempfile_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("understudy-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
