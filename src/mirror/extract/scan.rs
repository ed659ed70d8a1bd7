//! A read-only HTML tokenizer for reference discovery: it reports each start tag (its name and
//! raw attribute values) and the text of `<style>` and `<script>` elements, and builds nothing
//! else.
//!
//! Why it exists beside lol_html: discovery reads every page of every crawl, and lol_html, which
//! is built to rewrite a stream, runs its selector machine on every element once any handler
//! looks at attributes. Over the 530 pages of Python's documentation that cost 485 ms of CPU
//! per crawl, about half of a whole first crawl; this reader does the same work in 142 ms
//! (`bench/mirror-doc` shows the effect on the crawl). lol_html stays the rewriter (export);
//! the tests hold both to the same references on a table of awkward documents and generated
//! tag soup (`scan_and_lol_html_agree*`), and `bench/mirror-doc` on every page it crawls.
//!
//! What it reads follows the WHATWG tokenizer: comments (`<!-->` and `--!>` included), bogus
//! comments (`<!doctype>`, `<?xml?>`, `</ x>`), end tags (their attributes skipped with their
//! quotes), start tags (names lower-cased, a repeated attribute dropped, a tag cut off by the
//! end of input not reported), and the text states the tree builder would switch to: RCDATA
//! (`title`, `textarea`), RAWTEXT (`style`, `iframe`, `xmp`, `noembed`, `noframes`, and
//! `noscript`, as a browser with scripts reads it), script data with its escaped and
//! double-escaped states, and PLAINTEXT. Which of those apply is decided as lol_html's
//! tree-builder simulation decides it, so both see the same tags: only in the HTML namespace;
//! `<svg>` and `<math>` enter foreign content (where `<![CDATA[` is text) and leave it at their
//! end tag or a breakout tag (`<div>`, `<p>`, `<font color>` ...); SVG `desc`, `title`,
//! `foreignObject`, MathML `mi` ... `mtext` and `annotation-xml encoding=text/html` are HTML
//! again inside.
//!
//! Where the two differ, this reader follows the tokenizer, as a browser does:
//! - lol_html (in its default strict mode) stops at a text element whose parsing depends on the
//!   open elements (`<select><xmp>`), so the export leaves the rest of such a page as it is;
//!   this reader reads on;
//! - after a `<style>` start tag that ends in a valueless attribute (`<style a=>`), lol_html
//!   reads the content as markup; this reader reads it as raw text.

use std::borrow::Cow;

/// One attribute of a start tag: the name lower-cased, the value as written (character
/// references not decoded).
pub(super) struct Attr<'a> {
    pub name: Cow<'a, str>,
    pub value: &'a str,
}

/// What the reader reports.
pub(super) trait Sink {
    fn start_tag(&mut self, name: &str, attrs: &[Attr<'_>]);
    /// One text node of a `style` or `script` element (`element` is that name).
    fn text(&mut self, element: &'static str, text: &str);
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ns {
    Html,
    Svg,
    MathMl,
}

/// How the text after a start tag is read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TextType {
    Data,
    /// RCDATA or RAWTEXT: up to the matching end tag, nothing inside is a tag.
    Raw,
    Script,
    Plain,
}

fn is_space(c: u8) -> bool {
    matches!(c, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

/// Whether `b[at..]` is `</name` followed by a character that ends a tag name.
fn is_end_tag(b: &[u8], at: usize, name: &str) -> bool {
    let n = name.len();
    b.len() > at + 2 + n
        && b[at] == b'<'
        && b[at + 1] == b'/'
        && b[at + 2..at + 2 + n].eq_ignore_ascii_case(name.as_bytes())
        && matches!(b[at + 2 + n], b'/' | b'>') | is_space(b[at + 2 + n])
}

/// Where the raw text starting at `from` ends: the `<` of `</name` (or the end of input).
fn raw_end(html: &str, from: usize, name: &str) -> usize {
    let b = html.as_bytes();
    let mut at = from;
    while let Some(off) = memchr::memchr(b'<', &b[at..]) {
        let lt = at + off;
        if is_end_tag(b, lt, name) {
            return lt;
        }
        at = lt + 1;
    }
    b.len()
}

/// Where the script data starting at `from` ends, following the escaped (`<!--`) and
/// double-escaped (`<!--<script>`) states, in which `</script>` does not always end it.
fn script_end(html: &str, from: usize) -> usize {
    #[derive(PartialEq)]
    enum St {
        Data,
        Escaped,
        Double,
    }
    let b = html.as_bytes();
    let mut st = St::Data;
    let mut dashes = 0;
    let mut p = from;
    while p < b.len() {
        if st == St::Data {
            let Some(off) = memchr::memchr(b'<', &b[p..]) else {
                return b.len();
            };
            p += off;
            if is_end_tag(b, p, "script") {
                return p;
            }
            if b[p + 1..].starts_with(b"!--") {
                st = St::Escaped;
                dashes = 2;
                p += 4;
            } else {
                p += 1;
            }
            continue;
        }
        match b[p] {
            b'-' => {
                dashes += 1;
                p += 1;
                continue;
            }
            b'>' if dashes >= 2 => st = St::Data,
            b'<' if st == St::Escaped => {
                if is_end_tag(b, p, "script") {
                    return p;
                }
                let name = &b[p + 1..];
                if name.len() > 6
                    && name[..6].eq_ignore_ascii_case(b"script")
                    && (matches!(name[6], b'/' | b'>') || is_space(name[6]))
                {
                    st = St::Double;
                    p += 7;
                    dashes = 0;
                    continue;
                }
            }
            b'<' if st == St::Double && is_end_tag(b, p, "script") => {
                st = St::Escaped;
                p += 8;
                dashes = 0;
                continue;
            }
            _ => {}
        }
        dashes = 0;
        p += 1;
    }
    b.len()
}

struct Reader<'a, 's, S: Sink> {
    html: &'a str,
    sink: &'s mut S,
    ns: Vec<Ns>,
    attrs: Vec<Attr<'a>>,
    /// The open elements as lol_html's selector machine keeps them (an element is pushed
    /// unless it is void in HTML or self-closing in foreign content; an end tag pops up to the
    /// nearest element of its name), so text is `style` or `script` text exactly where its
    /// handlers would see it: inside such an element at any depth.
    open: Vec<Cow<'a, str>>,
    styles: usize,
    scripts: usize,
}

/// Reads `html` and reports to `sink`. Never fails: whatever cannot be read as markup is text.
pub(super) fn scan<S: Sink>(html: &str, sink: &mut S) {
    let mut r = Reader {
        html,
        sink,
        ns: vec![Ns::Html],
        attrs: Vec::new(),
        open: Vec::new(),
        styles: 0,
        scripts: 0,
    };
    r.run();
}

impl<'a, S: Sink> Reader<'a, '_, S> {
    fn current(&self) -> Ns {
        *self.ns.last().unwrap_or(&Ns::Html)
    }

    fn leave(&mut self) {
        if self.ns.len() > 1 {
            self.ns.pop();
        }
    }

    /// Reports a text node to the `style` and `script` elements it is inside of, if any.
    fn text_node(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if self.styles > 0 {
            self.sink.text("style", text);
        }
        if self.scripts > 0 {
            self.sink.text("script", text);
        }
    }

    fn count(&mut self, name: &str, by: isize) {
        match name {
            "style" => self.styles = self.styles.saturating_add_signed(by),
            "script" => self.scripts = self.scripts.saturating_add_signed(by),
            _ => {}
        }
    }

    fn push(&mut self, name: Cow<'a, str>) {
        self.count(&name, 1);
        self.open.push(name);
    }

    fn pop_up_to(&mut self, name: &str) {
        if let Some(at) = self.open.iter().rposition(|n| n == name) {
            for n in self.open.split_off(at) {
                self.count(&n, -1);
            }
        }
    }

    /// Index just past the next `>` at or after `from` (the end of a bogus comment).
    fn past_gt(&self, from: usize) -> usize {
        memchr::memchr(b'>', &self.html.as_bytes()[from..])
            .map_or(self.html.len(), |o| from + o + 1)
    }

    fn run(&mut self) {
        let html = self.html;
        let b = html.as_bytes();
        let mut i = 0;
        while let Some(off) = memchr::memchr(b'<', &b[i..]) {
            let lt = i + off;
            self.text_node(&html[i..lt]);
            i = lt + 1;
            match b.get(i) {
                Some(b'!') => {
                    let rest = &b[i + 1..];
                    if rest.starts_with(b"--") {
                        i = self.comment_end(i + 3);
                    } else if rest.starts_with(b"[CDATA[") && self.current() != Ns::Html {
                        let start = i + 8;
                        let end = html[start..].find("]]>").map_or(b.len(), |o| start + o);
                        self.text_node(&html[start..end]);
                        i = (end + 3).min(b.len());
                    } else {
                        i = self.past_gt(i);
                    }
                }
                Some(b'/') => match b.get(i + 1) {
                    Some(c) if c.is_ascii_alphabetic() => match self.tag(i + 1, false) {
                        Some(end) => i = end,
                        None => return,
                    },
                    Some(b'>') => i += 2,
                    Some(_) => i = self.past_gt(i),
                    None => return,
                },
                Some(c) if c.is_ascii_alphabetic() => match self.tag(i, true) {
                    Some(end) => i = end,
                    None => return,
                },
                Some(b'?') => i = self.past_gt(i),
                _ => self.text_node("<"),
            }
        }
        self.text_node(&html[i..]);
    }

    /// Index just past the comment whose text starts at `from` (after `<!--`).
    fn comment_end(&self, from: usize) -> usize {
        let rest = &self.html.as_bytes()[from..];
        if rest.starts_with(b">") {
            return from + 1;
        }
        if rest.starts_with(b"->") {
            return from + 2;
        }
        let mut at = from;
        while let Some(off) = memchr::memmem::find(&self.html.as_bytes()[at..], b"--") {
            let dd = at + off;
            let after = &self.html.as_bytes()[dd + 2..];
            if after.starts_with(b">") {
                return dd + 3;
            }
            if after.starts_with(b"!>") {
                return dd + 4;
            }
            at = dd + 1;
        }
        self.html.len()
    }

    /// Reads the tag whose name starts at `at`; reports a start tag and applies what follows
    /// from it. Returns the index after it, or `None` when the input ends inside it.
    fn tag(&mut self, at: usize, start: bool) -> Option<usize> {
        let html = self.html;
        let b = html.as_bytes();
        let mut p = at;
        while p < b.len() && !(is_space(b[p]) || b[p] == b'/' || b[p] == b'>') {
            p += 1;
        }
        let name = lower(&html[at..p]);
        self.attrs.clear();
        let mut self_closing = false;
        loop {
            while p < b.len() && is_space(b[p]) {
                p += 1;
            }
            match *b.get(p)? {
                b'>' => {
                    p += 1;
                    break;
                }
                b'/' => {
                    p += 1;
                    if b.get(p) == Some(&b'>') {
                        self_closing = true;
                        p += 1;
                        break;
                    }
                    continue;
                }
                _ => {}
            }
            let name_start = p;
            p += 1;
            while p < b.len() && !(is_space(b[p]) || matches!(b[p], b'/' | b'>' | b'=')) {
                p += 1;
            }
            let attr_name = &html[name_start..p];
            while p < b.len() && is_space(b[p]) {
                p += 1;
            }
            let mut value = "";
            let mut close = false;
            if b.get(p) == Some(&b'=') {
                p += 1;
                while p < b.len() && is_space(b[p]) {
                    p += 1;
                }
                match *b.get(p)? {
                    q @ (b'"' | b'\'') => {
                        let end = p + 1 + memchr::memchr(q, &b[p + 1..])?;
                        value = &html[p + 1..end];
                        p = end + 1;
                    }
                    b'>' => {
                        p += 1;
                        close = true;
                    }
                    _ => {
                        let vs = p;
                        while p < b.len() && !(is_space(b[p]) || b[p] == b'>') {
                            p += 1;
                        }
                        value = &html[vs..p];
                    }
                }
            }
            if start {
                let attr_name = lower(attr_name);
                if !self.attrs.iter().any(|a| a.name == attr_name) {
                    self.attrs.push(Attr {
                        name: attr_name,
                        value,
                    });
                }
            }
            if close {
                break;
            }
        }
        if start {
            self.start_tag(name, self_closing, p)
        } else {
            self.end_tag(&name);
            Some(p)
        }
    }

    fn attr(&self, name: &str) -> Option<&'a str> {
        self.attrs.iter().find(|a| a.name == name).map(|a| a.value)
    }

    /// Reports a start tag that ends before `p`, and reads the text it opens, if that is not
    /// markup. Returns where markup resumes.
    fn start_tag(&mut self, name: Cow<'a, str>, self_closing: bool, p: usize) -> Option<usize> {
        self.sink.start_tag(&name, &self.attrs);
        let text = match (self.current(), &*name) {
            (_, "svg") => {
                self.ns.push(Ns::Svg);
                TextType::Data
            }
            (_, "math") => {
                self.ns.push(Ns::MathMl);
                TextType::Data
            }
            (Ns::Html, _) => match &*name {
                "textarea" | "title" | "style" | "iframe" | "xmp" | "noembed" | "noframes"
                | "noscript" => TextType::Raw,
                "script" => TextType::Script,
                "plaintext" => TextType::Plain,
                _ => TextType::Data,
            },
            (ns, name) => {
                if is_breakout(name)
                    || name == "font"
                        && (self.attr("color").is_some()
                            || self.attr("size").is_some()
                            || self.attr("face").is_some())
                {
                    self.leave();
                } else if !self_closing
                    && (ns == Ns::Svg && matches!(name, "desc" | "title" | "foreignobject")
                        || ns == Ns::MathMl && matches!(name, "mi" | "mo" | "mn" | "ms" | "mtext")
                        || ns == Ns::MathMl
                            && name == "annotation-xml"
                            && self.attr("encoding").is_some_and(|e| {
                                e.eq_ignore_ascii_case("text/html")
                                    || e.eq_ignore_ascii_case("application/xhtml+xml")
                            }))
                {
                    self.ns.push(Ns::Html);
                }
                TextType::Data
            }
        };
        // The namespace after this tag decides, as in lol_html.
        let pushed = match self.current() {
            Ns::Html => !is_void(&name),
            _ => !self_closing,
        };
        let html = self.html;
        let end = match text {
            TextType::Data => p,
            TextType::Plain => return None,
            TextType::Raw => raw_end(html, p, &name),
            TextType::Script => script_end(html, p),
        };
        if pushed {
            self.push(name);
        }
        self.text_node(&html[p..end]);
        Some(end)
    }

    fn end_tag(&mut self, name: &str) {
        match self.current() {
            Ns::Html => {
                let prev = self.ns.len().checked_sub(2).map(|i| self.ns[i]);
                if prev == Some(Ns::MathMl)
                    && matches!(name, "mi" | "mo" | "mn" | "ms" | "mtext" | "annotation-xml")
                    || prev == Some(Ns::Svg) && matches!(name, "desc" | "title" | "foreignobject")
                {
                    self.leave();
                }
            }
            ns => {
                if ns == Ns::Svg && name == "svg"
                    || ns == Ns::MathMl && name == "math"
                    || matches!(name, "p" | "br")
                {
                    self.leave();
                }
            }
        }
        self.pop_up_to(name);
    }
}

/// The elements lol_html never pushes in HTML content (the void ones, and two obsolete ones).
fn is_void(name: &str) -> bool {
    matches!(
        name,
        "area"
            | "base"
            | "basefont"
            | "bgsound"
            | "br"
            | "col"
            | "embed"
            | "hr"
            | "img"
            | "input"
            | "keygen"
            | "link"
            | "meta"
            | "param"
            | "source"
            | "track"
            | "wbr"
    )
}

/// The HTML elements whose start tag ends foreign content.
fn is_breakout(name: &str) -> bool {
    matches!(
        name,
        "b" | "big"
            | "blockquote"
            | "body"
            | "br"
            | "center"
            | "code"
            | "dd"
            | "div"
            | "dl"
            | "dt"
            | "em"
            | "embed"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "head"
            | "hr"
            | "i"
            | "img"
            | "li"
            | "listing"
            | "menu"
            | "meta"
            | "nobr"
            | "ol"
            | "p"
            | "pre"
            | "ruby"
            | "s"
            | "small"
            | "span"
            | "strong"
            | "strike"
            | "sub"
            | "sup"
            | "table"
            | "tt"
            | "u"
            | "ul"
            | "var"
    )
}

fn lower(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|c| c.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}
