//! The README's first command must work on a bare machine: `understudy demo` runs the whole
//! failover and failback on loopback and exits 0.

use std::process::Command;

#[test]
fn demo_shows_failover_and_failback_and_exits_zero() {
    let out = Command::new(env!("CARGO_BIN_EXE_understudy"))
        .arg("demo")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("→  127.0.0.1  (the primary)"), "{stdout}");
    assert!(
        stdout.contains("answer moved to 127.0.0.2 (the standby)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("answer moved back to 127.0.0.1 (the primary)"),
        "{stdout}"
    );
}
