//! `[dns]` and `[[dns.zones]]`: listen addresses, TTL, refresh, zones and their static records.

use super::*;

impl Cx<'_> {
    pub(super) fn build_dns(
        &self,
        raw: RawDns,
        span: Range<usize>,
        providers: &[ProviderConfig],
    ) -> R<DnsConfig> {
        let listen = self.listen_list(raw.listen, "dns.listen", "0.0.0.0:53")?;
        let ttl = match raw.ttl {
            None => 30,
            Some(t) => match u32::try_from(*t.get_ref()) {
                Ok(v @ 1..=86_400) => v,
                _ => {
                    return self.err(
                        t.span(),
                        "dns.ttl",
                        format!(
                            "{} is out of range: a TTL in seconds from 1 to 86400 (default 30)",
                            t.get_ref()
                        ),
                    )
                }
            },
        };
        let mut zones: Vec<ZoneConfig> = vec![];
        for (i, z) in raw.zones.into_iter().enumerate() {
            let zspan = z.span();
            let z = z.into_inner();
            let key = format!("dns.zones[{i}]");
            let Some(name) = z.name else {
                return self.err(
                    zspan,
                    &key,
                    "missing key `name`: the zone's domain, e.g. name = \"example.com\"",
                );
            };
            let origin = self.dns_name(&name, &format!("{key}.name"))?;
            if zones.iter().any(|o| o.origin == origin) {
                return self.err(
                    name.span(),
                    &format!("{key}.name"),
                    format!("zone `{}` is configured twice", name.get_ref()),
                );
            }
            let nameservers = match &z.nameservers {
                None => vec![Name::from_ascii("ns1")
                    .expect("valid")
                    .append_domain(&origin)
                    .expect("short")],
                Some(list) => list
                    .iter()
                    .enumerate()
                    .map(|(j, n)| self.dns_name(n, &format!("{key}.nameservers[{j}]")))
                    .collect::<R<Vec<_>>>()?,
            };
            let hostmaster = match &z.hostmaster {
                None => Name::from_ascii("hostmaster")
                    .expect("valid")
                    .append_domain(&origin)
                    .expect("short"),
                Some(h) => self.dns_name(
                    &Spanned::new(h.span(), h.get_ref().replacen('@', ".", 1)),
                    &format!("{key}.hostmaster"),
                )?,
            };
            let mut records = vec![];
            for (j, r) in z.records.iter().enumerate() {
                records.push(self.static_record(
                    r,
                    &origin,
                    ttl,
                    &format!("{key}.records[{j}]"),
                )?);
            }
            self.check_zone_shape(&origin, &records, &z.records, &key)?;
            let provider = match &z.provider {
                None => None,
                Some(p) if p.get_ref() == "builtin" => None,
                Some(p) => {
                    let Some(pc) = providers.iter().find(|c| &c.name == p.get_ref()) else {
                        let known: Vec<&str> = providers.iter().map(|c| c.name.as_str()).collect();
                        return self.err(
                            p.span(),
                            &format!("{key}.provider"),
                            format!(
                                "no provider named `{}` (configured: {}; or \"builtin\" for the built-in server)",
                                p.get_ref(),
                                if known.is_empty() { "none".to_string() } else { known.join(", ") }
                            ),
                        );
                    };
                    if let Some(r) = z.records.first() {
                        return self.err(r.span(), &format!("{key}.records"), "static records are served by the built-in server only; this zone is held by an external provider, whose other records understudy never touches");
                    }
                    if let Some(h) = &z.hostmaster {
                        return self.err(
                            h.span(),
                            &format!("{key}.hostmaster"),
                            "applies to zones served by the built-in server only; the provider keeps this zone's SOA",
                        );
                    }
                    if let Some(n) = z.nameservers.as_ref().and_then(|n| n.first()) {
                        return self.err(
                            n.span(),
                            &format!("{key}.nameservers"),
                            "applies to zones served by the built-in server only; the provider keeps this zone's NS records",
                        );
                    }
                    Some(pc.name.clone())
                }
            };
            let verify = match (
                &z.verify,
                providers
                    .iter()
                    .find(|c| Some(&c.name) == provider.as_ref()),
            ) {
                (Some(list), _) => list
                    .iter()
                    .enumerate()
                    .map(|(j, v)| {
                        v.get_ref().parse::<SocketAddr>().or_else(|_| {
                            self.err(
                                v.span(),
                                &format!("{key}.verify[{j}]"),
                                format!(
                                    "`{}` is not an address with a port, e.g. \"192.0.2.53:53\"",
                                    v.get_ref()
                                ),
                            )
                        })
                    })
                    .collect::<R<Vec<_>>>()?,
                (
                    None,
                    Some(ProviderConfig {
                        kind: ProviderKind::Rfc2136(Rfc2136Config { server, .. }),
                        ..
                    }),
                ) => vec![*server],
                (None, _) => vec![],
            };
            if provider.is_none() {
                if let Some(outer) = zones.iter().find(|o| {
                    o.provider.is_none() && (o.origin.zone_of(&origin) || origin.zone_of(&o.origin))
                }) {
                    let (parent, child) = if outer.origin.zone_of(&origin) {
                        (&outer.origin, &origin)
                    } else {
                        (&origin, &outer.origin)
                    };
                    return self.err(
                        name.span(),
                        &format!("{key}.name"),
                        format!(
                            "zones {parent} and {child} are both served by the built-in server and one lies inside the other: \
                             the built-in server answers every name under {child} from that zone, so the records {parent} has there \
                             would never be served; put them in one zone"
                        ),
                    );
                }
                for (j, ns) in nameservers.iter().enumerate() {
                    let has_address = records.iter().any(|r: &Record| {
                        &r.name == ns
                            && matches!(
                                r.record_type(),
                                hickory_proto::rr::RecordType::A
                                    | hickory_proto::rr::RecordType::AAAA
                            )
                    });
                    if origin.zone_of(ns) && !has_address {
                        let (nspan, nkey) = match &z.nameservers {
                            Some(list) => (list[j].span(), format!("{key}.nameservers[{j}]")),
                            None => (name.span(), format!("{key}.nameservers")),
                        };
                        let label = ns.to_string();
                        let short = label
                            .strip_suffix(&format!(".{origin}"))
                            .unwrap_or(&label)
                            .to_string();
                        self.warn(
                            nspan,
                            &nkey,
                            format!(
                                "the nameserver {ns} is inside the zone but has no A or AAAA record in it, so resolvers that follow \
                                 the delegation cannot reach it (a lame delegation); add a record like \"{short} A 203.0.113.7\" \
                                 (this server's public address), or list nameservers that resolve"
                            ),
                        );
                    }
                }
            }
            let dnssec = self.build_dnssec(z.dnssec, &key, provider.as_deref())?;
            zones.push(ZoneConfig {
                origin,
                nameservers,
                hostmaster,
                records,
                provider,
                verify,
                dnssec,
            });
        }
        let _ = span;
        let refresh = self.duration(
            &raw.refresh,
            "dns.refresh",
            Duration::from_secs(60),
            Duration::from_secs(1),
        )?;
        let verify_timeout = self.duration(
            &raw.verify_timeout,
            "dns.verify_timeout",
            Duration::from_secs(30),
            Duration::from_secs(1),
        )?;
        let secondaries = self.build_secondaries(raw.secondaries, &zones)?;
        let also_notify = self.build_also_notify(raw.also_notify)?;
        let primaries = self.build_primaries(raw.primaries, &zones)?;
        Ok(DnsConfig {
            listen,
            ttl,
            refresh,
            verify_timeout,
            zones,
            secondaries,
            also_notify,
            primaries,
        })
    }
    /// The zone's static records as the server can answer them (`dns::zone`'s rules): no
    /// CNAME at the apex or beside other data, no wildcard NS, and below a delegation (NS at a
    /// name under the apex) only its glue addresses.
    fn check_zone_shape(
        &self,
        origin: &Name,
        records: &[Record],
        raw: &[Spanned<String>],
        key: &str,
    ) -> R<()> {
        let cuts: Vec<&Name> = records
            .iter()
            .filter(|r| r.record_type() == RecordType::NS && r.name != *origin)
            .map(|r| &r.name)
            .collect();
        for (j, r) in records.iter().enumerate() {
            let (span, rkey) = (raw[j].span(), format!("{key}.records[{j}]"));
            let rt = r.record_type();
            if rt == RecordType::CNAME && r.name == *origin {
                return self.err(span, &rkey, format!("a CNAME at the zone's apex ({origin}) is not allowed: the apex holds the SOA and NS records, and a CNAME may have no other records beside it (RFC 1034 §3.6.2); give the apex A/AAAA records instead"));
            }
            if rt == RecordType::CNAME {
                if let Some(other) = records
                    .iter()
                    .find(|o| o.name == r.name && o.record_type() != RecordType::CNAME)
                {
                    return self.err(span, &rkey, format!("{} has a CNAME and also a {} record; a name with a CNAME can have no other records (RFC 1034 §3.6.2)", r.name, other.record_type()));
                }
                if records
                    .iter()
                    .filter(|o| o.name == r.name && o.record_type() == RecordType::CNAME)
                    .count()
                    > 1
                {
                    return self.err(
                        span,
                        &rkey,
                        format!("{} has two CNAME records; a name has at most one", r.name),
                    );
                }
            }
            if rt == RecordType::NS && r.name.is_wildcard() {
                return self.err(span, &rkey, "a wildcard NS record is not served (RFC 4592 §4.2): delegate each name with NS records of its own");
            }
            let glue = matches!(rt, RecordType::A | RecordType::AAAA);
            if let Some(cut) = cuts.iter().find(|c| c.zone_of(&r.name) && **c != &r.name) {
                if !glue {
                    return self.err(span, &rkey, format!("{} lies below the delegation of {cut} (its NS records), so the server would never answer it; serve it from the delegated zone, or remove the NS records of {cut}", r.name));
                }
            }
            if cuts.contains(&&r.name) && !glue && !matches!(rt, RecordType::NS | RecordType::DS) {
                return self.err(span, &rkey, format!("a {rt} record at {}, a delegation (it has NS records), would never be answered: only NS, DS and glue addresses belong there", r.name));
            }
        }
        Ok(())
    }

    pub(super) fn static_record(
        &self,
        r: &Spanned<String>,
        origin: &Name,
        ttl: u32,
        key: &str,
    ) -> R<Record> {
        use hickory_proto::serialize::txt::Parser;
        let text = r.get_ref();
        if text.contains('\n') || text.trim_start().starts_with('$') {
            return self.err(
                r.span(),
                key,
                "one record per string, in zone-file form like \"www 300 A 192.0.2.1\"",
            );
        }
        let zone_text = format!("$TTL {ttl}\n{text}\n");
        let parsed = Parser::new(zone_text, None, Some(origin.clone())).parse();
        let records: Vec<Record> = match parsed {
            Ok((_, sets)) => sets
                .into_values()
                .flat_map(|s| s.records_without_rrsigs().cloned().collect::<Vec<_>>())
                .collect(),
            Err(e) => {
                return self.err(
                    r.span(),
                    key,
                    format!("`{text}` is not a zone-file record like \"www 300 A 192.0.2.1\": {e}"),
                )
            }
        };
        match records.as_slice() {
            [one] if !origin.zone_of(&one.name) => self.err(r.span(), key, format!("{} is outside the zone {}", one.name, origin)),
            [one] if one.record_type() == RecordType::SOA => self.err(
                r.span(),
                key,
                "the SOA record is made by understudy (its serial changes with every update); set nameservers and hostmaster instead",
            ),
            [one] => Ok(one.clone()),
            _ => self.err(r.span(), key, format!("`{text}` must be exactly one record")),
        }
    }
}

/// A static record in zone-file form, as `records = [...]` takes it: TXT strings quoted and
/// escaped, so `"two words"` stays one string and `"two" "words"` stays two.
pub(super) fn record_text(r: &Record) -> String {
    let data = match &r.data {
        hickory_proto::rr::RData::TXT(t) => t
            .txt_data
            .iter()
            .map(|chunk| {
                let mut q = String::from("\"");
                for &b in chunk.iter() {
                    match b {
                        b'"' => q.push_str("\\\""),
                        b'\\' => q.push_str("\\\\"),
                        0x20..=0x7e => q.push(b as char),
                        _ => q.push_str(&format!("\\{b:03}")),
                    }
                }
                q.push('"');
                q
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    };
    format!("{} {} {} {data}", r.name, r.ttl, r.record_type())
}
