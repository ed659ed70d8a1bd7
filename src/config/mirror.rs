//! The `[sites.mirror]` table: how a site's standby copy is crawled, limited, checked and
//! scheduled. Every key is optional: by default the daemon crawls each site daily at 03:00 UTC
//! (and at once when it has no snapshot yet), and `understudy mirror SITE` crawls on demand.
//! `scheduled = false` leaves only the on-demand crawls.

use std::net::IpAddr;
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use url::Url;

use super::{Cx, DurationValue, Scheme, R};

#[derive(Debug, Clone)]
pub struct MirrorConfig {
    /// Where crawling starts, absolute; the first is the entry page that must answer 200.
    pub start: Vec<Url>,
    /// More origins in scope besides the site's names (e.g. a CDN for assets).
    pub extra_origins: Vec<Url>,
    /// Fixed addresses for extra origins' hosts (the site's own names always go to the
    /// primary's address).
    pub resolve: Vec<(String, IpAddr)>,
    /// Requests in flight per origin.
    pub concurrency: usize,
    /// Per request, body included.
    pub timeout: Duration,
    /// Extra attempts for transient failures (connection errors, 429, 502-504).
    pub retries: u32,
    /// Honour robots.txt (off by default: it is the user's own site).
    pub robots: bool,
    pub schedule: Option<Schedule>,
    pub limits: Limits,
    pub checks: Checks,
}

/// The limits that keep a crawl finite. Every one is on by default and reported when hit.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// URLs fetched per crawl.
    pub max_pages: usize,
    /// Bytes downloaded per crawl (as they came over the wire).
    pub max_bytes: u64,
    /// Wall time per crawl.
    pub max_time: Duration,
    /// Links followed from a start URL.
    pub max_depth: u32,
    pub max_url_length: usize,
    /// Distinct query strings per path (`/cal?month=1`, `/cal?month=2`, ...).
    pub max_query_variants: usize,
    /// How often one path segment may occur in a path (`next/next/next` has 3).
    pub max_segment_repeats: usize,
    /// Body size, both as sent and after decompression (a decompression bomb stops here).
    pub max_response_bytes: u64,
    /// Redirects followed in a row.
    pub max_redirects: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pages: 100_000,
            max_bytes: 10 << 30,
            max_time: Duration::from_secs(2 * 3600),
            max_depth: 50,
            max_url_length: 2048,
            max_query_variants: 100,
            max_segment_repeats: 2,
            max_response_bytes: 64 << 20,
            max_redirects: 10,
        }
    }
}

/// What a new snapshot must satisfy to replace the last good one.
#[derive(Clone, Copy, Debug)]
pub struct Checks {
    /// Pages and bytes may not fall below this fraction of the last good snapshot (0.5 = 50%).
    pub min_fraction: f64,
    /// The share of fetched URLs that may fail (timeouts, 5xx) before the crawl is rejected.
    pub max_error_fraction: f64,
    /// How many good snapshots to keep.
    pub keep: usize,
}

impl Default for Checks {
    fn default() -> Self {
        Checks {
            min_fraction: 0.5,
            max_error_fraction: 0.1,
            keep: 3,
        }
    }
}

/// When the daemon crawls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    Every(Duration),
    /// Once a day at this minute of the day, UTC offset applied (`daily = "03:30+01:00"`).
    Daily {
        minute_utc: u32,
    },
}

impl Schedule {
    /// Milliseconds from `now_ms` (Unix) to the next crawl; `last` is when the last one
    /// started and whether it published. One that did not (rejected, failed, interrupted by a
    /// restart) is retried within the hour rather than a whole period later.
    pub fn next_in(&self, now_ms: u64, last: Option<(u64, bool)>) -> u64 {
        let on_schedule = self.scheduled_in(now_ms, last.map(|(at, _)| at));
        match last {
            Some((at, false)) => on_schedule.min((at + 3_600_000).saturating_sub(now_ms)),
            _ => on_schedule,
        }
    }

    fn scheduled_in(&self, now_ms: u64, last_ms: Option<u64>) -> u64 {
        match *self {
            Schedule::Every(d) => {
                let d = d.as_millis() as u64;
                last_ms.map(|l| (l + d).saturating_sub(now_ms)).unwrap_or(0)
            }
            Schedule::Daily { minute_utc } => {
                let day = 86_400_000;
                // Never crawled, or a crawl missed while the daemon was down: now.
                if last_ms.is_none_or(|l| now_ms.saturating_sub(l) > day + 3_600_000) {
                    return 0;
                }
                let today = now_ms - now_ms % day + minute_utc as u64 * 60_000;
                let next = if today > now_ms { today } else { today + day };
                next - now_ms
            }
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMirror {
    start: Option<Vec<Spanned<String>>>,
    extra_hosts: Option<Vec<Spanned<String>>>,
    resolve: Option<Spanned<toml::value::Table>>,
    concurrency: Option<Spanned<i64>>,
    timeout: Option<Spanned<DurationValue>>,
    retries: Option<Spanned<i64>>,
    robots: Option<Spanned<bool>>,
    every: Option<Spanned<DurationValue>>,
    daily: Option<Spanned<String>>,
    scheduled: Option<Spanned<bool>>,
    max_pages: Option<Spanned<i64>>,
    max_bytes: Option<Spanned<SizeValue>>,
    max_time: Option<Spanned<DurationValue>>,
    max_depth: Option<Spanned<i64>>,
    max_url_length: Option<Spanned<i64>>,
    max_query_variants: Option<Spanned<i64>>,
    max_segment_repeats: Option<Spanned<i64>>,
    max_response_bytes: Option<Spanned<SizeValue>>,
    max_redirects: Option<Spanned<i64>>,
    min_fraction: Option<Spanned<f64>>,
    max_error_fraction: Option<Spanned<f64>>,
    keep: Option<Spanned<i64>>,
}

/// A size as a number of bytes or text like "64MiB", "10GB".
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum SizeValue {
    Int(i64),
    Text(String),
}

fn parse_size(t: &str) -> Result<u64, String> {
    let t = t.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| {
        format!("`{t}` is not a size: expected bytes or text like \"64MiB\" or \"10GB\"")
    })?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        u => {
            return Err(format!(
                "`{u}` is not a size unit: expected B, KB, KiB, MB, MiB, GB, GiB, TB or TiB"
            ))
        }
    };
    Ok((n * mult as f64) as u64)
}

/// "HH:MM" with an optional "+HH:MM"/"-HH:MM"/"Z" offset → minute of the day in UTC.
fn parse_daily(t: &str) -> Result<u32, String> {
    let bad = || {
        format!("`{t}` is not a time of day: expected \"HH:MM\" (UTC) or \"HH:MM+01:00\" with an offset")
    };
    let t = t.trim();
    let (time, offset) = match t.find(['+', '-', 'Z', 'z']) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, ""),
    };
    let hm = |s: &str| -> Option<i64> {
        let (h, m) = s.split_once(':')?;
        let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
        ((0..24).contains(&h) && (0..60).contains(&m)).then_some(h * 60 + m)
    };
    let local = hm(time).ok_or_else(bad)?;
    let off = match offset {
        "" | "Z" | "z" => 0,
        o => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * hm(&o[1..]).ok_or_else(bad)?
        }
    };
    Ok((local - off).rem_euclid(1440) as u32)
}

impl Cx<'_> {
    /// `origin` is the site's public origin (`https://www.example.com/`).
    pub(super) fn build_mirror(
        &self,
        key: &str,
        raw: Option<Spanned<RawMirror>>,
        origin: &Url,
        scope: &[Url],
        scheme: Scheme,
    ) -> R<MirrorConfig> {
        let m = raw.map(|r| r.into_inner()).unwrap_or_default();
        let k = |f: &str| format!("{key}.{f}");
        let mut start = Vec::new();
        for (i, s) in m.start.iter().flatten().enumerate() {
            match origin.join(s.get_ref().trim()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => start.push(u),
                _ => {
                    return self.err(
                        s.span(),
                        &k(&format!("start[{i}]")),
                        format!("`{}` is not a path or http(s) URL", s.get_ref()),
                    )
                }
            }
        }
        if start.is_empty() {
            start.push(origin.clone());
        }
        let mut extra_origins = Vec::new();
        for (i, h) in m.extra_hosts.iter().flatten().enumerate() {
            let text = h.get_ref().trim();
            let with_scheme = if text.contains("://") {
                text.to_string()
            } else {
                format!(
                    "{}://{text}/",
                    if scheme == Scheme::Https {
                        "https"
                    } else {
                        "http"
                    }
                )
            };
            match Url::parse(&with_scheme) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() && u.path() == "/" => extra_origins.push(u),
                _ => {
                    return self.err(
                        h.span(),
                        &k(&format!("extra_hosts[{i}]")),
                        format!("`{text}` is not a host: expected a name like \"cdn.example.com\" or an origin like \"https://cdn.example.com:8443\""),
                    )
                }
            }
        }
        // A crawl fetches only from the primary's address (or a `resolve` entry): a start URL
        // on another host would be looked up through the system resolver instead.
        for (i, (u, s)) in start.iter().zip(m.start.iter().flatten()).enumerate() {
            if !scope
                .iter()
                .chain(&extra_origins)
                .any(|o| o.origin() == u.origin())
            {
                return self.err(
                    s.span(),
                    &k(&format!("start[{i}]")),
                    format!(
                        "`{}` is outside the site's scope ({}); a crawl fetches only the site's own names from the primary: add the host to extra_hosts (with a resolve entry if it is served elsewhere)",
                        s.get_ref(),
                        scope
                            .iter()
                            .chain(&extra_origins)
                            .map(|o| o.origin().ascii_serialization())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
        let mut resolve = Vec::new();
        if let Some(t) = &m.resolve {
            for (host, v) in t.get_ref() {
                let ip = v.as_str().and_then(|s| s.parse::<IpAddr>().ok());
                let Some(ip) = ip else {
                    return self.err(
                        t.span(),
                        &k(&format!("resolve.{host}")),
                        "expected an IP address like \"192.0.2.10\"",
                    );
                };
                if !extra_origins
                    .iter()
                    .any(|o| o.host_str() == Some(host.to_ascii_lowercase().as_str()))
                {
                    return self.err(
                        t.span(),
                        &k(&format!("resolve.{host}")),
                        format!("{host} is not one of extra_hosts"),
                    );
                }
                resolve.push((host.to_ascii_lowercase(), ip));
            }
        }
        let int = |v: &Option<Spanned<i64>>, f: &str, range: Range<i64>, default: i64| -> R<i64> {
            match v {
                None => Ok(default),
                Some(n) if range.contains(n.get_ref()) => Ok(*n.get_ref()),
                Some(n) => self.err(
                    n.span(),
                    &k(f),
                    format!(
                        "{} is out of range: from {} to {} (default {default})",
                        n.get_ref(),
                        range.start,
                        range.end - 1
                    ),
                ),
            }
        };
        let size = |v: &Option<Spanned<SizeValue>>, f: &str, default: u64| -> R<u64> {
            let n = match v.as_ref().map(|s| (s.span(), s.get_ref())) {
                None => return Ok(default),
                Some((_, SizeValue::Int(n))) if *n > 0 => *n as u64,
                Some((span, SizeValue::Int(n))) => {
                    return self.err(span, &k(f), format!("{n} is not a size: must be positive"))
                }
                Some((span, SizeValue::Text(t))) => {
                    parse_size(t).or_else(|e| self.err(span.clone(), &k(f), e))?
                }
            };
            if n < 1024 {
                return self.err(
                    v.as_ref().map(|s| s.span()).unwrap_or(0..0),
                    &k(f),
                    format!("{n} bytes is too small: at least 1KiB"),
                );
            }
            Ok(n)
        };
        let fraction = |v: &Option<Spanned<f64>>, f: &str, default: f64| -> R<f64> {
            match v {
                None => Ok(default),
                Some(x) if (0.0..=1.0).contains(x.get_ref()) => Ok(*x.get_ref()),
                Some(x) => self.err(
                    x.span(),
                    &k(f),
                    format!(
                        "{} is out of range: a fraction from 0.0 to 1.0 (default {default})",
                        x.get_ref()
                    ),
                ),
            }
        };
        let d = Limits::default();
        let limits = Limits {
            max_pages: int(
                &m.max_pages,
                "max_pages",
                1..100_000_001,
                d.max_pages as i64,
            )? as usize,
            max_bytes: size(&m.max_bytes, "max_bytes", d.max_bytes)?,
            max_time: self.duration(
                &m.max_time,
                &k("max_time"),
                d.max_time,
                Duration::from_secs(1),
            )?,
            max_depth: int(&m.max_depth, "max_depth", 0..10_001, d.max_depth as i64)? as u32,
            max_url_length: int(
                &m.max_url_length,
                "max_url_length",
                64..1_000_001,
                d.max_url_length as i64,
            )? as usize,
            max_query_variants: int(
                &m.max_query_variants,
                "max_query_variants",
                0..10_000_001,
                d.max_query_variants as i64,
            )? as usize,
            max_segment_repeats: int(
                &m.max_segment_repeats,
                "max_segment_repeats",
                1..1001,
                d.max_segment_repeats as i64,
            )? as usize,
            max_response_bytes: size(
                &m.max_response_bytes,
                "max_response_bytes",
                d.max_response_bytes,
            )?,
            max_redirects: int(
                &m.max_redirects,
                "max_redirects",
                0..101,
                d.max_redirects as i64,
            )? as u32,
        };
        let dc = Checks::default();
        let checks = Checks {
            min_fraction: fraction(&m.min_fraction, "min_fraction", dc.min_fraction)?,
            max_error_fraction: fraction(
                &m.max_error_fraction,
                "max_error_fraction",
                dc.max_error_fraction,
            )?,
            keep: int(&m.keep, "keep", 1..1001, dc.keep as i64)? as usize,
        };
        let off = m.scheduled.as_ref().filter(|s| !*s.get_ref());
        let schedule = match (&m.every, &m.daily, off) {
            (Some(_), Some(d), _) => {
                return self.err(
                    d.span(),
                    &k("daily"),
                    "give either `every` or `daily`, not both",
                )
            }
            (Some(_), _, Some(s)) | (_, Some(_), Some(s)) => {
                return self.err(
                    s.span(),
                    &k("scheduled"),
                    "scheduled = false turns scheduled crawls off; remove `every`/`daily` too",
                )
            }
            (Some(_), None, None) => Some(Schedule::Every(self.duration(
                &m.every,
                &k("every"),
                Duration::ZERO,
                Duration::from_secs(60),
            )?)),
            (None, Some(d), None) => Some(Schedule::Daily {
                minute_utc: parse_daily(d.get_ref())
                    .or_else(|e| self.err(d.span(), &k("daily"), e))?,
            }),
            (None, None, Some(_)) => None,
            // The default: daily at 03:00 UTC (and at once when there is no snapshot yet).
            (None, None, None) => Some(Schedule::Daily { minute_utc: 180 }),
        };
        Ok(MirrorConfig {
            start,
            extra_origins,
            resolve,
            concurrency: int(&m.concurrency, "concurrency", 1..257, 8)? as usize,
            timeout: self.duration(
                &m.timeout,
                &k("timeout"),
                Duration::from_secs(30),
                Duration::from_millis(100),
            )?,
            retries: int(&m.retries, "retries", 0..11, 2)? as u32,
            robots: m.robots.map(|r| r.into_inner()).unwrap_or(false),
            schedule,
            limits,
            checks,
        })
    }
}

impl MirrorConfig {
    /// The effective settings, for `check-config`.
    pub fn describe(&self) -> String {
        let l = &self.limits;
        let h = |d: Duration| crate::util::human(d);
        let mut o = String::from("[sites.mirror]\n");
        let start: Vec<String> = self
            .start
            .iter()
            .map(|u| format!("{:?}", u.as_str()))
            .collect();
        o.push_str(&format!("start = [{}]\n", start.join(", ")));
        if !self.extra_origins.is_empty() {
            let e: Vec<String> = self
                .extra_origins
                .iter()
                .map(|u| format!("{:?}", u.as_str()))
                .collect();
            o.push_str(&format!("extra_hosts = [{}]\n", e.join(", ")));
        }
        match self.schedule {
            Some(Schedule::Every(d)) => o.push_str(&format!("every = {:?}\n", h(d))),
            Some(Schedule::Daily { minute_utc }) => o.push_str(&format!(
                "daily = \"{:02}:{:02}Z\"\n",
                minute_utc / 60,
                minute_utc % 60
            )),
            None => o.push_str("scheduled = false  # crawled only by `understudy mirror`\n"),
        }
        o.push_str(&format!(
            "concurrency = {}\ntimeout = {:?}\nretries = {}\nrobots = {}\n",
            self.concurrency,
            h(self.timeout),
            self.retries,
            self.robots
        ));
        o.push_str(&format!(
            "max_pages = {}\nmax_bytes = {}\nmax_time = {:?}\nmax_depth = {}\nmax_url_length = {}\nmax_query_variants = {}\nmax_segment_repeats = {}\nmax_response_bytes = {}\nmax_redirects = {}\n",
            l.max_pages, l.max_bytes, h(l.max_time), l.max_depth, l.max_url_length, l.max_query_variants, l.max_segment_repeats, l.max_response_bytes, l.max_redirects
        ));
        o.push_str(&format!(
            "min_fraction = {}\nmax_error_fraction = {}\nkeep = {}\n",
            self.checks.min_fraction, self.checks.max_error_fraction, self.checks.keep
        ));
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_times() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("10 GB"), Ok(10_000_000_000));
        assert_eq!(parse_size("1.5k"), Ok(1500));
        assert!(parse_size("lots").is_err() && parse_size("5 parsecs").is_err());
        assert_eq!(parse_daily("03:30"), Ok(210));
        assert_eq!(parse_daily("03:30+01:00"), Ok(150));
        assert_eq!(parse_daily("00:15+01:00"), Ok(1440 - 45));
        assert_eq!(parse_daily("23:00-02:00"), Ok(60));
        assert!(parse_daily("25:00").is_err() && parse_daily("3pm").is_err());
    }

    #[test]
    fn schedule_next() {
        let day = 86_400_000;
        let every = Schedule::Every(Duration::from_secs(3600));
        assert_eq!(every.next_in(10_000_000, None), 0, "never crawled: now");
        assert_eq!(
            every.next_in(10_000_000, Some((9_000_000, true))),
            3_600_000 - 1_000_000
        );
        assert_eq!(
            every.next_in(10_000_000, Some((1, true))),
            0,
            "overdue: now"
        );
        let daily = Schedule::Daily { minute_utc: 180 };
        let midnight = 100 * day;
        assert_eq!(
            daily.next_in(midnight + 60_000, Some((midnight - 3_600_000, true))),
            180 * 60_000 - 60_000
        );
        assert_eq!(
            daily.next_in(
                midnight + 4 * 3_600_000,
                Some((midnight + 3 * 3_600_000, true))
            ),
            day - 3_600_000
        );
        assert_eq!(
            daily.next_in(midnight + 20 * 3_600_000, Some((midnight - 2 * day, true))),
            0,
            "missed while down: now"
        );
        assert_eq!(
            daily.next_in(
                midnight + 4 * 3_600_000,
                Some((midnight + 3 * 3_600_000 + 60_000, false))
            ),
            60_000,
            "not published: again within the hour"
        );
    }
}
