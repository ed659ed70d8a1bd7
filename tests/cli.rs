//! The command line as scripts use it: piped into `head`, and the project's own scripts.

use crate::common;

use std::process::Stdio;

use common::*;

/// Issue 11, item 8: `understudy status | head -1` panicked with "failed printing to stdout:
/// Broken pipe" (exit 101). Here the pipe's reading end is closed before the command writes,
/// so every write fails; each command must end quietly with status 0.
#[test]
fn every_command_exits_quietly_on_a_closed_pipe() {
    let primary = Nginx::start("127.0.0.1", "primary");
    let standby = Nginx::start("127.0.0.2", "standby");
    let d = Daemon::start(&one_site(primary.addr, standby.addr, ""));
    d.wait_standby_ready();
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["check-config", "--offline"],
        &["ip"],
        &["dns", "plan"],
        &["mirror", "history", "shop"],
        &["--help"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = common::cmd()
            .args(args)
            .arg("-c")
            .arg(d.config_path())
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "understudy {args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "understudy {args:?}: {err}"
        );
    }
}

/// Issue 11, item 13: no script or test of this project ends a process by its name (with the
/// procps or psmisc tools): that can end processes it did not start. They stop what they
/// started by its PID.
#[test]
fn nothing_here_ends_a_process_by_name() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join(".ci/run")];
    for dir in ["tests", "tests/common", "bench", "examples", "src"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
            if e.path().is_file() {
                files.push(e.path());
            }
        }
    }
    let (p, k) = (concat!("pk", "ill"), concat!("kill", "all"));
    let mut found = vec![];
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            if line.contains(p) || line.contains(k) {
                found.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(files.len() > 20, "looked at too few files: {files:?}");
    assert!(
        found.is_empty(),
        "processes ended by name:\n{}",
        found.join("\n")
    );
}
