//! Finding (and, for the offline export, rewriting) the references in HTML, CSS, web-app
//! manifests and sitemaps. Pure: bytes in, URLs out.
//!
//! One walker per format serves both jobs: it calls `on_ref` with every reference it resolves,
//! and when `on_ref` returns a replacement, writes it in place of the original (so discovery and
//! export can never disagree on what counts as a reference).
//!
//! HTML is the exception, for speed: the export rewrites it with `lol_html` ([`html`]), and
//! discovery reads it with [`scan`], a tokenizer that only reads (3.4 times faster on a real
//! documentation site, where discovery was half of a first crawl's CPU). Both hand every start
//! tag to one function ([`tag_refs`]) that decides what is a reference, and tests hold the two
//! readers to the same references, in the same order, on awkward documents and generated tag
//! soup; `bench/mirror-doc` checks every page of the site it crawls. Attribute values have their
//! character references decoded here, since both readers hand them over raw. What is a
//! reference:
//! - `href`, `src`, `poster`, `background`, `data-src`, `xlink:href` on every element (SVG
//!   `<image>` and `<use>` included); `<object data>`;
//! - `srcset`, `imagesrcset`, `data-srcset`, in any whitespace layout (the HTML candidate-list
//!   grammar, not a split on ", ");
//! - `<meta http-equiv=refresh content="N; url=...">`;
//! - `<base href>` changes the base of everything after it;
//! - inline `style` attributes and `<style>` elements, as CSS.
//!
//! CSS goes through `cssparser`'s tokenizer (the CSS Syntax spec's), so comments, escapes and
//! strings are handled as a browser does: `url(x)`, `url("x")`, `src("x")`, `@import "x"`, and
//! strings inside `image-set()` / `-webkit-image-set()`.
//!
//! Besides references, [`discover`] returns *guesses*: the URL-like string literals of inline
//! scripts, external scripts and JSON files ([`script`]). The crawler fetches them speculatively;
//! nothing else (export, verify) treats them as references.

use std::borrow::Cow;
use std::cell::RefCell;
use std::ops::Range;

use cssparser::{Parser, ParserInput, Token};
use url::Url;

use super::scope::resolve;

mod scan;
pub mod script;

/// Called with each resolved reference; returns a replacement to write instead (export), or
/// `None` to leave it as it is.
pub type OnRef<'a> = dyn FnMut(&Url) -> Option<String> + 'a;

/// Decodes HTML character references: numeric ones and the named ones that occur in URLs.
pub fn decode_entities(s: &str) -> Cow<'_, str> {
    if !s.contains('&') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let end = rest[1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '#'))
            .map(|e| e + 1)
            .unwrap_or(rest.len());
        let name = &rest[1..end];
        let decoded = if let Some(num) = name.strip_prefix('#') {
            let n = match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => num.parse::<u32>().ok(),
            };
            n.map(|n| {
                char::from_u32(n)
                    .filter(|c| *c != '\0')
                    .unwrap_or('\u{fffd}')
            })
        } else {
            match name {
                "amp" | "AMP" => Some('&'),
                "quot" | "QUOT" => Some('"'),
                "apos" => Some('\''),
                "lt" | "LT" => Some('<'),
                "gt" | "GT" => Some('>'),
                "nbsp" => Some('\u{a0}'),
                "sol" => Some('/'),
                "colon" => Some(':'),
                "quest" => Some('?'),
                "equals" => Some('='),
                "num" => Some('#'),
                "percnt" => Some('%'),
                "plus" => Some('+'),
                "comma" => Some(','),
                "period" => Some('.'),
                "lowbar" => Some('_'),
                "Tab" => Some('\t'),
                "NewLine" => Some('\n'),
                _ => None,
            }
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = rest[end..].strip_prefix(';').unwrap_or(&rest[end..]);
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Escapes `&` in a value written back into an attribute.
fn escape_amp(s: &str) -> String {
    s.replace('&', "&amp;")
}

/// One image candidate of a `srcset`: the URL's byte range in the (decoded) value.
fn srcset_urls(value: &str) -> Vec<Range<usize>> {
    // HTML's "parse a srcset attribute": skip whitespace and commas, take the URL up to
    // whitespace (trailing commas are not part of it), then skip the descriptors up to a comma
    // outside parentheses.
    let b = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b',') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut end = i;
        let had_commas = b[start..end].ends_with(b",");
        while end > start && b[end - 1] == b',' {
            end -= 1;
        }
        if end > start {
            out.push(start..end);
        }
        if had_commas {
            continue;
        }
        let mut depth = 0;
        while i < b.len() {
            match b[i] {
                b'(' => depth += 1,
                b')' => depth = (depth - 1).max(0),
                b',' if depth == 0 => break,
                _ => {}
            }
            i += 1;
        }
    }
    out
}

/// Applies `on_ref` to each range of `value`, returning the new value if anything changed.
fn rewrite_ranges(value: &str, ranges: &[(Range<usize>, String)]) -> String {
    let mut out = String::with_capacity(value.len());
    let mut at = 0;
    for (r, new) in ranges {
        out.push_str(&value[at..r.start]);
        out.push_str(new);
        at = r.end;
    }
    out.push_str(&value[at..]);
    out
}

/// The URL in a meta refresh `content` ("5; url=/next"), as a byte range.
fn refresh_url(content: &str) -> Option<Range<usize>> {
    let lower = content.to_ascii_lowercase();
    let semi = lower.find([';', ','])?;
    let after = &lower[semi + 1..];
    let skip = after.len() - after.trim_start().len();
    let mut start = semi + 1 + skip;
    if lower[start..].starts_with("url") {
        let eq = lower[start..].find('=')?;
        start += eq + 1;
        start += lower[start..].len() - lower[start..].trim_start().len();
    }
    let mut end = content.len();
    let trimmed = content[start..end].trim_end();
    end = start + trimmed.len();
    if let Some(q @ ('"' | '\'')) = content[start..end].chars().next() {
        start += 1;
        end = content[start..end]
            .find(q)
            .map(|e| start + e)
            .unwrap_or(end);
    }
    (end > start).then_some(start..end)
}

const URL_ATTRS: &[&str] = &[
    "href",
    "src",
    "poster",
    "background",
    "data-src",
    "xlink:href",
];
const SRCSET_ATTRS: &[&str] = &["srcset", "imagesrcset", "data-srcset"];

/// The elements that can hold a reference: only these reach the walker's element handler, so
/// the many elements without any (`<p>`, `<span class>`, `<li>`) cost nothing beyond parsing.
const REF_ELEMENTS: &str = "[href], [src], [poster], [background], [data-src], [xlink\\:href], \
    [srcset], [imagesrcset], [data-srcset], [style], object[data], meta[http-equiv]";

/// Whether an attribute (lower-case name) can hold a reference on some element.
fn is_ref_attr(name: &str) -> bool {
    URL_ATTRS.contains(&name)
        || SRCSET_ATTRS.contains(&name)
        || matches!(name, "style" | "data" | "content")
}

/// The references among one start tag's attributes, as both HTML readers see them (names
/// lower-case, values as written): calls `on_ref` with each and returns the edits it asked for,
/// as (attribute, new decoded value).
fn tag_refs<'v>(
    tag: &str,
    attrs: impl Iterator<Item = (&'v str, &'v str)> + Clone,
    base: &Url,
    on_ref: &mut OnRef<'_>,
) -> Vec<(String, String)> {
    let mut edits = Vec::new();
    for (name, raw) in attrs.clone() {
        if !is_ref_attr(name) {
            continue;
        }
        let is_url = URL_ATTRS.contains(&name);
        let value = decode_entities(raw);
        if is_url && tag != "base" || (name == "data" && tag == "object") {
            if let Some(new) = resolve(base, &value).and_then(|u| on_ref(&u)) {
                edits.push((name.to_string(), new));
            }
        } else if SRCSET_ATTRS.contains(&name) {
            let mut reps = Vec::new();
            for r in srcset_urls(&value) {
                if let Some(new) = resolve(base, &value[r.clone()]).and_then(|u| on_ref(&u)) {
                    reps.push((r, new));
                }
            }
            if !reps.is_empty() {
                edits.push((name.to_string(), rewrite_ranges(&value, &reps)));
            }
        } else if name == "style" {
            if let Some(new) = css_walk(&value, base, on_ref) {
                edits.push((name.to_string(), new));
            }
        } else if name == "content" && tag == "meta" {
            let refresh = attrs
                .clone()
                .find(|(n, _)| *n == "http-equiv")
                .is_some_and(|(_, h)| h.eq_ignore_ascii_case("refresh"));
            if let Some(r) = refresh.then(|| refresh_url(&value)).flatten() {
                if let Some(new) = resolve(base, &value[r.clone()]).and_then(|u| on_ref(&u)) {
                    edits.push((name.to_string(), rewrite_ranges(&value, &[(r, new)])));
                }
            }
        }
    }
    edits
}

/// Called with the text of each inline `<script>` and the base in force where it stands.
type OnScript<'a> = dyn FnMut(&str, &Url) + 'a;

/// Walks an HTML (or SVG) document. Returns the document with the replacements `on_ref` asked
/// for; unparseable input yields what could be parsed.
pub fn html(body: &[u8], base: &Url, on_ref: &mut OnRef<'_>) -> Vec<u8> {
    let base = RefCell::new(base.clone());
    let on_ref = RefCell::new(on_ref);
    let style_text = RefCell::new(String::new());
    let mut out = Vec::with_capacity(body.len());
    {
        let settings = lol_html::Settings::new()
            .append_element_content_handler(lol_html::element!("base[href]", |el| {
                if let Some(h) = el.get_attribute("href") {
                    let b = base.borrow().clone();
                    if let Ok(nb) = b.join(decode_entities(&h).trim()) {
                        *base.borrow_mut() = nb;
                    }
                }
                Ok(())
            }))
            .append_element_content_handler(lol_html::element!(REF_ELEMENTS, |el| {
                let b = base.borrow();
                // Only the attributes that can hold a reference (and http-equiv) are decoded. A
                // repeated attribute is dropped, as the HTML tokenizer drops it (lol_html keeps
                // it).
                let mut attrs: Vec<(String, String)> = Vec::new();
                for a in el.attributes() {
                    let name = a.name();
                    if (is_ref_attr(&name) || name == "http-equiv")
                        && !attrs.iter().any(|(n, _)| *n == name)
                    {
                        attrs.push((name, a.value()));
                    }
                }
                let pairs = attrs.iter().map(|(n, v)| (n.as_str(), v.as_str()));
                let edits = tag_refs(&el.tag_name(), pairs, &b, &mut **on_ref.borrow_mut());
                for (name, value) in edits {
                    // Values we write are decoded text; lol_html escapes the quotes.
                    let _ = el.set_attribute(&name, &escape_amp(&value));
                }
                Ok(())
            }))
            .append_element_content_handler(lol_html::text!("style", |t| {
                style_text.borrow_mut().push_str(t.as_str());
                if t.last_in_text_node() {
                    let text = std::mem::take(&mut *style_text.borrow_mut());
                    let b = base.borrow().clone();
                    let mut f = on_ref.borrow_mut();
                    if let Some(new) = css_walk(&text, &b, &mut **f) {
                        t.replace(&new, lol_html::html_content::ContentType::Html);
                    } else {
                        t.replace(&text, lol_html::html_content::ContentType::Html);
                    }
                } else {
                    // Held back until the whole text is known; written at the end.
                    t.remove();
                }
                Ok(())
            }));
        let mut rewriter =
            lol_html::HtmlRewriter::new(settings, |c: &[u8]| out.extend_from_slice(c));
        let _ = rewriter.write(body);
        let _ = rewriter.end();
    }
    out
}

/// Discovery's reading of an HTML document: the references [`html`] would find, and the text of
/// each `<script>` for `on_script`, read by [`scan`] rather than lol_html (see there why).
fn html_refs<'f>(
    body: &[u8],
    base: &Url,
    on_ref: &mut OnRef<'f>,
    on_script: Option<&mut OnScript<'f>>,
) {
    struct Refs<'a, 'b, 'c> {
        base: Url,
        on_ref: &'a mut OnRef<'c>,
        on_script: Option<&'b mut OnScript<'c>>,
    }
    impl scan::Sink for Refs<'_, '_, '_> {
        fn start_tag(&mut self, name: &str, attrs: &[scan::Attr<'_>]) {
            if name == "base" {
                if let Some(h) = attrs.iter().find(|a| a.name == "href") {
                    if let Ok(nb) = self.base.join(decode_entities(h.value).trim()) {
                        self.base = nb;
                    }
                }
            }
            let pairs = attrs.iter().map(|a| (&*a.name, a.value));
            tag_refs(name, pairs, &self.base, self.on_ref);
        }
        fn text(&mut self, element: &'static str, text: &str) {
            if element == "style" {
                css_walk(text, &self.base, self.on_ref);
            } else if let Some(f) = self.on_script.as_mut() {
                f(text, &self.base);
            }
        }
    }
    // The common case, valid UTF-8, is checked by the faster of the two validators.
    let text = match std::str::from_utf8(body) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(body),
    };
    let mut refs = Refs {
        base: base.clone(),
        on_ref,
        on_script,
    };
    scan::scan(&text, &mut refs);
}

/// Walks a stylesheet. Returns the rewritten text.
pub fn css(text: &str, base: &Url, on_ref: &mut OnRef<'_>) -> String {
    css_walk(text, base, on_ref).unwrap_or_else(|| text.to_string())
}

/// The rewritten text, or `None` when nothing was replaced.
fn css_walk(text: &str, base: &Url, on_ref: &mut OnRef<'_>) -> Option<String> {
    let mut found = Vec::new();
    let mut input = ParserInput::new(text);
    let mut p = Parser::new(&mut input);
    css_tokens(&mut p, CssContext::Top, &mut found);
    let mut edits = Vec::new();
    for (range, raw, quoted) in found {
        if let Some(new) = resolve(base, &raw).and_then(|u| on_ref(&u)) {
            let new = if quoted {
                format!("\"{new}\"")
            } else {
                format!("url(\"{new}\")")
            };
            edits.push((range, new));
        }
    }
    (!edits.is_empty()).then(|| rewrite_ranges(text, &edits))
}

#[derive(Clone, Copy, PartialEq)]
enum CssContext {
    Top,
    /// Inside `url(` or `src(`: a string here is a URL.
    UrlFunction,
    /// Inside `image-set(`: a bare string here is a URL too.
    ImageSet,
    Other,
}

/// Collects (byte range, URL text, quoted) for every URL token, recursing into blocks.
fn css_tokens(
    p: &mut Parser<'_, '_>,
    ctx: CssContext,
    out: &mut Vec<(Range<usize>, String, bool)>,
) {
    let mut after_import = false;
    loop {
        let start = p.position().byte_index();
        let tok = match p.next_including_whitespace_and_comments() {
            Ok(t) => t.clone(),
            Err(_) => break,
        };
        let end = p.position().byte_index();
        let mut import_next = false;
        match tok {
            Token::UnquotedUrl(u) => out.push((start..end, u.to_string(), false)),
            Token::QuotedString(s)
                if after_import
                    || matches!(ctx, CssContext::UrlFunction | CssContext::ImageSet) =>
            {
                out.push((start..end, s.to_string(), true))
            }
            Token::AtKeyword(k) if k.eq_ignore_ascii_case("import") => import_next = true,
            Token::WhiteSpace(_) | Token::Comment(_) => import_next = after_import,
            Token::Function(name) => {
                let sub = match name.to_ascii_lowercase().as_str() {
                    "url" | "src" => CssContext::UrlFunction,
                    "image-set" | "-webkit-image-set" => CssContext::ImageSet,
                    _ => CssContext::Other,
                };
                let _ = p.parse_nested_block(|p| {
                    css_tokens(p, sub, out);
                    Ok::<(), cssparser::ParseError<'_, ()>>(())
                });
            }
            Token::ParenthesisBlock | Token::SquareBracketBlock | Token::CurlyBracketBlock => {
                let _ = p.parse_nested_block(|p| {
                    css_tokens(p, CssContext::Other, out);
                    Ok::<(), cssparser::ParseError<'_, ()>>(())
                });
            }
            _ => {}
        }
        after_import = import_next;
    }
}

/// A web-app manifest: `icons[].src`, `screenshots[].src`, `shortcuts[].url` and their icons,
/// `start_url`. Returns the rewritten JSON when `on_ref` replaced something.
pub fn manifest(body: &[u8], base: &Url, on_ref: &mut OnRef<'_>) -> Option<Vec<u8>> {
    let mut v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let mut changed = false;
    fn visit(
        v: &mut serde_json::Value,
        key: Option<&str>,
        base: &Url,
        on_ref: &mut OnRef<'_>,
        changed: &mut bool,
    ) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, child) in m.iter_mut() {
                    visit(child, Some(k), base, on_ref, changed);
                }
            }
            serde_json::Value::Array(a) => a
                .iter_mut()
                .for_each(|c| visit(c, key.filter(|k| *k != "src"), base, on_ref, changed)),
            serde_json::Value::String(s) if matches!(key, Some("src" | "url" | "start_url")) => {
                if let Some(new) = resolve(base, s).and_then(|u| on_ref(&u)) {
                    *s = new;
                    *changed = true;
                }
            }
            _ => {}
        }
    }
    visit(&mut v, None, base, on_ref, &mut changed);
    changed.then(|| serde_json::to_vec_pretty(&v).unwrap_or_default())
}

/// What a sitemap lists: pages (`<url>`) with their `<lastmod>` as written, and child
/// sitemaps (`<sitemap>` in a sitemap index).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SitemapEntries {
    pub pages: Vec<(Url, Option<String>)>,
    pub sitemaps: Vec<Url>,
}

/// The text of the first `<tag>...</tag>` in `block`, entities and CDATA unwrapped.
fn xml_text<'a>(block: &'a str, tag: &str) -> Option<Cow<'a, str>> {
    let open = format!("<{tag}>");
    let start = block.find(&open)? + open.len();
    let end = block[start..].find(&format!("</{tag}>"))? + start;
    let raw = block[start..end].trim();
    let raw = raw
        .strip_prefix("<![CDATA[")
        .and_then(|r| r.strip_suffix("]]>"))
        .unwrap_or(raw);
    Some(decode_entities(raw))
}

pub fn sitemap_entries(body: &[u8], base: &Url) -> SitemapEntries {
    let text = String::from_utf8_lossy(body);
    let mut out = SitemapEntries::default();
    for (tag, is_page) in [("url", true), ("sitemap", false)] {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        let mut rest = &text[..];
        while let Some(i) = rest.find(&open) {
            rest = &rest[i + open.len()..];
            let end = rest.find(&close).unwrap_or(rest.len());
            let block = &rest[..end];
            if let Some(u) = xml_text(block, "loc").and_then(|l| resolve(base, &l)) {
                if is_page {
                    out.pages
                        .push((u, xml_text(block, "lastmod").map(|l| l.to_string())));
                } else {
                    out.sitemaps.push(u);
                }
            }
            rest = &rest[end..];
        }
    }
    out
}

/// The `<loc>` URLs of a sitemap or sitemap index.
pub fn sitemap(body: &[u8], base: &Url) -> Vec<Url> {
    let e = sitemap_entries(body, base);
    e.pages
        .into_iter()
        .map(|(u, _)| u)
        .chain(e.sitemaps)
        .collect()
}

/// The media type of a Content-Type value, lower-case, parameters dropped ("text/html").
pub fn media_type(content_type: Option<&str>) -> String {
    content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

pub fn is_html(content_type: Option<&str>) -> bool {
    matches!(
        media_type(content_type).as_str(),
        "text/html" | "application/xhtml+xml"
    )
}

/// Whether a response of this type at this URL can hold references or guesses at all (so
/// whether its stored body is worth reading): HTML, SVG, CSS, manifests, XML (sitemaps),
/// scripts and JSON.
pub fn may_refer(content_type: Option<&str>, url: &Url) -> bool {
    let ct = media_type(content_type);
    matches!(
        ct.as_str(),
        "text/html"
            | "application/xhtml+xml"
            | "image/svg+xml"
            | "text/css"
            | "application/manifest+json"
            | "application/xml"
            | "text/xml"
    ) || is_script(&ct)
        || is_json(&ct)
        || url.path().to_ascii_lowercase().ends_with(".webmanifest")
}

fn is_script(media_type: &str) -> bool {
    matches!(
        media_type,
        "text/javascript"
            | "application/javascript"
            | "application/x-javascript"
            | "application/ecmascript"
            | "text/ecmascript"
    )
}

fn is_json(media_type: &str) -> bool {
    media_type == "application/json"
        || media_type.starts_with("application/") && media_type.ends_with("+json")
}

/// What kind of document a body is, for reference discovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Html,
    Css,
    Manifest,
    Sitemap,
    /// JavaScript: read for guesses only.
    Script,
    /// JSON other than a web-app manifest: read for guesses only.
    Json,
    Other,
}

impl Kind {
    /// From the content type, the URL, and (for XML) the first bytes.
    pub fn of(content_type: Option<&str>, url: &Url, body: &[u8]) -> Kind {
        let ct = media_type(content_type);
        let path = url.path().to_ascii_lowercase();
        match ct.as_str() {
            "text/html" | "application/xhtml+xml" | "image/svg+xml" => Kind::Html,
            "text/css" => Kind::Css,
            "application/manifest+json" => Kind::Manifest,
            "application/json" if path.ends_with("manifest.json") => Kind::Manifest,
            _ if path.ends_with(".webmanifest") => Kind::Manifest,
            "application/xml" | "text/xml" => {
                let head = String::from_utf8_lossy(&body[..body.len().min(1024)]).to_string();
                if head.contains("<urlset") || head.contains("<sitemapindex") {
                    Kind::Sitemap
                } else {
                    Kind::Other
                }
            }
            ct if is_script(ct) => Kind::Script,
            ct if is_json(ct) => Kind::Json,
            _ => Kind::Other,
        }
    }
}

/// What a document names: its references, and the guesses its scripts and JSON suggest (not
/// counting those that are references too).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub refs: Vec<Url>,
    pub guesses: Vec<Url>,
}

/// The references of a body of the given kind (as [`references`]) and its guesses.
pub fn discover(kind: Kind, body: &[u8], base: &Url) -> Discovered {
    let mut guesses = Vec::new();
    let refs = match kind {
        Kind::Html => {
            let mut refs = Vec::new();
            let mut push = |u: &Url| {
                refs.push(u.clone());
                None
            };
            let mut scripts = |text: &str, base: &Url| {
                if guesses.len() < script::MAX_GUESSES {
                    guesses.extend(script::urls(text, base));
                }
            };
            html_refs(body, base, &mut push, Some(&mut scripts));
            refs
        }
        Kind::Script | Kind::Json => {
            guesses = script::urls(&String::from_utf8_lossy(body), base);
            Vec::new()
        }
        kind => references(kind, body, base),
    };
    if !guesses.is_empty() {
        let known: std::collections::HashSet<&Url> = refs.iter().collect();
        let mut seen = std::collections::HashSet::new();
        guesses.retain(|g| !known.contains(g) && seen.insert(g.clone()));
        guesses.truncate(script::MAX_GUESSES);
    }
    Discovered { refs, guesses }
}

/// Every reference in a body of the given kind (duplicates included, in document order).
pub fn references(kind: Kind, body: &[u8], base: &Url) -> Vec<Url> {
    let mut found = Vec::new();
    let mut push = |u: &Url| {
        found.push(u.clone());
        None
    };
    match kind {
        Kind::Html => {
            html_refs(body, base, &mut push, None);
        }
        Kind::Css => {
            css(&String::from_utf8_lossy(body), base, &mut push);
        }
        Kind::Manifest => {
            manifest(body, base, &mut push);
        }
        Kind::Sitemap => return sitemap(body, base),
        Kind::Script | Kind::Json | Kind::Other => {}
    }
    found
}

#[cfg(test)]
mod tests;
