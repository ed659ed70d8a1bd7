//! The public-address sources' answer parsers: an HTTP echo's body (plain or JSON), a UPnP
//! router's device description, and `ip -j addr` output. Whatever they accept as an address
//! must be a public one of the asked family.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::ip_answer(data));
