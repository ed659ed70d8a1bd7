//! The zone builder: each line of the input is a `records` entry of a `[[dns.zones]]` table
//! (as an operator writes them). Whatever the config accepts must build into a zone that
//! answers lookups; whatever it refuses must be refused with an error, not a panic.
#![no_main]

use std::path::Path;

use hickory_proto::rr::{LowerName, Name, RecordType};
use libfuzzer_sys::fuzz_target;
use understudy::dns::zone::{Apex, Zone, ZoneSet};
use understudy::dns::ManagedRecords;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines: Vec<String> = text.lines().take(32).map(str::to_string).collect();
    let records = serde_json::to_string(&lines).unwrap();
    let toml = format!("[[dns.zones]]\nname = \"example.test\"\nrecords = {records}\n");
    let Ok(cfg) = understudy::config::parse(Path::new("fuzz.toml"), &toml) else {
        return;
    };
    let z = &cfg.dns.zones[0];
    let apex = Apex {
        origin: &z.origin,
        nameservers: &z.nameservers,
        hostmaster: &z.hostmaster,
    };
    let zone = Zone::build(&apex, &z.records, &ManagedRecords::default(), 30, 1);
    let _ = zone.content();
    let set = ZoneSet {
        zones: vec![zone],
        published_ms: 0,
    };
    for r in &z.records {
        let name = LowerName::new(&r.name);
        let _ = set.lookup(&name, r.record_type(), false);
        let _ = set.lookup(&name, RecordType::ANY, true);
    }
    if let Ok(n) = Name::from_ascii("nothing.here.example.test.") {
        let _ = set.lookup(&LowerName::new(&n), RecordType::A, true);
    }
});
