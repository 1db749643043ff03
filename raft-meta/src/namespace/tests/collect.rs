//! Garbage collection decided in the log: condemnation on the last
//! release, `Condemn` of unclaimed uploads, pardons, forgetting, the lift
//! fence, and the commit rule that refuses a chunk collected after its
//! placement.

use toastyfs_proto::namespace::*;

use super::chunks::{placed, write_of};
use super::{h, Fixture};
use crate::namespace::keys;
use crate::namespace::kv::KvRead;
use crate::namespace::NamespaceConfig;

fn condemned(f: &Fixture, n: u8) -> bool {
    f.store.get(&keys::garbage(&h(n))).unwrap().is_some()
}

fn collected(n: u8) -> CommandResult {
    Err(FsError::ChunkCollected { hash: h(n) })
}

/// The dedup race of a "present" answer: a client is told chunk 1 is
/// present (a file references it), the file is deleted before the commit,
/// so the chunk is condemned; the commit must be refused, also once the
/// condemnation is forgotten, and accepted after a new placement.
#[test]
fn a_chunk_released_after_its_placement_is_refused() {
    let mut f = Fixture::new();
    f.ok(write_of("/a", &[1]));
    let placed_at = f.index;
    f.ok(Command::Delete {
        path: super::p("/a"),
        recursive: false,
        expect: None,
    });
    assert!(condemned(&f, 1));
    assert_eq!(f.run(placed(placed_at, write_of("/b", &[1]))), collected(1));
    f.ok(Command::ForgetGarbage { hashes: vec![h(1)] });
    assert!(!condemned(&f, 1));
    assert_eq!(f.run(placed(placed_at, write_of("/b", &[1]))), collected(1));
    let again = f.index;
    f.ok(placed(again, write_of("/b", &[1])));
}

/// A pardon lifts a condemnation for writes placed from then on; a write
/// placed before it is still refused (copies from before the pardon may be
/// deleted by orders already sent).
#[test]
fn a_pardon_admits_only_writes_placed_after_it() {
    let mut f = Fixture::new();
    f.ok(write_of("/a", &[1]));
    f.ok(write_of("/a", &[2]));
    let before = f.index;
    assert!(condemned(&f, 1));
    assert_eq!(
        f.ok(Command::Pardon {
            hashes: vec![h(1), h(2), h(3)]
        }),
        Outcome::Pardoned { count: 1 }
    );
    assert_eq!(f.run(placed(before, write_of("/b", &[1]))), collected(1));
    let after = f.index;
    f.ok(placed(after, write_of("/b", &[1])));
    assert!(!condemned(&f, 1));
}

/// `Condemn` takes only chunks no file references and not condemned yet;
/// a write placed before the condemnation is refused, even unwrapped.
#[test]
fn condemn_takes_only_unclaimed_chunks() {
    let mut f = Fixture::new();
    f.ok(write_of("/a", &[1]));
    let placed_at = f.index;
    let out = f.ok(Command::Condemn {
        hashes: vec![h(1), h(5)],
    });
    assert_eq!(out, Outcome::Condemned { count: 1 });
    assert!(!condemned(&f, 1) && condemned(&f, 5));
    assert_eq!(
        f.ok(Command::Condemn { hashes: vec![h(5)] }),
        Outcome::Condemned { count: 0 }
    );
    assert_eq!(f.run(placed(placed_at, write_of("/b", &[5]))), collected(5));
    assert_eq!(f.run(write_of("/b", &[5])), collected(5));
    // A chunk a file references is never refused.
    f.ok(placed(0, write_of("/c", &[1])));
}

/// A truncation's cut chunk follows the same rule.
#[test]
fn a_condemned_cut_chunk_is_refused() {
    let mut f = Fixture::new();
    let cs = u64::from(MIN_CHUNK_SIZE);
    f.write("/t", 0, cs, &[1]).unwrap();
    f.ok(Command::Condemn { hashes: vec![h(9)] });
    let cut = |placed_at| {
        placed(
            placed_at,
            Command::Truncate {
                path: super::p("/t"),
                length: 3,
                cut_chunk: Some(h(9)),
                expect: None,
            },
        )
    };
    assert_eq!(f.run(cut(f.index)), collected(9));
    f.ok(Command::Pardon { hashes: vec![h(9)] });
    f.ok(cut(f.index));
}

/// Lift records expire after `lift_ttl_entries`, raising the fence: a
/// write placed before an expired lift is refused for every unreferenced
/// chunk; one placed after the fence is not.
#[test]
fn expired_lifts_raise_the_fence() {
    let mut f = Fixture::with_config(NamespaceConfig {
        lift_ttl_entries: 3,
        ..NamespaceConfig::default()
    });
    f.ok(Command::Condemn {
        hashes: vec![h(1), h(2)],
    });
    let early = f.index;
    f.ok(Command::ForgetGarbage {
        hashes: vec![h(1), h(2)],
    });
    let lifted_at = f.index;
    for _ in 0..5 {
        f.ok(Command::Reclaim);
    }
    assert!(f.store.get(&keys::lifted(&h(1))).unwrap().is_none());
    assert_eq!(f.run(placed(early, write_of("/a", &[7]))), collected(7));
    f.ok(placed(lifted_at, write_of("/a", &[7])));
}

/// Only writes and truncations carry a placement.
#[test]
fn only_writes_carry_a_placement() {
    let mut f = Fixture::new();
    let refused = f.run(placed(0, Command::Reclaim));
    assert!(matches!(refused, Err(FsError::InvalidGuard { .. })));
    let guarded = Command::Guarded {
        checks: vec![],
        command: Box::new(write_of("/g", &[4])),
    };
    f.ok(placed(f.index, guarded));
}
