//! The TSIG key file parser (`tsig-keygen` output, as operators paste it): any text. A key it
//! accepts has a name and a secret.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = understudy::config::parse_bind_key(text) {
        let _ = format!("{key:?}");
    }
});
