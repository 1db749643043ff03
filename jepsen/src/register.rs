//! The register workload: concurrent clients read and overwrite whole
//! small files (one register per file) through the client library, and
//! every operation is recorded as a Jepsen history. A write puts a value
//! no other write uses; a read returns the file's content (`null` when it
//! does not exist). An error the client calls definite is a `fail` (it
//! never took effect); any other is `info`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use toastyfs_client::{Client, ClientError};
use toastyfs_proto::namespace::FsError;
use toastyfs_proto::FsPath;

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
}

/// The shared recorder: events in the order they happened, with one
/// monotonic clock for every process.
#[derive(Clone)]
pub struct Recorder {
    started: Instant,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            started: Instant::now(),
            events: Arc::default(),
        }
    }
}

impl Recorder {
    /// Records an event now (the time is taken under the lock, so the
    /// order of events and the order of their times agree).
    pub fn record(&self, process: u64, kind: EventType, f: &str, key: &str, value: Value) {
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        let time_ns = self.started.elapsed().as_nanos() as u64;
        events.push(Event {
            process,
            kind,
            f: f.to_owned(),
            key: key.to_owned(),
            value,
            time_ns,
        });
    }

    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// A small deterministic generator (xorshift), one per process.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

fn completion(e: &ClientError) -> EventType {
    if e.is_definite() {
        EventType::Fail
    } else {
        EventType::Info
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
        }
    }

    fn key(&self, k: u64) -> String {
        format!("{}/k{k}", self.dir)
    }

    /// Runs every client until the duration is over; returns the history.
    pub async fn run(&self, client: Arc<Client>, recorder: &Recorder) -> Vec<Event> {
        let deadline = Instant::now() + self.duration;
        // The clients run concurrently in this task: the client library's
        // read future is not provably `Send` for spawning (a rustc
        // limitation with closures over borrowed slices), and one task is
        // concurrency enough for a handful of clients.
        let loops = (0..self.clients as u64)
            .map(|process| self.client_loop(process, &client, recorder, deadline));
        futures::future::join_all(loops).await;
        recorder.events()
    }

    async fn client_loop(
        &self,
        process: u64,
        client: &Client,
        recorder: &Recorder,
        deadline: Instant,
    ) {
        let mut dice = Dice(0x9e37_79b9_7f4a_7c15 ^ (process + 1));
        let mut n = 0u64;
        while Instant::now() < deadline {
            let key = self.key(dice.roll(self.keys as u64));
            let path = FsPath::new(&key).expect("a valid register path");
            if dice.roll(100) < self.read_percent {
                recorder.record(process, EventType::Invoke, "read", &key, Value::Null);
                let (kind, value) = read(client, &path).await;
                recorder.record(process, kind, "read", &key, value);
            } else {
                n += 1;
                let value = format!("p{process}-{n}");
                recorder.record(
                    process,
                    EventType::Invoke,
                    "write",
                    &key,
                    value.clone().into(),
                );
                let kind = match client.put(&path, value.as_bytes(), false, None, None).await {
                    Ok(_) => EventType::Ok,
                    Err(e) => completion(&e),
                };
                recorder.record(process, kind, "write", &key, value.into());
            }
        }
    }
}

/// Reads a register: its content, or `null` if the file does not exist.
async fn read(client: &Client, path: &FsPath) -> (EventType, Value) {
    let mut out = Vec::new();
    match client.read_to(path, 0, None, &mut out, None).await {
        Ok(_) => match String::from_utf8(out) {
            Ok(text) => (EventType::Ok, text.into()),
            // Not a value any write put there: report it as read.
            Err(e) => (EventType::Ok, format!("{:?}", e.into_bytes()).into()),
        },
        Err(ClientError::Refused(FsError::NotFound { .. })) => (EventType::Ok, Value::Null),
        Err(e) => (completion(&e), Value::Null),
    }
}
