//! The tree: versions stamped on every change, `mkdir -p`, rename rules,
//! paginated lists and the bounded reclaim of a recursive delete.

use toastyfs_proto::namespace::*;
use toastyfs_proto::Version;

use super::{h, mkdir, mkfile, p, Fixture};
use crate::namespace::{Namespace, NamespaceConfig};

/// Every change bumps the cluster-wide version and stamps it on the changed
/// entry and its directory.
#[test]
fn versions_are_cluster_wide_and_stamped() {
    let mut f = Fixture::new();
    assert_eq!(
        f.ok(mkdir("/a")),
        Outcome::Created {
            version: Version(1)
        }
    );
    assert_eq!(
        f.ok(mkfile("/a/f")),
        Outcome::Created {
            version: Version(2)
        }
    );
    let QueryReply::Stat(dir) = f.query(Query::Stat { path: p("/a") }).unwrap() else {
        panic!()
    };
    assert_eq!(dir.version, Version(2));
    let stale = f.run(Command::Delete {
        path: p("/a/f"),
        recursive: false,
        expect: Some(Version(1)),
    });
    assert_eq!(
        stale,
        Err(FsError::VersionMismatch {
            path: "/a/f".into(),
            expected: Version(1),
            actual: Version(2)
        })
    );
    assert!(f
        .run(Command::Delete {
            path: p("/a/f"),
            recursive: false,
            expect: Some(Version(2))
        })
        .is_ok());
}

/// mkdir -p creates missing parents and accepts an existing directory.
#[test]
fn mkdir_parents() {
    let mut f = Fixture::new();
    assert_eq!(
        f.run(mkdir("/x/y")),
        Err(FsError::NotFound { path: "/x".into() })
    );
    let v = f.ok(Command::CreateDir {
        path: p("/x/y/z"),
        parents: true,
        expect: None,
    });
    assert_eq!(
        v,
        Outcome::Created {
            version: Version(1)
        }
    );
    let again = f.ok(Command::CreateDir {
        path: p("/x/y/z"),
        parents: true,
        expect: None,
    });
    assert_eq!(
        again,
        Outcome::Created {
            version: Version(1)
        }
    );
    assert_eq!(
        f.run(mkdir("/x")),
        Err(FsError::AlreadyExists { path: "/x".into() })
    );
}

/// Rename moves whole subtrees atomically, never into themselves, and
/// replaces only what the rules allow.
#[test]
fn rename_rules() {
    let mut f = Fixture::new();
    f.ok(Command::CreateDir {
        path: p("/a/b/c"),
        parents: true,
        expect: None,
    });
    f.ok(mkfile("/a/b/c/f"));
    let into_self = f.run(Command::Rename {
        from: p("/a"),
        to: p("/a/b/x"),
        replace: false,
        expect: None,
    });
    assert!(matches!(
        into_self,
        Err(FsError::RenameIntoOwnSubtree { .. })
    ));
    f.ok(Command::Rename {
        from: p("/a/b"),
        to: p("/moved"),
        replace: false,
        expect: None,
    });
    assert!(f
        .query(Query::Stat {
            path: p("/moved/c/f")
        })
        .is_ok());
    assert!(f.query(Query::Stat { path: p("/a/b") }).is_err());
    f.ok(mkfile("/g"));
    let exists = f.run(Command::Rename {
        from: p("/g"),
        to: p("/moved/c/f"),
        replace: false,
        expect: None,
    });
    assert_eq!(
        exists,
        Err(FsError::RenameTargetExists {
            to: "/moved/c/f".into()
        })
    );
    let kinds = f.run(Command::Rename {
        from: p("/g"),
        to: p("/moved"),
        replace: true,
        expect: None,
    });
    assert!(matches!(kinds, Err(FsError::RenameKindMismatch { .. })));
    f.ok(Command::Rename {
        from: p("/g"),
        to: p("/moved/c/f"),
        replace: true,
        expect: None,
    });
    assert!(f.query(Query::Stat { path: p("/g") }).is_err());
}

/// Lists are paginated in byte order of names with a cursor.
#[test]
fn list_pages_with_cursor() {
    let mut f = Fixture::new();
    for name in ["b", "a", "c", "aa"] {
        f.ok(mkfile(&format!("/{name}")));
    }
    let page = |after: Option<&str>| match f.query(Query::List {
        path: p("/"),
        after: after.map(Into::into),
        limit: 2,
    }) {
        Ok(QueryReply::List(l)) => l,
        other => panic!("{other:?}"),
    };
    let first = page(None);
    assert_eq!(
        first
            .entries
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>(),
        ["a", "aa"]
    );
    let second = page(first.next.as_deref());
    assert_eq!(
        second
            .entries
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>(),
        ["b", "c"]
    );
    assert_eq!(second.next, None);
    let bad = f.query(Query::List {
        path: p("/"),
        after: None,
        limit: 0,
    });
    assert_eq!(bad, Err(FsError::InvalidPageSize { limit: 0 }));
}

/// A recursive delete detaches at once and frees in bounded reclaim steps.
#[test]
fn recursive_delete_is_reclaimed_in_steps() {
    let mut f = Fixture {
        ns: Namespace::new(NamespaceConfig {
            reclaim_budget: 2,
            ..NamespaceConfig::default()
        }),
        ..Fixture::new()
    };
    let cs = u64::from(MIN_CHUNK_SIZE);
    for i in 0..5u8 {
        f.write(&format!("/d/{i}"), 0, cs, &[i])
            .unwrap_or_else(|_| {
                f.ok(mkdir("/d"));
                f.write(&format!("/d/{i}"), 0, cs, &[i]).unwrap()
            });
    }
    assert_eq!(
        f.run(Command::Delete {
            path: p("/d"),
            recursive: false,
            expect: None
        }),
        Err(FsError::NotEmpty { path: "/d".into() })
    );
    f.ok(Command::Delete {
        path: p("/d"),
        recursive: true,
        expect: None,
    });
    assert!(f.query(Query::Stat { path: p("/d") }).is_err());
    let mut freed = Vec::new();
    for _ in 0..20 {
        let Outcome::Reclaimed {
            freed: step,
            pending,
        } = f.ok(Command::Reclaim)
        else {
            panic!()
        };
        assert!(step.len() <= 2);
        freed.extend(step);
        if !pending {
            break;
        }
    }
    freed.sort();
    assert_eq!(freed, (0..5).map(h).collect::<Vec<_>>());
}
