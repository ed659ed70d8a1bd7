use super::*;
use crate::decide::Phase;

#[test]
fn state_survives_reopen_and_events_append() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let mut st = SiteState::new(5);
    st.phase = Phase::FailedOver;
    let ev = NewEvent {
        site: "a",
        at: 6,
        kind: EventKind::Transition,
        from_phase: Some("suspect"),
        to_phase: Some("failed-over"),
        reason: "down",
        ..Default::default()
    };
    s.save("a", &st, 6, &[ev]).unwrap();
    drop(s);
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.load_state("a").unwrap().unwrap(), st);
    assert_eq!(s.load_state("b").unwrap(), None);
    let evs = s.events(Some("a"), 10).unwrap();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].to_phase.as_deref(), Some("failed-over"));
}

#[test]
fn serial_moves_only_with_content() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let a = s.serial_for("z.", "one", 1_000).unwrap();
    assert_eq!(a, 1_000);
    assert_eq!(s.serial_for("z.", "one", 5_000).unwrap(), 1_000);
    assert_eq!(s.serial_for("z.", "two", 1_000).unwrap(), 1_001);
    assert_eq!(s.serial_for("z.", "three", 9_000).unwrap(), 9_000);
}

#[test]
fn current_public_address_is_the_newest_per_family() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    use crate::net::Family;
    s.save_public_ip(Family::Ipv4, "192.0.2.1".parse().unwrap(), 1, "a")
        .unwrap();
    s.save_public_ip(Family::Ipv6, "2001:db8::1".parse().unwrap(), 2, "a")
        .unwrap();
    s.save_public_ip(Family::Ipv4, "192.0.2.2".parse().unwrap(), 3, "a,b")
        .unwrap();
    let now = s.public_ips().unwrap();
    assert_eq!(now[&Family::Ipv4], ("192.0.2.2".parse().unwrap(), 3));
    assert_eq!(now[&Family::Ipv6], ("2001:db8::1".parse().unwrap(), 2));
    assert_eq!(s.public_ip_history(10).unwrap().len(), 3);
}

#[test]
fn corrupt_state_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    s.conn()
        .execute("INSERT INTO site_state VALUES ('a', '{not json', 0)", [])
        .unwrap();
    let e = s.load_state("a").unwrap_err().to_string();
    assert!(e.contains("unreadable"), "{e}");
}
