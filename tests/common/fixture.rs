//! A fixture site on nginx with every reference kind the crawler discovers, query-string
//! assets, extension-less pages, redirects, a real 404, a soft-404 app shell, a URL trap, a gzip
//! bomb and hostile hrefs (used by the mirror and standby-server tests).

use std::path::{Path, PathBuf};

use super::Nginx;

const NGINX_SITE: &str = r#"
    root {DIR}/www;
    types { text/html html; text/css css; application/javascript js; image/png png; image/svg+xml svg;
            application/manifest+json webmanifest; application/xml xml; text/plain txt; image/webp webp;
            image/jpeg jpg; video/mp4 mp4; font/woff2 woff2; image/x-icon ico; application/json json; }
    default_type application/octet-stream;
    index index.html;
    location / { try_files $uri $uri.html $uri/ =404; }
    location = /old { return 301 /about; }
    location = /away { return 302 http://203.0.113.9/elsewhere; }
    location = /flaky { return 503; }
    location /app/ { try_files $uri /app/index.html; }
    location /trap/ { default_type text/html; return 200 "<a href='next/'>next</a> <a href='?p=1$arg_p'>more</a>"; }
    location = /bomb.html { default_type text/html; add_header Content-Encoding gzip; alias {DIR}/bomb.gz; }
"#;

/// The fixture site on nginx at 127.0.0.1, as `http://www.fixture.test:PORT/`.
pub struct Fixture {
    pub nginx: Nginx,
    pub www: PathBuf,
}

pub fn write(root: &Path, rel: &str, body: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let tmp = p.with_extension("tmp-write");
    std::fs::write(&tmp, body).unwrap();
    std::fs::rename(&tmp, &p).unwrap();
}

impl Fixture {
    pub fn start() -> Fixture {
        Fixture::start_with(|dir| Nginx::start_custom("127.0.0.1", dir, NGINX_SITE))
    }

    /// The fixture site on nginx inside the network namespace `netns`, on `addr` there.
    #[allow(dead_code, reason = "the proxy tests use it")]
    pub fn start_in(netns: &str, addr: std::net::SocketAddr) -> Fixture {
        Fixture::start_with(|dir| Nginx::start_custom_in(netns, addr, dir, NGINX_SITE))
    }

    fn start_with(nginx: impl FnOnce(tempfile::TempDir) -> Nginx) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let www = dir.path().join("www");
        std::fs::create_dir_all(&www).unwrap();
        // A gzip bomb: 128 gzip members of 1 MiB of zeros each, about 130 KB that decode to
        // 128 MiB (concatenated members are one valid gzip stream).
        let member = {
            use std::io::Write;
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            gz.write_all(&vec![0u8; 1 << 20]).unwrap();
            gz.finish().unwrap()
        };
        std::fs::write(dir.path().join("bomb.gz"), member.repeat(128)).unwrap();
        let nginx = nginx(dir);
        let f = Fixture { www, nginx };
        f.write_site();
        f
    }

    pub fn port(&self) -> u16 {
        self.nginx.addr.port()
    }

    pub fn origin(&self) -> String {
        format!("http://www.fixture.test:{}", self.port())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin())
    }

    pub fn set(&self, rel: &str, body: &str) {
        write(&self.www, rel, body.as_bytes());
    }

    fn write_site(&self) {
        let port = self.port();
        let long = "x".repeat(3000);
        self.set(
            "index.html",
            &format!(
                r##"<!doctype html><html><head><title>Fixture</title>
<link rel="stylesheet" href="/css/site.css?v=3">
<link rel="preload" as="image" imagesrcset="/img/pre-1.png 1x, /img/pre-2.png 2x">
<link rel="icon" href="/favicon.ico"><link rel="manifest" href="/app.webmanifest">
<meta http-equiv="refresh" content="3600; url=/refreshed">
<style>
  header {{ background: url("/img/bg.png") }}
  @import '/css/imp.css';
</style>
<script src="/js/app.js?v=3"></script>
</head><body style="background-image: url('/img/inline.png')">
<a href="/about">About</a> <a href="/blog/">Blog</a> <a href="/old">Old</a> <a href="/missing">Missing</a>
<a href="/away">Away</a> <a href="/app/deep/link">App</a> <a href="/trap/">Calendar</a>
<a href="/bomb.html">Bomb</a> <a href="/private/secret">Private</a> <a href="/q?a=1&amp;b=2">Entity</a>
<a href="http://www.fixture.test:{port}/absolute">Absolute</a> <a href="http://fixture.test:{port}/alias-page">Alias</a>
<img src="img/a.png" srcset="
      img/ml-300.png 300w,
      img/ml-600.png 600w" sizes="50vw" alt="multi-line srcset">
<img data-src="/img/lazy.png" data-srcset="/img/lazy-2.png 2x" alt="">
<picture><source srcset="/img/p.webp 1x,/img/p2.webp 2x" type="image/webp"><img src="/img/p.png" alt=""></picture>
<video poster="/img/poster.jpg"><source src="/media/v.mp4" type="video/mp4"></video>
<object data="/img/o.svg" type="image/svg+xml"></object>
<svg width="10" height="10"><image href="/img/svg-img.png"/><use xlink:href="/img/sprite.svg#icon"/></svg>
<a href="javascript:alert(1)">js</a> <a href="mailto:owner@fixture.test">mail</a> <a href="http://203.0.113.1/offsite">off</a>
<a href="//evil.example.net/x">proto-relative off-site</a> <a href="file:///etc/passwd">file</a>
<a href="/../../../../etc/passwd">dots</a> <a href="http://[::1">broken</a> <a href="data:text/html,hi">data</a>
<a href="/long?{long}">long</a> <a href="%">percent</a> <a href="http://user:pw@www.fixture.test:{port}/creds">creds</a>
</body></html>"##
            ),
        );
        self.set(
            "about.html",
            r#"<h1>About</h1><a href="/">home</a><img src="/img/about.png">"#,
        );
        self.set("q.html", "<p>query page</p>");
        self.set("refreshed.html", "<p>refreshed</p>");
        self.set("absolute.html", "<p>absolute</p>");
        self.set("alias-page.html", "<p>reached through the alias</p>");
        self.set("private/secret.html", "<p>private</p>");
        self.set("only-in-sitemap.html", "<p>only the sitemap links here</p>");
        self.set(
            "blog/index.html",
            r#"<a href="post-1">one</a> <a href="deep/1">deep</a>"#,
        );
        self.set("blog/post-1.html", r#"<p>post one</p><a href="../">up</a>"#);
        for i in 1..=5 {
            self.set(
                &format!("blog/deep/{i}.html"),
                &format!(r#"<p>deep {i}</p><a href="{}">next</a>"#, i + 1),
            );
        }
        self.set("blog/deep/6.html", "<p>the bottom</p>");
        self.set(
            "css/site.css",
            r#"@import url(/css/print.css);
body { background: url(../img/body.png) }
.hero { background-image: image-set("/img/set-1.png" 1x, url(/img/set-2.png) 2x); }
@font-face { font-family: F; src: url(/fonts/f.woff2) format("woff2"); }
/* url(/img/commented-out.png) */"#,
        );
        self.set("css/print.css", "p { color: black }");
        self.set(
            "css/imp.css",
            ".i { background: url('/img/from-import.png') }",
        );
        self.set("js/app.js", "console.log('app v3');");
        self.set(
            "app.webmanifest",
            r#"{"name":"Fixture","icons":[{"src":"/img/icon-192.png","sizes":"192x192"}]}"#,
        );
        self.set(
            "sitemap.xml",
            &format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>http://www.fixture.test:{port}/only-in-sitemap</loc></url></urlset>"#
            ),
        );
        self.set("robots.txt", "User-agent: *\nDisallow: /private/\n");
        self.set(
            "app/index.html",
            r#"<p>app shell</p><a href="missing/">more</a><img src="/img/app.png">"#,
        );
        self.set(
            "img/o.svg",
            r#"<svg xmlns="http://www.w3.org/2000/svg"><image href="/img/in-svg.png"/></svg>"#,
        );
        for img in [
            "a.png",
            "ml-300.png",
            "ml-600.png",
            "lazy.png",
            "lazy-2.png",
            "p.webp",
            "p2.webp",
            "p.png",
            "poster.jpg",
            "svg-img.png",
            "sprite.svg",
            "pre-1.png",
            "pre-2.png",
            "inline.png",
            "bg.png",
            "body.png",
            "set-1.png",
            "set-2.png",
            "icon-192.png",
            "about.png",
            "from-import.png",
            "in-svg.png",
            "app.png",
        ] {
            self.set(&format!("img/{img}"), &format!("image bytes of {img}"));
        }
        self.set("favicon.ico", "icon");
        self.set("media/v.mp4", "video");
        self.set("fonts/f.woff2", "font");
    }

    pub fn config(&self, extra: &str) -> String {
        let port = self.port();
        let ip = self.nginx.addr.ip();
        format!(
            r#"data_dir = "{{DATA}}"
[dns]
listen = ["127.0.0.1:0"]
[[dns.zones]]
name = "fixture.test"
[api]
listen = "127.0.0.1:0"
[[sites]]
name = "fixture"
domain = "www.fixture.test"
aliases = ["fixture.test"]
primary = "{ip}:{port}"
standby = "127.0.0.2"
[sites.probe]
scheme = "http"
port = {port}
interval = "1s"
[sites.mirror]
max_query_variants = 20
max_response_bytes = "16MiB"
retries = 1
{extra}
"#
        )
    }
}
