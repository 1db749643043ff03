//! One run of the register workload (and beside it, when asked, the
//! blocks, namespace and append workloads) against a [`NetCluster`]: the clients
//! on a thread of the first client host while the nemesis schedule strikes
//! from the calling thread; then everything is healed, the metadata nodes
//! must converge (same applied index and digest), and the history and the
//! nemesis intervals are judged. The tests and the soak command share it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use toastyfs_client::{Client, ClientConfig};

use crate::append::AppendWorkload;
use crate::blocks::BlocksWorkload;
use crate::namespace::NamespaceWorkload;
use crate::nemesis::Schedule;
use crate::netcluster::NetCluster;
use crate::paused_client::ClientProcesses;
use crate::register::{Recorder, RegisterWorkload};
use crate::verdict::{judge_run, RunVerdict, HARNESS_PROCESSES};

/// What a run is given.
pub struct Run {
    pub workload: RegisterWorkload,
    /// Partial writes of one large file, run beside the registers.
    pub blocks: Option<BlocksWorkload>,
    /// Files created, renamed, deleted and listed, beside the registers
    /// (and client processes paused mid-write, if the schedule has them).
    pub namespace: Option<NamespaceWorkload>,
    /// Records appended to shared logs, beside the registers.
    pub append: Option<AppendWorkload>,
    pub schedule: Schedule,
    /// The client configuration for a list of metadata addresses.
    pub config: fn(Vec<String>) -> ClientConfig,
    /// Adds one read-only client pinned to each metadata node.
    pub pinned_readers: bool,
    /// Seed of the nemesis's choices.
    pub seed: u64,
}

/// A client configuration for runs under faults: short attempts, a retry
/// budget longer than any fault holds.
pub fn fault_config(meta: Vec<String>) -> ClientConfig {
    let mut config = ClientConfig::new(meta);
    config.retry_for = Duration::from_secs(15);
    config.request_timeout = Duration::from_secs(2);
    config
}

/// Why a run could not be judged.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the client thread panicked: {0}")]
    Clients(String),
    #[error("cannot heal the network: {0}")]
    Heal(#[from] crate::net::NetError),
    #[error("cannot write or check the history: {0}")]
    Judge(#[from] std::io::Error),
}

/// Runs `run` on `cluster` and judges it under `name`.
pub fn run_register(
    cluster: &mut NetCluster,
    name: &str,
    run: Run,
) -> Result<RunVerdict, RunError> {
    let recorder = Recorder::default();
    let clients = start_clients(cluster, &run, recorder.clone());
    let processes = run.namespace.clone().map(|namespace| ClientProcesses {
        recorder: recorder.clone(),
        namespace,
    });
    let nemesis = run
        .schedule
        .run(cluster, recorder.started(), run.seed, processes.as_ref());
    clients.join().map_err(|panic| {
        RunError::Clients(
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default(),
        )
    })?;
    cluster.net.heal()?;
    cluster.wait_converged(Duration::from_secs(60));
    let unreadable = final_reads(cluster, &run, recorder.clone())
        .join()
        .map_err(|_| RunError::Clients("the final reads panicked".into()))?;
    // The recorder holds the workload's events and the final reads.
    let events = recorder.events();
    Ok(judge_run(name, &events, &nemesis, unreadable)?)
}

/// How long after the final reads every referenced chunk may take to
/// reach the replication factor again.
const REPLICATED_WITHIN: Duration = Duration::from_secs(60);

/// Waits until the leader counts no referenced chunk under the
/// replication factor and none lost; what is wrong if that does not come
/// within `within`.
async fn fully_replicated(client: &Client, within: Duration) -> Option<String> {
    let deadline = Instant::now() + within;
    let mut last = String::from("no chunk status answered");
    while Instant::now() < deadline {
        match client.admin().chunk_status().await {
            Ok(status) if status.under_replicated == 0 && status.lost == 0 => return None,
            Ok(status) => {
                last = format!(
                    "{} chunks under the replication factor {}, {} lost",
                    status.under_replicated, status.replication_factor, status.lost
                );
            }
            Err(e) => last = format!("chunk status: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Some(format!("replication after {within:?}: {last}"))
}

/// The process number of the final reads.
const FINAL_PROCESS: u64 = HARNESS_PROCESSES;

/// Reads every key once more after the heal (recorded in the history),
/// then waits for every referenced chunk to be at the replication factor;
/// returns the keys that could not be read and what is not replicated.
fn final_reads(
    cluster: &NetCluster,
    run: &Run,
    recorder: Recorder,
) -> std::thread::JoinHandle<Vec<String>> {
    let metas = cluster.meta_addrs();
    let (workload, config, blocks) = (run.workload.clone(), run.config, run.blocks.clone());
    let (namespace, append) = (run.namespace.clone(), run.append.clone());
    cluster.run_in(cluster.client_host(0), move || async move {
        let client = Client::new(config(metas));
        let within = Duration::from_secs(30);
        let mut unreadable = workload
            .final_reads(&client, &recorder, FINAL_PROCESS, within)
            .await;
        if let Some(blocks) = &blocks {
            let lost = blocks
                .final_reads(&client, &recorder, FINAL_PROCESS + 1, within)
                .await;
            unreadable.extend(lost);
        }
        if let Some(namespace) = &namespace {
            let lost = namespace
                .final_reads(&client, &recorder, FINAL_PROCESS + 2, within)
                .await;
            unreadable.extend(lost);
        }
        if let Some(append) = &append {
            let lost = append
                .final_reads(&client, &recorder, FINAL_PROCESS + 3, within)
                .await;
            unreadable.extend(lost);
        }
        unreadable.extend(fully_replicated(&client, REPLICATED_WITHIN).await);
        unreadable
    })
}

fn start_clients(
    cluster: &NetCluster,
    run: &Run,
    recorder: Recorder,
) -> std::thread::JoinHandle<()> {
    let metas = cluster.meta_addrs();
    let (workload, config, pinned) = (run.workload.clone(), run.config, run.pinned_readers);
    let blocks = run.blocks.clone();
    let (namespace, append) = (run.namespace.clone(), run.append.clone());
    cluster.run_in(cluster.client_host(0), move || async move {
        let writer = Arc::new(Client::new(config(metas.clone())));
        mkdir(&writer, &workload.dir).await;
        if let Some(namespace) = &namespace {
            for d in 0..namespace.dirs as u64 {
                mkdir(&writer, &namespace.directory(d)).await;
            }
        }
        if let Some(append) = &append {
            mkdir(&writer, &append.dir).await;
        }
        if let Some(blocks) = &blocks {
            let parent = blocks.path.rsplit_once('/').map_or("/", |(dir, _)| dir);
            mkdir(&writer, parent).await;
            blocks
                .prepare(&writer, &recorder, SETUP_PROCESS, Duration::from_secs(30))
                .await
                .expect("write the blocks file before the run");
        }
        let readers: Vec<Arc<Client>> = if pinned {
            metas
                .iter()
                .map(|addr| Arc::new(Client::new(config(vec![addr.clone()]))))
                .collect()
        } else {
            Vec::new()
        };
        let registers = workload.run_with(std::slice::from_ref(&writer), &readers, &recorder);
        let partial = async {
            if let Some(blocks) = &blocks {
                blocks.run(&writer, &recorder, BLOCKS_PROCESS).await;
            }
        };
        let files = async {
            if let Some(namespace) = &namespace {
                namespace.run(&writer, &recorder).await;
            }
        };
        let logs = async {
            if let Some(append) = &append {
                append.run(&writer, &recorder).await;
            }
        };
        futures::future::join4(registers, partial, files, logs).await;
    })
}

/// Makes directory `dir` (and its parents), retrying for 30 s.
async fn mkdir(client: &Client, dir: &str) {
    if dir == "/" || dir.is_empty() {
        return;
    }
    let path = toastyfs_proto::FsPath::new(dir).expect("a valid workload directory");
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.mkdir(&path, true).await.is_err() {
        assert!(Instant::now() < deadline, "mkdir {dir} failed for 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The first process number of the blocks workload's writers.
const BLOCKS_PROCESS: u64 = 100;
/// The first process number of the blocks file's initial writes.
const SETUP_PROCESS: u64 = HARNESS_PROCESSES + 1_000;
