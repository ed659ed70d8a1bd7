//! One URL: fetching it (conditional requests, retries with backoff, decompression within the
//! size limit) or reusing the stored copy, and turning the answer into a snapshot entry and the
//! references found in it.

use super::*;

/// The raw answer to one request.
pub(super) struct Raw {
    status: u16,
    version: reqwest::Version,
    headers: HeaderMap,
    body: Vec<u8>,
}

pub(super) enum AttemptError {
    Transient(String),
    Final(String),
    Limited(Skip),
}

/// A page fresh by the sitemap, answered from the stored copy without a request.
pub(super) async fn reuse(ctx: Arc<Ctx>, job: Job, entry: Entry) -> Done {
    let url = job.url.clone();
    let bodies = ctx.bodies.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let found = stored_refs(&entry, &url, &bodies);
        Outcome::Answer {
            entry,
            found,
            redirect: None,
            not_modified: true,
            robots: None,
            sitemap: None,
        }
    })
    .await
    .unwrap_or_else(|e| Outcome::Failed {
        reason: format!("internal: {e}"),
        carried: None,
    });
    Done {
        url: job.url,
        depth: job.depth,
        redirects: job.redirects,
        check: false,
        reused: true,
        changed: false,
        wire: 0,
        outcome,
    }
}

pub(super) async fn fetch(ctx: Arc<Ctx>, job: Job) -> Done {
    let prev = ctx
        .prev
        .as_ref()
        .and_then(|m| m.entries.get(job.url.as_str()))
        .cloned();
    let mut wire = 0;
    let mut attempt = 0;
    let slots = ctx.slots(&job.url);
    let permit = slots.acquire().await;
    let result = loop {
        match attempt_once(&ctx, &job.url, prev.as_ref()).await {
            Ok(raw) if matches!(raw.status, 429 | 502 | 503 | 504) && attempt < ctx.retries => {
                wire += raw.body.len() as u64;
                let wait = crate::http::retry_after(&raw.headers)
                    .unwrap_or(backoff(attempt))
                    .min(Duration::from_secs(5));
                tokio::time::sleep(wait).await;
            }
            Ok(raw) => {
                wire += raw.body.len() as u64;
                if raw.version == reqwest::Version::HTTP_2 {
                    ctx.widen(&job.url);
                }
                break Ok(raw);
            }
            Err(AttemptError::Transient(e)) if attempt < ctx.retries => {
                tracing::debug!(url = %job.url, error = %e, "retrying");
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err(e) => break Err(e),
        }
        attempt += 1;
    };
    drop(permit);
    let url = job.url.clone();
    let bodies = ctx.bodies.clone();
    let max = ctx.max_response;
    let prev_body = prev.as_ref().and_then(|p| p.body.clone());
    // Decoding, hashing, storing and parsing are CPU and disk work: off the I/O threads.
    let outcome = tokio::task::spawn_blocking(move || match result {
        Ok(raw) => interpret(&url, raw, prev, &bodies, max),
        Err(AttemptError::Limited(s)) => Outcome::Limited(s),
        Err(AttemptError::Transient(reason) | AttemptError::Final(reason)) => {
            failed(&url, reason, prev, &bodies)
        }
    })
    .await
    .unwrap_or_else(|e| Outcome::Failed {
        reason: format!("internal: {e}"),
        carried: None,
    });
    let changed = matches!(&outcome, Outcome::Answer { entry, not_modified: false, .. } if entry.body != prev_body);
    Done {
        url: job.url,
        depth: job.depth,
        redirects: job.redirects,
        check: job.check,
        reused: false,
        changed,
        wire,
        outcome,
    }
}

pub(super) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200 << attempt.min(4))
}

pub(super) async fn attempt_once(
    ctx: &Ctx,
    url: &Url,
    prev: Option<&Entry>,
) -> Result<Raw, AttemptError> {
    let mut target = url.clone();
    let mut req_headers = HeaderMap::new();
    if let Some(&port) = url.host_str().and_then(|h| ctx.ports.get(h)) {
        if url.port_or_known_default() != Some(port) {
            // NAT: the public port differs from the primary's. Connect to the primary's port
            // and send the public authority as Host.
            let host = match url.port() {
                Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
                None => url.host_str().unwrap_or_default().to_string(),
            };
            if let Ok(v) = HeaderValue::from_str(&host) {
                req_headers.insert(reqwest::header::HOST, v);
            }
            let _ = target.set_port(Some(port));
        }
    }
    req_headers.insert(
        reqwest::header::ACCEPT_ENCODING,
        HeaderValue::from_static("gzip, br, zstd"),
    );
    if let Some(p) = prev.filter(|p| p.body.is_some() && p.status == 200) {
        if let Some(v) = p
            .etag
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            req_headers.insert(reqwest::header::IF_NONE_MATCH, v);
        }
        if let Some(v) = p
            .last_modified
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            req_headers.insert(reqwest::header::IF_MODIFIED_SINCE, v);
        }
    }
    ctx.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut resp = ctx
        .client
        .get(target)
        .headers(req_headers)
        .send()
        .await
        .map_err(|e| AttemptError::Transient(transport_reason(&e)))?;
    let status = resp.status().as_u16();
    if resp.content_length().is_some_and(|n| n > ctx.max_response) {
        return Err(AttemptError::Limited(Skip::ResponseSize));
    }
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() as u64 + chunk.len() as u64 > ctx.max_response {
                    return Err(AttemptError::Limited(Skip::ResponseSize));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                return Err(AttemptError::Transient(format!(
                    "reading the body: {}",
                    transport_reason(&e)
                )))
            }
        }
    }
    if status < 200 && status != 101 {
        return Err(AttemptError::Final(format!("unexpected status {status}")));
    }
    Ok(Raw {
        status,
        version: resp.version(),
        headers: resp.headers().clone(),
        body,
    })
}

/// What went wrong on the wire, in the words of the innermost cause ("tcp connect error:
/// Connection refused (os error 111)"), or "no answer in time".
pub(super) fn transport_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "no answer in time".to_string();
    }
    let mut last = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        last = s.to_string();
        src = s.source();
    }
    last
}

pub(super) fn header(h: &HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Decodes a body by its Content-Encoding, at most `max` bytes. `Ok(None)` for an encoding we
/// do not know (the body is then stored as sent).
pub(super) fn decode(
    encoding: &str,
    raw: &[u8],
    max: u64,
) -> Result<Option<Vec<u8>>, AttemptError> {
    let reader: Box<dyn Read + '_> = match encoding.to_ascii_lowercase().as_str() {
        "" | "identity" => return Ok(Some(raw.to_vec())),
        "gzip" | "x-gzip" => Box::new(flate2::read::MultiGzDecoder::new(raw)),
        "deflate" if raw.first().is_some_and(|b| b & 0x0f == 8) => {
            Box::new(flate2::read::ZlibDecoder::new(raw))
        }
        "deflate" => Box::new(flate2::read::DeflateDecoder::new(raw)),
        "br" => Box::new(brotli::Decompressor::new(raw, 4096)),
        "zstd" => Box::new(
            zstd::stream::read::Decoder::with_buffer(raw)
                .map_err(|e| AttemptError::Final(format!("zstd: {e}")))?,
        ),
        _ => return Ok(None),
    };
    let mut out = Vec::new();
    reader
        .take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| AttemptError::Final(format!("the {encoding} body does not decode: {e}")))?;
    if out.len() as u64 > max {
        return Err(AttemptError::Limited(Skip::DecompressionBomb));
    }
    Ok(Some(out))
}

pub(super) fn interpret(
    url: &Url,
    raw: Raw,
    prev: Option<Entry>,
    bodies: &Bodies,
    max: u64,
) -> Outcome {
    let h = &raw.headers;
    if raw.status == 304 {
        let Some(mut e) = prev.filter(|p| p.body.is_some()) else {
            return Outcome::Failed {
                reason: "304 Not Modified to a request without validators".into(),
                carried: None,
            };
        };
        // A 304 may carry fresher validators.
        e.etag = header(h, reqwest::header::ETAG).or(e.etag);
        e.last_modified = header(h, reqwest::header::LAST_MODIFIED).or(e.last_modified);
        let found = stored_refs(&e, url, bodies);
        let sitemap = stored_sitemap(&e, url, bodies);
        return Outcome::Answer {
            entry: e,
            found,
            redirect: None,
            not_modified: true,
            robots: None,
            sitemap,
        };
    }
    if raw.status >= 500 || raw.status == 429 {
        return failed(
            url,
            format!("the origin answered {}", raw.status),
            prev,
            bodies,
        );
    }
    let encoding = header(h, reqwest::header::CONTENT_ENCODING).unwrap_or_default();
    let (body, kept_encoding) = match decode(&encoding, &raw.body, max) {
        Ok(Some(b)) => (b, None),
        Ok(None) => (raw.body, Some(encoding)),
        Err(AttemptError::Limited(s)) => return Outcome::Limited(s),
        Err(AttemptError::Final(r) | AttemptError::Transient(r)) => {
            return failed(url, r, prev, bodies)
        }
    };
    let content_type = header(h, reqwest::header::CONTENT_TYPE);
    let location = header(h, reqwest::header::LOCATION);
    let is_redirect = (300..400).contains(&raw.status);
    // Redirect bodies are boilerplate; everything else (pages, real 404s) is kept as sent.
    let hash = if is_redirect || body.is_empty() {
        None
    } else {
        match bodies.put(&body) {
            Ok(h) => Some(h),
            Err(e) => return Outcome::Fatal(e),
        }
    };
    let entry = Entry {
        status: raw.status,
        content_type: content_type.clone(),
        content_encoding: kept_encoding.clone(),
        location: location.clone().filter(|_| is_redirect),
        etag: header(h, reqwest::header::ETAG),
        last_modified: header(h, reqwest::header::LAST_MODIFIED),
        body: hash,
        length: if is_redirect { 0 } else { body.len() as u64 },
    };
    let redirect = location
        .filter(|_| is_redirect)
        .and_then(|l| resolve(url, &l));
    let mut found = extract::Discovered::default();
    let mut robots = None;
    let mut sitemap = None;
    if raw.status == 200 && kept_encoding.is_none() {
        let kind = Kind::of(content_type.as_deref(), url, &body);
        if url.path() == "/robots.txt" {
            robots = Some(Robots::parse(&String::from_utf8_lossy(&body)));
        } else if kind == Kind::Sitemap {
            sitemap = Some(extract::sitemap_entries(&body, url));
        } else {
            found = extract::discover(kind, &body, url);
        }
    }
    Outcome::Answer {
        entry,
        found,
        redirect,
        not_modified: false,
        robots,
        sitemap,
    }
}

/// The links (and guesses) of the last good snapshot's copy of a page.
pub(super) fn stored_refs(e: &Entry, url: &Url, bodies: &Bodies) -> extract::Discovered {
    let Some(body) = bodies.document(e, url).ok().flatten() else {
        return extract::Discovered::default();
    };
    match Kind::of(e.content_type.as_deref(), url, &body) {
        Kind::Sitemap => extract::Discovered::default(),
        kind => extract::discover(kind, &body, url),
    }
}

/// The sitemap entries of a stored copy, when it is a sitemap.
pub(super) fn stored_sitemap(
    e: &Entry,
    url: &Url,
    bodies: &Bodies,
) -> Option<extract::SitemapEntries> {
    let body = bodies.document(e, url).ok().flatten()?;
    (Kind::of(e.content_type.as_deref(), url, &body) == Kind::Sitemap)
        .then(|| extract::sitemap_entries(&body, url))
}

/// The `<lastmod>` of every page in the last good snapshot's sitemaps.
pub(super) fn previous_lastmods(
    prev: Option<&Manifest>,
    bodies: &Bodies,
) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (key, e) in prev.iter().flat_map(|m| m.entries.iter()) {
        // Only XML bodies can be sitemaps: nothing else is read from disk.
        if !matches!(
            extract::media_type(e.content_type.as_deref()).as_str(),
            "application/xml" | "text/xml"
        ) {
            continue;
        }
        let Ok(url) = Url::parse(key) else { continue };
        if let Some(sm) = stored_sitemap(e, &url, bodies) {
            for (u, lastmod) in sm.pages {
                if let Some(l) = lastmod {
                    out.insert(u.to_string(), l);
                }
            }
        }
    }
    out
}

/// Whether a page fresh by the sitemap is revalidated anyway: about 1 in 40, chosen by the
/// URL's hash so the sample is spread over the site and differs between sites.
pub(super) fn in_sample(url: &str) -> bool {
    ring::digest::digest(&ring::digest::SHA256, url.as_bytes()).as_ref()[0] < 7
}

pub(super) fn failed(url: &Url, reason: String, prev: Option<Entry>, bodies: &Bodies) -> Outcome {
    let carried = prev.map(|e| {
        let found = stored_refs(&e, url, bodies);
        (e, found)
    });
    Outcome::Failed { reason, carried }
}
