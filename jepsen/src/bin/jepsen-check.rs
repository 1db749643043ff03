//! `jepsen-check HISTORY.jsonl`: re-checks a recorded history with the
//! linearizability checker and prints a one-line verdict (exit 0 when
//! linearizable, 1 when not, 2 when the history cannot be read or checked).

use std::io::BufReader;
use std::process::ExitCode;

use toastyfs_jepsen::history::{operations, read_jsonl, EventType};
use toastyfs_jepsen::linearizable::{check, Verdict};

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: jepsen-check HISTORY.jsonl");
        return ExitCode::from(2);
    };
    match run(&path) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("jepsen-check: {path}: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(path: &str) -> anyhow::Result<bool> {
    let file = std::fs::File::open(path)?;
    let events = read_jsonl(BufReader::new(file))?;
    let count = |kind| events.iter().filter(|e| e.kind == kind).count();
    let ops = operations(&events)?;
    let verdicts = check(&ops)?;
    let summary = format!(
        "{} ok, {} fail, {} info",
        count(EventType::Ok),
        count(EventType::Fail),
        count(EventType::Info)
    );
    if verdicts.is_empty() {
        println!("linearizable: {summary}");
        return Ok(true);
    }
    for (key, verdict) in &verdicts {
        match verdict {
            Verdict::NotLinearizable { witness } => {
                println!("{key}: not linearizable; smallest failing operations (invoke events): {witness:?}")
            }
            Verdict::Unknown => println!("{key}: undecided within the search budget"),
            Verdict::Linearizable => {}
        }
    }
    println!(
        "NOT linearizable: {} of the keys; {summary}",
        verdicts.len()
    );
    Ok(false)
}
