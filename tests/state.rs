//! The state database under a stranger's hands (issue 11, item 2): deleted, emptied or damaged
//! while understudy was stopped. A start must never silently forget where the records point;
//! it stops, names the file, and says how to restore the daily backup or reset on purpose.

use crate::common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

/// Runs `understudy run` once, expecting it to stop by itself; (exit code, stderr).
fn run_expecting_exit(d: &Daemon, extra: &[&str]) -> (i32, String) {
    let mut child = common::cmd()
        .arg("run")
        .args(extra)
        .arg("-c")
        .arg(d.config_path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return (
                status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stderr).to_string(),
            );
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the daemon started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn remove_db(d: &Daemon) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(d.data_dir().join(format!("understudy.db{suffix}")));
    }
}

fn standby_ip() -> Vec<std::net::IpAddr> {
    vec!["127.0.0.2".parse().unwrap()]
}

#[test]
fn a_lost_database_stops_the_start_and_the_backup_restores_it() {
    let mut primary = Nginx::start("127.0.0.1", "primary");
    let standby = Nginx::start("127.0.0.2", "standby");
    let mut d = Daemon::start(&one_site(primary.addr, standby.addr, ""));
    d.fail_over(&mut primary);
    // A start backs the state up: this one captures the failed-over site.
    d.restart();
    let backups = understudy::store::backups(&d.data_dir());
    assert_eq!(backups.len(), 1, "one backup a day: {backups:?}");
    assert_eq!(d.stop(), 0);

    // Deleted: refused, with the file, the reason and both ways out; nothing was bound.
    remove_db(&d);
    let (code, err) = run_expecting_exit(&d, &[]);
    assert_ne!(code, 0, "{err}");
    let db = d.data_dir().join("understudy.db");
    assert!(
        err.contains(&format!("state database {} is missing", db.display())),
        "{err}"
    );
    assert!(
        err.contains("has been used before") && err.contains("backups"),
        "{err}"
    );
    assert!(
        err.contains(&backups[0].display().to_string()) && err.contains("--reset-state"),
        "{err}"
    );
    assert!(
        !d.data_dir().join("daemon.json").exists(),
        "nothing may start on a lost state"
    );
    assert!(!db.exists(), "the refusal creates no fresh database");

    // Emptied: the same.
    std::fs::write(&db, b"").unwrap();
    let (code, err) = run_expecting_exit(&d, &[]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("is empty"), "{err}");

    // Restored from the backup: the site is still failed over from the first answer on.
    std::fs::copy(&backups[0], &db).unwrap();
    d.restart_after_stop();
    assert_eq!(d.answer("www.example.test"), standby_ip(), "{}", d.log());
    assert_eq!(d.phase(), "failed-over");
    assert_eq!(d.stop(), 0);

    // --reset-state starts afresh, on purpose, and says so.
    remove_db(&d);
    let log = d.dir.path().join("reset.log");
    d.child = Some(
        common::cmd()
            .args(["run", "--reset-state", "-c"])
            .arg(d.config_path())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_until(Duration::from_secs(10), "a reset start", || {
        d.data_dir().join("daemon.json").exists()
    });
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("was missing or empty; every site starts afresh"),
        "{text}"
    );
}

#[test]
fn a_damaged_database_stops_the_start_with_one_clear_message() {
    let primary = Nginx::start("127.0.0.1", "primary");
    let standby = Nginx::start("127.0.0.2", "standby");
    let mut d = Daemon::start(&one_site(primary.addr, standby.addr, ""));
    d.wait_standby_ready();
    assert_eq!(d.stop(), 0);
    let db = d.data_dir().join("understudy.db");

    // Many pages, then one in the middle overwritten: only a whole-file check finds it.
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        for i in 0..400 {
            conn.execute(
                "INSERT INTO events (site, at, kind, reason) VALUES ('shop', ?1, 'alert', ?2)",
                rusqlite::params![i, "x".repeat(300)],
            )
            .unwrap();
        }
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
    }
    let mut bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() > 16 * 4096, "{}", bytes.len());
    let page = 4096 * (bytes.len() / 4096 / 2);
    bytes[page..page + 4096].fill(0xA5);
    std::fs::write(&db, &bytes).unwrap();
    let (code, err) = run_expecting_exit(&d, &[]);
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains(&format!("state database {} is damaged", db.display())),
        "{err}"
    );
    assert!(
        err.contains("nothing was changed") && err.contains("--reset-state"),
        "{err}"
    );
    assert!(!d.data_dir().join("daemon.json").exists());

    // A garbage header: one message, not the same cause twice.
    bytes[..100].fill(b'#');
    std::fs::write(&db, &bytes).unwrap();
    let (code, err) = run_expecting_exit(&d, &[]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("is damaged (file is not a database)"), "{err}");
    assert_eq!(err.matches("file is not a database").count(), 1, "{err}");
    assert!(
        err.contains("backups"),
        "names where the backups are: {err}"
    );

    // --reset-state moves the damaged file aside (never deletes it) and starts.
    d.child = Some(
        common::cmd()
            .args(["run", "--reset-state", "-c"])
            .arg(d.config_path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until(Duration::from_secs(10), "a reset start", || {
        d.data_dir().join("daemon.json").exists()
    });
    let aside: Vec<_> = std::fs::read_dir(d.data_dir())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("understudy.db.damaged-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "the damaged file is kept aside");
    assert_eq!(std::fs::read(aside[0].path()).unwrap()[..100], bytes[..100]);
}
