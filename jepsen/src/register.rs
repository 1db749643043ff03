//! The register workload: concurrent clients read and overwrite whole
//! small files (one register per file) through the client library, and
//! every operation is recorded as a Jepsen history. A write puts a value
//! no other write uses; a read returns the file's content (`null` when it
//! does not exist); a compare-and-set reads, then writes in one command
//! expecting the version it read. An error the client calls definite is a `fail` (it
//! never took effect); any other is `info`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use toastyfs_client::{Client, ClientError, WriteOptions};
use toastyfs_proto::namespace::FsError;
use toastyfs_proto::{FsPath, Version};

use crate::dice::Dice;
use crate::history::{Event, EventType};

/// How a run is shaped.
#[derive(Debug, Clone)]
pub struct RegisterWorkload {
    /// Concurrent clients (Jepsen's processes).
    pub clients: usize,
    /// Registers, as files `<dir>/k<i>`.
    pub keys: usize,
    pub dir: String,
    pub duration: Duration,
    /// Out of 100 operations, how many are reads.
    pub read_percent: u64,
    /// Out of 100 other operations, how many are compare-and-sets (a read,
    /// then a write at offset 0 expecting the version read) rather than
    /// whole-file puts.
    pub cas_percent: u64,
    /// Bytes of a written file: the value padded with `.` (0: the value
    /// alone). Larger files spend longer uploading.
    pub value_bytes: usize,
}

/// The shared recorder: events in the order they happened, with one
/// monotonic clock for every process.
#[derive(Clone)]
pub struct Recorder {
    started: Instant,
    events: Arc<Mutex<Vec<Event>>>,
    /// Per process, the error its next completion ends with.
    errors: Arc<Mutex<std::collections::BTreeMap<u64, String>>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            started: Instant::now(),
            events: Arc::default(),
            errors: Arc::default(),
        }
    }
}

impl Recorder {
    /// Records an event now (the time is taken under the lock, so the
    /// order of events and the order of their times agree).
    pub fn record(&self, process: u64, kind: EventType, f: &str, key: &str, value: Value) {
        let error = match kind {
            EventType::Fail | EventType::Info => self
                .errors
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&process),
            EventType::Invoke | EventType::Ok => None,
        };
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        let time_ns = self.started.elapsed().as_nanos() as u64;
        events.push(Event {
            process,
            kind,
            f: f.to_owned(),
            key: key.to_owned(),
            value,
            time_ns,
            error,
        });
    }

    /// How process `process`'s operation ends after `e`: `fail` if the
    /// client calls it definite, else `info`; the next completion the
    /// process records carries the error's text.
    pub fn ending(&self, process: u64, e: &ClientError) -> EventType {
        let text = toastyfs_client::error::describe(e);
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(process, text);
        if e.is_definite() {
            EventType::Fail
        } else {
            EventType::Info
        }
    }

    /// When the history's clock started (nemesis intervals are timed
    /// from it too).
    pub fn started(&self) -> Instant {
        self.started
    }

    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl RegisterWorkload {
    /// The short profile CI runs: four clients, three registers under
    /// `/reg`, 20 s, half reads.
    pub fn short_profile() -> RegisterWorkload {
        RegisterWorkload {
            clients: 4,
            keys: 3,
            dir: "/reg".into(),
            duration: Duration::from_secs(20),
            read_percent: 50,
            cas_percent: 0,
            value_bytes: 0,
        }
    }

    /// What a write of `value` puts in the file.
    fn padded(&self, value: &str) -> Vec<u8> {
        let mut bytes = value.as_bytes().to_vec();
        if bytes.len() < self.value_bytes {
            bytes.resize(self.value_bytes, b'.');
        }
        bytes
    }

    fn key(&self, k: u64) -> String {
        format!("{}/k{k}", self.dir)
    }

    /// Runs every client until the duration is over; returns the history.
    pub async fn run(&self, client: Arc<Client>, recorder: &Recorder) -> Vec<Event> {
        self.run_with(&[client], &[], recorder).await
    }

    /// [`RegisterWorkload::run`] with `clients` processes spread over
    /// `writers` (process `p` uses `writers[p % len]`), plus one read-only
    /// process per client in `readers` (e.g. each pinned to one node).
    pub async fn run_with(
        &self,
        writers: &[Arc<Client>],
        readers: &[Arc<Client>],
        recorder: &Recorder,
    ) -> Vec<Event> {
        let deadline = Instant::now() + self.duration;
        // The clients run concurrently in this task: the client library's
        // read future is not provably `Send` for spawning (a rustc
        // limitation with closures over borrowed slices), and one task is
        // concurrency enough for a handful of clients.
        let mixed = (0..self.clients as u64).map(|process| {
            let client = &writers[process as usize % writers.len()];
            self.client_loop(process, client, self.read_percent, recorder, deadline)
        });
        let read_only = readers.iter().enumerate().map(|(i, client)| {
            let process = self.clients as u64 + i as u64;
            self.client_loop(process, client, 100, recorder, deadline)
        });
        futures::future::join_all(mixed.chain(read_only)).await;
        recorder.events()
    }

    async fn client_loop(
        &self,
        process: u64,
        client: &Client,
        read_percent: u64,
        recorder: &Recorder,
        deadline: Instant,
    ) {
        let mut dice = Dice::new(0x9e37_79b9_7f4a_7c15 ^ (process + 1));
        let mut n = 0u64;
        while Instant::now() < deadline {
            let key = self.key(dice.roll(self.keys as u64));
            let path = FsPath::new(&key).expect("a valid register path");
            let roll = dice.roll(100);
            if roll < read_percent {
                read_op(process, client, recorder, &key, &path).await;
                continue;
            }
            n += 1;
            // Fixed width, so a write at offset 0 replaces the whole value.
            let value = format!("p{process:03}-{n:07}");
            if (roll - read_percent) * 100 < (100 - read_percent) * self.cas_percent {
                let Some((seen, version)) = read_op(process, client, recorder, &key, &path).await
                else {
                    continue;
                };
                let input = Value::Array(vec![seen, value.clone().into()]);
                recorder.record(process, EventType::Invoke, "cas", &key, input.clone());
                let options = WriteOptions {
                    expect: Some(version),
                    create_with_chunk_size: Some(toastyfs_proto::namespace::DEFAULT_CHUNK_SIZE),
                    progress: None,
                };
                let bytes = self.padded(&value);
                let kind = match client.write_at(&path, 0, &bytes[..], options).await {
                    Ok(_) => EventType::Ok,
                    Err(e) => recorder.ending(process, &e),
                };
                recorder.record(process, kind, "cas", &key, input);
            } else {
                recorder.record(
                    process,
                    EventType::Invoke,
                    "write",
                    &key,
                    value.clone().into(),
                );
                let bytes = self.padded(&value);
                let kind = match client.put(&path, &bytes[..], false, None, None).await {
                    Ok(_) => EventType::Ok,
                    Err(e) => recorder.ending(process, &e),
                };
                recorder.record(process, kind, "write", &key, value.into());
            }
        }
    }
}

impl RegisterWorkload {
    /// After the run, with every fault healed: reads every register
    /// written once more (process `final_process`), retrying errors while
    /// `within` lasts. Returns the keys that could not be read: a lost
    /// chunk, or a file the cluster cannot serve.
    pub async fn final_reads(
        &self,
        client: &Client,
        recorder: &Recorder,
        final_process: u64,
        within: Duration,
    ) -> Vec<String> {
        let mut unreadable = Vec::new();
        // Keys never written read as absent whatever happened: skip them.
        let written: std::collections::BTreeSet<String> = recorder
            .events()
            .into_iter()
            .filter(|e| e.kind == EventType::Invoke && e.f != "read")
            .map(|e| e.key)
            .collect();
        // One budget for all: a key is read at least once, and retried
        // while the budget lasts.
        let deadline = Instant::now() + within;
        for key in (0..self.keys as u64).map(|k| self.key(k)) {
            if !written.contains(&key) {
                continue;
            }
            let path = FsPath::new(&key).expect("a valid register path");
            let read = || async {
                read_op(final_process, client, recorder, &key, &path)
                    .await
                    .is_some()
            };
            if !until_read(deadline, read).await {
                unreadable.push(key);
            }
        }
        unreadable
    }
}

/// Runs `count` client loops (processes `first`, `first + 1`, ...)
/// concurrently, each given the deadline `duration` from now.
pub async fn run_processes<F, Fut>(first: u64, count: usize, duration: Duration, client_loop: F)
where
    F: Fn(u64, Instant) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let deadline = Instant::now() + duration;
    let loops = (0..count as u64).map(|i| client_loop(first + i, deadline));
    futures::future::join_all(loops).await;
}

/// Runs `read` until it succeeds, at least once and every 500 ms until
/// `deadline`; whether it succeeded.
pub async fn until_read<F, Fut>(deadline: Instant, mut read: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    loop {
        if read().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One recorded read: the value and the version it was read at, when it
/// succeeded.
async fn read_op(
    process: u64,
    client: &Client,
    recorder: &Recorder,
    key: &str,
    path: &FsPath,
) -> Option<(Value, Version)> {
    recorder.record(process, EventType::Invoke, "read", key, Value::Null);
    let (kind, value, version) = read(process, client, recorder, path).await;
    recorder.record(process, kind, "read", key, value.clone());
    (kind == EventType::Ok).then_some((value, version))
}

/// Reads a register: its content, or `null` if the file does not exist,
/// and the version read (0 for none).
async fn read(
    process: u64,
    client: &Client,
    recorder: &Recorder,
    path: &FsPath,
) -> (EventType, Value, Version) {
    let mut out = Vec::new();
    match client.read_to(path, 0, None, &mut out, None).await {
        Ok(outcome) => match String::from_utf8(out) {
            // The value without the padding a write may have added.
            Ok(text) => (
                EventType::Ok,
                text.trim_end_matches('.').into(),
                outcome.version,
            ),
            // Not a value any write put there: report it as read.
            Err(e) => (
                EventType::Ok,
                format!("{:?}", e.into_bytes()).into(),
                outcome.version,
            ),
        },
        Err(ClientError::Refused(FsError::NotFound { .. })) => {
            (EventType::Ok, Value::Null, Version(0))
        }
        Err(e) => (recorder.ending(process, &e), Value::Null, Version(0)),
    }
}
