//! Dynamic DNS end to end, with real components: two nginx echo services (one plain text, one
//! JSON) and BIND answering a `myip`-style DNS question, all on loopback with answers the test
//! chooses; the daemon publishes on its built-in server. Documentation and loopback ranges are
//! allow-listed so test addresses count as "public" without any traffic leaving the machine.

use crate::common;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::authdns::{AuthServer, Kind};
use common::*;
use hickory_proto::rr::{Name, RecordType};
use understudy::config::{parse_bind_key, Rfc2136Config};
use understudy::dns::provider::rfc2136::Rfc2136;
use understudy::dns::provider::{Provider, RrSet};

struct Sources {
    plain: Nginx,
    json: Nginx,
    bind: AuthServer,
    updater: Arc<Rfc2136>,
}

impl Sources {
    fn start() -> Sources {
        let plain = Nginx::start_files("127.0.0.1");
        let json = Nginx::start_files("127.0.0.1");
        let bind = AuthServer::start(Kind::Bind, "hmac-sha256");
        let key = parse_bind_key(&std::fs::read_to_string(&bind.key_file).unwrap()).unwrap();
        let updater = Arc::new(
            Rfc2136::new(
                &Rfc2136Config {
                    server: bind.addr,
                    key: Some(key),
                },
                Duration::from_secs(2),
            )
            .unwrap(),
        );
        Sources {
            plain,
            json,
            bind,
            updater,
        }
    }

    /// What each source answers for IPv4: plain text, JSON `{"ip": ...}`, DNS A record.
    fn set(&self, plain: &str, json: &str, dns: Option<&str>) {
        self.plain.set_file("ip", plain);
        self.json.set_file(
            "ip.json",
            &format!("{{\"ip\": \"{json}\", \"country\": \"XX\"}}"),
        );
        let name = Name::from_ascii("myip.example.test.").unwrap();
        let addrs: Vec<IpAddr> = dns.map(|d| vec![d.parse().unwrap()]).unwrap_or_default();
        rt().block_on(self.updater.apply(
            &Name::from_ascii("example.test.").unwrap(),
            &[RrSet::new(name, RecordType::A, 30, addrs)],
        ))
        .unwrap();
    }

    fn set6(&self, a: &str, b: &str) {
        self.plain.set_file("ip6", a);
        self.json.set_file("ip6", b);
    }

    fn config(&self, extra: &str) -> String {
        let home = preamble(&["home.test"]);
        format!(
            r#"{home}
[ip]
interval = "1s"
quorum = 2
allow = ["192.0.2.0/24", "127.0.0.0/8", "2001:db8::/32"]
[[ip.sources]]
name = "echo-plain"
operator = "alpha"
type = "http"
family = "ipv4"
url = "http://{plain}/ip"
timeout = "1s"
[[ip.sources]]
name = "echo-json"
operator = "beta"
type = "http"
family = "ipv4"
url = "http://{json}/ip.json"
json_field = "ip"
timeout = "1s"
[[ip.sources]]
name = "dns-myip"
operator = "gamma"
type = "dns"
family = "ipv4"
server = "{dns}"
question = "myip.example.test"
timeout = "1s"
{extra}
"#,
            plain = self.plain.addr,
            json = self.json.addr,
            dns = self.bind.addr
        )
    }
}

const DDNS: &str = "[[ddns]]\nname = \"home.home.test\"\nfamilies = [\"ipv4\"]\n";

fn wait_for(d: &Daemon, name: &str, t: RecordType, want: &str, limit: Duration) {
    let got = || -> Vec<String> {
        query(d.dns(), name, t)
            .map(|r| r.addrs.iter().map(|a| a.to_string()).collect())
            .unwrap_or_default()
    };
    common::wait(
        limit,
        || format!("{name} {t} to become {want} (is {:?})\n{}", got(), d.log()),
        || (got() == [want]).then_some(()),
    );
}

/// Asserts `name` keeps answering `want` for `how_long`.
fn stays(d: &Daemon, name: &str, want: &str, how_long: Duration) {
    let start = Instant::now();
    while start.elapsed() < how_long {
        assert_eq!(
            d.answer(name),
            [want.parse::<IpAddr>().unwrap()],
            "{name} moved"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn ddns_follows_agreement_and_ignores_bad_sources() {
    let src = Sources::start();
    src.set("192.0.2.10\n", "192.0.2.10", Some("192.0.2.10"));
    let d = Daemon::start(&src.config(DDNS));
    wait_for(
        &d,
        "home.home.test",
        RecordType::A,
        "192.0.2.10",
        Duration::from_secs(10),
    );

    // All agree on a new address.
    src.set("192.0.2.11", "192.0.2.11", Some("192.0.2.11"));
    wait_for(
        &d,
        "home.home.test",
        RecordType::A,
        "192.0.2.11",
        Duration::from_secs(10),
    );

    // One source returns an HTML error page, another a private address: the two valid ones
    // from different operators still agree.
    src.set(
        "<html><body>502 Bad Gateway</body></html>",
        "10.1.2.3",
        Some("192.0.2.12"),
    );
    stays(
        &d,
        "home.home.test",
        "192.0.2.11",
        Duration::from_millis(2_500),
    );
    src.set(
        "<html><body>502 Bad Gateway</body></html>",
        "192.0.2.12",
        Some("192.0.2.12"),
    );
    wait_for(
        &d,
        "home.home.test",
        RecordType::A,
        "192.0.2.12",
        Duration::from_secs(10),
    );
    assert!(
        d.log()
            .contains("answer rejected: an HTML page, not an address"),
        "garbage is logged:\n{}",
        d.log()
    );
    assert!(
        d.log()
            .contains("answer rejected: 10.1.2.3 is not a public address: private (10.0.0.0/8)"),
        "{}",
        d.log()
    );

    // Disagreement: nothing is published, the last good address stays.
    src.set("192.0.2.13", "192.0.2.14", Some("192.0.2.15"));
    stays(
        &d,
        "home.home.test",
        "192.0.2.12",
        Duration::from_millis(2_500),
    );
    let (code, out, _) = d.cli(&["ip"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("split vote")
            && out.contains("the last good address stays published: 192.0.2.12"),
        "{out}"
    );
    // Told once, however many rounds the split lasts (an earlier split, one source short of
    // the quorum, was its own).
    let split = d.events_of("address-vote-split");
    let this: Vec<_> = split
        .iter()
        .filter(|e| e["reason"].as_str().unwrap().contains("keeping 192.0.2.12"))
        .collect();
    assert_eq!(this.len(), 1, "{split:#?}");
    assert!(
        this[0]["reason"].as_str().unwrap().contains("split vote"),
        "{split:#?}"
    );

    // All down: keep the last good address.
    src.set("", "", None);
    stays(
        &d,
        "home.home.test",
        "192.0.2.12",
        Duration::from_millis(2_500),
    );

    // The history says when it changed and which sources agreed.
    src.set("192.0.2.16", "192.0.2.16", Some("192.0.2.16"));
    wait_for(
        &d,
        "home.home.test",
        RecordType::A,
        "192.0.2.16",
        Duration::from_secs(10),
    );
    let (code, out, _) = d.cli(&["ip"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("echo-plain")
            && out.contains("(alpha)")
            && out.contains("=> 192.0.2.16, agreed by 3 operator(s)"),
        "{out}"
    );
    assert!(
        out.contains("IPv4 192.0.2.12  agreed by") && out.contains("IPv4 192.0.2.10  agreed by"),
        "{out}"
    );
}

#[test]
fn ipv6_changes_independently() {
    let src = Sources::start();
    src.set("192.0.2.10", "192.0.2.10", Some("192.0.2.10"));
    src.set6("2001:db8::10", "2001:db8::10");
    let v6 = format!(
        "[[ip.sources]]\nname = \"v6-a\"\noperator = \"alpha\"\ntype = \"http\"\nfamily = \"ipv6\"\nurl = \"http://{}/ip6\"\n\
         [[ip.sources]]\nname = \"v6-b\"\noperator = \"beta\"\ntype = \"http\"\nfamily = \"ipv6\"\nurl = \"http://{}/ip6\"\n\
         [[ddns]]\nname = \"home.home.test\"\n",
        src.plain.addr, src.json.addr
    );
    let d = Daemon::start(&src.config(&v6));
    wait_for(
        &d,
        "home.home.test",
        RecordType::A,
        "192.0.2.10",
        Duration::from_secs(10),
    );
    wait_for(
        &d,
        "home.home.test",
        RecordType::AAAA,
        "2001:db8::10",
        Duration::from_secs(10),
    );
    src.set6("2001:db8::20", "2001:db8::20");
    wait_for(
        &d,
        "home.home.test",
        RecordType::AAAA,
        "2001:db8::20",
        Duration::from_secs(10),
    );
    assert_eq!(
        d.answer("home.home.test"),
        ["192.0.2.10".parse::<IpAddr>().unwrap()],
        "A unchanged"
    );
}

/// A site on `primary = "auto"`: three origins on one port at 127.0.0.1/.2/.3.
fn auto_site(port: u16) -> String {
    format!(
        "[[sites]]\nname = \"shop\"\ndomain = \"www.home.test\"\nprimary = \"auto\"\nstandby = \"127.0.0.2\"\n\
         [sites.probe]\nscheme = \"http\"\nport = {port}\ninterval = \"200ms\"\ntimeout = \"300ms\"\nsuccesses_to_up = 2\nhold_down = \"2s\"\n"
    )
}

#[test]
fn change_while_failed_over_is_published_only_at_failback() {
    let src = Sources::start();
    let port = free_port("127.0.0.1");
    let mut primary = Nginx::start_at(
        SocketAddr::new("127.0.0.1".parse().unwrap(), port),
        "primary",
    );
    let _standby = Nginx::start_at(
        SocketAddr::new("127.0.0.2".parse().unwrap(), port),
        "standby",
    );
    src.set("127.0.0.1", "127.0.0.1", Some("127.0.0.1"));
    let d = Daemon::start(&src.config(&auto_site(port)));
    wait_for(
        &d,
        "www.home.test",
        RecordType::A,
        "127.0.0.1",
        Duration::from_secs(10),
    );
    d.wait_standby_ready();

    primary.kill();
    wait_for(
        &d,
        "www.home.test",
        RecordType::A,
        "127.0.0.2",
        Duration::from_secs(10),
    );

    // The line gets a new address while failed over; the primary answers there.
    let _moved = Nginx::start_at(
        SocketAddr::new("127.0.0.3".parse().unwrap(), port),
        "primary, new address",
    );
    let changed = Instant::now();
    src.set("127.0.0.3", "127.0.0.3", Some("127.0.0.3"));
    // The record stays on the standby through the hold-down...
    stays(
        &d,
        "www.home.test",
        "127.0.0.2",
        Duration::from_millis(1_500),
    );
    // ...and failback publishes the new address, not the old one.
    wait_for(
        &d,
        "www.home.test",
        RecordType::A,
        "127.0.0.3",
        Duration::from_secs(15),
    );
    assert!(
        changed.elapsed() >= Duration::from_secs(2),
        "failback before the hold-down: {:?}",
        changed.elapsed()
    );
    let s = d.status();
    assert!(
        s["sites"][0]["primary"]
            .as_str()
            .unwrap()
            .contains("127.0.0.3"),
        "{s}"
    );
    assert_eq!(s["public"][0]["address"], "127.0.0.3", "{s}");
    let (_, out, _) = d.cli(&["status"]);
    assert!(
        out.contains(
            "public IPv4 address: 127.0.0.3  (last round: 127.0.0.3 agreed by 3 operator(s))"
        ),
        "{out}"
    );
}

#[test]
fn address_change_is_not_mistaken_for_an_outage() {
    let src = Sources::start();
    let port = free_port("127.0.0.1");
    let mut old = Nginx::start_at(
        SocketAddr::new("127.0.0.1".parse().unwrap(), port),
        "primary, old address",
    );
    let _standby = Nginx::start_at(
        SocketAddr::new("127.0.0.2".parse().unwrap(), port),
        "standby",
    );
    src.set("127.0.0.1", "127.0.0.1", Some("127.0.0.1"));
    // Sources are polled only every 30 s: the change must be found because the first failed
    // probe asks for a round, not because of the poll.
    let d = Daemon::start(
        &src.config(&auto_site(port))
            .replace("interval = \"1s\"\nquorum", "interval = \"30s\"\nquorum"),
    );
    wait_for(
        &d,
        "www.home.test",
        RecordType::A,
        "127.0.0.1",
        Duration::from_secs(10),
    );
    d.wait_standby_ready();

    // The line moves: the old address goes dead, the primary now answers on the new one.
    let _new = Nginx::start_at(
        SocketAddr::new("127.0.0.3".parse().unwrap(), port),
        "primary, new address",
    );
    src.set("127.0.0.3", "127.0.0.3", Some("127.0.0.3"));
    old.kill();
    let start = Instant::now();
    loop {
        let a = d.answer("www.home.test");
        assert_ne!(
            a,
            ["127.0.0.2".parse::<IpAddr>().unwrap()],
            "false failover to the standby\n{}",
            d.log()
        );
        if a == ["127.0.0.3".parse::<IpAddr>().unwrap()] {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the new address was never published\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stays(
        &d,
        "www.home.test",
        "127.0.0.3",
        Duration::from_millis(1_500),
    );
    assert_eq!(d.phase(), "healthy");
}

/// Cloudflare's `whoami.cloudflare` is a CHAOS-class TXT question; BIND serves such a zone in a
/// CH view here, answering the address the test chooses.
#[test]
fn dns_source_in_the_chaos_class() {
    need("named", "bind9");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port("127.0.0.1");
    let d_ = dir.path().display();
    std::fs::write(
        dir.path().join("whoami.db"),
        "$TTL 0\n@ CH SOA ns.cloudflare. hostmaster.cloudflare. 1 3600 600 86400 0\n@ CH NS ns.cloudflare.\nwhoami CH TXT \"192.0.2.99\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("named.conf"),
        format!(
            "options {{ directory \"{d_}\"; listen-on port {port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }}; pid-file \"{d_}/named.pid\"; session-keyfile \"{d_}/s.key\"; recursion no; dnssec-validation no; }};\n\
             controls {{ }};\nview \"chaos\" ch {{ match-clients {{ any; }}; zone \"cloudflare\" ch {{ type primary; file \"{d_}/whoami.db\"; }}; }};\n\
             view \"internet\" in {{ match-clients {{ any; }}; }};\n"
        ),
    )
    .unwrap();
    let mut named = std::process::Command::new("/usr/sbin/named")
        .args(["-g", "-n", "1", "-c"])
        .arg(dir.path().join("named.conf"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let home = preamble(&["home.test"]);
    let cfg = format!(
        "{home}\
         [ip]\ninterval = \"1s\"\nquorum = 1\nallow = [\"192.0.2.0/24\"]\n\
         [[ip.sources]]\nname = \"whoami\"\noperator = \"cloudflare\"\ntype = \"dns\"\nfamily = \"ipv4\"\nserver = \"127.0.0.1:{port}\"\nquestion = \"whoami.cloudflare\"\nqtype = \"TXT\"\nqclass = \"CH\"\n\
         [[ddns]]\nname = \"home.home.test\"\n"
    );
    let d = Daemon::start(&cfg);
    wait_for(
        &d,
        "home.home.test",
        RecordType::A,
        "192.0.2.99",
        Duration::from_secs(10),
    );
    let _ = named.kill();
    let _ = named.wait();
}
