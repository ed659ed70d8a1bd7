//! The TOML config loader: any text. A config either loads or gets an error naming the file,
//! line and key; it never panics, and an error never carries a secret's value.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::config_toml(data));
