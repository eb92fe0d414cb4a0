//! The links of the documentation resolve: every relative link of `README.md`, `SECURITY.md`,
//! `docs/*.md` and the bindings' READMEs names a file of the repository, and a `#anchor` names
//! a heading of that file (as GitHub makes anchors of headings), so that a section moved to
//! another file does not leave its links behind.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The documents checked, relative to the repository.
fn documents() -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = ["README.md", "SECURITY.md"].map(PathBuf::from).to_vec();
    for dir in ["docs", "bindings"] {
        let entries = std::fs::read_dir(root().join(dir)).unwrap_or_else(|e| panic!("{dir}: {e}"));
        for entry in entries {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root()).unwrap().to_path_buf();
            if dir == "docs" && rel.extension().is_some_and(|e| e == "md") {
                docs.push(rel);
            } else if dir == "bindings" && path.join("README.md").is_file() {
                docs.push(rel.join("README.md"));
            }
        }
    }
    docs.sort();
    docs
}

/// The lines of `text` outside fenced code blocks.
fn prose(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|l| {
            if l.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

/// The targets of the inline links `[text](target)` of `text`, outside code.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in prose(text) {
        // Inline code is not a link: drop what is between backticks.
        let plain: String = line
            .split('`')
            .enumerate()
            .map(|(i, part)| if i % 2 == 0 { part } else { "" })
            .collect();
        let mut rest = plain.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            match after.find(')') {
                Some(end) => {
                    out.push(after[..end].trim().to_owned());
                    rest = &after[end..];
                }
                None => break,
            }
        }
    }
    out
}

/// GitHub's anchor of a heading: lowercase, spaces to `-`, other punctuation but `-` and `_`
/// dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c.to_lowercase().next().unwrap_or(c)),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> Vec<String> {
    prose(text)
        .into_iter()
        .filter_map(|l| {
            let h = l.trim_start_matches('#');
            (h.len() < l.len() && h.starts_with(' ')).then(|| slug(h))
        })
        .collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_relative_link_and_anchor_of_the_docs_resolves() {
    let docs = documents();
    assert!(
        docs.iter().any(|d| d.starts_with("docs")),
        "no docs/*.md found: {docs:?}"
    );
    let mut broken = Vec::new();
    let mut checked = 0;
    for doc in &docs {
        let text = read(&root().join(doc));
        for link in links(&text) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (file, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let target = if file.is_empty() {
                root().join(doc)
            } else {
                root().join(doc).parent().unwrap().join(file)
            };
            if !target.exists() {
                broken.push(format!("{}: {link}: no such file", doc.display()));
                continue;
            }
            if !anchor.is_empty() && !anchors(&read(&target)).iter().any(|a| a == anchor) {
                broken.push(format!(
                    "{}: {link}: no heading with that anchor",
                    doc.display()
                ));
            }
        }
    }
    assert!(checked >= 10, "only {checked} relative links found");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_page_of_docs_is_linked() {
    // From the README, or from another page (BENCHMARKS.md, SECURITY.md, docs/, a binding's
    // README).
    let mut linkers = documents();
    linkers.push(PathBuf::from("BENCHMARKS.md"));
    let targets: Vec<PathBuf> = linkers
        .iter()
        .flat_map(|l| {
            let dir = root().join(l).parent().unwrap().to_path_buf();
            links(&read(&root().join(l)))
                .into_iter()
                .filter_map(move |t| dir.join(t.split('#').next()?).canonicalize().ok())
                .filter(move |p| *p != root().join(l).canonicalize().unwrap())
        })
        .collect();
    for doc in documents().iter().filter(|d| d.starts_with("docs")) {
        let path = root().join(doc).canonicalize().unwrap();
        assert!(targets.contains(&path), "nothing links {}", doc.display());
    }
}

#[test]
fn slugs_are_githubs() {
    assert_eq!(slug("OpenTelemetry (sink=otlp)"), "opentelemetry-sinkotlp");
    assert_eq!(
        slug("The operator's command line"),
        "the-operators-command-line"
    );
    assert_eq!(
        slug("Lifecycle: flush, free, exit, crash"),
        "lifecycle-flush-free-exit-crash"
    );
    assert_eq!(
        links("see [a](docs/a.md#x) and `[b](c)` and [d](https://e)"),
        ["docs/a.md#x", "https://e"]
    );
}
