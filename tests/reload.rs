//! SIGHUP reloads the config: a site added is probed and published without a restart (same
//! PID), and a config that does not check is refused with its error in the log while the
//! running one keeps answering.

use std::time::Duration;

use crate::common::*;

/// The sites the running daemon watches, from its API (the CLI would read the changed file).
fn sites(d: &Daemon) -> usize {
    let api = understudy::api::ApiClient::plain(d.info.api, Some(d.token()));
    let (code, body) = rt()
        .block_on(understudy::api::call(
            &api,
            hyper::Method::GET,
            "/api/v1/sites",
        ))
        .unwrap();
    assert!(code.is_success());
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["sites"].as_array().unwrap().len()
}

fn hup(d: &Daemon) {
    let pid = d.child.as_ref().unwrap().id();
    let ok = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[test]
fn sighup_adds_a_site_and_refuses_a_bad_config_keeping_the_old_one() {
    let primary = Nginx::start("127.0.0.1", "primary");
    let standby = Nginx::start("127.0.0.2", "standby");
    let mut d = Daemon::start(&one_site(primary.addr, standby.addr, ""));
    let pid = d.child.as_ref().unwrap().id();
    assert_eq!(sites(&d), 1);
    let first = std::fs::read_to_string(d.config_path()).unwrap();

    // A second site, added while running.
    let second = format!(
        "{first}\n[[sites]]\nname = \"blog\"\ndomain = \"blog.example.test\"\nprimary = \"{}\"\nstandby = \"{}\"\n[sites.probe]\nscheme = \"http\"\ninterval = \"200ms\"\n",
        primary.addr, standby.addr
    );
    std::fs::write(d.config_path(), &second).unwrap();
    hup(&d);
    wait_until(
        Duration::from_secs(20),
        "the reloaded daemon's runtime file",
        || d.reload_info(),
    );
    assert_eq!(sites(&d), 2);
    d.wait_answer("blog.example.test", "127.0.0.1", Duration::from_secs(10));
    assert_eq!(d.child.as_ref().unwrap().id(), pid, "the same process");
    assert!(d.log().contains("SIGHUP: reloading"), "{}", d.log());
    let reloaded = d.events_of("daemon-started");
    assert!(
        reloaded.iter().any(|e| e["reason"]
            .as_str()
            .unwrap_or("")
            .contains("configuration reloaded")),
        "{reloaded:?}"
    );
    assert!(
        d.events_of("daemon-stopped").is_empty(),
        "a reload is not a stop"
    );

    // A config with a mistake: refused, the running daemon is untouched.
    std::fs::write(
        d.config_path(),
        second.replace("interval = \"200ms\"", "intreval = \"200ms\""),
    )
    .unwrap();
    hup(&d);
    wait_until(Duration::from_secs(10), "the refusal in the log", || {
        d.log()
            .contains("reload refused, the running configuration stays")
    });
    assert!(d.log().contains("unknown key `intreval`"), "{}", d.log());
    assert_eq!(sites(&d), 2);
    assert_eq!(d.child.as_ref().unwrap().id(), pid);
    d.wait_answer("blog.example.test", "127.0.0.1", Duration::from_secs(5));

    // And the site removed again: no longer watched or published.
    std::fs::write(d.config_path(), &first).unwrap();
    hup(&d);
    wait_until(
        Duration::from_secs(20),
        "the reloaded daemon's runtime file",
        || d.reload_info(),
    );
    assert_eq!(sites(&d), 1);
    assert!(
        d.answer("blog.example.test").is_empty(),
        "a removed site is no longer published"
    );
    assert_eq!(d.stop(), 0);
}
