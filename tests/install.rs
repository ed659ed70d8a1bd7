//! Installing it as a new user would: `init` → `check-config` → `run` from the README, the
//! secrets `init` writes, and the Debian package (built with cargo-deb from the test binary):
//! installed with dpkg, its unit's `ExecStart` line run as the unit would run it (its user, its
//! one capability; there is no systemd here), reloaded by its `ExecReload` signal, its config
//! checked, and the package purged.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;

/// `init` with flags (standard input is no terminal), as a script or the README would.
fn init(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = cmd()
        .arg("init")
        .args(["--dir", &dir.join("etc").display().to_string()])
        .args(["--data-dir", &dir.join("state").display().to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// `check-config --offline` of `config` must pass; returns what it printed.
fn check_config(config: &Path) -> String {
    let check = cmd()
        .args(["check-config", "--offline", "-c"])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    String::from_utf8_lossy(&check.stdout).into_owned()
}

#[test]
fn init_then_check_config_then_run_works_for_a_new_user() {
    let primary = Nginx::start("127.0.0.1", "primary");
    let standby = Nginx::start("127.0.0.2", "standby");
    let tmp = tempfile::tempdir().unwrap();
    let dns = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let api = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let (code, out, err) = init(
        tmp.path(),
        &[
            "--domain",
            "www.example.test",
            "--primary",
            &primary.addr.to_string(),
            "--standby",
            &standby.addr.to_string(),
            "--dns",
            "builtin",
            "--dns-listen",
            &dns,
            "--api-listen",
            &api,
            "--scheme",
            "http",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let config = tmp.path().join("etc/understudy.toml");
    assert!(out.contains("next: understudy check-config"), "{out}");
    // Asked twice, it keeps the first.
    let (code, _, err) = init(
        tmp.path(),
        &[
            "--domain",
            "x.example.test",
            "--primary",
            "192.0.2.1",
            "--standby",
            "192.0.2.2",
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("exists") && err.contains("--force"), "{err}");

    check_config(&config);

    let mut daemon = cmd()
        .args(["run", "-c"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let runtime = tmp.path().join("state/daemon.json");
    wait_until(Duration::from_secs(20), "the daemon to start", || {
        runtime.exists()
    });
    let dns_addr = dns.parse().unwrap();
    wait_until(Duration::from_secs(10), "www to answer the primary", || {
        answer(dns_addr, "www.example.test")
            == vec!["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
    });
    let status = cmd()
        .args(["status", "--json", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["sites"][0]["domain"], "www.example.test");
    let dashboard = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://{api}/"),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&dashboard.stdout), "200");
    Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(daemon.wait().unwrap().success());
}

#[test]
fn init_keeps_secrets_in_0600_files_and_asks_for_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = "cf-token-0123456789abcdef0123";
    let out = cmd()
        .args([
            "init",
            "--domain",
            "www.example.test",
            "--primary",
            "192.0.2.1",
            "--standby",
            "198.51.100.9",
            "--dns",
            "cloudflare",
        ])
        .args(["--dir", &tmp.path().join("etc").display().to_string()])
        .env("UNDERSTUDY_INIT_SECRET", secret)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains(secret));
    let file = tmp.path().join("etc/secrets/cloudflare.token");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), secret);
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let config = std::fs::read_to_string(tmp.path().join("etc/understudy.toml")).unwrap();
    assert!(
        !config.contains(secret) && config.contains("api_token_file"),
        "{config}"
    );
    let printed = check_config(&tmp.path().join("etc/understudy.toml"));
    assert!(!printed.contains(secret));

    // Without a terminal nothing is asked: the missing answer is named.
    let (code, _, err) = init(tmp.path(), &["--force"]);
    assert_eq!(code, 1);
    assert!(err.contains("--domain is needed"), "{err}");
    let (code, _, err) = init(
        tmp.path(),
        &[
            "--force",
            "--domain",
            "www.example.test",
            "--primary",
            "192.0.2.1",
            "--standby",
            "198.51.100.9",
            "--dns",
            "cloudflare",
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("UNDERSTUDY_INIT_SECRET"), "{err}");
    let (code, _, err) = init(
        tmp.path(),
        &[
            "--force",
            "--domain",
            "nodots",
            "--primary",
            "192.0.2.1",
            "--standby",
            "198.51.100.9",
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("not a domain name"), "{err}");
}

#[test]
fn completions_and_the_man_page_come_from_the_commands() {
    let bash = cmd().args(["completions", "bash"]).output().unwrap();
    assert!(bash.status.success());
    let text = String::from_utf8_lossy(&bash.stdout);
    assert!(
        text.contains("check-config") && text.contains("complete -F"),
        "{text}"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.bash"), &bash.stdout).unwrap();
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(dir.path().join("c.bash"))
        .status()
        .unwrap();
    assert!(syntax.success(), "the bash completion parses");
    for shell in ["zsh", "fish"] {
        let out = cmd().args(["completions", shell]).output().unwrap();
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("drain"),
            "{shell}"
        );
    }
    let man = cmd().arg("man").output().unwrap();
    let man = String::from_utf8_lossy(&man.stdout);
    assert!(
        man.starts_with(".ie") || man.contains(".TH understudy"),
        "{man}"
    );
    assert!(
        man.contains("UNDERSTUDY CHECK-CONFIG"),
        "every command has its section"
    );
}

/// Purges the package when the test ends, however it ends.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg")
            .args(["--purge", "understudy"])
            .stdout(Stdio::null())
            .status();
    }
}

#[test]
fn the_debian_package_installs_runs_as_its_unit_would_and_purges() {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    assert!(root, "installing a package needs root (CI runs as root): run it with `sudo -E cargo nextest run`");
    need("dpkg", "dpkg");
    need("setpriv", "util-linux");
    need(
        "cargo-deb",
        "cargo-deb (cargo install cargo-deb --locked; .ci/run does)",
    );
    let tmp = tempfile::tempdir().unwrap();
    let deb = tmp.path().join("understudy.deb");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let built = Command::new(repo.join("packaging/build-deb"))
        .arg("--dev")
        .arg(&deb)
        .current_dir(repo)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );

    let _purge = Installed;
    let install = Command::new("dpkg").arg("-i").arg(&deb).output().unwrap();
    assert!(
        install.status.success(),
        "{}",
        String::from_utf8_lossy(&install.stderr)
    );
    for f in [
        "/usr/bin/understudy",
        "/etc/understudy/understudy.toml",
        "/lib/systemd/system/understudy.service",
        "/usr/share/bash-completion/completions/understudy",
        "/usr/share/zsh/vendor-completions/_understudy",
        "/usr/share/fish/vendor_completions.d/understudy.fish",
        "/usr/share/man/man1/understudy.1.gz",
    ] {
        assert!(Path::new(f).exists(), "{f} is installed");
    }
    let id = Command::new("id")
        .args(["-u", "understudy"])
        .output()
        .unwrap();
    assert!(id.status.success(), "the package made its user");
    let uid = String::from_utf8_lossy(&id.stdout).trim().to_string();
    let state = std::fs::metadata("/var/lib/understudy").unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&state).to_string(), uid);

    // The unit's command line, run as the unit runs it.
    let unit = std::fs::read_to_string("/lib/systemd/system/understudy.service").unwrap();
    for hardening in [
        "ProtectSystem=strict",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "StateDirectory=understudy",
        "Restart=on-failure",
        "User=understudy",
    ] {
        assert!(unit.contains(hardening), "the unit has {hardening}");
    }
    let exec: Vec<String> = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart")
        .split_whitespace()
        .map(String::from)
        .collect();
    let _ = std::fs::remove_file("/var/lib/understudy/daemon.json");
    let mut daemon = Command::new("setpriv")
        .args([
            "--reuid=understudy",
            "--regid=understudy",
            "--init-groups",
            "--inh-caps=+net_bind_service",
            "--ambient-caps=+net_bind_service",
            "--bounding-set=-all,+net_bind_service",
            "--no-new-privs",
            "--",
        ])
        .args(&exec)
        .current_dir("/")
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (started, _) = wait(
        Duration::from_secs(20),
        || "the packaged daemon to start".into(),
        || {
            if let Ok(Some(s)) = daemon.try_wait() {
                panic!("the packaged daemon exited with {s}");
            }
            std::fs::read_to_string("/var/lib/understudy/daemon.json").ok()
        },
    );
    assert!(started.contains("127.0.0.1:9353"), "{started}");
    let pid = daemon.id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line.split_whitespace().nth(1) == Some(uid.as_str()),
        "runs as its user: {uid_line}"
    );
    let installed = Path::new("/usr/bin/understudy");
    let st = Command::new(installed)
        .args(["status", "-c", "/etc/understudy/understudy.toml"])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    // ExecReload: SIGHUP; the daemon reloads and keeps running.
    Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    wait_until(Duration::from_secs(20), "the reload", || {
        std::fs::read_to_string("/var/lib/understudy/daemon.json").is_ok_and(|t| t != started)
    });
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "still running after the reload"
    );
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let out = daemon.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("SIGHUP: reloading"), "{log}");

    let check = Command::new(installed)
        .args([
            "check-config",
            "--offline",
            "-c",
            "/etc/understudy/understudy.toml",
        ])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let man = Command::new("sh")
        .args([
            "-c",
            "zcat /usr/share/man/man1/understudy.1.gz | head -c 2000",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&man.stdout).contains("understudy"));

    let purge = Command::new("dpkg")
        .args(["--purge", "understudy"])
        .output()
        .unwrap();
    assert!(
        purge.status.success(),
        "{}",
        String::from_utf8_lossy(&purge.stderr)
    );
    assert!(
        !installed.exists()
            && !Path::new("/var/lib/understudy").exists()
            && !Path::new("/etc/understudy/understudy.toml").exists()
    );
}
