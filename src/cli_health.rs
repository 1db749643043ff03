//! `toastyfs cluster wait-healthy`: what a rolling restart waits for
//! between two nodes. Healthy means every member answers, all agree on one
//! leader, none is a learner, each has applied what the leader had
//! committed when the wait began, digests of the same index agree, and
//! every chunk server is up with no chunk under-replicated, lost or
//! pending.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use toastyfs_proto::cluster::{ChunkClusterStatus, Role};

use crate::cli_cluster::{members, NodeJson};
use crate::cli_fs::{addresses, Connection};
use crate::exit::Failure;
use crate::output::outln;

/// Time between two looks at the cluster.
const LOOK_EVERY: Duration = Duration::from_millis(500);

/// What the wait expects beyond health itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Expect {
    /// Every member must have applied this index.
    pub floor: u64,
    /// At least this many chunk servers must be up (the leader knows
    /// only those that have reported, so a server still starting is not
    /// missed without it).
    pub chunk_servers: usize,
}

/// What keeps the cluster from being healthy (empty when it is).
pub fn problems(
    nodes: &[NodeJson],
    chunks: Option<&ChunkClusterStatus>,
    expect: Expect,
) -> Vec<String> {
    let floor = expect.floor;
    let mut problems = Vec::new();
    let mut leaders = BTreeMap::new();
    let mut digests: BTreeMap<u64, (u64, &str)> = BTreeMap::new();
    for node in nodes {
        let Some(status) = &node.status else {
            problems.push(format!(
                "node {} ({}) does not answer: {}",
                node.id,
                node.addr,
                node.error.as_deref().unwrap_or("no answer")
            ));
            continue;
        };
        if !status.running || status.role == Role::Shutdown {
            problems.push(format!("node {} has stopped Raft (see its log)", node.id));
        }
        if status.role == Role::Learner {
            problems.push(format!("node {} is still a learner (catching up)", node.id));
        }
        if status.applied_index < floor {
            problems.push(format!(
                "node {} has applied index {} of {floor}",
                node.id, status.applied_index
            ));
        }
        *leaders.entry(status.leader).or_insert(0) += 1;
        let (first, digest) = *digests
            .entry(status.digest_index)
            .or_insert((node.id, &status.digest));
        if digest != status.digest {
            problems.push(format!(
                "DIGESTS DIFFER at index {}: node {first} and node {} (stop writing and see docs/operations.md)",
                status.digest_index, node.id
            ));
        }
    }
    match leaders.keys().collect::<Vec<_>>().as_slice() {
        [Some(_)] => {}
        [None] => problems.push("no leader".into()),
        _ => problems.push(format!(
            "members disagree on the leader: {:?}",
            leaders.keys()
        )),
    }
    problems.extend(chunk_problems(chunks, expect.chunk_servers));
    problems
}

fn chunk_problems(chunks: Option<&ChunkClusterStatus>, expected_up: usize) -> Vec<String> {
    let Some(chunks) = chunks else {
        return vec!["the leader's chunk server status is unknown".into()];
    };
    let mut problems: Vec<String> = chunks
        .servers
        .iter()
        .filter(|s| !s.up)
        .map(|s| format!("chunk server {} is down", s.addr))
        .collect();
    let up = chunks.servers.iter().filter(|s| s.up).count();
    if up < expected_up {
        problems.push(format!(
            "{up} chunk servers are up, of the {expected_up} expected"
        ));
    }
    for (count, what) in [
        (chunks.under_replicated, "under-replicated"),
        (chunks.lost, "lost"),
        (chunks.pending, "not yet reported (pending)"),
    ] {
        if count > 0 {
            problems.push(format!("{count} chunks {what}"));
        }
    }
    problems
}

/// The leader's commit index, if the members agree on a leader that
/// answered.
fn leader_commit(nodes: &[NodeJson]) -> Option<(u64, u64)> {
    nodes.iter().find_map(|n| {
        let s = n.status.as_ref()?;
        (s.role == Role::Leader).then_some((n.id, s.commit_index))
    })
}

/// Waits until the cluster is healthy or `timeout` passes; then says
/// what was still wrong (exit 1).
pub async fn wait_healthy(
    connection: &Connection,
    timeout: Duration,
    chunk_servers: usize,
) -> Result<(), Failure> {
    let meta = addresses(connection)?;
    let admin = crate::cli_fs::client(connection, None)?.admin();
    let started = Instant::now();
    let mut floor = None;
    let mut last = vec!["no metadata node answered yet".to_owned()];
    while started.elapsed() < timeout {
        let nodes = match members(&admin, &meta).await {
            Ok(nodes) => nodes,
            Err(e) => {
                last = vec![e.message];
                tokio::time::sleep(LOOK_EVERY).await;
                continue;
            }
        };
        if floor.is_none() {
            floor = leader_commit(&nodes).map(|(_, commit)| commit);
        }
        let chunks = admin.chunk_status().await.ok();
        // Without a leader yet there is no floor; "no leader" is the problem.
        let expect = Expect {
            floor: floor.unwrap_or(0),
            chunk_servers,
        };
        let found = problems(&nodes, chunks.as_ref(), expect);
        if found.is_empty() {
            let (leader, _) = leader_commit(&nodes).unwrap_or_default();
            outln!(
                "healthy after {:.1} s: {} members at index {} or later, leader {leader}; {} chunk servers up",
                started.elapsed().as_secs_f64(),
                nodes.len(),
                floor.unwrap_or_default(),
                chunks.map_or(0, |c| c.servers.len())
            );
            return Ok(());
        }
        last = found;
        tokio::time::sleep(LOOK_EVERY).await;
    }
    Err(Failure::failed(format!(
        "not healthy after {} s:\n  {}",
        timeout.as_secs(),
        last.join("\n  ")
    )))
}

#[cfg(test)]
mod tests;
