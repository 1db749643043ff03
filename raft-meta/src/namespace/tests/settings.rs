//! Cluster settings kept in the replicated state: the replication factor
//! and the copies a write waits for.

use toastyfs_proto::namespace::*;
use toastyfs_proto::Version;

use super::{mkdir, Fixture};

fn settings(f: &Fixture) -> ClusterSettings {
    match f.query(Query::Settings).unwrap() {
        QueryReply::Settings(s) => s,
        other => panic!("not settings: {other:?}"),
    }
}

/// The replication factor is a cluster setting: defaults to 3, bounded,
/// versioned like everything else.
#[test]
fn replication_factor_is_a_versioned_cluster_setting() {
    let mut f = Fixture::new();
    assert_eq!(settings(&f).replication_factor, DEFAULT_REPLICATION_FACTOR);
    for factor in [0, 17] {
        let refused = f.run(Command::SetReplicationFactor {
            factor,
            expect: None,
        });
        assert_eq!(refused, Err(FsError::InvalidReplicationFactor { factor }));
    }
    f.ok(mkdir("/a"));
    let Outcome::SettingsChanged { version } = f.ok(Command::SetReplicationFactor {
        factor: 2,
        expect: Some(Version(0)),
    }) else {
        panic!("expected SettingsChanged");
    };
    assert_eq!(version, Version(2));
    assert_eq!(
        settings(&f),
        ClusterSettings {
            replication_factor: 2,
            min_copies: DEFAULT_MIN_COPIES,
            version,
            inline_max_bytes: DEFAULT_INLINE_MAX_BYTES,
        }
    );
    let stale = f.run(Command::SetReplicationFactor {
        factor: 5,
        expect: Some(Version(0)),
    });
    assert!(matches!(stale, Err(FsError::VersionMismatch { .. })));
    assert_eq!(settings(&f).replication_factor, 2);
}

/// `min_copies` is a versioned setting too: defaults to 2, bounded, and a
/// write waits for no more copies than the replication factor keeps.
#[test]
fn min_copies_is_a_versioned_cluster_setting() {
    let mut f = Fixture::new();
    assert_eq!(settings(&f).min_copies, DEFAULT_MIN_COPIES);
    for copies in [0, 17] {
        let refused = f.run(Command::SetMinCopies {
            copies,
            expect: None,
        });
        assert_eq!(refused, Err(FsError::InvalidMinCopies { copies }));
    }
    f.ok(Command::SetMinCopies {
        copies: 3,
        expect: Some(Version(0)),
    });
    f.ok(Command::SetReplicationFactor {
        factor: 2,
        expect: None,
    });
    let now = settings(&f);
    assert_eq!((now.min_copies, now.replication_factor), (3, 2));
    assert_eq!(now.copies_to_acknowledge(), 2);
}
