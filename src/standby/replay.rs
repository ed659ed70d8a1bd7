//! Replaying a recorded response: the manifest key of a request target, conditional requests,
//! byte ranges, content coding, the banner. No sockets: the request handler calls these.

use super::*;

/// The manifest key for a request target on a site's origin: the same normalisation as the
/// crawler's (`url` crate), or `None` for anything that is not an origin-form target.
///
/// Most targets are already in normal form ([`plain_target`]); their key is the origin and
/// the target side by side, without parsing a URL on every request. The property test
/// `plain_targets_get_the_key_the_url_parser_gives` holds the two ways to the same answer.
pub fn lookup_key(origin: &Url, target: &str) -> Option<String> {
    if !target.starts_with('/')
        || target.starts_with("//")
        || target.len() > MAX_TARGET
        || target.chars().any(|c| c.is_control() || c == '\\')
    {
        return None;
    }
    if plain_target(target) && origin.path() == "/" && origin.query().is_none() {
        let base = origin.as_str().strip_suffix('/')?;
        let mut key = String::with_capacity(base.len() + target.len());
        key.push_str(base);
        key.push_str(target);
        return Some(key);
    }
    parsed_key(origin, target)
}

/// A target the URL parser leaves as it is: a path of letters, digits and `-._~/` with no `.`
/// or `..` segment, and optionally a query of letters, digits and `-._~=&`. Nothing to
/// percent-encode, nothing to resolve, no fragment.
fn plain_target(target: &str) -> bool {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let path_ok = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b))
        && !path.split('/').any(|seg| seg == "." || seg == "..");
    path_ok
        && query.is_none_or(|q| {
            q.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~=&".contains(&b))
        })
}

/// [`lookup_key`] by the URL parser, for any target it accepts.
pub(super) fn parsed_key(origin: &Url, target: &str) -> Option<String> {
    let mut u = origin.join(target).ok()?;
    if u.origin() != origin.origin() {
        return None;
    }
    u.set_fragment(None);
    Some(u.to_string())
}

/// The answer to a POST, PUT, DELETE, ...: the copy cannot take it, so the visitor is told so in
/// words and asked to try again later (503 with Retry-After, as for maintenance), as a page for
/// a browser and as text for anything else. Nothing was received, and the answer says that.
pub(super) fn read_only(req: &HeaderMap) -> Response<Full<Bytes>> {
    const TEXT: &str = "This site is showing a read-only copy while its own server is away, so what you sent was not received. Please try again later.\n";
    const PAGE: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>Read-only copy: please try again later</title></head>\n<body style=\"font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222\">\n<h1 style=\"font-size:1.4em\">Please try again later</h1>\n<p>This site is showing a read-only copy while its own server is away, so what you sent was <strong>not received</strong>.</p>\n<p>Everything you can read here is as it was; forms and other changes will work again when the site is back, usually within minutes. Going back keeps what you typed in most browsers.</p>\n</body></html>\n";
    let html = req
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let (body, kind) = if html {
        (PAGE, "text/html; charset=utf-8")
    } else {
        (TEXT, "text/plain; charset=utf-8")
    };
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::RETRY_AFTER, HeaderValue::from_static("300"));
    h.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    r
}

pub(super) fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// What a request's preconditions say about the response it would get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Preconditions {
    /// Answer as usual; `range` says whether a `Range` header may be honoured (`If-Range`).
    Proceed { range: bool },
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

/// RFC 9110 §13.2.2, in its order, for GET and HEAD of a response whose validators are
/// `etag` (as it would be served: weak for a transformed body) and `last_modified`:
///
/// 1. `If-Match` (strong comparison; `*` matches) false → 412; without it,
/// 2. `If-Unmodified-Since` (a valid date) earlier than Last-Modified, or no Last-Modified → 412;
/// 3. `If-None-Match` (weak comparison) true → 304; without it,
/// 4. `If-Modified-Since` (a valid date) not earlier than Last-Modified → 304;
/// 5. `If-Range`: the range is honoured only if the validator still matches strongly (the
///    same strong tag, or exactly the Last-Modified date); otherwise the whole body, 200.
///
/// Pure; the table test and `tests/serve.rs` (side by side with nginx) check every step.
pub(super) fn preconditions(
    req: &HeaderMap,
    etag: Option<&str>,
    last_modified: Option<&str>,
) -> Preconditions {
    let get = |h: header::HeaderName| req.get(h).and_then(|v| v.to_str().ok()).map(str::trim);
    let date = |v: &str| httpdate::parse_http_date(v).ok();
    // Parsed only when a date header asks (most requests have none).
    let lm = || last_modified.and_then(date);
    if let Some(v) = get(header::IF_MATCH) {
        if !tag_listed(v, etag, true) {
            return Preconditions::Failed;
        }
    } else if let Some(d) = get(header::IF_UNMODIFIED_SINCE).and_then(date) {
        if lm().is_none_or(|lm| lm > d) {
            return Preconditions::Failed;
        }
    }
    if let Some(v) = get(header::IF_NONE_MATCH) {
        if tag_listed(v, etag, false) {
            return Preconditions::NotModified;
        }
    } else if let Some(d) = get(header::IF_MODIFIED_SINCE).and_then(date) {
        if lm().is_some_and(|lm| lm <= d) {
            return Preconditions::NotModified;
        }
    }
    let range = match get(header::IF_RANGE) {
        None => true,
        Some(v) if v.starts_with('"') || v.starts_with("W/") => {
            etag.is_some_and(|t| strong_eq(v, t))
        }
        Some(v) => matches!((date(v), lm()), (Some(d), Some(lm)) if d == lm),
    };
    Preconditions::Proceed { range }
}

/// Two entity tags are the same strongly: both strong and character for character.
fn strong_eq(a: &str, b: &str) -> bool {
    !a.starts_with("W/") && !b.starts_with("W/") && a == b
}

/// Whether the list (`"a", W/"b"` or `*`) names `etag`, strongly or weakly (W/ ignored).
fn tag_listed(list: &str, etag: Option<&str>, strong: bool) -> bool {
    list.split(',').map(str::trim).any(|t| {
        t == "*"
            || etag.is_some_and(|e| {
                if strong {
                    strong_eq(t, e)
                } else {
                    t.trim_start_matches("W/") == e.trim_start_matches("W/")
                }
            })
    })
}

/// A single `bytes=a-b`, `bytes=a-` or `bytes=-n` range within `len`; `Err` when unsatisfiable.
pub(super) fn byte_range(value: &str, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None; // several ranges: answer the whole body
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let r = match (a.is_empty(), b.is_empty()) {
        (true, false) => {
            let n: u64 = b.parse().ok()?;
            if n == 0 {
                return Some(Err(()));
            }
            (len.saturating_sub(n), len.checked_sub(1)?)
        }
        (false, _) => {
            let start: u64 = a.parse().ok()?;
            let end: u64 = if b.is_empty() {
                len.saturating_sub(1)
            } else {
                b.parse::<u64>().ok()?.min(len.saturating_sub(1))
            };
            if start >= len || end < start {
                return Some(Err(()));
            }
            (start, end)
        }
        _ => return None,
    };
    Some(Ok(r))
}

/// `br` if the client takes it, else `gzip`, else none (q=0 refuses a coding).
pub(super) fn preferred_encoding(accept: &str) -> Option<&'static str> {
    let takes = |coding: &str| {
        accept.split(',').any(|item| {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (name.eq_ignore_ascii_case(coding) || name == "*") && q > 0.0
        })
    };
    if takes("br") {
        Some("br")
    } else if takes("gzip") {
        Some("gzip")
    } else {
        None
    }
}

/// The page with a small fixed notice as the first thing in `<body>` (the rest untouched).
pub(super) fn inject_banner(body: &[u8], when: &str) -> Vec<u8> {
    let notice = format!(
        "<div role=\"status\" style=\"all:initial;display:block;padding:6px 10px;background:#fff3cd;color:#5c4400;font:14px/1.4 system-ui,sans-serif;text-align:center;border-bottom:1px solid #e0c97a\">This is a read-only copy of the site as of {when}. The site will be back shortly.</div>"
    );
    let mut out = Vec::with_capacity(body.len() + notice.len());
    let mut done = false;
    let mut rewriter = lol_html::HtmlRewriter::new(
        lol_html::Settings::new().append_element_content_handler(lol_html::element!(
            "body",
            |el| {
                if !done {
                    el.prepend(&notice, lol_html::html_content::ContentType::Html);
                    done = true;
                }
                Ok(())
            }
        )),
        |c: &[u8]| out.extend_from_slice(c),
    );
    if rewriter.write(body).is_err() || rewriter.end().is_err() {
        return body.to_vec();
    }
    if done {
        return out;
    }
    // No <body> tag in the source (it is optional in HTML): first thing after the doctype.
    let head = String::from_utf8_lossy(&body[..body.len().min(512)]).to_ascii_lowercase();
    let at = match head.trim_start().starts_with("<!doctype") {
        true => head.find('>').map(|i| i + 1).unwrap_or(0),
        false => 0,
    };
    let mut out = body[..at].to_vec();
    out.extend_from_slice(notice.as_bytes());
    out.extend_from_slice(&body[at..]);
    out
}

/// The recorded answer `e` with `body` (perhaps compressed as `encoding`, or `bannered`), as
/// the request's conditional and range headers make it.
#[allow(clippy::too_many_arguments)] // one call site; the arguments are the request and its answer
pub(super) fn replay(
    e: &Entry,
    body: Bytes,
    encoding: Option<&str>,
    bannered: bool,
    head: bool,
    req: &HeaderMap,
    m: &Served,
) -> Response<Full<Bytes>> {
    let mut headers = HeaderMap::with_capacity(16);
    // A recorded or computed value that is not a valid header value is left out.
    fn put(headers: &mut HeaderMap, name: header::HeaderName, v: Option<&str>) {
        if let Some(v) = v.and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(name, v);
        }
    }
    put(
        &mut headers,
        header::CONTENT_TYPE,
        e.content_type.as_deref(),
    );
    put(
        &mut headers,
        header::CONTENT_ENCODING,
        e.content_encoding.as_deref(),
    );
    put(&mut headers, header::LOCATION, e.location.as_deref());
    put(&mut headers, header::ETAG, e.etag.as_deref());
    put(
        &mut headers,
        header::LAST_MODIFIED,
        e.last_modified.as_deref(),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    if e.status == 200 && e.content_encoding.is_none() && compressible(e.content_type.as_deref()) {
        headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    put(&mut headers, header::CONTENT_ENCODING, encoding);
    if bannered {
        // Different bytes from the origin's page: validators of its own, or a browser that
        // revalidates what it cached from the origin would get a 304 and never see the banner.
        // The tag names the snapshot; Last-Modified is the snapshot's time.
        let inner = e
            .etag
            .as_deref()
            .map(|t| t.trim_start_matches("W/").trim_matches('"').to_string())
            .unwrap_or_default();
        let tag = format!("W/\"{inner}-copy-{}\"", m.id);
        put(&mut headers, header::ETAG, Some(&tag));
        // Strictly later than the origin's, in whole seconds as HTTP dates are, so that an
        // If-Modified-Since with the origin's date is "modified".
        let origin_lm = e
            .last_modified
            .as_deref()
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs() * 1_000 + 1_000);
        let lm = origin_lm.max(m.created_at.div_ceil(1_000) * 1_000);
        put(
            &mut headers,
            header::LAST_MODIFIED,
            Some(&crate::util::http_date(lm)),
        );
    } else if encoding.is_some() {
        // Another coding of the same bytes: its tag is the origin's, made weak (as nginx
        // does), so If-None-Match still matches under weak comparison.
        if let Some(tag) = e.etag.as_deref().filter(|t| !t.starts_with("W/")) {
            put(&mut headers, header::ETAG, Some(&format!("W/{tag}")));
        }
    }
    if let Some(v) = &m.snapshot_header {
        headers.insert(
            header::HeaderName::from_static("x-understudy-snapshot"),
            v.clone(),
        );
    }
    let cacheable = e.status == 200;
    if cacheable {
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        let served = |h: header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok());
        let honour_range =
            match preconditions(req, served(header::ETAG), served(header::LAST_MODIFIED)) {
                Preconditions::NotModified => {
                    headers.remove(header::CONTENT_TYPE);
                    return with(StatusCode::NOT_MODIFIED, headers, Bytes::new());
                }
                Preconditions::Failed => {
                    headers.remove(header::CONTENT_TYPE);
                    headers.remove(header::ACCEPT_RANGES);
                    return with(StatusCode::PRECONDITION_FAILED, headers, Bytes::new());
                }
                Preconditions::Proceed { range } => range,
            };
        if let Some(range) = req
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .filter(|_| honour_range)
        {
            match byte_range(range, body.len() as u64) {
                Some(Ok((a, b))) => {
                    headers.insert(
                        header::CONTENT_RANGE,
                        HeaderValue::from_str(&format!("bytes {a}-{b}/{}", body.len()))
                            .expect("ascii"),
                    );
                    let part = if head {
                        Bytes::new()
                    } else {
                        body.slice(a as usize..=b as usize)
                    };
                    return with(StatusCode::PARTIAL_CONTENT, headers, part);
                }
                Some(Err(())) => {
                    headers.insert(
                        header::CONTENT_RANGE,
                        HeaderValue::from_str(&format!("bytes */{}", body.len())).expect("ascii"),
                    );
                    return with(StatusCode::RANGE_NOT_SATISFIABLE, headers, Bytes::new());
                }
                None => {}
            }
        }
    }
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::OK);
    let len = body.len();
    let mut r = with(status, headers, if head { Bytes::new() } else { body });
    if head {
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    r
}

pub(super) fn with(status: StatusCode, headers: HeaderMap, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    *r.headers_mut() = headers;
    r
}
