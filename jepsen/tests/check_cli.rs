//! `jepsen-check` re-checks recorded histories: exit 0 for a linearizable
//! one, 1 with the failing key for one that is not, 2 for a file that is
//! not a history. `torn-read.jsonl` is the history that found a bug.

use std::path::Path;
use std::process::Command;

fn check(name: &str) -> (i32, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/histories")
        .join(name);
    let out = Command::new(env!("CARGO_BIN_EXE_jepsen-check"))
        .arg(path)
        .output()
        .expect("run jepsen-check");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn histories_are_rechecked_from_their_json_lines() {
    let (code, text) = check("concurrent-ok.jsonl");
    assert_eq!(code, 0, "{text}");
    assert!(
        text.starts_with("linearizable: 3 ok, 0 fail, 1 info"),
        "{text}"
    );
    let (code, text) = check("lost-write.jsonl");
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("/a: not linearizable"), "{text}");
    // The first bug the register workload found: a read of a 5-byte file
    // overwritten by a 6-byte one returned "p1-910", old bytes and a new
    // one (kept as recorded, key /reg/k1 of the failing run).
    let (code, text) = check("torn-read.jsonl");
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("/reg/k1: not linearizable"), "{text}");
    let (code, text) = check("missing.jsonl");
    assert_eq!(code, 2, "{text}");
}
