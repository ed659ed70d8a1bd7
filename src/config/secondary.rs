//! `[[dns.secondaries]]` and `dns.also_notify`: the nameservers that copy the built-in zones;
//! `[[dns.primaries]]`: the nameservers this server copies zones from.
//!
//! A secondary is named by its address and a TSIG key, and both must match for a transfer:
//! a request from another address, or from the right address without the key, is refused.
//! The address's port is where NOTIFY goes (53 when none is given); transfers come from any
//! port of that address.
//!
//! A primary is named the same way: its address is where this server asks for transfers
//! (port 53 when none is given), NOTIFY is taken only from its IP and signed with its key, and
//! a zone taken from it is nobody else's: not a `[[dns.zones]]` entry, not inside or around
//! one, not taken from two primaries.

use super::provider::RawTsig;
use super::raw::RawPeer;
use super::*;

/// A primary nameserver this server takes zones from, by IXFR/AXFR on its NOTIFY (and on the
/// zone's SOA refresh), and serves them as its secondary ([`crate::dns::replica`]).
#[derive(Debug, Clone)]
pub struct PrimaryConfig {
    /// For `status` and the logs.
    pub name: String,
    /// Where transfers are asked for; NOTIFY is taken from its IP only.
    pub address: SocketAddr,
    /// Signs every request and must sign every answer and NOTIFY.
    pub key: TsigKey,
    /// The zones taken from it; none of them is a `[[dns.zones]]` entry.
    pub zones: Vec<Name>,
}

/// One secondary nameserver of the built-in zones.
#[derive(Debug, Clone)]
pub struct SecondaryConfig {
    /// For `status` and the logs.
    pub name: String,
    /// Where NOTIFY is sent; its IP is the only one this secondary may transfer from.
    pub address: SocketAddr,
    /// Signs NOTIFY and must sign every transfer request.
    pub key: TsigKey,
    /// The built-in zones it copies (every one when the config lists none).
    pub zones: Vec<Name>,
}

impl Cx<'_> {
    pub(super) fn build_secondaries(
        &self,
        raw: Vec<Spanned<RawPeer>>,
        zones: &[ZoneConfig],
    ) -> R<Vec<SecondaryConfig>> {
        let builtin: Vec<&Name> = zones
            .iter()
            .filter(|z| z.provider.is_none())
            .map(|z| &z.origin)
            .collect();
        let mut out: Vec<SecondaryConfig> = vec![];
        for (i, s) in raw.into_iter().enumerate() {
            let span = s.span();
            let s = s.into_inner();
            let base = format!("dns.secondaries[{i}]");
            if builtin.is_empty() {
                return self.err(
                    span,
                    &base,
                    "there is no zone of the built-in server to transfer: every [[dns.zones]] has a provider, whose own secondaries copy it",
                );
            }
            let taken: Vec<&str> = out.iter().map(|o| o.name.as_str()).collect();
            let (name, address, key) = self.peer(
                &s,
                span.clone(),
                &base,
                &taken,
                "the secondary's IP address (and port for NOTIFY, default 53), e.g. address = \"198.51.100.53\"",
                "transfers are allowed only to an address with its TSIG key; make one with `tsig-keygen NAME > NAME.key` and give the secondary the same key",
            )?;
            if let Some(other) = out
                .iter()
                .find(|o| o.address.ip() == address.ip() && o.key.name == key.name)
            {
                return self.err(
                    span,
                    &base,
                    format!(
                        "secondary `{}` has the same address and TSIG key name ({}) as `{}`: a transfer request could not tell them apart",
                        name, key.name, other.name
                    ),
                );
            }
            let zones = match &s.zones {
                None => builtin.iter().map(|n| (*n).clone()).collect(),
                Some(list) if list.is_empty() => {
                    return self.err(
                        span,
                        &format!("{base}.zones"),
                        "lists no zone: leave `zones` out for every built-in zone",
                    )
                }
                Some(list) => {
                    let mut v = vec![];
                    for (j, z) in list.iter().enumerate() {
                        let key = format!("{base}.zones[{j}]");
                        let n = self.dns_name(z, &key)?;
                        if !builtin.contains(&&n) {
                            let known: Vec<String> =
                                builtin.iter().map(|b| b.to_string()).collect();
                            return self.err(
                                z.span(),
                                &key,
                                format!(
                                    "`{}` is not a zone of the built-in server (its zones: {}); a zone held by a provider is copied by that provider's own secondaries",
                                    z.get_ref(),
                                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                                ),
                            );
                        }
                        v.push(n);
                    }
                    v
                }
            };
            out.push(SecondaryConfig {
                name,
                address,
                key,
                zones,
            });
        }
        Ok(out)
    }

    /// What a secondary and a primary are both named by: a name (its address when none is
    /// given; not one of `taken`), an address (port 53 when none is given) and a TSIG key.
    fn peer(
        &self,
        s: &RawPeer,
        span: Range<usize>,
        base: &str,
        taken: &[&str],
        address_hint: &str,
        key_hint: &str,
    ) -> R<(String, SocketAddr, TsigKey)> {
        let Some(addr) = &s.address else {
            return self.err(span, base, format!("missing key `address`: {address_hint}"));
        };
        let Some(address) = parse_address(addr.get_ref()) else {
            return self.err(
                addr.span(),
                &format!("{base}.address"),
                format!(
                    "`{}` is not an IP address, with or without a port, e.g. \"198.51.100.53\" or \"198.51.100.53:5353\"",
                    addr.get_ref()
                ),
            );
        };
        let name = match &s.name {
            Some(n) if n.get_ref().trim().is_empty() => {
                return self.err(n.span(), &format!("{base}.name"), "must not be empty")
            }
            Some(n) => n.get_ref().trim().to_string(),
            None => address.to_string(),
        };
        if taken.contains(&name.as_str()) {
            let at = s.name.as_ref().map(|n| n.span()).unwrap_or(addr.span());
            return self.err(
                at,
                &format!("{base}.name"),
                format!("`{name}` is configured twice; give each a name of its own"),
            );
        }
        let key = self.tsig_key(
            RawTsig {
                key_file: &s.tsig_key_file,
                key_name: &s.tsig_key_name,
                algorithm: &s.tsig_algorithm,
                secret: &s.tsig_secret,
                secret_file: &s.tsig_secret_file,
                secret_env: &s.tsig_secret_env,
            },
            base,
        )?;
        match key {
            Some(key) => Ok((name, address, key)),
            None => self.err(
                span,
                base,
                format!(
                    "missing key `tsig_key_file` (or tsig_key_name with tsig_secret): {key_hint}"
                ),
            ),
        }
    }

    pub(super) fn build_primaries(
        &self,
        raw: Vec<Spanned<RawPeer>>,
        zones: &[ZoneConfig],
    ) -> R<Vec<PrimaryConfig>> {
        let mut out: Vec<PrimaryConfig> = vec![];
        for (i, s) in raw.into_iter().enumerate() {
            let span = s.span();
            let s = s.into_inner();
            let base = format!("dns.primaries[{i}]");
            let taken: Vec<&str> = out.iter().map(|o| o.name.as_str()).collect();
            let (name, address, key) = self.peer(
                &s,
                span.clone(),
                &base,
                &taken,
                "the primary's IP address (and port, default 53) that transfers come from and NOTIFY is taken from, e.g. address = \"198.51.100.7\"",
                "zones are taken only signed with a TSIG key the primary also has (make one with `tsig-keygen NAME > NAME.key`)",
            )?;
            let list = match &s.zones {
                Some(list) if !list.is_empty() => list,
                _ => {
                    return self.err(
                        span,
                        &format!("{base}.zones"),
                        "missing key `zones`: the zones this server takes from the primary and serves as its secondary, e.g. zones = [\"example.com\"]",
                    )
                }
            };
            let mut taken_zones = vec![];
            for (j, z) in list.iter().enumerate() {
                let key = format!("{base}.zones[{j}]");
                let n = self.dns_name(z, &key)?;
                if let Some(own) = zones
                    .iter()
                    .find(|o| o.origin.zone_of(&n) || n.zone_of(&o.origin))
                {
                    let why = match own.origin == n {
                        true => format!("`{n}` is also a [[dns.zones]] entry here; one zone has one owner: serve it from this server's own config or take it from the primary, not both"),
                        false => format!("`{n}` and the configured zone {} lie one inside the other; the server could not tell which answers a name in both", own.origin),
                    };
                    return self.err(z.span(), &key, why);
                }
                let clash = |zs: &[Name]| zs.iter().any(|x| x.zone_of(&n) || n.zone_of(x));
                if let Some(other) = out.iter().find(|o| clash(&o.zones)) {
                    return self.err(
                        z.span(),
                        &key,
                        format!(
                            "`{n}` is already taken from primary `{}` (or lies inside or around a zone taken from it); a zone has one primary",
                            other.name
                        ),
                    );
                }
                if clash(&taken_zones) {
                    return self.err(z.span(), &key, format!("`{n}` is listed twice (or lies inside or around another zone of this list)"));
                }
                taken_zones.push(n);
            }
            out.push(PrimaryConfig {
                name,
                address,
                key,
                zones: taken_zones,
            });
        }
        Ok(out)
    }

    pub(super) fn build_also_notify(
        &self,
        raw: Option<Vec<Spanned<String>>>,
    ) -> R<Vec<SocketAddr>> {
        let mut out = vec![];
        for (i, a) in raw.unwrap_or_default().into_iter().enumerate() {
            match parse_address(a.get_ref()) {
                Some(addr) => out.push(addr),
                None => {
                    return self.err(
                        a.span(),
                        &format!("dns.also_notify[{i}]"),
                        format!(
                        "`{}` is not an IP address, with or without a port, e.g. \"198.51.100.53\"",
                        a.get_ref()
                    ),
                    )
                }
            }
        }
        Ok(out)
    }
}

/// "198.51.100.53", "198.51.100.53:5353", "2001:db8::53" or "[2001:db8::53]:5353"; port 53
/// when none is given.
fn parse_address(s: &str) -> Option<SocketAddr> {
    let s = s.trim();
    s.parse::<SocketAddr>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)))
}
