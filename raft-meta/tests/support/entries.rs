//! Log entries for the store tests: one `mkdir /d<index>` each.

use openraft::{CommittedLeaderId, EntryPayload, LogId};
use toastyfs_proto::namespace::{Command, Proposal};
use toastyfs_proto::FsPath;
use toastyfs_raft_meta::types::{Entry, ProposalBatch};

/// The entry at `index`, written in `term` by node 1: `mkdir /d<index>`.
pub fn mkdir_entry(term: u64, index: u64) -> Entry {
    let proposal = Proposal {
        session: None,
        time_ms: index,
        command: Command::CreateDir {
            path: FsPath::new(&format!("/d{index}")).expect("path"),
            parents: false,
            expect: None,
        },
    };
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
        payload: EntryPayload::Normal(ProposalBatch {
            proposals: vec![proposal],
        }),
    }
}
