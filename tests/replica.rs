//! understudy as a secondary (`[[dns.primaries]]`): a second understudy takes `example.test`
//! from the first by zone transfer on its NOTIFY and serves it, follows a failover and a
//! failback, keeps serving its kept copy across a restart with the primary gone, and never
//! serves a serial older than one it served. BIND and Knot as primaries, changed by `nsupdate`,
//! are followed the same way. A replica with the wrong key takes nothing.

use crate::common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::authdns::{AuthServer, Kind};
use common::*;
use hickory_proto::rr::{RData, RecordType};

fn key_file(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    common::authdns::tsig_keygen(dir, name, "hmac-sha256").0
}

fn replica_config(port: u16, primary: SocketAddr, key: &std::path::Path) -> String {
    format!(
        "data_dir = \"{{DATA}}\"\n[dns]\nlisten = [\"127.0.0.1:{port}\"]\n\
         [[dns.primaries]]\nname = \"home\"\naddress = \"{primary}\"\nzones = [\"example.test\"]\ntsig_key_file = \"{}\"\n\
         [api]\nlisten = \"127.0.0.1:0\"\n[watcher]\nreferences = []\n",
        key.display()
    )
}

fn serial(server: SocketAddr) -> Option<u32> {
    let r = query(server, "example.test", RecordType::SOA).ok()?;
    r.message.answers.iter().find_map(|a| match &a.data {
        RData::SOA(s) => Some(s.serial),
        _ => None,
    })
}

fn a(server: SocketAddr, name: &str) -> Vec<String> {
    answer(server, name)
        .iter()
        .map(|ip| ip.to_string())
        .collect()
}

#[test]
fn a_second_understudy_follows_the_first_and_outlives_it() {
    let keys = tempfile::tempdir().unwrap();
    let key = key_file(keys.path(), "replica-xfr");
    let mut origin = Nginx::start("127.0.0.1", "primary");
    let standby = Nginx::start("127.0.0.2", "standby");
    let (port_a, port_b) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    let b_addr: SocketAddr = format!("127.0.0.1:{port_b}").parse().unwrap();
    let primary_cfg = one_site(origin.addr, standby.addr, "").replace(
        "listen = [\"127.0.0.1:0\"]\nttl = 30",
        &format!("listen = [\"127.0.0.1:{port_a}\"]\nttl = 30"),
    ) + &format!(
        "\n[[dns.secondaries]]\nname = \"replica\"\naddress = \"{b_addr}\"\ntsig_key_file = \"{}\"\n",
        key.display()
    );
    let mut a_d = Daemon::start(&primary_cfg);
    a_d.wait_standby_ready();
    let a_addr = a_d.dns();
    let mut b = Daemon::start(&replica_config(port_b, a_addr, &key));
    // Wrong secret, same key name: takes nothing.
    let wrong_key = keys.path().join("wrong.key");
    let text = std::fs::read_to_string(key_file(keys.path(), "replica-xfr2")).unwrap();
    std::fs::write(&wrong_key, text.replace("replica-xfr2", "replica-xfr")).unwrap();
    let wrong = Daemon::start(&replica_config(free_port("127.0.0.1"), a_addr, &wrong_key));

    wait_until(
        Duration::from_secs(20),
        "the replica to take the zone",
        || a(b.dns(), "www.example.test") == ["127.0.0.1"],
    );
    assert_eq!(serial(b.dns()), serial(a_addr));
    // Static records come along.
    let mx = query(b.dns(), "example.test", RecordType::MX).unwrap();
    assert_eq!(mx.message.answers.len(), 1, "{:?}", mx.message);
    assert!(mx.message.metadata.authoritative);

    // A failover on the primary reaches the replica by NOTIFY (its SOA refresh is an hour).
    let before = serial(b.dns()).unwrap();
    origin.kill();
    a_d.wait_answer("www.example.test", "127.0.0.2", Duration::from_secs(10));
    let moved = Instant::now();
    wait_until(
        Duration::from_secs(10),
        "the replica to follow the failover",
        || a(b.dns(), "www.example.test") == ["127.0.0.2"],
    );
    eprintln!(
        "replica followed the failover {:?} after the primary",
        moved.elapsed()
    );
    let after = serial(b.dns()).unwrap();
    assert!(after > before, "{after} after {before}");
    assert!(
        b.log().contains("zone taken from its primary"),
        "{}",
        b.log()
    );

    // The wrong key never got the zone, and says why.
    assert!(a(wrong.dns(), "www.example.test").is_empty());
    wait_until(Duration::from_secs(10), "the wrong key's error", || {
        wrong
            .log()
            .contains("cannot take the zone from its primary")
    });
    assert!(
        wrong.log().contains("another secret for key replica-xfr"),
        "{}",
        wrong.log()
    );
    assert!(a_d.log().contains("does not verify"), "{}", a_d.log());

    // The primary gone and the replica restarted: the kept copy is served at once.
    a_d.stop();
    b.restart();
    assert_eq!(a(b.dns(), "www.example.test"), ["127.0.0.2"]);
    assert_eq!(serial(b.dns()), Some(after));
    assert!(b.log().contains("serving the kept copy"), "{}", b.log());

    // The primary back with its origin: the failback reaches the replica, at a newer serial.
    origin.restart();
    a_d.restart_after_stop();
    wait_until(
        Duration::from_secs(60),
        "the replica to follow the failback",
        || a(b.dns(), "www.example.test") == ["127.0.0.1"],
    );
    let back = serial(b.dns()).unwrap();
    assert!(back > after, "{back} after {after}");
}

#[test]
fn bind_and_knot_as_primaries_of_understudy() {
    for kind in [Kind::Bind, Kind::Knot] {
        let port = free_port("127.0.0.1");
        let replica: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let primary = AuthServer::start_notifying(kind, "hmac-sha256", &[replica]);
        let b = Daemon::start(&replica_config(port, primary.addr, &primary.key_file));
        wait_until(
            Duration::from_secs(20),
            "the replica to take the zone",
            || a(b.dns(), "mail.example.test") == ["192.0.2.25"],
        );
        assert_eq!(serial(b.dns()), primary.serial(), "{kind:?}");
        for i in 1..=3 {
            primary.update(&format!(
                "update delete www.example.test A\nupdate add www.example.test 30 A 192.0.2.{i}\n"
            ));
            let want = format!("192.0.2.{i}");
            wait_until(
                Duration::from_secs(10),
                &format!("{kind:?}'s change {i} to reach the replica"),
                || a(b.dns(), "www.example.test") == [want.clone()],
            );
            assert_eq!(serial(b.dns()), primary.serial(), "{kind:?}");
        }
        // After the first AXFR, each change came as an IXFR difference.
        assert!(
            b.log().contains("kind=\"IXFR\"") || b.log().contains("kind=IXFR"),
            "{kind:?}: {}",
            b.log()
        );
    }
}
