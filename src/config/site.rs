//! `[[sites]]`: names, primary and standby, `[sites.probe]` and `[sites.tls]`.

use super::*;

impl Cx<'_> {
    pub(super) fn build_site(
        &self,
        i: usize,
        raw: Spanned<RawSite>,
        dns: &DnsConfig,
        ipc: &IpConfig,
        has_standby: bool,
        owned: &mut HashMap<LowerName, String>,
    ) -> R<Site> {
        let span = raw.span();
        let raw = raw.into_inner();
        let key = format!("sites[{i}]");
        let Some(domain_raw) = raw.domain else {
            return self.err(
                span,
                &key,
                "missing key `domain`: the site's name, e.g. domain = \"www.example.com\"",
            );
        };
        let domain = self.dns_name(&domain_raw, &format!("{key}.domain"))?;
        let mut aliases = vec![];
        for (j, a) in raw.aliases.iter().enumerate() {
            aliases.push((
                self.dns_name(a, &format!("{key}.aliases[{j}]"))?,
                a.span(),
                format!("{key}.aliases[{j}]"),
            ));
        }
        let name = match &raw.name {
            Some(n) => {
                let v = n.get_ref();
                if v.is_empty()
                    || !v
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                {
                    return self.err(
                        n.span(),
                        &format!("{key}.name"),
                        format!("`{v}` is not a usable site name: letters, digits, '-', '_' and '.' only"),
                    );
                }
                v.clone()
            }
            None => domain.to_ascii().trim_end_matches('.').to_string(),
        };
        let Some(primary_raw) = raw.primary else {
            return self.err(span, &key, "missing key `primary`: the primary server's address, e.g. primary = \"203.0.113.7\"");
        };
        let Some(standby_raw) = raw.standby else {
            return self.err(span, &key, "missing key `standby`: the standby server's address, e.g. standby = \"198.51.100.9\"");
        };
        let primary_auto = match primary_raw.get_ref().trim().to_ascii_lowercase().as_str() {
            "auto" => Some(crate::net::Family::Ipv4),
            "auto6" => Some(crate::net::Family::Ipv6),
            _ => None,
        };
        let primary = match primary_auto {
            Some(fam) => {
                if !ipc.families().contains(&fam) {
                    return self.err(
                        primary_raw.span(),
                        &format!("{key}.primary"),
                        format!("`{}` follows the public {fam} address, but no [[ip.sources]] answer for {fam}", primary_raw.get_ref()),
                    );
                }
                let ip = match fam {
                    crate::net::Family::Ipv4 => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                    crate::net::Family::Ipv6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
                };
                Endpoint { ip, port: None }
            }
            None => self.endpoint(&primary_raw, &format!("{key}.primary"))?,
        };
        let standby = self.endpoint(&standby_raw, &format!("{key}.standby"))?;
        if primary.ip == standby.ip && primary.port == standby.port {
            return self.err(
                standby_raw.span(),
                &format!("{key}.standby"),
                "the standby must be a different server than the primary",
            );
        }
        if primary.ip.is_ipv4() != standby.ip.is_ipv4() {
            return self.err(standby_raw.span(), &format!("{key}.standby"), format!("{} and the primary {} are of different IP families; both must be IPv4 or both IPv6 so failover changes the record's value, not its type", standby, primary));
        }

        // Every name of the site must sit in a configured zone, be owned by no other site, and
        // have no static record that would fight the managed one (one owner per record).
        let all = std::iter::once((domain.clone(), domain_raw.span(), format!("{key}.domain")))
            .chain(aliases.iter().cloned());
        for (n, nspan, nkey) in all {
            let Some(zone) = crate::net::deepest_zone(&dns.zones, |z| &z.origin, &n) else {
                let zones: Vec<String> = dns.zones.iter().map(|z| z.origin.to_string()).collect();
                let have = if zones.is_empty() {
                    "no zones are configured: add a [[dns.zones]] table".to_string()
                } else {
                    format!("configured zones: {}", zones.join(", "))
                };
                return self.err(
                    nspan,
                    &nkey,
                    format!("{n} is not inside any zone the built-in DNS server serves ({have})"),
                );
            };
            if let Some(cut) = zone.records.iter().find(|r| {
                r.record_type() == RecordType::NS && r.name != zone.origin && r.name.zone_of(&n)
            }) {
                return self.err(
                    nspan,
                    &nkey,
                    format!(
                        "{n} is at or below {}, which zone {} delegates (its static NS records); the site's records would never be answered: manage it in the delegated zone, or remove the delegation",
                        cut.name, zone.origin
                    ),
                );
            }
            let lower = LowerName::new(&n);
            if let Some(other) = owned.insert(lower, name.clone()) {
                return self.err(
                    nspan,
                    &nkey,
                    format!("{n} is already managed by site `{other}`: each name has one owner"),
                );
            }
            if let Some(r) = zone.records.iter().find(|r| {
                r.name == n
                    && matches!(
                        r.record_type(),
                        RecordType::A | RecordType::AAAA | RecordType::CNAME
                    )
            }) {
                return self.err(
                    nspan,
                    &nkey,
                    format!(
                        "{n} also has a static {} record in zone {}; remove it, the site's records are managed by understudy",
                        r.record_type(),
                        zone.origin
                    ),
                );
            }
        }

        let probe = self.build_probe(&format!("{key}.probe"), raw.probe)?;
        let origin = origin_url(
            domain.to_ascii().trim_end_matches('.'),
            probe.scheme,
            probe.port,
        );
        // The crawl's scope: every name of the site (then the mirror's extra hosts).
        let scope: Vec<url::Url> = std::iter::once(&domain)
            .chain(aliases.iter().map(|a| &a.0))
            .map(|n| origin_url(n.to_ascii().trim_end_matches('.'), probe.scheme, probe.port))
            .collect();
        let mirror = self.build_mirror(
            &format!("{key}.mirror"),
            raw.mirror,
            &origin,
            &scope,
            probe.scheme,
        )?;
        let tls = self.build_tls(&format!("{key}.tls"), raw.tls)?;
        let maintenance = self.build_maintenance(&format!("{key}.maintenance"), raw.maintenance)?;
        let (mode, proxy) = self.build_mode(&raw.mode, raw.proxy, &key, has_standby)?;
        Ok(Site {
            name,
            domain,
            aliases: aliases.into_iter().map(|a| a.0).collect(),
            primary,
            primary_auto,
            standby,
            probe,
            mirror,
            tls,
            maintenance,
            mode,
            proxy,
        })
    }
    pub(super) fn endpoint(&self, s: &Spanned<String>, key: &str) -> R<Endpoint> {
        let text = s.get_ref().trim();
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(Endpoint { ip, port: None });
        }
        if let Ok(sa) = text.parse::<SocketAddr>() {
            return Ok(Endpoint {
                ip: sa.ip(),
                port: Some(sa.port()),
            });
        }
        let hint = "expected an IP address like \"203.0.113.7\", optionally with a probe port like \"203.0.113.7:8443\"";
        self.err(
            s.span(),
            key,
            format!("`{}` is not an address: {hint}", s.get_ref()),
        )
    }
    pub(super) fn build_probe(&self, key: &str, raw: Option<Spanned<RawProbe>>) -> R<Probe> {
        let p = raw.map(|r| r.into_inner()).unwrap_or_default();
        let k = |f: &str| format!("{key}.{f}");
        let scheme = match &p.scheme {
            None => Scheme::Https,
            Some(s) => match s.get_ref().as_str() {
                "http" => Scheme::Http,
                "https" => Scheme::Https,
                other => {
                    return self.err(
                        s.span(),
                        &k("scheme"),
                        format!("`{other}` is not a probe scheme: expected \"http\" or \"https\""),
                    )
                }
            },
        };
        let port = match &p.port {
            None => match scheme {
                Scheme::Http => 80,
                Scheme::Https => 443,
            },
            Some(v) => match u16::try_from(*v.get_ref()) {
                Ok(port) if port > 0 => port,
                _ => {
                    return self.err(
                        v.span(),
                        &k("port"),
                        format!("{} is not a port: expected 1 to 65535", v.get_ref()),
                    )
                }
            },
        };
        let method = match &p.method {
            None => Method::Get,
            Some(m) => match m.get_ref().to_ascii_uppercase().as_str() {
                "GET" => Method::Get,
                "HEAD" => Method::Head,
                _ => {
                    return self.err(
                        m.span(),
                        &k("method"),
                        format!(
                            "`{}` is not a probe method: expected \"GET\" or \"HEAD\"",
                            m.get_ref()
                        ),
                    )
                }
            },
        };
        let path = match &p.path {
            None => "/".to_string(),
            Some(v) => {
                let t = v.get_ref();
                if !t.starts_with('/') || t.chars().any(|c| c.is_control() || c == ' ') {
                    return self.err(
                        v.span(),
                        &k("path"),
                        format!("`{t}` is not a request path: it must start with '/' and contain no spaces"),
                    );
                }
                t.clone()
            }
        };
        let expect_status = match &p.expect_status {
            None => StatusSet::between(200, 399),
            Some(list) => {
                if list.get_ref().is_empty() {
                    return self.err(
                        list.span(),
                        &k("expect_status"),
                        "must list at least one status, e.g. [200] or [\"2xx\", 301]",
                    );
                }
                let mut out = vec![];
                for (i, item) in list.get_ref().iter().enumerate() {
                    out.push(self.status_item(item, &format!("{}[{i}]", k("expect_status")))?);
                }
                StatusSet(out)
            }
        };
        let body_contains = match &p.body_contains {
            Some(b) if b.get_ref().is_empty() => {
                return self.err(
                    b.span(),
                    &k("body_contains"),
                    "must not be empty; leave it out to skip the body check",
                )
            }
            Some(b) if method == Method::Head => {
                return self.err(
                    b.span(),
                    &k("body_contains"),
                    "a HEAD probe gets no body; use method = \"GET\" to check the body",
                )
            }
            Some(b) => Some(b.get_ref().clone()),
            None => None,
        };
        let interval = self.duration(
            &p.interval,
            &k("interval"),
            Duration::from_secs(2),
            Duration::from_millis(100),
        )?;
        // A tenth of the interval, from 50 ms to 250 ms: three failures cost well under a
        // second after the first, for at most a few probes a second while a site is suspect.
        let fast_interval = self.duration(
            &p.fast_interval,
            &k("fast_interval"),
            (interval / 10).clamp(Duration::from_millis(50), Duration::from_millis(250)),
            Duration::from_millis(20),
        )?;
        if fast_interval > interval {
            let span = p.fast_interval.as_ref().map(|v| v.span()).unwrap_or(0..0);
            return self.err(
                span,
                &k("fast_interval"),
                format!(
                    "{} is longer than interval {}: it is the quicker cadence used while a site is suspect",
                    human(fast_interval),
                    human(interval)
                ),
            );
        }
        let timeout = self.duration(
            &p.timeout,
            &k("timeout"),
            Duration::from_secs(1),
            Duration::from_millis(50),
        )?;
        let failures_to_down = self.count(&p.failures_to_down, &k("failures_to_down"), 3)?;
        if timeout > interval {
            let span = p
                .timeout
                .as_ref()
                .or(p.interval.as_ref())
                .map(|v| v.span())
                .unwrap_or(0..0);
            let bound = interval * failures_to_down + timeout;
            self.warn(
                span,
                &k("timeout"),
                format!(
                    "{} is longer than interval {}: probes overlap (up to {} at once), and a silent primary is noticed \
                     within failures_to_down × interval + timeout = {}",
                    human(timeout),
                    human(interval),
                    timeout.as_millis() / interval.as_millis().max(1) + 1,
                    human(bound)
                ),
            );
        }
        let successes_to_up = self.count(&p.successes_to_up, &k("successes_to_up"), 5)?;
        let hold_down = self.duration(
            &p.hold_down,
            &k("hold_down"),
            Duration::from_secs(300),
            Duration::ZERO,
        )?;
        let insecure = p.insecure.as_ref().map(|v| *v.get_ref()).unwrap_or(false);
        let ca_file = match &p.ca_file {
            None => None,
            Some(c) => {
                if insecure {
                    return self.err(
                        c.span(),
                        &k("ca_file"),
                        "ca_file and insecure = true contradict each other; keep one",
                    );
                }
                Some(self.ca_file(c, &k("ca_file"))?)
            }
        };
        if scheme == Scheme::Http {
            if let Some(c) = &p.ca_file {
                return self.err(
                    c.span(),
                    &k("ca_file"),
                    "only applies to scheme = \"https\"",
                );
            }
            if let Some(c) = p.insecure.as_ref().filter(|v| *v.get_ref()) {
                return self.err(
                    c.span(),
                    &k("insecure"),
                    "only applies to scheme = \"https\"",
                );
            }
        }
        Ok(Probe {
            scheme,
            port,
            method,
            path,
            expect_status,
            body_contains,
            interval,
            fast_interval,
            timeout,
            failures_to_down,
            successes_to_up,
            hold_down,
            ca_file,
            insecure,
            standby_readiness: p.standby_readiness.as_ref().is_some_and(|v| *v.get_ref()),
        })
    }
    pub(super) fn status_item(&self, item: &Spanned<StatusItem>, key: &str) -> R<Range<u16>> {
        let bad = |what: String| {
            self.err(
                item.span(),
                key,
                format!("{what} is not an HTTP status: expected 100-599, a class like \"2xx\", or a range like \"200-299\""),
            )
        };
        let valid = |n: i64| (100..=599).contains(&n);
        match item.get_ref() {
            StatusItem::Code(n) if valid(*n) => Ok(*n as u16..*n as u16 + 1),
            StatusItem::Code(n) => bad(n.to_string()),
            StatusItem::Text(t) => {
                let t = t.trim();
                if t.len() == 3 && t.ends_with("xx") {
                    if let Some(d) = t[..1].parse::<u16>().ok().filter(|d| (1..=5).contains(d)) {
                        return Ok(d * 100..d * 100 + 100);
                    }
                }
                if let Some((a, b)) = t.split_once('-') {
                    if let (Ok(a), Ok(b)) = (a.trim().parse::<i64>(), b.trim().parse::<i64>()) {
                        if valid(a) && valid(b) && a <= b {
                            return Ok(a as u16..b as u16 + 1);
                        }
                    }
                }
                if let Ok(n) = t.parse::<i64>() {
                    if valid(n) {
                        return Ok(n as u16..n as u16 + 1);
                    }
                }
                bad(format!("`{t}`"))
            }
        }
    }
    /// A PEM file of CA certificates to trust: readable, with at least one certificate.
    pub(super) fn ca_file(&self, c: &Spanned<String>, key: &str) -> R<PathBuf> {
        let path = self.resolve_path(c.get_ref());
        let pem = std::fs::read(&path).or_else(|e| {
            self.err(
                c.span(),
                key,
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        if crate::tls::parse_ca_pem(&pem).is_err() {
            return self.err(
                c.span(),
                key,
                format!("{} holds no PEM certificate", path.display()),
            );
        }
        Ok(path)
    }
    pub(super) fn build_tls(&self, key: &str, raw: Option<Spanned<RawTls>>) -> R<Option<TlsFiles>> {
        let Some(raw) = raw else { return Ok(None) };
        let span = raw.span();
        let t = raw.into_inner();
        let (Some(c), Some(k)) = (t.cert_file, t.key_file) else {
            return self.err(span, key, "give both cert_file (the PEM chain, leaf first) and key_file (its PEM private key)");
        };
        let (cert_file, key_file) = (
            self.resolve_path(c.get_ref()),
            self.resolve_path(k.get_ref()),
        );
        if !key_file.exists() && looks_like_secret(k.get_ref()) {
            self.read_named_file(&k, &format!("{key}.key_file"), None)?;
        }
        if let Err(e) = crate::tls::load_files(&cert_file, &key_file) {
            return self.err(c.span(), &format!("{key}.cert_file"), e);
        }
        Ok(Some(TlsFiles {
            cert_file,
            key_file,
        }))
    }
}

pub(super) fn origin_url(host: &str, scheme: Scheme, port: u16) -> url::Url {
    let (s, default) = match scheme {
        Scheme::Http => ("http", 80),
        Scheme::Https => ("https", 443),
    };
    let text = if port == default {
        format!("{s}://{host}/")
    } else {
        format!("{s}://{host}:{port}/")
    };
    url::Url::parse(&text).expect("a DNS name and a port make a URL")
}
