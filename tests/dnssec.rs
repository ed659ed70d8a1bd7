//! DNSSEC (issue 15, part C): a built-in zone signed online, checked by three validators that
//! are not ours — BIND's `dnssec-verify` and Knot's `kzonecheck` on the zone as a signed AXFR
//! gives it (and as a BIND secondary holds it), and `delv` asking the daemon itself with the
//! zone's KSK as its trust anchor — before and after a failover, across a restart, and across
//! a ZSK rollover.

use crate::common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use common::secondary::{axfr_zone_file, Secondary, SecondaryKind};
use common::*;
use hickory_proto::rr::RecordType;

/// Static records of every shape a proof needs: a wildcard, an empty non-terminal, a CNAME,
/// an insecure delegation with glue.
const RECORDS: &str = r#"records = ["ns1 A 127.0.0.1", "@ MX 10 mail", "mail A 192.0.2.25", "* TXT \"wild\"", "host1.deep TXT \"x\"", "blog CNAME www", "sub NS ns1.sub", "ns1.sub A 192.0.2.53"]"#;

fn signed_site(
    primary: SocketAddr,
    standby: SocketAddr,
    dnssec: &str,
    secondary: &Secondary,
) -> String {
    let cfg = one_site(primary, standby, "");
    let cfg = cfg.replacen(
        "records = [\"@ MX 10 mail\", \"mail A 192.0.2.25\", \"@ TXT \\\"v=spf1 -all\\\"\"]",
        &format!("{RECORDS}\n[dns.zones.dnssec]\n{dnssec}"),
        1,
    );
    assert!(cfg.contains("[dns.zones.dnssec]"), "{cfg}");
    format!(
        "{cfg}\n[[dns.secondaries]]\nname = \"bind\"\naddress = \"{}\"\ntsig_key_file = \"{}\"\n",
        secondary.addr,
        secondary.key_file.display()
    )
}

/// The zone as an AXFR from `server` (signed with `key`, "name:secret") gives it, in a file.
fn zone_file(server: SocketAddr, key: Option<&str>, dir: &std::path::Path) -> std::path::PathBuf {
    let text = axfr_zone_file(server, key);
    assert!(text.lines().count() > 20, "AXFR from {server}: {text}");
    let path = dir.join(format!("zone-{}.db", server.port()));
    std::fs::write(&path, text).unwrap();
    path
}

/// BIND's and Knot's verdicts on a zone file; panics with what they said when either refuses.
fn verify(path: &std::path::Path) {
    need("dnssec-verify", "bind9-utils");
    need("kzonecheck", "knot-dnssecutils");
    let bind = Command::new("dnssec-verify")
        .args(["-o", "example.test"])
        .arg(path)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&bind.stderr).to_string() + &String::from_utf8_lossy(&bind.stdout);
    assert!(
        bind.status.success() && said.contains("Zone fully signed"),
        "dnssec-verify: {said}"
    );
    let knot = Command::new("kzonecheck")
        .args(["-o", "example.test", "-d", "on"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        knot.status.success(),
        "kzonecheck: {}{}",
        String::from_utf8_lossy(&knot.stdout),
        String::from_utf8_lossy(&knot.stderr)
    );
}

/// A trust anchor file for delv: the zone's KSK as the daemon serves it.
fn anchor(server: SocketAddr, dir: &std::path::Path) -> std::path::PathBuf {
    let r = query(server, "example.test", RecordType::DNSKEY).unwrap();
    let ksk = r
        .message
        .answers
        .iter()
        .map(|a| a.data.to_string())
        .find(|d| d.starts_with("257 "))
        .expect("a KSK in the DNSKEY set");
    let f: Vec<&str> = ksk.split_whitespace().collect();
    let path = dir.join("anchor.conf");
    std::fs::write(
        &path,
        format!(
            "trust-anchors {{ example.test. static-key {} {} {} \"{}\"; }};\n",
            f[0],
            f[1],
            f[2],
            f[3..].join("")
        ),
    )
    .unwrap();
    path
}

/// delv's verdict on one question, asked of `server` with `anchor`: the line it starts with
/// ("; fully validated", "; negative response, fully validated", or its failure).
fn delv(server: SocketAddr, anchor: &std::path::Path, name: &str, t: &str) -> String {
    need("delv", "bind9-dnsutils");
    let out = Command::new("delv")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "-a"])
        .arg(anchor)
        .args(["+root=example.test", name, t])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    text.lines()
        .find(|l| l.contains("validated") || l.contains("validation") || l.contains("failed"))
        .unwrap_or(&text)
        .to_string()
}

/// Every shape of answer, validated by delv.
fn all_validate(server: SocketAddr, anchor: &std::path::Path) {
    let cases = [
        ("www.example.test", "A", "; fully validated"),
        ("example.test", "A", "; fully validated"),
        ("example.test", "SOA", "; fully validated"),
        ("example.test", "DNSKEY", "; fully validated"),
        ("example.test", "CDS", "; fully validated"),
        ("example.test", "CDNSKEY", "; fully validated"),
        ("mail.example.test", "A", "; fully validated"),
        ("blog.example.test", "A", "; fully validated"),
        ("anything.example.test", "TXT", "; fully validated"),
        (
            "www.example.test",
            "TXT",
            "; negative response, fully validated",
        ),
        (
            "anything.example.test",
            "A",
            "; negative response, fully validated",
        ),
        (
            "deep.example.test",
            "A",
            "; negative response, fully validated",
        ),
        (
            "nope.deep.example.test",
            "A",
            "; negative response, fully validated",
        ),
        (
            "sub.example.test",
            "DS",
            "; negative response, fully validated",
        ),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(n, t, want)| {
            let got = delv(server, anchor, n, t);
            (!got.starts_with(want)).then(|| format!("{n} {t}: {got} (want {want})"))
        })
        .collect();
    assert!(wrong.is_empty(), "delv refused:\n{}", wrong.join("\n"));
}

/// The RRSIG of `name` `t` as served (its text: key tag, times, signature).
fn rrsig(server: SocketAddr, name: &str, t: RecordType) -> Vec<String> {
    let mut m = hickory_proto::op::Message::query();
    m.metadata.id = 7;
    m.add_query(hickory_proto::op::Query::query(
        hickory_proto::rr::Name::from_ascii(format!("{name}.")).unwrap(),
        t,
    ));
    let mut e = hickory_proto::op::Edns::new();
    e.set_max_payload(1232).set_dnssec_ok(true);
    m.edns = Some(e);
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.send_to(&m.to_vec().unwrap(), server).unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.recv(&mut buf).unwrap();
    let r = hickory_proto::op::Message::from_vec(&buf[..n]).unwrap();
    r.answers
        .iter()
        .filter(|a| a.record_type() == RecordType::RRSIG)
        .map(|a| a.data.to_string())
        .collect()
}

#[test]
fn a_signed_zone_validates_before_and_after_a_failover_and_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let mut origin = Nginx::start("127.0.0.1", "primary");
    let standby = Nginx::start("127.0.0.2", "standby");
    let mut bind = Secondary::prepare(SecondaryKind::Bind, "bind-xfr");
    let mut d = Daemon::start(&signed_site(origin.addr, standby.addr, "", &bind));
    d.wait_standby_ready();
    bind.start(d.dns());
    let key = format!("bind-xfr:{}", bind.secret);

    // The keys: made at the first start, private halves 0600.
    let keydir = d.dir.path().join("data/dnssec/example.test");
    for f in std::fs::read_dir(&keydir).unwrap() {
        let f = f.unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = f.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.path().display());
    }

    let anchor = anchor(d.dns(), tmp.path());
    verify(&zone_file(d.dns(), Some(&key), tmp.path()));
    all_validate(d.dns(), &anchor);
    let mail_sig = rrsig(d.dns(), "mail.example.test", RecordType::A);
    let www_sig = rrsig(d.dns(), "www.example.test", RecordType::A);
    assert_eq!(mail_sig.len(), 1, "{mail_sig:?}");

    // The failover re-signs what it changed, at once, and nothing else.
    origin.kill();
    d.wait_answer("www.example.test", "127.0.0.2", Duration::from_secs(10));
    assert_eq!(
        delv(d.dns(), &anchor, "www.example.test", "A"),
        "; fully validated"
    );
    assert_ne!(rrsig(d.dns(), "www.example.test", RecordType::A), www_sig);
    assert_eq!(
        rrsig(d.dns(), "mail.example.test", RecordType::A),
        mail_sig,
        "an unchanged RRset keeps its signature"
    );
    verify(&zone_file(d.dns(), Some(&key), tmp.path()));
    all_validate(d.dns(), &anchor);

    // The transfers carry the signatures: the BIND secondary's copy verifies too.
    wait_until(
        Duration::from_secs(10),
        "the secondary to follow the failover",
        || bind.a("www.example.test") == ["127.0.0.2"],
    );
    verify(&zone_file(bind.addr, None, tmp.path()));

    // A restart keeps the keys: the same trust anchor still validates.
    d.restart();
    assert_eq!(
        std::fs::read(anchor_path_again(d.dns(), tmp.path())).unwrap(),
        std::fs::read(&anchor).unwrap(),
        "the KSK survives a restart"
    );
    all_validate(d.dns(), &anchor);

    // The parent's DS, as `dns ds` prints it, is the KSK's.
    let (code, out, err) = d.cli(&["dns", "ds"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("example.test. IN DS ") && out.contains(" 13 2 "),
        "{out}"
    );
}

fn anchor_path_again(server: SocketAddr, dir: &std::path::Path) -> std::path::PathBuf {
    let again = dir.join("again");
    std::fs::create_dir_all(&again).unwrap();
    anchor(server, &again)
}

/// The ZSK tags the DNSKEY set holds, and the tag www's A is signed with.
fn zsks(server: SocketAddr) -> (usize, Option<String>) {
    let keys = query(server, "example.test", RecordType::DNSKEY)
        .map(|r| {
            r.message
                .answers
                .iter()
                .filter(|a| a.data.to_string().starts_with("256 "))
                .count()
        })
        .unwrap_or(0);
    let signer = rrsig(server, "www.example.test", RecordType::A)
        .first()
        .and_then(|s| s.split_whitespace().nth(6).map(str::to_string));
    (keys, signer)
}

#[test]
fn a_zsk_rollover_keeps_the_zone_valid_throughout() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = Nginx::start("127.0.0.1", "primary");
    let standby = Nginx::start("127.0.0.2", "standby");
    let bind = Secondary::prepare(SecondaryKind::Bind, "bind-xfr");
    // TTL 2 s: the successor is published 4 s before it signs; a ZSK lives 12 s. Ed25519
    // here, ECDSA P-256 (the default) in the test above.
    let cfg = signed_site(
        origin.addr,
        standby.addr,
        "algorithm = \"ed25519\"\nzsk_lifetime = \"12s\"\n",
        &bind,
    )
    .replacen("ttl = 30", "ttl = 2", 1);
    let d = Daemon::start(&cfg);
    let key = format!("bind-xfr:{}", bind.secret);
    let anchor = anchor(d.dns(), tmp.path());
    let (one, first) = zsks(d.dns());
    assert_eq!(one, 1);
    all_validate(d.dns(), &anchor);

    // Pre-published: two ZSKs, still signed by the first.
    wait_until(
        Duration::from_secs(20),
        "a second ZSK in the DNSKEY set",
        || zsks(d.dns()).0 == 2,
    );
    assert_eq!(zsks(d.dns()).1, first, "the successor does not sign yet");
    verify(&zone_file(d.dns(), Some(&key), tmp.path()));
    all_validate(d.dns(), &anchor);

    // Switched: signed by the successor, the old key still published.
    wait_until(Duration::from_secs(20), "the successor to sign", || {
        let (n, by) = zsks(d.dns());
        n >= 2 && by != first
    });
    verify(&zone_file(d.dns(), Some(&key), tmp.path()));
    all_validate(d.dns(), &anchor);
    assert!(d.log().contains("Retire"), "{}", d.log());
}
