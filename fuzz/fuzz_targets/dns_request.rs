//! The built-in DNS server's request handler: any bytes, over UDP and TCP, against a zone
//! with a wildcard, a delegation with glue, CNAME chains and a managed record. It must answer
//! or stay silent, never panic.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::dns_request(data));
