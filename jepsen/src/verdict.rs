//! The end of a run: the history (and the nemesis intervals) written as
//! JSON lines into a results directory, counted, its longest gap without a
//! success measured (overall and after each kind of fault), and checked
//! for linearizability; one summary line says it all. The results
//! directory is kept when the run is not linearizable (its path is in the
//! summary) and removed otherwise.

use std::path::PathBuf;
use std::time::Duration;

use std::collections::BTreeMap;

use crate::history::{longest_gap_without_ok, operations, write_jsonl, Event, EventType};
use crate::linearizable::{check, Verdict};
use crate::nemesis::{Fault, Interval, ScheduleOutcome};

/// What a run's history showed.
#[derive(Debug)]
pub struct RunVerdict {
    pub ok: usize,
    pub fail: usize,
    pub info: usize,
    pub longest_gap: Duration,
    /// Per kind of fault, the longest time clients went without a
    /// success from the fault's start until the next fault (or the end).
    pub unavailable: BTreeMap<String, Duration>,
    /// Faults injected, per kind.
    pub cycles: BTreeMap<String, usize>,
    /// Keys that are not linearizable (or undecided), with their verdicts.
    pub failures: std::collections::BTreeMap<String, Verdict>,
    /// Keys that could not be read after every fault was healed (and, if
    /// so, the chunks not back at the replication factor).
    pub unreadable: Vec<String>,
    /// Faults that could not be applied or undone (a membership change
    /// that never finished, say): the cluster failed to do what it was
    /// asked, so the run fails.
    pub nemesis_failures: Vec<String>,
    /// Where the history is (beside it `nemesis.jsonl`, `timeline.png`
    /// and `verdict.txt`); kept when the run failed or [`RESULTS_ENV`]
    /// names where to keep results.
    pub history: PathBuf,
}

impl RunVerdict {
    pub fn linearizable(&self) -> bool {
        self.failures.is_empty()
    }

    /// Linearizable, and every key readable at the end.
    pub fn passed(&self) -> bool {
        self.linearizable() && self.unreadable.is_empty() && self.nemesis_failures.is_empty()
    }

    /// The one-line summary of `name`'s run.
    pub fn summary(&self, name: &str) -> String {
        let mut verdict = if self.linearizable() {
            "linearizable".to_owned()
        } else {
            let keys: Vec<String> = self
                .failures
                .iter()
                .map(|(key, verdict)| format!("{key}: {}", describe(verdict)))
                .collect();
            format!("NOT linearizable ({})", keys.join("; "))
        };
        if !self.unreadable.is_empty() {
            verdict.push_str(&format!(
                "; UNREADABLE or UNDER-REPLICATED at the end: {:?}",
                self.unreadable
            ));
        }
        if !self.nemesis_failures.is_empty() {
            verdict.push_str(&format!(
                "; NEMESIS FAILED: {}",
                self.nemesis_failures.join("; ")
            ));
        }
        if !self.passed() {
            verdict.push_str(&format!("; history kept in {}", self.history.display()));
        }
        let faults: Vec<String> = self
            .cycles
            .iter()
            .map(|(kind, n)| format!("{kind} x{n} (unavailable {:?})", self.unavailable[kind]))
            .collect();
        format!(
            "{name}: {} ok, {} fail, {} info; longest gap without success {:?}; faults: {}; {verdict}",
            self.ok,
            self.fail,
            self.info,
            self.longest_gap,
            if faults.is_empty() {
                "none".to_owned()
            } else {
                faults.join(", ")
            }
        )
    }
}

/// Processes numbered from here on are the harness's own (the setup
/// writes before a run, the final reads after the heal): their operations
/// are checked like any other, but they are not what clients saw under
/// faults, so the gaps leave them out.
pub const HARNESS_PROCESSES: u64 = 1_000;

/// One key's verdict in a few words: a witness is named by its first
/// invoke events (the whole of it is in the history).
fn describe(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Linearizable => "linearizable".into(),
        Verdict::Unknown => "undecided within the search budget".into(),
        Verdict::NotLinearizable { witness } => {
            let shown: Vec<String> = witness.iter().take(8).map(usize::to_string).collect();
            let more = if witness.len() > 8 { ", ..." } else { "" };
            format!(
                "no order explains {} operations (invoke events {}{more})",
                witness.len(),
                shown.join(", ")
            )
        }
    }
}

fn fault_name(fault: Fault) -> String {
    serde_json::to_value(fault)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{fault:?}"))
}

/// The longest time without an `ok` from `from_ns` until `to_ns`.
fn gap_within(events: &[Event], from_ns: u64, to_ns: u64) -> Duration {
    let mut last = from_ns;
    let mut longest = 0;
    for event in events.iter().filter(|e| e.kind == EventType::Ok) {
        if event.time_ns < from_ns || event.time_ns > to_ns {
            continue;
        }
        longest = longest.max(event.time_ns - last);
        last = event.time_ns;
    }
    Duration::from_nanos(longest.max(to_ns.saturating_sub(last)))
}

/// Per kind of fault: how many struck, and the longest unavailability
/// clients saw after one.
fn windows(
    events: &[Event],
    intervals: &[Interval],
) -> (BTreeMap<String, Duration>, BTreeMap<String, usize>) {
    // After the last success clients only finish what was in flight: the
    // last fault's window ends there unless nothing succeeded after it.
    let last_event = events.last().map_or(0, |e| e.time_ns);
    let last_ok = events
        .iter()
        .rev()
        .find(|e| e.kind == EventType::Ok)
        .map_or(last_event, |e| e.time_ns);
    let mut unavailable = BTreeMap::new();
    let mut cycles = BTreeMap::new();
    for (i, interval) in intervals.iter().enumerate() {
        let end = if last_ok > interval.start_ns {
            last_ok
        } else {
            last_event
        };
        let until = intervals.get(i + 1).map_or(end, |next| next.start_ns);
        let gap = gap_within(events, interval.start_ns, until.max(interval.start_ns));
        let name = fault_name(interval.fault);
        let worst: &mut Duration = unavailable.entry(name.clone()).or_default();
        *worst = (*worst).max(gap);
        *cycles.entry(name).or_default() += 1;
    }
    (unavailable, cycles)
}

/// The environment variable naming a directory where every run's results
/// are kept (by default they go to a temporary directory, removed when
/// the run passed).
pub const RESULTS_ENV: &str = "TOASTYFS_JEPSEN_RESULTS";

/// A fresh results directory for run `name`, and whether to keep it.
fn results_dir(name: &str) -> std::io::Result<(PathBuf, bool)> {
    match std::env::var_os(RESULTS_ENV) {
        Some(base) => {
            std::fs::create_dir_all(&base)?;
            let dir = tempfile::Builder::new()
                .prefix(&format!("{name}-"))
                .tempdir_in(base)?
                .keep();
            Ok((dir, true))
        }
        None => {
            let dir = tempfile::Builder::new()
                .prefix(&format!("toastyfs-jepsen-{name}-"))
                .tempdir()?
                .keep();
            Ok((dir, false))
        }
    }
}

/// Writes, counts and checks `events`.
pub fn judge(name: &str, events: &[Event]) -> std::io::Result<RunVerdict> {
    judge_run(name, events, &ScheduleOutcome::default(), Vec::new())
}

/// [`judge`] of a run with the `nemesis` schedule's intervals (written beside the
/// history as `nemesis.jsonl`, and measured) and the keys found
/// `unreadable` once it was over.
pub fn judge_run(
    name: &str,
    events: &[Event],
    nemesis: &ScheduleOutcome,
    unreadable: Vec<String>,
) -> std::io::Result<RunVerdict> {
    let intervals = &nemesis.intervals[..];
    let (results, keep) = results_dir(name)?;
    let history = results.join("history.jsonl");
    write_jsonl(&mut std::fs::File::create(&history)?, events)?;
    let mut lines = String::new();
    for interval in intervals {
        lines.push_str(&serde_json::to_string(interval).map_err(std::io::Error::other)?);
        lines.push('\n');
    }
    std::fs::write(results.join("nemesis.jsonl"), lines)?;
    let clients: Vec<Event> = events
        .iter()
        .filter(|e| e.process < HARNESS_PROCESSES)
        .cloned()
        .collect();
    let (unavailable, cycles) = windows(&clients, intervals);
    let plot = results.join("timeline.png");
    if let Err(e) = crate::plot::timeline(&plot, name, events, intervals) {
        eprintln!("{name}: no timeline plot: {e}");
    }
    let count = |kind| events.iter().filter(|e| e.kind == kind).count();
    let failures = match operations(events) {
        Ok(ops) => check(&ops).map_err(std::io::Error::other)?,
        Err(e) => return Err(std::io::Error::other(e)),
    };
    let verdict = RunVerdict {
        ok: count(EventType::Ok),
        fail: count(EventType::Fail),
        info: count(EventType::Info),
        longest_gap: longest_gap_without_ok(&clients).unwrap_or_default(),
        unavailable,
        cycles,
        failures,
        unreadable,
        nemesis_failures: nemesis.failures.clone(),
        history,
    };
    std::fs::write(results.join("verdict.txt"), verdict.summary(name) + "\n")?;
    if verdict.passed() && !keep {
        let _ = std::fs::remove_dir_all(&results);
    }
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::read_event as at;

    fn fault(start_ns: u64) -> Interval {
        Interval {
            fault: Fault::PauseLeader,
            hosts: vec![0],
            start_ns,
            end_ns: start_ns + 5,
        }
    }

    #[test]
    fn a_window_runs_from_the_fault_to_the_next_success_not_past_the_last() {
        let events = [
            at(EventType::Invoke, 0),
            at(EventType::Ok, 10),
            at(EventType::Invoke, 11),
            at(EventType::Ok, 40),
            at(EventType::Invoke, 41),
            // Finishing what was in flight after the workload stopped.
            at(EventType::Info, 500),
        ];
        let (unavailable, cycles) = windows(&events, &[fault(12)]);
        assert_eq!(unavailable["pause-leader"], Duration::from_nanos(28));
        assert_eq!(cycles["pause-leader"], 1);
        // Nothing succeeded after the fault: it lasted to the end.
        let (unavailable, _) = windows(&events, &[fault(45)]);
        assert_eq!(unavailable["pause-leader"], Duration::from_nanos(455));
    }

    #[test]
    fn a_fault_that_could_not_be_applied_fails_the_run() {
        let events = [at(EventType::Invoke, 0), at(EventType::Ok, 10)];
        let nemesis = ScheduleOutcome {
            intervals: vec![fault(5)],
            failures: vec!["MembershipChange: adding metadata host 3: timed out".into()],
        };
        let verdict = judge_run("nemesis-failure-unit", &events, &nemesis, Vec::new())
            .expect("judge the run");
        assert!(verdict.linearizable(), "the history itself is fine");
        assert!(!verdict.passed(), "but the run fails");
        let summary = verdict.summary("nemesis-failure-unit");
        assert!(
            summary.contains("NEMESIS FAILED: MembershipChange"),
            "the summary says why: {summary}"
        );
        let _ = std::fs::remove_dir_all(verdict.history.parent().expect("results dir"));
    }
}
