//! The TSIG key file parser (`tsig-keygen` output, as operators paste it): any text. A key it
//! accepts has a name and a secret.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::tsig_key(data));
