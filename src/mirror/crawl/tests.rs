//! The crawler's unit tests: pinning, decoding, interpreting answers.

use super::*;
use std::io::Write;

/// Every crawl request goes to a pinned address (issue 13: a start URL on another host was
/// looked up through the system resolver). A pinned name reaches its pin, an extra host
/// without `resolve` reaches the primary, and any other name is refused without a lookup.
#[test]
fn requests_go_only_to_pinned_addresses() {
    let primary = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = primary.local_addr().unwrap().port();
    let cfg = crate::config::parse(
        std::path::Path::new("t.toml"),
        &format!(
            "[[dns.zones]]\nname = \"example.test\"\n[[sites]]\ndomain = \"www.example.test\"\nprimary = \"127.0.0.1:{port}\"\nstandby = \"192.0.2.2\"\n[sites.probe]\nscheme = \"http\"\n[sites.mirror]\nextra_hosts = [\"http://cdn.example.test:{port}\"]\n"
        ),
    )
    .unwrap();
    let spec = Spec::for_site(&cfg.sites[0], "127.0.0.1".parse().unwrap()).unwrap();
    assert!(
        spec.pins
            .iter()
            .any(|(h, a)| h == "cdn.example.test" && a.to_string() == format!("127.0.0.1:{port}")),
        "{:?}",
        spec.pins
    );
    let client = build_client(&spec).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    primary.set_nonblocking(true).unwrap();
    for host in ["www.example.test", "cdn.example.test"] {
        let url = format!("http://{host}:{port}/");
        // Nothing answers; the point is where the connection went.
        let _ = rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(500), client.get(&url).send()).await
        });
        assert!(primary.accept().is_ok(), "{host} did not reach its pin");
    }
    let e = rt
        .block_on(async { client.get("http://localhost:9/").send().await })
        .unwrap_err();
    let chain = format!("{e:?}");
    assert!(chain.contains("is not one of the pinned hosts"), "{chain}");
}

#[test]
fn decoding_is_capped() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 1 << 20]).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 4096);
    assert!(matches!(
        decode("gzip", &bomb, 1 << 16),
        Err(AttemptError::Limited(Skip::DecompressionBomb))
    ));
    assert_eq!(
        decode("gzip", &bomb, 1 << 20)
            .ok()
            .flatten()
            .map(|b| b.len()),
        Some(1 << 20)
    );
    let br = {
        let mut out = Vec::new();
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
        w.write_all(&vec![b'a'; 1 << 20]).unwrap();
        drop(w);
        out
    };
    assert!(matches!(
        decode("br", &br, 1000),
        Err(AttemptError::Limited(Skip::DecompressionBomb))
    ));
    let zs = zstd::stream::encode_all(&vec![b'z'; 100_000][..], 3).unwrap();
    assert_eq!(
        decode("zstd", &zs, 1 << 20).ok().flatten().map(|b| b.len()),
        Some(100_000)
    );
    assert!(matches!(
        decode("zstd", &zs, 1000),
        Err(AttemptError::Limited(Skip::DecompressionBomb))
    ));
    assert!(matches!(
        decode("gzip", b"not gzip at all", 1000),
        Err(AttemptError::Final(_))
    ));
    assert!(
        matches!(decode("compress", b"xx", 1000), Ok(None)),
        "unknown: kept as sent"
    );
    assert_eq!(
        decode("identity", b"plain", 1000).ok().flatten().as_deref(),
        Some(&b"plain"[..])
    );
}
