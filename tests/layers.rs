//! The module map of `src/lib.rs` holds: no module of the library imports one of a higher
//! layer, and no two modules import each other, directly or through others.
//!
//! It reads the library's source files as text: every `crate::a::b` path and every
//! `super::x` path names the module it reaches (a file of `src/`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers of `src/lib.rs`, bottom first.
const LAYERS: &[&[&str]] = &[
    &["beat", "errors", "ledger", "members", "raft", "wire"],
    &["config", "metrics", "store"],
    &["peer"],
    &["leadership"],
    &["api"],
    &["node"],
];

fn layer(top: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| l.contains(&top))
        .unwrap_or_else(|| {
            panic!("module {top:?} is in no layer of the map: add it to src/lib.rs and to LAYERS")
        })
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every library source file (the binary's are not part of the library), with its module path.
fn modules() -> BTreeMap<Vec<String>, String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "bin") {
                    walk(&path, out);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&src(), &mut files);
    files
        .into_iter()
        .filter_map(|path| {
            let rel = path.strip_prefix(src()).expect("under src");
            let mut parts: Vec<String> = rel
                .with_extension("")
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|l| l == "mod") {
                parts.pop();
            }
            if parts == ["lib"] || parts == ["main"] {
                return None;
            }
            let text = std::fs::read_to_string(&path).expect("read source");
            Some((parts, text))
        })
        .collect()
}

/// Code without comments and test modules (a test may reach anywhere).
fn code(text: &str) -> String {
    let body = text.split("#[cfg(test)]").next().unwrap_or(text);
    body.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The longest known module that `path` (already made absolute) lies in.
fn resolve(path: &[String], known: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| known.contains(p))
}

/// Paths such as `crate::peer::client` or `super::lease`, also inside `use a::{b, c}`
/// groups (only the part before the brace is needed: it names the module).
fn imports(module: &[String], text: &str, known: &BTreeSet<Vec<String>>) -> BTreeSet<Vec<String>> {
    let code = code(text);
    let mut found = BTreeSet::new();
    for (start, _) in code
        .match_indices("crate::")
        .chain(code.match_indices("super::"))
    {
        let rest = &code[start..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let segments: Vec<&str> = rest[..end].split("::").filter(|s| !s.is_empty()).collect();
        let mut abs: Vec<String> = Vec::new();
        match segments.first() {
            Some(&"crate") => {}
            // `super` is the parent module, for `a/b.rs` and `a/b/mod.rs` alike.
            Some(&"super") => abs.extend(module[..module.len() - 1].iter().cloned()),
            _ => continue,
        }
        abs.extend(segments[1..].iter().map(|s| s.to_string()));
        if let Some(target) = resolve(&abs, known) {
            if target != module && !module.starts_with(&target) {
                found.insert(target);
            }
        }
    }
    found
}

#[test]
fn no_module_imports_a_higher_layer() {
    let modules = modules();
    let known: BTreeSet<Vec<String>> = modules.keys().cloned().collect();
    let mut wrong = Vec::new();
    for (module, text) in &modules {
        for target in imports(module, text, &known) {
            if layer(&target[0]) > layer(&module[0]) {
                wrong.push(format!("{} uses {}", module.join("::"), target.join("::")));
            }
        }
    }
    assert!(modules.len() > 20, "read only {} modules", modules.len());
    assert!(wrong.is_empty(), "imports from a higher layer: {wrong:#?}");
}

#[test]
fn no_two_modules_import_each_other() {
    let modules = modules();
    let known: BTreeSet<Vec<String>> = modules.keys().cloned().collect();
    let graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = modules
        .iter()
        .map(|(m, text)| (m.clone(), imports(m, text, &known)))
        .collect();
    let edges: usize = graph.values().map(BTreeSet::len).sum();
    assert!(edges > 30, "found only {edges} imports: the scan is broken");
    // Depth-first search for a back edge.
    fn visit(
        node: &Vec<String>,
        graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, bool>,
        stack: &mut Vec<Vec<String>>,
    ) -> Option<Vec<String>> {
        match state.get(node) {
            Some(true) => return None,
            Some(false) => {
                let from = stack.iter().position(|n| n == node).unwrap_or(0);
                return Some(stack[from..].iter().map(|n| n.join("::")).collect());
            }
            None => {}
        }
        state.insert(node.clone(), false);
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, state, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        state.insert(node.clone(), true);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        let cycle = visit(node, &graph, &mut state, &mut Vec::new());
        assert!(cycle.is_none(), "import cycle: {:?}", cycle);
    }
}
