//! The end of a run: the history written as JSON lines into a results
//! directory, counted, its longest gap without a success measured, and
//! checked for linearizability; one summary line says it all. The results
//! directory is kept when the run is not linearizable (its path is in the
//! summary) and removed otherwise.

use std::path::PathBuf;
use std::time::Duration;

use crate::history::{longest_gap_without_ok, operations, write_jsonl, Event, EventType};
use crate::linearizable::{check, Verdict};

/// What a run's history showed.
#[derive(Debug)]
pub struct RunVerdict {
    pub ok: usize,
    pub fail: usize,
    pub info: usize,
    pub longest_gap: Duration,
    /// Keys that are not linearizable (or undecided), with their verdicts.
    pub failures: std::collections::BTreeMap<String, Verdict>,
    /// Where the history is (kept only when the run is not linearizable).
    pub history: PathBuf,
}

impl RunVerdict {
    pub fn linearizable(&self) -> bool {
        self.failures.is_empty()
    }

    /// The one-line summary of `name`'s run.
    pub fn summary(&self, name: &str) -> String {
        let verdict = if self.linearizable() {
            "linearizable".to_owned()
        } else {
            format!(
                "NOT linearizable {:?}; history kept in {}",
                self.failures,
                self.history.display()
            )
        };
        format!(
            "{name}: {} ok, {} fail, {} info; longest gap without success {:?}; {verdict}",
            self.ok, self.fail, self.info, self.longest_gap
        )
    }
}

/// Writes, counts and checks `events`.
pub fn judge(name: &str, events: &[Event]) -> std::io::Result<RunVerdict> {
    let results = tempfile::Builder::new()
        .prefix(&format!("toastyfs-jepsen-{name}-"))
        .tempdir()?
        .keep();
    let history = results.join("history.jsonl");
    write_jsonl(&mut std::fs::File::create(&history)?, events)?;
    let count = |kind| events.iter().filter(|e| e.kind == kind).count();
    let failures = match operations(events) {
        Ok(ops) => check(&ops).map_err(std::io::Error::other)?,
        Err(e) => return Err(std::io::Error::other(e)),
    };
    let verdict = RunVerdict {
        ok: count(EventType::Ok),
        fail: count(EventType::Fail),
        info: count(EventType::Info),
        longest_gap: longest_gap_without_ok(events).unwrap_or_default(),
        failures,
        history,
    };
    if verdict.linearizable() {
        let _ = std::fs::remove_dir_all(&results);
    }
    Ok(verdict)
}
