//! Each provider type configured the way a user writes it, through the real binary:
//! `check-config` contacts the provider read-only and says it is fine, `dns plan` shows the
//! change, `dns apply` makes it, and the provider holds the record afterwards. (A regression
//! test: a config typo once made every type but rfc2136 unusable while the in-process provider
//! tests stayed green.)

use crate::common;

use common::*;
use hickory_proto::rr::RecordType;

const SITE: &str = r#"
[[sites]]
domain = "www.example.test"
primary = "192.0.2.10"
standby = "192.0.2.20"
"#;

fn run(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = common::cmd();
    cmd.args(args).arg("-c").arg(dir.join("c.toml"));
    // Never let the AWS credential chain reach for instance metadata (an off-machine address).
    cmd.env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn write(dir: &std::path::Path, provider: &str) {
    let text = format!(
        "data_dir = \"{}\"\n{provider}\n[[dns.zones]]\nname = \"example.test\"\nprovider = \"p\"\n{SITE}",
        dir.join("data").display()
    );
    std::fs::write(dir.join("c.toml"), text).unwrap();
}

/// `secrets` are the secret values this config uses: none may appear in anything printed.
fn check_plan_apply(dir: &std::path::Path, env: &[(&str, &str)], secrets: &[&str], given_as: &str) {
    let (code, out, err) = run(dir, &["check-config"], env);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("provider ok: zone example.test."), "{err}");
    for secret in secrets {
        assert!(
            !out.contains(secret) && !err.contains(secret),
            "the secret {secret:?} was printed:\n{out}\n{err}"
        );
    }
    assert!(
        out.contains(given_as),
        "the secret's key, as given, without the secret: {out}"
    );
    let (code, out, err) = run(dir, &["dns", "plan"], env);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("1 to change") && out.contains("www.example.test. A (absent)"),
        "{out}"
    );
    let (code, out, err) = run(dir, &["dns", "apply"], env);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("applied and confirmed"), "{out}");
    let (_, out, _) = run(dir, &["dns", "plan"], env);
    assert!(out.contains("0 to change"), "{out}");
}

#[test]
fn powerdns_from_config() {
    let pdns = common::pdns::Pdns::start();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &format!("[[providers]]\nname = \"p\"\ntype = \"powerdns\"\nurl = \"{}\"\napi_key_env = \"TEST_PDNS_KEY\"\n", pdns.api),
    );
    std::fs::write(
        dir.path().join("c.toml"),
        std::fs::read_to_string(dir.path().join("c.toml"))
            .unwrap()
            .replace(
                "provider = \"p\"\n",
                &format!("provider = \"p\"\nverify = [\"{}\"]\n", pdns.dns),
            ),
    )
    .unwrap();
    check_plan_apply(
        dir.path(),
        &[("TEST_PDNS_KEY", common::pdns::API_KEY)],
        &[common::pdns::API_KEY],
        "api_key_env = \"TEST_PDNS_KEY\"",
    );
    assert_eq!(
        pdns.rdata("www.example.test", RecordType::A),
        ["192.0.2.10"]
    );
}

#[test]
fn cloudflare_from_config() {
    let cf = common::cloudflare_fake::FakeCloudflare::start("cf-token");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "cf-token\n").unwrap();
    write(
        dir.path(),
        &format!("[[providers]]\nname = \"p\"\ntype = \"cloudflare\"\nendpoint = \"{}\"\napi_token_file = \"token\"\n", cf.endpoint()),
    );
    check_plan_apply(dir.path(), &[], &["cf-token"], "api_token_file = ");
    let recs = cf.state.lock().unwrap().find("A", "www.example.test");
    assert_eq!(
        (recs.len(), recs[0].content.as_str(), recs[0].ttl),
        (1, "192.0.2.10", 60)
    );
}

#[test]
fn route53_from_config() {
    let moto = common::moto::Moto::start();
    let endpoint = format!("http://{}", moto.addr);
    // The hosted zone, made with the AWS SDK the way the console would.
    rt().block_on(common::moto::create_zone(
        &common::moto::sdk(&endpoint),
        "cfg",
    ));
    let dir = tempfile::tempdir().unwrap();
    // Credentials from the standard chain (environment), as most users have them.
    write(
        dir.path(),
        &format!("[[providers]]\nname = \"p\"\ntype = \"route53\"\nendpoint = \"{endpoint}\"\n"),
    );
    let env = [
        ("AWS_ACCESS_KEY_ID", "AKIDFROMENV"),
        ("AWS_SECRET_ACCESS_KEY", "from-env"),
        ("AWS_CONFIG_FILE", "/nonexistent"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
    ];
    check_plan_apply(dir.path(), &env, &["from-env"], "standard AWS chain");
}

#[test]
fn provider_config_mistakes_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[[providers]]\nname = \"p\"\ntype = \"godaddy\"\n", "c.toml:3:8: providers[0].type: `godaddy` is not a provider type: expected \"rfc2136\", \"powerdns\", \"cloudflare\" or \"route53\""),
        ("[[providers]]\nname = \"p\"\ntype = \"rfc2136\"\nserver = \"127.0.0.1:53\"\napi_key = \"x\"\n", "c.toml:5:11: providers[0].api_key: does not apply to type = \"rfc2136\" (its keys: server, tsig_key_file, tsig_key_name, tsig_algorithm, tsig_secret, tsig_secret_file, tsig_secret_env)"),
        ("[[providers]]\nname = \"p\"\ntype = \"powerdns\"\nurl = \"http://127.0.0.1:8081\"\napi_key_env = \"UNDERSTUDY_TEST_UNSET\"\n", "c.toml:5:15: providers[0].api_key_env: the environment variable UNDERSTUDY_TEST_UNSET is not set"),
        ("[[providers]]\nname = \"p\"\ntype = \"powerdns\"\nurl = \"http://127.0.0.1:8081\"\napi_key = \"a\"\napi_key_file = \"k\"\n", "c.toml:6:16: providers[0].api_key_file: give only one of api_key, api_key_file and api_key_env"),
        ("[[providers]]\nname = \"p\"\ntype = \"cloudflare\"\n", "c.toml:1:1: providers[0]: missing key `api_token` (or api_token_file / api_token_env): a Cloudflare API token with Zone:Read and DNS:Edit"),
        ("[[dns.zones]]\nname = \"example.test\"\nprovider = \"bind\"\n", "c.toml:3:12: dns.zones[0].provider: no provider named `bind` (configured: none; or \"builtin\" for the built-in server)"),
        ("[[providers]]\nname = \"p\"\ntype = \"route53\"\naccess_key_id = \"AKID\"\n", "c.toml:4:17: providers[0].access_key_id: needs secret_access_key (or secret_access_key_file / _env); or leave both out to use the standard AWS credential chain"),
    ];
    let mut wrong = vec![];
    for (text, want) in cases {
        std::fs::write(dir.path().join("c.toml"), text).unwrap();
        let (code, _, err) = run(dir.path(), &["check-config", "--offline"], &[]);
        let err = err
            .replace(&dir.path().display().to_string(), "")
            .replace("error: /", "error: ");
        if code != 2 || err.trim() != format!("error: {want}") {
            wrong.push(format!("want: error: {want}\ngot ({code}): {err}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn route53_named_profile_from_shared_credentials_file() {
    let moto = common::moto::Moto::start();
    let endpoint = format!("http://{}", moto.addr);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("credentials"), "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = d\n[understudy]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = p\n").unwrap();
    write(dir.path(), &format!("[[providers]]\nname = \"p\"\ntype = \"route53\"\nendpoint = \"{endpoint}\"\nprofile = \"understudy\"\n"));
    let creds = dir.path().join("credentials").display().to_string();
    let env = [
        ("AWS_SHARED_CREDENTIALS_FILE", creds.as_str()),
        ("AWS_CONFIG_FILE", "/nonexistent"),
        ("AWS_ACCESS_KEY_ID", ""),
        ("AWS_SECRET_ACCESS_KEY", ""),
    ];
    // No hosted zone yet: the credentials load from the profile and the lookup says so clearly.
    let (code, _, err) = run(dir.path(), &["check-config"], &env);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("no public hosted zone example.test."), "{err}");
    // A profile that does not exist is a clear error too, not a hang.
    write(dir.path(), &format!("[[providers]]\nname = \"p\"\ntype = \"route53\"\nendpoint = \"{endpoint}\"\nprofile = \"nosuch\"\n"));
    let (code, _, err) = run(dir.path(), &["check-config"], &env);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("provider error")
            && err.contains("could not load AWS credentials")
            && err.contains("nosuch"),
        "{err}"
    );
    assert!(err.len() < 1_500, "short enough to read: {err}");
}
