//! The crate's layout: its modules depend one way, and no source file is too long to read.
//!
//! `cargo test --test architecture -- --nocapture` prints the module graph of the crate's
//! top-level modules and, separately, the graph of the submodules inside each directory
//! module (`engine/`, `store/`, …; the directory's own `mod.rs` is a node of its graph,
//! written in parentheses). A cycle in any of them fails the test, which names every cycle
//! with a reference that makes each of its edges.
//!
//! How the graph is read: every `.rs` file under `src/` (not `src/bin/`, a crate of its own)
//! is tokenized with comments, doc comments, strings and character literals left out; every
//! path that starts with `crate::`, `$crate::`, `super::`, `self::` or a child module's
//! name, in a `use` (trees expanded) or in an expression, is resolved to the longest module
//! that exists, following `use` bindings (re-exports) of the module it lands on to where the
//! item comes from. Test-only code (`#[cfg(test)]` modules and items) is left out: unit
//! tests use what they test from below, as black-box tests would. A module's own `pub use`
//! re-exports are its face, not a dependency of its own, in a directory's graph; paths that
//! land on the crate root (`lib.rs` items) count only through its re-exports.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::path::Path;

/// The longest a file under `src/` may be.
const MAX_LINES: usize = 800;

#[test]
fn module_graphs_have_no_cycles() {
    let files = read_sources();
    let sources: Vec<(&str, &str)> = files
        .iter()
        .filter(|(path, _)| path.ends_with(".rs") && !path.starts_with("src/bin/"))
        .map(|(p, s)| (p.as_str(), s.as_str()))
        .collect();
    let model = Model::parse(&sources);
    let mut cycles = Vec::new();
    for graph in model.graphs() {
        println!("{graph}");
        cycles.extend(graph.cycles().into_iter().map(|c| c.to_string()));
    }
    assert!(
        cycles.is_empty(),
        "{} module cycle(s):\n{}",
        cycles.len(),
        cycles.join("\n")
    );
}

#[test]
fn no_file_under_src_is_over_the_line_limit() {
    let files = read_sources();
    let sources: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, s)| (p.as_str(), s.as_str()))
        .collect();
    let over = oversized(&sources, MAX_LINES);
    let list: Vec<String> = over
        .iter()
        .map(|(path, lines)| format!("  {path}: {lines} lines"))
        .collect();
    assert!(
        over.is_empty(),
        "{} file(s) under src/ over {MAX_LINES} lines:\n{}",
        over.len(),
        list.join("\n")
    );
}

/// Every text file under `src/`, as (`src/…` path with `/`, contents), sorted by path.
fn read_sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
            .map(|e| e.expect("a directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, root, out);
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                let rel = path.strip_prefix(root).expect("under the root");
                let rel: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push((rel.join("/"), text));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    walk(&root.join("src"), root, &mut out);
    assert!(
        out.iter().any(|(p, _)| p == "src/lib.rs"),
        "src/lib.rs not found"
    );
    out
}

/// Files longer than `max` lines, with their lengths.
fn oversized<'a>(files: &[(&'a str, &str)], max: usize) -> Vec<(&'a str, usize)> {
    files
        .iter()
        .map(|(path, text)| (*path, text.lines().count()))
        .filter(|(_, lines)| *lines > max)
        .collect()
}

// ---------------------------------------------------------------------------------------
// Tokens

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    /// `::`
    Colons,
    Punct(char),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

/// The tokens of Rust source that paths are made of: identifiers, `::` and punctuation.
/// Comments (doc comments too), string, byte-string, raw-string and character literals,
/// lifetimes and numbers are left out.
fn tokenize(src: &str) -> Vec<Token> {
    let s: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let is_ident_start = |c: char| c.is_alphabetic() || c == '_';
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    while i < s.len() {
        let c = s[i];
        let next = s.get(i + 1).copied();
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < s.len() && s[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < s.len() {
                if s[i] == '/' && s.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if s[i] == '*' && s.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if s[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if c == '"' {
            i = skip_string(&s, i, &mut line);
        } else if c == '\'' {
            i = skip_char_or_lifetime(&s, i);
        } else if c.is_ascii_digit() {
            while i < s.len()
                && (is_ident(s[i])
                    || (s[i] == '.' && s.get(i + 1).is_some_and(char::is_ascii_digit)))
            {
                i += 1;
            }
        } else if is_ident_start(c) {
            let start = i;
            while i < s.len() && is_ident(s[i]) {
                i += 1;
            }
            let word: String = s[start..i].iter().collect();
            let at = s.get(i).copied();
            match (word.as_str(), at) {
                ("r" | "br" | "cr", Some('"' | '#'))
                    if at == Some('"') || matches!(s.get(i + 1), Some('"' | '#')) =>
                {
                    i = skip_raw_string(&s, i, &mut line);
                }
                ("r", Some('#')) => {
                    // A raw identifier: `r#type`.
                    let start = i + 1;
                    i = start;
                    while i < s.len() && is_ident(s[i]) {
                        i += 1;
                    }
                    let word: String = s[start..i].iter().collect();
                    out.push(Token {
                        tok: Tok::Ident(word),
                        line,
                    });
                }
                ("b" | "c", Some('"')) => i = skip_string(&s, i, &mut line),
                ("b", Some('\'')) => i = skip_char_or_lifetime(&s, i),
                _ => out.push(Token {
                    tok: Tok::Ident(word),
                    line,
                }),
            }
        } else if c == '$' && s[i + 1..].starts_with(&['c', 'r', 'a', 't', 'e']) {
            // `$crate` in a macro: the crate.
            i += 6;
            out.push(Token {
                tok: Tok::Ident("crate".into()),
                line,
            });
        } else if c == ':' && next == Some(':') {
            out.push(Token {
                tok: Tok::Colons,
                line,
            });
            i += 2;
        } else {
            out.push(Token {
                tok: Tok::Punct(c),
                line,
            });
            i += 1;
        }
    }
    out
}

/// Skips a `"…"` literal starting at `s[i]`; returns the index after it.
fn skip_string(s: &[char], mut i: usize, line: &mut usize) -> usize {
    i += 1;
    while i < s.len() {
        match s[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            c => {
                if c == '\n' {
                    *line += 1;
                }
                i += 1;
            }
        }
    }
    i
}

/// Skips the rest of a raw string (`#…#"…"#…#` or `"…"`) starting at `s[i]`.
fn skip_raw_string(s: &[char], mut i: usize, line: &mut usize) -> usize {
    let mut hashes = 0;
    while s.get(i) == Some(&'#') {
        hashes += 1;
        i += 1;
    }
    i += 1; // the opening quote
    while i < s.len() {
        if s[i] == '"' && (1..=hashes).all(|k| s.get(i + k) == Some(&'#')) {
            return i + 1 + hashes;
        }
        if s[i] == '\n' {
            *line += 1;
        }
        i += 1;
    }
    i
}

/// Skips a character literal (`'a'`, `'\n'`, `'{'`) or a lifetime (`'a`) at `s[i]`.
fn skip_char_or_lifetime(s: &[char], i: usize) -> usize {
    if s.get(i + 1) == Some(&'\\') {
        // The backslash and the character it escapes, then on to the closing quote
        // (`'\''`, `'\u{1F600}'`).
        let mut j = i + 3;
        while j < s.len() && s[j] != '\'' {
            j += 1;
        }
        return j + 1;
    }
    if s.get(i + 2) == Some(&'\'') {
        return i + 3;
    }
    // A lifetime or a label: the quote and the name.
    let mut j = i + 1;
    while j < s.len() && (s[j].is_alphanumeric() || s[j] == '_') {
        j += 1;
    }
    j
}

// ---------------------------------------------------------------------------------------
// What each file says

/// A module path below the crate root: `["engine", "run"]`; the root is `[]`.
type ModPath = Vec<String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefKind {
    /// A `use` binding; `public` when it is re-exported (`pub`, `pub(crate)`, …).
    Use { public: bool },
    /// A path in an expression, a type or an attribute.
    Path,
}

/// One path as written, in the module it is written in.
#[derive(Debug, Clone)]
struct RawRef {
    /// The module (file or inline) the path is written in.
    module: ModPath,
    /// The segments as written, `crate`/`super`/`self` included.
    segments: Vec<String>,
    /// For a `use`: the name it binds (`None` for a glob).
    binds: Option<String>,
    kind: RefKind,
    file: String,
    line: usize,
}

/// What one file declares and refers to.
#[derive(Debug, Default)]
struct FileFacts {
    /// Inline modules (`mod x { … }`), outside test-only code, as full paths.
    inline_modules: Vec<ModPath>,
    refs: Vec<RawRef>,
}

/// The module a file under `src/` is: `src/lib.rs` the root, `src/a/mod.rs` and `src/a.rs`
/// `a`, `src/a/b.rs` `a::b`.
fn file_module(path: &str) -> ModPath {
    let rel = path.strip_prefix("src/").unwrap_or(path);
    let rel = rel.strip_suffix(".rs").unwrap_or(rel);
    let mut parts: Vec<String> = rel.split('/').map(str::to_owned).collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// Reads the inline modules and the paths of one file.
fn read_file(path: &str, src: &str) -> FileFacts {
    let toks = tokenize(src);
    let base = file_module(path);
    let mut facts = FileFacts::default();
    // (module, the brace depth its `{` opened at, whether it is test-only)
    let mut scopes: Vec<(ModPath, usize, bool)> = vec![(base, 0, false)];
    let mut depth = 0usize;
    // Test-only: an item under `#[cfg(test)]` until its end (`;` or its closing brace).
    let mut pending_test = false;
    let mut test_item_depth: Option<usize> = None;
    let ident = |k: usize| match toks.get(k).map(|t| &t.tok) {
        Some(Tok::Ident(s)) => Some(s.as_str()),
        _ => None,
    };
    let punct = |k: usize, c: char| toks.get(k).map(|t| &t.tok) == Some(&Tok::Punct(c));
    let colons = |k: usize| toks.get(k).map(|t| &t.tok) == Some(&Tok::Colons);
    let mut i = 0;
    while i < toks.len() {
        let in_test = test_item_depth.is_some() || scopes.last().is_some_and(|s| s.2);
        match &toks[i].tok {
            Tok::Punct('#') => {
                // An attribute: `#[…]` or `#![…]`.
                let mut j = i + 1;
                if punct(j, '!') {
                    j += 1;
                }
                if punct(j, '[') {
                    let start = j;
                    let mut level = 0;
                    while j < toks.len() {
                        if punct(j, '[') {
                            level += 1;
                        } else if punct(j, ']') {
                            level -= 1;
                            if level == 0 {
                                break;
                            }
                        }
                        j += 1;
                    }
                    let words: Vec<&str> = (start..j).filter_map(ident).collect();
                    // `#[cfg(test)]` or `#[cfg(all(test, …))]`: code only tests compile.
                    let test_only = match words.as_slice() {
                        ["cfg", "test"] => true,
                        ["cfg", "all", rest @ ..] => {
                            rest.contains(&"test") && !rest.contains(&"not")
                        }
                        _ => false,
                    };
                    if test_only {
                        pending_test = true;
                    }
                    // Paths inside attributes (`#[serde(with = "…")]` is a string) are
                    // rare and not dependencies worth a node: skipped.
                    i = j + 1;
                    continue;
                }
                i += 1;
            }
            Tok::Punct('{') => {
                if pending_test && test_item_depth.is_none() {
                    test_item_depth = Some(depth);
                }
                pending_test = false;
                depth += 1;
                i += 1;
            }
            Tok::Punct('}') => {
                depth = depth.saturating_sub(1);
                if test_item_depth == Some(depth) {
                    test_item_depth = None;
                }
                if scopes.len() > 1 && scopes.last().is_some_and(|s| s.1 == depth) {
                    scopes.pop();
                }
                i += 1;
            }
            Tok::Punct(';') => {
                pending_test = false;
                i += 1;
            }
            Tok::Ident(w) if w == "mod" => {
                if let (Some(name), true) = (ident(i + 1), punct(i + 2, '{')) {
                    let test = in_test || pending_test;
                    let mut path = scopes.last().expect("a scope").0.clone();
                    path.push(name.to_owned());
                    if !test {
                        facts.inline_modules.push(path.clone());
                    }
                    pending_test = false;
                    scopes.push((path, depth, test));
                    depth += 1;
                    i += 3;
                } else {
                    i += 1;
                }
            }
            Tok::Ident(w) if w == "use" && !colons(i + 1) => {
                // `pub use`, or `pub(…) use`.
                let public = match i.checked_sub(1) {
                    Some(k) if punct(k, ')') => {
                        let mut k = k;
                        while k > 0 && !punct(k, '(') {
                            k -= 1;
                        }
                        k > 0 && ident(k - 1) == Some("pub")
                    }
                    Some(k) => ident(k) == Some("pub"),
                    None => false,
                };
                let mut items = Vec::new();
                let end = parse_use_tree(&toks, i + 1, Vec::new(), &mut items);
                let test = in_test || pending_test;
                if !test {
                    let module = scopes.last().expect("a scope").0.clone();
                    for (segments, binds, line) in items {
                        facts.refs.push(RawRef {
                            module: module.clone(),
                            segments,
                            binds,
                            kind: RefKind::Use { public },
                            file: path.to_owned(),
                            line,
                        });
                    }
                }
                pending_test = false;
                i = end;
            }
            Tok::Ident(w) => {
                // A path in an expression or a type: its first segment, not a later one,
                // and not the `in` path of `pub(in …)`.
                let starts = i == 0 || !colons(i - 1);
                let vis = i >= 2 && ident(i - 1) == Some("in") && punct(i - 2, '(');
                if starts && !vis && colons(i + 1) && !in_test && w != "Self" {
                    let mut segments = vec![w.clone()];
                    let mut j = i + 1;
                    while colons(j) {
                        match ident(j + 1) {
                            Some(next) => {
                                segments.push(next.to_owned());
                                j += 2;
                            }
                            None => break,
                        }
                    }
                    facts.refs.push(RawRef {
                        module: scopes.last().expect("a scope").0.clone(),
                        segments,
                        binds: None,
                        kind: RefKind::Path,
                        file: path.to_owned(),
                        line: toks[i].line,
                    });
                    i = j;
                } else {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    facts
}

/// Expands the use tree at `toks[i]` into (segments, bound name, line), under `prefix`.
/// Returns the index after the tree (after the `;` at the top level).
fn parse_use_tree(
    toks: &[Token],
    mut i: usize,
    prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>, usize)>,
) -> usize {
    let mut path = prefix;
    if toks.get(i).map(|t| &t.tok) == Some(&Tok::Colons) {
        i += 1;
    }
    loop {
        let line = toks.get(i).map_or(0, |t| t.line);
        match toks.get(i).map(|t| &t.tok) {
            Some(Tok::Ident(seg)) => {
                path.push(seg.clone());
                i += 1;
                if toks.get(i).map(|t| &t.tok) == Some(&Tok::Colons) {
                    i += 1;
                    continue;
                }
                let mut name = path.last().cloned();
                if let Some(Tok::Ident(w)) = toks.get(i).map(|t| &t.tok) {
                    if w == "as" {
                        if let Some(Tok::Ident(alias)) = toks.get(i + 1).map(|t| &t.tok) {
                            name = Some(alias.clone());
                        }
                        i += 2;
                    }
                }
                if path.last().map(String::as_str) == Some("self") {
                    path.pop();
                    if name.as_deref() == Some("self") {
                        name = path.last().cloned();
                    }
                }
                if name.as_deref() == Some("_") {
                    name = None;
                }
                out.push((path, name, line));
                break;
            }
            Some(Tok::Punct('*')) => {
                out.push((path, None, line));
                i += 1;
                break;
            }
            Some(Tok::Punct('{')) => {
                i += 1;
                loop {
                    match toks.get(i).map(|t| &t.tok) {
                        Some(Tok::Punct('}')) => {
                            i += 1;
                            break;
                        }
                        Some(Tok::Punct(',')) => i += 1,
                        None => return i,
                        Some(_) => i = parse_use_tree(toks, i, path.clone(), out),
                    }
                }
                break;
            }
            _ => break,
        }
    }
    if toks.get(i).map(|t| &t.tok) == Some(&Tok::Punct(';')) {
        i += 1;
    }
    i
}

// ---------------------------------------------------------------------------------------
// The crate's modules and what depends on what

/// Where a dependency was seen.
#[derive(Debug, Clone)]
struct Site {
    file: String,
    line: usize,
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A resolved reference: from the file module it is written in to the module it lands on.
#[derive(Debug, Clone)]
struct Dep {
    from: ModPath,
    to: ModPath,
    /// A re-export of the module's own face (`pub use`), written in the module's own file.
    reexport: bool,
    site: Site,
}

#[derive(Debug, Default)]
struct Model {
    /// Modules that are files, by path.
    files: BTreeSet<ModPath>,
    /// Every module (files and inline ones).
    modules: BTreeSet<ModPath>,
    deps: Vec<Dep>,
}

impl Model {
    fn parse(sources: &[(&str, &str)]) -> Self {
        let mut model = Self::default();
        let mut refs = Vec::new();
        for (path, src) in sources {
            let module = file_module(path);
            model.files.insert(module.clone());
            model.modules.insert(module);
            let facts = read_file(path, src);
            model.modules.extend(facts.inline_modules);
            refs.extend(facts.refs);
        }
        // Every `use` binding, as an absolute path: re-exports to follow.
        let mut bindings: BTreeMap<(ModPath, String), Vec<String>> = BTreeMap::new();
        for r in &refs {
            if let (RefKind::Use { .. }, Some(name)) = (r.kind, &r.binds) {
                if let Some(abs) = model.absolute(&r.module, &r.segments) {
                    bindings.insert((r.module.clone(), name.clone()), abs);
                }
            }
        }
        for r in &refs {
            let Some(abs) = model.absolute(&r.module, &r.segments) else {
                continue;
            };
            let Some(to) = model.resolve(&abs, &bindings) else {
                continue;
            };
            let from = model.file_of(&r.module);
            model.deps.push(Dep {
                reexport: matches!(r.kind, RefKind::Use { public: true }) && from == r.module,
                from,
                to,
                site: Site {
                    file: r.file.clone(),
                    line: r.line,
                },
            });
        }
        model
    }

    /// The file module a module is written in (itself, or the file of an inline module).
    fn file_of(&self, module: &ModPath) -> ModPath {
        let mut m = module.clone();
        while !self.files.contains(&m) && !m.is_empty() {
            m.pop();
        }
        m
    }

    /// A path written in `module` as a path from the crate root, when it names something in
    /// the crate (`crate::`, `super::`, `self::`, or a child module of `module`).
    fn absolute(&self, module: &ModPath, segments: &[String]) -> Option<Vec<String>> {
        let first = segments.first()?;
        let mut base = module.clone();
        let rest = match first.as_str() {
            "crate" => {
                base.clear();
                &segments[1..]
            }
            "self" => &segments[1..],
            "super" => {
                let mut k = 0;
                while segments.get(k).map(String::as_str) == Some("super") {
                    base.pop()?;
                    k += 1;
                }
                &segments[k..]
            }
            child => {
                let mut c = module.clone();
                c.push(child.to_owned());
                if !self.modules.contains(&c) {
                    return None;
                }
                segments
            }
        };
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// The module an absolute path lands on: its longest prefix that is a module, or,
    /// when the next segment is a `use` binding of that module, where the binding leads.
    fn resolve(
        &self,
        abs: &[String],
        bindings: &BTreeMap<(ModPath, String), Vec<String>>,
    ) -> Option<ModPath> {
        let mut path = abs.to_vec();
        for _ in 0..16 {
            let mut k = path.len();
            while !self.modules.contains(&path[..k]) {
                k -= 1;
            }
            let module = path[..k].to_vec();
            let Some(item) = path.get(k) else {
                return Some(module);
            };
            match bindings.get(&(module.clone(), item.clone())) {
                Some(target) if target.as_slice() != &path[..=k] => {
                    let mut next = target.clone();
                    next.extend(path[k + 1..].iter().cloned());
                    path = next;
                }
                // An item of the root that is not a re-export: no module's.
                _ if module.is_empty() => return None,
                _ => return Some(module),
            }
        }
        None
    }

    /// The graph of the top-level modules, then one per directory module.
    fn graphs(&self) -> Vec<Graph> {
        let mut graphs = vec![self.graph_of(&Vec::new())];
        for m in &self.files {
            let is_dir = self
                .files
                .iter()
                .any(|f| f.len() == m.len() + 1 && f.starts_with(m));
            if !m.is_empty() && is_dir {
                graphs.push(self.graph_of(m));
            }
        }
        graphs
    }

    /// The graph inside `dir`: its child file modules, and `dir`'s own file (except for the
    /// crate root, whose `lib.rs` only declares and re-exports).
    fn graph_of(&self, dir: &ModPath) -> Graph {
        let own = |m: &ModPath| -> Option<String> {
            if !m.starts_with(dir) {
                return None;
            }
            match m.get(dir.len()) {
                Some(child) => Some(child.clone()),
                None if dir.is_empty() => None,
                None => Some(format!("({})", dir.last().expect("not the root"))),
            }
        };
        let mut graph = Graph {
            name: if dir.is_empty() {
                "the crate's top-level modules".to_owned()
            } else {
                format!("inside {}/", dir.join("/"))
            },
            ..Graph::default()
        };
        for f in &self.files {
            if (f.len() == dir.len() + 1 && f.starts_with(dir)) || (f == dir && !dir.is_empty()) {
                graph.nodes.insert(own(f).expect("in the directory"));
            }
        }
        for dep in &self.deps {
            let (Some(from), Some(to)) = (own(&dep.from), own(&dep.to)) else {
                continue;
            };
            if from == to || (dep.reexport && dep.from == *dir) {
                continue;
            }
            graph
                .edges
                .entry(from)
                .or_default()
                .entry(to)
                .or_insert_with(|| dep.site.clone());
        }
        graph
    }
}

/// A directed graph of modules, with one site per edge that makes it.
#[derive(Debug, Default)]
struct Graph {
    name: String,
    nodes: BTreeSet<String>,
    edges: BTreeMap<String, BTreeMap<String, Site>>,
}

/// Modules that depend on each other in a circle (a strongly connected component of two
/// or more), with every edge between them and a reference that makes it.
#[derive(Debug)]
struct Cycle {
    graph: String,
    members: Vec<String>,
    edges: Vec<(String, String, Site)>,
}

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: a cycle through {}:",
            self.graph,
            self.members.join(", ")
        )?;
        for (from, to, site) in &self.edges {
            write!(f, "\n    {from} -> {to} ({site})")?;
        }
        Ok(())
    }
}

impl Graph {
    fn targets(&self, node: &str) -> impl Iterator<Item = &String> {
        self.edges.get(node).into_iter().flat_map(BTreeMap::keys)
    }

    /// Every cycle, one per strongly connected component of two or more modules (Tarjan),
    /// each shown as one path around it.
    fn cycles(&self) -> Vec<Cycle> {
        struct Tarjan<'g> {
            graph: &'g Graph,
            index: BTreeMap<&'g str, usize>,
            low: BTreeMap<&'g str, usize>,
            stack: Vec<&'g str>,
            on_stack: BTreeSet<&'g str>,
            next: usize,
            components: Vec<Vec<&'g str>>,
        }
        impl<'g> Tarjan<'g> {
            fn visit(&mut self, v: &'g str) {
                self.index.insert(v, self.next);
                self.low.insert(v, self.next);
                self.next += 1;
                self.stack.push(v);
                self.on_stack.insert(v);
                for w in self.graph.targets(v) {
                    let w = w.as_str();
                    if !self.index.contains_key(w) {
                        self.visit(w);
                        let low = self.low[v].min(self.low[w]);
                        self.low.insert(v, low);
                    } else if self.on_stack.contains(w) {
                        let low = self.low[v].min(self.index[w]);
                        self.low.insert(v, low);
                    }
                }
                if self.low[v] == self.index[v] {
                    let mut component = Vec::new();
                    while let Some(w) = self.stack.pop() {
                        self.on_stack.remove(w);
                        component.push(w);
                        if w == v {
                            break;
                        }
                    }
                    self.components.push(component);
                }
            }
        }
        let mut t = Tarjan {
            graph: self,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            next: 0,
            components: Vec::new(),
        };
        let all: BTreeSet<&str> = self
            .nodes
            .iter()
            .map(String::as_str)
            .chain(self.edges.keys().map(String::as_str))
            .collect();
        for v in all {
            if !t.index.contains_key(v) {
                t.visit(v);
            }
        }
        let mut cycles: Vec<Cycle> = t
            .components
            .into_iter()
            .filter(|c| c.len() > 1)
            .map(|c| {
                let members: BTreeSet<&str> = c.into_iter().collect();
                let mut edges = Vec::new();
                for from in &members {
                    for (to, site) in self.edges.get(*from).into_iter().flatten() {
                        if members.contains(to.as_str()) {
                            edges.push(((*from).to_owned(), to.clone(), site.clone()));
                        }
                    }
                }
                Cycle {
                    graph: self.name.clone(),
                    members: members.iter().map(|m| m.to_string()).collect(),
                    edges,
                }
            })
            .collect();
        cycles.sort_by(|a, b| a.members.cmp(&b.members));
        cycles
    }
}

impl fmt::Display for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "module graph {}:", self.name)?;
        for node in &self.nodes {
            let mut line = format!("  {node} ->");
            for to in self.targets(node) {
                let _ = write!(line, " {to}");
            }
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// The reading above, proven on small crates written here

/// The cycles of every graph of a crate made of `files`, as `graph: a, b` lines.
fn cycles_of(files: &[(&str, &str)]) -> Vec<String> {
    Model::parse(files)
        .graphs()
        .iter()
        .flat_map(Graph::cycles)
        .map(|c| format!("{}: {}", c.graph, c.members.join(", ")))
        .collect()
}

/// The edges of the top-level graph, as `a -> b`.
fn top_edges(files: &[(&str, &str)]) -> Vec<String> {
    let model = Model::parse(files);
    let graph = model.graph_of(&Vec::new());
    graph
        .edges
        .iter()
        .flat_map(|(a, tos)| tos.keys().map(move |b| format!("{a} -> {b}")))
        .collect()
}

const LIB: (&str, &str) = ("src/lib.rs", "pub mod a;\npub mod b;\npub mod c;\n");

#[test]
fn a_cycle_between_top_level_modules_is_named() {
    let files = [
        LIB,
        ("src/a.rs", "use crate::b::Thing;\npub fn f() {}\n"),
        ("src/b.rs", "pub struct Thing;\nfn g() { crate::a::f() }\n"),
        ("src/c.rs", "use crate::a::f;\n"),
    ];
    assert_eq!(cycles_of(&files), ["the crate's top-level modules: a, b"]);
    let model = Model::parse(&files);
    let cycle = &model.graph_of(&Vec::new()).cycles()[0];
    assert_eq!(
        cycle.to_string(),
        "the crate's top-level modules: a cycle through a, b:\n    a -> b (src/a.rs:1)\n    b -> a (src/b.rs:2)"
    );
}

#[test]
fn a_longer_cycle_is_named_with_every_member() {
    let files = [
        LIB,
        ("src/a.rs", "use crate::b;\n"),
        ("src/b.rs", "fn f() { let _ = crate::c::X; }\n"),
        ("src/c.rs", "type T = super::a::Y;\n"),
    ];
    assert_eq!(
        cycles_of(&files),
        ["the crate's top-level modules: a, b, c"]
    );
}

#[test]
fn comments_doc_comments_strings_and_chars_are_not_paths() {
    let files = [
        LIB,
        (
            "src/a.rs",
            "//! See crate::b::X.\n/// crate::b::Y\n// crate::b::Z\n/* crate::b /* nested */ crate::b */\n\
             const S: &str = \"crate::b::X\";\nconst R: &str = r#\"crate::b \"quoted\" \"#;\n\
             const C: char = '\"'; const L: &'static str = \"\";\n",
        ),
        ("src/b.rs", "use crate::a::S;\n"),
    ];
    assert_eq!(top_edges(&files), ["b -> a"]);
    assert!(cycles_of(&files).is_empty());
}

#[test]
fn escaped_quotes_and_code_compiled_outside_tests_are_read() {
    let files = [
        LIB,
        (
            "src/a.rs",
            "const Q: char = '\\''; const U: char = '\\u{7f}';\n\
             #[cfg(any(test, feature = \"x\"))]\nuse crate::b::X;\n",
        ),
        ("src/b.rs", "fn f() { crate::a::g() }\n"),
    ];
    assert_eq!(cycles_of(&files), ["the crate's top-level modules: a, b"]);
}

#[test]
fn use_trees_are_expanded_and_resolved_to_the_longest_module() {
    let files = [
        (
            "src/lib.rs",
            "pub mod a;\npub mod b;\npub mod c;\npub mod d;\n",
        ),
        (
            "src/a.rs",
            "use crate::{b::{self, deep::Item as Other}, c::*};\nuse std::fmt;\n",
        ),
        ("src/b/mod.rs", "pub mod deep;\n"),
        ("src/b/deep.rs", "pub struct Item;\n"),
        ("src/c.rs", "pub fn f() {}\n"),
        (
            "src/d.rs",
            "fn f() { crate::b::deep::Item::new::<u8>(); }\n",
        ),
    ];
    assert_eq!(top_edges(&files), ["a -> b", "a -> c", "d -> b"]);
}

#[test]
fn super_self_and_child_module_paths_resolve_inside_a_directory() {
    let files = [
        ("src/lib.rs", "pub mod d;\n"),
        (
            "src/d/mod.rs",
            "mod x;\nmod y;\nmod z;\nfn f() { x::g(); }\nuse self::z::Z;\n",
        ),
        ("src/d/x.rs", "pub fn g() { super::y::h() }\n"),
        ("src/d/y.rs", "pub fn h() {}\n"),
        (
            "src/d/z.rs",
            "pub struct Z;\nfn k() { super::super::d::x::g() }\n",
        ),
    ];
    let model = Model::parse(&files);
    let graph = model.graph_of(&vec!["d".to_owned()]);
    let edges: Vec<String> = graph
        .edges
        .iter()
        .flat_map(|(a, tos)| tos.keys().map(move |b| format!("{a} -> {b}")))
        .collect();
    assert_eq!(edges, ["(d) -> x", "(d) -> z", "x -> y", "z -> x"]);
    assert!(cycles_of(&files).is_empty());
}

#[test]
fn re_exports_are_followed_to_where_the_item_lives() {
    let files = [
        ("src/lib.rs", "pub mod d;\npub mod e;\npub use d::Thing;\n"),
        (
            "src/d/mod.rs",
            "mod x;\nmod y;\npub use y::Thing;\npub(crate) use x::*;\n",
        ),
        ("src/d/x.rs", "use super::Thing;\n"),
        (
            "src/d/y.rs",
            "pub struct Thing;\nfn f() { super::x::g() }\n",
        ),
        ("src/e.rs", "fn f() -> crate::Thing { crate::Thing }\n"),
    ];
    // `super::Thing` in x is y's; the root's `Thing` is d's.
    assert_eq!(
        cycles_of(&files),
        ["inside d/: x, y"],
        "the cycle through a re-export is found"
    );
    assert_eq!(top_edges(&files), ["e -> d"]);
}

#[test]
fn a_parent_file_and_its_child_can_make_a_cycle_but_its_re_exports_do_not() {
    let facade = [
        ("src/lib.rs", "pub mod d;\n"),
        ("src/d/mod.rs", "mod x;\npub use x::X;\npub struct Root;\n"),
        ("src/d/x.rs", "pub struct X(super::Root);\n"),
    ];
    assert!(cycles_of(&facade).is_empty());
    let tangled = [
        ("src/lib.rs", "pub mod d;\n"),
        (
            "src/d/mod.rs",
            "mod x;\npub struct Root;\nimpl Root { fn f(&self) { x::g(self) } }\n",
        ),
        ("src/d/x.rs", "pub(super) fn g(_: &super::Root) {}\n"),
    ];
    assert_eq!(cycles_of(&tangled), ["inside d/: (d), x"]);
}

#[test]
fn test_only_code_is_left_out() {
    let files = [
        LIB,
        (
            "src/a.rs",
            "pub fn f() {}\n#[cfg(test)]\nmod tests {\n    use crate::b::helper;\n}\n#[cfg(test)]\nuse crate::c::X;\n",
        ),
        ("src/b.rs", "pub fn helper() { crate::a::f() }\n"),
        ("src/c.rs", "pub struct X; fn g() { crate::a::f() }\n"),
    ];
    assert_eq!(top_edges(&files), ["b -> a", "c -> a"]);
}

#[test]
fn inline_modules_belong_to_their_file() {
    let files = [
        LIB,
        (
            "src/a.rs",
            "mod inner {\n    pub(in super::super) fn f() { super::super::b::g() }\n}\n",
        ),
        (
            "src/b.rs",
            "pub fn g() {}\nfn h() { crate::a::inner::f() }\n",
        ),
    ];
    assert_eq!(cycles_of(&files), ["the crate's top-level modules: a, b"]);
}

#[test]
fn files_over_the_limit_are_named() {
    let long = "x\n".repeat(801);
    let exact = "x\n".repeat(800);
    let files = [
        ("src/long.rs", long.as_str()),
        ("src/ok.rs", exact.as_str()),
    ];
    assert_eq!(oversized(&files, 800), [("src/long.rs", 801)]);
}
