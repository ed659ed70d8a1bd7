use super::*;
use std::path::Path;

fn build(z: &crate::config::ZoneConfig, m: &ManagedRecords, ttl: u32, serial: u32) -> Zone {
    Zone::build(&apex(z), &z.records, m, ttl, serial)
}

fn apex(z: &crate::config::ZoneConfig) -> Apex<'_> {
    Apex {
        origin: &z.origin,
        nameservers: &z.nameservers,
        hostmaster: &z.hostmaster,
    }
}

fn zones() -> ZoneSet {
    let cfg = crate::config::parse(
        Path::new("t.toml"),
        r#"
[[dns.zones]]
name = "example.test"
records = ["@ MX 10 mail", "mail A 192.0.2.25", "blog CNAME www", "ext CNAME elsewhere.org.", "a.b.deep TXT \"x\""]
"#,
    )
    .unwrap();
    let mut m = ManagedRecords::default();
    m.set(
        fqdn("www.example.test"),
        RecordType::A,
        vec!["192.0.2.10".parse().unwrap()],
    );
    ZoneSet {
        zones: vec![build(&cfg.dns.zones[0], &m, 30, 7)],
        published_ms: 0,
    }
}

fn q(z: &ZoneSet, name: &str, t: RecordType) -> Answer {
    z.lookup(&LowerName::new(&fqdn(name)), t, false)
}

#[test]
fn answers_managed_and_static_records() {
    let z = zones();
    let a = q(&z, "www.example.test", RecordType::A);
    assert_eq!(a.rcode, ResponseCode::NoError);
    assert!(a.authoritative);
    assert_eq!(a.answers.len(), 1);
    assert_eq!(
        a.answers[0].data,
        RData::A(A("192.0.2.10".parse().unwrap()))
    );
    assert_eq!(
        q(&z, "WWW.Example.Test", RecordType::A).answers.len(),
        1,
        "names are case-insensitive"
    );
    assert_eq!(q(&z, "example.test", RecordType::MX).answers.len(), 1);
    let soa = q(&z, "example.test", RecordType::SOA);
    assert_eq!(soa.answers.len(), 1);
    assert_eq!(z.zones[0].serial(), 7);
    assert_eq!(q(&z, "example.test", RecordType::NS).answers.len(), 1);
}

#[test]
fn refuses_names_outside_its_zones() {
    let z = zones();
    let a = q(&z, "www.example.org", RecordType::A);
    assert_eq!(a.rcode, ResponseCode::Refused);
    assert!(a.answers.is_empty() && !a.authoritative);
    assert_eq!(q(&z, "test", RecordType::A).rcode, ResponseCode::Refused);
}

#[test]
fn nodata_nxdomain_and_empty_non_terminals() {
    let z = zones();
    let nodata = q(&z, "www.example.test", RecordType::AAAA);
    assert_eq!(
        (nodata.rcode, nodata.answers.len(), nodata.authorities.len()),
        (ResponseCode::NoError, 0, 1)
    );
    let nx = q(&z, "nope.example.test", RecordType::A);
    assert_eq!(
        (nx.rcode, nx.authorities.len()),
        (ResponseCode::NXDomain, 1)
    );
    assert_eq!(
        q(&z, "b.deep.example.test", RecordType::A).rcode,
        ResponseCode::NoError,
        "empty non-terminal exists"
    );
}

#[test]
fn follows_cnames_inside_the_zone_only() {
    let z = zones();
    let a = q(&z, "blog.example.test", RecordType::A);
    assert_eq!(a.answers.len(), 2);
    assert_eq!(a.answers[1].record_type(), RecordType::A);
    let ext = q(&z, "ext.example.test", RecordType::A);
    assert_eq!((ext.rcode, ext.answers.len()), (ResponseCode::NoError, 1));
    assert_eq!(
        q(&z, "blog.example.test", RecordType::CNAME).answers.len(),
        1
    );
}

#[test]
fn serial_content_ignores_the_serial_but_not_records() {
    let cfg = crate::config::parse(
        Path::new("t.toml"),
        "[[dns.zones]]\nname = \"example.test\"\n",
    )
    .unwrap();
    let z = &cfg.dns.zones[0];
    let mut m = ManagedRecords::default();
    m.set(
        fqdn("www.example.test"),
        RecordType::A,
        vec!["192.0.2.10".parse().unwrap()],
    );
    let one = build(z, &m, 30, 0).content();
    let mut later = build(z, &m, 30, 0);
    later.set_serial(42);
    assert_eq!(later.serial(), 42);
    assert_eq!(
        one,
        later.content(),
        "the serial is not part of the content"
    );
    m.set(
        fqdn("www.example.test"),
        RecordType::A,
        vec!["192.0.2.20".parse().unwrap()],
    );
    assert_ne!(one, build(z, &m, 30, 0).content());
}

/// A zone with wildcards and a delegation, in the shapes RFC 4592 §2.2.1 uses.
fn shaped() -> ZoneSet {
    let cfg = crate::config::parse(
        Path::new("t.toml"),
        r#"
[[dns.zones]]
name = "example.test"
records = [
  "* TXT \"wild\"",
  "* MX 10 mail",
  "mail A 192.0.2.25",
  "*.apps CNAME mail",
  "host1.deep TXT \"x\"",
  "_ssh._tcp.host1 SRV 0 0 22 mail",
  "sub NS ns1.sub",
  "sub NS ns.elsewhere.org.",
  "ns1.sub A 192.0.2.53",
  "ns1.sub AAAA 2001:db8::53",
  "sub DS 12345 13 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE8E7B3E2F6D2C4D3E2F1A0B9C",
]
"#,
    )
    .unwrap();
    ZoneSet {
        zones: vec![build(&cfg.dns.zones[0], &ManagedRecords::default(), 30, 7)],
        published_ms: 0,
    }
}

fn owners(a: &Answer) -> Vec<String> {
    a.answers
        .iter()
        .map(|r| format!("{} {}", r.name, r.record_type()))
        .collect()
}

#[test]
fn a_wildcard_answers_for_names_that_do_not_exist() {
    let z = shaped();
    let a = q(&z, "anything.example.test", RecordType::TXT);
    assert_eq!(a.rcode, ResponseCode::NoError);
    assert_eq!(
        owners(&a),
        ["anything.example.test. TXT"],
        "the asked name owns it"
    );
    assert!(a.authoritative);
    // Deeper names below a wildcard's parent match too (the closest encloser is the apex).
    assert_eq!(
        owners(&q(&z, "a.b.c.example.test", RecordType::MX)),
        ["a.b.c.example.test. MX"]
    );
    // The wildcard exists, but not with this type: NODATA, not NXDOMAIN.
    let nodata = q(&z, "anything.example.test", RecordType::AAAA);
    assert_eq!(
        (nodata.rcode, nodata.answers.len(), nodata.authorities.len()),
        (ResponseCode::NoError, 0, 1)
    );
    // ANY at a wildcard: every set, owned by the asked name.
    assert_eq!(q(&z, "x.example.test", RecordType::ANY).answers.len(), 2);
}

#[test]
fn a_wildcard_never_answers_for_an_existing_name_or_below_one() {
    let z = shaped();
    // mail exists: its own A, and NODATA for TXT (the wildcard does not fill in).
    let mail = q(&z, "mail.example.test", RecordType::TXT);
    assert_eq!((mail.rcode, mail.answers.len()), (ResponseCode::NoError, 0));
    // deep exists as an empty non-terminal: NODATA at deep, and a name below it that does not
    // exist is NXDOMAIN (its closest encloser is deep, which has no wildcard).
    let deep = q(&z, "deep.example.test", RecordType::TXT);
    assert_eq!((deep.rcode, deep.answers.len()), (ResponseCode::NoError, 0));
    let below = q(&z, "nope.deep.example.test", RecordType::TXT);
    assert_eq!(below.rcode, ResponseCode::NXDomain);
    // host1 exists (an empty non-terminal above _ssh._tcp.host1), so it is _udp.host1's closest
    // encloser, and host1 has no wildcard child: NXDOMAIN (RFC 4592 §2.2.1's example).
    assert_eq!(
        q(&z, "_udp.host1.example.test", RecordType::SRV).rcode,
        ResponseCode::NXDomain
    );
}

#[test]
fn a_wildcard_cname_is_followed_with_the_asked_name_as_owner() {
    let z = shaped();
    let a = q(&z, "shop.apps.example.test", RecordType::A);
    assert_eq!(a.rcode, ResponseCode::NoError);
    assert_eq!(
        owners(&a),
        ["shop.apps.example.test. CNAME", "mail.example.test. A"]
    );
    // apps itself exists (an empty non-terminal): NODATA, the wildcard below it is not its own.
    let apps = q(&z, "apps.example.test", RecordType::A);
    assert_eq!((apps.rcode, apps.answers.len()), (ResponseCode::NoError, 0));
}

#[test]
fn a_delegation_is_referred_with_its_glue() {
    let z = shaped();
    for name in [
        "sub.example.test",
        "www.sub.example.test",
        "a.b.sub.example.test",
    ] {
        let r = q(&z, name, RecordType::A);
        assert_eq!(r.rcode, ResponseCode::NoError, "{name}");
        assert!(!r.authoritative, "{name}: a referral is not authoritative");
        assert!(r.answers.is_empty(), "{name}");
        assert_eq!(r.authorities.len(), 2, "{name}: the cut's NS records");
        assert!(r
            .authorities
            .iter()
            .all(|a| a.record_type() == RecordType::NS && a.name == fqdn("sub.example.test")));
        let mut glue: Vec<String> = r.additionals.iter().map(|g| g.data.to_string()).collect();
        glue.sort();
        assert_eq!(
            glue,
            ["192.0.2.53", "2001:db8::53"],
            "{name}: only in-zone targets"
        );
    }
    // The glue itself is below the cut: referred too, never answered authoritatively.
    assert!(!q(&z, "ns1.sub.example.test", RecordType::A).authoritative);
    // DS at the cut is the parent's: answered, authoritatively.
    let ds = q(&z, "sub.example.test", RecordType::DS);
    assert!(ds.authoritative);
    assert_eq!(owners(&ds), ["sub.example.test. DS"]);
    // The wildcard at the apex does not reach below the cut.
    assert!(!q(&z, "x.sub.example.test", RecordType::TXT).authoritative);
}
