//! The copy's answer to one request: the site by Host, the URL looked up in the published
//! manifest (with the fallbacks of [`super::fallback`]), the body from the content store (or
//! its cached, compressed or bannered form), replayed as the origin sent it. Split from
//! `mod.rs`, which holds the per-site state and readiness.

use super::*;

impl Standby {
    /// The answer to one request; `host` is the name it asked for, without a port.
    pub fn respond(
        &self,
        method: &Method,
        host: Option<&str>,
        target: &str,
        headers: &HeaderMap,
    ) -> Response<Full<Bytes>> {
        if method != Method::GET && method != Method::HEAD {
            return read_only(headers);
        }
        let Some(site) = host.and_then(|h| self.site_by_host(h)) else {
            return plain(StatusCode::NOT_FOUND, "no such site here\n");
        };
        if target == READY_PATH {
            let r = self.readiness(&site.name, crate::util::now_millis());
            let (status, body) = match &r {
                Some(r) if r.ready => (StatusCode::OK, serde_json::to_vec_pretty(r)),
                r => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    serde_json::to_vec_pretty(r),
                ),
            };
            let mut resp = Response::new(Full::new(Bytes::from(body.unwrap_or_default())));
            *resp.status_mut() = status;
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            return resp;
        }
        let Some(key) = lookup_key(&site.origin, target) else {
            return plain(StatusCode::BAD_REQUEST, "bad request target\n");
        };
        match self.copy_answer(site, method, key, headers) {
            Ok((r, _)) => r,
            Err(NotInCopy::NoSnapshot) => plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "no copy of this site yet\n",
            ),
            Err(NotInCopy::NoEntry) => plain(StatusCode::NOT_FOUND, "not in the standby copy\n"),
        }
    }

    /// The site serving `host` here, by name (for the proxy, which fronts some of them).
    pub fn site_of(&self, host: &str) -> Option<&str> {
        self.site_by_host(host).map(|s| s.name.as_str())
    }

    /// The site serving `host` (any case, a trailing dot or not; no port).
    fn site_by_host(&self, host: &str) -> Option<&Arc<SiteCopy>> {
        let host = host.trim_end_matches('.');
        if host.bytes().any(|b| b.is_ascii_uppercase()) {
            self.by_host.get(&host.to_ascii_lowercase())
        } else {
            self.by_host.get(host)
        }
    }

    /// A GET or HEAD of `target` on site `name` answered from its copy, with `Age` (the copy's
    /// age) and `X-Understudy-Served-From: snapshot`; `None` when the copy cannot answer it
    /// (no snapshot, no such URL, or a target that is not one), so the caller can pass the
    /// origin's own answer on instead.
    pub fn answer_from_copy(
        &self,
        name: &str,
        method: &Method,
        target: &str,
        headers: &HeaderMap,
    ) -> Option<Response<Full<Bytes>>> {
        let site = self.sites.iter().find(|s| s.name == name)?;
        let key = lookup_key(&site.origin, target)?;
        let (mut r, as_of) = self.copy_answer(site, method, key, headers).ok()?;
        let age = crate::util::now_millis().saturating_sub(as_of) / 1000;
        let h = r.headers_mut();
        h.insert(header::AGE, HeaderValue::from(age));
        h.insert(
            header::HeaderName::from_static("x-understudy-served-from"),
            HeaderValue::from_static("snapshot"),
        );
        Some(r)
    }

    /// Keeps an answer that passed through the proxy to a GET of `target` on site `name` as
    /// the copy's entry for that URL until the next snapshot (`fed.rs`).
    pub fn feed(&self, name: &str, target: &str, entry: Entry, body: Bytes) {
        let Some(site) = self.sites.iter().find(|s| s.name == name) else {
            return;
        };
        let (Some(key), Some(m)) = (
            lookup_key(&site.origin, target),
            site.current.read().ok().and_then(|c| c.clone()),
        ) else {
            return;
        };
        tracing::debug!(site = %name, url = %key, bytes = body.len(), "the copy's entry refreshed by traffic");
        site.fed
            .put(&m.id, key, entry, body, crate::util::now_millis());
    }

    /// The copy's answer to `key` on `site`, and as of when (ms since the epoch).
    fn copy_answer(
        &self,
        site: &SiteCopy,
        method: &Method,
        key: String,
        headers: &HeaderMap,
    ) -> Result<(Response<Full<Bytes>>, Millis), NotInCopy> {
        let Some(m) = site.current.read().ok().and_then(|c| c.clone()) else {
            return Err(NotInCopy::NoSnapshot);
        };
        // An answer fed by traffic since the snapshot is newer than the snapshot's.
        let fed = site.fed.get(&m.id, &key);
        let mut as_of = m.created_at;
        let mut preloaded = None;
        let (key, entry, answered_by) = match &fed {
            Some((e, body, at)) => {
                as_of = *at;
                preloaded = Some(body.clone());
                (key, e, None)
            }
            None => match fallback::find(&m.entries, &key, &self.tracking) {
                fallback::Found::Exact(e) => (key, e, None),
                fallback::Found::Instead { key, entry, why } => {
                    let by = format!("{} ({why})", &key[site.origin.as_str().len() - 1..]);
                    (key, entry, Some(by))
                }
                fallback::Found::AddSlash(to) => {
                    let mut r = plain(StatusCode::MOVED_PERMANENTLY, "moved\n");
                    if let Ok(v) = HeaderValue::from_str(&to) {
                        r.headers_mut().insert(header::LOCATION, v);
                    }
                    if let Ok(v) = HeaderValue::from_str(&format!("{to} (trailing slash)")) {
                        r.headers_mut().insert(
                            header::HeaderName::from_static("x-understudy-answered-by"),
                            v,
                        );
                    }
                    r.headers_mut().insert(
                        header::CACHE_CONTROL,
                        HeaderValue::from_static("public, max-age=60"),
                    );
                    return Ok((r, as_of));
                }
                fallback::Found::Nothing => return Err(NotInCopy::NoEntry),
            },
        };
        let mut body = match (preloaded, &entry.body) {
            (Some(b), _) => b,
            // Large bodies keep their file open, to be sent from it (`http::zerocopy`).
            (None, Some(h)) => match self.cache.get_or_load(h, || {
                let (data, file) = site.store.bodies().get_with_file(h)?;
                Ok(crate::http::zerocopy::file_backed(data, file))
            }) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, url = %key, "snapshot body unreadable");
                    return Ok((
                        plain(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "the standby copy is damaged\n",
                        ),
                        as_of,
                    ));
                }
            },
            (None, None) => Bytes::new(),
        };
        // The optional notice at the top of HTML pages (cached per body and snapshot time).
        let mut variant = None;
        let mut bannered = false;
        if self.banner
            && entry.status == 200
            && entry.content_encoding.is_none()
            && is_html(entry.content_type.as_deref())
        {
            if let Some(h) = &entry.body {
                let banner = format!("{h}.banner{}", m.created_at);
                if let Ok(b) = self.cache.get_or_load(&banner, || {
                    Ok(Bytes::from(inject_banner(
                        &body,
                        &crate::util::utc_minutes(m.created_at),
                    )))
                }) {
                    body = b;
                    bannered = true;
                }
                variant = Some(banner);
            }
        }
        // Compressed for clients that take it, once per body (cached beside it), when it helps.
        let wanted = (entry.status == 200
            && entry.content_encoding.is_none()
            && compressible(entry.content_type.as_deref())
            && body.len() >= 512
            && !headers.contains_key(header::RANGE))
        .then(|| {
            preferred_encoding(
                headers
                    .get(header::ACCEPT_ENCODING)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or(""),
            )
        })
        .flatten();
        let (body, encoding) = match (wanted, &entry.body) {
            // Stored at publish time beside the body (not for the bannered variant).
            (Some(enc), Some(h)) => {
                let variant = variant.as_deref().unwrap_or(h);
                match self.cache.get_or_load(&format!("{variant}.{enc}"), || {
                    Ok(Bytes::from(
                        if bannered {
                            None
                        } else {
                            site.store.bodies().encoded(h, enc)
                        }
                        .unwrap_or_else(|| compress(enc, &body)),
                    ))
                }) {
                    Ok(c) if c.len() < body.len() => (c, Some(enc)),
                    _ => (body, None),
                }
            }
            _ => (body, None),
        };
        let mut r = replay(
            entry,
            body,
            encoding,
            bannered,
            method == Method::HEAD,
            headers,
            &m,
        );
        if let Some(v) = answered_by.and_then(|v| HeaderValue::from_str(&v).ok()) {
            r.headers_mut().insert(
                header::HeaderName::from_static("x-understudy-answered-by"),
                v,
            );
        }
        Ok((r, as_of))
    }
}

/// Why the copy has no answer.
enum NotInCopy {
    NoSnapshot,
    NoEntry,
}
