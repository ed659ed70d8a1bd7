use super::*;

fn page(w: &mut SnapshotWriter, url: &str, body: &str) {
    let hash = w.put_body(body.as_bytes()).unwrap();
    w.add(
        url,
        Entry {
            status: 200,
            content_type: Some("text/html".into()),
            content_encoding: None,
            location: None,
            etag: None,
            last_modified: None,
            body: Some(hash),
            length: body.len() as u64,
        },
    );
}

fn snapshot(s: &SnapshotStore, id: &str, pages: &[(&str, &str)]) -> Result<Published, Rejected> {
    let mut w = s.begin(id, "https://www.example.test/", 1).unwrap();
    for (u, b) in pages {
        page(&mut w, u, b);
    }
    w.finish(Checks::default()).unwrap()
}

/// Old snapshots beyond `keep` are dropped with the bodies only they had; a publish that
/// drops none does not sweep, and what a stopped crawl left is swept at the next drop.
#[test]
fn bodies_live_as_long_as_a_kept_snapshot_needs_them() {
    let dir = tempfile::tempdir().unwrap();
    let s = SnapshotStore::open(dir.path(), "www.example.test").unwrap();
    let home = "https://www.example.test/";
    let has = |body: &str| s.bodies().path(&sha256_hex(body.as_bytes())).exists();
    let p = snapshot(&s, "0001", &[(home, "v1")]).unwrap();
    assert_eq!(p.bodies_collected, 0);
    // A crawl stopped half-way leaves a body no manifest references.
    let mut w = s.begin("0002", home, 1).unwrap();
    page(&mut w, home, "abandoned");
    w.abandon();
    for (i, v) in ["v2", "v3"].iter().enumerate() {
        let p = snapshot(&s, &format!("000{}", i + 3), &[(home, v)]).unwrap();
        assert_eq!(p.bodies_collected, 0, "nothing dropped yet (keep = 3)");
    }
    assert!(has("v1") && has("abandoned"));
    let p = snapshot(&s, "0005", &[(home, "v4")]).unwrap();
    assert!(
        !has("v1") && !has("abandoned"),
        "the oldest snapshot's body and the leftover"
    );
    assert_eq!(p.bodies_collected, 2);
    assert!(has("v2") && has("v3") && has("v4"));
}

#[test]
fn publishes_atomically_and_shares_unchanged_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let s = SnapshotStore::open(dir.path(), "www.example.test").unwrap();
    assert_eq!(s.current().unwrap(), None);
    let pages = [
        ("https://www.example.test/", "<h1>home</h1>"),
        ("https://www.example.test/about", "about"),
        ("https://www.example.test/app.js?v=3", "js"),
    ];
    let p = snapshot(&s, "0001", &pages).unwrap();
    assert_eq!((p.pages, p.new_bodies), (3, 3));
    let cur = s.current().unwrap().unwrap();
    assert_eq!(cur.id, "0001");
    let e = &cur.entries["https://www.example.test/app.js?v=3"];
    assert_eq!(
        s.body(e.body.as_ref().unwrap()).unwrap(),
        b"js",
        "keyed by the original URL, query included"
    );
    // Unchanged site: no new bodies.
    assert_eq!(snapshot(&s, "0002", &pages).unwrap().new_bodies, 0);
    assert!(
        s.body("../../etc/passwd").is_err(),
        "only hashes name bodies"
    );
}

#[test]
fn a_much_smaller_snapshot_is_rejected_and_the_last_good_stays() {
    let dir = tempfile::tempdir().unwrap();
    let s = SnapshotStore::open(dir.path(), "site").unwrap();
    let big: Vec<(String, String)> = (0..10)
        .map(|i| {
            (
                format!("https://www.example.test/p{i}"),
                format!("page {i}"),
            )
        })
        .collect();
    let mut pages: Vec<(&str, &str)> = big.iter().map(|(u, b)| (u.as_str(), b.as_str())).collect();
    pages.push(("https://www.example.test/", "home"));
    snapshot(&s, "0001", &pages).unwrap();
    let r = snapshot(
        &s,
        "0002",
        &[
            ("https://www.example.test/", "home"),
            ("https://www.example.test/p1", "x"),
        ],
    )
    .unwrap_err();
    assert!(r.0.contains("fewer than 50%"), "{}", r.0);
    assert_eq!(s.current().unwrap().unwrap().id, "0001");
    // No entry page: rejected too.
    let r = snapshot(&s, "0003", &pages[..10]).unwrap_err();
    assert!(r.0.contains("entry page"), "{}", r.0);
    assert_eq!(s.current().unwrap().unwrap().id, "0001");
}

#[test]
fn an_interrupted_snapshot_leaves_the_published_one_and_is_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let s = SnapshotStore::open(dir.path(), "site").unwrap();
    snapshot(&s, "0001", &[("https://www.example.test/", "home")]).unwrap();
    {
        // A crawl that dies half-way: the writer is dropped without finish().
        let mut w = s.begin("0002", "https://www.example.test/", 2).unwrap();
        page(&mut w, "https://www.example.test/", "half-written");
    }
    assert_eq!(s.current().unwrap().unwrap().id, "0001");
    assert!(dir
        .path()
        .join("mirror/site/snapshots/0002.partial")
        .exists());
    let w = s.begin("0003", "https://www.example.test/", 3).unwrap();
    assert!(
        !dir.path()
            .join("mirror/site/snapshots/0002.partial")
            .exists(),
        "leftovers removed on the next begin"
    );
    drop(w);
}

#[test]
fn keeps_the_last_n_and_collects_unreferenced_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let s = SnapshotStore::open(dir.path(), "site").unwrap();
    for i in 1..=5 {
        snapshot(
            &s,
            &format!("{i:04}"),
            &[("https://www.example.test/", &format!("home v{i}"))],
        )
        .unwrap();
    }
    let ids = s.snapshot_ids().unwrap();
    assert_eq!(ids, ["0003", "0004", "0005"]);
    assert!(
        s.body(&sha256_hex(b"home v1")).is_err(),
        "v1's body is gone"
    );
    assert_eq!(s.body(&sha256_hex(b"home v3")).unwrap(), b"home v3");
}

/// A compressed form a crash emptied is not served as the body (neither brotli nor gzip is
/// ever empty); the standby compresses again instead.
#[test]
fn an_empty_compressed_form_counts_as_none() {
    let dir = tempfile::tempdir().unwrap();
    let s = SnapshotStore::open(dir.path(), "www.example.test").unwrap();
    let b = s.bodies();
    let hash = b.put(b"body").unwrap();
    std::fs::write(b.path(&hash).with_extension("br"), b"").unwrap();
    assert_eq!(b.encoded(&hash, "br"), None);
    std::fs::write(b.path(&hash).with_extension("br"), b"\x0b\x01\x80").unwrap();
    assert!(b.encoded(&hash, "br").is_some());
}

/// A body written aside by a process that is gone (a crash, or a full disk before the fix) is
/// removed at the next crawl's start; one of a running process (this one) is left alone.
/// Before the fix, the chaos suite's disk-full scenario kept failing every later crawl.
#[test]
fn bodies_left_aside_by_a_gone_writer_are_removed_at_the_next_begin() {
    let dir = tempfile::tempdir().unwrap();
    let s = SnapshotStore::open(dir.path(), "www.example.test").unwrap();
    snapshot(&s, "0001", &[("https://www.example.test/", "v1")]).unwrap();
    let shard = s.bodies().dir.join("07");
    std::fs::create_dir_all(&shard).unwrap();
    // No process has a PID above the kernel's maximum (2^22).
    let dead = shard.join(format!(".{}.4999999.ThreadId(4).tmp", "07".repeat(32)));
    let alive = shard.join(format!(
        ".{}.{}.ThreadId(2).tmp",
        "07".repeat(32),
        std::process::id()
    ));
    std::fs::write(&dead, vec![0u8; 4096]).unwrap();
    std::fs::write(&alive, b"in flight").unwrap();
    let w = s.begin("0002", "https://www.example.test/", 1).unwrap();
    drop(w);
    assert!(!dead.exists(), "the gone writer's leftover stays");
    assert!(alive.exists(), "a running writer's file was removed");
}
