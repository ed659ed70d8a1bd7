//! A crawl of an HTTPS origin that offers HTTP/2 (nginx with `http2` on its TLS listener): the
//! crawler negotiates it by ALPN and multiplexes its requests, and the copy is the same.

use crate::common;

use common::Daemon;

#[test]
fn an_http2_origin_is_crawled_over_http2() {
    let ca = common::ca::Ca::new();
    let (cert, key) = ca.issue("www.h2.test");
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    let links: String = (0..40)
        .map(|i| format!("<a href=\"/p/{i}.html\">{i}</a>"))
        .collect();
    common::fixture::write(&www, "index.html", links.as_bytes());
    for i in 0..40 {
        common::fixture::write(
            &www,
            &format!("p/{i}.html"),
            format!("<p>page {i}</p>").as_bytes(),
        );
    }
    // The default log format's request line carries the protocol ("GET / HTTP/2.0").
    let nginx = common::Nginx::start_custom_h2(
        "127.0.0.1",
        dir,
        "    access_log {DIR}/access.log;\n    root {DIR}/www;\n    types { text/html html; }\n",
        &cert,
        &key,
    );
    let port = nginx.addr.port();
    let ca_file = nginx.dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let d = Daemon::prepare(&common::one_site_config(
        "{DATA}",
        "h2",
        port,
        "https",
        &format!("ca_file = \"{}\"", ca_file.display()),
        "scheduled = false\nconcurrency = 2",
    ));
    let (code, r) = d.crawl_json("h2");
    assert_eq!(
        (code, r["outcome"].as_str()),
        (0, Some("published")),
        "{r:#}"
    );
    let m = d.snapshot("h2");
    for i in 0..40 {
        let u = format!("https://www.h2.test:{port}/p/{i}.html");
        assert_eq!(m.entries.get(&u).map(|e| e.status), Some(200), "{u}");
    }
    drop(d);
    let log = std::fs::read_to_string(nginx.dir.path().join("access.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.len() >= 41, "{log}");
    assert!(
        lines.iter().all(|l| l.contains(" HTTP/2.0\"")),
        "every request over HTTP/2:\n{log}"
    );
}
