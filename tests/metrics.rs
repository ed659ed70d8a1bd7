//! `GET /metrics` (issue 14): after a failover, a scrape is valid OpenMetrics text, every line
//! of it parses, and the series say what happened (the site's phase, which server is up, one
//! failover with its detection time, probe durations, DNS queries answered).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::{one_site, wait_until, Daemon, Nginx};

/// A scrape: the Content-Type and the body, by curl, as Prometheus would ask.
fn scrape(d: &Daemon) -> (String, String) {
    let out = std::process::Command::new("curl")
        .args(["-s", "-i", "--max-time", "5"])
        .arg(format!("http://{}/metrics", d.info.api))
        .output()
        .expect("curl");
    let text = String::from_utf8(out.stdout).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let ctype = head
        .lines()
        .find_map(|l| l.strip_prefix("content-type: "))
        .unwrap_or_default()
        .to_string();
    (ctype, body.to_string())
}

/// Every line checked against the OpenMetrics text format; the samples by `name{labels}`.
fn parse(body: &str) -> BTreeMap<String, f64> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    let mut samples = BTreeMap::new();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "ends with # EOF");
    for line in &lines[..lines.len() - 1] {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name) = (parts.next().unwrap(), parts.next().unwrap_or_default());
            assert!(matches!(kind, "HELP" | "TYPE" | "UNIT"), "{line}");
            assert!(name_ok(name) && name.starts_with("understudy_"), "{line}");
            if kind == "TYPE" {
                let t = parts.next().unwrap_or_default();
                assert!(
                    matches!(t, "counter" | "gauge" | "histogram" | "info" | "unknown"),
                    "{line}"
                );
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let name = series.split('{').next().unwrap();
        assert!(name_ok(name) && name.starts_with("understudy_"), "{line}");
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
                for pair in labels[1..labels.len() - 1].split(',') {
                    let (k, v) = pair.split_once('=').unwrap_or_else(|| panic!("{line}"));
                    assert!(name_ok(k), "{line}");
                    assert!(v.starts_with('"') && v.ends_with('"'), "{line}");
                }
            }
        }
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("not a number: {line}")),
        };
        samples.insert(series.to_string(), v);
    }
    samples
}

#[test]
fn a_scrape_after_a_failover_parses_and_says_what_happened() {
    let mut primary = Nginx::start("127.0.0.1", "primary");
    let standby = Nginx::start("127.0.0.2", "standby");
    let d = Daemon::start(&one_site(primary.addr, standby.addr, ""));
    d.fail_over(&mut primary);
    let _ = d.answer("www.example.test");
    let _ = d.answer("nothing-here.example.test");
    wait_until(Duration::from_secs(5), "the primary seen down", || {
        parse(&scrape(&d).1).get(r#"understudy_site_up{site="shop",server="primary"}"#)
            == Some(&0.0)
    });
    let (ctype, body) = scrape(&d);
    assert_eq!(
        ctype,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let m = parse(&body);
    let get = |k: &str| {
        *m.get(k)
            .unwrap_or_else(|| panic!("{k} missing from\n{body}"))
    };
    assert_eq!(
        get(r#"understudy_site_up{site="shop",server="standby"}"#),
        1.0
    );
    assert_eq!(
        get(r#"understudy_site_phase{site="shop",phase="failed-over"}"#),
        1.0
    );
    assert_eq!(
        get(r#"understudy_site_phase{site="shop",phase="healthy"}"#),
        0.0
    );
    assert_eq!(get(r#"understudy_site_on_standby{site="shop"}"#), 1.0);
    assert_eq!(
        get(r#"understudy_failovers_total{site="shop",direction="over"}"#),
        1.0
    );
    assert_eq!(get("understudy_failover_detection_seconds_count"), 1.0);
    let detected = get("understudy_failover_detection_seconds_sum");
    assert!(detected > 0.0 && detected < 10.0, "{detected}");
    assert!(get(r#"understudy_probe_duration_seconds_count{site="shop",server="primary"}"#) >= 3.0);
    assert!(get(r#"understudy_dns_queries_total{rcode="NOERROR"}"#) >= 1.0);
    assert!(get(r#"understudy_dns_queries_total{rcode="NXDOMAIN"}"#) >= 1.0);
    assert!(
        body.contains("# TYPE understudy_probe_duration_seconds histogram")
            && body.contains("# UNIT understudy_probe_duration_seconds seconds"),
        "{body}"
    );
}
