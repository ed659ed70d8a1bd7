//! Leaf types and rules of names and addresses that every layer shares: the address family, a
//! CIDR network, a DNS name as a host, and the zone that holds a name. Plain data, no I/O;
//! configuration, the pure cores and the edges all use them.

use std::net::IpAddr;

use hickory_proto::rr::Name;

/// A DNS name as a host: ASCII (punycode), lower case, without the root dot
/// (`WWW.Example.test.` → `www.example.test`).
pub fn host_of(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

/// The zone that holds `name` among `zones`: the deepest one containing it, as in DNS itself.
pub fn deepest_zone<'a, T>(
    zones: impl IntoIterator<Item = &'a T>,
    origin: impl Fn(&T) -> &Name,
    name: &Name,
) -> Option<&'a T>
where
    T: 'a,
{
    zones
        .into_iter()
        .filter(|z| origin(z).zone_of(name))
        .max_by_key(|z| origin(z).num_labels())
}

/// Address family of a source and of a published record.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    pub fn of(ip: &IpAddr) -> Family {
        if ip.is_ipv4() {
            Family::Ipv4
        } else {
            Family::Ipv6
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Family::Ipv4 => "IPv4",
            Family::Ipv6 => "IPv6",
        })
    }
}

/// A network in CIDR form, for the allow-list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Net {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Net {
    pub fn parse(s: &str) -> Result<Net, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not a network like 10.0.0.0/8"))?;
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("`{a}` is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = p
            .trim()
            .parse()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("`/{p}` is not a prefix length from 0 to {max}"))?;
        Ok(Net { addr, prefix })
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.prefix),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.prefix),
            _ => false,
        }
    }
}

pub(crate) fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let (bytes, bits) = ((prefix / 8) as usize, prefix % 8);
    if a[..bytes] != b[..bytes] {
        return false;
    }
    bits == 0 || (a[bytes] >> (8 - bits)) == (b[bytes] >> (8 - bits))
}
