//! Chunk lists and reference counts: holes past the end, freeing on
//! overwrite, truncation rules, and forgetting garbage records.

use toastyfs_proto::namespace::*;

use super::{h, p, Fixture};
use crate::namespace::keys;
use crate::namespace::kv::KvRead;

/// A write past the end leaves holes that read as zeros (no chunk), and
/// reads are clipped at the end of the file.
#[test]
fn write_past_eof_leaves_holes() {
    let mut f = Fixture::new();
    let cs = u64::from(MIN_CHUNK_SIZE);
    let out = f.write("/f", 3 * cs + 10, 5, &[7]).unwrap();
    assert!(
        matches!(out, Outcome::Written { file_length, bytes_written: 5, .. } if file_length == 3 * cs + 15)
    );
    let plan = f.plan("/f", 0, 1 << 30);
    assert_eq!(plan.length, 3 * cs + 15);
    assert_eq!(plan.chunks, vec![None, None, None, Some(h(7))]);
    let past = f.plan("/f", 10 * cs, 100);
    assert_eq!((past.length, past.chunks.len()), (0, 0));
}

/// Overwriting a chunk frees the old one only when nothing else uses it.
#[test]
fn overwrite_frees_unreferenced_chunks_only() {
    let mut f = Fixture::new();
    let cs = u64::from(MIN_CHUNK_SIZE);
    f.write("/a", 0, 2 * cs, &[1, 2]).unwrap();
    f.write("/b", 0, cs, &[1]).unwrap();
    let out = f.write("/a", 0, 2 * cs, &[3, 1]).unwrap();
    assert_eq!(out.freed(), &[h(2)]);
    let out = f.ok(Command::Delete {
        path: p("/a"),
        recursive: false,
        expect: None,
    });
    assert_eq!(out.freed(), &[h(3)]);
    let out = f.ok(Command::Delete {
        path: p("/b"),
        recursive: false,
        expect: None,
    });
    assert_eq!(out.freed(), &[h(1)]);
    assert!(f.store.get(&keys::garbage(&h(1))).unwrap().is_some());
}

/// Shrinking into a stored chunk needs the cut chunk; growing exposes zeros.
#[test]
fn truncate_rules() {
    let mut f = Fixture::new();
    let cs = u64::from(MIN_CHUNK_SIZE);
    f.write("/t", 0, 3 * cs, &[1, 2, 3]).unwrap();
    let cut = |length, cut_chunk| Command::Truncate {
        path: p("/t"),
        length,
        cut_chunk,
        expect: None,
    };
    assert_eq!(
        f.run(cut(cs + 1, None)),
        Err(FsError::TruncateNeedsCutChunk {
            path: "/t".into(),
            length: cs + 1
        })
    );
    let out = f.ok(cut(cs + 1, Some(h(9))));
    let mut freed = out.freed().to_vec();
    freed.sort();
    assert_eq!(freed, vec![h(2), h(3)]);
    assert_eq!(
        f.run(cut(cs * 4, Some(h(1)))),
        Err(FsError::UnexpectedCutChunk {
            path: "/t".into(),
            length: cs * 4
        })
    );
    f.ok(cut(cs * 4, None));
    assert_eq!(
        f.plan("/t", 0, u64::MAX).chunks,
        vec![Some(h(1)), Some(h(9)), None, None]
    );
}

/// Condemnation records are forgotten on request, but only while the
/// chunk is still condemned; a write placed before the forget is refused
/// for it, one placed after is not.
#[test]
fn forget_garbage_drops_only_garbage_records() {
    let mut f = Fixture::new();
    f.write("/a", 0, 10, &[1]).unwrap();
    f.write("/a", 0, 10, &[2]).unwrap();
    assert!(f.store.get(&keys::garbage(&h(1))).unwrap().is_some());
    let out = f.ok(Command::ForgetGarbage {
        hashes: vec![h(1), h(2), h(3)],
    });
    assert_eq!(out, Outcome::GarbageForgotten { count: 1 });
    assert!(f.store.get(&keys::garbage(&h(1))).unwrap().is_none());
    // Still referenced: untouched.
    assert!(f.store.get(&keys::ref_count(&h(2))).unwrap().is_some());
    assert_eq!(
        f.write("/b", 0, 10, &[1]),
        Err(FsError::ChunkCollected { hash: h(1) })
    );
    let placed_at = f.index;
    f.run(placed(placed_at, write_of("/b", &[1]))).unwrap();
}

/// A write of chunks `chunks` at offset 0 of a new or existing file.
pub(super) fn write_of(path: &str, chunks: &[u8]) -> Command {
    Command::WriteCommit(WriteCommit {
        path: p(path),
        offset: 0,
        length: 10,
        chunks: chunks.iter().map(|i| h(*i)).collect(),
        expect: None,
        create_with_chunk_size: Some(MIN_CHUNK_SIZE),
    })
}

pub(super) fn placed(placed_at: u64, command: Command) -> Command {
    Command::Placed {
        placed_at,
        command: Box::new(command),
    }
}

fn patch(path: &str, offset: u64, chunk: u8) -> Command {
    Command::WriteCommit(WriteCommit {
        path: p(path),
        offset,
        length: 3,
        chunks: vec![h(chunk)],
        expect: None,
        create_with_chunk_size: None,
    })
}

fn guarded(checks: Vec<SlotCheck>, command: Command) -> Command {
    Command::Guarded {
        checks,
        command: Box::new(command),
    }
}

/// Two read-modify-writes of one chunk built from the same old chunk: the
/// first applies, the second is refused with `ChunkChanged` and changes
/// nothing (no version, no reference counts), and redone on the first's
/// chunk it applies. Unguarded, the second silently replaced the first.
#[test]
fn a_guarded_patch_of_a_changed_chunk_is_refused_until_redone() {
    let mut f = Fixture::new();
    let cs = u64::from(MIN_CHUNK_SIZE);
    f.write("/f", 0, cs, &[1]).unwrap();
    let read = vec![SlotCheck {
        index: 0,
        holds: Some(h(1)),
    }];
    f.ok(guarded(read.clone(), patch("/f", 0, 2)));
    let before = f.plan("/f", 0, cs);
    let refused = f.run(guarded(read, patch("/f", 100, 3)));
    assert_eq!(
        refused,
        Err(FsError::ChunkChanged {
            path: "/f".into(),
            index: 0
        })
    );
    assert_eq!(
        f.plan("/f", 0, cs),
        before,
        "a refused guard changed the file"
    );
    let redone = vec![SlotCheck {
        index: 0,
        holds: Some(h(2)),
    }];
    f.ok(guarded(redone, patch("/f", 100, 4)));
    assert_eq!(f.plan("/f", 0, cs).chunks, vec![Some(h(4))]);
}

/// A slot that was a hole (or a file that did not exist) is checked as
/// empty; only write commits and truncations can be guarded.
#[test]
fn guards_check_holes_and_refuse_other_commands() {
    let mut f = Fixture::new();
    let cs = u64::from(MIN_CHUNK_SIZE);
    let empty = vec![SlotCheck {
        index: 0,
        holds: None,
    }];
    let create = Command::WriteCommit(WriteCommit {
        path: p("/new"),
        offset: 0,
        length: 3,
        chunks: vec![h(5)],
        expect: None,
        create_with_chunk_size: Some(MIN_CHUNK_SIZE),
    });
    f.ok(guarded(empty.clone(), create.clone()));
    let again = f.run(guarded(empty.clone(), create));
    assert!(matches!(again, Err(FsError::ChunkChanged { index: 0, .. })));
    let cut = Command::Truncate {
        path: p("/new"),
        length: 1,
        cut_chunk: Some(h(6)),
        expect: None,
    };
    let held = vec![SlotCheck {
        index: 0,
        holds: Some(h(5)),
    }];
    f.ok(guarded(held, cut));
    assert_eq!(f.plan("/new", 0, cs).chunks, vec![Some(h(6))]);
    let mkdir = Command::CreateDir {
        path: p("/d"),
        parents: false,
        expect: None,
    };
    assert!(matches!(
        f.run(guarded(empty, mkdir)),
        Err(FsError::InvalidGuard { .. })
    ));
}

/// A release of a chunk whose count is already zero (a corrupt state) is
/// a storage-level fail-stop with a clear message, not a panic.
#[test]
fn a_reference_count_below_zero_is_a_fail_stop() {
    let mut f = Fixture::new();
    f.write("/a", 0, 10, &[1]).unwrap();
    crate::namespace::kv::KvStore::delete(&mut f.store, &keys::ref_count(&h(1))).unwrap();
    let proposal = Proposal {
        session: None,
        time_ms: 0,
        command: Command::Delete {
            path: p("/a"),
            recursive: false,
            expect: None,
        },
    };
    let failed = f.ns.apply(&mut f.store, f.index + 1, &proposal);
    match failed {
        Err(crate::namespace::kv::StoreError::Inconsistent(message)) => {
            assert!(message.contains("reference count"), "{message}")
        }
        other => panic!("expected a fail-stop, got {other:?}"),
    }
}
