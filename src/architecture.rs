//! The crate's shape, checked: which top-level modules import which, and the circles among
//! them. A capability may import the API's primitives and the spine below it, never a module
//! that imports it back, directly or through others.
//!
//! There is no circle. The check reads the sources: every `crate::name` path outside a comment line, including
//! each first segment of a `use crate::{...}` group, is an import of `name`. Imports between
//! files of one module do not count.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn modules(src: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let mut found = BTreeMap::new();
    for entry in std::fs::read_dir(src).expect("src/") {
        let path = entry.expect("entry").path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            let mut files = Vec::new();
            let mut dirs = vec![path.clone()];
            while let Some(dir) = dirs.pop() {
                for e in std::fs::read_dir(&dir).expect("module folder") {
                    let p = e.expect("entry").path();
                    if p.is_dir() {
                        dirs.push(p);
                    } else if p.extension().is_some_and(|x| x == "rs") {
                        files.push(p);
                    }
                }
            }
            found.insert(name, files);
        } else if path.extension().is_some_and(|x| x == "rs") && name != "lib" && name != "main" {
            found.entry(name).or_insert_with(Vec::new).push(path);
        }
    }
    found
}

/// The first segments of the `crate::` paths in `code`.
fn imported(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut names = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The group's items at its own depth: `a, b::c, d::{e, f}`.
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_ascii_alphanumeric() || c == '_') => {
                        names.insert(ident(&group[i..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            names.insert(ident(rest));
        }
    }
    names
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = modules(&src);
    let mut graph = BTreeMap::new();
    for (name, files) in &modules {
        let mut deps = BTreeSet::new();
        for file in files {
            let text = std::fs::read_to_string(file).expect("source");
            let code: String = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            deps.extend(
                imported(&code)
                    .into_iter()
                    .filter(|d| d != name && modules.contains_key(d)),
            );
        }
        graph.insert(name.clone(), deps);
    }
    graph
}

/// Every import `(a, b)` such that `b` reaches `a`.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<(String, String)> {
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_owned()];
        while let Some(m) = todo.pop() {
            for d in &graph[&m] {
                if seen.insert(d.clone()) {
                    todo.push(d.clone());
                }
            }
        }
        seen
    };
    let mut found = BTreeSet::new();
    for (a, deps) in graph {
        for b in deps {
            if reach(b).contains(a) {
                found.insert((a.clone(), b.clone()));
            }
        }
    }
    found
}

#[test]
fn imports_are_read_from_paths_and_groups() {
    let code = "use crate::api::{check_text, is_slug};\nuse crate::{error::ApiError, ids, store::{Db, Tx}};\nlet x = crate::time::now();";
    let names: Vec<String> = imported(code).into_iter().collect();
    assert_eq!(names, ["api", "error", "ids", "store", "time"]);
}

#[test]
fn circles_are_found_through_other_modules() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a", "d"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(m, d)| (m.to_owned(), d.into_iter().map(str::to_owned).collect()))
    .collect();
    let found: Vec<(String, String)> = circles(&graph).into_iter().collect();
    let pairs: Vec<(&str, &str)> = found
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(pairs, [("a", "b"), ("b", "c"), ("c", "a")]);
}

#[test]
fn no_top_level_module_imports_one_that_imports_it_back() {
    let graph = graph();
    assert!(graph.contains_key("events") && graph.contains_key("journeys"));
    let found = circles(&graph);
    assert!(
        found.is_empty(),
        "imports on a circle (a imports b, and b reaches a): {found:?}; a capability that must \
         act on another's change reacts to its event (events::Reaction) or is handed in by \
         lib.rs (Hooks), rather than import it"
    );
}

#[test]
fn the_spine_imports_no_capability() {
    let graph = graph();
    let lower = [
        "api", "calls", "channel", "error", "ids", "store", "time", "actor", "config", "bounded",
    ];
    let above: Vec<&String> = graph["events"]
        .iter()
        .filter(|d| !lower.contains(&d.as_str()))
        .collect();
    assert!(above.is_empty(), "events imports {above:?}");
}

#[test]
fn only_the_store_tells_the_databases_apart() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for (name, files) in modules(&src) {
        if name == "store" || name == "architecture" {
            continue;
        }
        for file in files {
            let text = std::fs::read_to_string(&file).expect("source");
            assert!(
                !text.contains("backend_name()") && !text.contains("\"PostgreSQL\""),
                "{} tells the databases apart itself: ask store::dialect",
                file.display()
            );
        }
    }
}
