//! Tidy: the structure rules of ARCHITECTURE.md ("Layers and rules"), checked on the source
//! text, in the manner of rust-analyzer's `tidy.rs`. A rule broken by new code fails here with
//! the file and what to do. Where the code does not keep a rule yet, the breach is listed as
//! debt below; the lists may only shrink (a paid debt that is still listed fails too), and
//! issue 12 is done when they are empty.

use std::path::{Path, PathBuf};

/// The pure cores: they take data and return data (design.md), so no sockets, files, clock,
/// database or configuration.
/// Pure cores: a file, or a folder (every file in it but its unit tests, `tests.rs`).
const PURE: &[&str] = &[
    "src/decide/",
    "src/events.rs",
    "src/history.rs",
    "src/ip/agree.rs",
    "src/dns/zone.rs",
    "src/dns/transfer.rs",
    "src/dns/take.rs",
    "src/dns/quick.rs",
    "src/dns/rollover.rs",
    "src/dns/zone/sign.rs",
    "src/dns/zone/proof.rs",
    "src/dns/respond.rs",
    "src/mirror/scope.rs",
    "src/mirror/extract/",
];
const NOT_IN_PURE: &[&str] = &[
    "tokio::net",
    "tokio::fs",
    "tokio::spawn",
    "reqwest",
    "hyper",
    "rusqlite",
    "std::fs",
    "TcpStream",
    "UdpSocket",
    "SystemTime::now",
    "now_millis()",
    "crate::config",
    "crate::store",
];
/// What the configuration layer may import from the crate: it is plain data near the bottom.
const CONFIG_MAY_USE: &[&str] = &["util", "net", "tls", "config"];
/// Where long-lived tasks may be started: the daemon's composition root, and the commands of
/// the binary (each one is the composition root of its own run, e.g. `understudy serve`).
const MAY_SPAWN: &[&str] = &["src/app/", "src/cli/"];
const MAX_LINES: usize = 800;

/// Debt (issue 12): imports of the configuration layer that cross a layer the wrong way.
const CONFIG_IMPORT_DEBT: &[(&str, &str)] = &[];
/// Debt (issue 12): pure cores that import what they must not.
const PURE_DEBT: &[(&str, &str)] = &[];
/// Debt (issue 12): files over the size limit, to be split.
const SIZE_DEBT: &[&str] = &[];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `src/`, as ("src/a/b.rs", text).
fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = vec![];
    walk(&root().join("src"), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(root()).unwrap().display().to_string();
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// The code a file ships: its unit tests and comments left out.
fn shipped(text: &str) -> String {
    let end = text
        .find("\n#[cfg(test)]\nmod tests {")
        .unwrap_or(text.len());
    text[..end]
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths `code` names after `prefix` (`crate::`, `super::`), as written: `crate::ip::Family`
/// gives `ip::Family`, `use super::*` gives "". Only at a path's start (not `$crate::` or
/// `a::crate::`).
fn named_paths<'a>(code: &'a str, prefix: &str) -> Vec<&'a str> {
    code.match_indices(prefix)
        .filter(|(i, _)| {
            *i == 0 || {
                let c = code.as_bytes()[i - 1];
                !(c.is_ascii_alphanumeric() || c == b'_' || c == b':' || c == b'$')
            }
        })
        .map(|(i, m)| {
            let rest = &code[i + m.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            rest[..end].trim_end_matches(':')
        })
        .collect()
}

/// Every path `code` names in the crate: `crate::a::b`, and each member of a
/// `use crate::{a::b, c}` group.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out: Vec<String> = named_paths(code, "crate::")
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    for (i, _) in code.match_indices("crate::{") {
        let inner = &code[i + 8..code[i..].find('}').map(|e| i + e).unwrap_or(code.len())];
        out.extend(
            inner
                .split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty()),
        );
    }
    out
}

/// The top-level crate modules a piece of code names (`crate::ip::Family` → `ip`). What a
/// child of `config` imports through `super::` is not followed (it stays inside the layer).
fn crate_modules(code: &str) -> Vec<String> {
    let mut out: Vec<String> = crate_paths(code)
        .iter()
        .filter_map(|p| p.split("::").next())
        .map(str::to_string)
        .collect();
    out.sort();
    out.dedup();
    out
}

fn is_pure(file: &str) -> bool {
    PURE.iter().any(|p| match p.strip_suffix('/') {
        Some(dir) => file.starts_with(&format!("{dir}/")) && !file.ends_with("/tests.rs"),
        None => file == *p,
    })
}

/// A pure core that was moved or renamed would silently go unchecked.
#[test]
fn every_pure_core_exists() {
    for p in PURE {
        assert!(
            root().join(p).exists(),
            "{p} is listed in PURE but does not exist: update tests/tidy.rs"
        );
    }
}

/// The rule breaches of one file.
fn breaches(file: &str, text: &str) -> Vec<(String, String)> {
    let code = shipped(text);
    let mut out = vec![];
    if is_pure(file) {
        for bad in NOT_IN_PURE {
            if code.contains(bad) {
                out.push(("pure".to_string(), bad.to_string()));
            }
        }
    }
    if file.starts_with("src/config/") {
        for m in crate_modules(&code) {
            if !CONFIG_MAY_USE.contains(&m.as_str()) {
                out.push(("config".to_string(), m));
            }
        }
    }
    if !MAY_SPAWN.iter().any(|p| file.starts_with(p)) {
        for bad in ["tokio::spawn(", "std::thread::spawn("] {
            if code.contains(bad) {
                out.push(("spawn".to_string(), bad.to_string()));
            }
        }
    }
    if !file.starts_with("src/store/")
        && (code.contains("rusqlite") || code.contains("Connection::open"))
    {
        out.push(("database".to_string(), "rusqlite".to_string()));
    }
    if text.lines().count() > MAX_LINES {
        out.push((
            "size".to_string(),
            format!("{} lines", text.lines().count()),
        ));
    }
    out
}

fn is_debt(file: &str, rule: &str, what: &str) -> bool {
    match rule {
        "config" => CONFIG_IMPORT_DEBT.contains(&(file, what)),
        "pure" => PURE_DEBT.contains(&(file, what)),
        "size" => SIZE_DEBT.contains(&file),
        _ => false,
    }
}

fn advice(rule: &str) -> &'static str {
    match rule {
        "pure" => "a pure core takes data and returns data: move the I/O to its caller",
        "config" => "configuration is plain data: define the type in config (or util/net/tls) and let the other module import it",
        "spawn" => "only the composition root (src/app/) starts long-lived tasks: return a future and let it spawn it",
        "database" => "only src/store/ opens the database: add a method to Store",
        "size" => "split the file by noun (a folder with one file per part)",
        _ => "",
    }
}

#[test]
fn the_structure_rules_hold() {
    let mut broken = vec![];
    let mut seen_debt = vec![];
    for (file, text) in sources() {
        for (rule, what) in breaches(&file, &text) {
            if is_debt(&file, &rule, &what) {
                seen_debt.push((file.clone(), rule, what));
            } else {
                broken.push(format!("{file}: {rule}: {what} — {}", advice(&rule)));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "structure rules broken:\n{}",
        broken.join("\n")
    );
    // Paid debt must leave the lists, so they only shrink.
    let seen = |f: &str, r: &str, w: Option<&str>| {
        seen_debt
            .iter()
            .any(|(sf, sr, sw)| sf == f && sr == r && w.is_none_or(|w| sw == w))
    };
    let mut paid = vec![];
    for (f, m) in CONFIG_IMPORT_DEBT {
        if !seen(f, "config", Some(m)) {
            paid.push(format!("CONFIG_IMPORT_DEBT ({f}, {m})"));
        }
    }
    for (f, w) in PURE_DEBT {
        if !seen(f, "pure", Some(w)) {
            paid.push(format!("PURE_DEBT ({f}, {w})"));
        }
    }
    for f in SIZE_DEBT {
        if !seen(f, "size", None) {
            paid.push(format!("SIZE_DEBT {f}"));
        }
    }
    assert!(
        paid.is_empty(),
        "debt paid, remove it from tests/tidy.rs: {}",
        paid.join(", ")
    );
}

/// The checker itself catches what it is meant to: a deliberately bad import in a pure core,
/// a spawn outside the root, a second database opener, a config import the wrong way.
#[test]
fn the_checker_catches_bad_code() {
    let rules = |f: &str, t: &str| {
        breaches(f, t)
            .into_iter()
            .map(|(r, w)| format!("{r}: {w}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        rules("src/decide/mod.rs", "use crate::store::Store;\n"),
        ["pure: crate::store"]
    );
    assert_eq!(
        rules("src/mirror/scope.rs", "fn f() { std::fs::read(\"x\"); }\n"),
        ["pure: std::fs"]
    );
    assert_eq!(
        rules("src/mirror/extract/script.rs", "use crate::config::Site;\n"),
        ["pure: crate::config"]
    );
    assert!(rules("src/mirror/extract/tests.rs", "use crate::config::Site;\n").is_empty());
    assert_eq!(
        rules("src/serve.rs", "fn f() { tokio::spawn(async {}); }\n"),
        ["spawn: tokio::spawn("]
    );
    assert_eq!(
        rules("src/mirror/mod.rs", "use rusqlite::Connection;\n"),
        ["database: rusqlite"]
    );
    assert_eq!(
        rules("src/config/dns.rs", "use crate::reconcile::plan;\n"),
        ["config: reconcile"]
    );
    assert_eq!(
        rules(
            "src/config/dns.rs",
            "use crate::{util::x, control::Event};\n"
        ),
        ["config: control"]
    );
    // Comments and unit tests do not count; the composition root may spawn.
    assert!(rules("src/decide/mod.rs", "// crate::store is not used here\n").is_empty());
    assert!(rules(
        "src/decide/mod.rs",
        "fn f() {}\n#[cfg(test)]\nmod tests {\n use crate::store::Store;\n}\n"
    )
    .is_empty());
    assert!(rules("src/app/mod.rs", "fn f() { tokio::spawn(async {}); }\n").is_empty());
    assert_eq!(
        rules("src/ip/agree.rs", &"\n".repeat(MAX_LINES + 1)),
        [format!("size: {} lines", MAX_LINES + 1)]
    );
}

/// The public types the crate defines, as (name, file).
fn public_types(files: &[(String, String)]) -> Vec<(String, String)> {
    let mut out = vec![];
    for (file, text) in files {
        for line in shipped(text).lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if let [vis, kind, name, ..] = words[..] {
                if vis == "pub" && matches!(kind, "struct" | "enum" | "trait" | "type") {
                    let name: String = name
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    out.push((name, file.clone()));
                }
            }
        }
    }
    out
}

/// The public types whose names are used by two modules.
fn shared_names(files: &[(String, String)]) -> Vec<String> {
    let mut types = public_types(files);
    types.sort();
    types
        .windows(2)
        .filter(|w| w[0].0 == w[1].0)
        .map(|w| format!("{} ({} and {})", w[0].0, w[0].1, w[1].1))
        .collect()
}

/// One name per concept (ARCHITECTURE.md): no two public types share a name, so a reader never
/// has to ask which `Outcome` a signature means.
#[test]
fn no_two_public_types_share_a_name() {
    let shared = shared_names(&sources());
    assert!(
        shared.is_empty(),
        "public types with the same name; rename one: {}",
        shared.join(", ")
    );
    let bad = [
        (
            "src/a.rs".to_string(),
            "pub struct Outcome {}\n".to_string(),
        ),
        (
            "src/b.rs".to_string(),
            "pub enum Outcome { A }\n".to_string(),
        ),
    ];
    assert_eq!(shared_names(&bad), ["Outcome (src/a.rs and src/b.rs)"]);
}

/// The module a file under `src/` is (`src/dns/zone.rs` → `dns::zone`, `src/ip/mod.rs` → `ip`,
/// `src/lib.rs` → the root, "").
fn module_of(file: &str) -> String {
    let p = file.trim_start_matches("src/").trim_end_matches(".rs");
    let p = p.strip_suffix("/mod").unwrap_or(p);
    match p {
        "lib" | "main" | "mod" => String::new(),
        _ => p.replace('/', "::"),
    }
}

/// The modules `code` of module `me` names: `crate::a::b`, `super::x`, and its own children
/// `x::` (each resolved to the deepest module that exists in `modules`).
fn module_deps(me: &str, code: &str, modules: &[String]) -> Vec<String> {
    let deepest = |base: &str, path: &str| -> Option<String> {
        let mut parts: Vec<&str> = base.split("::").filter(|p| !p.is_empty()).collect();
        parts.extend(path.split("::").filter(|p| !p.is_empty()));
        (1..=parts.len())
            .rev()
            .map(|n| parts[..n].join("::"))
            .find(|m| modules.contains(m))
    };
    let parent = me.rsplit_once("::").map(|(p, _)| p).unwrap_or("");
    let mut out = vec![];
    for p in crate_paths(code) {
        out.extend(deepest("", &p));
    }
    for p in named_paths(code, "super::") {
        out.extend(deepest(parent, p).or_else(|| Some(parent.to_string())));
    }
    for word in code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')) {
        if let Some((first, _)) = word.split_once("::") {
            let child = if me.is_empty() {
                first.to_string()
            } else {
                format!("{me}::{first}")
            };
            if !first.is_empty() && modules.contains(&child) {
                out.push(child);
            }
        }
    }
    out.retain(|m| m != me);
    out.sort();
    out.dedup();
    out
}

/// A cycle in `graph`, as the modules along it, if there is one.
fn find_cycle(graph: &[(String, Vec<String>)]) -> Option<Vec<String>> {
    fn visit(
        v: &str,
        graph: &[(String, Vec<String>)],
        state: &mut std::collections::HashMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(v.to_string(), 1);
        stack.push(v.to_string());
        let deps = graph
            .iter()
            .find(|(m, _)| m == v)
            .map(|(_, d)| d.as_slice())
            .unwrap_or(&[]);
        for w in deps {
            match state.get(w.as_str()) {
                Some(1) => {
                    let at = stack.iter().position(|s| s == w).unwrap();
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(w.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(w, graph, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(v.to_string(), 2);
        None
    }
    let mut state = std::collections::HashMap::new();
    for (m, _) in graph {
        if !state.contains_key(m.as_str()) {
            if let Some(c) = visit(m, graph, &mut state, &mut vec![]) {
                return Some(c);
            }
        }
    }
    None
}

fn module_graph(files: &[(String, String)]) -> Vec<(String, Vec<String>)> {
    let files: Vec<&(String, String)> = files
        .iter()
        .filter(|(f, _)| !f.ends_with("/tests.rs"))
        .collect();
    let modules: Vec<String> = files.iter().map(|(f, _)| module_of(f)).collect();
    files
        .iter()
        .map(|(f, text)| {
            let me = module_of(f);
            let deps = module_deps(&me, &shipped(text), &modules);
            (me, deps)
        })
        .collect()
}

/// `graph` seen from `depth` path components: each module becomes its ancestor at that depth
/// (`dns::provider::rfc2136` at depth 1 is `dns`), and references between a module and its
/// own ancestors or descendants are left out (a folder's files are one room: `use super::*`
/// in a child and a parent naming its children are how a folder is written).
fn collapse(graph: &[(String, Vec<String>)], depth: usize) -> Vec<(String, Vec<String>)> {
    let cut = |m: &str| m.split("::").take(depth).collect::<Vec<_>>().join("::");
    let related = |a: &str, b: &str| {
        a == b || a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::"))
    };
    let mut out: Vec<(String, Vec<String>)> = vec![];
    for (m, deps) in graph {
        if m.is_empty() {
            continue;
        }
        let from = cut(m);
        let to: Vec<String> = deps
            .iter()
            .filter(|d| !d.is_empty() && !related(m, d))
            .map(|d| cut(d))
            .filter(|d| !related(&from, d))
            .collect();
        match out.iter_mut().find(|(n, _)| *n == from) {
            Some((_, e)) => e.extend(to),
            None => out.push((from, to)),
        }
    }
    for (_, e) in &mut out {
        e.sort();
        e.dedup();
    }
    out
}

/// The first cycle among the rooms at any depth (top-level modules, then their folders, ...).
fn first_cycle(files: &[(String, String)]) -> Option<Vec<String>> {
    let graph = module_graph(files);
    let deepest = graph
        .iter()
        .map(|(m, _)| m.split("::").count())
        .max()
        .unwrap_or(1);
    (1..=deepest).find_map(|d| find_cycle(&collapse(&graph, d)))
}

/// The module graph is a DAG (ARCHITECTURE.md, "Layers and rules"), at every depth: the
/// top-level modules, and inside each folder its files and subfolders. A reference counts
/// through `crate::`, `super::` or a child's path.
#[test]
fn the_module_graph_has_no_cycle() {
    let files = sources();
    assert!(module_graph(&files).len() > 30, "the sources were not read");
    if let Some(c) = first_cycle(&files) {
        panic!("an import cycle: {}", c.join(" → "));
    }
    let f = |path: &str, code: &str| (path.to_string(), code.to_string());
    // A core that reaches back to the controller that uses it.
    let bad = [
        f("src/control.rs", "use crate::decide::Phase;\n"),
        f(
            "src/decide/mod.rs",
            "fn f() { crate::control::Controller::new(); }\n",
        ),
    ];
    let cycle = first_cycle(&bad).map(|c| c.join(" → "));
    assert!(
        matches!(
            cycle.as_deref(),
            Some("control → decide → control") | Some("decide → control → decide")
        ),
        "{cycle:?}"
    );
    // Configuration reaching into a provider that reads its settings, through other files of
    // the same two folders (the circle issue 12 found).
    let bad = [
        f("src/config/mod.rs", ""),
        f(
            "src/config/provider.rs",
            "use crate::dns::provider::rfc2136::TsigKey;\n",
        ),
        f("src/dns/mod.rs", ""),
        f("src/dns/provider/mod.rs", ""),
        f(
            "src/dns/provider/rfc2136.rs",
            "use crate::config::ProviderConfig;\n",
        ),
    ];
    assert!(first_cycle(&bad).is_some());
    // Inside one folder, a parent and its children are one room.
    let fine = [
        f("src/ip/mod.rs", "use agree::Reading;\n"),
        f("src/ip/agree.rs", "use super::*;\n"),
    ];
    assert_eq!(first_cycle(&fine), None);
    // Siblings inside a folder are not: dns::zone and dns::server must not need each other.
    let bad = [
        f("src/dns/mod.rs", ""),
        f("src/dns/zone.rs", "use super::server::Handle;\n"),
        f("src/dns/server.rs", "use crate::dns::zone::Zone;\n"),
    ];
    assert!(first_cycle(&bad).is_some());
}
