//! The data plane's layer rules, checked on its source: every `crate::`
//! path a module of `dataplane/src` names must lead to a module its layer
//! may import. docs/architecture.md ("Layers and imports") draws the same
//! table; the two change together.
//!
//! The check reads the text of each file, so it sees what a reviewer sees:
//! `use` lines and paths written inline alike, test modules included.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Each top-level module of the crate, and the top-level modules it may
/// name. Lower layers first; nothing imports upward.
const RULES: &[(&str, &[&str])] = &[
    // Leaves: plain cells, and the sans-IO wire codecs.
    ("counter", &[]),
    ("random", &[]),
    ("test_rng", &[]),
    ("proto", &[]),
    ("spiffe", &[]),
    ("identity", &["spiffe"]),
    // The reactor and the buffers it lends the kernel.
    ("buf", &["counter"]),
    ("rt", &["buf", "counter"]),
    // The runtime settings name the reactor asked for (`rt::BackendChoice`).
    ("settings", &["rt"]),
    // Vocabulary the sessions share: the protocol-neutral request layer,
    // the worker counters, the byte transports.
    ("request", &["proto"]),
    ("stats", &["counter"]),
    ("latency", &["counter"]),
    ("trace", &["random", "request"]),
    ("transport", &["rt", "buf", "counter", "identity"]),
    // The compiled table the agent hands over, and the lock-free cell that
    // carries it.
    (
        "table",
        &["counter", "latency", "proto", "request", "trace"],
    ),
    ("handoff", &["table"]),
    // Decisions made on the table: which route, which endpoint, whether
    // a request or connection is authorized.
    ("routing", &["proto", "request", "table"]),
    ("authz", &["proto", "request", "routing", "table"]),
    (
        "upstream",
        &[
            "buf",
            "counter",
            "latency",
            "random",
            "request",
            "rt",
            "stats",
            "table",
            "transport",
        ],
    ),
    // Access log records and the ring that carries them to the writer.
    ("access", &["request"]),
    // The worker's line to the agent.
    ("link", &["counter", "handoff", "rt", "stats", "table"]),
    // Per-connection flows.
    (
        "session",
        &[
            "access",
            "authz",
            "buf",
            "counter",
            "latency",
            "trace",
            "proto",
            "random",
            "request",
            "routing",
            "rt",
            "stats",
            "table",
            "transport",
            "upstream",
        ],
    ),
    // The worker runs it all.
    (
        "worker",
        &[
            "access",
            "buf",
            "counter",
            "latency",
            "trace",
            "handoff",
            "link",
            "proto",
            "request",
            "routing",
            "rt",
            "session",
            "settings",
            "stats",
            "table",
            "transport",
            "upstream",
        ],
    ),
];

/// Test support that any layer's tests may name: compiled only under
/// `cfg(test)`, it adds no edge to the crate that ships.
const TEST_SUPPORT: &[&str] = &["test_rng"];

#[test]
fn every_module_imports_only_what_its_layer_may() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    let mut seen = BTreeSet::new();
    for file in rust_files(&src) {
        let rel = file.strip_prefix(&src).expect("under src");
        let Some(module) = top_module(rel) else {
            continue;
        };
        seen.insert(module.clone());
        let Some((_, allowed)) = RULES.iter().find(|(m, _)| *m == module) else {
            violations.push(format!(
                "{}: module `{module}` has no layer; add it to RULES and docs/architecture.md",
                rel.display()
            ));
            continue;
        };
        let text = fs::read_to_string(&file).expect("readable source");
        // Comments say nothing about imports; a `use` group may run over
        // several lines, so the file is read as one text.
        let code: String = text
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        for (target, at) in crate_paths(&code) {
            let target_ok =
                allowed.contains(&target.as_str()) || TEST_SUPPORT.contains(&target.as_str());
            if target != module && !target_ok {
                let line_no = code[..at].matches('\n').count();
                violations.push(format!(
                    "{}:{}: `{module}` may not import `{target}`: {}",
                    rel.display(),
                    line_no + 1,
                    text.lines().nth(line_no).unwrap_or("").trim()
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "layer rules broken (see docs/architecture.md, \"Layers and imports\"):\n{}",
        violations.join("\n")
    );
    for (module, _) in RULES {
        assert!(
            seen.contains(*module) || !src.join(module).exists(),
            "RULES names `{module}`, which has no source"
        );
    }
}

#[test]
fn the_checker_finds_grouped_and_inline_paths() {
    let names =
        |code: &str| -> Vec<String> { crate_paths(code).into_iter().map(|(m, _)| m).collect() };
    assert_eq!(names("use crate::rt::net::TcpStream;"), ["rt"]);
    assert_eq!(
        names("use crate::{request::Reason, table::tally::HttpCounters};"),
        ["request", "table"]
    );
    assert_eq!(
        names("use crate::{\n    request::Reason,\n    table::{self, Table},\n};"),
        ["request", "table"]
    );
    assert_eq!(
        names("let x = crate::routing::find(a, crate::table::X);"),
        ["routing", "table"]
    );
    assert_eq!(names("use crate::{self as dp, rt::{net, time}};"), ["rt"]);
    assert!(names("use super::chars; use other_crate::x;").is_empty());
}

/// The crate-level module a source file belongs to, from its path under
/// `src`; `None` for `lib.rs`.
fn top_module(rel: &Path) -> Option<String> {
    let first = rel.components().next()?.as_os_str().to_str()?.to_owned();
    if first == "lib.rs" {
        return None;
    }
    Some(first.strip_suffix(".rs").unwrap_or(&first).to_owned())
}

/// The top-level modules named by `crate::` paths in `code`, each with the
/// offset of the path that names it.
fn crate_paths(code: &str) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let offset = code.len() - rest.len() + at;
        // `dataplane_crate::` or `some_crate::` are not this crate.
        let before = &rest[..at];
        let glued = before
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        rest = &rest[at + "crate::".len()..];
        if glued {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = matching_brace(group);
            for item in split_top_level(&group[..end]) {
                push_ident(&mut found, item.trim(), offset);
            }
            rest = &group[end..];
        } else {
            push_ident(&mut found, rest, offset);
        }
    }
    found
}

fn push_ident(found: &mut Vec<(String, usize)>, text: &str, offset: usize) {
    let ident: String = text
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if !ident.is_empty() && ident != "self" {
        found.push((ident, offset));
    }
}

/// The index of the `}` closing a group whose `{` was just passed (or the
/// end, for a group continued on the next line).
fn matching_brace(text: &str) -> usize {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return i,
            '}' => depth -= 1,
            _ => {}
        }
    }
    text.len()
}

/// The comma-separated items of a group, not splitting nested groups.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                items.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&text[start..]);
    items
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("readable source directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}
