//! One table per fact: the options (`config::KEYS`), the statuses (`rarch_status`) and the
//! counters (`StatsSnapshot`) are written once in the code; the header's list of options, the
//! tables of `docs/options.md` and `docs/error-codes.md`, the header's `rarch_statistics` and
//! the C++ wrapper's `rarch::errc` must say the same. (Each binding's own tests check its tables
//! against the header.)

use rarch_logging::config::KEYS;
use rarch_logging::StatsSnapshot;
use std::path::PathBuf;

fn read(path: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The text between the first `start` and the next `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).unwrap_or_else(|| panic!("no {start:?}"));
    let rest = &text[from..];
    &rest[..rest
        .find(end)
        .unwrap_or_else(|| panic!("no {end:?} after {start:?}"))]
}

/// The header's list of options (the comment of `rarch_options_set`): one `(key, text in
/// brackets)` per item `` - `key` (...) ``.
fn header_options() -> Vec<(String, String)> {
    let header = read("include/rarch_logging.h");
    let doc = between(
        &header,
        "Sets one option",
        "enum rarch_status rarch_options_set(",
    );
    doc.lines()
        .filter_map(|l| {
            let item = l.trim_start().strip_prefix("* - `")?;
            let (key, rest) = item.split_once("` (")?;
            let (text, _) = rest.split_once(')')?;
            Some((key.to_owned(), text.to_owned()))
        })
        .collect()
}

#[test]
fn the_headers_list_of_options_is_keys() {
    let listed = header_options();
    let keys: Vec<&str> = KEYS.iter().map(|k| k.0).collect();
    let names: Vec<&str> = listed.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names, keys,
        "the options in the comment of rarch_options_set (src/ffi.rs), against config::KEYS"
    );
    for ((key, text), (_, env, default, _)) in listed.iter().zip(KEYS) {
        // `(ENV, default)` or `(default)`; an empty default is written `empty...`.
        let rest = match env {
            Some(e) => text
                .strip_prefix(&format!("{e}, "))
                .unwrap_or_else(|| panic!("`{key}` ({text}): its variable {e} first")),
            None => text.as_str(),
        };
        if default.is_empty() {
            assert!(
                rest.starts_with("empty"),
                "`{key}` ({text}): empty by default"
            );
        } else {
            assert_eq!(rest, *default, "`{key}` ({text}): its default");
        }
    }
}

#[test]
fn the_table_of_options_in_docs_is_keys() {
    let doc = read("docs/options.md");
    let table = between(&doc, "| key | environment | default | meaning |", "\n\n");
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip(2)
        .map(|l| l.split('|').skip(1).map(str::trim).collect())
        .collect();
    let keys: Vec<String> = KEYS.iter().map(|k| format!("`{}`", k.0)).collect();
    let names: Vec<&str> = rows.iter().map(|r| r[0]).collect();
    assert_eq!(
        names, keys,
        "docs/options.md's table of options, against config::KEYS"
    );
    for (row, (key, env, default, _)) in rows.iter().zip(KEYS) {
        let env = env.map(|e| format!("`{e}`")).unwrap_or_default();
        assert_eq!(
            row[1], env,
            "docs/options.md, `{key}`: its environment variable"
        );
        if default.is_empty() {
            assert!(
                !row[2].starts_with('`'),
                "docs/options.md, `{key}`: no default value"
            );
        } else {
            assert_eq!(
                row[2],
                format!("`{default}`"),
                "docs/options.md, `{key}`: its default"
            );
        }
    }
}

#[test]
fn the_statuses_in_docs_are_the_headers() {
    let header = read("include/rarch_logging.h");
    let in_header: Vec<&str> = between(&header, "typedef enum rarch_status {", "} rarch_status;")
        .lines()
        .filter_map(|l| l.trim().split_once(" = ").map(|(n, _)| n))
        .filter(|n| n.starts_with("RARCH_"))
        .collect();
    assert!(in_header.len() >= 16, "{in_header:?}");
    let doc = read("docs/error-codes.md");
    let table = between(&doc, "| status | when |", "\n\n");
    let mut in_doc: Vec<&str> = table
        .split('`')
        .filter(|w| w.starts_with("RARCH_") && !w.contains(' '))
        .collect();
    in_doc.dedup();
    assert_eq!(
        in_doc, in_header,
        "docs/error-codes.md's statuses, against the header"
    );
}

#[test]
fn every_counter_is_in_rarch_statistics() {
    let header = read("include/rarch_logging.h");
    let fields: Vec<&str> = between(
        &header,
        "typedef struct rarch_statistics {",
        "} rarch_statistics;",
    )
    .lines()
    .filter_map(|l| {
        let l = l.trim();
        let decl = l.strip_suffix(';')?;
        (!l.starts_with('*') && !l.starts_with('/')).then(|| decl.rsplit(' ').next())?
    })
    .collect();
    assert_eq!(fields.first(), Some(&"size"), "{fields:?}");
    for name in StatsSnapshot::NAMES {
        assert!(
            fields.contains(name),
            "the counter {name} is not a field of rarch_statistics ({fields:?})"
        );
    }
}

#[test]
fn the_cpp_wrappers_errc_names_every_status() {
    let header = read("include/rarch_logging.h");
    let in_header: Vec<&str> = between(&header, "typedef enum rarch_status {", "} rarch_status;")
        .lines()
        .filter_map(|l| l.trim().split_once(" = ").map(|(n, _)| n))
        .filter(|n| n.starts_with("RARCH_ERR_"))
        .collect();
    let hpp = read("bindings/c/rarch_logging.hpp");
    let named: Vec<&str> = hpp
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').split_once(" = "))
        .map(|(_, v)| v)
        .filter(|v| v.starts_with("RARCH_ERR_"))
        .collect();
    assert_eq!(
        named, in_header,
        "rarch::errc in bindings/c/rarch_logging.hpp"
    );
}
