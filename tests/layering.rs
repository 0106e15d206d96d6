//! The module map in `src/lib.rs` is a promise: dependencies point one way, and no file grows into
//! a second concept. This test holds the code to it, so a change that makes the store import the
//! peer layer, or the HTTP parser import the connection loop, fails here and not in review.
//!
//! It reads the `Layers:` line of `src/lib.rs` (the top-level modules, lowest first), then every
//! `.rs` file under `src/`: code lines (comments skipped) may name `crate::<module>` only for a
//! module listed before their own. Every module `lib.rs` declares must be on the line.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Longest file in `src/` (issue 7: "no file in `src/` exceeds ~500 lines").
const MAX_LINES: usize = 500;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The layers, lowest first, from the `//! Layers:` line of `src/lib.rs`.
fn layers() -> Vec<String> {
    let lib = fs::read_to_string(src().join("lib.rs")).unwrap();
    let line = lib
        .lines()
        .find(|l| l.starts_with("//! Layers:"))
        .expect("src/lib.rs has no `//! Layers:` line");
    let names: Vec<String> = line
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    assert!(names.len() > 5, "Layers line names too few modules: {line}");
    names
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `crate::<name>` references on the code lines of `text` (line comments and doc comments
/// skipped: an intra-doc link is not a dependency).
fn crate_refs(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // `$crate::` inside a macro is the same crate; the name check below covers it.
            out.push((n + 1, name));
            rest = after;
        }
    }
    out
}

#[test]
fn every_module_imports_only_lower_layers() {
    let order = layers();
    let rank: BTreeMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, m)| (m.as_str(), i))
        .collect();
    let lib = fs::read_to_string(src().join("lib.rs")).unwrap();
    for decl in lib.lines().filter_map(|l| l.strip_prefix("pub mod ")) {
        let m = decl.trim_end_matches(';');
        assert!(
            rank.contains_key(m),
            "module `{m}` is declared in src/lib.rs but not placed on its `Layers:` line"
        );
    }
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut wrong = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(src()).unwrap();
        let Some(own) = rel.components().next().and_then(|c| c.as_os_str().to_str()) else {
            continue;
        };
        let own = own.trim_end_matches(".rs");
        let Some(&own_rank) = rank.get(own) else {
            continue; // lib.rs, main.rs: the top, they may use anything
        };
        for (line, name) in crate_refs(&fs::read_to_string(f).unwrap()) {
            match rank.get(name.as_str()) {
                Some(&r) if r > own_rank => wrong.push(format!(
                    "src/{}:{line}: `{own}` uses `{name}`, a higher layer",
                    rel.display()
                )),
                _ => {}
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dependencies must point down the `Layers:` line of src/lib.rs ({}):\n{}",
        order.join(" < "),
        wrong.join("\n")
    );
}

/// Every `.rs` file under `src/` with its text.
fn sources() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files
        .into_iter()
        .map(|f| {
            let text = fs::read_to_string(&f).unwrap();
            (f, text)
        })
        .collect()
}

#[test]
fn no_source_file_is_over_the_limit() {
    let long: Vec<String> = sources()
        .iter()
        .filter_map(|(f, text)| {
            let n = text.lines().count();
            (n > MAX_LINES).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "split these by concept (limit {MAX_LINES} lines): {}",
        long.join(", ")
    );
}

/// The checker itself: a reference in code counts, one in a comment does not.
#[test]
fn references_in_comments_are_not_dependencies() {
    let refs = crate_refs("use crate::store::Shard; // see crate::api\n//! [`crate::server`]\n");
    assert_eq!(refs, vec![(1, "store".to_string())]);
}

/// A dist counter's index is computed at compile time (`const { idx("…") }`): called plainly,
/// `metrics::dist::idx` may stay a table scan with string compares on the write path (the
/// tenth session's profile found one per replicated PUT).
#[test]
fn dist_counter_indices_are_constants() {
    let mut plain = Vec::new();
    for (f, text) in sources() {
        for (n, l) in text.lines().enumerate() {
            let bare = l
                .match_indices("idx(\"")
                .any(|(i, _)| !l[..i].ends_with("const { ") && !l[..i].ends_with('_'));
            if bare {
                plain.push(format!("{}:{}: {}", f.display(), n + 1, l.trim()));
            }
        }
    }
    assert!(
        plain.is_empty(),
        "write const {{ idx(\"…\") }}:\n{}",
        plain.join("\n")
    );
}
