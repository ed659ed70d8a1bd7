//! Replaying a recorded response: the manifest key of a request target, conditional requests,
//! byte ranges, content coding, the banner. No sockets: the request handler calls these.

use super::*;

/// The manifest key for a request target on a site's origin: the same normalisation as the
/// crawler's (`url` crate), or `None` for anything that is not an origin-form target.
pub fn lookup_key(origin: &Url, target: &str) -> Option<String> {
    if !target.starts_with('/')
        || target.starts_with("//")
        || target.len() > MAX_TARGET
        || target.chars().any(|c| c.is_control() || c == '\\')
    {
        return None;
    }
    let mut u = origin.join(target).ok()?;
    if u.origin() != origin.origin() {
        return None;
    }
    u.set_fragment(None);
    Some(u.to_string())
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

/// `If-None-Match` matches when any listed tag equals the entity tag, weakly (W/ ignored).
pub(super) fn none_match(header_value: &str, etag: &str) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_string();
    header_value
        .split(',')
        .any(|t| t.trim() == "*" || strip(t) == strip(etag))
}

pub(super) fn not_modified_since(header_value: &str, last_modified: &str) -> bool {
    match (
        httpdate::parse_http_date(header_value.trim()),
        httpdate::parse_http_date(last_modified),
    ) {
        (Ok(since), Ok(lm)) => lm <= since,
        _ => false,
    }
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

#[allow(clippy::too_many_arguments)] // one call site; the arguments are the request and its answer
pub(super) fn replay(
    e: &Entry,
    body: Bytes,
    encoding: Option<&str>,
    bannered: bool,
    head: bool,
    req: &HeaderMap,
    m: &Manifest,
) -> Response<Full<Bytes>> {
    let mut headers = HeaderMap::new();
    let mut put = |name: header::HeaderName, v: Option<&str>| {
        if let Some(v) = v.and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(name, v);
        }
    };
    put(header::CONTENT_TYPE, e.content_type.as_deref());
    put(header::CONTENT_ENCODING, e.content_encoding.as_deref());
    put(header::LOCATION, e.location.as_deref());
    put(header::ETAG, e.etag.as_deref());
    put(header::LAST_MODIFIED, e.last_modified.as_deref());
    put(header::CACHE_CONTROL, Some("public, max-age=60"));
    if e.status == 200 && e.content_encoding.is_none() && compressible(e.content_type.as_deref()) {
        put(header::VARY, Some("Accept-Encoding"));
    }
    if let Some(enc) = encoding {
        put(header::CONTENT_ENCODING, Some(enc));
    }
    if encoding.is_some() || bannered {
        // Another representation of the same resource: its tag is the origin's, made weak (as
        // nginx does), so If-None-Match still matches under weak comparison.
        if let Some(tag) = e.etag.as_deref().filter(|t| !t.starts_with("W/")) {
            put(header::ETAG, Some(&format!("W/{tag}")));
        }
    }
    let when = crate::util::http_date(m.created_at);
    put(
        header::HeaderName::from_static("x-understudy-snapshot"),
        Some(&format!("standby copy {} of {when}", m.id)),
    );
    let cacheable = e.status == 200;
    if cacheable {
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        let inm = req.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok());
        let ims = req
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok());
        let fresh = match (inm, e.etag.as_deref()) {
            (Some(v), Some(tag)) => none_match(v, tag),
            (Some(_), None) => false,
            // If-Modified-Since counts only without If-None-Match (RFC 9110 13.1.3).
            (None, _) => {
                matches!((ims, e.last_modified.as_deref()), (Some(v), Some(lm)) if not_modified_since(v, lm))
            }
        };
        if fresh {
            headers.remove(header::CONTENT_TYPE);
            return with(StatusCode::NOT_MODIFIED, headers, Bytes::new());
        }
        if let Some(range) = req.get(header::RANGE).and_then(|v| v.to_str().ok()) {
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
