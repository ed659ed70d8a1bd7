//! The chaos suite's small network of test hosts (issue 18): one network namespace per host,
//! veth pairs to a router namespace, every address inside the namespaces (nothing is added to
//! this machine's own namespace, so several networks run side by side with the same
//! addresses).
//!
//! ```text
//!   home 192.168.1.2 ── router ── standby  10.0.2.2   understudy serve (the copy)
//!   (nginx behind a       │  ├── watcher  10.0.3.2   understudy run (probes, DNS changes)
//!    fault proxy)         │  ├── resolver 10.0.4.2   unbound (what visitors ask)
//!                         │  ├── provider 10.0.5.2   BIND (the zone, RFC 2136; or a secondary)
//!   public 198.51.100.10 ─┘  └── client   10.0.6.2   curl, as a visitor
//! ```
//!
//! The router NATs home with nftables: its public address (`198.51.100.10`, changeable) is
//! forwarded to home's port 80 and home's own connections leave from it. Faults are applied
//! with the tools that work here: nftables rules in the router (drop, reset, random loss),
//! `ip link set down`, stopping processes, a small tmpfs, libfaketime, and the in-repo
//! [`FaultProxy`] in front of home's nginx for delays and mid-stream faults.
//!
//! Every namespace, and the `/etc/netns/<name>` directory that gives the client its resolver,
//! is removed when the [`Net`] drops; [`remove_leftovers`] removes those of an earlier run
//! that was killed before it could.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::faultproxy::FaultProxy;
use super::{need, BIN};

pub const HOME: &str = "192.168.1.2";
pub const PUBLIC: &str = "198.51.100.10";
pub const STANDBY: &str = "10.0.2.2";
pub const WATCHER: &str = "10.0.3.2";
pub const RESOLVER: &str = "10.0.4.2";
pub const PROVIDER: &str = "10.0.5.2";
/// The record TTL the suite's daemons write: a visitor's resolver holds an answer this long.
pub const TTL: u32 = 5;
pub const SITE: &str = "www.shop.test";

/// The hosts, and the number `N` of each one's `10.0.N.0/24` link to the router.
const HOSTS: &[(&str, u8)] = &[
    ("standby", 2),
    ("watcher", 3),
    ("resolver", 4),
    ("provider", 5),
    ("client", 6),
];

const PREFIX: &str = "chaos";

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Whether a `chaos-<pid>-...` name belongs to a process that is gone.
fn of_a_gone_run(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(&format!("{PREFIX}-")) else {
        return false;
    };
    let pid: u32 = rest.split('-').next().unwrap_or("").parse().unwrap_or(0);
    pid != 0 && !Path::new(&format!("/proc/{pid}")).exists()
}

/// Deletes the namespaces, `/etc/netns` entries and tmpfs mounts of earlier runs whose process
/// is gone (killed before their guards ran).
pub fn remove_leftovers() {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    for line in mounts.lines() {
        let Some(at) = line.split_whitespace().nth(1) else {
            continue;
        };
        let dir = Path::new(at)
            .strip_prefix(std::env::temp_dir())
            .ok()
            .and_then(|p| p.iter().next())
            .map(|c| c.to_string_lossy().to_string())
            .unwrap_or_default();
        if of_a_gone_run(&dir) {
            let _ = Command::new("umount").args(["-l", at]).status();
        }
    }
    let out = Command::new("ip").args(["netns", "list"]).output();
    let Ok(out) = out else { return };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        if of_a_gone_run(name) {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
            let _ = std::fs::remove_dir_all(format!("/etc/netns/{name}"));
        }
    }
}

/// A process stopped (SIGKILL) and reaped when dropped.
pub struct Proc(pub Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
impl Proc {
    /// Sends a signal by PID (`STOP`, `CONT`, `KILL`, ...).
    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), &self.0.id().to_string()])
            .status();
    }
}

pub struct Net {
    /// `chaos-<pid>-<n>`: every namespace's name starts with it.
    pub tag: String,
    pub dir: tempfile::TempDir,
    pub public: Mutex<String>,
    pub home_proxy: Option<FaultProxy>,
    pub nginx: Option<super::Nginx>,
    /// The dropped-last processes: BIND, unbound, the standby server, the watcher.
    pub procs: Mutex<Vec<(String, Proc)>>,
    pub tsig_key: PathBuf,
}

impl Net {
    pub fn ns(&self, host: &str) -> String {
        format!("{}-{host}", self.tag)
    }

    /// A network with every host, the router's NAT, and nothing running yet.
    pub fn build() -> Net {
        for (tool, package) in [
            ("nft", "nftables"),
            ("named", "bind9"),
            ("unbound", "unbound"),
            ("curl", "curl"),
            ("dig", "bind9-dnsutils"),
        ] {
            need(tool, package);
        }
        let tag = format!(
            "{PREFIX}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let net = Net {
            // Named after the tag, so that a killed run's mounts in it can be found.
            dir: tempfile::Builder::new()
                .prefix(&format!("{tag}-"))
                .tempdir()
                .unwrap(),
            tag,
            public: Mutex::new(PUBLIC.to_string()),
            home_proxy: None,
            nginx: None,
            procs: Mutex::default(),
            tsig_key: PathBuf::new(),
        };
        let router = net.ns("router");
        ip(&["netns", "add", &router]);
        ip(&["-n", &router, "link", "set", "lo", "up"]);
        net.sh("router", &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        let mut links: Vec<(String, String, String, String)> = vec![(
            "home".into(),
            "h-home".into(),
            "192.168.1.1/24".into(),
            format!("{HOME}/24"),
        )];
        for (host, n) in HOSTS {
            links.push((
                host.to_string(),
                format!("h-{host}"),
                format!("10.0.{n}.1/24"),
                format!("10.0.{n}.2/24"),
            ));
        }
        for (host, rif, raddr, haddr) in &links {
            let ns = net.ns(host);
            ip(&["netns", "add", &ns]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            ip(&[
                "-n", &router, "link", "add", rif, "type", "veth", "peer", "name", "up0", "netns",
                &ns,
            ]);
            ip(&["-n", &router, "addr", "add", raddr, "dev", rif]);
            ip(&["-n", &router, "link", "set", rif, "up"]);
            ip(&["-n", &ns, "addr", "add", haddr, "dev", "up0"]);
            ip(&["-n", &ns, "link", "set", "up0", "up"]);
            let gw = raddr.trim_end_matches("/24");
            ip(&["-n", &ns, "route", "add", "default", "via", gw]);
        }
        net.set_public(PUBLIC);
        // The client's resolver: `ip netns exec` mounts /etc/netns/<ns>/resolv.conf over
        // /etc/resolv.conf.
        let etc = PathBuf::from(format!("/etc/netns/{}", net.ns("client")));
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(
            etc.join("resolv.conf"),
            format!("nameserver {RESOLVER}\noptions timeout:1 attempts:2\n"),
        )
        .unwrap();
        net
    }

    /// `cmd` run inside `host`'s namespace.
    pub fn exec(&self, host: &str, cmd: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(host)]).args(cmd);
        c
    }

    /// Runs `cmd` in `host` and insists it succeeds.
    pub fn sh(&self, host: &str, cmd: &[&str]) -> String {
        let out = self.exec(host, cmd).output().unwrap();
        assert!(
            out.status.success(),
            "{host}: {}: {}",
            cmd.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Loads an nftables script in `host`.
    pub fn nft(&self, host: &str, script: &str) {
        let mut c = self.exec(host, &["nft", "-f", "-"]);
        c.stdin(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "nft in {host}: {}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Moves home's public address (the NAT's outside address) to `addr`.
    pub fn set_public(&self, addr: &str) {
        let router = self.ns("router");
        let old = std::mem::replace(&mut *self.public.lock().unwrap(), addr.to_string());
        let _ = Command::new("ip")
            .args([
                "-n",
                &router,
                "addr",
                "del",
                &format!("{old}/32"),
                "dev",
                "lo",
            ])
            .output();
        ip(&[
            "-n",
            &router,
            "addr",
            "add",
            &format!("{addr}/32"),
            "dev",
            "lo",
        ]);
        let _ = self
            .exec("router", &["nft", "delete", "table", "ip", "nat"])
            .output();
        // Connections NATed to the old address are forgotten, as a real router's are.
        let _ = self.exec("router", &["conntrack", "-F"]).output();
        self.nft(
            "router",
            &format!(
                "table ip nat {{\n\
                 chain pre {{ type nat hook prerouting priority dstnat; ip daddr {addr} tcp dport 80 dnat to {HOME}; }}\n\
                 chain post {{ type nat hook postrouting priority srcnat; ip saddr 192.168.1.0/24 oifname != \"h-home\" snat to {addr}; }}\n\
                 }}\n"
            ),
        );
    }

    /// Replaces the router's fault rules for traffic to and from home (`rules`: nftables
    /// statements run in a forward chain for every packet crossing home's link; empty heals).
    pub fn home_fault(&self, rules: &str) {
        self.router_fault("home", rules);
    }

    /// The same for any host's link (`h-<host>` on the router).
    pub fn router_fault(&self, host: &str, rules: &str) {
        let table = format!("fault_{host}");
        let _ = self
            .exec("router", &["nft", "delete", "table", "inet", &table])
            .output();
        if rules.is_empty() {
            return;
        }
        let rif = format!("h-{host}");
        let lines: String = rules
            .lines()
            .filter(|l| !l.trim().is_empty())
            .flat_map(|r| {
                [
                    format!("  iifname \"{rif}\" {r}\n"),
                    format!("  oifname \"{rif}\" {r}\n"),
                ]
            })
            .collect();
        self.nft(
            "router",
            &format!(
                "table inet {table} {{\n chain faults {{ type filter hook forward priority -10;\n{lines} }}\n}}\n"
            ),
        );
    }

    /// Takes `host`'s link down at the router (its uplink is cut), or back up.
    pub fn link(&self, host: &str, up: bool) {
        ip(&[
            "-n",
            &self.ns("router"),
            "link",
            "set",
            &format!("h-{host}"),
            if up { "up" } else { "down" },
        ]);
    }

    fn spawn(&self, host: &str, name: &str, cmd: &[&str], env: &[(&str, &str)]) -> u32 {
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).unwrap();
        let mut c = self.exec(host, cmd);
        for (k, v) in env {
            c.env(k, v);
        }
        let child = c
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let pid = child.id();
        self.procs
            .lock()
            .unwrap()
            .push((name.to_string(), Proc(child)));
        pid
    }

    /// Stops the process started as `name` (SIGKILL, by its PID) and forgets it.
    pub fn kill(&self, name: &str) {
        let mut procs = self.procs.lock().unwrap();
        if let Some(i) = procs.iter().position(|(n, _)| n == name) {
            procs.remove(i);
        }
    }

    /// Sends `sig` to the process started as `name`.
    pub fn signal(&self, name: &str, sig: &str) {
        let procs = self.procs.lock().unwrap();
        if let Some((_, p)) = procs.iter().find(|(n, _)| n == name) {
            p.signal(sig);
        }
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    /// The origin: nginx on home's loopback, behind a fault proxy on home's address. Pages:
    /// `/` (says "primary"), `/about.html`, `/style.css`; a file `down` in its directory makes
    /// every answer a 503.
    pub fn start_home(&mut self) {
        let dir = tempfile::tempdir().unwrap();
        let www = dir.path().join("www");
        std::fs::create_dir_all(&www).unwrap();
        std::fs::write(
            www.join("index.html"),
            "<!doctype html><html><head><title>shop</title><link rel=stylesheet href=/style.css></head>\
             <body><h1>served by the primary</h1><a href=/about.html>about</a></body></html>\n",
        )
        .unwrap();
        std::fs::write(
            www.join("about.html"),
            "<!doctype html><html><body><p>about the shop</p><a href=/>home</a></body></html>\n",
        )
        .unwrap();
        std::fs::write(www.join("style.css"), "h1 { color: #333 }\n").unwrap();
        let nginx = super::Nginx::start_custom_in(
            &self.ns("home"),
            "127.0.0.1:8080".parse().unwrap(),
            dir,
            "location / { if (-f {DIR}/down) { return 503; } root {DIR}/www; }",
        );
        self.nginx = Some(nginx);
        self.home_proxy = Some(FaultProxy::start(
            Some(&self.ns("home")),
            format!("{HOME}:80").parse().unwrap(),
            "127.0.0.1:8080".parse().unwrap(),
        ));
    }

    /// Makes the origin answer 503 to everything, or serve again.
    pub fn home_503(&self, on: bool) {
        let f = self.nginx.as_ref().unwrap().dir.path().join("down");
        if on {
            std::fs::write(f, "").unwrap();
        } else {
            let _ = std::fs::remove_file(f);
        }
    }

    pub fn proxy(&self) -> &FaultProxy {
        self.home_proxy.as_ref().unwrap()
    }

    /// BIND on the provider host as the zone's primary, taking RFC 2136 updates signed with a
    /// key made by `tsig-keygen` (written to `self.tsig_key`).
    pub fn start_provider_zone(&mut self) {
        let key_text = self.make_key();
        let d = self.dir.path().join("bind");
        std::fs::write(
            d.join("shop.test.zone"),
            format!(
                "$TTL 300\n@ IN SOA ns1.shop.test. hostmaster.shop.test. 1 3600 600 1209600 {TTL}\n\
                 @ IN NS ns1.shop.test.\nns1 IN A {PROVIDER}\n"
            ),
        )
        .unwrap();
        self.write_named(
            &d,
            &key_text,
            &format!(
                "zone \"shop.test\" {{ type primary; file \"{}/shop.test.zone\"; allow-update {{ key \"understudy\"; }}; }};\n",
                d.display()
            ),
        );
        self.spawn_named(&d);
    }

    /// A TSIG key made by `tsig-keygen`, written to `self.tsig_key`; returns its text.
    pub fn make_key(&mut self) -> String {
        let d = self.dir.path().join("bind");
        std::fs::create_dir_all(&d).unwrap();
        let key = Command::new(tsig_keygen())
            .args(["-a", "hmac-sha256", "understudy"])
            .output()
            .unwrap();
        assert!(key.status.success(), "tsig-keygen");
        let key_text = String::from_utf8_lossy(&key.stdout).to_string();
        self.tsig_key = d.join("understudy.key");
        std::fs::write(&self.tsig_key, &key_text).unwrap();
        key_text
    }

    /// BIND on the provider host as a secondary of the watcher's built-in zone (its hidden
    /// primary at 10.0.3.2), with the key of [`Net::make_key`].
    pub fn start_provider_secondary(&self) {
        let d = self.dir.path().join("bind");
        let key_text = std::fs::read_to_string(&self.tsig_key).unwrap();
        self.write_named(
            &d,
            &key_text,
            &format!(
                "zone \"shop.test\" {{ type secondary; file \"{}/shop.test.bak\"; \
                 primaries {{ {WATCHER} key \"understudy\"; }}; allow-notify {{ {WATCHER}; }}; }};\n",
                d.display()
            ),
        );
        self.spawn_named(&d);
    }

    fn write_named(&self, d: &Path, key_text: &str, zone: &str) {
        let dd = d.display();
        std::fs::write(
            d.join("named.conf"),
            format!(
                "options {{\n directory \"{dd}\";\n listen-on port 53 {{ {PROVIDER}; }};\n listen-on-v6 {{ none; }};\n \
                 pid-file \"{dd}/named.pid\";\n session-keyfile \"{dd}/session.key\";\n recursion no;\n \
                 dnssec-validation no;\n notify no;\n}};\ncontrols {{ }};\n{key_text}\n{zone}"
            ),
        )
        .unwrap();
    }

    fn spawn_named(&self, d: &Path) {
        let conf = d.join("named.conf").display().to_string();
        self.spawn(
            "provider",
            "named",
            &["/usr/sbin/named", "-g", "-n", "1", "-c", &conf],
            &[],
        );
        self.wait_dns("provider", PROVIDER, "shop.test", "SOA");
    }

    /// Starts BIND again after [`Net::kill`]`("named")` (the zone file and journal kept).
    pub fn restart_named(&self) {
        self.spawn_named(&self.dir.path().join("bind"));
    }

    fn wait_dns(&self, from: &str, server: &str, name: &str, t: &str) {
        let start = Instant::now();
        loop {
            let out = self.dig(from, server, name, t);
            if !out.is_empty() {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{server} does not answer {name} {t}: named: {}\nunbound: {}",
                self.log("named"),
                self.log("unbound")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `dig @server name t +short` from `from`.
    pub fn dig(&self, from: &str, server: &str, name: &str, t: &str) -> String {
        let out = self
            .exec(
                from,
                &[
                    "dig",
                    &format!("@{server}"),
                    name,
                    t,
                    "+short",
                    "+time=1",
                    "+tries=1",
                ],
            )
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if s.starts_with(";;") {
            String::new()
        } else {
            s
        }
    }

    /// The site's A record as the provider's nameserver answers it.
    pub fn zone_answer(&self) -> String {
        self.dig("client", PROVIDER, SITE, "A")
    }

    /// unbound on the resolver host: the zone `shop.test` by a stub to the provider's server.
    pub fn start_resolver(&self) {
        let d = self.dir.path().join("unbound");
        std::fs::create_dir_all(&d).unwrap();
        let dd = d.display();
        std::fs::write(
            d.join("unbound.conf"),
            format!(
                "server:\n  interface: {RESOLVER}\n  port: 53\n  access-control: 10.0.0.0/8 allow\n  \
                 do-daemonize: no\n  username: \"\"\n  chroot: \"\"\n  directory: \"{dd}\"\n  pidfile: \"{dd}/unbound.pid\"\n  \
                 use-syslog: no\n  logfile: \"\"\n  verbosity: 1\n  module-config: \"iterator\"\n  do-ip6: no\n  \
                 do-not-query-localhost: no\n  prefetch: no\n  serve-expired: no\n  so-reuseport: no\n  num-threads: 1\n  \
                 root-hints: \"\"\n  domain-insecure: \"shop.test\"\n  private-domain: \"shop.test\"\n  local-zone: \"test.\" nodefault\n\
                 remote-control:\n  control-enable: no\n\
                 stub-zone:\n  name: \"shop.test\"\n  stub-addr: {PROVIDER}\n"
            ),
        )
        .unwrap();
        let conf = d.join("unbound.conf").display().to_string();
        self.spawn(
            "resolver",
            "unbound",
            &["unbound", "-d", "-p", "-c", &conf],
            &[],
        );
        let start = Instant::now();
        while !self.log("unbound").contains("start of service") {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "unbound did not start: {}",
                self.log("unbound")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The site's part of a config: the site, its probes (the defaults but `hold_down`, which
    /// is 10 s here instead of 5 min so that recovery fits in the suite), `extra` appended.
    pub fn site_toml(&self, primary: &str, extra: &str) -> String {
        format!(
            "[[sites]]\nname = \"shop\"\ndomain = \"{SITE}\"\nprimary = \"{primary}\"\nstandby = \"{STANDBY}\"\n\
             {extra}\n[sites.probe]\nscheme = \"http\"\nhold_down = \"10s\"\n"
        )
    }

    /// The standby host: crawls home into a snapshot (`understudy mirror`), then serves it
    /// (`understudy serve` on 10.0.2.2:80). `data` is its data directory.
    pub fn start_standby(&self, data: &Path) {
        let cfg = self.dir.path().join("standby.toml");
        std::fs::write(
            &cfg,
            format!(
                "data_dir = \"{}\"\n[dns]\nlisten = [\"127.0.0.1:5300\"]\n[[dns.zones]]\nname = \"shop.test\"\n\
                 [watcher]\nreferences = []\n{}",
                data.display(),
                self.site_toml(PUBLIC, "")
            ),
        )
        .unwrap();
        let cfg = cfg.display().to_string();
        let out = self
            .exec("standby", &[BIN, "mirror", "shop", "-c", &cfg])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the first crawl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.spawn(
            "standby",
            "serve",
            &[
                BIN,
                "serve",
                "--listen",
                &format!("{STANDBY}:80"),
                "-c",
                &cfg,
            ],
            &[],
        );
        let start = Instant::now();
        while self.fetch("client", &format!("http://{STANDBY}/"), SITE).0 != 200 {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the standby does not serve: {}",
                self.log("serve")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The watcher's config: the site through the provider's zone (RFC 2136), references
    /// at the resolver and the provider, `extra` appended (more `[[sites]]` keys first).
    pub fn watcher_toml(&self, primary: &str, site_extra: &str, extra: &str) -> String {
        format!(
            "data_dir = \"{}\"\n[dns]\nlisten = [\"127.0.0.1:5300\"]\nttl = {TTL}\n\
             [[providers]]\nname = \"bind\"\ntype = \"rfc2136\"\nserver = \"{PROVIDER}:53\"\ntsig_key_file = \"{}\"\n\
             [[dns.zones]]\nname = \"shop.test\"\nprovider = \"bind\"\n\
             [api]\nlisten = \"127.0.0.1:8300\"\n\
             [watcher]\nreferences = [\"{RESOLVER}:53\", \"{PROVIDER}:53\"]\ncheck_every = \"5s\"\n\
             {extra}\n{}",
            self.watcher_data().display(),
            self.tsig_key.display(),
            self.site_toml(primary, site_extra)
        )
    }

    pub fn watcher_data(&self) -> PathBuf {
        self.dir.path().join("watcher-data")
    }

    /// Starts `understudy run` on the watcher with `config` (under libfaketime when `faketime`
    /// names a control file) and waits for its runtime file.
    pub fn start_watcher(&self, config: &str, faketime: Option<&Path>) {
        self.start_daemon_on("watcher", config, faketime);
    }

    /// [`Net::start_watcher`] on any host (the proxy-mode daemon runs on the standby); its
    /// data directory is [`Net::watcher_data`] and its process is named "watcher" all the same.
    pub fn start_daemon_on(&self, host: &str, config: &str, faketime: Option<&Path>) {
        let cfg = self.dir.path().join("watcher.toml");
        std::fs::write(&cfg, config).unwrap();
        let data = self.watcher_data();
        let _ = std::fs::remove_file(data.join("runtime.json"));
        let cfg = cfg.display().to_string();
        match faketime {
            None => self.spawn(host, "watcher", &[BIN, "run", "-c", &cfg], &[]),
            Some(file) => {
                let lib = faketime_lib();
                self.spawn(
                    host,
                    "watcher",
                    &[BIN, "run", "-c", &cfg],
                    &[
                        ("LD_PRELOAD", lib.to_str().unwrap()),
                        ("FAKETIME_TIMESTAMP_FILE", file.to_str().unwrap()),
                        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
                        ("FAKETIME_CACHE_DURATION", "1"),
                    ],
                )
            }
        };
        let start = Instant::now();
        while understudy::app::RuntimeInfo::read(&data).is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the watcher did not start: {}",
                self.log("watcher")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The watcher's event log for the site, oldest first, as (kind, reason).
    pub fn events(&self) -> Vec<(String, String)> {
        let Ok(Some(store)) = understudy::store::Store::open_read_only(&self.watcher_data()) else {
            return vec![];
        };
        let mut v: Vec<_> = store
            .events(Some("shop"), 10_000)
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.kind, e.reason))
            .collect();
        v.reverse();
        v
    }

    pub fn count(&self, kind: &str) -> usize {
        self.events().iter().filter(|(k, _)| k == kind).count()
    }

    /// One visitor request from `host`: (status, the address that answered).
    pub fn fetch(&self, host: &str, url: &str, host_header: &str) -> (u16, String) {
        let header = format!("Host: {host_header}");
        let mut args = curl_args(url, "3");
        args.extend(["-H", header.as_str()]);
        curl(self.exec(host, &args))
    }

    /// Polls `f` every 100 ms until it holds or `limit` passes; the time it took, or None.
    pub fn within(&self, limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
        let start = Instant::now();
        loop {
            if f() {
                return Some(start.elapsed());
            }
            if start.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Processes first (they hold sockets in the namespaces), the proxy, then the hosts.
        self.procs.lock().unwrap().clear();
        self.home_proxy = None;
        self.nginx = None;
        let _ = std::fs::remove_dir_all(format!("/etc/netns/{}", self.ns("client")));
        let out = Command::new("ip").args(["netns", "list"]).output();
        if let Ok(out) = out {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let name = line.split_whitespace().next().unwrap_or("");
                if name.starts_with(&format!("{}-", self.tag)) {
                    let _ = Command::new("ip").args(["netns", "del", name]).status();
                }
            }
        }
    }
}

/// What one visitor request got.
#[derive(Clone, Debug)]
pub struct Sample {
    /// When the request started, from the loop's start.
    pub at: Duration,
    pub code: u16,
    /// The address that answered ("" when none did).
    pub from: String,
}

/// A visitor on the client host asking for the site through the resolver every 250 ms, as a
/// browser would (curl: the name looked up through unbound, then the page fetched).
pub struct Visitor {
    pub start: Instant,
    pub samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Visitor {
    pub fn start(net: &Net) -> Visitor {
        let ns = net.ns("client");
        let start = Instant::now();
        let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (s, st) = (samples.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                let at = start.elapsed();
                let url = format!("http://{SITE}/");
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &ns]).args(curl_args(&url, "2"));
                let (code, from) = curl(c);
                s.lock().unwrap().push(Sample { at, code, from });
                let next = at + Duration::from_millis(250);
                let now = start.elapsed();
                if next > now {
                    std::thread::sleep(next - now);
                }
            }
        });
        Visitor {
            start,
            samples,
            stop,
            thread: Some(thread),
        }
    }

    /// Time since the visitor started (to mark when a fault was injected).
    pub fn now(&self) -> Duration {
        self.start.elapsed()
    }

    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().unwrap().clone()
    }

    /// Requests that started at or after `from` (and before `to`) and got no 200.
    pub fn failed(&self, from: Duration, to: Duration) -> (usize, usize) {
        let s = self.samples();
        let window: Vec<_> = s.iter().filter(|x| x.at >= from && x.at < to).collect();
        (
            window.iter().filter(|x| x.code != 200).count(),
            window.len(),
        )
    }

    /// From `from`, the time until visitors were answered 200 by `by` and stayed so for the
    /// rest of the samples up to `to` (None if that never happened).
    pub fn settled_on(&self, from: Duration, to: Duration, by: &str) -> Option<Duration> {
        let s = self.samples();
        let window: Vec<_> = s.iter().filter(|x| x.at >= from && x.at < to).collect();
        let mut first_good: Option<Duration> = None;
        for x in &window {
            if x.code == 200 && x.from == by {
                first_good.get_or_insert(x.at);
            } else {
                first_good = None;
            }
        }
        first_good.map(|t| t - from)
    }

    /// Waits (up to 20 s) until the latest request was answered 200 from `addr`.
    pub fn wait_served_by(&self, net: &Net, addr: &str) {
        let _ = net.within(Duration::from_secs(20), || {
            self.samples()
                .last()
                .is_some_and(|s| s.from == addr && s.code == 200)
        });
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Visitor {
    fn drop(&mut self) {
        self.stop();
    }
}

/// curl's arguments for one request to `url` that prints "<status> <address that answered>".
/// `max_time` in seconds.
fn curl_args<'a>(url: &'a str, max_time: &'a str) -> Vec<&'a str> {
    vec![
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{remote_ip}",
        "--max-time",
        max_time,
        url,
    ]
}

/// Runs a curl made with [`curl_args`]: (status, the address that answered); (0, "") when
/// nothing answered.
fn curl(mut c: Command) -> (u16, String) {
    let text = c
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    let mut it = text.split_whitespace();
    let code = it.next().and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, it.next().unwrap_or("").to_string())
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("iproute2");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn tsig_keygen() -> &'static str {
    if Path::new("/usr/sbin/tsig-keygen").exists() {
        "/usr/sbin/tsig-keygen"
    } else {
        "tsig-keygen"
    }
}

/// libfaketime's preload library (Debian's `faketime` package).
pub fn faketime_lib() -> PathBuf {
    for p in [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    ] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("libfaketime is not installed: apt-get install faketime (or run `bash .ci/run`)");
}

#[allow(dead_code)]
pub fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[allow(dead_code)]
pub fn sock(s: &str) -> SocketAddr {
    s.parse().unwrap()
}
