//! Opening a store after a crash (issue 11, defect 7): the log's WAL is
//! recovered in RocksDB's `TolerateCorruptedTailRecords` mode, so a torn
//! last record (a write cut short by the crash, never acknowledged since
//! every append is reported after its sync) is dropped and the store opens
//! at the record before it; a corrupt record before the tail refuses the
//! open with an error that says so, rather than replaying a prefix.

mod support {
    pub mod entries;
}

use std::path::{Path, PathBuf};

use openraft::storage::RaftStateMachine;
use toastyfs_raft_meta::store;
use toastyfs_raft_meta::store::state::state_header;
use toastyfs_raft_meta::types::Entry;

fn entry(index: u64) -> Entry {
    support::entries::mkdir_entry(1, index)
}

/// A store whose WAL holds ten applied entries, one write each.
async fn store_with_ten_entries() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_log, mut state) = store::open(dir.path()).expect("open");
    for index in 1..=10 {
        state.apply(vec![entry(index)]).await.expect("apply");
    }
    dir
}

/// The newest WAL file (RocksDB keeps unflushed writes there on close).
fn newest_wal(dir: &Path) -> PathBuf {
    let mut wals: Vec<PathBuf> = std::fs::read_dir(dir.join("db"))
        .expect("db dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
        .collect();
    wals.sort();
    wals.pop().expect("a WAL file")
}

fn applied(dir: &Path) -> u64 {
    let (_log, state) = store::open(dir).expect("open");
    state_header(state.db()).expect("header").applied_index
}

#[tokio::test]
async fn a_torn_last_record_is_dropped_and_the_store_opens_before_it() {
    let dir = store_with_ten_entries().await;
    // (Opening recovers the WAL into tables, so nothing opens it before.)
    let wal = newest_wal(dir.path());
    let len = std::fs::metadata(&wal).expect("wal").len();
    // Cut the last write short, as a crash in the middle of it would.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&wal)
        .expect("open wal");
    file.set_len(len - 8).expect("truncate");
    drop(file);
    assert_eq!(
        applied(dir.path()),
        9,
        "the torn apply is gone, the rest kept"
    );
}

#[tokio::test]
async fn a_corrupt_record_before_the_tail_refuses_the_open() {
    let dir = store_with_ten_entries().await;
    let wal = newest_wal(dir.path());
    let mut bytes = std::fs::read(&wal).expect("read wal");
    let at = bytes.len() / 3;
    bytes[at] ^= 0x40;
    std::fs::write(&wal, bytes).expect("write wal");
    let error = match store::open(dir.path()) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a store with a corrupt WAL record opened"),
    };
    assert!(
        error.contains("orrupt"),
        "the error does not say the store is corrupt: {error}"
    );
}
