//! The validation context: the file's path and text (for located errors and warnings) and the
//! checks every section shares (durations, counts, names, paths, secrets read from files).

use super::*;

pub(super) struct Cx<'a> {
    pub(super) path: &'a Path,
    pub(super) text: &'a str,
    /// Located warnings (`file:line:col: key: message`), for what is allowed but likely wrong.
    pub(super) warnings: std::cell::RefCell<Vec<String>>,
    /// Where each secret came from, by its key (`providers[0].api_key`).
    pub(super) secret_sources: std::cell::RefCell<BTreeMap<String, SecretFrom>>,
}

pub(super) type R<T> = Result<T, ConfigError>;

/// Where an optional value was given, for [`Cx::keys_for_type`].
pub(super) fn span_of<T>(v: &Option<Spanned<T>>) -> Option<Range<usize>> {
    v.as_ref().map(|v| v.span())
}

impl Cx<'_> {
    pub(super) fn err_at(&self, offset: usize, key: &str, message: &str) -> ConfigError {
        let (line, column) = line_col(self.text, offset);
        ConfigError {
            file: self.path.to_path_buf(),
            line,
            column,
            key: key.to_string(),
            message: message.to_string(),
        }
    }

    pub(super) fn err<T>(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> R<T> {
        Err(self.err_at(span.start, key, &message.into()))
    }

    /// A URL with one of `schemes` ("http", "https"), else an error naming them; `why` (may be
    /// empty) says why only those. The one URL check of the config.
    pub(super) fn url(
        &self,
        v: &Spanned<String>,
        key: &str,
        schemes: &[&str],
        why: &str,
    ) -> R<String> {
        let u = v.get_ref();
        if schemes.iter().any(|s| u.starts_with(&format!("{s}://"))) {
            return Ok(u.clone());
        }
        let list: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
        let why = if why.is_empty() {
            String::new()
        } else {
            format!(" ({why})")
        };
        self.err(
            v.span(),
            key,
            format!("`{u}` is not an {} URL{why}", list.join(" or ")),
        )
    }

    /// Refuses the first key that is given but does not belong to the table's `type`. `given`
    /// lists every type-specific key with its span when set ([`span_of`]); the one key-allow-list
    /// check of providers and IP sources.
    pub(super) fn keys_for_type(
        &self,
        base: &str,
        kind: &str,
        given: &[(&str, Option<Range<usize>>)],
        allowed: &[&str],
    ) -> R<()> {
        match given
            .iter()
            .find(|(k, s)| s.is_some() && !allowed.contains(k))
        {
            Some((k, Some(s))) => {
                // A near miss of one of this type's own keys is named; otherwise its keys are.
                let hint = match closest(k, allowed) {
                    Some(a) => format!(" (did you mean `{a}`?)"),
                    None if allowed.is_empty() => String::new(),
                    None => format!(" (its keys: {})", allowed.join(", ")),
                };
                self.err(
                    s.clone(),
                    &format!("{base}.{k}"),
                    format!("does not apply to type = \"{kind}\"{hint}"),
                )
            }
            _ => Ok(()),
        }
    }

    /// Records a warning located like an error; `check-config` prints it and the daemon logs it.
    pub(super) fn warn(&self, span: Range<usize>, key: &str, message: impl Into<String>) {
        let e = self.err_at(span.start, key, &message.into());
        self.warnings.borrow_mut().push(e.to_string());
    }

    /// Reads the file a `*_file` key names. When it cannot be read and the value does not look
    /// like a path but like a secret pasted in its place, the error says so without echoing it
    /// (design.md: no secret is ever printed) and names `instead`, the key that takes a secret.
    pub(super) fn read_named_file(
        &self,
        v: &Spanned<String>,
        key: &str,
        instead: Option<&str>,
    ) -> R<String> {
        let path = self.resolve_path(v.get_ref());
        std::fs::read_to_string(&path).or_else(|e| match (looks_like_secret(v.get_ref()), instead) {
            (true, Some(other)) => self.err(
                v.span(),
                key,
                format!(
                    "cannot read the file this key names, and its value looks like a secret rather than a path (not shown); \
                     put the secret in a file and give its path here, or name an environment variable that holds it with `{other}`"
                ),
            ),
            (true, None) => self.err(
                v.span(),
                key,
                "cannot read the file this key names, and its value looks like a secret rather than a path (not shown); give the path of a file",
            ),
            (false, _) => self.err(v.span(), key, format!("cannot read {}: {e}", path.display())),
        })
    }

    pub(super) fn resolve_path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.path.parent().unwrap_or(Path::new(".")).join(p)
        }
    }

    pub(super) fn build(&self, raw: RawConfig) -> R<Config> {
        let data_dir = match &raw.data_dir {
            Some(d) if d.get_ref().trim().is_empty() => {
                return self.err(
                    d.span(),
                    "data_dir",
                    "must not be empty: a directory for the state database",
                )
            }
            Some(d) => self.resolve_path(d.get_ref()),
            None => PathBuf::from(DEFAULT_DATA_DIR),
        };
        let (dns_raw, dns_span) = match raw.dns {
            Some(d) => {
                let span = d.span();
                (d.into_inner(), span)
            }
            None => (
                RawDns {
                    listen: None,
                    ttl: None,
                    refresh: None,
                    verify_timeout: None,
                    zones: vec![],
                    secondaries: vec![],
                    also_notify: None,
                    primaries: vec![],
                },
                0..0,
            ),
        };
        let mut providers: Vec<ProviderConfig> = vec![];
        for (i, p) in raw.providers.into_iter().enumerate() {
            let name_span = p
                .get_ref()
                .name
                .as_ref()
                .map(|n| n.span())
                .unwrap_or(p.span());
            let built = self.build_provider(i, p)?;
            if providers.iter().any(|o| o.name == built.name) {
                return self.err(
                    name_span,
                    &format!("providers[{i}].name"),
                    format!("provider name `{}` is used twice", built.name),
                );
            }
            providers.push(built);
        }
        let dns = self.build_dns(dns_raw, dns_span, &providers)?;
        let api = self.build_api(raw.api)?;
        let standby = match raw.standby {
            None => None,
            Some(st) => Some(self.build_standby(st)?),
        };
        let ip = self.build_ip(raw.ip)?;
        let notify = self.build_notify(raw.notify)?;
        let watcher = self.build_watcher(raw.watcher)?;

        let mut sites = Vec::new();
        let mut names_owned: HashMap<LowerName, String> = HashMap::new();
        for (i, s) in raw.sites.into_iter().enumerate() {
            let name_span = s
                .get_ref()
                .name
                .as_ref()
                .or(s.get_ref().domain.as_ref())
                .map(|n| n.span())
                .unwrap_or(s.span());
            let site = self.build_site(i, s, &dns, &ip, standby.is_some(), &mut names_owned)?;
            if let Some(prev) = sites.iter().find(|p: &&Site| p.name == site.name) {
                return self.err(
                    name_span,
                    &format!("sites[{i}].name"),
                    format!(
                        "site name `{}` is used twice (also by the site for {})",
                        site.name, prev.domain
                    ),
                );
            }
            sites.push(site);
        }
        let ddns = self.build_ddns(raw.ddns, &dns, &ip, &mut names_owned)?;
        let status_page = self.build_status_page(raw.status_page, &sites)?;
        let warnings = self.warnings.take();
        let secret_sources = self.secret_sources.take();
        Ok(Config {
            secret_sources,
            path: self.path.to_path_buf(),
            data_dir,
            providers,
            dns,
            ip,
            ddns,
            warnings,
            api,
            standby,
            notify,
            watcher,
            status_page,
            sites,
        })
    }

    /// A list of listen addresses (`key`), `default` when absent; never empty.
    pub(super) fn listen_list(
        &self,
        raw: Option<Spanned<Vec<Spanned<String>>>>,
        key: &str,
        default: &str,
    ) -> R<Vec<SocketAddr>> {
        let Some(l) = raw else {
            return Ok(vec![default.parse().expect("valid literal")]);
        };
        if l.get_ref().is_empty() {
            return self.err(
                l.span(),
                key,
                format!("must list at least one address, e.g. [\"{default}\"]"),
            );
        }
        let mut out = vec![];
        for (i, a) in l.into_inner().into_iter().enumerate() {
            out.push(a.get_ref().parse::<SocketAddr>().or_else(|_| {
                self.err(
                    a.span(),
                    &format!("{key}[{i}]"),
                    format!(
                        "`{}` is not an address with a port, e.g. \"{default}\"",
                        a.get_ref()
                    ),
                )
            })?);
        }
        Ok(out)
    }

    pub(super) fn dns_name(&self, s: &Spanned<String>, key: &str) -> R<Name> {
        let text = s.get_ref().trim();
        let bad = |why: &str| {
            self.err(
                s.span(),
                key,
                format!("`{}` is not a valid domain name: {why}", s.get_ref()),
            )
        };
        if text.is_empty() {
            return bad("it is empty");
        }
        if text.contains("://") || text.contains('/') {
            return bad("give the bare name, without scheme or path");
        }
        if !text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
        {
            return bad("only letters, digits, '-', '_' and '.' are allowed (use punycode for international names)");
        }
        let mut name = match Name::from_ascii(text) {
            Ok(n) => n,
            Err(e) => return bad(&e.to_string()),
        };
        if name.num_labels() == 0 {
            return bad("the root is not allowed here");
        }
        name.set_fqdn(true);
        Ok(name.to_lowercase())
    }

    pub(super) fn duration(
        &self,
        v: &Option<Spanned<DurationValue>>,
        key: &str,
        default: Duration,
        min: Duration,
    ) -> R<Duration> {
        let Some(v) = v else { return Ok(default) };
        let d = match v.get_ref() {
            DurationValue::Text(t) => parse_duration(t).or_else(|e| self.err(v.span(), key, e))?,
            // A bare number is refused like the string "2" is: `interval = 2` could mean
            // seconds or milliseconds, and writing the unit costs nothing.
            DurationValue::Int(n) => {
                return self.err(
                    v.span(),
                    key,
                    format!("`{n}` has no unit: write a duration like \"{n}s\" or \"{n}ms\""),
                )
            }
            DurationValue::Float(f) => {
                return self.err(
                    v.span(),
                    key,
                    format!("`{f}` has no unit: write a duration like \"{f}s\""),
                )
            }
        };
        if d < min {
            return self.err(
                v.span(),
                key,
                format!("{} is too short: at least {}", human(d), human(min)),
            );
        }
        Ok(d)
    }

    pub(super) fn count(&self, v: &Option<Spanned<i64>>, key: &str, default: u32) -> R<u32> {
        match v {
            None => Ok(default),
            Some(n) if (1..=1_000).contains(n.get_ref()) => Ok(*n.get_ref() as u32),
            Some(n) => self.err(
                n.span(),
                key,
                format!(
                    "{} is out of range: a count from 1 to 1000 (default {default})",
                    n.get_ref()
                ),
            ),
        }
    }
}

pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map(|i| offset - i).unwrap_or(offset + 1);
    (line, column)
}

/// Best-effort dotted key for an error that serde reported only with a span: the enclosing
/// `[table]` header (with the index of `[[array]]` tables) plus the key on the error's line.
pub(super) fn key_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line = text[line_start..].lines().next().unwrap_or("");
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut table = String::new();
    for l in text[..line_start].lines() {
        let l = l.trim();
        if let Some(h) = l.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let h = h.trim().to_string();
            let n = counts.entry(h.clone()).and_modify(|c| *c += 1).or_insert(0);
            table = indexed(&h, *n, &counts);
        } else if let Some(h) = l.strip_prefix('[').and_then(|r| r.split(']').next()) {
            table = indexed(h.trim(), usize::MAX, &counts);
        }
    }
    let trimmed = line.trim();
    let key = if trimmed.starts_with('[') {
        let h = trimmed
            .trim_start_matches('[')
            .split(']')
            .next()
            .unwrap_or("")
            .trim();
        return if h.is_empty() {
            "(table)".to_string()
        } else {
            h.to_string()
        };
    } else {
        trimmed
            .split('=')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches('"')
            .to_string()
    };
    match (table.is_empty(), key.is_empty()) {
        (true, true) => "(top level)".to_string(),
        (true, false) => key,
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    }
}

/// Turns `sites.probe` into `sites[2].probe` using how many `[[sites]]` were seen so far.
pub(super) fn indexed(header: &str, own_index: usize, counts: &BTreeMap<String, usize>) -> String {
    let parts: Vec<&str> = header.split('.').map(str::trim).collect();
    let mut out = String::new();
    for i in 0..parts.len() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(parts[i]);
        let prefix = parts[..=i].join(".");
        if let Some(n) = counts.get(&prefix) {
            let n = if i == parts.len() - 1 && own_index != usize::MAX {
                own_index
            } else {
                *n
            };
            out.push_str(&format!("[{n}]"));
        }
    }
    out
}

/// serde's messages say "field"; operators write "keys".
/// For serde's "unknown key `x`, expected one of `a`, `b`": the expected key [`closest`] to
/// `x`.
fn did_you_mean(m: &str) -> Option<String> {
    let rest = m.strip_prefix("unknown key `")?;
    let (given, rest) = rest.split_once('`')?;
    let list = rest
        .strip_prefix(", expected one of ")
        .or_else(|| rest.strip_prefix(", expected "))?;
    let list: Vec<&str> = list.split(", ").map(|c| c.trim_matches('`')).collect();
    closest(given, &list).map(str::to_string)
}

/// The option closest to `given` when it is close enough to be a typo of it: at most 2 edits
/// (a swap of neighbours counting as one) and fewer than half the letters.
pub(super) fn closest<'a>(given: &str, options: &[&'a str]) -> Option<&'a str> {
    options
        .iter()
        .map(|c| (edits(given, c), *c))
        .filter(|(d, _)| *d <= 2 && *d * 2 < given.chars().count())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edit distance with adjacent transpositions (optimal string alignment).
fn edits(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

pub(super) fn tidy_serde_message(m: &str) -> String {
    let m = m.trim_end_matches('\n');
    if m.contains("untagged enum DurationValue") {
        return "expected a duration with its unit, like \"2s\" or \"500ms\"".to_string();
    }
    if m.contains("untagged enum StatusItem") {
        return "expected an HTTP status like 200, a class like \"2xx\", or a range like \"200-299\"".to_string();
    }
    let mut out = m.replace("unknown field", "unknown key");
    if let Some(hint) = did_you_mean(&out) {
        // "unknown key `intreval`, expected ..." → "unknown key `intreval` (did you mean
        // `interval`?), expected ...".
        if let Some(at) = out.find("`, expected") {
            out.insert_str(at + 1, &format!(" (did you mean `{hint}`?)"));
        }
    }
    for (rust, words) in [
        ("expected i64", "expected a whole number"),
        ("expected u32", "expected a whole number"),
        ("expected a boolean", "expected true or false"),
        ("expected a sequence", "expected a list like [\"a\", \"b\"]"),
    ] {
        out = out.replace(rust, words);
    }
    out
}
