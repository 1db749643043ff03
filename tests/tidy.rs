//! Tidy: rules about the source tree itself, checked by plain `cargo test`
//! (alone: `cargo test --test tidy`). It reads every `.rs` file of the
//! workspace (skipping `target/` directories and hidden ones) and checks:
//!
//! - **module-doc**: every file starts with a `//!` doc comment saying what
//!   it owns, so a reader knows where things live without reading code.
//! - **pure-namespace**: nothing under `raft-meta/src/namespace/` uses
//!   `tokio`, `rocksdb`, `openraft`, `std::time`, `std::fs`, `std::net`,
//!   `rand` or `HashMap`. The namespace is the Raft state machine every node
//!   applies: it must be deterministic (no clocks, randomness, I/O or
//!   iteration order that differs between nodes) and free of the runtime,
//!   so it is tested and fuzzed on its own.
//! - **one-wire-contract**: no `"/v1/…` string literal outside
//!   `proto/src/routes.rs`. The HTTP routes are the wire contract between
//!   nodes, chunk servers and clients; spelled out in one place, a route
//!   cannot drift between the side that serves it and the side that calls it.
//! - **no-panic-in-handlers**: no `.unwrap()` or `.expect(` in the request
//!   handlers (`raft-meta/src/api.rs`, `raft-meta/src/api/`,
//!   `chunkserver/src/api.rs`, `chunkserver/src/api/`, not their `tests.rs`
//!   nor anything after a `#[cfg(test)]` line). Handlers take network input;
//!   a bad request is answered with an error, never a panic.
//!
//! Comment lines (`//…`) and trailing comments are not code and are not
//! checked by the last three rules; neither are string contents, except by
//! the rule about route strings. Lines are read one at a time, so a line
//! inside a multi-line string or a `/* … */` comment is read as code (the
//! tree has none that matter; split such text if it ever trips a rule).
//! Every violation is printed as `file:line: [rule] text` and the test
//! fails once, listing them all.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// The file allowed to spell out routes.
const ROUTES_FILE: &str = "proto/src/routes.rs";
/// Where the deterministic state machine lives.
const NAMESPACE_DIR: &str = "raft-meta/src/namespace/";
/// Request handler files and directories (a `.rs` path names a file, a `/`
/// path a directory).
const HANDLERS: &[&str] = &[
    "raft-meta/src/api.rs",
    "raft-meta/src/api/",
    "chunkserver/src/api.rs",
    "chunkserver/src/api/",
];
/// The start of a route string literal, built so this file does not
/// contain it.
const ROUTE_LITERAL: &str = concat!("\"/v", "1/");
/// Names the namespace must not use as words (crates and types).
const IMPURE_WORDS: &[&str] = &["tokio", "rocksdb", "openraft", "HashMap"];
/// Paths the namespace must not use (`rand::` also covers `use rand::…`).
const IMPURE_PATHS: &[&str] = &["std::time", "std::fs", "std::net", "rand::"];
/// `std` modules the namespace must not import in a grouped `use std::{…}`.
const IMPURE_STD_MODULES: &[&str] = &["time", "fs", "net"];
/// Calls that panic on an error or `None`.
const PANICS: &[&str] = &[".unwrap()", ".expect("];

/// One broken rule at one line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Violation {
    file: String,
    line: usize,
    rule: &'static str,
    text: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (file, line, rule) = (&self.file, self.line, self.rule);
        write!(f, "{file}:{line}: [{rule}] {}", self.text.trim())
    }
}

#[test]
fn tidy() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files: Vec<(PathBuf, String)> = rust_files(root)
        .into_iter()
        .map(|path| {
            let rel = relative(root, &path);
            (path, rel)
        })
        .collect();
    // The walk starts at the workspace root: the rules are not vacuous.
    for expected in ["tests/tidy.rs", "raft-meta/src/namespace/mod.rs"] {
        let found = files.iter().any(|(_, rel)| rel == expected);
        assert!(found, "tidy did not find {expected} under {root:?}");
    }
    let mut violations = Vec::new();
    for (path, rel) in files {
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {rel}: {e}"));
        violations.extend(check_file(&rel, &text));
    }
    for v in &violations {
        eprintln!("{v}");
    }
    let list: Vec<String> = violations.iter().map(|v| v.to_string()).collect();
    assert!(
        violations.is_empty(),
        "{} tidy violation(s):\n{}",
        violations.len(),
        list.join("\n")
    );
}

/// Every `.rs` file under `root`, sorted, outside `target/` and hidden
/// directories.
fn rust_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("listing {dir:?}: {e}"));
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name == "target" {
                continue;
            }
            if path.is_dir() {
                dirs.push(path);
            } else if name.ends_with(".rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// `path` relative to `root`, with `/` separators.
fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

/// Every rule that applies to the file at `rel` (a workspace-relative path).
fn check_file(rel: &str, text: &str) -> Vec<Violation> {
    let mut found = Vec::new();
    found.extend(check_module_doc(rel, text));
    if rel.starts_with(NAMESPACE_DIR) {
        found.extend(check_pure_namespace(rel, text));
    }
    if rel != ROUTES_FILE {
        found.extend(check_route_literals(rel, text));
    }
    if is_handler(rel) {
        found.extend(check_no_panics(rel, text));
    }
    found
}

fn violation(rel: &str, line: usize, rule: &'static str, text: &str) -> Violation {
    Violation {
        file: rel.to_string(),
        line,
        rule,
        text: text.to_string(),
    }
}

/// Rule module-doc: the first non-empty line is a `//!` comment.
fn check_module_doc(rel: &str, text: &str) -> Option<Violation> {
    let first = text
        .lines()
        .enumerate()
        .find(|(_, line)| !line.trim().is_empty());
    match first {
        Some((_, line)) if line.trim_start().starts_with("//!") => None,
        Some((i, line)) => Some(violation(rel, i + 1, "module-doc", line)),
        None => Some(violation(rel, 1, "module-doc", "(empty file)")),
    }
}

/// Rule pure-namespace: no runtime, storage, clock, I/O, randomness or
/// hash-ordered maps in the state machine.
fn check_pure_namespace(rel: &str, text: &str) -> Vec<Violation> {
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = code_only(line);
        let impure = IMPURE_WORDS.iter().any(|w| contains_word(&code, w))
            || IMPURE_PATHS.iter().any(|p| contains_path(&code, p))
            || contains_word(&code, "use rand");
        if impure {
            found.push(violation(rel, i + 1, "pure-namespace", line));
        }
    }
    for (line, stmt) in use_statements(text) {
        if imports_impure_std(&stmt) {
            found.push(violation(rel, line, "pure-namespace", &stmt));
        }
    }
    found.sort_by_key(|v| v.line);
    found.dedup_by_key(|v| v.line);
    found
}

/// Rule one-wire-contract: no route string literal.
fn check_route_literals(rel: &str, text: &str) -> Vec<Violation> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| strip_comment(line).contains(ROUTE_LITERAL))
        .map(|(i, line)| violation(rel, i + 1, "one-wire-contract", line))
        .collect()
}

/// Rule no-panic-in-handlers: no `.unwrap()` / `.expect(` before the
/// first `#[cfg(test)]`.
fn check_no_panics(rel: &str, text: &str) -> Vec<Violation> {
    text.lines()
        .enumerate()
        .take_while(|(_, line)| !line.trim_start().starts_with("#[cfg(test)]"))
        .filter(|(_, line)| {
            let code = code_only(line);
            PANICS.iter().any(|p| code.contains(p))
        })
        .map(|(i, line)| violation(rel, i + 1, "no-panic-in-handlers", line))
        .collect()
}

/// Whether `rel` is a request handler file (not a test file).
fn is_handler(rel: &str) -> bool {
    let is_test = rel.ends_with("/tests.rs") || rel.contains("/tests/");
    !is_test
        && HANDLERS.iter().any(|h| {
            if h.ends_with('/') {
                rel.starts_with(h)
            } else {
                rel == *h
            }
        })
}

/// The line without its `//` comment (string literals kept).
fn strip_comment(line: &str) -> String {
    scan_line(line).0
}

/// The line without its comment and with string contents blanked: only
/// code is left to match on.
fn code_only(line: &str) -> String {
    scan_line(line).1
}

/// One line read as code: (without the comment, and also with string
/// contents blanked). A `'"'` character literal does not open a string.
fn scan_line(line: &str) -> (String, String) {
    let chars: Vec<char> = line.chars().collect();
    let (mut kept, mut blanked) = (String::new(), String::new());
    let mut in_string = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let width = match c {
            '\\' if in_string => 2,
            '\'' if !in_string => char_literal_width(&chars[i..]),
            '/' if !in_string && next == Some('/') => break,
            _ => 1,
        };
        let end = (i + width).min(chars.len());
        let text: String = chars[i..end].iter().collect();
        kept.push_str(&text);
        if in_string && c != '"' {
            blanked.extend(std::iter::repeat_n(' ', end - i));
        } else {
            blanked.push_str(&text);
        }
        if c == '"' {
            in_string = !in_string;
        }
        i = end;
    }
    (kept, blanked)
}

/// How many characters the `'` at the start of `chars` spans: 3 for
/// `'"'`, 4 for `'\"'`, otherwise 1 (other literals and lifetimes hold no
/// `"` and need no care).
fn char_literal_width(chars: &[char]) -> usize {
    match chars {
        ['\'', '"', '\'', ..] => 3,
        ['\'', '\\', '"', '\'', ..] => 4,
        _ => 1,
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether `word` occurs in `code` not as part of a longer identifier.
fn contains_word(code: &str, word: &str) -> bool {
    code.match_indices(word).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + word.len()..].chars().next();
        !before.is_some_and(is_ident_char) && !after.is_some_and(is_ident_char)
    })
}

/// Whether the path `path` occurs in `code`, not as the tail of a longer
/// one (`operand::` is not `rand::`, `my_std::fs` is not `std::fs`).
fn contains_path(code: &str, path: &str) -> bool {
    code.match_indices(path).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + path.len()..].chars().next();
        let starts = !before.is_some_and(|c| is_ident_char(c) || c == ':');
        let ends = path.ends_with("::") || !after.is_some_and(is_ident_char);
        starts && ends
    })
}

/// Each `use` statement as (line it starts on, its code joined on one line).
fn use_statements(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let code = code_only(line);
        let trimmed = code.trim();
        let is_use = trimmed.starts_with("use ")
            || (trimmed.starts_with("pub") && trimmed.contains(" use "));
        if current.is_none() && is_use {
            current = Some((i + 1, String::new()));
        }
        if let Some((_, stmt)) = current.as_mut() {
            stmt.push_str(trimmed);
            stmt.push(' ');
            if trimmed.ends_with(';') {
                found.extend(current.take());
            }
        }
    }
    found
}

/// Whether a `use std::{…}` statement names `time`, `fs` or `net` as a
/// module right under `std`'s braces (`use std::{fs, time::Instant}`).
fn imports_impure_std(stmt: &str) -> bool {
    let compact: String = stmt.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(rest) = compact.split_once("std::{").map(|(_, rest)| rest) else {
        return false;
    };
    top_level_items(rest).iter().any(|item| {
        let module = item.split("::").next().unwrap_or("");
        IMPURE_STD_MODULES.contains(&module)
    })
}

/// The comma-separated items of a brace group, up to its closing brace,
/// without descending into nested groups.
fn top_level_items(group: &str) -> Vec<String> {
    let mut items = vec![String::new()];
    let mut depth = 0;
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(item) = items.last_mut() {
            item.push(c);
        }
    }
    items
}

/// The checker on small in-memory files: each rule catches its violation
/// and lets clean code, comments and strings through.
#[test]
fn checker_catches_violations() {
    let rules = |rel: &str, text: &str| -> Vec<(usize, &'static str)> {
        check_file(rel, text)
            .into_iter()
            .map(|v| (v.line, v.rule))
            .collect()
    };

    // module-doc
    assert_eq!(rules("a/src/x.rs", "\n//! Owns x.\nfn f() {}\n"), vec![]);
    assert_eq!(
        rules("a/src/x.rs", "\n/// Not a module doc.\nfn f() {}\n"),
        vec![(2, "module-doc")]
    );
    assert_eq!(rules("a/src/x.rs", ""), vec![(1, "module-doc")]);

    // pure-namespace
    let ns = "raft-meta/src/namespace/x.rs";
    let impure = [
        "use tokio::sync::Mutex;",
        "use rocksdb::DB;",
        "fn f(_: openraft::LogId<u64>) {}",
        "use std::time::Instant;",
        "let t = std::time::Instant::now();",
        "use std::fs;",
        "use std::net::SocketAddr;",
        "let n: u8 = rand::random();",
        "use rand;",
        "use std::collections::HashMap;",
        "let m: HashMap<u8, u8> = Default::default();",
        "use std::{collections::BTreeMap, time::Instant};",
    ];
    for code in impure {
        let text = format!("//! Doc.\n{code}\n");
        assert_eq!(rules(ns, &text), vec![(2, "pure-namespace")], "{code}");
    }
    let grouped = "//! Doc.\nuse std::{\n    collections::BTreeMap,\n    fs,\n};\n";
    assert_eq!(rules(ns, grouped), vec![(2, "pure-namespace")]);
    let pure = [
        "// Unlike tokio or std::time, this is pure.",
        "/// No HashMap here: iteration order must not differ.",
        "let x = 1; // not rocksdb",
        "let s = \"openraft\";",
        "use std::collections::BTreeMap;",
        "use std::{collections::BTreeMap, fmt};",
        "let operand::x = 1;",
        "let random_hash_map = 1;",
    ];
    for code in pure {
        let text = format!("//! Doc.\n{code}\n");
        assert_eq!(rules(ns, &text), vec![], "{code}");
    }
    let elsewhere = "//! Doc.\nuse std::collections::HashMap;\n";
    assert_eq!(rules("raft-meta/src/node.rs", elsewhere), vec![]);

    // one-wire-contract
    let route = format!("//! Doc.\nconst R: &str = {ROUTE_LITERAL}meta/status\";\n");
    assert_eq!(
        rules("client/src/x.rs", &route),
        vec![(2, "one-wire-contract")]
    );
    assert_eq!(rules(ROUTES_FILE, &route), vec![]);
    let commented = format!("//! Doc.\n// was {ROUTE_LITERAL}meta/status\"\n");
    assert_eq!(rules("client/src/x.rs", &commented), vec![]);

    // no-panic-in-handlers
    let handler = "//! Doc.\nfn h() {\n    let a = x.unwrap();\n    let b = y.expect(\"b\");\n    \
                   let c = z.unwrap_or_default();\n    // never .unwrap() here\n    \
                   let d = \".unwrap()\";\n}\n#[cfg(test)]\nmod t {\n    fn f() { x.unwrap(); }\n}\n";
    let panics = vec![(3, "no-panic-in-handlers"), (4, "no-panic-in-handlers")];
    assert_eq!(rules("raft-meta/src/api.rs", handler), panics);
    assert_eq!(rules("raft-meta/src/api/chunks.rs", handler), panics);
    assert_eq!(rules("chunkserver/src/api.rs", handler), panics);
    assert_eq!(rules("chunkserver/src/api/range.rs", handler), panics);
    assert_eq!(rules("chunkserver/src/api/tests.rs", handler), vec![]);
    assert_eq!(rules("raft-meta/src/apis.rs", handler), vec![]);
    assert_eq!(rules("chunkserver/src/store.rs", handler), vec![]);
}

/// The helpers that decide what is code.
#[test]
fn comments_and_strings_are_not_code() {
    assert_eq!(strip_comment("let a = 1; // b"), "let a = 1; ");
    assert_eq!(
        strip_comment("let u = \"http://x\"; // c"),
        "let u = \"http://x\"; "
    );
    assert_eq!(code_only("f(\"a \\\" b\") // c"), "f(\"      \") ");
    assert_eq!(
        code_only("if c == '\"' { g() } // h"),
        "if c == '\"' { g() } "
    );
    assert_eq!(code_only("c == '\\\"' // h"), "c == '\\\"' ");
    assert!(contains_word("use tokio::sync;", "tokio"));
    assert!(!contains_word("use tokio_util::sync;", "tokio"));
    assert!(contains_path("x: std::fs::File", "std::fs"));
    assert!(!contains_path("x: my_std::fs::File", "std::fs"));
    assert!(!contains_path("use std::fsx;", "std::fs"));
}
