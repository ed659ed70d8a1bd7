//! Bad configs: each broken file must give exactly this error (file:line:col: key: message) and
//! exit code 2, through the real binary (`understudy check-config`).

use crate::common;

mod cases {
    include!("common/config_cases.rs");
}
use cases::SITE;

fn check(text: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).unwrap();
    let out = common::cmd()
        .arg("check-config")
        .arg("-c")
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).replace(&path.display().to_string(), "bad.toml");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        err,
    )
}

#[test]
fn broken_configs_give_exact_errors() {
    let cases = cases::error_cases();
    let mut failures = vec![];
    for (what, text, want) in &cases {
        let (code, _, err) = check(text);
        let want_line = format!("error: {want}\n");
        if code != 2 || err != want_line {
            failures.push(format!(
                "{what}:\n  want (exit 2): {want_line}  got  (exit {code}): {err}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Allowed but likely wrong: `check-config` passes (exit 0) and prints a located warning.
#[test]
fn doubtful_configs_give_located_warnings() {
    let cases = cases::warning_cases();
    let mut failures = vec![];
    for (what, text, want) in &cases {
        let (code, _, err) = check(text);
        let want_line = format!("warning: {want}\n");
        if code != 0 || !err.contains(&want_line) {
            failures.push(format!(
                "{what}:\n  want (exit 0): {want_line}  got  (exit {code}): {err}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    // A nameserver with its address in the zone is not warned about.
    let (code, _, err) = check(&SITE.replace(
        "name = \"example.test\"\n",
        "name = \"example.test\"\nrecords = [\"ns1 A 192.0.2.53\"]\n",
    ));
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("lame"), "{err}");
}

#[test]
fn missing_file_names_the_file_and_hints() {
    let out = common::cmd()
        .args(["check-config", "-c", "/nonexistent/understudy.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(
            "error: /nonexistent/understudy.toml: cannot read the config file: No such file"
        ),
        "{err}"
    );
    assert!(err.contains("hint: pass the config with -c FILE"), "{err}");
}

#[test]
fn check_config_prints_effective_settings() {
    let (code, out, err) = check(SITE);
    assert_eq!(code, 0, "{err}");
    for want in [
        "interval = \"2s\"",
        "timeout = \"1s\"",
        "failures_to_down = 3",
        "successes_to_up = 5",
        "hold_down = \"5m\"",
        "ttl = 30",
        "scheme = \"https\"",
    ] {
        assert!(out.contains(want), "missing {want} in:\n{out}");
    }
}

#[test]
fn help_is_useful() {
    let out = common::cmd().arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["run", "check-config", "status", "drain", "release", "demo"] {
        assert!(text.contains(cmd), "--help lacks {cmd}:\n{text}");
    }
    let out = common::cmd().args(["drain", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("--force") && text.contains("standby"),
        "{text}"
    );
}
