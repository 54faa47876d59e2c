//! The gateway's top-level modules form no cycle (docs/architecture.md says who may use whom).
//! A module's dependencies are read from its sources: every `crate::<module>` path outside
//! comments, including the members of `use crate::{a, b::c}` groups.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The modules `lib.rs` declares (`pub mod x;`).
fn top_level_modules(lib_rs: &str) -> BTreeSet<String> {
    lib_rs
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let rest = line
                .strip_prefix("pub mod ")
                .or_else(|| line.strip_prefix("mod "))?;
            Some(rest.strip_suffix(';')?.to_owned())
        })
        .collect()
}

/// The source without `//` comments (doc links are not dependencies).
fn without_comments(source: &str) -> String {
    source
        .lines()
        .map(|line| line.find("//").map_or(line, |at| &line[..at]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn leading_identifier(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The first path segment after every `crate::` in `source`.
fn crate_paths(source: &str) -> BTreeSet<String> {
    let code = without_comments(source);
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let Some(group) = rest.strip_prefix('{') else {
            found.insert(leading_identifier(rest).to_owned());
            continue;
        };
        // `crate::{a, b::{c, d}}`: the first segment of each member at depth 0.
        let mut depth = 0;
        let mut member_start = true;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    rest = &group[i..];
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => member_start = true,
                c if c.is_whitespace() => {}
                _ if member_start => {
                    found.insert(leading_identifier(&group[i..]).to_owned());
                    member_start = false;
                }
                _ => {}
            }
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Which top-level module uses which, from the files under `src`.
fn module_graph(src: &Path) -> Graph {
    let modules = top_level_modules(&std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs"));
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph = Graph::new();
    for file in files {
        let relative = file.strip_prefix(src).expect("under src");
        let first = relative.components().next().expect("a path");
        let first = first.as_os_str().to_string_lossy();
        let module = first.strip_suffix(".rs").unwrap_or(&first).to_owned();
        if !modules.contains(&module) {
            continue; // lib.rs, main.rs
        }
        let source = std::fs::read_to_string(&file).expect("source");
        let uses = graph.entry(module.clone()).or_default();
        for used in crate_paths(&source) {
            if used != module && modules.contains(&used) {
                uses.insert(used);
            }
        }
    }
    graph
}

/// A cycle in `graph`, as the modules along it (first == last), if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        graph: &Graph,
        module: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|m| m == module) {
            let mut cycle = path[at..].to_vec();
            cycle.push(module.to_owned());
            return Some(cycle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_owned());
        for used in graph.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(graph, used, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(module.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|module| visit(graph, module, &mut Vec::new(), &mut done))
}

fn gateway_graph() -> Graph {
    module_graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

#[test]
fn no_cycle_among_the_top_level_modules() {
    let graph = gateway_graph();
    if let Some(cycle) = find_cycle(&graph) {
        panic!("module cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn config_is_a_leaf() {
    // The stages read their settings from config; config depends on none of them.
    let graph = gateway_graph();
    assert_eq!(graph.get("config"), Some(&BTreeSet::new()));
}

#[test]
fn the_graph_is_read_from_the_sources() {
    let graph = gateway_graph();
    // Known edges, so the checks above do not pass on an empty graph.
    assert!(graph["pipeline"].contains("authorize"));
    assert!(graph["forward"].contains("authenticate"));
}

#[test]
fn paths_groups_and_comments() {
    let source = "use crate::error::GatewayError;\n\
                  use crate::{audit::Trail, listen::{Peer, serve}, store};\n\
                  // see crate::portal\n\
                  let x = crate::resolve::plan(); // crate::filter\n\
                  use crate::{\n    classify,\n    forward::Upstream,\n};";
    let found: Vec<String> = crate_paths(source).into_iter().collect();
    assert_eq!(
        found,
        [
            "audit", "classify", "error", "forward", "listen", "resolve", "store"
        ]
    );
}

#[test]
fn a_cycle_is_found() {
    let graph: Graph = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]
        .into_iter()
        .fold(Graph::new(), |mut g, (from, to)| {
            g.entry(from.into()).or_default().insert(to.into());
            g
        });
    assert_eq!(
        find_cycle(&graph),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    let mut acyclic = graph.clone();
    acyclic.get_mut("c").expect("c").remove("a");
    assert_eq!(find_cycle(&acyclic), None);
}
