//! First-crawl benchmark on a real site nobody here wrote, driven by `bench/mirror-doc` (not a
//! test).
//!
//! The HTML documentation of Python 3.11 as Debian packages it (`python3.11-doc`: 530 Sphinx
//! pages, their stylesheets, scripts and images) is served by nginx on loopback with no delay,
//! so the crawl is bound by the crawler's own CPU work: parsing, hashing, storing. In the same
//! run, alternating, `wget2 --mirror -p -k -E --max-threads=8` and `understudy mirror` at
//! concurrency 8 each make a first crawl into an empty directory/store, `RUNS` times (default
//! 3). Prints each run's wall time and URLs, the median of each tool and their ratio.
//!
//!   mirror_doc_bench [ROOT=/usr/share/doc/python3.11/html] [RUNS=3]

#[allow(dead_code)]
#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Discovery reads pages with its own reader and the export rewrites them with lol_html: on
/// this site nobody here wrote, both must find the same references in every page.
fn agreement(root: &Path) {
    use understudy::mirror::extract::{self, Kind};
    let (mut pages, mut differ) = (0, Vec::new());
    for p in common::files_under(root) {
        if p.extension().is_none_or(|x| x != "html") {
            continue;
        }
        let body = std::fs::read(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        let url = url::Url::parse(&format!("http://www.doc.test/{rel}")).unwrap();
        let mut rewriter = Vec::new();
        extract::html(&body, &url, &mut |u: &url::Url| {
            rewriter.push(u.clone());
            None
        });
        pages += 1;
        if extract::references(Kind::Html, &body, &url) != rewriter {
            differ.push(rel);
        }
    }
    println!(
        "\ndiscovery and the export's rewriter found the same references in {} of {pages} pages {differ:?}",
        pages - differ.len()
    );
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let root = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/usr/share/doc/python3.11/html".into());
    let runs: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    assert!(
        Path::new(&root).join("index.html").exists(),
        "{root}/index.html is missing: run bench/mirror-doc, which installs python3.11-doc"
    );
    let bin = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("understudy");
    let nginx = common::Nginx::start_custom(
        "127.0.0.1",
        tempfile::tempdir().unwrap(),
        &format!(
            "    root {root};\n    include /etc/nginx/mime.types;\n    index index.html;\n    location / {{ }}\n"
        ),
    );
    let port = nginx.addr.port();
    let dir = tempfile::tempdir().unwrap();
    // Each run writes into directories of its own, removed only at the end: deleting thousands
    // of files just before a run makes the next file creations slower (ext4 skips recently freed
    // inodes), which would tax whichever tool runs next.
    let config = |data: &Path| {
        common::one_site_config(
            &data.display().to_string(),
            "doc",
            port,
            "http",
            "",
            "concurrency = 8\nscheduled = false",
        )
    };

    println!("first-crawl benchmark: {root} served by nginx on 127.0.0.1 (no delay), {runs} runs");
    println!("\n{:<4} {:<12} {:>8} {:>7}", "run", "tool", "secs", "URLs");
    let (mut w2, mut us) = (Vec::new(), Vec::new());
    for run in 1..=runs {
        let wget2_dir = dir.path().join(format!("wget2-{run}"));
        let config_path = dir.path().join(format!("understudy-{run}.toml"));
        std::fs::write(
            &config_path,
            config(&dir.path().join(format!("data-{run}"))),
        )
        .unwrap();
        let start = Instant::now();
        let out = common::wget2_mirror(&wget2_dir, &format!("http://127.0.0.1:{port}/"))
            .output()
            .expect("wget2 starts");
        let secs = start.elapsed().as_secs_f64();
        if !out.status.success() && out.status.code() != Some(8) {
            eprintln!(
                "wget2 exited {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        println!(
            "{run:<4} {:<12} {secs:>8.2} {:>7}",
            "wget2",
            common::files_under(&wget2_dir).len()
        );
        w2.push(secs);

        let start = Instant::now();
        let out = Command::new(&bin)
            .args(["mirror", "doc", "--json", "-c"])
            .arg(&config_path)
            .output()
            .expect("understudy starts");
        let secs = start.elapsed().as_secs_f64();
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("no report ({e}): {}", String::from_utf8_lossy(&out.stderr))
        });
        assert_eq!(r["outcome"], "published", "{r:#}");
        println!(
            "{run:<4} {:<12} {secs:>8.2} {:>7}",
            "understudy", r["fetched"]
        );
        eprintln!(
            "     understudy: {} ms by its own clock, {} requests, {} errors, guesses {} found / {} missed",
            r["duration_ms"], r["requests"], r["errors"], r["guesses_kept"], r["guesses_missed"]
        );
        us.push(secs);
    }
    agreement(Path::new(&root));
    let (w2m, usm) = (median(w2), median(us));
    println!(
        "\nmedian: wget2 {w2m:.2} s, understudy {usm:.2} s; understudy's speed {:.2}x wget2's (target >= 1.2x)",
        w2m / usm
    );
    drop(nginx);
}
