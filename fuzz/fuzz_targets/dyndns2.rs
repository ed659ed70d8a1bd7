//! The dyndns2 update endpoint's request parser: any query string and Authorization header.
//! Only the right credentials change anything, and only to a public address.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::dyndns2(data));
