//! The reference extractors: any body as HTML (rewritten for the offline export too), CSS, a
//! web-app manifest, a sitemap, a script and JSON. Every reference found must be an absolute
//! URL; nothing may panic.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::html_css_extract(data));
