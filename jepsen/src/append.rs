//! The append workload: concurrent clients append fixed-size records to a
//! few shared log files, each append a write at the file's end expecting
//! the version it found there, and read whole logs back. Each log is one
//! object of the history, modelled as the list of record ids it holds:
//! `append` adds its id at the end, `read-log` must see the list as it is.
//! So an acknowledged record missing from a later read, a failed one
//! present, one present twice or out of order, or a record that is not
//! its bytes exactly (read as `torn:...`) is not linearizable; the reads
//! after the heal put every acknowledged record to that test.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use toastyfs_client::{Client, ClientError, WriteOptions};
use toastyfs_proto::namespace::FsError;
use toastyfs_proto::{FsPath, Version};

use crate::dice::Dice;
use crate::history::{EventType, Operation};
use crate::linearizable::{canonical, parse_state, result, ModelError, State};
use crate::register::{run_processes, until_read, Recorder};

/// How a run is shaped.
#[derive(Debug, Clone)]
pub struct AppendWorkload {
    /// Concurrent clients (processes from [`APPEND_PROCESS`]).
    pub clients: usize,
    /// Logs, as files `<dir>/log<i>`.
    pub logs: usize,
    pub dir: String,
    /// Bytes per record; with a chunk size that is not a multiple of it,
    /// records straddle chunks and most appends patch a partial chunk.
    pub record_bytes: usize,
    pub chunk_size: u32,
    /// Out of 100 operations, how many read a whole log.
    pub read_percent: u64,
    pub duration: Duration,
}

/// The first process number of the append clients.
pub const APPEND_PROCESS: u64 = 300;

impl AppendWorkload {
    /// Two clients on two logs, 3,000-byte records in 16 KiB chunks.
    pub fn short_profile() -> AppendWorkload {
        AppendWorkload {
            clients: 2,
            logs: 2,
            dir: "/log".into(),
            record_bytes: 3000,
            chunk_size: 16 << 10,
            read_percent: 20,
            duration: Duration::from_secs(20),
        }
    }

    fn log(&self, i: u64) -> String {
        format!("{}/log{i}", self.dir)
    }

    /// Runs every client until the duration is over.
    pub async fn run(&self, client: &Client, recorder: &Recorder) {
        run_processes(
            APPEND_PROCESS,
            self.clients,
            self.duration,
            |process, deadline| self.client_loop(process, client, recorder, deadline),
        )
        .await;
    }

    async fn client_loop(&self, process: u64, client: &Client, rec: &Recorder, deadline: Instant) {
        let mut dice = Dice::new(0xbb67_ae85_84ca_a73b ^ (process + 1));
        let mut n = 0u64;
        while Instant::now() < deadline {
            let log = self.log(dice.roll(self.logs as u64));
            if dice.roll(100) < self.read_percent {
                self.read_log(process, client, rec, &log).await;
                continue;
            }
            n += 1;
            self.append(process, client, rec, &log, &format!("a{process}-{n}"))
                .await;
        }
    }

    /// Appends record `id` at the end of `log` as it is now.
    async fn append(&self, process: u64, client: &Client, rec: &Recorder, log: &str, id: &str) {
        let path = FsPath::new(log).expect("a valid log path");
        let (version, length) = match client.stat(&path).await {
            Ok(info) => (info.version, info.length),
            Err(ClientError::Refused(FsError::NotFound { .. })) => (Version(0), 0),
            // Where the end is is unknown: nothing was tried.
            Err(_) => return,
        };
        rec.record(process, EventType::Invoke, "append", log, json!(id));
        let options = WriteOptions {
            expect: Some(version),
            create_with_chunk_size: Some(self.chunk_size),
            progress: None,
        };
        let bytes = record(id, self.record_bytes);
        let kind = match client.write_at(&path, length, &bytes[..], options).await {
            Ok(_) => EventType::Ok,
            Err(e) => rec.ending(process, &e),
        };
        rec.record(process, kind, "append", log, json!(id));
    }

    /// Reads all of `log`, recorded; whether the read succeeded.
    async fn read_log(&self, process: u64, client: &Client, rec: &Recorder, log: &str) -> bool {
        let path = FsPath::new(log).expect("a valid log path");
        rec.record(process, EventType::Invoke, "read-log", log, Value::Null);
        let mut out = Vec::new();
        let (kind, value) = match client.read_to(&path, 0, None, &mut out, None).await {
            Ok(_) => (EventType::Ok, json!(records(&out, self.record_bytes))),
            Err(ClientError::Refused(FsError::NotFound { .. })) => (EventType::Ok, json!([])),
            Err(e) => (rec.ending(process, &e), Value::Null),
        };
        rec.record(process, kind, "read-log", log, value);
        kind == EventType::Ok
    }

    /// After the heal: reads every log once more (process `process`),
    /// retrying while `within` lasts. Returns the logs that could not be
    /// read.
    pub async fn final_reads(
        &self,
        client: &Client,
        recorder: &Recorder,
        process: u64,
        within: Duration,
    ) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut unreadable = Vec::new();
        for log in (0..self.logs as u64).map(|i| self.log(i)) {
            let read = || self.read_log(process, client, recorder, &log);
            if !until_read(deadline, read).await {
                unreadable.push(log);
            }
        }
        unreadable
    }
}

/// Record `id`'s bytes: the id, `.` padding, and a newline at the end.
pub fn record(id: &str, record_bytes: usize) -> Vec<u8> {
    let mut bytes = id.as_bytes().to_vec();
    bytes.resize(record_bytes.saturating_sub(1).max(id.len()), b'.');
    bytes.push(b'\n');
    bytes
}

/// The ids of the records in a log, in order; a piece that is not exactly
/// a record (a torn or short one) as `torn:<offset>`.
pub fn records(log: &[u8], record_bytes: usize) -> Vec<String> {
    log.chunks(record_bytes.max(1))
        .enumerate()
        .map(|(i, piece)| {
            let id: Vec<u8> = piece.iter().copied().take_while(|b| *b != b'.').collect();
            match String::from_utf8(id) {
                Ok(id) if record(&id, record_bytes) == piece => id,
                _ => format!("torn:{}", i * record_bytes),
            }
        })
        .collect()
}

/// The log model's step.
pub(crate) fn step(state: &State, op: &Operation) -> Result<Option<State>, ModelError> {
    let mut ids: Vec<String> = parse_state(state, op)?;
    match op.f.as_str() {
        "append" => {
            let id = op.input.as_str().ok_or_else(|| ModelError::BadInput {
                index: op.index,
                f: op.f.clone(),
                input: op.input.to_string(),
            })?;
            ids.push(id.to_owned());
            Ok(Some(canonical(&json!(ids))))
        }
        _ => Ok(result(op)
            .is_none_or(|seen| *seen == json!(ids))
            .then(|| state.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linearizable::tests::{op, verdict};
    use crate::linearizable::Verdict;

    #[test]
    fn acknowledged_appends_read_back_in_order_are_linearizable() {
        let ops = [
            op(0, "append", json!("a"), 0, Some((2, Value::Null))),
            // Concurrent with the second append: sees it or not.
            op(1, "read-log", Value::Null, 3, Some((6, json!(["a"])))),
            op(2, "append", json!("b"), 4, Some((5, Value::Null))),
            op(3, "append", json!("c"), 7, None),
            op(
                4,
                "read-log",
                Value::Null,
                9,
                Some((10, json!(["a", "b", "c"]))),
            ),
        ];
        assert_eq!(verdict(&ops), Verdict::Linearizable);
    }

    #[test]
    fn a_lost_duplicated_or_torn_record_is_caught() {
        let base = || {
            vec![
                op(0, "append", json!("a"), 0, Some((1, Value::Null))),
                op(1, "append", json!("b"), 2, Some((3, Value::Null))),
            ]
        };
        for seen in [
            json!(["a"]),
            json!(["a", "b", "b"]),
            json!(["a", "torn:3000"]),
        ] {
            let mut ops = base();
            ops.push(op(2, "read-log", Value::Null, 4, Some((5, seen.clone()))));
            assert!(
                matches!(verdict(&ops), Verdict::NotLinearizable { .. }),
                "{seen} passed"
            );
        }
    }

    #[test]
    fn records_round_trip_and_damage_shows() {
        let mut log = [record("a300-1", 100), record("a301-1", 100)].concat();
        assert_eq!(records(&log, 100), vec!["a300-1", "a301-1"]);
        log[150] = b'x';
        log.truncate(180);
        assert_eq!(records(&log, 100), vec!["a300-1", "torn:100"]);
    }
}
