//! Small files kept inline: written whole in one command, read back from
//! the entry, moved to chunks by a covering write, cut and grown in place
//! within the limit, dropped with the file, bounded by the cluster's limit.

use toastyfs_proto::namespace::*;
use toastyfs_proto::Version;

use super::{h, mkdir, p, Fixture};

fn inline(path: &str, content: &[u8], expect: Option<Version>) -> Command {
    Command::WriteInline(WriteInline {
        path: p(path),
        content: content.to_vec(),
        expect,
        create_with_chunk_size: Some(MIN_CHUNK_SIZE),
    })
}

fn content(f: &Fixture, path: &str) -> Option<Vec<u8>> {
    let plan = Query::ReadPlan {
        path: p(path),
        offset: 0,
        length: u64::MAX,
    };
    match f.query(plan).unwrap() {
        QueryReply::Inline(inline) => Some(inline.content),
        QueryReply::ReadPlan(_) => None,
        other => panic!("not a read answer: {other:?}"),
    }
}

fn truncate(path: &str, length: u64) -> Command {
    Command::Truncate {
        path: p(path),
        length,
        cut_chunk: None,
        expect: None,
    }
}

/// One command creates a small file with its content; the read plan
/// answers the content itself; a second write replaces it whole, and
/// `expect` makes it conditional like any write.
#[test]
fn a_small_file_is_written_and_read_in_one_command_each() {
    let mut f = Fixture::new();
    f.ok(mkdir("/d"));
    let Outcome::Written {
        version,
        file_length,
        bytes_written,
        freed,
    } = f.ok(inline("/d/a", b"hello", Some(Version(0))))
    else {
        panic!("expected Written");
    };
    assert_eq!((file_length, bytes_written, freed), (5, 5, vec![]));
    assert_eq!(content(&f, "/d/a").as_deref(), Some(&b"hello"[..]));
    let exclusive = f.run(inline("/d/a", b"again", Some(Version(0))));
    assert!(matches!(exclusive, Err(FsError::VersionMismatch { .. })));
    f.ok(inline("/d/a", b"hi", Some(version)));
    assert_eq!(content(&f, "/d/a").as_deref(), Some(&b"hi"[..]));
    let QueryReply::Stat(info) = f.query(Query::Stat { path: p("/d/a") }).unwrap() else {
        panic!("not a stat");
    };
    assert_eq!((info.length, info.chunk_size), (2, MIN_CHUNK_SIZE));
}

/// Replacing a chunked file with inline content releases its chunks; a
/// write commit covering the whole inline content moves it to chunks; a
/// partial one is refused with `InlineContent`.
#[test]
fn chunks_and_inline_content_replace_each_other() {
    let mut f = Fixture::new();
    f.write("/f", 0, 100, &[1]).unwrap();
    let Outcome::Written { freed, .. } = f.ok(inline("/f", b"small", None)) else {
        panic!("expected Written");
    };
    assert_eq!(freed, vec![h(1)]);
    assert_eq!(
        f.write("/f", 2, 1, &[2]),
        Err(FsError::InlineContent { path: "/f".into() })
    );
    assert_eq!(
        f.write("/f", 0, 4, &[2]),
        Err(FsError::InlineContent { path: "/f".into() })
    );
    f.write("/f", 0, 5, &[3]).unwrap();
    assert_eq!(content(&f, "/f"), None);
    assert_eq!(f.plan("/f", 0, 5).chunks, vec![Some(h(3))]);
}

/// A truncation of an inline file cuts or zero-extends it in place up to
/// the limit and is refused beyond it; to zero it leaves an empty file.
#[test]
fn truncation_stays_inline_within_the_limit() {
    let mut f = Fixture::new();
    f.ok(inline("/t", b"abcdef", None));
    f.ok(truncate("/t", 3));
    assert_eq!(content(&f, "/t").as_deref(), Some(&b"abc"[..]));
    f.ok(truncate("/t", 5));
    assert_eq!(content(&f, "/t").as_deref(), Some(&b"abc\0\0"[..]));
    let beyond = f.run(truncate("/t", u64::from(DEFAULT_INLINE_MAX_BYTES) + 1));
    assert_eq!(beyond, Err(FsError::InlineContent { path: "/t".into() }));
    let cut = f.run(Command::Truncate {
        path: p("/t"),
        length: 1,
        cut_chunk: Some(h(1)),
        expect: None,
    });
    assert!(matches!(cut, Err(FsError::UnexpectedCutChunk { .. })));
    f.ok(truncate("/t", 0));
    assert_eq!(content(&f, "/t"), None);
    assert_eq!(f.plan("/t", 0, 10).length, 0);
}

/// The limit is a versioned cluster setting (0 turns inline files off,
/// at most one smallest chunk); content above it is refused, and files
/// already inline stay readable when it is lowered.
#[test]
fn the_inline_limit_is_a_cluster_setting() {
    let mut f = Fixture::new();
    f.ok(inline("/s", &[7; 100], None));
    let over = f.run(Command::SetInlineMax {
        bytes: MAX_INLINE_BYTES + 1,
        expect: None,
    });
    assert_eq!(
        over,
        Err(FsError::InvalidInlineMax {
            bytes: MAX_INLINE_BYTES + 1
        })
    );
    f.ok(Command::SetInlineMax {
        bytes: 10,
        expect: None,
    });
    let refused = f.run(inline("/s2", &[1; 11], None));
    assert_eq!(
        refused,
        Err(FsError::InlineTooLarge {
            length: 11,
            max: 10
        })
    );
    assert_eq!(content(&f, "/s"), Some(vec![7; 100]));
    f.ok(Command::SetInlineMax {
        bytes: 0,
        expect: None,
    });
    let off = f.run(inline("/s3", b"x", None));
    assert_eq!(off, Err(FsError::InlineTooLarge { length: 1, max: 0 }));
    f.ok(inline("/s3", b"", None));
}

/// Deleting an inline file, alone or in a recursive delete, drops its
/// content (`check_invariants` after every step would catch a leftover).
#[test]
fn deletes_drop_inline_content() {
    let mut f = Fixture::new();
    f.ok(mkdir("/d"));
    f.ok(inline("/d/a", b"one", None));
    f.ok(inline("/d/b", b"two", None));
    f.ok(Command::Delete {
        path: p("/d/a"),
        recursive: false,
        expect: None,
    });
    f.ok(Command::Delete {
        path: p("/d"),
        recursive: true,
        expect: None,
    });
    f.ok(Command::Reclaim);
    assert!(f.store.pairs().all(|(k, _)| k.first() != Some(&b'I')));
}
