//! A client process stopped in the middle of a write. The nemesis starts
//! `toastyfs put - <file>` on a client host, feeds it the first window of
//! a shared content, and sends SIGSTOP as soon as the client logs its
//! placement: the chunks are placed (maybe found present, maybe being
//! uploaded) and not committed. While it is stopped the other clients
//! delete and put the same content again, and the collector may condemn
//! the placement; at the heal it gets SIGCONT and the rest of its input,
//! and its exit status is its operation's ending in the namespace
//! workload's history (0 `ok`, 4 or a signal `info`, any other `fail`,
//! as the CLI documents its codes).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::json;

use crate::dice::Dice;
use crate::history::EventType;
use crate::namespace::NamespaceWorkload;
use crate::netcluster::NetCluster;
use crate::register::Recorder;
use crate::verdict::HARNESS_PROCESSES;

/// What the nemesis needs to run client processes into a workload's
/// history.
#[derive(Clone)]
pub struct ClientProcesses {
    pub recorder: Recorder,
    pub namespace: NamespaceWorkload,
}

/// The first process number of the paused clients (one each, so a
/// process never invokes twice).
pub const PAUSED_PROCESS: u64 = HARNESS_PROCESSES + 3_000;

/// The log line that says a window's chunks are placed.
const PLACED: &str = "placed; uploading";
/// How long a client process may take to finish after its SIGCONT.
const FINISH_WITHIN: Duration = Duration::from_secs(60);

/// A stopped `toastyfs put`, with the input it has not been given yet.
pub struct PausedPut {
    child: Child,
    stdin: ChildStdin,
    rest: Vec<u8>,
    process: u64,
    dir: String,
    input: serde_json::Value,
    recorder: Recorder,
}

impl ClientProcesses {
    /// Starts a put of a shared content from client host `host` and stops
    /// it once it has placed its first window (or after 10 s without).
    pub fn pause_mid_put(
        &self,
        cluster: &NetCluster,
        host: usize,
        number: u64,
        dice: &mut Dice,
    ) -> std::io::Result<PausedPut> {
        let ns = &self.namespace;
        let dir = ns.directory(dice.roll(ns.dirs as u64));
        let name = format!("n{}", dice.roll(ns.names as u64));
        let label = format!("c{}", dice.roll(ns.pool as u64));
        let mut child = cluster
            .command(host)
            .args(["put", "-", &format!("{dir}/{name}"), "--meta"])
            .arg(cluster.meta_addrs().join(","))
            .args(["--chunk-size", &ns.chunk_size.to_string()])
            .args(["--parallelism", "2"])
            .env("RUST_LOG", "toastyfs_client=debug")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let process = PAUSED_PROCESS + number;
        let input = json!({ "name": name, "content": label });
        let rec = self.recorder.clone();
        rec.record(process, EventType::Invoke, "ns-put", &dir, input.clone());
        let placed = watch_for_placement(&mut child);
        let mut content = ns.content(&label);
        let rest = content.split_off((2 * ns.chunk_size as usize).min(content.len()));
        let mut stdin = child.stdin.take().ok_or(std::io::ErrorKind::BrokenPipe)?;
        // The first window only: the put cannot commit its last window
        // before it has the rest.
        let _ = stdin.write_all(&content);
        if placed.recv_timeout(Duration::from_secs(10)).is_err() {
            eprintln!("paused client {process}: no placement logged within 10 s; stopped anyway");
        }
        signal(&child, libc::SIGSTOP);
        Ok(PausedPut {
            child,
            stdin,
            rest,
            process,
            dir,
            input,
            recorder: rec,
        })
    }
}

/// A channel that gets a message when `child` logs a placement (its
/// standard error is drained to the end on a thread of its own).
fn watch_for_placement(child: &mut Child) -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel();
    if let Some(stderr) = child.stderr.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains(PLACED) {
                    let _ = tx.send(());
                } else if line.contains("collected") || line.contains("ERROR") {
                    // What the stop did to the put, for whoever reads the run.
                    eprintln!("paused client: {line}");
                }
            }
        });
    }
    rx
}

fn signal(child: &Child, signal: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) with a pid of our own child.
        unsafe { libc::kill(pid, signal) };
    }
}

impl PausedPut {
    /// SIGCONT, the rest of the input, and the ending recorded once the
    /// process exits (killed, as `info`, if it takes over a minute), on a
    /// thread the caller joins before the history is judged.
    pub fn resume(self) -> std::thread::JoinHandle<()> {
        let PausedPut {
            mut child,
            mut stdin,
            rest,
            process,
            dir,
            input,
            recorder,
        } = self;
        signal(&child, libc::SIGCONT);
        std::thread::spawn(move || {
            let _ = stdin.write_all(&rest);
            drop(stdin);
            let deadline = std::time::Instant::now() + FINISH_WITHIN;
            let status = loop {
                match child.try_wait() {
                    Ok(Some(status)) => break Some(status),
                    Ok(None) if std::time::Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break None;
                    }
                }
            };
            let (kind, value) = match status.and_then(|s| s.code()) {
                Some(0) => (EventType::Ok, json!("ok")),
                Some(4) | None => (EventType::Info, input),
                Some(_) => (EventType::Fail, input),
            };
            recorder.record(process, kind, "ns-put", &dir, value);
        })
    }
}
