//! The module graph of `src/`, read from the source: which top-level module names which (`crate::NAME`,
//! test code left out). Arrows point down only: no cycle among top-level modules, `results` and `config`
//! are plain data that know nothing of the engine or the faces, and `report` reads results only.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Top-level module → the top-level modules its non-test code names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> = files
        .iter()
        .map(|f| {
            let rel = f.strip_prefix(&src).unwrap();
            let first = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy();
            first.trim_end_matches(".rs").to_string()
        })
        .filter(|m| m != "lib" && m != "main")
        .collect();
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        if rel.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let from = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        let text = std::fs::read_to_string(f).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        let prefix = if from == "main" {
            "quantbench::"
        } else {
            "crate::"
        };
        let deps = g.entry(from.clone()).or_default();
        for (i, _) in code.match_indices(prefix) {
            let name: String = code[i + prefix.len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if modules.contains(&name) && name != from {
                deps.insert(name);
            }
        }
    }
    g
}

fn cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut c = path[i..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for d in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(d, g, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|n| visit(n, g, &mut Vec::new(), &mut done))
}

#[test]
fn no_import_cycle_among_top_level_modules() {
    let g = graph();
    for (m, deps) in &g {
        println!(
            "{m} → {}",
            deps.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    assert_eq!(cycle(&g), None, "module graph has a cycle");
    // The checker itself finds a cycle when there is one.
    let mut bad = g.clone();
    bad.entry("results".into())
        .or_default()
        .insert("engine".into());
    assert!(cycle(&bad).is_some());
}

#[test]
fn plain_data_and_faces_do_not_reach_into_the_engine() {
    let g = graph();
    for plain in ["results", "config"] {
        for forbidden in ["engine", "report", "tui", "commands", "cli"] {
            assert!(
                !g[plain].contains(forbidden),
                "{plain} imports {forbidden}: {:?}",
                g[plain]
            );
        }
    }
    for forbidden in ["engine", "tui", "commands"] {
        assert!(
            !g["report"].contains(forbidden),
            "report imports {forbidden}"
        );
    }
    assert!(!g["tui"].contains("commands") && !g["engine"].contains("tui"));
    assert_eq!(
        g["main"],
        ["cli", "commands"].iter().map(|s| s.to_string()).collect(),
        "main only dispatches"
    );
}
