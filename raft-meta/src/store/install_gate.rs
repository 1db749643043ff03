//! Readers during a snapshot install (issue 11, defect 2): a load deletes
//! the old state and writes the new one in pieces; a reader that takes its
//! view meanwhile must wait and then see the whole new state, never the
//! empty or half-written one. The load is paused (`snapshot::pause`) right
//! after the old state is gone, and a reader is started then.

use std::time::Duration;

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::{CommittedLeaderId, EntryPayload, LogId};
use toastyfs_proto::namespace::{Command, Proposal};
use toastyfs_proto::FsPath;

use super::snapshot::pause;
use super::state::state_header;
use super::{open, StateMachine};
use crate::types::{Entry, ProposalBatch};

fn entry(index: u64) -> Entry {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(ProposalBatch {
            proposals: vec![Proposal {
                session: None,
                time_ms: index,
                command: Command::CreateDir {
                    path: FsPath::new(&format!("/d{index}")).expect("path"),
                    parents: false,
                    expect: None,
                },
            }],
        }),
    }
}

async fn applied_up_to(state: &mut StateMachine, last: u64) {
    state
        .apply((1..=last).map(entry).collect::<Vec<_>>())
        .await
        .expect("apply");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_during_an_install_sees_the_old_or_the_new_state_never_a_mix() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_log, mut state) = open(dir.path()).expect("open");
    applied_up_to(&mut state, 5).await;

    let donor_dir = tempfile::tempdir().expect("temp dir");
    let (_donor_log, mut donor) = open(donor_dir.path()).expect("open donor");
    applied_up_to(&mut donor, 10).await;
    let expected = state_header(donor.db()).expect("donor header");
    let snapshot = donor
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("donor snapshot");

    let db = state.db().clone();
    let (reached, release) = pause::arm(&db.dir);
    let meta = snapshot.meta.clone();
    let mut incoming = state.begin_receiving_snapshot().await.expect("receive");
    let mut data = *snapshot.snapshot;
    tokio::io::copy(&mut data, &mut *incoming)
        .await
        .expect("copy");
    let install = tokio::spawn(async move {
        state
            .install_snapshot(&meta, incoming)
            .await
            .expect("install");
    });

    // The old state is deleted and the new one not yet written: read now.
    tokio::task::spawn_blocking(move || reached.recv_timeout(Duration::from_secs(10)))
        .await
        .expect("join")
        .expect("the load reached its pause");
    let reader_db = db.clone();
    let reader = std::thread::spawn(move || state_header(&reader_db).expect("header"));
    // Give an ungated reader all the time it needs to read the gap.
    std::thread::sleep(Duration::from_millis(200));
    release.send(()).expect("release the load");
    let seen = reader.join().expect("reader");
    install.await.expect("install task");
    assert_eq!(
        (seen.applied_index, seen.digest),
        (expected.applied_index, expected.digest),
        "a reader saw a state that was neither the old nor the new one"
    );
}
