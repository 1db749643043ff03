//! `wait-healthy`'s rules: what keeps a cluster from being healthy, each named.

use toastyfs_proto::chunks::ChunkServerId;
use toastyfs_proto::cluster::{ChunkServerInfo, NodeStatus};

use super::*;

fn node(id: u64, role: Role, applied: u64, digest: &str) -> NodeJson {
    NodeJson {
        id,
        addr: format!("10.0.0.{id}:7001"),
        status: Some(NodeStatus {
            id,
            addr: format!("10.0.0.{id}:7001"),
            role,
            term: 3,
            leader: Some(1),
            last_log_index: applied,
            commit_index: applied,
            applied_index: applied,
            snapshot_index: None,
            purged_index: None,
            digest: digest.into(),
            digest_index: applied,
            voters: vec![1, 2, 3],
            learners: vec![],
            nodes: BTreeMap::new(),
            wal_syncs: 0,
            running: true,
            version: String::new(),
        }),
        error: None,
    }
}

fn chunks(up: &[bool], under_replicated: u64) -> ChunkClusterStatus {
    ChunkClusterStatus {
        servers: up
            .iter()
            .enumerate()
            .map(|(i, up)| ChunkServerInfo {
                server: ChunkServerId(i as u64),
                addr: format!("10.0.0.{i}:7011"),
                up: *up,
                chunks: 0,
                used_bytes: 0,
                free_bytes: 0,
                last_report_ms: 0,
            })
            .collect(),
        replication_factor: 3,
        under_replicated,
        lost: 0,
        pending: 0,
    }
}

fn healthy_cluster() -> Vec<NodeJson> {
    vec![
        node(1, Role::Leader, 10, "aa"),
        node(2, Role::Follower, 10, "aa"),
        node(3, Role::Follower, 10, "aa"),
    ]
}

fn floor(floor: u64) -> Expect {
    Expect {
        floor,
        chunk_servers: 0,
    }
}

#[test]
fn chunk_servers_not_yet_reported_are_waited_for() {
    let expect = Expect {
        floor: 10,
        chunk_servers: 3,
    };
    let found = problems(&healthy_cluster(), Some(&chunks(&[true, true], 0)), expect);
    assert_eq!(
        found,
        vec!["2 chunk servers are up, of the 3 expected".to_owned()]
    );
}

#[test]
fn a_caught_up_cluster_is_healthy() {
    let found = problems(&healthy_cluster(), Some(&chunks(&[true; 3], 0)), floor(10));
    assert!(found.is_empty(), "{found:?}");
    assert_eq!(leader_commit(&healthy_cluster()), Some((1, 10)));
}

#[test]
fn each_reason_to_wait_is_named() {
    let mut nodes = healthy_cluster();
    nodes[1] = node(2, Role::Learner, 7, "bb");
    nodes[2].status = None;
    nodes[2].error = Some("connection refused".into());
    let found = problems(&nodes, Some(&chunks(&[true, false, true], 4)), floor(10));
    let all = found.join("\n");
    assert!(all.contains("node 2 is still a learner"), "{all}");
    assert!(all.contains("node 2 has applied index 7 of 10"), "{all}");
    assert!(
        all.contains("node 3 (10.0.0.3:7001) does not answer: connection refused"),
        "{all}"
    );
    assert!(all.contains("chunk server 10.0.0.1:7011 is down"), "{all}");
    assert!(all.contains("4 chunks under-replicated"), "{all}");
}

#[test]
fn differing_digests_and_leaders_are_named() {
    let mut nodes = healthy_cluster();
    nodes[2] = node(3, Role::Follower, 10, "cc");
    if let Some(status) = nodes[1].status.as_mut() {
        status.leader = Some(2);
    }
    let all = problems(&nodes, Some(&chunks(&[true], 0)), floor(0)).join("\n");
    assert!(
        all.contains("DIGESTS DIFFER at index 10: node 1 and node 3"),
        "{all}"
    );
    assert!(all.contains("members disagree on the leader"), "{all}");
    let leaderless: Vec<_> = healthy_cluster()
        .into_iter()
        .map(|mut n| {
            if let Some(s) = n.status.as_mut() {
                s.leader = None;
            }
            n
        })
        .collect();
    assert!(problems(&leaderless, Some(&chunks(&[true], 0)), floor(0))
        .contains(&"no leader".to_owned()));
    assert!(problems(&healthy_cluster(), None, floor(0))[0].contains("status is unknown"));
}
