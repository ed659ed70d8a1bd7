//! Which URLs a crawl may fetch, and the trap rules that stop it from wandering into an infinite
//! URL space. Pure: no I/O, no clock.
//!
//! A URL is in scope when its scheme, host **and port** match one of the site's origins (the
//! domain, its aliases, and hosts the config adds). References are resolved against the page's
//! base the way a browser does (protocol-relative URLs take the page's scheme), stripped of their
//! fragment, and only `http`/`https` survive. The resolved, normalised URL string (the `url`
//! crate's serialisation: lower-case host, no default port, dot segments removed) is the
//! snapshot key.

use std::collections::{BTreeMap, HashMap, HashSet};

use url::Url;

/// The origins a crawl may fetch from.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    origins: HashSet<(String, String, u16)>,
}

fn origin_key(u: &Url) -> Option<(String, String, u16)> {
    Some((
        u.scheme().to_string(),
        u.host_str()?.to_ascii_lowercase(),
        u.port_or_known_default()?,
    ))
}

impl Scope {
    pub fn new<'a>(origins: impl IntoIterator<Item = &'a Url>) -> Self {
        Scope {
            origins: origins.into_iter().filter_map(origin_key).collect(),
        }
    }

    pub fn contains(&self, u: &Url) -> bool {
        origin_key(u).is_some_and(|k| self.origins.contains(&k))
    }
}

/// Resolves a reference as written in a document (entities already decoded) against `base`.
/// `None` for anything that is not an http(s) URL: `javascript:`, `mailto:`, `data:`, empty
/// or fragment-only references, and garbage the URL parser rejects.
pub fn resolve(base: &Url, raw: &str) -> Option<Url> {
    // HTML strips leading and trailing ASCII whitespace from URL attributes, and URL parsing
    // drops tabs and newlines inside.
    let raw = raw.trim_matches(|c: char| c.is_ascii_whitespace());
    if raw.is_empty() || raw.starts_with('#') || raw.len() > 64 * 1024 {
        return None;
    }
    let mut u = base.join(raw).ok()?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none_or(str::is_empty) {
        return None;
    }
    u.set_fragment(None);
    // Credentials in a link are never sent anywhere.
    if !u.username().is_empty() || u.password().is_some() {
        return None;
    }
    Some(u)
}

/// Why a URL was not fetched (or a fetch was stopped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Skip {
    Depth,
    UrlLength,
    QueryVariants,
    RepeatedSegment,
    Redirects,
    Pages,
    Bytes,
    Time,
    ResponseSize,
    DecompressionBomb,
    Robots,
}

impl Skip {
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::Depth => "max_depth",
            Skip::UrlLength => "max_url_length",
            Skip::QueryVariants => "max_query_variants",
            Skip::RepeatedSegment => "max_segment_repeats",
            Skip::Redirects => "max_redirects",
            Skip::Pages => "max_pages",
            Skip::Bytes => "max_bytes",
            Skip::Time => "max_time",
            Skip::ResponseSize => "max_response_bytes",
            Skip::DecompressionBomb => "decompression bomb (max_response_bytes)",
            Skip::Robots => "robots.txt",
        }
    }
}

/// The trap rules' bounds (the crawler takes them from [`crate::config::Limits`]). Pure data.
#[derive(Clone, Debug, PartialEq)]
pub struct Traps {
    /// Links followed from a start URL.
    pub max_depth: u32,
    pub max_url_length: usize,
    /// Distinct query strings per path (`/cal?month=1`, `/cal?month=2`, ...).
    pub max_query_variants: usize,
    /// How often one path segment may occur in a path (`next/next/next` has 3).
    pub max_segment_repeats: usize,
    /// Redirects followed in a row.
    pub max_redirects: u32,
}

/// Applies the per-URL trap rules. Stateful only in what it has admitted (query variants per
/// path); the crawler asks it once per new URL.
#[derive(Debug)]
pub struct Guard {
    limits: Traps,
    variants: HashMap<String, usize>,
}

impl Guard {
    pub fn new(limits: Traps) -> Self {
        Guard {
            limits,
            variants: HashMap::new(),
        }
    }

    /// Whether a newly found URL at `depth` (reached after `redirects` redirects in a row) may
    /// be fetched.
    pub fn admit(&mut self, u: &Url, depth: u32, redirects: u32) -> Result<(), Skip> {
        if redirects > self.limits.max_redirects {
            return Err(Skip::Redirects);
        }
        if depth > self.limits.max_depth {
            return Err(Skip::Depth);
        }
        if u.as_str().len() > self.limits.max_url_length {
            return Err(Skip::UrlLength);
        }
        if repeated_segment(u.path()) > self.limits.max_segment_repeats {
            return Err(Skip::RepeatedSegment);
        }
        if u.query().is_some() {
            let mut key = u.clone();
            key.set_query(None);
            let n = self.variants.entry(key.into()).or_default();
            if *n >= self.limits.max_query_variants {
                return Err(Skip::QueryVariants);
            }
            *n += 1;
        }
        Ok(())
    }
}

/// The largest number of times one non-empty segment occurs in `path`.
fn repeated_segment(path: &str) -> usize {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in path.split('/').filter(|s| !s.is_empty()) {
        *counts.entry(s).or_default() += 1;
    }
    counts.into_values().max().unwrap_or(0)
}

/// What `robots.txt` allows for us: the group for `understudy` if there is one, else `*`;
/// the longest matching rule wins and Allow wins ties (RFC 9309). `*` and `$` patterns are
/// supported.
#[derive(Clone, Debug, Default)]
pub struct Robots {
    rules: Vec<(bool, String)>,
    pub sitemaps: Vec<String>,
}

impl Robots {
    pub fn parse(text: &str) -> Self {
        // (user agents, rules) per group.
        type Group = (Vec<String>, Vec<(bool, String)>);
        let mut groups: Vec<Group> = Vec::new();
        let mut sitemaps = Vec::new();
        let mut in_agents = false;
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let (key, value) = (key.trim().to_ascii_lowercase(), value.trim().to_string());
            match key.as_str() {
                "user-agent" => {
                    if !in_agents {
                        groups.push((Vec::new(), Vec::new()));
                    }
                    in_agents = true;
                    if let Some(g) = groups.last_mut() {
                        g.0.push(value.to_ascii_lowercase());
                    }
                }
                "allow" | "disallow" => {
                    in_agents = false;
                    if let Some(g) = groups.last_mut() {
                        if !value.is_empty() {
                            g.1.push((key == "allow", value));
                        }
                    }
                }
                "sitemap" => sitemaps.push(value),
                _ => {}
            }
        }
        let pick = |agent: &str| {
            groups
                .iter()
                .filter(|g| g.0.iter().any(|a| a == agent))
                .flat_map(|g| g.1.clone())
                .collect::<Vec<_>>()
        };
        let mut rules = pick("understudy");
        if rules.is_empty() {
            rules = pick("*");
        }
        Robots { rules, sitemaps }
    }

    pub fn allows(&self, u: &Url) -> bool {
        let target = match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        };
        let mut best: Option<(usize, bool)> = None;
        for (allow, pattern) in &self.rules {
            if robots_match(pattern, &target) {
                let len = pattern.len();
                best = match best {
                    Some((l, a)) if l > len || (l == len && a) => Some((l, a)),
                    _ => Some((len, *allow)),
                };
            }
        }
        best.is_none_or(|(_, allow)| allow)
    }
}

fn robots_match(pattern: &str, target: &str) -> bool {
    let (pattern, anchored) = match pattern.strip_suffix('$') {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut pos = 0;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            if !target.starts_with(part) {
                return false;
            }
            pos = part.len();
        } else if i == parts.len() - 1 && anchored {
            return target.len() >= pos + part.len() && target.ends_with(part);
        } else {
            match target[pos..].find(part) {
                Some(at) => pos += at + part.len(),
                None => return false,
            }
        }
    }
    !anchored || pos == target.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn scope_is_scheme_host_and_port() {
        let s = Scope::new([&u("https://www.example.test/"), &u("https://example.test/")]);
        assert!(s.contains(&u("https://WWW.example.test:443/a")));
        assert!(s.contains(&u("https://example.test/b?x=1")));
        assert!(!s.contains(&u("http://www.example.test/")), "other scheme");
        assert!(
            !s.contains(&u("https://www.example.test:8443/")),
            "other port"
        );
        assert!(!s.contains(&u("https://cdn.example.test/")), "other host");
        assert!(!s.contains(&u("https://www.example.test.evil.test/")));
    }

    #[test]
    fn resolves_like_a_browser_and_drops_what_is_not_http() {
        let base = u("https://www.example.test/blog/post?id=1");
        let r = |s: &str| resolve(&base, s).map(String::from);
        assert_eq!(
            r("../about#team").as_deref(),
            Some("https://www.example.test/about")
        );
        assert_eq!(
            r("//cdn.example.test/x.png").as_deref(),
            Some("https://cdn.example.test/x.png"),
            "protocol-relative"
        );
        assert_eq!(
            r("  img/a b.png\n").as_deref(),
            Some("https://www.example.test/blog/img/a%20b.png")
        );
        assert_eq!(
            r("?page=2").as_deref(),
            Some("https://www.example.test/blog/post?page=2")
        );
        assert_eq!(
            r("/../../../etc/passwd").as_deref(),
            Some("https://www.example.test/etc/passwd"),
            "dot segments cannot escape"
        );
        for bad in [
            "",
            "#top",
            "javascript:alert(1)",
            " JaVaScRiPt:alert(1)",
            "mailto:a@example.test",
            "data:text/html,x",
            "file:///etc/passwd",
            "ftp://example.test/",
            "http://[::1",
            "http://user:pw@www.example.test/",
            "http://",
        ] {
            assert_eq!(r(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn trap_rules() {
        let mut g = Guard::new(Traps {
            max_query_variants: 3,
            max_url_length: 60,
            max_depth: 4,
            max_segment_repeats: 2,
            max_redirects: 10,
        });
        assert_eq!(g.admit(&u("https://e.test/a/b"), 4, 0), Ok(()));
        assert_eq!(g.admit(&u("https://e.test/a/b"), 5, 0), Err(Skip::Depth));
        assert_eq!(g.admit(&u("https://e.test/next/next/"), 1, 0), Ok(()));
        assert_eq!(
            g.admit(&u("https://e.test/next/next/next/"), 1, 0),
            Err(Skip::RepeatedSegment)
        );
        assert_eq!(
            g.admit(&u("https://e.test/2024/01/01/"), 1, 0),
            Ok(()),
            "a date is not a trap"
        );
        for i in 0..3 {
            assert_eq!(
                g.admit(&u(&format!("https://e.test/cal?m={i}")), 1, 0),
                Ok(())
            );
        }
        assert_eq!(
            g.admit(&u("https://e.test/cal?m=9"), 1, 0),
            Err(Skip::QueryVariants)
        );
        assert_eq!(
            g.admit(&u("https://e.test/other?m=9"), 1, 0),
            Ok(()),
            "counted per path"
        );
        assert_eq!(
            g.admit(&u(&format!("https://e.test/{}", "x".repeat(60))), 1, 0),
            Err(Skip::UrlLength)
        );
        assert_eq!(g.admit(&u("https://e.test/r"), 1, 11), Err(Skip::Redirects));
    }

    #[test]
    fn robots_txt() {
        let r = Robots::parse(
            "User-agent: other\nDisallow: /\n\nUser-agent: *\nDisallow: /private\nAllow: /private/ok\nDisallow: /*.pdf$\n# c\nSitemap: https://e.test/s.xml\n",
        );
        assert!(r.allows(&u("https://e.test/")));
        assert!(!r.allows(&u("https://e.test/private/x")));
        assert!(r.allows(&u("https://e.test/private/ok/1")));
        assert!(!r.allows(&u("https://e.test/doc/a.pdf")));
        assert!(r.allows(&u("https://e.test/doc/a.pdf?x")));
        assert_eq!(r.sitemaps, ["https://e.test/s.xml"]);
        let ours =
            Robots::parse("User-agent: *\nDisallow: /\n\nUser-agent: understudy\nDisallow: /tmp\n");
        assert!(
            ours.allows(&u("https://e.test/a")),
            "our own group wins over *"
        );
        assert!(!ours.allows(&u("https://e.test/tmp/a")));
        assert!(Robots::parse("garbage\n\0\u{fffd}:::").allows(&u("https://e.test/")));
    }
}
