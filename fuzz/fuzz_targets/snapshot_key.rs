//! The standby's request-target → snapshot key lookup and its fallback for unseen URLs:
//! any request target. A key, when there is one, stays on the site's origin; the fallback
//! never answers with an entry the snapshot does not hold.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::snapshot_key(data));
