//! The zone builder: each line of the input is a `records` entry of a `[[dns.zones]]` table
//! (as an operator writes them). Whatever the config accepts must build into a zone that
//! answers lookups; whatever it refuses must be refused with an error, not a panic.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::zone_build(data));
