//! Backups over the real RocksDB store: what `write` produces checks out
//! with the state's applied index and digest; every truncation and a
//! flipped byte are refused; a restore makes a new directory the only
//! voter of a new cluster with the same state, and refuses a damaged
//! backup (writing nothing) and an occupied directory.

mod support {
    pub mod entries;
}

use openraft::storage::RaftStateMachine;
use toastyfs_raft_meta::store::backup::{self, BackupError};
use toastyfs_raft_meta::store::state::state_header;
use toastyfs_raft_meta::store::{self, StateMachine};
use toastyfs_raft_meta::types::Entry;

fn entry(index: u64) -> Entry {
    support::entries::mkdir_entry(4, index)
}

async fn state_with(entries: u64) -> (tempfile::TempDir, StateMachine) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_log, mut state) = store::open(dir.path()).expect("open");
    state
        .apply((1..=entries).map(entry).collect::<Vec<_>>())
        .await
        .expect("apply");
    (dir, state)
}

fn backup_of(state: &StateMachine) -> Vec<u8> {
    let mut bytes = Vec::new();
    backup::write(state.db(), &mut bytes).expect("write a backup");
    bytes
}

#[tokio::test]
async fn a_backup_checks_out_with_the_states_index_and_digest() {
    let (_dir, state) = state_with(30).await;
    let bytes = backup_of(&state);
    let mut copy = Vec::new();
    let summary = backup::verify(&bytes[..], &mut copy).expect("a sound backup");
    let header = state_header(state.db()).expect("header");
    assert_eq!(copy, bytes, "verify copies what it reads");
    assert_eq!(summary.applied_index, 30);
    assert_eq!(summary.applied_term, 4);
    assert_eq!(summary.digest, hex::encode(header.digest));
    assert_eq!(summary.bytes, bytes.len() as u64);
}

#[tokio::test]
async fn a_truncated_or_flipped_backup_is_refused() {
    let (_dir, state) = state_with(10).await;
    let bytes = backup_of(&state);
    for cut in [0, 1, bytes.len() / 3, bytes.len() / 2, bytes.len() - 1] {
        let refused = backup::verify(&bytes[..cut], std::io::sink());
        assert!(
            matches!(refused, Err(BackupError::Damaged(_))),
            "a backup cut at {cut} of {}: {refused:?}",
            bytes.len()
        );
    }
    for at in [bytes.len() / 4, bytes.len() / 2, bytes.len() - 3] {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0x10;
        let refused = backup::verify(&flipped[..], std::io::sink());
        assert!(refused.is_err(), "a flipped byte at {at} went unnoticed");
    }
}

#[tokio::test]
async fn a_restore_makes_a_new_single_voter_cluster_with_the_same_state() {
    let (_dir, state) = state_with(12).await;
    let bytes = backup_of(&state);
    let files = tempfile::tempdir().expect("temp dir");
    let file = files.path().join("b.backup");
    std::fs::write(&file, &bytes).expect("write the backup");

    let damaged = files.path().join("damaged.backup");
    std::fs::write(&damaged, &bytes[..bytes.len() - 5]).expect("write");
    let target = files.path().join("damaged-target");
    let refused = backup::restore(&damaged, &target, 7, "10.0.0.7:7001").await;
    assert!(
        matches!(refused, Err(BackupError::Damaged(_))),
        "{refused:?}"
    );
    assert!(
        !target.exists(),
        "a damaged restore wrote into its directory"
    );

    let target = files.path().join("node7");
    let summary = backup::restore(&file, &target, 7, "10.0.0.7:7001")
        .await
        .expect("restore");
    assert_eq!(summary.applied_index, 12);
    let again = backup::restore(&file, &target, 7, "10.0.0.7:7001").await;
    assert!(matches!(again, Err(BackupError::Occupied(_))), "{again:?}");

    let (_log, mut restored) = store::open(&target).expect("open the restored node");
    let (applied, membership) = restored.applied_state().await.expect("applied state");
    assert_eq!(applied.map(|id| id.index), Some(12));
    let voters: Vec<u64> = membership.membership().voter_ids().collect();
    assert_eq!(voters, vec![7]);
    assert_eq!(
        state_header(restored.db()).expect("header").digest,
        state_header(state.db()).expect("header").digest
    );
}
