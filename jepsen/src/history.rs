//! Histories: every operation a client ran, as Jepsen records them. An
//! operation is an `invoke` event followed by one completion from the same
//! process: `ok` (it took effect, with its result), `fail` (it provably
//! never took effect) or `info` (the client cannot know: a timeout, a
//! connection lost after sending). A history is written as JSON lines, one
//! event each, so an independent checker can re-check it:
//!
//! ```json
//! {"process":3,"type":"invoke","f":"write","key":"/a","value":"v1","time_ns":1200}
//! {"process":3,"type":"ok","f":"write","key":"/a","value":"v1","time_ns":5400}
//! ```
//!
//! A `fail` or `info` event also carries the client's `error` text.
//! `f` is `read` (an `ok` carries the value read, `null` for none),
//! `write` (the value written) or `cas` (`[expected, new]`); `time_ns` is a
//! monotonic clock shared by every process of the run.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

/// What an event says about its operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// One line of a history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub process: u64,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub f: String,
    pub key: String,
    #[serde(default)]
    pub value: serde_json::Value,
    pub time_ns: u64,
    /// Why a `fail` or `info` ended so: the client's error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Why a history could not be read or paired.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("line {line}: {source}")]
    Json {
        line: usize,
        source: serde_json::Error,
    },
    #[error("cannot read the history: {0}")]
    Io(#[from] std::io::Error),
    #[error("process {process} completes an operation it never invoked (event {index})")]
    CompletionWithoutInvoke { process: u64, index: usize },
    #[error("process {process} invokes again before its operation at event {index} completed")]
    InvokeWhileBusy { process: u64, index: usize },
}

/// Writes `events` as JSON lines.
pub fn write_jsonl(out: &mut impl Write, events: &[Event]) -> std::io::Result<()> {
    for event in events {
        serde_json::to_writer(&mut *out, event)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Reads a JSON-lines history (blank lines are skipped).
pub fn read_jsonl(input: impl BufRead) -> Result<Vec<Event>, HistoryError> {
    let mut events = Vec::new();
    for (n, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let event = serde_json::from_str(&line).map_err(|source| HistoryError::Json {
            line: n + 1,
            source,
        })?;
        events.push(event);
    }
    Ok(events)
}

/// How an operation ended, as far as the checker may assume.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// It took effect between its invocation and `at`, with this result.
    Ok { at: u64, value: serde_json::Value },
    /// It may have taken effect at any time after its invocation, or never.
    Unknown,
}

/// An invocation and its ending (failed operations are left out: they
/// never took effect).
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// Index of its invoke event in the history.
    pub index: usize,
    pub process: u64,
    pub f: String,
    pub key: String,
    /// The invocation's argument.
    pub input: serde_json::Value,
    pub invoked: u64,
    pub ending: Ending,
}

/// Pairs each invocation with its completion. An invocation with no
/// completion (the run ended first) is an unknown ending.
pub fn operations(events: &[Event]) -> Result<Vec<Operation>, HistoryError> {
    let mut open: std::collections::BTreeMap<u64, Operation> = Default::default();
    let mut done = Vec::new();
    for (index, event) in events.iter().enumerate() {
        match event.kind {
            EventType::Invoke => {
                if open.contains_key(&event.process) {
                    return Err(HistoryError::InvokeWhileBusy {
                        process: event.process,
                        index,
                    });
                }
                open.insert(
                    event.process,
                    Operation {
                        index,
                        process: event.process,
                        f: event.f.clone(),
                        key: event.key.clone(),
                        input: event.value.clone(),
                        invoked: event.time_ns,
                        ending: Ending::Unknown,
                    },
                );
            }
            completion => {
                let mut op =
                    open.remove(&event.process)
                        .ok_or(HistoryError::CompletionWithoutInvoke {
                            process: event.process,
                            index,
                        })?;
                match completion {
                    EventType::Ok => {
                        op.ending = Ending::Ok {
                            at: event.time_ns,
                            value: event.value.clone(),
                        };
                        done.push(op);
                    }
                    EventType::Info => done.push(op),
                    EventType::Fail | EventType::Invoke => {}
                }
            }
        }
    }
    done.extend(open.into_values());
    done.sort_by_key(|op| op.index);
    Ok(done)
}

/// The longest time between two successful completions (or from the
/// first event to the first one, or from the last one to the end): how
/// long clients saw no operation succeed. `None` for an empty history.
pub fn longest_gap_without_ok(events: &[Event]) -> Option<std::time::Duration> {
    let start = events.first()?.time_ns;
    let end = events.last()?.time_ns;
    let mut last = start;
    let mut longest = 0;
    for event in events.iter().filter(|e| e.kind == EventType::Ok) {
        longest = longest.max(event.time_ns.saturating_sub(last));
        last = event.time_ns;
    }
    longest = longest.max(end.saturating_sub(last));
    Some(std::time::Duration::from_nanos(longest))
}

/// A read event of process 1 on `/a` at `time_ns` (for tests).
#[cfg(test)]
pub(crate) fn read_event(kind: EventType, time_ns: u64) -> Event {
    Event {
        process: 1,
        kind,
        f: "read".into(),
        key: "/a".into(),
        value: serde_json::Value::Null,
        time_ns,
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_gap_counts_only_successes() {
        let at = read_event;
        let events = [
            at(EventType::Invoke, 0),
            at(EventType::Ok, 10),
            at(EventType::Invoke, 11),
            at(EventType::Info, 50),
            at(EventType::Invoke, 51),
            at(EventType::Ok, 90),
            at(EventType::Invoke, 91),
            at(EventType::Fail, 100),
        ];
        assert_eq!(
            longest_gap_without_ok(&events),
            Some(std::time::Duration::from_nanos(80))
        );
        assert_eq!(longest_gap_without_ok(&[]), None);
    }

    #[test]
    fn a_history_round_trips_through_json_lines_and_pairs_up() {
        let line = |process, kind, f: &str, value: serde_json::Value, time_ns| Event {
            process,
            kind,
            f: f.into(),
            key: "/a".into(),
            value,
            time_ns,
            error: None,
        };
        let events = vec![
            line(1, EventType::Invoke, "write", "x".into(), 1),
            line(2, EventType::Invoke, "read", serde_json::Value::Null, 2),
            line(1, EventType::Ok, "write", "x".into(), 3),
            line(2, EventType::Info, "read", serde_json::Value::Null, 4),
            line(3, EventType::Invoke, "write", "y".into(), 5),
            line(3, EventType::Fail, "write", "y".into(), 6),
            line(4, EventType::Invoke, "write", "z".into(), 7),
        ];
        let mut out = Vec::new();
        write_jsonl(&mut out, &events).expect("write");
        let text = String::from_utf8(out.clone()).expect("utf-8");
        assert!(text.starts_with(
            r#"{"process":1,"type":"invoke","f":"write","key":"/a","value":"x","time_ns":1}"#
        ));
        let back = read_jsonl(&out[..]).expect("read");
        assert_eq!(back, events);
        let ops = operations(&back).expect("pairs");
        let summary: Vec<(u64, bool)> = ops
            .iter()
            .map(|o| (o.process, matches!(o.ending, Ending::Ok { .. })))
            .collect();
        // The failed write is gone; the info read and the unfinished write
        // are unknown.
        assert_eq!(summary, vec![(1, true), (2, false), (4, false)]);
    }

    #[test]
    fn a_completion_without_its_invocation_is_an_error() {
        let event = Event {
            process: 9,
            kind: EventType::Ok,
            f: "read".into(),
            key: "/a".into(),
            value: serde_json::Value::Null,
            time_ns: 1,
            error: None,
        };
        assert!(matches!(
            operations(&[event]),
            Err(HistoryError::CompletionWithoutInvoke { process: 9, .. })
        ));
    }
}
