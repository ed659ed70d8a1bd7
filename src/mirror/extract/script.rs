//! Guessing what a script or a JSON file loads: the URL-like string literals in it.
//!
//! No static crawler can know what a script will fetch, but most scripts name what they load as
//! string literals (`fetch("/data/menu.json")`, `img.src = "img/hero.png"`, `import("./chunk.js")`,
//! a JSON file's `"logo": "/img/logo.svg"`). These are *guesses*, not references: the crawler asks
//! for them, keeps what the origin answers with 2xx or 3xx, and records what it answers otherwise
//! without counting it as an error (see the crawler's module doc). The offline export and
//! `mirror verify` never treat a guess as a reference.
//!
//! The scanner is a JavaScript tokenizer cut down to what finding strings needs, so that a quote
//! inside a comment or a regular expression never throws it out of step: comments, the three
//! string forms, template literals (taken only when they have no `${…}` hole, since a hole's value
//! is not known), and regular-expression literals, told from division by the token before the `/`
//! (the usual rule: after an operator, a `(`, `,`, `{`, `}`, `;` or a keyword such as `return`, a
//! `/` starts a regular expression). JSON is a subset of this grammar, so JSON files go through
//! the same scanner. Input that is not JavaScript yields wrong guesses, never a panic.
//!
//! A string literal is a guess when it looks like a URL and not like prose, a MIME type or a date:
//! - `http://…` or `https://…`, protocol-relative `//host…`, root-relative `/x…`, or `./…`, `../…`;
//! - or a bare relative path whose last segment ends in an extension a site serves
//!   ([`EXTENSIONS`]: `img/logo.png`, `data.json`, but not `text/html` or `a.b.c`);
//! - 2 to 2,048 bytes, no whitespace or control characters, none of `<>{}|\^"'` or a backtick.
//!
//! Relative guesses are resolved against the base given: the page's (after `<base href>`) for an
//! inline script, the file's own URL for an external script or a JSON file. (A browser resolves a
//! script's `fetch("x.json")` against the page that runs it, which the crawler cannot know; the
//! file's URL is right for the common case of scripts and data that sit side by side.)

use std::borrow::Cow;

use url::Url;

use crate::mirror::scope::resolve;

/// The most guesses taken from one document: a large bundle must not flood the crawl.
pub const MAX_GUESSES: usize = 1000;

/// The file extensions that make a bare relative string (`img/logo.png`) a guess.
pub const EXTENSIONS: &[&str] = &[
    "html",
    "htm",
    "xhtml",
    "json",
    "js",
    "mjs",
    "css",
    "xml",
    "txt",
    "csv",
    "pdf",
    "png",
    "jpg",
    "jpeg",
    "gif",
    "svg",
    "webp",
    "avif",
    "ico",
    "bmp",
    "woff",
    "woff2",
    "ttf",
    "otf",
    "eot",
    "mp4",
    "webm",
    "ogg",
    "ogv",
    "mp3",
    "wav",
    "m4a",
    "wasm",
    "webmanifest",
];

/// The URL-like string literals of a script (or JSON text), resolved against `base`, without
/// duplicates, in order, at most [`MAX_GUESSES`].
pub fn urls(text: &str, base: &Url) -> Vec<Url> {
    let mut out: Vec<Url> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for s in literals(text) {
        if out.len() >= MAX_GUESSES {
            break;
        }
        if !looks_like_url(&s) {
            continue;
        }
        if let Some(u) = resolve(base, &s) {
            if seen.insert(u.to_string()) {
                out.push(u);
            }
        }
    }
    out
}

/// Whether a string literal's value looks like a URL (the rules in the module doc).
pub fn looks_like_url(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 2 || b.len() > 2048 {
        return false;
    }
    if b.iter()
        .any(|&c| c.is_ascii_whitespace() || c.is_ascii_control() || b"<>{}|\\^\"'`".contains(&c))
    {
        return false;
    }
    let lower_prefix =
        |p: &str| b.len() > p.len() && b[..p.len()].eq_ignore_ascii_case(p.as_bytes());
    if lower_prefix("http://") || lower_prefix("https://") {
        return true;
    }
    if let Some(rest) = s.strip_prefix("//") {
        return rest
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    }
    if let Some(rest) = s.strip_prefix('/') {
        return rest
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || b"_.~-%".contains(&c));
    }
    if s.starts_with("./") || s.starts_with("../") {
        return true;
    }
    if !(b[0].is_ascii_alphanumeric() || b[0] == b'_') || s.contains(':') {
        return false;
    }
    let path = s.split(['?', '#']).next().unwrap_or("");
    let last = path.rsplit('/').next().unwrap_or("");
    match last.rsplit_once('.') {
        Some((stem, ext)) => {
            !stem.is_empty() && EXTENSIONS.iter().any(|e| e.eq_ignore_ascii_case(ext))
        }
        None => false,
    }
}

/// The values of the string literals of a script, in order (see the module doc for what the
/// scanner understands).
pub fn literals(text: &str) -> Vec<Cow<'_, str>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    // Whether a `/` here starts a regular expression rather than a division.
    let mut regex_ok = true;
    while i < b.len() {
        let c = b[i];
        match c {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                i = find(b, i + 2, b"\n").unwrap_or(b.len());
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = find(b, i + 2, b"*/").map_or(b.len(), |e| e + 2);
            }
            b'/' if regex_ok => {
                i = skip_regex(b, i + 1);
                regex_ok = false;
            }
            b'"' | b'\'' => {
                let (end, closed) = string_end(b, i + 1, c);
                if closed {
                    if let Some(raw) = text.get(i + 1..end) {
                        out.push(unescape(raw));
                    }
                }
                i = end + 1;
                regex_ok = false;
            }
            b'`' => {
                let (end, holes) = template_end(b, i + 1);
                if !holes && end < b.len() {
                    if let Some(raw) = text.get(i + 1..end) {
                        out.push(unescape(raw));
                    }
                }
                i = end + 1;
                regex_ok = false;
            }
            c if c.is_ascii_whitespace() => i += 1,
            c if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 => {
                let start = i;
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric()
                        || b[i] == b'_'
                        || b[i] == b'$'
                        || b[i] >= 0x80)
                {
                    i += 1;
                }
                regex_ok = matches!(
                    &b[start..i],
                    b"return"
                        | b"typeof"
                        | b"instanceof"
                        | b"in"
                        | b"of"
                        | b"new"
                        | b"delete"
                        | b"void"
                        | b"throw"
                        | b"case"
                        | b"do"
                        | b"else"
                        | b"yield"
                        | b"await"
                );
            }
            b')' | b']' => {
                i += 1;
                regex_ok = false;
            }
            _ => {
                i += 1;
                regex_ok = true;
            }
        }
    }
    out
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// The index of the closing quote (or where the unterminated string stops), and whether it was
/// closed.
fn string_end(b: &[u8], mut i: usize, quote: u8) -> (usize, bool) {
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'\n' => return (i, false),
            c if c == quote => return (i, true),
            _ => i += 1,
        }
    }
    (b.len(), false)
}

/// The index of a template literal's closing backtick, and whether it has `${…}` holes (skipped
/// by counting braces, strings inside them included).
fn template_end(b: &[u8], mut i: usize) -> (usize, bool) {
    let mut holes = false;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'`' => return (i, holes),
            b'$' if b.get(i + 1) == Some(&b'{') => {
                holes = true;
                let mut depth = 0usize;
                i += 1;
                while i < b.len() {
                    match b[i] {
                        b'{' => depth += 1,
                        b'}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        q @ (b'"' | b'\'') => i = string_end(b, i + 1, q).0,
                        b'`' => i = template_end(b, i + 1).0,
                        _ => {}
                    }
                    i += 1;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    (b.len(), holes)
}

/// Past a regular-expression literal whose body starts at `i` (its flags included).
fn skip_regex(b: &[u8], mut i: usize) -> usize {
    let mut in_class = false;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'[' => in_class = true,
            b']' => in_class = false,
            b'/' if !in_class => break,
            b'\n' => return i,
            _ => {}
        }
        i += 1;
    }
    i += 1;
    while i < b.len() && b[i].is_ascii_alphabetic() {
        i += 1;
    }
    i
}

/// A string literal's value: JavaScript's escapes decoded (`\/`, `\xNN`, `\uNNNN`, `\u{N}`, line
/// continuations; `\n` and the like become the control characters that make it no URL).
fn unescape(raw: &str) -> Cow<'_, str> {
    if !raw.contains('\\') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else { break };
        let hex = |chars: &mut std::str::Chars<'_>, n: usize| -> Option<char> {
            let digits: String = chars.by_ref().take(n).collect();
            u32::from_str_radix(&digits, 16)
                .ok()
                .and_then(char::from_u32)
        };
        match e {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'b' | 'f' | 'v' | '0' => out.push('\u{1}'),
            '\n' => {}
            'x' => out.push(hex(&mut chars, 2).unwrap_or('\u{fffd}')),
            'u' => {
                let rest = chars.as_str();
                if let Some(inner) = rest.strip_prefix('{') {
                    let end = inner.find('}').unwrap_or(inner.len());
                    let c = u32::from_str_radix(&inner[..end], 16)
                        .ok()
                        .and_then(char::from_u32);
                    out.push(c.unwrap_or('\u{fffd}'));
                    chars = inner.get(end + 1..).unwrap_or("").chars();
                } else {
                    out.push(hex(&mut chars, 4).unwrap_or('\u{fffd}'));
                }
            }
            other => out.push(other),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guesses(text: &str) -> Vec<String> {
        let base = Url::parse("https://www.example.test/static/app.js").unwrap();
        urls(text, &base).into_iter().map(String::from).collect()
    }

    #[test]
    fn what_counts_as_a_url() {
        // (string, is a guess)
        let table = [
            ("/data/menu.json", true),
            ("/about", true),
            ("/.well-known/x", true),
            ("//cdn.example.test/x.js", true),
            ("https://www.example.test/x", true),
            ("HTTP://www.example.test/x", true),
            ("./chunk.js", true),
            ("../img/a.png", true),
            ("img/hero.png", true),
            ("data.json", true),
            ("style.CSS?v=2", true),
            ("/", false),
            ("//", false),
            ("https://", false),
            ("text/html", false),
            ("application/json", false),
            ("dd/mm/yyyy", false),
            ("window.location", false),
            ("1.5", false),
            (".png", false),
            ("hello world.png", false),
            ("mailto:a@b.test", false),
            ("javascript:x.js", false),
            ("/a<b>", false),
            ("/${x}", false),
            ("/a\nb", false),
            ("", false),
            ("x", false),
        ];
        for (s, want) in table {
            assert_eq!(looks_like_url(s), want, "{s:?}");
        }
        assert!(!looks_like_url(&format!("/{}", "a".repeat(2048))));
    }

    #[test]
    fn strings_comments_and_regexes() {
        let js = r#"
            // fetch("/in-a-line-comment.json")
            /* "/in-a-block-comment.json" */
            const a = "/double.json", b = '/single.json', c = `/template.json`;
            const t = `/hole/${name}.json`;                  // a hole: value unknown
            const re = /"[a-z]+"/g, other = "/after-regex.json";
            const half = x / 2, y = "/after-division.json" / 3;
            if (ok) return /'/.test(s) ? "/after-return-regex.json" : 0;
            const esc = "\/escaped\u002fslash.json", hexed = "/x\x2ejson";
            let cont = "/line\
continued.json";
            `${`/nested-template.json`}`; "/after-nested.json";
            'unterminated
            "/next-line.json"
        "#;
        assert_eq!(
            guesses(js),
            [
                "https://www.example.test/double.json",
                "https://www.example.test/single.json",
                "https://www.example.test/template.json",
                "https://www.example.test/after-regex.json",
                "https://www.example.test/after-division.json",
                "https://www.example.test/after-return-regex.json",
                "https://www.example.test/escaped/slash.json",
                "https://www.example.test/x.json",
                "https://www.example.test/linecontinued.json",
                "https://www.example.test/after-nested.json",
                "https://www.example.test/next-line.json",
            ]
        );
    }

    #[test]
    fn relative_guesses_resolve_against_the_base_and_repeat_once() {
        assert_eq!(
            guesses(r#"load("chunk-1.js"); load("./chunk-1.js"); load("../img/a.png")"#),
            [
                "https://www.example.test/static/chunk-1.js",
                "https://www.example.test/img/a.png",
            ]
        );
    }

    #[test]
    fn json_is_read_as_a_script() {
        let json = r#"{"logo": "/img/logo.svg", "list": ["a.png", 3, "not a url"], "x": {"next": "page-2.json"}}"#;
        assert_eq!(
            guesses(json),
            [
                "https://www.example.test/img/logo.svg",
                "https://www.example.test/static/a.png",
                "https://www.example.test/static/page-2.json",
            ]
        );
    }

    #[test]
    fn a_bundle_gives_at_most_the_cap() {
        let js: String = (0..5000).map(|i| format!("\"/f{i}.js\";")).collect();
        assert_eq!(guesses(&js).len(), MAX_GUESSES);
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(s in "\\PC{0,200}", b in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let base = Url::parse("https://www.example.test/").unwrap();
            let _ = urls(&s, &base);
            let _ = urls(&String::from_utf8_lossy(&b), &base);
            for cut in [r#"`${"#, r#""\"#, "/[", "/*", r#"`${'"#, r#"\u{"#, r#""\u{12""#, r#""\x"#] {
                let _ = urls(&format!("{s}{cut}"), &base);
            }
        }
    }
}
