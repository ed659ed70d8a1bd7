//! The built-in server as a hidden primary of real secondaries: BIND, Knot and PowerDNS each
//! take `example.test` by zone transfer with their own TSIG key, follow a failover and a
//! failback on NOTIFY (their SOA refresh is an hour, so only NOTIFY can move them in seconds),
//! hold exactly the zone the built-in server serves, and keep answering when the daemon is
//! gone. A secondary with the wrong key, and a stranger, get nothing.

use crate::common;

use std::time::Duration;

use common::secondary::{axfr_lines, within, Secondary, SecondaryKind};
use common::*;

fn config(
    primary: std::net::SocketAddr,
    standby: std::net::SocketAddr,
    port: u16,
    secondaries: &[&Secondary],
) -> String {
    let mut c = one_site(primary, standby, "").replace(
        "listen = [\"127.0.0.1:0\"]\nttl = 30",
        &format!("listen = [\"127.0.0.1:{port}\"]\nttl = 30"),
    );
    for s in secondaries {
        c.push_str(&format!(
            "\n[[dns.secondaries]]\nname = \"{:?}\"\naddress = \"{}\"\ntsig_key_file = \"{}\"\n",
            s.kind,
            s.addr,
            s.key_file.display()
        ));
    }
    c
}

#[test]
fn bind_knot_and_powerdns_follow_failover_and_failback_and_outlive_the_primary() {
    let mut origin = Nginx::start("127.0.0.1", "primary");
    let standby = Nginx::start("127.0.0.2", "standby");
    let mut bind = Secondary::prepare(SecondaryKind::Bind, "bind-xfr");
    let mut knot = Secondary::prepare(SecondaryKind::Knot, "knot-xfr");
    let mut pdns = Secondary::prepare(SecondaryKind::Pdns, "pdns-xfr");
    // Same key name as BIND's, another secret.
    let mut wrong = Secondary::prepare(SecondaryKind::Bind, "bind-xfr");
    wrong.key_file = bind.key_file.clone();
    let mut wrong = wrong.with_wrong_secret();
    let port = free_port("127.0.0.1");
    let mut d = Daemon::start(&config(
        origin.addr,
        standby.addr,
        port,
        &[&bind, &knot, &pdns],
    ));
    d.wait_standby_ready();
    let primary = d.dns();
    for s in [&mut bind, &mut knot, &mut pdns, &mut wrong] {
        s.start(primary);
    }
    let all = [&bind, &knot, &pdns];
    for s in all {
        within(
            Duration::from_secs(30),
            &format!("{:?} to take the zone", s.kind),
            || s.a("www.example.test") == ["127.0.0.1"],
        );
    }

    // What each holds is what the built-in server serves.
    let bind_key = format!("bind-xfr:{}", bind.secret);
    let served = axfr_lines(primary, Some(&bind_key));
    assert!(
        served
            .iter()
            .any(|l| l.starts_with("www.example.test. 30 in a 127.0.0.1")),
        "{served:#?}"
    );
    for s in all {
        assert_eq!(
            s.axfr(),
            served,
            "{:?} holds another zone than the primary serves",
            s.kind
        );
    }
    // A stranger and the wrong key get nothing.
    assert!(
        axfr_lines(primary, None).is_empty(),
        "an unsigned AXFR was answered"
    );
    assert!(
        axfr_lines(primary, Some(&format!("bind-xfr:{}", wrong.secret))).is_empty(),
        "an AXFR with the wrong secret was answered"
    );
    assert!(wrong.a("www.example.test").is_empty());
    within(Duration::from_secs(10), "the refusal in the log", || {
        d.log().contains("zone transfer refused")
            && d.log().contains("does not verify with key bind-xfr")
    });

    // Failover: every secondary follows within seconds of the primary's own answer.
    origin.kill();
    d.wait_answer("www.example.test", "127.0.0.2", Duration::from_secs(10));
    for s in all {
        let took = within(
            Duration::from_secs(10),
            &format!("{:?} to follow the failover", s.kind),
            || s.a("www.example.test") == ["127.0.0.2"],
        );
        eprintln!(
            "{:?} followed the failover {took:?} after the primary",
            s.kind
        );
        assert_eq!(
            s.a("example.test"),
            ["127.0.0.2"],
            "{:?}: the alias too",
            s.kind
        );
    }
    let served = axfr_lines(primary, Some(&bind_key));
    for s in all {
        assert_eq!(s.axfr(), served, "{:?} after the failover", s.kind);
    }

    // Failback.
    origin.restart();
    d.wait_answer("www.example.test", "127.0.0.1", Duration::from_secs(15));
    for s in all {
        within(
            Duration::from_secs(10),
            &format!("{:?} to follow the failback", s.kind),
            || s.a("www.example.test") == ["127.0.0.1"],
        );
    }

    // `status` says each secondary answered NOTIFY and took a transfer.
    let secs = within_status(&d);
    assert_eq!(secs.len(), 3, "{secs:#?}");
    // BIND and Knot ask for IXFR once they hold the zone, and get a difference from the journal.
    for s in secs.iter().filter(|s| s.secondary != "Pdns") {
        assert_eq!(s.transfer_kind.as_deref(), Some("IXFR"), "{s:#?}");
    }
    let (_, text, _) = d.cli(&["status"]);
    assert!(text.contains("secondaries of the built-in zones"), "{text}");

    // The primary gone: the secondaries keep answering the last published answer.
    d.stop();
    std::thread::sleep(Duration::from_secs(1));
    for s in all {
        assert_eq!(
            s.a("www.example.test"),
            ["127.0.0.1"],
            "{:?} with the primary gone",
            s.kind
        );
    }
}

/// Waits until every secondary has answered the latest NOTIFY and taken a transfer.
fn within_status(d: &Daemon) -> Vec<understudy::dns::notify::SecondaryState> {
    let mut last = vec![];
    within(Duration::from_secs(10), "every NOTIFY answered", || {
        last = d.report().secondaries;
        last.len() == 3
            && last.iter().all(|s| {
                s.notified_serial.is_some()
                    && s.acked_serial == s.notified_serial
                    && s.transferred_serial.is_some()
            })
    });
    last
}
