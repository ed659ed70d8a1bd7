//! The TOML config loader: any text. A config either loads or gets an error naming the file,
//! line and key; it never panics, and an error never carries a secret's value.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match understudy::config::parse(Path::new("fuzz.toml"), text) {
        Ok(cfg) => {
            let _ = format!("{cfg:?}");
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains("fuzz.toml"), "an error that names no file: {msg}");
        }
    }
});
