//! The source tree's shape, checked from the files themselves: the folders are layers and
//! dependencies point one way (cli → supervisor → transport → service → tenants → saml; ops,
//! state and testing are leaves over saml; nothing uses cli), no two modules use each other in
//! a circle, the error table depends on nothing but the core's codes, and no file or function
//! grows past what one can read in one sitting without saying why at its top.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Which top-level modules each top-level module may use (besides itself).
const ALLOWED: &[(&str, &[&str])] = &[
    ("saml", &[]),
    // The configuration file is plain data over the core's types: nothing below it but `saml`.
    ("config", &["saml"]),
    ("ops", &["saml", "config"]),
    ("state", &["saml", "config", "ops"]),
    ("testing", &["saml"]),
    ("tenants", &["saml", "config", "ops"]),
    ("service", &["saml", "config", "ops", "state", "tenants"]),
    ("transport", &["saml", "config", "ops", "state", "tenants", "service"]),
    ("supervisor", &["saml", "config", "ops", "state", "tenants", "service", "transport"]),
    // The command line, the binary's only entry: above every layer, and used by none.
    ("cli", &["saml", "config", "ops", "state", "testing", "tenants", "service", "transport", "supervisor"]),
];

const MAX_FILE_LINES: usize = 600;
const MAX_FUNCTION_LINES: usize = 120;

struct Module {
    file: PathBuf,
    /// The file without its `#[cfg(test)] mod tests` tail.
    text: String,
}

fn modules() -> BTreeMap<String, Module> {
    let mut out = BTreeMap::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(&root).unwrap().with_extension("");
            let mut parts: Vec<String> =
                relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
                parts.pop();
            }
            // The binary's root is a crate of its own; it counts for the size rule as `main`.
            let name = if path.ends_with("src/main.rs") {
                "main".to_string()
            } else {
                std::iter::once("crate".to_string()).chain(parts).collect::<Vec<_>>().join("::")
            };
            let full = std::fs::read_to_string(&path).unwrap();
            let code = &full[..test_tail(&full)];
            // Comments name modules without using them.
            let text = code.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
            out.insert(name, Module { file: path, text });
        }
    }
    out
}

/// Where a file's `#[cfg(test)] mod tests` tail starts (other attributes may stand between).
fn test_tail(text: &str) -> usize {
    for (at, _) in text.match_indices("#[cfg(test)]\n") {
        let after = text[at..].lines().skip(1).find(|line| !line.trim_start().starts_with("#["));
        if after.is_some_and(|line| line.starts_with("mod tests")) {
            return at;
        }
    }
    text.len()
}

/// Every module path a file names with `crate::`, `super::` or `self::`, resolved to the
/// longest known module prefix. Grouped imports (`a::{b, c::D}`) count each member.
fn references(name: &str, module: &Module, known: &BTreeMap<String, Module>) -> BTreeSet<String> {
    let is_dir_module = module.file.ends_with("mod.rs") || module.file.ends_with("lib.rs");
    let mut out = BTreeSet::new();
    let text = &module.text;
    let bytes = text.as_bytes();
    for (start, _) in text.match_indices("::") {
        // Walk back to the start of the path.
        let mut begin = start;
        while begin > 0 && (bytes[begin - 1].is_ascii_alphanumeric() || bytes[begin - 1] == b'_') {
            begin -= 1;
        }
        if begin > 1 && &text[begin - 2..begin] == "::" {
            continue; // not the first segment
        }
        let head = &text[begin..start];
        let base: Vec<String> = match head {
            "crate" => vec!["crate".into()],
            "super" => {
                let mut parts: Vec<String> = name.split("::").map(str::to_string).collect();
                parts.pop();
                parts
            }
            "self" => name.split("::").map(str::to_string).collect(),
            // A bare path through a child module (`dsig::verify` in saml/mod.rs).
            child if is_dir_module && known.contains_key(&format!("{name}::{child}")) => {
                vec![format!("{name}::{child}")]
            }
            _ => continue,
        };
        let rest = &text[start + 2..];
        for path in expand(rest) {
            let mut segments = base.clone();
            segments
                .extend(path.split("::").map(str::trim).filter(|s| !s.is_empty() && *s != "self").map(String::from));
            let mut best = None;
            for len in (1..=segments.len()).rev() {
                let candidate = segments[..len].join("::");
                if known.contains_key(&candidate) {
                    best = Some(candidate);
                    break;
                }
            }
            if let Some(target) = best {
                if target != name {
                    out.insert(target);
                }
            }
        }
    }
    out
}

/// `a::b::C` → ["a::b::C"]; `{a, b::{c, D}}` → ["a", "b::c", "b::D"].
fn expand(rest: &str) -> Vec<String> {
    let path: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
    let after = &rest[path.len()..];
    if path.is_empty() && rest.starts_with('{') || path.ends_with("::") && after.starts_with('{') {
        let prefix = path.trim_end_matches("::");
        let inner = group(after);
        split_top(inner)
            .into_iter()
            .flat_map(|member| expand(member.trim()))
            .map(|member| if prefix.is_empty() { member } else { format!("{prefix}::{member}") })
            .collect()
    } else {
        vec![path.trim_end_matches("::").to_string()]
    }
}

fn group(text: &str) -> &str {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &text[1..i];
                }
            }
            _ => {}
        }
    }
    ""
}

fn split_top(text: &str) -> Vec<&str> {
    let (mut depth, mut last, mut out) = (0, 0, Vec::new());
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&text[last..i]);
                last = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[last..]);
    out
}

fn top(name: &str) -> &str {
    name.split("::").nth(1).unwrap_or("crate")
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let known = modules();
    known.iter().map(|(name, module)| (name.clone(), references(name, module, &known))).collect()
}

#[test]
fn dependencies_point_down_the_layers() {
    let mut wrong = Vec::new();
    for (from, targets) in graph() {
        if from == "crate" || from == "main" {
            continue;
        }
        let allowed = ALLOWED.iter().find(|(m, _)| *m == top(&from)).map(|(_, a)| *a);
        let Some(allowed) = allowed else {
            wrong.push(format!("{from}: top-level module missing from ALLOWED"));
            continue;
        };
        for to in targets {
            let to_top = top(&to);
            if to_top != top(&from) && !allowed.contains(&to_top) {
                wrong.push(format!("{from} uses {to}"));
            }
        }
    }
    assert!(wrong.is_empty(), "dependencies against the layers:\n{}", wrong.join("\n"));
}

#[test]
fn nothing_uses_the_command_line() {
    // The rule above holds for the layers; this one covers the crate root too.
    let wrong: Vec<String> = graph()
        .into_iter()
        .filter(|(from, _)| top(from) != "cli")
        .flat_map(|(from, targets)| {
            targets.into_iter().filter(|to| top(to) == "cli").map(move |to| format!("{from} uses {to}"))
        })
        .collect();
    assert!(wrong.is_empty(), "the command line used from below:\n{}", wrong.join("\n"));
}

#[test]
fn no_module_uses_another_in_a_circle() {
    let graph = graph();
    // Depth-first search; a back edge is a circle.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
        circles: &mut Vec<String>,
    ) {
        state.insert(node.to_string(), 1);
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next.as_str()).copied().unwrap_or(0) {
                0 => visit(next, graph, state, path, circles),
                1 => {
                    let at = path.iter().position(|p| p == next).unwrap();
                    circles.push(format!("{} → {next}", path[at..].join(" → ")));
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(node.to_string(), 2);
    }
    let (mut state, mut circles) = (BTreeMap::new(), Vec::new());
    for node in graph.keys() {
        if state.get(node.as_str()).copied().unwrap_or(0) == 0 {
            visit(node, &graph, &mut state, &mut Vec::new(), &mut circles);
        }
    }
    assert!(circles.is_empty(), "module circles:\n{}", circles.join("\n"));
}

#[test]
fn the_error_table_depends_only_on_the_core_codes() {
    let graph = graph();
    let wire = &graph["crate::transport::wire"];
    assert!(wire.iter().all(|m| m == "crate::saml" || m == "crate::saml::error"), "wire uses {wire:?}");
}

#[test]
fn the_layer_check_sees_real_edges() {
    // The checks above are only worth something if the parser finds the uses that are there.
    let graph = graph();
    assert!(graph["crate::transport::http"].contains("crate::transport::frontend"));
    assert!(graph["crate::service"].contains("crate::tenants"));
    assert!(graph["crate::tenants::registry"].contains("crate::tenants::fetch"));
    assert!(graph["crate::config"].contains("crate::config::callers"));
    assert!(graph["crate::saml"].contains("crate::saml::dsig"));
    assert!(graph["crate::cli::serve"].contains("crate::supervisor"));
    assert!(graph["crate::cli"].contains("crate::cli::commands"));
}

#[test]
fn files_and_functions_stay_readable() {
    let mut long = Vec::new();
    for (name, module) in modules() {
        // A file may be longer when its first lines say why.
        let explained = module.text.lines().take(8).any(|l| l.contains("longer than"));
        let lines = module.text.lines().count();
        if lines > MAX_FILE_LINES && !explained {
            long.push(format!("{name}: {lines} lines"));
        }
        let text: Vec<&str> = module.text.lines().collect();
        for (i, line) in text.iter().enumerate() {
            let trimmed = line.trim_start();
            let indent = line.len() - trimmed.len();
            let is_fn = [
                "fn ",
                "pub fn ",
                "pub(crate) fn ",
                "pub(super) fn ",
                "async fn ",
                "pub async fn ",
                "const fn ",
                "pub const fn ",
            ]
            .iter()
            .any(|p| trimmed.starts_with(p));
            if !is_fn || line.ends_with(';') {
                continue;
            }
            let close = format!("{}}}", " ".repeat(indent));
            if let Some(end) = text[i..].iter().position(|l| *l == close) {
                if end > MAX_FUNCTION_LINES {
                    long.push(format!("{name}: {} has {end} lines", trimmed.split('(').next().unwrap_or(trimmed)));
                }
            }
        }
    }
    assert!(long.is_empty(), "too long to read in one sitting:\n{}", long.join("\n"));
}
