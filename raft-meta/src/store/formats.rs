//! Golden fixtures of every record the metadata node keeps on disk: the
//! namespace's stored records (kinds 16 to 23, samples from
//! `namespace/tests/formats.rs`), the Raft log entry, vote, log id and
//! membership (32 to 35) and the snapshot file's records (36 to 38), in
//! `raft-meta/tests/fixtures/<name>.hex`. The encoding of each sample must
//! equal its fixture and the fixture must decode back to the sample, so an
//! encoding change (ours, postcard's or openraft's serde layout) cannot
//! slip in and strand old logs, states and snapshots. Run with
//! `TOASTYFS_BLESS=1` to rewrite the fixtures, then review the diff.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use openraft::{BasicNode, CommittedLeaderId, EntryPayload, Membership};
use toastyfs_proto::namespace::{Command, Proposal};
use toastyfs_proto::record::Sample;
use toastyfs_proto::{ClientId, FsPath, Seq, SessionTag};

#[path = "../../../proto/tests/support/golden.rs"]
mod golden;
use golden::check_or_bless;

use super::snapshot::{ChunkRecord, EndRecord, HeaderRecord};
use crate::types::{
    Entry, EntryRecord, LogId, LogIdRecord, MembershipRecord, ProposalBatch, SnapshotMeta,
    StoredMembership, Vote, VoteRecord,
};

fn log_id(term: u64, node: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, node), index)
}

fn membership() -> StoredMembership {
    let voters = BTreeSet::from([1, 2, 3]);
    let nodes: BTreeMap<u64, BasicNode> = (1..=4)
        .map(|id| (id, BasicNode::new(format!("10.0.0.{id}:7000"))))
        .collect();
    StoredMembership::new(Some(log_id(2, 1, 7)), Membership::new(vec![voters], nodes))
}

/// One sample of every Raft record the store writes, by fixture name.
fn raft_record_samples() -> Vec<Sample> {
    let proposal = Proposal {
        session: Some(SessionTag {
            client: ClientId(9),
            seq: Seq(2),
        }),
        time_ms: 1_700_000_000_000,
        command: Command::CreateFile {
            path: FsPath::new("/a/f").expect("valid path"),
            chunk_size: 4096,
            expect: None,
        },
    };
    let entry = |payload| {
        EntryRecord(Entry {
            log_id: log_id(3, 1, 42),
            payload,
        })
    };
    vec![
        Sample::new(
            "log-entry-normal",
            entry(EntryPayload::Normal(ProposalBatch {
                proposals: vec![proposal],
            })),
        ),
        Sample::new("log-entry-blank", entry(EntryPayload::Blank)),
        Sample::new(
            "log-entry-membership",
            entry(EntryPayload::Membership(membership().membership().clone())),
        ),
        Sample::new("vote", VoteRecord::from_owned(Vote::new_committed(3, 1))),
        Sample::new("log-id", LogIdRecord::from_owned(log_id(3, 1, 42))),
        Sample::new("membership", MembershipRecord::from_owned(membership())),
        Sample::new(
            "snapshot-header",
            HeaderRecord::from_owned(SnapshotMeta {
                last_log_id: Some(log_id(3, 1, 42)),
                last_membership: membership(),
                snapshot_id: "3-1-42-0".into(),
            }),
        ),
        Sample::new(
            "snapshot-chunk",
            ChunkRecord::from_owned(vec![(b"H".to_vec(), vec![1, 2]), (b"R".to_vec(), vec![])]),
        ),
        Sample::new("snapshot-end", EndRecord::from_owned(2)),
    ]
}

fn samples() -> Vec<Sample> {
    let mut samples = crate::namespace::stored_record_samples();
    samples.extend(raft_record_samples());
    samples
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The samples match their fixtures; with `TOASTYFS_BLESS=1` the fixtures
/// are first rewritten from the samples (and those without one removed).
#[test]
fn disk_records_match_their_golden_fixtures() {
    let dir = fixture_dir();
    let samples = samples();
    check_or_bless(&dir, "", &samples);
}

/// Every record kind the node stores on disk has a sample.
#[test]
fn every_disk_record_kind_has_a_sample() {
    let kinds: BTreeSet<u8> = samples()
        .iter()
        .map(|s| s.encode().expect("sample encodes")[2])
        .collect();
    let expected: BTreeSet<u8> = (16..=27).chain(32..=38).collect();
    assert_eq!(kinds, expected);
}

/// The Raft samples reject every truncation and bit flip too.
#[test]
fn raft_records_are_tamper_evident() {
    for sample in raft_record_samples() {
        sample.assert_tamper_evident();
    }
}
