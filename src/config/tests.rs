use super::*;

const GOOD: &str = r#"
data_dir = "state"
[dns]
listen = ["127.0.0.1:5353"]
[[dns.zones]]
name = "example.test"
records = ["@ MX 10 mail", "mail A 192.0.2.25"]
[[sites]]
domain = "www.example.test"
aliases = ["example.test"]
primary = "192.0.2.10"
standby = "192.0.2.20:8080"
[sites.probe]
scheme = "http"
expect_status = [200, "3xx"]
interval = "500ms"
"#;

#[test]
fn good_config_gets_defaults() {
    let c = parse(Path::new("/etc/u/c.toml"), GOOD).unwrap();
    assert_eq!(c.data_dir, PathBuf::from("/etc/u/state"));
    assert_eq!(c.dns.ttl, 30);
    let s = &c.sites[0];
    assert_eq!(s.name, "www.example.test");
    assert_eq!(s.probe.port, 80);
    assert_eq!(s.probe.interval, Duration::from_millis(500));
    assert_eq!(s.probe.timeout, Duration::from_secs(1));
    assert_eq!((s.probe.failures_to_down, s.probe.successes_to_up), (3, 5));
    assert_eq!(s.probe.hold_down, Duration::from_secs(300));
    assert!(s.probe.expect_status.contains(302) && !s.probe.expect_status.contains(404));
    assert_eq!(
        s.standby.probe_addr(&s.probe),
        "192.0.2.20:8080".parse().unwrap()
    );
    assert_eq!(c.dns.zones[0].records.len(), 2);
    assert!(c.describe().contains("hold_down = \"5m\""));
}

#[test]
fn serde_errors_get_line_and_key() {
    let e = parse(
        Path::new("c.toml"),
        "[dns]\nttl = 30\n[[sites]]\ndomain = \"a.test\"\n[sites.probe]\nintreval = \"2s\"\n",
    )
    .unwrap_err();
    assert_eq!((e.line, e.column), (6, 1));
    assert_eq!(e.key, "sites[0].probe.intreval");
    assert!(
        e.message.starts_with("unknown key `intreval`"),
        "{}",
        e.message
    );
}

/// `check-config` prints what reads back as the same configuration (issue 11, item 10):
/// TXT strings keep their quoting, `[ip.push]` is there, secrets come back by their file.
#[test]
fn effective_settings_read_back_as_the_same_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("push.pw"), "a-long-enough-password\n").unwrap();
    std::fs::write(dir.path().join("pdns.key"), "pdns-api-key\n").unwrap();
    std::fs::write(dir.path().join("hook.key"), "webhook-signing-key\n").unwrap();
    std::fs::write(
        dir.path().join("ns2.key"),
        "key \"ns2-xfr\" {\n algorithm hmac-sha256;\n secret \"c2VjcmV0c2VjcmV0c2VjcmV0\";\n};\n",
    )
    .unwrap();
    let text = r#"
data_dir = "state"
[dns]
listen = ["127.0.0.1:5353"]
also_notify = ["192.0.2.77:5300"]
[[dns.secondaries]]
name = "ns2"
address = "192.0.2.53"
tsig_key_file = "ns2.key"
[[dns.zones]]
name = "example.test"
records = ["ns1 A 192.0.2.53", "@ TXT \"foreign text\"", "two TXT \"foreign\" \"text\"", "q TXT \"say \\\"hi\\\" \\\\ bye\"", "@ MX 10 mail", "mail A 192.0.2.25"]
[dns.zones.dnssec]
algorithm = "ed25519"
zsk_lifetime = "90d"
[[dns.zones]]
name = "other.test"
provider = "pdns"
[[providers]]
name = "pdns"
type = "powerdns"
url = "http://127.0.0.1:8081"
api_key_file = "pdns.key"
[ip]
quorum = 1
[[ip.sources]]
name = "pushed"
type = "push"
family = "ipv4"
[ip.push]
listen = "127.0.0.1:8245"
password_file = "push.pw"
[[notify]]
name = "ops"
url = "webhook+https://hooks.example.test/understudy"
secret_file = "hook.key"
events = ["failed-over", "both-down"]
max_age = "2h"
[[notify]]
url = "webhook+http://127.0.0.1:9999/hook"
[[notify]]
name = "mail"
url = "smtp://understudy@mail.example.test/?fromaddress=understudy@example.test&toaddresses=ops@example.test,me@example.test"
secret_file = "hook.key"
[[sites]]
domain = "www.example.test"
primary = "auto"
standby = "192.0.2.20"
[sites.probe]
scheme = "http"
path = "/health?x=\u00e9"
body_contains = "ok \"quoted\""
[[sites.maintenance]]
name = "kernel"
every = "sun,wed 03:00"
duration = "45m"
time_zone = "Europe/Berlin"
drain_before = "2m"
[[sites.maintenance]]
at = "2026-12-24 02:00"
duration = "1h"
[[sites]]
domain = "shop.example.test"
primary = "192.0.2.30"
standby = "192.0.2.31"
mode = "proxy"
[sites.proxy]
fallback_status = [502]
refresh_from_traffic = true
[sites.probe]
fast_interval = "120ms"
[standby]
listen = ["127.0.0.1:8080"]
[status_page]
listen = ["127.0.0.1:8081"]
title = "Example \"Hosting\""
sites = ["shop.example.test"]
[api]
password_file = "dash.pw"
[[api.tokens]]
name = "grafana"
scope = "read"
token_file = "api.tok"
"#;
    std::fs::write(dir.path().join("api.tok"), "a-read-token-0123456789\n").unwrap();
    std::fs::write(
        dir.path().join("dash.pw"),
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$3Lq1X8bFvBd2x3H3L3s0kF8p6sE0o2m3cQ3n1d0k9mQ\n",
    )
    .unwrap();
    let first = parse(&dir.path().join("c.toml"), text).unwrap();
    let printed = first.describe();
    assert!(
        printed.contains("also_notify = [\"192.0.2.77:5300\"]")
            && printed.contains("[[dns.secondaries]]\nname = \"ns2\"\naddress = \"192.0.2.53:53\"\nzones = [\"example.test.\"]\ntsig_key_file = "),
        "{printed}"
    );
    assert!(
        printed.contains(r#"'example.test. 30 TXT "foreign text"'"#),
        "{printed}"
    );
    assert!(
        printed.contains(r#"'two.example.test. 30 TXT "foreign" "text"'"#),
        "{printed}"
    );
    assert!(printed.contains("[ip.push]"), "{printed}");
    assert!(
        printed.contains("[status_page]")
            && printed.contains("password_file = ")
            && !printed.contains("$argon2id$"),
        "{printed}"
    );
    assert!(
        !printed.contains("a-long-enough-password")
            && !printed.contains("pdns-api-key")
            && !printed.contains("webhook-signing-key"),
        "{printed}"
    );
    let again =
        parse(&dir.path().join("c.toml"), &printed).unwrap_or_else(|e| panic!("{e}\n{printed}"));
    assert_eq!(again.describe(), printed, "a second round prints the same");
    assert!(printed.contains("every = \"wed,sun 03:00\""), "{printed}");
    assert!(!printed.contains("a-read-token"), "{printed}");
    assert_eq!(again.sites[0].maintenance.len(), 2);
    assert_eq!(
        again.sites[0].maintenance[1].when,
        first.sites[0].maintenance[1].when
    );
    assert_eq!(again.api.tokens[0].token.0, "a-read-token-0123456789");
    assert_eq!(again.notify[0].secret, first.notify[0].secret);
    assert_eq!(again.notify[0].events, ["failed-over", "both-down"]);
    assert_eq!(again.notify[1].name, "webhook-1");
    assert_eq!(again.notify[1].events, DEFAULT_EVENTS);
    let NotifyService::Email(mail) = &again.notify[2].service else {
        panic!("{:?}", again.notify[2]);
    };
    assert_eq!(
        (mail.port, mail.tls, mail.user.as_deref(), mail.to.len()),
        (587, EmailTls::StartTls, Some("understudy"), 2)
    );
    assert_eq!(again.dns.zones[0].records, first.dns.zones[0].records);
    assert_eq!(
        again.ip.push.as_ref().unwrap().password,
        first.ip.push.as_ref().unwrap().password
    );
    assert_eq!(again.sites[0].probe.path, first.sites[0].probe.path);
    assert_eq!(
        again.sites[0].probe.body_contains,
        first.sites[0].probe.body_contains
    );
}

#[test]
fn a_secret_in_a_file_key_is_not_echoed() {
    for secret in [
        "c2VjcmV0c2VjcmV0c2VjcmV0",
        "Zm9vYmFy=",
        "-----BEGIN PRIVATE KEY-----",
        "abcdef0123456789abcdef",
    ] {
        assert!(looks_like_secret(secret), "{secret}");
    }
    for path in [
        "/etc/understudy/key",
        "secret.key",
        "./k",
        "../keys/pdns",
        "~/pdns",
        "short",
    ] {
        assert!(!looks_like_secret(path), "{path}");
    }
}

#[test]
fn key_paths_count_array_tables() {
    let t = "[[sites]]\na = 1\n[[sites]]\nb = 2\n[sites.probe]\nc = 3\n";
    assert_eq!(key_at(t, t.find("b =").unwrap()), "sites[1].b");
    assert_eq!(key_at(t, t.find("c =").unwrap()), "sites[1].probe.c");
}

/// The table of tests/config_errors.rs, through `parse` instead of the binary: the same exact
/// messages in well under a second, for the loop of editing this module.
mod table {
    use super::*;

    include!("../../tests/common/config_cases.rs");

    #[test]
    fn broken_configs_give_exact_errors() {
        let mut wrong = vec![];
        let cases = error_cases();
        for (what, text, want) in &cases {
            match parse(Path::new("bad.toml"), text) {
                Err(e) if e.to_string() == *want => {}
                Err(e) => wrong.push(format!("{what}:\n  want: {want}\n  got:  {e}")),
                Ok(_) => wrong.push(format!("{what}:\n  want: {want}\n  got:  no error")),
            }
        }
        assert!(
            wrong.is_empty(),
            "{} of {} cases wrong:\n{}",
            wrong.len(),
            cases.len(),
            wrong.join("\n")
        );
    }

    #[test]
    fn doubtful_configs_give_located_warnings() {
        for (what, text, want) in warning_cases() {
            let cfg = parse(Path::new("bad.toml"), &text).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(
                cfg.warnings.iter().any(|w| w == want),
                "{what}: want {want}\ngot {:?}",
                cfg.warnings
            );
        }
    }
}

/// No secret is ever printed: a whole parsed config in `{:?}` (as a log line or a panic would
/// show it) holds none of the secret values it was given.
#[test]
fn debug_output_holds_no_secret() {
    let text = r#"
[[providers]]
name = "cf"
type = "cloudflare"
api_token = "cf-token-value-1234"
[[providers]]
name = "pdns"
type = "powerdns"
url = "http://127.0.0.1:8081"
api_key = "pdns-key-value-5678"
[[providers]]
name = "r53"
type = "route53"
access_key_id = "AKIDEXAMPLE"
secret_access_key = "aws-secret-value-9012"
[[providers]]
name = "bind"
type = "rfc2136"
server = "127.0.0.1:53"
tsig_key_name = "k"
tsig_secret = "dHNpZy1zZWNyZXQtdmFsdWU="
[ip]
quorum = 1
[[ip.sources]]
name = "pushed"
type = "push"
family = "ipv4"
[ip.push]
listen = "127.0.0.1:8245"
password = "push-password-value-3456"
[[notify]]
url = "webhook+https://hooks.example.test/x"
secret = "webhook-secret-value-7777"
"#;
    let cfg = parse(Path::new("c.toml"), text).unwrap();
    let printed = format!("{cfg:?}\n{}", cfg.describe());
    for secret in [
        "cf-token-value-1234",
        "pdns-key-value-5678",
        "aws-secret-value-9012",
        "dHNpZy1zZWNyZXQtdmFsdWU",
        "tsig-secret-value",
        "push-password-value-3456",
        "webhook-secret-value-7777",
    ] {
        assert!(!printed.contains(secret), "{secret} is printed:\n{printed}");
    }
}
