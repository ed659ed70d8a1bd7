//! `mode` and `[sites.proxy]`: a site whose standby fronts it (`crate::standby::proxy`).
//!
//! In proxy mode the site's records always point at the standby, which must be this daemon
//! (`[standby]`), and every request is passed to the primary's address; what the origin cannot
//! answer is answered from the copy. Every key is optional.

use super::*;

/// How a site is kept reachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SiteMode {
    /// The records follow the decision: the primary while it is healthy, else the standby.
    #[default]
    Dns,
    /// The records point at the standby for good; it proxies to the primary and answers from
    /// the copy what the primary cannot.
    Proxy,
}

impl SiteMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SiteMode::Dns => "dns",
            SiteMode::Proxy => "proxy",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// How long a connection to the origin may take before the request is answered from the copy.
    pub connect_timeout: Duration,
    /// How long the origin may take to start its answer (the status and headers).
    pub response_timeout: Duration,
    /// Origin answers to a GET or HEAD that are replaced by the copy's.
    pub fallback_status: Vec<u16>,
    /// The largest request body passed to the origin (bigger: 413).
    pub max_request_body: u64,
    /// Cacheable 200 answers to GETs passing through replace the copy's entry for that URL.
    pub refresh_from_traffic: bool,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(30),
            fallback_status: vec![502, 503, 504],
            max_request_body: 64 << 20,
            refresh_from_traffic: false,
        }
    }
}

impl Cx<'_> {
    pub(super) fn build_mode(
        &self,
        mode: &Option<Spanned<String>>,
        raw: Option<Spanned<RawProxy>>,
        key: &str,
        has_standby: bool,
    ) -> R<(SiteMode, Option<ProxyConfig>)> {
        let mode = match mode {
            None => SiteMode::Dns,
            Some(m) => match m.get_ref().as_str() {
                "dns" => SiteMode::Dns,
                "proxy" if !has_standby => {
                    return self.err(
                        m.span(),
                        &format!("{key}.mode"),
                        "proxy mode is served by this daemon's standby listeners: add a [standby] table (and point the site's `standby` at this machine)",
                    )
                }
                "proxy" => SiteMode::Proxy,
                other => {
                    return self.err(
                        m.span(),
                        &format!("{key}.mode"),
                        format!("`{other}` is not a mode: \"dns\" (the records follow the decision; the default) or \"proxy\" (the standby fronts the site)"),
                    )
                }
            },
        };
        let Some(raw) = raw else {
            return Ok((mode, (mode == SiteMode::Proxy).then(ProxyConfig::default)));
        };
        let key = format!("{key}.proxy");
        if mode != SiteMode::Proxy {
            return self.err(
                raw.span(),
                &key,
                "[sites.proxy] applies to a site with mode = \"proxy\"; add it, or remove this table",
            );
        }
        let raw = raw.into_inner();
        let d = ProxyConfig::default();
        let ms = Duration::from_millis(10);
        let connect_timeout = self.duration(
            &raw.connect_timeout,
            &format!("{key}.connect_timeout"),
            d.connect_timeout,
            ms,
        )?;
        let response_timeout = self.duration(
            &raw.response_timeout,
            &format!("{key}.response_timeout"),
            d.response_timeout,
            ms,
        )?;
        let fallback_status = match &raw.fallback_status {
            None => d.fallback_status,
            Some(list) => {
                let mut out = vec![];
                for (j, s) in list.iter().enumerate() {
                    match u16::try_from(*s.get_ref()) {
                        Ok(v @ 500..=599) => out.push(v),
                        _ => {
                            return self.err(
                                s.span(),
                                &format!("{key}.fallback_status[{j}]"),
                                format!("{} is not a 5xx status: only a server error is replaced by the copy (a 4xx is the origin's real answer)", s.get_ref()),
                            )
                        }
                    }
                }
                out
            }
        };
        let max_request_body = match &raw.max_request_body {
            None => d.max_request_body,
            Some(v) => match u64::try_from(*v.get_ref()) {
                Ok(n) if n > 0 => n,
                _ => {
                    return self.err(
                        v.span(),
                        &format!("{key}.max_request_body"),
                        "a size in bytes greater than 0",
                    )
                }
            },
        };
        Ok((
            mode,
            Some(ProxyConfig {
                connect_timeout,
                response_timeout,
                fallback_status,
                max_request_body,
                refresh_from_traffic: raw
                    .refresh_from_traffic
                    .map(|b| *b.get_ref())
                    .unwrap_or(false),
            }),
        ))
    }
}
