//! The library's modules form layers: no module reaches, through `crate::` paths, a module
//! that reaches it back. A folder (`pipeline/`, `otlp/`) counts as one module; `lib.rs`, which
//! declares them all, and the tests inside each file are left out.
//!
//! The check reads the sources as text: the first segment of every `crate::` path (and of each
//! path in a `crate::{..}` group) is an edge from the file's top-level module to that one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The top-level module of a file under `src/` (None for lib.rs and the binaries).
fn module_of(rel: &Path) -> Option<String> {
    let mut parts = rel.iter().map(|p| p.to_string_lossy().into_owned());
    let first = parts.next()?;
    if first == "lib.rs" || first == "bin" {
        return None;
    }
    Some(first.trim_end_matches(".rs").to_string())
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without its comments and its `#[cfg(test)]` modules.
fn code_of(text: &str) -> String {
    let mut out = String::new();
    let mut skip_depth: Option<usize> = None;
    let mut depth = 0usize;
    let mut test_next = false;
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let t = code.trim();
        if skip_depth.is_none() {
            if t == "#[cfg(test)]" {
                test_next = true;
                continue;
            }
            if test_next && t.starts_with("mod ") && t.ends_with('{') {
                skip_depth = Some(depth);
            }
            test_next = false;
        }
        depth += code.matches('{').count();
        depth = depth.saturating_sub(code.matches('}').count());
        match skip_depth {
            Some(d) if depth <= d && code.contains('}') => skip_depth = None,
            Some(_) => {}
            None => {
                out.push_str(code);
                out.push('\n');
            }
        }
    }
    out
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The first segments of the `crate::` paths in `code`.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && (c.is_ascii_alphabetic() || c == '_') => {
                        out.insert(ident_at(&group[j..]).to_string());
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident_at(rest).to_string());
        }
    }
    out
}

/// The edges between top-level modules.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut modules = BTreeSet::new();
    for f in &files {
        if let Some(m) = module_of(f.strip_prefix(&src).unwrap()) {
            modules.insert(m);
        }
    }
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let Some(m) = module_of(f.strip_prefix(&src).unwrap()) else {
            continue;
        };
        let code = code_of(&std::fs::read_to_string(f).unwrap());
        let e = g.entry(m.clone()).or_default();
        for to in crate_paths(&code) {
            if to != m && modules.contains(&to) {
                e.insert(to);
            }
        }
    }
    g
}

/// A circle through `start`, if there is one (a path back to it).
fn circle_through(
    g: &BTreeMap<String, BTreeSet<String>>,
    start: &str,
    at: &str,
    path: &mut Vec<String>,
    seen: &mut BTreeSet<String>,
) -> bool {
    for next in g.get(at).into_iter().flatten() {
        if next == start {
            return true;
        }
        if seen.insert(next.clone()) {
            path.push(next.clone());
            if circle_through(g, start, next, path, seen) {
                return true;
            }
            path.pop();
        }
    }
    false
}

#[test]
fn modules_form_layers_without_a_circle() {
    let g = graph();
    assert!(g.len() > 10, "the sources were not read: {g:?}");
    assert!(
        g["pipeline"].contains("buffer"),
        "the check sees no edge it must see"
    );
    let mut circles = Vec::new();
    for m in g.keys() {
        let mut path = vec![m.clone()];
        if circle_through(&g, m, m, &mut path, &mut BTreeSet::new()) {
            path.push(m.clone());
            circles.push(path.join(" -> "));
        }
    }
    assert!(
        circles.is_empty(),
        "import circles between modules:\n{}",
        circles.join("\n")
    );
}

/// The check finds a circle when there is one.
#[test]
fn a_circle_is_found() {
    let mut g = graph();
    g.get_mut("fork").unwrap().insert("pipeline".into());
    let mut path = vec!["fork".to_string()];
    assert!(circle_through(
        &g,
        "fork",
        "fork",
        &mut path,
        &mut BTreeSet::new()
    ));
}

#[test]
fn paths_are_read_from_groups_and_comments_are_not() {
    let code = code_of(
        "use crate::{a::B, c, d::{e, f}};\n// crate::z\nfn x() { crate::g::h(); }\n\
         #[cfg(test)]\nmod tests {\n    use crate::t;\n}\n",
    );
    let got: Vec<_> = crate_paths(&code).into_iter().collect();
    assert_eq!(got, ["a", "c", "d", "g"]);
}
