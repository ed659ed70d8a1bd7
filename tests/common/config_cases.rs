// The broken and doubtful configs with the exact message each must give, as
// `bad.toml:line:col: key: message`. Included (`include!`) by tests/config_errors.rs, which runs
// them through the real binary, and by src/config/tests.rs, which runs them through
// `config::parse` for a sub-second loop while editing the config code.

pub const SITE: &str =
    "[[dns.zones]]\nname = \"example.test\"\n[[sites]]\ndomain = \"www.example.test\"\nprimary = \"192.0.2.1\"\nstandby = \"192.0.2.2\"\n";

/// (what, file text, the error).
pub fn error_cases() -> Vec<(&'static str, String, &'static str)> {
    vec![
        ("unknown top-level key", "dat_dir = \"x\"\n".into(), "bad.toml:1:1: dat_dir: unknown key `dat_dir`, expected one of `data_dir`, `providers`, `ip`, `ddns`, `dns`, `api`, `standby`, `sites`"),
        ("misspelt probe key", format!("{SITE}[sites.probe]\nintreval = \"2s\"\n"), "bad.toml:8:1: sites[0].probe.intreval: unknown key `intreval`, expected one of `scheme`, `port`, `method`, `path`, `expect_status`, `body_contains`, `interval`, `timeout`, `failures_to_down`, `successes_to_up`, `hold_down`, `ca_file`, `insecure`, `standby_readiness`"),
        ("invalid IP", SITE.replace("192.0.2.1", "192.0.2.300"), "bad.toml:5:11: sites[0].primary: `192.0.2.300` is not an address: expected an IP address like \"203.0.113.7\", optionally with a probe port like \"203.0.113.7:8443\""),
        ("missing standby", SITE.replace("standby = \"192.0.2.2\"\n", ""), "bad.toml:3:1: sites[0]: missing key `standby`: the standby server's address, e.g. standby = \"198.51.100.9\""),
        ("TTL as a string", "[dns]\nttl = \"30\"\n".into(), "bad.toml:2:7: dns.ttl: invalid type: string \"30\", expected a whole number"),
        ("TOML syntax", "[dns\nttl = 30\n".into(), "bad.toml:1:5: dns: unclosed table, expected `]`"),
        ("site outside every zone", SITE.replace("[[dns.zones]]\nname = \"example.test\"\n", ""), "bad.toml:2:10: sites[0].domain: www.example.test. is not inside any zone the built-in DNS server serves (no zones are configured: add a [[dns.zones]] table)"),
        ("bad duration unit", format!("{SITE}[sites.probe]\ninterval = \"2 parsecs\"\n"), "bad.toml:8:12: sites[0].probe.interval: unknown unit `parsecs` in `2parsecs`: use ms, s, m, h or d"),
        ("bad static record", "[[dns.zones]]\nname = \"example.test\"\nrecords = [\"www A notanip\"]\n".into(), "bad.toml:3:12: dns.zones[0].records[0]: `www A notanip` is not a zone-file record like \"www 300 A 192.0.2.1\": network address parse error: invalid IPv4 address syntax"),
        ("zero failures", format!("{SITE}probe = {{ failures_to_down = 0 }}\n"), "bad.toml:7:30: sites[0].probe.failures_to_down: 0 is out of range: a count from 1 to 1000 (default 3)"),
        ("standby same as primary", SITE.replace("192.0.2.2", "192.0.2.1"), "bad.toml:6:11: sites[0].standby: the standby must be a different server than the primary"),
        ("mixed address families", SITE.replace("192.0.2.2", "2001:db8::2"), "bad.toml:6:11: sites[0].standby: 2001:db8::2 and the primary 192.0.2.1 are of different IP families; both must be IPv4 or both IPv6 so failover changes the record's value, not its type"),
        ("static record fights a managed one", SITE.replace("name = \"example.test\"\n", "name = \"example.test\"\nrecords = [\"www A 192.0.2.9\"]\n"), "bad.toml:5:10: sites[0].domain: www.example.test. also has a static A record in zone example.test.; remove it, the site's records are managed by understudy"),
        ("API on a public address", "[api]\nlisten = \"0.0.0.0:9353\"\n".into(), "bad.toml:2:10: api.listen: 0.0.0.0:9353 is not a loopback address: the control API has no authentication yet, so it only listens on 127.0.0.1 or [::1]"),
        ("name owned twice", format!("{SITE}[[sites]]\nname = \"two\"\ndomain = \"www.example.test\"\nprimary = \"192.0.2.3\"\nstandby = \"192.0.2.4\"\n"), "bad.toml:9:10: sites[1].domain: www.example.test. is already managed by site `www.example.test`: each name has one owner"),
        ("body check on HEAD", format!("{SITE}[sites.probe]\nmethod = \"HEAD\"\nbody_contains = \"ok\"\n"), "bad.toml:9:17: sites[0].probe.body_contains: a HEAD probe gets no body; use method = \"GET\" to check the body"),
        ("status out of range", format!("{SITE}[sites.probe]\nexpect_status = [200, 999]\n"), "bad.toml:8:23: sites[0].probe.expect_status[1]: 999 is not an HTTP status: expected 100-599, a class like \"2xx\", or a range like \"200-299\""),
        ("interval as a boolean", format!("{SITE}[sites.probe]\ninterval = true\n"), "bad.toml:8:12: sites[0].probe.interval: expected a duration with its unit, like \"2s\" or \"500ms\""),
        ("missing CA file", format!("{SITE}[sites.probe]\nca_file = \"/nonexistent/ca.pem\"\n"), "bad.toml:8:11: sites[0].probe.ca_file: cannot read /nonexistent/ca.pem: No such file or directory (os error 2)"),
        ("auto primary without sources", SITE.replace("192.0.2.1", "auto"), "bad.toml:5:11: sites[0].primary: `auto` follows the public IPv4 address, but no [[ip.sources]] answer for IPv4"),
        ("IP source without family", "[ip]\n[[ip.sources]]\nname = \"a\"\ntype = \"http\"\nurl = \"https://x\"\n".into(), "bad.toml:2:1: ip.sources[0]: missing key `family`: \"ipv4\" or \"ipv6\" (a source answers for one family)"),
        ("fewer operators than the quorum", "[ip]\n[[ip.sources]]\nname = \"a\"\ntype = \"http\"\nfamily = \"ipv4\"\nurl = \"https://x\"\n".into(), "bad.toml:2:1: ip.sources: IPv4: 1 operator(s) among the sources but quorum = 2; add sources run by other operators, or lower ip.quorum"),
        ("DNS source type against its family", "[ip]\nquorum = 1\n[[ip.sources]]\nname = \"a\"\ntype = \"dns\"\nfamily = \"ipv4\"\nserver = \"127.0.0.1:53\"\nquestion = \"myip.example\"\nqtype = \"AAAA\"\n".into(), "bad.toml:9:9: ip.sources[0].qtype: `AAAA` does not fit family IPv4: use A (ipv4), AAAA (ipv6) or TXT"),
        ("key of another source type", "[ip]\nquorum = 1\n[[ip.sources]]\nname = \"a\"\ntype = \"http\"\nfamily = \"ipv4\"\nurl = \"https://x\"\nmax_age = \"5m\"\n".into(), "bad.toml:8:11: ip.sources[0].max_age: does not apply to type = \"http\""),
        ("allow-list prefix too long", "[ip]\nallow = [\"10.0.0.0/33\"]\n".into(), "bad.toml:2:10: ip.allow[0]: `/33` is not a prefix length from 0 to 32"),
        ("mirror size without a unit we know", format!("{SITE}[sites.mirror]\nmax_bytes = \"5 parsecs\"\n"), "bad.toml:8:13: sites[0].mirror.max_bytes: `parsecs` is not a size unit: expected B, KB, KiB, MB, MiB, GB, GiB, TB or TiB"),
        ("mirror both schedules", format!("{SITE}[sites.mirror]\nevery = \"6h\"\ndaily = \"03:00\"\n"), "bad.toml:9:9: sites[0].mirror.daily: give either `every` or `daily`, not both"),
        ("mirror time of day", format!("{SITE}[sites.mirror]\ndaily = \"25:00\"\n"), "bad.toml:8:9: sites[0].mirror.daily: `25:00` is not a time of day: expected \"HH:MM\" (UTC) or \"HH:MM+01:00\" with an offset"),
        ("mirror concurrency zero", format!("{SITE}[sites.mirror]\nconcurrency = 0\n"), "bad.toml:8:15: sites[0].mirror.concurrency: 0 is out of range: from 1 to 256 (default 8)"),
        ("mirror misspelt key", format!("{SITE}[sites.mirror]\nmax_page = 10\n"), "bad.toml:8:1: sites[0].mirror.max_page: unknown key `max_page`, expected one of `start`, `extra_hosts`, `resolve`, `concurrency`, `timeout`, `retries`, `robots`, `every`, `daily`, `scheduled`, `max_pages`, `max_bytes`, `max_time`, `max_depth`, `max_url_length`, `max_query_variants`, `max_segment_repeats`, `max_response_bytes`, `max_redirects`, `min_fraction`, `max_error_fraction`, `keep`"),
        ("mirror resolve for an unknown host", format!("{SITE}[sites.mirror]\nresolve = {{ \"cdn.example.net\" = \"192.0.2.7\" }}\n"), "bad.toml:8:11: sites[0].mirror.resolve.cdn.example.net: cdn.example.net is not one of extra_hosts"),
        ("mirror fraction above one", format!("{SITE}[sites.mirror]\nmin_fraction = 1.5\n"), "bad.toml:8:16: sites[0].mirror.min_fraction: 1.5 is out of range: a fraction from 0.0 to 1.0 (default 0.5)"),
        ("standby listen without a port", "[standby]\nlisten = [\"0.0.0.0\"]\n".into(), "bad.toml:2:11: standby.listen[0]: `0.0.0.0` is not an address with a port, e.g. \"0.0.0.0:80\""),
        ("ACME without HTTPS", "[standby]\n[standby.acme]\n".into(), "bad.toml:2:1: standby.acme: certificates are only used with HTTPS: add standby.https_listen"),
        ("ACME directory over plain HTTP", "[standby]\nhttps_listen = [\"0.0.0.0:443\"]\n[standby.acme]\ndirectory = \"http://acme.test/dir\"\n".into(), "bad.toml:4:13: standby.acme.directory: `http://acme.test/dir` is not an https:// URL"),
        ("ACME contact not mailto", "[standby]\nhttps_listen = [\"0.0.0.0:443\"]\n[standby.acme]\ncontact = [\"ops@example.test\"]\n".into(), "bad.toml:4:12: standby.acme.contact[0]: `ops@example.test` is not a mailto: address like \"mailto:ops@example.com\""),
        ("certificate without its key", format!("{SITE}[sites.tls]\ncert_file = \"/x\"\n"), "bad.toml:7:1: sites[0].tls: give both cert_file (the PEM chain, leaf first) and key_file (its PEM private key)"),
        ("unreadable certificate file", format!("{SITE}[sites.tls]\ncert_file = \"/nonexistent/cert.pem\"\nkey_file = \"/nonexistent/key.pem\"\n"), "bad.toml:8:13: sites[0].tls.cert_file: cannot read /nonexistent/cert.pem: No such file or directory (os error 2)"),
        ("snapshot age too short", "[standby]\nmax_snapshot_age = \"0s\"\n".into(), "bad.toml:2:20: standby.max_snapshot_age: 0ms is too short: at least 1s"),
        // Issue 11, item 9: accepted before, refused now.
        ("duration as a bare integer", format!("{SITE}[sites.probe]\ninterval = 2\n"), "bad.toml:8:12: sites[0].probe.interval: `2` has no unit: write a duration like \"2s\" or \"2ms\""),
        ("duration as a bare string number", format!("{SITE}[sites.probe]\ninterval = \"2\"\n"), "bad.toml:8:12: sites[0].probe.interval: `2` has no unit: write e.g. 2s"),
        ("duration as a bare float", format!("{SITE}[sites.probe]\nhold_down = 0.5\n"), "bad.toml:8:13: sites[0].probe.hold_down: `0.5` has no unit: write a duration like \"0.5s\""),
        ("overlapping built-in zones", format!("{SITE}[[dns.zones]]\nname = \"sub.example.test\"\n"), "bad.toml:8:8: dns.zones[1].name: zones example.test. and sub.example.test. are both served by the built-in server and one lies inside the other: the built-in server answers every name under sub.example.test. from that zone, so the records example.test. has there would never be served; put them in one zone"),
        ("empty config file", "# nothing yet\n\n".into(), "bad.toml:1:1: (file): the config file is empty: it names no [[sites]], [[ddns]] or [[dns.zones]]; start from the example in README.md (`understudy demo` needs no config)"),
        ("duplicate site name", format!("{SITE}[[sites]]\nname = \"www.example.test\"\ndomain = \"shop.example.test\"\nprimary = \"192.0.2.3\"\nstandby = \"192.0.2.4\"\n"), "bad.toml:8:8: sites[1].name: site name `www.example.test` is used twice (also by the site for www.example.test.)"),
        ("duplicate provider name", "[[providers]]\nname = \"p\"\ntype = \"powerdns\"\nurl = \"http://127.0.0.1:1\"\napi_key = \"x\"\n[[providers]]\nname = \"p\"\ntype = \"powerdns\"\nurl = \"http://127.0.0.1:1\"\napi_key = \"x\"\n".into(), "bad.toml:7:8: providers[1].name: provider name `p` is used twice"),
        // Issue 11, item 6: a secret pasted into a *_file key is not echoed back.
        ("secret in a file key", "[[providers]]\nname = \"p\"\ntype = \"powerdns\"\nurl = \"http://127.0.0.1:1\"\napi_key_file = \"c2VjcmV0c2VjcmV0c2VjcmV0\"\n".into(), "bad.toml:5:16: providers[0].api_key_file: cannot read the file this key names, and its value looks like a secret rather than a path (not shown); put the secret in a file and give its path here, or name an environment variable that holds it with `api_key_env`"),
        ("secret in the TSIG key-file key", "[[providers]]\nname = \"b\"\ntype = \"rfc2136\"\nserver = \"127.0.0.1:53\"\ntsig_key_file = \"hmac-sha256:c2VjcmV0c2VjcmV0\"\n".into(), "bad.toml:5:17: providers[0].tsig_key_file: cannot read the file this key names, and its value looks like a secret rather than a path (not shown); put the secret in a file and give its path here, or name an environment variable that holds it with `tsig_secret_env`"),
        ("push password too short", "[ip]\nquorum = 1\n[ip.push]\nlisten = \"127.0.0.1:8245\"\npassword = \"s\"\n".into(), "bad.toml:5:12: ip.push.password: the password has 1 characters; the endpoint faces the internet, so it needs at least 12 (e.g. from `openssl rand -base64 24`)"),
        ("ddns name outside every zone", "[ip]\nquorum = 1\n[[ip.sources]]\nname = \"a\"\ntype = \"http\"\nfamily = \"ipv4\"\nurl = \"https://x\"\n[[ddns]]\nname = \"home.example.com\"\n".into(), "bad.toml:9:8: ddns[0].name: home.example.com. is not inside any configured zone"),
    ]
}

/// (what, file text, a warning it must give), each config otherwise valid.
pub fn warning_cases() -> Vec<(&'static str, String, &'static str)> {
    vec![
        ("nameserver without an address in its zone", SITE.into(), "bad.toml:2:8: dns.zones[0].nameservers: the nameserver ns1.example.test. is inside the zone but has no A or AAAA record in it, so resolvers that follow the delegation cannot reach it (a lame delegation); add a record like \"ns1 A 203.0.113.7\" (this server's public address), or list nameservers that resolve"),
        ("listed nameserver without an address", SITE.replace("name = \"example.test\"\n", "name = \"example.test\"\nnameservers = [\"dns.example.test\"]\n"), "bad.toml:3:16: dns.zones[0].nameservers[0]: the nameserver dns.example.test. is inside the zone but has no A or AAAA record in it, so resolvers that follow the delegation cannot reach it (a lame delegation); add a record like \"dns A 203.0.113.7\" (this server's public address), or list nameservers that resolve"),
        ("timeout longer than interval", format!("{SITE}[sites.probe]\ninterval = \"200ms\"\ntimeout = \"1s\"\n"), "bad.toml:9:11: sites[0].probe.timeout: 1s is longer than interval 200ms: probes overlap (up to 6 at once), and a silent primary is noticed within failures_to_down × interval + timeout = 1.6s"),
        ("a weak push password", "[ip]\nquorum = 1\n[ip.push]\nlisten = \"127.0.0.1:8245\"\npassword = \"correcthorsebattery\"\n[[dns.zones]]\nname = \"example.test\"\nrecords = [\"ns1 A 192.0.2.53\"]\n".into(), "bad.toml:5:12: ip.push.password: the password is only lowercase letters or only digits; a random one is much harder to guess"),
        ("a quorum of one", "[ip]\nquorum = 1\n[[ip.sources]]\nname = \"a\"\ntype = \"http\"\nfamily = \"ipv4\"\nurl = \"https://x\"\n[[dns.zones]]\nname = \"example.test\"\n".into(), "bad.toml:2:10: ip.quorum: 1: a single source decides the published address; one wrong answer will be published"),
    ]
}
