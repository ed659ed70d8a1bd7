//! The built-in DNS server's request handler: any bytes, over UDP and TCP, against a zone
//! with a wildcard, a delegation with glue, CNAME chains and a managed record. It must answer
//! or stay silent, never panic.
#![no_main]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;

use hickory_proto::rr::{Name, RecordType};
use libfuzzer_sys::fuzz_target;
use understudy::dns::respond::respond;
use understudy::dns::zone::{Apex, Zone, ZoneSet};
use understudy::dns::ManagedRecords;

fn zones() -> &'static ZoneSet {
    static Z: OnceLock<ZoneSet> = OnceLock::new();
    Z.get_or_init(|| {
        let cfg = understudy::config::parse(
            Path::new("fuzz.toml"),
            r#"
[[dns.zones]]
name = "example.test"
records = ["@ MX 10 mail", "mail A 192.0.2.25", "blog CNAME www", "ext CNAME elsewhere.org.",
           "*.wild TXT \"w\"", "sub NS ns.sub", "ns.sub A 192.0.2.53", "a.b.deep TXT \"x\"",
           "@ CAA 0 issue \"letsencrypt.org\""]
"#,
        )
        .expect("the fuzz zone loads");
        let z = &cfg.dns.zones[0];
        let mut m = ManagedRecords::default();
        m.set(
            Name::from_ascii("www.example.test.").unwrap(),
            RecordType::A,
            vec!["192.0.2.10".parse().unwrap()],
        );
        let apex = Apex {
            origin: &z.origin,
            nameservers: &z.nameservers,
            hostmaster: &z.hostmaster,
        };
        ZoneSet {
            zones: vec![Zone::build(&apex, &z.records, &m, 30, 7)],
            published_ms: 0,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let src: SocketAddr = "192.0.2.99:5353".parse().unwrap();
    let z = zones();
    let _ = respond(z, &[], &[], data, src, false, 0);
    let _ = respond(z, &[], &[], data, src, true, 0);
});
