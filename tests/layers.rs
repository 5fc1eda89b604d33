//! The library's layers, as docs/explanation/code-layout.md draws them, against the code: every
//! module of `src/` (the CLI and the tests aside) names only modules of its own layer or the
//! layers below it (`crate::…` paths in its non-test code), and no two top-level modules name
//! each other, directly or around a loop. The doc's table is the test's input, so the picture a
//! reader sees and the code cannot drift apart.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const DOC: &str = "docs/explanation/code-layout.md";

/// Layer number of each top-level module, from the doc's "Layers" table: rows
/// `| N | `a`, `b` | what |`, bottom (1) first.
fn layers_from_doc(text: &str) -> BTreeMap<String, usize> {
    let section = text.split("## Layers").nth(1).expect("code-layout.md has a `## Layers` section");
    let mut layers = BTreeMap::new();
    for line in section.lines().take_while(|l| !l.starts_with("## ")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let Some(n) = cells.get(1).and_then(|c| c.parse::<usize>().ok()) else { continue };
        for name in cells[2].split(',') {
            let name = name.trim().trim_matches('`');
            assert!(layers.insert(name.to_string(), n).is_none(), "{name} is in two layers of the doc");
        }
    }
    layers
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().unwrap() != "bin" {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`src/nn/unet.rs` → `nn`).
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix("src").unwrap();
    let first = rel.components().next().unwrap().as_os_str().to_str().unwrap();
    first.trim_end_matches(".rs").to_string()
}

/// The code before the file's `#[cfg(test)]` module, without comments.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap();
    let text = text.split("#[cfg(test)]\npub(crate) mod tests").next().unwrap();
    text.lines().map(|l| l.split("//").next().unwrap()).collect::<Vec<_>>().join("\n")
}

/// The top-level modules a piece of code names: `crate::x`, and `crate::{x, y::…}`.
fn named_modules(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // A use tree: the first identifier of each comma-separated item at depth 0.
            let mut depth = 0;
            let mut item_start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        out.insert(ident(&group[j..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident(rest));
        }
    }
    out.retain(|m| !m.is_empty() && m != "self");
    out
}

#[test]
fn the_layers_of_the_architecture_doc_are_the_layers_of_the_code() {
    let doc = std::fs::read_to_string(DOC).unwrap();
    let layers = layers_from_doc(&doc);
    assert!(layers.len() >= 10, "the doc's table names only {} modules", layers.len());
    let mut files = Vec::new();
    rust_files(Path::new("src"), &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for file in &files {
        let module = module_of(file);
        if module == "lib" {
            continue;
        }
        let Some(&layer) = layers.get(&module) else {
            problems.push(format!("src/{module} is in no layer of {DOC}"));
            continue;
        };
        for named in named_modules(&code(&std::fs::read_to_string(file).unwrap())) {
            if named == module {
                continue;
            }
            match layers.get(&named) {
                Some(&l) if l > layer => problems.push(format!("{} (layer {layer}) names `crate::{named}` (layer {l}), above it", file.display())),
                Some(_) => {
                    edges.entry(module.clone()).or_default().insert(named);
                }
                None => problems.push(format!("{} names `crate::{named}`, in no layer of {DOC}", file.display())),
            }
        }
    }
    // No loops: repeatedly remove modules that name no remaining module.
    let mut left: BTreeSet<String> = edges.keys().chain(edges.values().flatten()).cloned().collect();
    loop {
        let leaf = left.iter().find(|m| edges.get(*m).is_none_or(|deps| deps.iter().all(|d| !left.contains(d)))).cloned();
        match leaf {
            Some(m) => {
                left.remove(&m);
            }
            None => break,
        }
    }
    if !left.is_empty() {
        problems.push(format!("these modules name each other around a loop: {left:?}"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The parser above, on the forms the code uses (so that the test cannot pass by reading nothing).
#[test]
fn named_modules_reads_paths_and_use_trees() {
    let code = "use crate::sde::Sde;\nuse crate::{nn::unet::{UNet, X}, score};\nlet x = crate::rng::stream_key(1, 2, 3);\nuse crate::{self as c};";
    let names: Vec<String> = named_modules(code).into_iter().collect();
    assert_eq!(names, ["nn", "rng", "score", "sde"]);
    let doc = "# t\n## Layers\n\n| layer | modules | what |\n|---|---|---|\n| 1 | `a`, `b` | x |\n| 2 | `c` | y |\n\n## Next\n| 3 | `d` | z |";
    let layers = layers_from_doc(doc);
    assert_eq!(layers.into_iter().collect::<Vec<_>>(), [("a".to_string(), 1), ("b".to_string(), 1), ("c".to_string(), 2)]);
}
