//! `check-config`'s printout: the effective settings as TOML that reads back as the same config.

use super::*;

impl Config {
    /// The key that gives the secret at `key` (`providers[0].api_key`) again, without the secret:
    /// `api_key_file = "..."`, `api_key_env = "..."`, or a placeholder for one given inline.
    pub(super) fn secret_line(&self, base: &str, key: &str) -> String {
        match self.secret_sources.get(&format!("{base}.{key}")) {
            Some(SecretFrom::File(p)) => {
                format!("{key}_file = {}\n", toml_str(&p.display().to_string()))
            }
            Some(SecretFrom::Env(v)) => format!("{key}_env = {}\n", toml_str(v)),
            _ => format!("{key} = \"<redacted>\"  # given inline in the config; not shown\n"),
        }
    }

    /// A TSIG key as it was given: its key file, or its name, algorithm and secret source.
    fn tsig_lines(&self, base: &str, k: &TsigKey) -> String {
        match self.secret_sources.get(&format!("{base}.tsig_key_file")) {
            Some(SecretFrom::File(f)) => {
                format!("tsig_key_file = {}\n", toml_str(&f.display().to_string()))
            }
            _ => format!(
                "tsig_key_name = {:?}\ntsig_algorithm = {:?}\n{}",
                k.name.to_string(),
                k.algorithm.to_string(),
                self.secret_line(base, "tsig_secret")
            ),
        }
    }

    /// One `[[dns.secondaries]]` or `[[dns.primaries]]` entry.
    fn peer_block(
        &self,
        section: &str,
        i: usize,
        name: &str,
        address: SocketAddr,
        zones: &[Name],
        key: &TsigKey,
    ) -> String {
        let zones: Vec<String> = zones
            .iter()
            .map(|z| format!("{:?}", z.to_string()))
            .collect();
        format!(
            "\n[[dns.{section}]]\nname = {}\naddress = {:?}\nzones = [{}]\n{}",
            toml_str(name),
            address.to_string(),
            zones.join(", "),
            self.tsig_lines(&format!("dns.{section}[{i}]"), key)
        )
    }

    /// The effective settings as TOML, defaults filled in: `check-config` prints it, and it reads
    /// back as the same configuration (secrets given by file or environment variable are printed
    /// as that key; one given inline is replaced by a placeholder, never shown).
    pub fn describe(&self) -> String {
        let mut o = String::new();
        o.push_str(&format!(
            "# effective settings of {}\n",
            self.path.display()
        ));
        o.push_str(&format!(
            "data_dir = {}\n\n",
            toml_str(&self.data_dir.display().to_string())
        ));
        if let Some(st) = &self.standby {
            let l: Vec<String> = st
                .listen
                .iter()
                .map(|a| format!("{:?}", a.to_string()))
                .collect();
            let h: Vec<String> = st
                .https_listen
                .iter()
                .map(|a| format!("{:?}", a.to_string()))
                .collect();
            // An empty list would not read back (`https_listen`, when given, names addresses).
            let https = match h.is_empty() {
                true => String::new(),
                false => format!("https_listen = [{}]\n", h.join(", ")),
            };
            o.push_str(&format!(
                "[standby]\nlisten = [{}]\n{https}banner = {}\nmax_snapshot_age = {:?}\ntracking_params = [{}]\n\n",
                l.join(", "),
                st.banner,
                human(st.max_snapshot_age),
                st.tracking_params
                    .iter()
                    .map(|p| toml_str(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            if let Some(a) = &st.acme {
                o.push_str(&format!(
                    "[standby.acme]\ndirectory = {:?}\ncontact = {:?}\n",
                    a.directory, a.contact
                ));
                if let Some(c) = &a.ca_file {
                    o.push_str(&format!("ca_file = {:?}\n", c.display().to_string()));
                }
                o.push('\n');
            }
        }
        o.push_str("[dns]\n");
        let listen: Vec<String> = self
            .dns
            .listen
            .iter()
            .map(|a| format!("{:?}", a.to_string()))
            .collect();
        o.push_str(&format!(
            "listen = [{}]\nttl = {}\nrefresh = {:?}\nverify_timeout = {:?}\n",
            listen.join(", "),
            self.dns.ttl,
            human(self.dns.refresh),
            human(self.dns.verify_timeout)
        ));
        if !self.dns.also_notify.is_empty() {
            let v: Vec<String> = self
                .dns
                .also_notify
                .iter()
                .map(|a| format!("{:?}", a.to_string()))
                .collect();
            o.push_str(&format!("also_notify = [{}]\n", v.join(", ")));
        }
        for z in &self.dns.zones {
            o.push_str(&format!(
                "\n[[dns.zones]]\nname = {:?}\nprovider = {:?}\n",
                z.origin.to_string(),
                z.provider.as_deref().unwrap_or("builtin")
            ));
            if !z.verify.is_empty() {
                let v: Vec<String> = z
                    .verify
                    .iter()
                    .map(|a| format!("{:?}", a.to_string()))
                    .collect();
                o.push_str(&format!("verify = [{}]\n", v.join(", ")));
            }
            if z.provider.is_none() {
                let ns: Vec<String> = z
                    .nameservers
                    .iter()
                    .map(|n| format!("{:?}", n.to_string()))
                    .collect();
                o.push_str(&format!(
                    "nameservers = [{}]\nhostmaster = {:?}\n",
                    ns.join(", "),
                    z.hostmaster.to_string()
                ));
                o.push_str("records = [\n");
                for r in &z.records {
                    o.push_str(&format!("  {},\n", toml_str(&record_text(r))));
                }
                o.push_str("]\n");
            }
            if let Some(d) = &z.dnssec {
                o.push_str(&format!(
                    "[dns.zones.dnssec]\nalgorithm = {:?}\nsignature_lifetime = {:?}\nresign_after = {:?}\nzsk_lifetime = {:?}\n",
                    d.algorithm.as_str(),
                    human(d.signature_lifetime),
                    human(d.resign_after),
                    human(d.zsk_lifetime)
                ));
            }
        }
        for (i, sec) in self.dns.secondaries.iter().enumerate() {
            o.push_str(&self.peer_block(
                "secondaries",
                i,
                &sec.name,
                sec.address,
                &sec.zones,
                &sec.key,
            ));
        }
        for (i, p) in self.dns.primaries.iter().enumerate() {
            o.push_str(&self.peer_block("primaries", i, &p.name, p.address, &p.zones, &p.key));
        }
        for (i, p) in self.providers.iter().enumerate() {
            let base = format!("providers[{i}]");
            o.push_str(&format!(
                "\n[[providers]]\nname = {:?}\ntype = {:?}\ntimeout = {:?}\n",
                p.name,
                p.kind.type_name(),
                human(p.timeout)
            ));
            match &p.kind {
                ProviderKind::Rfc2136(Rfc2136Config { server, key }) => {
                    o.push_str(&format!("server = {:?}\n", server.to_string()));
                    if let Some(k) = key {
                        o.push_str(&self.tsig_lines(&base, k));
                    }
                }
                ProviderKind::PowerDns(PowerDnsConfig { url, server_id, .. }) => {
                    o.push_str(&format!(
                        "url = {url:?}\nserver_id = {server_id:?}\n{}",
                        self.secret_line(&base, "api_key")
                    ));
                }
                ProviderKind::Cloudflare(CloudflareConfig {
                    endpoint,
                    zone_id,
                    proxied,
                    ..
                }) => {
                    o.push_str(&format!(
                        "endpoint = {endpoint:?}\n{}",
                        self.secret_line(&base, "api_token")
                    ));
                    if let Some(z) = zone_id {
                        o.push_str(&format!("zone_id = {z:?}\n"));
                    }
                    o.push_str(&match proxied {
                        Some(p) => format!("proxied = {p}\n"),
                        None => "# proxied: kept as found on existing records\n".to_string(),
                    });
                }
                ProviderKind::Route53(r) => {
                    o.push_str(&format!(
                        "region = {:?}\nconfirm_timeout = {:?}\n",
                        r.region,
                        human(r.confirm_timeout)
                    ));
                    for (k, v) in [
                        ("hosted_zone_id", &r.hosted_zone_id),
                        ("endpoint", &r.endpoint),
                        ("profile", &r.profile),
                    ] {
                        if let Some(v) = v {
                            o.push_str(&format!("{k} = {v:?}\n"));
                        }
                    }
                    match &r.credentials {
                        Some((id, _)) => o.push_str(&format!("access_key_id = {id:?}\n{}", self.secret_line(&base, "secret_access_key"))),
                        None => o.push_str("# credentials: the standard AWS chain (environment, shared files, profile)\n"),
                    }
                }
            }
        }
        if !self.ip.sources.is_empty() {
            let allow: Vec<String> = self
                .ip
                .allow
                .iter()
                .map(|n| format!("\"{}/{}\"", n.addr, n.prefix))
                .collect();
            o.push_str(&format!(
                "\n[ip]\ninterval = {:?}\nquorum = {}\nallow = [{}]\n",
                human(self.ip.interval),
                self.ip.quorum,
                allow.join(", ")
            ));
            for s in &self.ip.sources {
                let what = match &s.kind {
                    SourceKind::Http {
                        url,
                        json_field: None,
                    } => format!("type = \"http\"\nurl = {url:?}"),
                    SourceKind::Http {
                        url,
                        json_field: Some(j),
                    } => {
                        format!("type = \"http\"\nurl = {url:?}\njson_field = {j:?}")
                    }
                    SourceKind::Dns {
                        server,
                        name,
                        qtype,
                        qclass,
                    } => {
                        format!("type = \"dns\"\nserver = \"{server}\"\nquestion = \"{name}\"\nqtype = \"{qtype}\"\nqclass = \"{qclass}\"")
                    }
                    SourceKind::Interface { name } => {
                        format!("type = \"interface\"\ninterface = {name:?}")
                    }
                    SourceKind::Upnp { url } => {
                        format!("type = \"upnp\"\nurl = {url:?}")
                    }
                    SourceKind::Push { max_age } => {
                        format!("type = \"push\"\nmax_age = {:?}", human(*max_age))
                    }
                };
                o.push_str(&format!(
                    "[[ip.sources]]\nname = {:?}\noperator = {:?}\nfamily = \"{}\"\n{what}\ntimeout = {:?}\n",
                    s.name,
                    s.operator,
                    if s.family == crate::net::Family::Ipv4 { "ipv4" } else { "ipv6" },
                    human(s.timeout)
                ));
            }
        }
        if let Some(p) = &self.ip.push {
            o.push_str(&format!(
                "\n[ip.push]\nlisten = {:?}\nusername = {}\n{}",
                p.listen.to_string(),
                toml_str(&p.username),
                self.secret_line("ip.push", "password")
            ));
            if let Some((c, k)) = &p.tls {
                o.push_str(&format!(
                    "tls_cert = {}\ntls_key = {}\n",
                    toml_str(&c.display().to_string()),
                    toml_str(&k.display().to_string())
                ));
            }
        }
        for d in &self.ddns {
            let f: Vec<String> = d
                .families
                .iter()
                .map(|f| {
                    format!(
                        "\"{}\"",
                        if *f == crate::net::Family::Ipv4 {
                            "ipv4"
                        } else {
                            "ipv6"
                        }
                    )
                })
                .collect();
            o.push_str(&format!(
                "\n[[ddns]]\nname = \"{}\"\nfamilies = [{}]\n",
                d.name,
                f.join(", ")
            ));
        }
        o.push_str(&format!(
            "\n[api]\nlisten = {:?}\n",
            self.api.listen.to_string()
        ));
        if let Some((c, k)) = &self.api.tls {
            o.push_str(&format!(
                "tls_cert = {}\ntls_key = {}\n",
                toml_str(&c.display().to_string()),
                toml_str(&k.display().to_string())
            ));
        }
        if let Some((file, _)) = &self.api.password {
            o.push_str(&format!(
                "password_file = {}\n",
                toml_str(&file.display().to_string())
            ));
        }
        for (i, t) in self.api.tokens.iter().enumerate() {
            let base = format!("api.tokens[{i}]");
            o.push_str(&format!(
                "[[api.tokens]]\nname = {}\nscope = \"{}\"\n{}",
                toml_str(&t.name),
                match t.scope {
                    TokenScope::Read => "read",
                    TokenScope::Write => "write",
                },
                self.secret_line(&base, "token")
            ));
        }
        let refs: Vec<String> = self
            .watcher
            .references
            .iter()
            .map(|a| format!("{:?}", a.to_string()))
            .collect();
        o.push_str(&format!(
            "\n[watcher]\nreferences = [{}]\ncheck_every = {:?}\n",
            refs.join(", "),
            human(self.watcher.check_every)
        ));
        if let Some((_, every)) = &self.watcher.heartbeat {
            o.push_str(&self.secret_line("watcher", "heartbeat_url"));
            o.push_str(&format!("heartbeat_every = {:?}\n", human(*every)));
        }
        if let Some(sp) = &self.status_page {
            let list = |v: &[String]| v.iter().map(|s| toml_str(s)).collect::<Vec<_>>().join(", ");
            let listen: Vec<String> = sp.listen.iter().map(|a| a.to_string()).collect();
            o.push_str(&format!(
                "\n[status_page]\nlisten = [{}]\ntitle = {}\nshow_addresses = {}\n",
                list(&listen),
                toml_str(&sp.title),
                sp.show_addresses
            ));
            if let Some(sites) = &sp.sites {
                o.push_str(&format!("sites = [{}]\n", list(sites)));
            }
        }
        for (i, n) in self.notify.iter().enumerate() {
            o.push_str(&format!(
                "\n[[notify]]\nname = {}\nurl = {}\nevents = [{}]\nmin_severity = {:?}\nmax_age = {:?}\ngroup_wait = {:?}\n",
                toml_str(&n.name),
                toml_str(&n.url),
                n.events
                    .iter()
                    .map(|e| toml_str(e))
                    .collect::<Vec<_>>()
                    .join(", "),
                n.min_severity.as_str(),
                human(n.max_age),
                human(n.group_wait)
            ));
            if let Some(a) = &n.api_url {
                o.push_str(&format!("api_url = {}\n", toml_str(a)));
            }
            if n.secret.is_some() {
                o.push_str(&self.secret_line(&format!("notify[{i}]"), "secret"));
            }
            if let Some(c) = &n.ca_file {
                o.push_str(&format!(
                    "ca_file = {}\n",
                    toml_str(&c.display().to_string())
                ));
            }
        }
        for s in &self.sites {
            o.push_str(&format!(
                "\n[[sites]]\nname = {:?}\ndomain = {:?}\n",
                s.name,
                s.domain.to_string()
            ));
            let al: Vec<String> = s
                .aliases
                .iter()
                .map(|n| format!("{:?}", n.to_string()))
                .collect();
            o.push_str(&format!(
                "aliases = [{}]\nprimary = {:?}\nstandby = {:?}\n",
                al.join(", "),
                s.primary.to_string(),
                s.standby.to_string()
            ));
            o.push_str(&format!("mode = {:?}\n", s.mode.as_str()));
            if let Some(px) = &s.proxy {
                let st: Vec<String> = px.fallback_status.iter().map(|v| v.to_string()).collect();
                o.push_str(&format!(
                    "[sites.proxy]\nconnect_timeout = {:?}\nresponse_timeout = {:?}\nfallback_status = [{}]\nmax_request_body = {}\nrefresh_from_traffic = {}\n",
                    human(px.connect_timeout),
                    human(px.response_timeout),
                    st.join(", "),
                    px.max_request_body,
                    px.refresh_from_traffic
                ));
            }
            let p = &s.probe;
            o.push_str("[sites.probe]\n");
            o.push_str(&format!(
                "scheme = {:?}\nport = {}\nmethod = {:?}\npath = {}\n",
                if p.scheme == Scheme::Https {
                    "https"
                } else {
                    "http"
                },
                p.port,
                if p.method == Method::Get {
                    "GET"
                } else {
                    "HEAD"
                },
                toml_str(&p.path)
            ));
            let statuses: Vec<String> = p
                .expect_status
                .to_string()
                .split(", ")
                .map(toml_str)
                .collect();
            o.push_str(&format!("expect_status = [{}]\n", statuses.join(", ")));
            if let Some(b) = &p.body_contains {
                o.push_str(&format!("body_contains = {}\n", toml_str(b)));
            }
            o.push_str(&format!(
                "interval = {:?}\nfast_interval = {:?}\ntimeout = {:?}\nfailures_to_down = {}\nsuccesses_to_up = {}\nhold_down = {:?}\n",
                human(p.interval),
                human(p.fast_interval),
                human(p.timeout),
                p.failures_to_down,
                p.successes_to_up,
                human(p.hold_down)
            ));
            if let Some(c) = &p.ca_file {
                o.push_str(&format!(
                    "ca_file = {}\n",
                    toml_str(&c.display().to_string())
                ));
            }
            if p.insecure {
                o.push_str("insecure = true  # certificates are NOT checked\n");
            }
            o.push_str(&s.mirror.describe());
            for w in &s.maintenance {
                o.push_str(&w.describe());
            }
        }
        o
    }
}

/// A TOML basic string (quotes and escapes as TOML wants them, which Rust's `{:?}` does not
/// always give: `\u{e9}` is not TOML).
pub(super) fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}
