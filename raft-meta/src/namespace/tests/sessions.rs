//! Client sessions and log order: a repeated request is applied once,
//! an unknown session is expired, an old index is a storage error.

use toastyfs_proto::namespace::*;
use toastyfs_proto::{ClientId, Seq, SessionTag, Version};

use super::{mkdir, Fixture};
use crate::namespace::header;

/// A repeated (client, seq) returns the first result and changes nothing.
#[test]
fn sessions_apply_at_most_once() {
    let mut f = Fixture::new();
    let tag = |seq| {
        Some(SessionTag {
            client: ClientId(7),
            seq: Seq(seq),
        })
    };
    let send = |f: &mut Fixture, seq, command| {
        f.index += 1;
        f.ns.apply(
            &mut f.store,
            f.index,
            &Proposal {
                session: tag(seq),
                time_ms: 0,
                command,
            },
        )
        .unwrap()
    };
    let first = send(&mut f, 1, mkdir("/s"));
    assert_eq!(send(&mut f, 1, mkdir("/s")), first);
    assert_eq!(header(&f.store).unwrap().version, Version(1));
    assert!(send(&mut f, 2, mkdir("/s")).is_err());
    assert!(matches!(
        send(&mut f, 1, mkdir("/s")),
        Err(FsError::StaleSequence { .. })
    ));
    let other = Proposal {
        session: Some(SessionTag {
            client: ClientId(8),
            seq: Seq(5),
        }),
        time_ms: 0,
        command: mkdir("/t"),
    };
    f.index += 1;
    assert_eq!(
        f.ns.apply(&mut f.store, f.index, &other).unwrap(),
        Err(FsError::SessionExpired {
            client: ClientId(8)
        })
    );
}

/// Applying an index at or below the applied one is a storage-level error.
#[test]
fn out_of_order_index_is_refused() {
    let mut f = Fixture::new();
    f.ok(mkdir("/a"));
    let again = f.ns.apply(
        &mut f.store,
        1,
        &Proposal {
            session: None,
            time_ms: 0,
            command: mkdir("/b"),
        },
    );
    assert!(again.is_err());
}
