//! The public-address sources' answer parsers: an HTTP echo's body (plain or JSON), a UPnP
//! router's device description, and `ip -j addr` output. Whatever they accept as an address
//! must be a public one of the asked family.
#![no_main]

use libfuzzer_sys::fuzz_target;
use understudy::ip::agree::{non_public, validate};
use understudy::ip::{answer_text, interface_address, upnp, Family};

fuzz_target!(|data: &[u8]| {
    for field in [None, Some("ip"), Some("data.address")] {
        if let Ok(text) = answer_text(data, field) {
            for family in [Family::Ipv4, Family::Ipv6] {
                if let Ok(ip) = validate(&text, family, &[]) {
                    assert_eq!(Family::of(&ip), family);
                    assert!(non_public(&ip).is_none(), "{ip} accepted");
                }
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = upnp::control_url(text);
    }
    let _ = interface_address(data, "eth0", Family::Ipv4);
    let _ = interface_address(data, "eth0", Family::Ipv6);
});
