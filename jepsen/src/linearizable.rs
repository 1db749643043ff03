//! A linearizability checker for registers: the Wing–Gong search with
//! Lowe's memoisation (the algorithm of Knossos and Porcupine), run per
//! key, since operations on different keys commute.
//!
//! The history's call and return events are kept in time order in a
//! linked list. The search walks it: at a call it tries to linearize that
//! operation next (the model must accept it in the current state), lifts
//! the call and its return out of the list and goes on from the head; at a
//! return whose operation is not linearized yet it backtracks. A set of
//! (linearized operations, state) pairs already explored cuts repeated
//! work. An operation whose ending is unknown returns at the end of time
//! and may be left out altogether: reaching its return means every known
//! operation found a place, so the history is linearizable.
//!
//! The model of a key depends on the operations on it. A register holds a
//! JSON value (`null`: absent): `read` must see the current value, `write`
//! sets it, `cas [expected, new]` sets it only if it holds `expected`.
//! [`crate::append`] models a log (`append`, `read-log`) and
//! [`crate::namespace`] a directory (`ns-put`, `ns-create`, `ns-delete`,
//! `ns-rename`, `ns-get`, `ns-list`). A model's state is a canonical JSON
//! string, `null` at the start.

use std::collections::{BTreeMap, HashSet};

use crate::history::{Ending, Operation};

/// The checker's answer for one key.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Linearizable,
    /// No order explains the operations: `witness` is a subset of them
    /// (invoke event indexes) that is still not linearizable, shrunk as
    /// far as [`SHRINK_STEP_BUDGET`] allows (on small histories, until no
    /// single operation can go).
    NotLinearizable {
        witness: Vec<usize>,
    },
    /// The search gave up after its step budget.
    Unknown,
}

/// Why an operation cannot be checked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    #[error("operation at event {index}: unknown function {f:?}")]
    UnknownFunction { index: usize, f: String },
    #[error("operation at event {index}: a cas takes [expected, new], not {input}")]
    BadCas { index: usize, input: String },
    #[error("operation at event {index}: {f} cannot take {input}")]
    BadInput {
        index: usize,
        f: String,
        input: String,
    },
    #[error("operation at event {index}: the key's state {state} is not what {f} works on")]
    BadState {
        index: usize,
        f: String,
        state: String,
    },
}

/// Search steps per key before the verdict is `Unknown`.
pub const STEP_BUDGET: u64 = 5_000_000;

/// Steps all the searches of one key's shrinking may take together: a
/// long failing history costs a bounded time to explain, and its witness
/// is then merely smaller, never wrong (every kept subset was checked).
pub const SHRINK_STEP_BUDGET: u64 = 20_000_000;

pub(crate) type State = String;

pub(crate) fn canonical(value: &serde_json::Value) -> State {
    value.to_string()
}

/// Functions that only observe: an unknown ending of one tells nothing.
const OBSERVERS: [&str; 4] = ["read", "read-log", "ns-get", "ns-list"];

/// The state after `op` from `state`, if the key's model allows it there.
fn step(state: &State, op: &Operation) -> Result<Option<State>, ModelError> {
    match op.f.as_str() {
        "append" | "read-log" => crate::append::step(state, op),
        f if f.starts_with("ns-") => crate::namespace::step(state, op),
        _ => register_step(state, op),
    }
}

/// The result an operation returned, if it is known.
pub(crate) fn result(op: &Operation) -> Option<&serde_json::Value> {
    match &op.ending {
        Ending::Ok { value, .. } => Some(value),
        Ending::Unknown => None,
    }
}

/// A model's state as `T` (`null`, the start, as `T`'s default).
pub(crate) fn parse_state<T>(state: &State, op: &Operation) -> Result<T, ModelError>
where
    T: serde::de::DeserializeOwned + Default,
{
    if state == "null" {
        return Ok(T::default());
    }
    serde_json::from_str(state).map_err(|_| ModelError::BadState {
        index: op.index,
        f: op.f.clone(),
        state: state.clone(),
    })
}

/// The register's step.
fn register_step(state: &State, op: &Operation) -> Result<Option<State>, ModelError> {
    match op.f.as_str() {
        "read" => match &op.ending {
            Ending::Ok { value, .. } => Ok((canonical(value) == *state).then(|| state.clone())),
            // An unknown read tells nothing (it is removed before search).
            Ending::Unknown => Ok(Some(state.clone())),
        },
        "write" => Ok(Some(canonical(&op.input))),
        "cas" => {
            let pair = op
                .input
                .as_array()
                .filter(|a| a.len() == 2)
                .ok_or_else(|| ModelError::BadCas {
                    index: op.index,
                    input: op.input.to_string(),
                })?;
            Ok((canonical(&pair[0]) == *state).then(|| canonical(&pair[1])))
        }
        other => Err(ModelError::UnknownFunction {
            index: op.index,
            f: other.to_owned(),
        }),
    }
}

/// Checks every key's operations; returns the keys that are not
/// linearizable (or could not be decided) with their verdicts.
pub fn check(ops: &[Operation]) -> Result<BTreeMap<String, Verdict>, ModelError> {
    let mut by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for op in ops {
        let tells_nothing = OBSERVERS.contains(&op.f.as_str()) && op.ending == Ending::Unknown;
        if !tells_nothing {
            by_key.entry(op.key.as_str()).or_default().push(op);
        }
    }
    let mut verdicts = BTreeMap::new();
    for (key, ops) in by_key {
        let verdict = check_key(&ops)?;
        if verdict != Verdict::Linearizable {
            verdicts.insert(key.to_owned(), verdict);
        }
    }
    Ok(verdicts)
}

/// One key's verdict, with a shrunk witness when it fails.
pub fn check_key(ops: &[&Operation]) -> Result<Verdict, ModelError> {
    match search(ops)? {
        Some(true) => Ok(Verdict::Linearizable),
        None => Ok(Verdict::Unknown),
        Some(false) => Ok(Verdict::NotLinearizable {
            witness: shrink(ops)?.iter().map(|op| op.index).collect(),
        }),
    }
}

/// Drops operations while the rest stays not linearizable: halves of
/// the history first, then quarters, down to single operations (so a
/// long history needs few searches), within [`SHRINK_STEP_BUDGET`]. A
/// write is dropped only if nothing left observes its value, so the
/// witness never blames a read for a write the shrinking removed.
fn shrink<'a>(ops: &[&'a Operation]) -> Result<Vec<&'a Operation>, ModelError> {
    let mut kept: Vec<&Operation> = ops.to_vec();
    let mut budget = SHRINK_STEP_BUDGET;
    let mut width = kept.len().div_ceil(2).max(1);
    loop {
        let mut start = 0;
        while start < kept.len() {
            let end = (start + width).min(kept.len());
            let without: Vec<&Operation> =
                kept[..start].iter().chain(&kept[end..]).copied().collect();
            let droppable = kept[start..end].iter().all(|op| removable(op, &without));
            if droppable {
                let (answer, steps) = search_within(&without, budget.min(STEP_BUDGET))?;
                budget = budget.saturating_sub(steps);
                if budget == 0 {
                    return Ok(kept);
                }
                if answer == Some(false) {
                    kept = without;
                    continue;
                }
            }
            start = end;
        }
        if width == 1 {
            return Ok(kept);
        }
        width = width.div_ceil(2);
    }
}

/// The value an operation leaves in the register, if it writes.
fn written(op: &Operation) -> Option<State> {
    match op.f.as_str() {
        "write" => Some(canonical(&op.input)),
        "cas" => op.input.get(1).map(canonical),
        _ => None,
    }
}

/// The value an operation needs to find, if it reads.
fn observed(op: &Operation) -> Option<State> {
    match (op.f.as_str(), &op.ending) {
        ("read", Ending::Ok { value, .. }) => Some(canonical(value)),
        ("cas", _) => op.input.get(0).map(canonical),
        _ => None,
    }
}

fn removable(op: &Operation, among: &[&Operation]) -> bool {
    let f = op.f.as_str();
    if f == "append" || f.starts_with("ns-") {
        // In the log and namespace models only observers are dropped:
        // the mutations are what explains what they saw.
        return OBSERVERS.contains(&f);
    }
    match written(op) {
        None => true,
        Some(value) => !among
            .iter()
            .any(|other| other.index != op.index && observed(other) == Some(value.clone())),
    }
}

#[derive(Clone, Copy)]
struct Node {
    op: usize,
    is_call: bool,
    prev: usize,
    next: usize,
}

/// The event list: node 0 is the head sentinel; `end` marks no next.
struct Events {
    nodes: Vec<Node>,
    /// The return node of each operation.
    return_node: Vec<usize>,
}

const END: usize = usize::MAX;

impl Events {
    fn new(ops: &[&Operation]) -> Events {
        // (time, returns after calls at the same instant, op, is_call)
        let mut timeline: Vec<(u64, u8, usize, bool)> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            timeline.push((op.invoked, 0, i, true));
            let returned = match op.ending {
                Ending::Ok { at, .. } => at,
                Ending::Unknown => u64::MAX,
            };
            timeline.push((returned, 1, i, false));
        }
        timeline.sort();
        let mut nodes = vec![Node {
            op: usize::MAX,
            is_call: false,
            prev: END,
            next: END,
        }];
        let mut return_node = vec![0; ops.len()];
        for (_, _, op, is_call) in timeline {
            let at = nodes.len();
            let prev = at - 1;
            nodes[prev].next = at;
            nodes.push(Node {
                op,
                is_call,
                prev,
                next: END,
            });
            if !is_call {
                return_node[op] = at;
            }
        }
        Events { nodes, return_node }
    }

    fn unlink(&mut self, n: usize) {
        let Node { prev, next, .. } = self.nodes[n];
        self.nodes[prev].next = next;
        if next != END {
            self.nodes[next].prev = prev;
        }
    }

    fn relink(&mut self, n: usize) {
        let Node { prev, next, .. } = self.nodes[n];
        self.nodes[prev].next = n;
        if next != END {
            self.nodes[next].prev = n;
        }
    }

    /// Takes a call and its return out of the list.
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        self.unlink(self.return_node[self.nodes[call].op]);
    }

    /// Puts them back (in the reverse order of lifting).
    fn unlift(&mut self, call: usize) {
        self.relink(self.return_node[self.nodes[call].op]);
        self.relink(call);
    }
}

/// `Some(true)` if some order explains `ops`, `Some(false)` if none does,
/// `None` if the step budget ran out.
fn search(ops: &[&Operation]) -> Result<Option<bool>, ModelError> {
    Ok(search_within(ops, STEP_BUDGET)?.0)
}

/// [`search`] within `budget` steps; also the steps it took.
fn search_within(ops: &[&Operation], budget: u64) -> Result<(Option<bool>, u64), ModelError> {
    let mut events = Events::new(ops);
    let words = ops.len().div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut state = canonical(&serde_json::Value::Null);
    let mut seen: HashSet<(Vec<u64>, State)> = HashSet::new();
    let mut calls: Vec<(usize, State)> = Vec::new();
    let mut entry = events.nodes[0].next;
    let mut steps = 0u64;
    while entry != END {
        steps += 1;
        if steps > budget {
            return Ok((None, steps));
        }
        let node = events.nodes[entry];
        if node.is_call {
            if let Some(next_state) = step(&state, ops[node.op])? {
                let mut next_linearized = linearized.clone();
                next_linearized[node.op / 64] |= 1 << (node.op % 64);
                if seen.insert((next_linearized.clone(), next_state.clone())) {
                    calls.push((entry, std::mem::replace(&mut state, next_state)));
                    linearized = next_linearized;
                    events.lift(entry);
                    entry = events.nodes[0].next;
                    continue;
                }
            }
            entry = node.next;
        } else {
            if ops[node.op].ending == Ending::Unknown {
                // Only unknown operations remain unplaced: leave them out.
                return Ok((Some(true), steps));
            }
            let Some((call, previous)) = calls.pop() else {
                return Ok((Some(false), steps));
            };
            let op = events.nodes[call].op;
            linearized[op / 64] &= !(1 << (op % 64));
            state = previous;
            events.unlift(call);
            entry = events.nodes[call].next;
        }
    }
    Ok((Some(true), steps))
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::{json, Value};

    use super::*;

    /// An operation on key "/a": `f`, its input, invoked at `from`, and
    /// `Some((at, value))` for an ok ending or `None` for unknown.
    pub(crate) fn op(
        index: usize,
        f: &str,
        input: Value,
        from: u64,
        ok: Option<(u64, Value)>,
    ) -> Operation {
        Operation {
            index,
            process: index as u64,
            f: f.into(),
            key: "/a".into(),
            input,
            invoked: from,
            ending: match ok {
                Some((at, value)) => Ending::Ok { at, value },
                None => Ending::Unknown,
            },
        }
    }

    pub(crate) fn verdict(ops: &[Operation]) -> Verdict {
        let refs: Vec<&Operation> = ops.iter().collect();
        check_key(&refs).expect("checkable")
    }

    #[test]
    fn concurrent_operations_with_some_valid_order_are_linearizable() {
        let ops = [
            op(0, "write", json!("x"), 0, Some((10, json!("x")))),
            // Overlaps the write: may see either value.
            op(1, "read", Value::Null, 5, Some((15, Value::Null))),
            op(2, "read", Value::Null, 12, Some((20, json!("x")))),
            op(3, "cas", json!(["x", "y"]), 21, Some((30, Value::Null))),
            op(4, "read", Value::Null, 31, Some((40, json!("y")))),
        ];
        assert_eq!(verdict(&ops), Verdict::Linearizable);
    }

    #[test]
    fn a_stale_read_is_caught() {
        let ops = [
            op(0, "write", json!("x"), 0, Some((10, json!("x")))),
            op(1, "write", json!("y"), 11, Some((20, json!("y")))),
            // After the second write completed, a read sees the first.
            op(2, "read", Value::Null, 21, Some((30, json!("x")))),
        ];
        assert_eq!(
            verdict(&ops),
            Verdict::NotLinearizable {
                witness: vec![0, 1, 2]
            }
        );
    }

    /// A long history with one stale read shrinks to the three operations
    /// that explain it, in halves rather than one search per operation.
    #[test]
    fn a_long_failing_history_shrinks_to_its_witness() {
        let mut ops: Vec<Operation> = (0..4_000u64)
            .map(|i| {
                let value = json!(format!("v{i}"));
                op(
                    i as usize,
                    "write",
                    value.clone(),
                    i * 10,
                    Some((i * 10 + 5, value)),
                )
            })
            .collect();
        // Long after every write, a read sees the first one's value.
        ops.push(op(
            4_000,
            "read",
            Value::Null,
            50_000,
            Some((50_010, json!("v0"))),
        ));
        match verdict(&ops) {
            Verdict::NotLinearizable { witness } => {
                assert!(witness.len() <= 3, "witness {witness:?}");
                assert!(
                    witness.contains(&4_000) && witness.contains(&0),
                    "{witness:?}"
                );
            }
            other => panic!("a stale read went unnoticed: {other:?}"),
        }
    }

    #[test]
    fn a_lost_write_is_caught() {
        let ops = [
            op(0, "write", json!("x"), 0, Some((10, json!("x")))),
            op(1, "read", Value::Null, 11, Some((20, Value::Null))),
        ];
        assert!(matches!(verdict(&ops), Verdict::NotLinearizable { .. }));
    }

    #[test]
    fn an_unknown_write_may_or_may_not_have_happened() {
        let seen = [
            op(0, "write", json!("x"), 0, None),
            op(1, "read", Value::Null, 50, Some((60, json!("x")))),
        ];
        assert_eq!(verdict(&seen), Verdict::Linearizable);
        let never = [
            op(0, "write", json!("x"), 0, None),
            op(1, "read", Value::Null, 50, Some((60, Value::Null))),
        ];
        assert_eq!(verdict(&never), Verdict::Linearizable);
        // But once seen it cannot be unseen.
        let flicker = [
            op(0, "write", json!("x"), 0, None),
            op(1, "read", Value::Null, 50, Some((60, json!("x")))),
            op(2, "read", Value::Null, 70, Some((80, Value::Null))),
        ];
        assert!(matches!(verdict(&flicker), Verdict::NotLinearizable { .. }));
    }

    #[test]
    fn a_cas_applied_twice_is_caught() {
        // A retried cas from "x" applied again after another write: the
        // read sees the retry's value where the other write must win.
        let ops = [
            op(0, "write", json!("x"), 0, Some((5, Value::Null))),
            op(1, "cas", json!(["x", "y"]), 6, Some((10, Value::Null))),
            op(2, "write", json!("z"), 11, Some((15, Value::Null))),
            op(3, "read", Value::Null, 16, Some((20, json!("y")))),
        ];
        assert!(matches!(verdict(&ops), Verdict::NotLinearizable { .. }));
    }

    #[test]
    fn keys_are_checked_apart_and_only_failures_reported() {
        let mut ops = vec![
            op(0, "write", json!("x"), 0, Some((10, Value::Null))),
            op(1, "read", Value::Null, 11, Some((20, Value::Null))),
        ];
        let mut other = op(2, "write", json!("q"), 0, Some((1, Value::Null)));
        other.key = "/b".into();
        ops.push(other);
        let verdicts = check(&ops).expect("checkable");
        assert_eq!(verdicts.keys().collect::<Vec<_>>(), vec!["/a"]);
    }

    proptest::proptest! {
        /// Histories made by running operations on a real register at a
        /// point inside each one's interval are linearizable, however the
        /// intervals overlap; unknown endings included.
        #[test]
        fn histories_of_a_real_register_are_linearizable(
            shape in proptest::collection::vec((0u8..3, 0u64..100, 1u64..40, 0u8..4, 0u8..10), 1..14)
        ) {
            // (kind, start, length, value, unknown if 0)
            let mut timed: Vec<(u64, usize)> = shape
                .iter()
                .enumerate()
                .map(|(i, (_, start, len, _, _))| (start * 10 + len * 5 + i as u64 % 5, i))
                .collect();
            timed.sort();
            let mut register = Value::Null;
            let mut ops: Vec<Option<Operation>> = vec![None; shape.len()];
            for (_, i) in timed {
                let (kind, start, len, v, unknown) = shape[i];
                let (from, to) = (start * 10, start * 10 + len * 10);
                let value = json!(v);
                let (f, input, output) = match kind {
                    0 => ("read", Value::Null, register.clone()),
                    1 => {
                        register = value.clone();
                        ("write", value, Value::Null)
                    }
                    _ if register == value => {
                        register = json!(v + 1);
                        ("cas", json!([v, v + 1]), Value::Null)
                    }
                    // A cas that would not apply is a failed op: left out.
                    _ => continue,
                };
                let ending = (unknown != 0).then_some((to, output));
                ops[i] = Some(op(i, f, input, from, ending));
            }
            let ops: Vec<Operation> = ops.into_iter().flatten().collect();
            proptest::prop_assert_eq!(verdict(&ops), Verdict::Linearizable);
        }
    }

    #[test]
    fn many_concurrent_writers_stay_tractable() {
        // 12 overlapping writes and a read of the last one: memoisation
        // keeps the search small.
        let mut ops: Vec<Operation> = (0..12)
            .map(|i| op(i, "write", json!(i), 0, Some((100, Value::Null))))
            .collect();
        ops.push(op(12, "read", Value::Null, 101, Some((110, json!(7)))));
        assert_eq!(verdict(&ops), Verdict::Linearizable);
    }
}
