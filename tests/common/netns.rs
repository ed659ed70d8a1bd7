//! A network namespace a test makes, and the daemon run inside it. Needs root (`ip netns`),
//! which CI has; the namespace (and every veth end in it) is removed when the guard drops.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Netns {
    pub name: String,
    /// The outside ends of [`Netns::link`]s, deleted with the namespace: a namespace can
    /// outlive `ip netns del` for a while (a socket still closing in it), and its link would
    /// keep the address a later test wants.
    outside: std::cell::RefCell<Vec<String>>,
}

impl Netns {
    /// A namespace named `<prefix>-<pid>` with its loopback up; removed when dropped.
    pub fn new(prefix: &str) -> Netns {
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        assert!(
            is_root,
            "this test creates a network namespace and needs root (CI runs as root): run it with `sudo -E cargo nextest run`"
        );
        let name = format!("{prefix}-{}", std::process::id());
        let n = Netns {
            name,
            outside: Default::default(),
        };
        n.ip(&["netns", "add", &n.name]);
        n.ip(&["-n", &n.name, "link", "set", "lo", "up"]);
        n
    }

    /// A namespace (`<prefix>-<pid>`) linked to this one: `10.<net>.0.1/30` outside,
    /// `10.<net>.0.2/30` inside (returned), the outside link named after `tag` and the pid.
    #[allow(dead_code, reason = "the proxy tests and bench use it")]
    pub fn linked(prefix: &str, tag: &str, net: u8) -> (Netns, std::net::IpAddr) {
        let ns = Netns::new(prefix);
        let n = std::process::id() % 100_000;
        ns.link(
            &format!("{tag}{n}o"),
            &format!("10.{net}.0.1/30"),
            &format!("{tag}{n}i"),
            &format!("10.{net}.0.2/30"),
        );
        (ns, format!("10.{net}.0.2").parse().unwrap())
    }

    /// A veth pair with both ends inside the namespace, up.
    pub fn veth_inside(&self, a: &str, b: &str) {
        self.ip(&[
            "-n", &self.name, "link", "add", a, "type", "veth", "peer", "name", b,
        ]);
        self.ip(&["-n", &self.name, "link", "set", a, "up"]);
        self.ip(&["-n", &self.name, "link", "set", b, "up"]);
    }

    /// A link from this machine's namespace (`outside`, `out_addr`) into the namespace
    /// (`inside`, `in_addr`), both up. The outside end goes when the namespace does.
    pub fn link(&self, outside: &str, out_addr: &str, inside: &str, in_addr: &str) {
        // A leftover of an earlier, killed run holding the same name or address.
        let _ = Command::new("ip").args(["link", "del", outside]).output();
        self.outside.borrow_mut().push(outside.to_string());
        self.ip(&[
            "link", "add", outside, "type", "veth", "peer", "name", inside,
        ]);
        self.ip(&["link", "set", inside, "netns", &self.name]);
        self.ip(&["addr", "add", out_addr, "dev", outside]);
        self.ip(&["link", "set", outside, "up"]);
        self.ip(&["-n", &self.name, "addr", "add", in_addr, "dev", inside]);
        self.ip(&["-n", &self.name, "link", "set", inside, "up"]);
    }

    pub fn ip(&self, args: &[&str]) {
        let out = Command::new("ip")
            .args(args)
            .output()
            .expect("iproute2's `ip`");
        assert!(
            out.status.success(),
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn exec(&self, cmd: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(cmd);
        c
    }

    /// Starts `understudy run -c <dir>/c.toml` inside the namespace (the config's data_dir must be
    /// `<dir>/data`) and waits for its runtime file; the daemon is stopped when the guard drops.
    pub fn start_daemon(&self, dir: &std::path::Path) -> (Child_, understudy::app::RuntimeInfo) {
        let log = std::fs::File::create(dir.join("log")).unwrap();
        let child = Child_(
            self.exec(&[
                super::BIN,
                "run",
                "-c",
                &dir.join("c.toml").display().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
        );
        let start = Instant::now();
        loop {
            if let Some(i) = understudy::app::RuntimeInfo::read(&dir.join("data")) {
                return (child, i);
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "daemon did not start: {}",
                std::fs::read_to_string(dir.join("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn dig(&self, server: std::net::SocketAddr, name: &str, t: &str) -> String {
        let out = self
            .exec(&[
                "dig",
                &format!("@{}", server.ip()),
                "-p",
                &server.port().to_string(),
                name,
                t,
                "+short",
                "+time=1",
                "+tries=1",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for l in self.outside.borrow().iter() {
            let _ = Command::new("ip").args(["link", "del", l]).output();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A process killed when dropped.
pub struct Child_(pub Child);
impl Drop for Child_ {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
