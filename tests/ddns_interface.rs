//! The interface source inside a network namespace this test creates: the daemon runs in the
//! namespace, reads the address of a veth interface there, and an address change is published
//! at once through netlink events (the poll interval is 60 s, so a poll cannot explain it).
//! Needs root (for `ip netns`), which CI has; the namespace is removed when the test ends.

use crate::common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::netns::{Child_, Netns};

#[test]
fn interface_address_changes_are_published_at_once() {
    common::need("dig", "bind9-dnsutils");
    let ns = Netns::new("us-ddns");
    ns.veth_inside("wan0", "wan1");
    ns.ip(&[
        "-n",
        &ns.name,
        "addr",
        "add",
        "192.0.2.50/24",
        "dev",
        "wan0",
    ]);
    ns.ip(&[
        "-n",
        &ns.name,
        "-6",
        "addr",
        "add",
        "2001:db8::50/64",
        "dev",
        "wan0",
        "nodad",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::write(
        dir.path().join("c.toml"),
        format!(
            r#"data_dir = "{data}"
[dns]
listen = ["127.0.0.1:0"]
[[dns.zones]]
name = "home.test"
[api]
listen = "127.0.0.1:0"
[watcher]
references = []
[ip]
interval = "60s"
quorum = 1
allow = ["192.0.2.0/24", "2001:db8::/32"]
[[ip.sources]]
name = "wan"
type = "interface"
interface = "wan0"
family = "ipv4"
[[ip.sources]]
name = "wan6"
type = "interface"
interface = "wan0"
family = "ipv6"
[[ddns]]
name = "home.home.test"
"#,
            data = data.display()
        ),
    )
    .unwrap();
    let (_d, info) = ns.start_daemon(dir.path());
    let server = info.dns[0];
    let wait = |t: &str, want: &str, limit: Duration| -> Duration {
        let start = Instant::now();
        while ns.dig(server, "home.home.test", t) != want {
            assert!(
                start.elapsed() < limit,
                "{t} never became {want}: {}",
                std::fs::read_to_string(dir.path().join("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        start.elapsed()
    };
    wait("A", "192.0.2.50", Duration::from_secs(10));
    wait("AAAA", "2001:db8::50", Duration::from_secs(10));

    // The line's address changes: the event, not the 60 s poll, publishes it.
    ns.ip(&[
        "-n",
        &ns.name,
        "addr",
        "del",
        "192.0.2.50/24",
        "dev",
        "wan0",
    ]);
    ns.ip(&[
        "-n",
        &ns.name,
        "addr",
        "add",
        "192.0.2.51/24",
        "dev",
        "wan0",
    ]);
    let took = wait("A", "192.0.2.51", Duration::from_secs(10));
    assert!(
        took < Duration::from_secs(5),
        "took {took:?}: not event-driven"
    );

    // IPv6 moves on its own. (Temporary privacy addresses are made by the kernel, not by `ip
    // addr add`; skipping them is covered by `ip::tests::interface_picks_a_stable_global_address`.)
    ns.ip(&[
        "-n",
        &ns.name,
        "-6",
        "addr",
        "add",
        "2001:db8::99/64",
        "dev",
        "wan0",
        "nodad",
    ]);
    ns.ip(&[
        "-n",
        &ns.name,
        "-6",
        "addr",
        "del",
        "2001:db8::50/64",
        "dev",
        "wan0",
    ]);
    wait("AAAA", "2001:db8::99", Duration::from_secs(10));
}

/// UPnP IGD against a real miniupnpd in the namespace: the router's WAN side, its LAN side, and
/// the daemon asking it. miniupnpd refuses to report reserved or documentation addresses, so it
/// is told (`ext_ip`) to report 100.128.0.x: data only, published on the loopback DNS server
/// of the namespace and never contacted.
#[test]
fn upnp_router_address_is_followed() {
    common::need("dig", "bind9-dnsutils");
    common::need("miniupnpd", "miniupnpd-nftables");
    let ns = Netns::new("us-ddns");
    ns.veth_inside("wan0", "wan1");
    ns.ip(&[
        "-n",
        &ns.name,
        "addr",
        "add",
        "192.0.2.77/24",
        "dev",
        "wan0",
    ]);
    ns.ip(&[
        "-n", &ns.name, "link", "add", "lan0", "type", "veth", "peer", "name", "lanc",
    ]);
    ns.ip(&["-n", &ns.name, "link", "set", "lan0", "up"]);
    ns.ip(&["-n", &ns.name, "link", "set", "lanc", "up"]);
    ns.ip(&["-n", &ns.name, "addr", "add", "10.0.0.1/24", "dev", "lan0"]);
    let dir = tempfile::tempdir().unwrap();
    let router = |ext: &str| -> Child_ {
        let conf = dir.path().join("miniupnpd.conf");
        std::fs::write(
            &conf,
            format!(
                "ext_ifname=wan0\nlistening_ip=lan0\nhttp_port=45001\nenable_upnp=yes\nenable_natpmp=no\nsecure_mode=yes\nsystem_uptime=yes\next_ip={ext}\n\
                 uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b\nallow 1024-65535 10.0.0.0/24 1024-65535\ndeny 0-65535 0.0.0.0/0 0-65535\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("miniupnpd.log")).unwrap();
        let c = Child_(
            ns.exec(&[
                "/usr/sbin/miniupnpd",
                "-f",
                &conf.display().to_string(),
                "-d",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
        );
        let start = Instant::now();
        while !ns
            .exec(&["bash", "-c", "exec 3<>/dev/tcp/10.0.0.1/45001"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
        {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "miniupnpd did not start: {}",
                std::fs::read_to_string(dir.path().join("miniupnpd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        c
    };
    let mut r = router("100.128.0.1");
    let data = dir.path().join("data");
    std::fs::write(
        dir.path().join("c.toml"),
        format!(
            "data_dir = \"{}\"\n[dns]\nlisten = [\"127.0.0.1:0\"]\n[[dns.zones]]\nname = \"home.test\"\n[api]\nlisten = \"127.0.0.1:0\"\n[watcher]\nreferences = []\n\
             [ip]\ninterval = \"1s\"\nquorum = 1\n[[ip.sources]]\nname = \"router\"\ntype = \"upnp\"\nfamily = \"ipv4\"\nurl = \"http://10.0.0.1:45001/rootDesc.xml\"\n\
             [[ddns]]\nname = \"home.home.test\"\n",
            data.display()
        ),
    )
    .unwrap();
    let (_d, info) = ns.start_daemon(dir.path());
    let wait = |want: &str| {
        let start = Instant::now();
        while ns.dig(info.dns[0], "home.home.test", "A") != want {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "never {want}: {}",
                std::fs::read_to_string(dir.path().join("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait("100.128.0.1");
    // The router gets a new address.
    drop(r);
    r = router("100.128.0.2");
    wait("100.128.0.2");
    drop(r);
}
