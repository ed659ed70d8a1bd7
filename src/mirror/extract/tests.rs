use super::*;

fn base() -> Url {
    Url::parse("https://www.example.test/dir/page").unwrap()
}

fn refs(kind: Kind, body: &str) -> Vec<String> {
    references(kind, body.as_bytes(), &base())
        .into_iter()
        .map(String::from)
        .collect()
}

fn w(p: &str) -> String {
    format!("https://www.example.test{p}")
}

#[test]
fn entities_are_decoded() {
    assert_eq!(
        decode_entities("a?x=1&amp;y=2&#38;z=3&#x26;q"),
        "a?x=1&y=2&z=3&q"
    );
    assert_eq!(decode_entities("&unknown; &amp"), "&unknown; &");
    assert_eq!(decode_entities("&#0;&#xFFFFFFFF;"), "\u{fffd}\u{fffd}");
    assert_eq!(decode_entities("plain"), "plain");
}

#[test]
fn srcset_in_any_layout() {
    let v = "a.png 1x,b.png   2x,\n   c.png\n 600w, d,e.png 3x , data:image/png;base64,AAAA 4x, f(1).png 5x";
    let urls: Vec<&str> = srcset_urls(v).into_iter().map(|r| &v[r]).collect();
    assert_eq!(
        urls,
        [
            "a.png",
            "b.png",
            "c.png",
            "d,e.png",
            "data:image/png;base64,AAAA",
            "f(1).png"
        ]
    );
    let multi = "\n      ml-300.png 300w,\n      ml-600.png 600w\n    ";
    let urls: Vec<&str> = srcset_urls(multi).into_iter().map(|r| &multi[r]).collect();
    assert_eq!(urls, ["ml-300.png", "ml-600.png"]);
    assert!(srcset_urls(" , ,, ").is_empty());
}

#[test]
fn every_html_reference_kind() {
    let doc = r##"<!doctype html><html><head>
        <link rel="stylesheet" href="/s.css?v=3&amp;x=1">
        <link rel="preload" as="image" imagesrcset="pre-1.png 1x, pre-2.png 2x">
        <link rel="icon" href="/favicon.ico"><link rel="manifest" href="/app.webmanifest">
        <meta http-equiv="Refresh" content="30; URL='/refreshed'">
        <style>body { background: url(/bg.png) } @import "/imp.css"; /* url(/commented.png) */</style>
        <script src="/app.js?v=3"></script>
      </head><body style="background-image: url('/inline.png')">
        <a href="sub/child">c</a><a href="#top">t</a><a href="javascript:x()">j</a><a href="mailto:a@b">m</a>
        <img src="i.png" srcset="
             ml-300.png 300w,
             ml-600.png 600w" data-src="lazy.png" data-srcset="lazy-2.png 2x">
        <picture><source srcset="/p.webp 1x, /p2.webp 2x" type="image/webp"></picture>
        <video poster="/poster.jpg"><source src="/v.mp4"></video>
        <object data="/o.svg"></object>
        <svg><image href="/svg-img.png"/><use xlink:href="/sprite.svg#i"/></svg>
        <a href="https://www.example.test/absolute">abs</a><a href="//cdn.example.test/x.js">cdn</a>
      </body></html>"##;
    let got = refs(Kind::Html, doc);
    for want in [
        "/s.css?v=3&x=1",
        "/dir/pre-1.png",
        "/dir/pre-2.png",
        "/favicon.ico",
        "/app.webmanifest",
        "/refreshed",
        "/bg.png",
        "/imp.css",
        "/app.js?v=3",
        "/inline.png",
        "/dir/sub/child",
        "/dir/i.png",
        "/dir/ml-300.png",
        "/dir/ml-600.png",
        "/dir/lazy.png",
        "/dir/lazy-2.png",
        "/p.webp",
        "/p2.webp",
        "/poster.jpg",
        "/v.mp4",
        "/o.svg",
        "/svg-img.png",
        "/sprite.svg",
        "/absolute",
    ] {
        assert!(got.contains(&w(want)), "missing {want} in {got:#?}");
    }
    assert!(got.contains(&"https://cdn.example.test/x.js".to_string()));
    assert!(
        !got.iter().any(|u| u.contains("commented")),
        "comments are not references"
    );
    assert!(!got
        .iter()
        .any(|u| u.starts_with("javascript") || u.starts_with("mailto")));
}

#[test]
fn base_href_changes_the_base() {
    let got = refs(
        Kind::Html,
        r#"<head><base href="/other/"></head><a href="x">x</a>"#,
    );
    assert_eq!(got, [w("/other/x")]);
}

#[test]
fn css_reference_forms() {
    let sheet = r#"
        @import url(a.css); @import 'b.css' screen; @import "c.css";
        .x { background: url( d.png ) } .y { background: url("e.png") } .z { background: URL('f.png') }
        .i { background-image: image-set("g.png" 1x, url(h.png) 2x); }
        .w { background-image: -webkit-image-set('k.png' 1x) }
        @font-face { src: url(font.woff2) format("woff2"), url("font.woff") format("woff") }
        .s::after { content: "not-a-url.png" } /* url(no.png) */
        .esc { background: url(sp\ ace.png) }
    "#;
    let got = refs(Kind::Css, sheet);
    let want: Vec<String> = [
        "a.css",
        "b.css",
        "c.css",
        "d.png",
        "e.png",
        "f.png",
        "g.png",
        "h.png",
        "k.png",
        "font.woff2",
        "font.woff",
        "sp%20ace.png",
    ]
    .iter()
    .map(|p| w(&format!("/dir/{p}")))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn rewriting_keeps_everything_else() {
    let doc = r#"<p class="a">x</p><img src="/a.png" srcset="/a.png 1x,
  /b.png 2x" alt="&quot;q&quot;"><style>.x{background:url(/c.png)}</style>"#;
    let mut map = |u: &Url| Some(format!("local{}", u.path()));
    let out = String::from_utf8(html(doc.as_bytes(), &base(), &mut map)).unwrap();
    assert!(out.contains(r#"src="local/a.png""#), "{out}");
    assert!(out.contains("local/a.png 1x,\n  local/b.png 2x"), "{out}");
    assert!(out.contains(r#"url("local/c.png")"#), "{out}");
    assert!(
        out.contains(r#"<p class="a">x</p>"#) && out.contains(r#"alt="&quot;q&quot;""#),
        "{out}"
    );
    let css_out = css("a{b:url(/x.png)} @import '/y.css';", &base(), &mut map);
    assert_eq!(css_out, r#"a{b:url("local/x.png")} @import "local/y.css";"#);
}

#[test]
fn manifest_and_sitemap() {
    let m = br#"{"name":"x","start_url":"/start","icons":[{"src":"/i-192.png","sizes":"192x192"}],
                "shortcuts":[{"url":"/sc","icons":[{"src":"sc.png"}]}]}"#;
    let got: Vec<String> = references(Kind::Manifest, m, &base())
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(
        got.contains(&w("/i-192.png"))
            && got.contains(&w("/dir/sc.png"))
            && got.contains(&w("/start"))
    );
    let idx = br#"<sitemapindex><sitemap><loc>/s1.xml</loc><lastmod>2026-01-01</lastmod></sitemap></sitemapindex>"#;
    assert_eq!(
        sitemap_entries(idx, &base()).sitemaps,
        [Url::parse(&w("/s1.xml")).unwrap()]
    );
    let dated = br#"<urlset><url><loc>/a</loc><lastmod>2026-11-24T10:00:00+00:00</lastmod></url><url><loc>/b</loc></url></urlset>"#;
    let e = sitemap_entries(dated, &base());
    assert_eq!(e.pages[0].1.as_deref(), Some("2026-11-24T10:00:00+00:00"));
    assert_eq!(e.pages[1].1, None);
    let sm = br#"<?xml version="1.0"?><urlset xmlns="x"><url><loc> https://www.example.test/a?x=1&amp;y=2 </loc></url>
                 <url><loc><![CDATA[https://www.example.test/b]]></loc></url><url><loc>javascript:x</loc></url></urlset>"#;
    assert_eq!(
        Kind::of(Some("application/xml"), &base(), sm),
        Kind::Sitemap
    );
    let got: Vec<String> = references(Kind::Sitemap, sm, &base())
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(got, [w("/a?x=1&y=2"), w("/b")]);
}

#[test]
fn garbage_does_not_panic() {
    for junk in [
        &b"\xff\xfe<a href=\"\xc3\x28\">"[..],
        b"<a href=",
        b"<style>url(",
        b"<<<>>>\0\0",
        b"<meta http-equiv=refresh content=\";url=\">",
    ] {
        let _ = references(Kind::Html, junk, &base());
        let _ = references(Kind::Css, junk, &base());
        let _ = references(Kind::Manifest, junk, &base());
        let _ = references(Kind::Sitemap, junk, &base());
    }
}

#[test]
fn guesses_come_from_inline_scripts_external_scripts_and_json() {
    let page = br#"<a href="/linked.json">x</a>
<script>fetch("/linked.json"); fetch("/early.json")</script>
<base href="/sub/">
<script>load("later.json")</script><script src="app.js"></script>
<p>"/in-text.json"</p><style>a { background: url("/bg.png") }</style>"#;
    let found = discover(Kind::Html, page, &base());
    let s = |v: &[Url]| v.iter().map(|u| u.to_string()).collect::<Vec<_>>();
    assert_eq!(
        s(&found.refs),
        [w("/linked.json"), w("/sub/app.js"), w("/bg.png")]
    );
    // A guess that is a reference too is only a reference; relative guesses take the base in
    // force where the script stands; text outside scripts is not read.
    assert_eq!(s(&found.guesses), [w("/early.json"), w("/sub/later.json")]);

    let js = Url::parse("https://www.example.test/static/app.js").unwrap();
    let kind = Kind::of(Some("text/javascript; charset=utf-8"), &js, b"");
    assert_eq!(kind, Kind::Script);
    let found = discover(kind, br#"import("./chunk.js")"#, &js);
    assert_eq!(s(&found.guesses), [w("/static/chunk.js")]);
    assert!(found.refs.is_empty());

    let json = Url::parse("https://www.example.test/data/site.json").unwrap();
    let kind = Kind::of(Some("application/json"), &json, b"");
    assert_eq!(kind, Kind::Json);
    assert_eq!(
        s(&discover(kind, br#"{"logo": "img/logo.svg"}"#, &json).guesses),
        [w("/data/img/logo.svg")]
    );
    // Guesses are never references: export and verify do not see them.
    assert!(references(Kind::Script, br#""/a.js""#, &js).is_empty());
    assert!(references(Kind::Html, br#"<script>"/a.js"</script>"#, &js).is_empty());
}

/// An element that matches several of the walker's selectors is walked once.
#[test]
fn an_element_with_many_reference_attributes_is_walked_once() {
    let page = br#"<img src="/a.png" srcset="/b.png 2x" style="background: url(/c.png)" data-src="/d.png">"#;
    let mut calls = Vec::new();
    let out = html(page, &base(), &mut |u: &Url| {
        calls.push(u.path().to_string());
        Some(format!("x{}", u.path()))
    });
    assert_eq!(calls, ["/a.png", "/b.png", "/c.png", "/d.png"]);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"<img src="x/a.png" srcset="x/b.png 2x" style="background: url(&quot;x/c.png&quot;)" data-src="x/d.png">"#
    );
}

/// The references lol_html's walk (the export's rewriter) finds, in order.
fn rewriter_refs(doc: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    html(doc, &base(), &mut |u: &Url| {
        found.push(u.to_string());
        None
    });
    found
}

/// Documents where a reader that is not a real HTML tokenizer goes wrong, each with the
/// references it holds. Discovery's reader and the export's rewriter must both find exactly
/// these.
#[test]
fn scan_and_lol_html_agree_on_awkward_documents() {
    let cases: &[(&str, &[&str])] = &[
        (r#"<a href=/x>x</a><A HREF="/Y">"#, &["/x", "/Y"]),
        (r#"<a href='/q' title="a>b" href="/dup">"#, &["/q"]),
        (r#"<a title=">" href=/after-gt>"#, &["/after-gt"]),
        (r#"<a href = "/spaced" >"#, &["/spaced"]),
        (r#"<img src=/unq.png alt=x/>"#, &["/unq.png"]),
        (r#"<img/src="/slash.png">"#, &["/slash.png"]),
        (
            r#"<!-- <a href="/in-comment"> --><a href="/after">"#,
            &["/after"],
        ),
        (r#"<!--><a href="/abrupt">"#, &["/abrupt"]),
        (r#"<!---><a href="/abrupt2">"#, &["/abrupt2"]),
        (r#"<!-- x --!><a href="/bang">"#, &["/bang"]),
        (
            r#"<!doctype html><?xml x="<a href='/no'>"?><a href="/yes">"#,
            &["/yes"],
        ),
        (r#"</p class="<a href='/no'>"><a href="/yes">"#, &["/yes"]),
        (r#"</ x><a href="/bogus-end">"#, &["/bogus-end"]),
        (r#"<title><a href="/no"></title><a href="/yes">"#, &["/yes"]),
        (
            r#"<textarea><img src="/no"></TEXTAREA ><img src="/yes">"#,
            &["/yes"],
        ),
        (
            r#"<noscript><img src="/no"></noscript><img src="/yes">"#,
            &["/yes"],
        ),
        (
            r#"<xmp><a href="/no"></xmp><iframe src="/frame"><a href="/no2"></iframe>"#,
            &["/frame"],
        ),
        (
            r#"<style>a{background:url(/s1.png)} </styles> b{background:url(/s2.png)}</style>"#,
            &["/s1.png", "/s2.png"],
        ),
        (
            r#"<script>document.write('<a href="/no">')</script><a href="/yes">"#,
            &["/yes"],
        ),
        (
            r#"<script><!-- x = "</script>"; --></script><a href="/after-escaped">"#,
            &["/after-escaped"],
        ),
        (
            r#"<script><!--<script>x="</script>"</script> y --></script><a href="/double">"#,
            &["/double"],
        ),
        (
            r#"<script><!--<scripts></script><a href="/not-double">"#,
            &["/not-double"],
        ),
        (
            r#"<svg><style>.a{fill:url(/grad.svg#g)}</style><image href="/svg.png"/></svg>"#,
            &["/grad.svg", "/svg.png"],
        ),
        (
            r#"<svg><![CDATA[<a href="/no">]]><a href="/svg-a"/></svg>"#,
            &["/svg-a"],
        ),
        (
            r#"<p><![CDATA[<a href="/in-bogus">]]><a href="/after-bogus">"#,
            &["/after-bogus"],
        ),
        (
            r#"<svg><title><a href="/integration">t</a></title></svg>"#,
            &["/integration"],
        ),
        (
            r#"<svg><foreignObject><style>p{background:url(/fo.png)}</style></foreignObject></svg>"#,
            &["/fo.png"],
        ),
        (
            r#"<svg><p><title><a href="/no"></title><a href="/yes">"#,
            &["/yes"],
        ),
        (
            r#"<math><mi><title><a href="/no"></title></mi></math><a href="/yes">"#,
            &["/yes"],
        ),
        (r#"<plaintext><a href="/no">"#, &[]),
        (r#"<a href="/cut-off""#, &[]),
        (r#"<a href="/x"><img src="/cut"#, &["/x"]),
        (r#"< a href="/not-a-tag"><a href="/tag">"#, &["/tag"]),
        (r#"<a href="&#x2F;ent&amp;x=1">"#, &["/ent&x=1"]),
        (
            r#"<meta content="0; url=/refresh" http-equiv="refresh"><object data="/o"><embed data="/no">"#,
            &["/refresh", "/o"],
        ),
        (r#"<base href="/b/"><a href="rel">"#, &["/b/rel"]),
        ("<a\thref\n=\n'/ws'\r>", &["/ws"]),
        ("<a href=\"/caf\u{e9}\">", &["/caf%C3%A9"]),
    ];
    for (doc, want) in cases {
        let want: Vec<String> = want.iter().map(|p| w(p)).collect();
        assert_eq!(refs(Kind::Html, doc), want, "discovery of {doc}");
        assert_eq!(rewriter_refs(doc.as_bytes()), want, "the rewriter on {doc}");
    }
}

/// The text of every `<script>`, as discovery's reader hands it over for guesses.
#[test]
fn script_text_follows_the_escaped_states() {
    // `<!--` starts a line comment in JavaScript too, hence the new lines.
    let page = concat!(
        r#"<script>a("/one.json")</script>"#,
        "<script><!--\n<script>b(\"/two.json\")</script>\n\"/three.json\"--></script>",
        r#"<svg><script>c("/four.json")</script></svg><script>"/five.json""#
    )
    .as_bytes();
    let found = discover(Kind::Html, page, &base());
    let got: Vec<String> = found.guesses.iter().map(|u| u.to_string()).collect();
    assert_eq!(
        got,
        [
            w("/one.json"),
            w("/two.json"),
            w("/three.json"),
            w("/four.json"),
            w("/five.json")
        ]
    );
}

mod soup {
    use super::*;
    use proptest::prelude::*;

    /// Pieces of markup, well- and ill-formed, that generated documents are made of.
    fn piece() -> impl Strategy<Value = String> {
        let name = prop::sample::select(vec![
            "a",
            "img",
            "link",
            "style",
            "script",
            "title",
            "textarea",
            "noscript",
            "iframe",
            "svg",
            "math",
            "p",
            "div",
            "font",
            "foreignObject",
            "desc",
            "mi",
            "br",
            "base",
            "meta",
            "object",
            "source",
            "use",
            "image",
            "xmp",
            "b",
            "span",
        ]);
        let attr = prop::sample::select(vec![
            " href=\"/h\"",
            " src='/s'",
            " srcset=\"/a 1x, /b 2x\"",
            " style=\"background:url(/st)\"",
            " data=/d",
            " content=\"0;url=/r\"",
            " http-equiv=refresh",
            " color=red",
            " HREF=/up",
            " title=\">\"",
            " href",
            " href=/dup",
            "/",
            " x='",
            " data-src=/ds",
        ]);
        let text = prop::sample::select(vec![
            "text",
            "<!--",
            "-->",
            "--!>",
            "<!--x-->",
            "<![CDATA[",
            "]]>",
            "<!doctype html>",
            "<?x?>",
            "</ x>",
            "< p",
            "&amp;",
            "url(/t)",
            "\"/g.json\"",
            "<",
            ">",
            "\n",
            "</",
        ]);
        prop_oneof![
            (
                name.clone(),
                prop::collection::vec(attr, 0..4),
                any::<bool>()
            )
                .prop_map(|(n, attrs, close)| format!(
                    "<{n}{}{}",
                    attrs.concat(),
                    if close { ">" } else { "/>" }
                )),
            name.prop_map(|n| format!("</{n}>")),
            text.prop_map(str::to_string),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Discovery's reader finds what the export's rewriter finds, in the same order, in any
        /// soup of these pieces.
        #[test]
        fn scan_and_lol_html_agree(pieces in prop::collection::vec(piece(), 0..24)) {
            let doc = pieces.concat();
            prop_assert_eq!(refs(Kind::Html, &doc), rewriter_refs(doc.as_bytes()), "{}", doc);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        /// The same for any string of markup characters and names. `=` is always followed by a
        /// value here: after a valueless `a=>`, lol_html does not read a `<style>`'s content as
        /// raw text, where the tokenizer (and this reader) does
        /// (`the_reader_follows_the_tokenizer_where_lol_html_does_not`).
        #[test]
        fn scan_and_lol_html_agree_on_character_soup(
            doc in "(<|>|a|href|src|style|script|svg|math|p|/|=|\"|'| |\n|\r|\t|!|-|\\[CDATA\\[|\\]\\]|&amp;|\u{0}|title|noscript|font|color|mi|desc|url\\(/u\\)){0,40}"
        ) {
            let doc = doc.replace('=', "=v");
            prop_assert_eq!(refs(Kind::Html, &doc), rewriter_refs(doc.as_bytes()), "{:?}", doc);
        }
    }
}

#[test]
fn the_reader_follows_the_tokenizer_where_lol_html_does_not() {
    // A missing attribute value ends the tag; `<style>`'s content is raw text all the same.
    assert_eq!(
        refs(Kind::Html, "<style a=><a href=/x>"),
        Vec::<String>::new()
    );
    assert_eq!(refs(Kind::Html, "<style a=><url(/u)</style>"), [w("/u")]);
}

/// Found by the soup test in a CI run: text inside a `<script>` that is inside an unclosed
/// foreign `<style>` (`y/` is an unquoted value, so that tag is not self-closing) is style text
/// to lol_html too. The reader now keeps lol_html's stack of open elements.
#[test]
fn text_belongs_to_every_open_style_and_script() {
    for doc in [
        r#"<svg/><style x=y/><script href="/h">url(/t)"#,
        r#"<svg><style><g></style>url(/no)<style><b>url(/yes)"#,
        r#"<p><svg><style></p>url(/after-p)"#,
    ] {
        assert_eq!(
            refs(Kind::Html, doc),
            rewriter_refs(doc.as_bytes()),
            "{doc}"
        );
    }
    assert_eq!(
        refs(Kind::Html, r#"<svg/><style x=y/><script href="/h">url(/t)"#),
        [w("/h"), w("/t")]
    );
}
