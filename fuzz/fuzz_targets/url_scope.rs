//! The URL scope resolver: any reference text against a page, then the scope check. A URL in
//! scope must have the site's own scheme, host and port.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::url_scope(data));
