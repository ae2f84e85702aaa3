//! The host's layers point down (docs/ARCHITECTURE.md). linli-core cannot name linli-host at
//! all — the compiler keeps that boundary. Inside each crate this test reads every `crate::`
//! path and checks it against the layer list below: a module may use its own layer (without
//! a circle) and the layers under it, never one above. It also checks that every module has
//! a layer and that docs/ARCHITECTURE.md shows the same list.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom first: (layer, crate, modules). `start` is linli-host's lib.rs itself.
const LAYERS: &[(u32, &str, &[&str])] = &[
    (1, "linli-core", &["bindings", "errors", "metrics", "util"]),
    (2, "linli-core", &["store"]),
    (3, "linli-core", &["packages", "tenancy"]),
    (4, "linli-core", &["auth", "usage"]),
    (5, "linli-core", &["capabilities", "help"]),
    (6, "linli-host", &["runtime"]),
    (7, "linli-host", &["platform", "dashboard"]),
    (8, "linli-host", &["api", "oidc", "web"]),
    (9, "linli-host", &["config", "setup", "start"]),
    (10, "linli-host", &["cli"]),
];

/// Root items of linli-host's lib.rs that other modules call: they belong to `start`.
const START_ITEMS: &[&str] = &["start", "open_store", "Server", "StartError"];

fn crate_src(name: &str) -> PathBuf {
    let host = Path::new(env!("CARGO_MANIFEST_DIR"));
    match name {
        "linli-core" => host.join("core/src"),
        _ => host.join("src"),
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a source file belongs to (`start` for lib.rs, none for main.rs).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    match first {
        "lib.rs" => Some("start".into()),
        "main.rs" => None,
        name => Some(name.trim_end_matches(".rs").to_string()),
    }
}

/// The first path segment of every `crate::` path in `source`, comment lines left out.
fn crate_paths(source: &str) -> BTreeSet<String> {
    let code: String = source.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let preceded_by_ident = rest[..at].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_');
        rest = &rest[at + "crate::".len()..];
        if preceded_by_ident {
            continue; // `linli_crate::` or similar, not this crate
        }
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::b, c}`: the first segment of each item at depth 0.
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_alphabetic() || c == '_') => {
                        found.insert(identifier(&group[i..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            found.insert(identifier(rest));
        }
    }
    found
}

fn identifier(text: &str) -> String {
    text.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
}

fn layer_of(krate: &str, module: &str) -> Option<u32> {
    LAYERS.iter().find(|(_, c, modules)| *c == krate && modules.contains(&module)).map(|(layer, _, _)| *layer)
}

/// module -> (module it uses -> files that do).
type Edges = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn edges(krate: &str) -> Edges {
    let src = crate_src(krate);
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(!files.is_empty(), "no sources under {}", src.display());
    let mut edges = Edges::new();
    for file in files {
        let Some(module) = module_of(&src, &file) else { continue };
        let source = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for used in crate_paths(&source) {
            let used = if krate == "linli-host" && START_ITEMS.contains(&used.as_str()) { "start".to_string() } else { used };
            if used != module && used != "self" && used != "super" {
                let shown = file.strip_prefix(&src).unwrap_or(&file).display().to_string();
                edges.entry(module.clone()).or_default().entry(used).or_default().insert(shown);
            }
        }
    }
    edges
}

fn module_names(krate: &str) -> BTreeSet<String> {
    let src = crate_src(krate);
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(&src).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        match name.as_str() {
            "lib.rs" if krate == "linli-host" => {
                names.insert("start".to_string());
            }
            "lib.rs" | "main.rs" => {}
            // A folder of assets (e.g. cli/template) without mod.rs is no module.
            _ if entry.path().join("mod.rs").exists() => {
                names.insert(name);
            }
            _ if name.ends_with(".rs") => {
                names.insert(name.trim_end_matches(".rs").to_string());
            }
            _ => {}
        }
    }
    names
}

#[test]
fn every_module_has_a_layer() {
    for krate in ["linli-core", "linli-host"] {
        for module in module_names(krate) {
            assert!(layer_of(krate, &module).is_some(), "{krate}'s module `{module}` is in no layer: add it to LAYERS here and to docs/ARCHITECTURE.md");
        }
    }
}

#[test]
fn imports_point_down_or_across_without_a_circle() {
    let mut problems = Vec::new();
    for krate in ["linli-core", "linli-host"] {
        let edges = edges(krate);
        // In linli-host, `crate::store` etc. are linli-core's modules, re-exported: below every host layer.
        let layer = |module: &str| layer_of(krate, module).or_else(|| (krate == "linli-host").then(|| layer_of("linli-core", module)).flatten());
        for (from, uses) in &edges {
            let Some(from_layer) = layer(from) else { continue };
            for (to, files) in uses {
                match layer(to) {
                    Some(to_layer) if to_layer > from_layer => {
                        problems.push(format!("{krate}: `{from}` (layer {from_layer}) uses `{to}` (layer {to_layer}) in {files:?}"))
                    }
                    Some(_) => {}
                    None if to.chars().next().is_some_and(char::is_uppercase) => {} // a type at the crate root
                    None => problems.push(format!("{krate}: `{from}` uses `crate::{to}`, which is in no layer ({files:?})")),
                }
            }
        }
        // Within a layer: no circle.
        for (from, uses) in &edges {
            for to in uses.keys() {
                if layer(from) == layer(to) && reaches(&edges, to, from, &mut BTreeSet::new()) {
                    problems.push(format!("{krate}: `{from}` and `{to}` use each other (a circle in layer {:?})", layer(from)));
                }
            }
        }
    }
    assert!(problems.is_empty(), "imports that do not point down:\n{}", problems.join("\n"));
}

fn reaches(edges: &Edges, from: &str, target: &str, seen: &mut BTreeSet<String>) -> bool {
    if from == target {
        return true;
    }
    if !seen.insert(from.to_string()) {
        return false;
    }
    edges.get(from).is_some_and(|uses| uses.keys().any(|next| reaches(edges, next, target, seen)))
}

#[test]
fn the_architecture_document_shows_these_layers() {
    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/ARCHITECTURE.md");
    let doc = std::fs::read_to_string(&doc_path).unwrap_or_else(|e| panic!("{}: {e}", doc_path.display()));
    // Rows of the layer table: `| 5 | linli-core | `capabilities` | … |`.
    let mut documented = Vec::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 {
            continue;
        }
        let Ok(layer) = cells[1].parse::<u32>() else { continue };
        let modules: Vec<String> = cells[3].split(',').map(|m| m.trim().trim_matches('`').to_string()).collect();
        documented.push((layer, cells[2].trim_matches('`').to_string(), modules));
    }
    documented.sort();
    let mut expected: Vec<(u32, String, Vec<String>)> =
        LAYERS.iter().map(|(layer, krate, modules)| (*layer, krate.to_string(), modules.iter().map(|m| m.to_string()).collect())).collect();
    expected.sort();
    assert_eq!(documented, expected, "the layer table in docs/ARCHITECTURE.md differs from LAYERS in host/tests/layers.rs");
}

#[test]
fn crate_paths_reads_groups_and_skips_comments() {
    let source = "use crate::{store::{now_millis, Store}, tenancy};\n// crate::api in a comment\nlet x = crate::util::today();\nuse linli_crate::nothing;";
    let found: Vec<String> = crate_paths(source).into_iter().collect();
    assert_eq!(found, ["store", "tenancy", "util"]);
}
