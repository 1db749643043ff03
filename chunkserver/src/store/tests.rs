//! Unit tests of `ChunkStore` on a temporary directory.

use std::fs;

use tempfile::TempDir;

use super::*;

fn open(dir: &TempDir) -> ChunkStore {
    match ChunkStore::open(dir.path(), None) {
        Ok(store) => store,
        Err(e) => panic!("open failed: {e}"),
    }
}

fn put(store: &ChunkStore, bytes: &[u8]) -> ChunkHash {
    let hash = ChunkHash::of(bytes);
    assert!(store.put(hash, bytes).is_ok());
    hash
}

/// Flips one bit of the chunk's file on disk.
fn flip_byte(store: &ChunkStore, hash: ChunkHash, at: usize) {
    let path = store.chunk_path(hash);
    let mut bytes = fs::read(&path).unwrap();
    bytes[at] ^= 0x01;
    fs::write(&path, bytes).unwrap();
}

fn quarantined(dir: &TempDir) -> usize {
    fs::read_dir(dir.path().join("quarantine")).unwrap().count()
}

/// A stored chunk reads back byte for byte, and its file sits under the fan-out.
#[test]
fn put_then_get_round_trips() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let hash = put(&store, b"hello chunk");
    assert_eq!(store.get(hash).unwrap(), b"hello chunk");
    let hex = hash.to_string();
    assert!(dir
        .path()
        .join("chunks")
        .join(&hex[..2])
        .join(&hex[2..4])
        .join(&hex)
        .is_file());
    assert_eq!(store.inventory(), vec![hash]);
}

/// Storing the same chunk twice writes once and counts once.
#[test]
fn put_is_idempotent() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let hash = put(&store, b"twice");
    assert_eq!(
        store.put(hash, b"twice").unwrap(),
        PutOutcome::AlreadyPresent
    );
    let usage = store.usage().unwrap();
    assert_eq!((usage.chunks, usage.bytes), (1, 5));
    assert_eq!(store.take_added_since_last(), vec![hash]);
    // Stored again later: reported again, which renews a pending drop.
    store.put(hash, b"twice").unwrap();
    assert_eq!(store.take_added_since_last(), vec![hash]);
}

/// A body that does not hash to its name is refused and nothing is stored.
#[test]
fn hash_mismatch_is_rejected() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let named = ChunkHash::of(b"what was promised");
    match store.put(named, b"what was sent") {
        Err(StoreError::HashMismatch { expected, actual }) => {
            assert_eq!(expected, named);
            assert_eq!(actual, ChunkHash::of(b"what was sent"));
        }
        other => panic!("expected HashMismatch, got {other:?}"),
    }
    assert!(store.inventory().is_empty());
    assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
}

/// A large body (hashed while it is written) that does not match its name
/// leaves nothing behind: no chunk, no temp file, no reserved space; a
/// matching one is stored and reads back.
#[test]
fn large_bodies_are_verified_while_written() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let body: Vec<u8> = (0..3 << 20).map(|i| (i * 7 % 251) as u8).collect();
    let named = ChunkHash::of(b"something else");
    assert!(matches!(
        store.put(named, &body),
        Err(StoreError::HashMismatch { .. })
    ));
    assert!(store.inventory().is_empty());
    assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    assert_eq!(store.usage().unwrap().bytes, 0);
    let hash = ChunkHash::of(&body);
    assert_eq!(store.put(hash, &body).unwrap(), PutOutcome::Stored);
    assert_eq!(store.get(hash).unwrap(), body);
    assert_eq!(store.put(hash, &body).unwrap(), PutOutcome::AlreadyPresent);
}

/// Chunks larger than MAX_CHUNK_SIZE are refused before hashing.
#[test]
fn oversized_chunk_is_rejected() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let bytes = vec![0u8; MAX_CHUNK_BYTES as usize + 1];
    assert!(matches!(
        store.put(ChunkHash::of(&bytes), &bytes),
        Err(StoreError::TooLarge { .. })
    ));
}

/// A chunk that is not here is NotFound and is not reported lost.
#[test]
fn unknown_chunk_is_not_found_and_not_lost() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let hash = ChunkHash::of(b"never stored");
    assert!(matches!(store.get(hash), Err(StoreError::NotFound(h)) if h == hash));
    assert!(store.take_lost().is_empty());
}

/// Temporary files from torn writes are removed at open and never counted;
/// chunks stored before the restart are found again.
#[test]
fn open_removes_torn_temp_files_and_rescans_chunks() {
    let dir = TempDir::new().unwrap();
    let hash = {
        let store = open(&dir);
        put(&store, b"survives a restart")
    };
    let torn = dir
        .path()
        .join("tmp")
        .join(format!("{}.7.tmp", ChunkHash::of(b"x")));
    fs::write(&torn, b"half a chu").unwrap();
    let store = open(&dir);
    assert!(!torn.exists());
    assert_eq!(store.inventory(), vec![hash]);
    assert_eq!(store.usage().unwrap().bytes, 18);
}

/// Files in the chunk tree that are not chunks at their right place are ignored.
#[test]
fn open_ignores_stray_files() {
    let dir = TempDir::new().unwrap();
    drop(open(&dir));
    let misplaced = dir.path().join("chunks/00/00");
    fs::create_dir_all(&misplaced).unwrap();
    fs::write(misplaced.join(ChunkHash::of(b"y").to_string()), b"y").unwrap();
    fs::write(misplaced.join("notes.txt"), b"hi").unwrap();
    assert!(open(&dir).inventory().is_empty());
}

/// Two stores cannot serve the same directory at once.
#[test]
fn second_open_of_the_same_root_is_locked() {
    let dir = TempDir::new().unwrap();
    let _first = open(&dir);
    assert!(matches!(
        ChunkStore::open(dir.path(), None),
        Err(StoreError::Locked(_))
    ));
}

/// A store whose layout marker is not ours is refused, not reinterpreted.
#[test]
fn unknown_layout_version_is_refused() {
    let dir = TempDir::new().unwrap();
    drop(open(&dir));
    assert_eq!(
        fs::read_to_string(dir.path().join("FORMAT")).unwrap(),
        "toastyfs-chunks 1\n"
    );
    fs::write(dir.path().join("FORMAT"), "toastyfs-chunks 2\n").unwrap();
    assert!(matches!(
        ChunkStore::open(dir.path(), None),
        Err(StoreError::UnsupportedFormat { .. })
    ));
}

/// A flipped byte on disk is detected on read, reported lost, quarantined,
/// and the chunk is never served again.
#[test]
fn corrupt_chunk_is_detected_reported_and_quarantined() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let hash = put(&store, b"precious bytes");
    flip_byte(&store, hash, 3);
    assert!(matches!(store.get(hash), Err(StoreError::Corrupt(h)) if h == hash));
    assert_eq!(store.take_lost(), vec![hash]);
    assert!(store.take_lost().is_empty());
    assert!(!store.chunk_path(hash).exists());
    assert_eq!(quarantined(&dir), 1);
    assert!(matches!(store.get(hash), Err(StoreError::NotFound(_))));
    assert_eq!(store.contains(&[hash]), vec![false]);
    assert_eq!(store.usage().unwrap().bytes, 0);
}

/// A chunk whose file vanished is reported lost; storing it again heals it.
#[test]
fn missing_file_is_reported_lost_until_stored_again() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let hash = put(&store, b"gone");
    let lost_again = put(&store, b"gone too");
    fs::remove_file(store.chunk_path(hash)).unwrap();
    fs::remove_file(store.chunk_path(lost_again)).unwrap();
    assert!(matches!(store.get(hash), Err(StoreError::NotFound(_))));
    assert!(matches!(
        store.get(lost_again),
        Err(StoreError::NotFound(_))
    ));
    put(&store, b"gone");
    assert_eq!(store.take_lost(), vec![lost_again]);
    assert_eq!(store.get(hash).unwrap(), b"gone");
}

/// Range reads slice the verified chunk; an offset past the end is an error.
#[test]
fn range_reads() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let hash = put(&store, b"0123456789");
    assert_eq!(store.get_range(hash, 2, 3).unwrap(), b"234");
    assert_eq!(store.get_range(hash, 8, 100).unwrap(), b"89");
    assert_eq!(store.get_range(hash, 10, 1).unwrap(), b"");
    assert!(matches!(
        store.get_range(hash, 11, 1),
        Err(StoreError::RangeNotSatisfiable {
            offset: 11,
            size_bytes: 10
        })
    ));
}

/// Patching inside, at the end and past the end (zero fill) makes new
/// chunks and keeps the source.
#[test]
fn patch_makes_a_new_chunk_and_keeps_the_old() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let source = put(&store, b"abcdef");
    let cases: [(u64, &[u8], &[u8]); 3] = [
        (2, b"XY", b"abXYef"),
        (6, b"gh", b"abcdefgh"),
        (8, b"Z", b"abcdef\0\0Z"),
    ];
    for (offset, bytes, expected) in cases {
        let new = store.patch(source, offset, bytes).unwrap();
        assert_eq!(new, ChunkHash::of(expected));
        assert_eq!(store.get(new).unwrap(), expected);
    }
    assert_eq!(store.get(source).unwrap(), b"abcdef");
    assert_eq!(store.inventory().len(), 4);
}

/// A patch of a missing chunk, or one that would outgrow a chunk, fails.
#[test]
fn patch_errors() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let source = put(&store, b"abc");
    assert!(matches!(
        store.patch(ChunkHash::of(b"nope"), 0, b"x"),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.patch(source, MAX_CHUNK_BYTES, b"x"),
        Err(StoreError::TooLarge { .. })
    ));
}

/// The configured capacity bounds the stored bytes; free space reflects it.
#[test]
fn capacity_is_enforced() {
    let dir = TempDir::new().unwrap();
    let store = ChunkStore::open(dir.path(), Some(10)).unwrap();
    put(&store, b"123456");
    assert_eq!(store.usage().unwrap().free_bytes, 4);
    let big = b"12345";
    assert!(matches!(
        store.put(ChunkHash::of(big), big),
        Err(StoreError::CapacityExceeded {
            needed_bytes: 5,
            free_bytes: 4
        })
    ));
    put(&store, b"1234");
    assert_eq!(store.usage().unwrap().free_bytes, 0);
}

/// contains, delete, and the incremental added report.
#[test]
fn contains_delete_and_added_since_last() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let a = put(&store, b"a");
    let b = put(&store, b"b");
    let mut both = vec![a, b];
    both.sort();
    assert_eq!(store.take_added_since_last(), both);
    assert!(store.take_added_since_last().is_empty());
    let c = put(&store, b"c");
    assert!(store.delete(a).unwrap());
    assert!(!store.delete(a).unwrap());
    assert_eq!(store.contains(&[a, b, c]), vec![false, true, true]);
    assert_eq!(store.take_added_since_last(), vec![c]);
    assert!(!store.chunk_path(a).exists());
    assert_eq!(store.usage().unwrap().chunks, 2);
}

/// Concurrent puts of the same chunk store it once.
#[test]
fn concurrent_puts_of_one_chunk_store_it_once() {
    let dir = TempDir::new().unwrap();
    let store = Arc::new(open(&dir));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || put(&store, b"racy"))
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let usage = store.usage().unwrap();
    assert_eq!((usage.chunks, usage.bytes), (1, 4));
    assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
}

/// An upload of a chunk whose stored copy went bad is not acknowledged as
/// "already present" on the bad copy: the verified bytes just received
/// replace it, and the chunk reads back intact. Before, the upload answered
/// AlreadyPresent and the corrupt copy counted as stored.
#[test]
fn an_upload_over_a_corrupt_copy_replaces_it() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let bytes = b"precious bytes".repeat(100);
    let hash = put(&store, &bytes);
    flip_byte(&store, hash, 7);
    assert_eq!(store.put(hash, &bytes).unwrap(), PutOutcome::Stored);
    assert_eq!(store.get(hash).unwrap(), bytes);
    assert_eq!(quarantined(&dir), 0, "the replaced copy was never served");
}

/// The same for a copy whose file vanished behind the store's back.
#[test]
fn an_upload_over_a_missing_copy_stores_it_again() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let hash = put(&store, b"vanishing");
    let _ = &dir;
    fs::remove_file(store.chunk_path(hash)).unwrap();
    assert_eq!(store.put(hash, b"vanishing").unwrap(), PutOutcome::Stored);
    assert_eq!(store.get(hash).unwrap(), b"vanishing");
}

/// An intact copy is acknowledged as present, without rewriting it.
#[test]
fn an_upload_over_an_intact_copy_is_already_present() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let hash = put(&store, b"steady");
    assert_eq!(
        store.put(hash, b"steady").unwrap(),
        PutOutcome::AlreadyPresent
    );
}

/// A directory fsync that fails after a new copy was renamed into place
/// takes the copy out of the inventory (reported lost, never served) and
/// fails the upload; the retry stores a durable copy instead of answering
/// "already present".
#[test]
fn a_failed_directory_fsync_takes_the_copy_out_of_the_inventory() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let bytes = b"durable or nothing";
    let hash = ChunkHash::of(bytes);
    fs::create_dir_all(store.layout.fanout_dir(hash)).unwrap();
    crate::sys::fail_dir_syncs(true);
    let failed = store.put(hash, bytes);
    crate::sys::fail_dir_syncs(false);
    assert!(failed.is_err(), "acknowledged without a synced directory");
    assert_eq!(store.contains(&[hash]), vec![false]);
    assert!(store.take_lost().contains(&hash));
    assert!(store.get(hash).is_err());
    assert!(matches!(store.put(hash, bytes), Ok(PutOutcome::Stored)));
    assert_eq!(store.get(hash).unwrap(), bytes.to_vec());
}

/// A streamed upload (`store/upload.rs`): written to its temporary file,
/// then installed; over a corrupt copy it replaces it, over an intact one
/// it is acknowledged as present; either way its temporary file is gone.
#[test]
fn a_streamed_upload_installs_replaces_and_confirms() {
    use std::io::Write;
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let bytes = b"streamed bytes".repeat(1000);
    let hash = ChunkHash::of(&bytes);
    let stream_in = |store: &ChunkStore| {
        let (mut file, temp) = store.begin_upload(hash, Some(bytes.len() as u64)).unwrap();
        file.write_all(&bytes).unwrap();
        file.sync_all().unwrap();
        let outcome = store
            .finish_upload(hash, &temp, bytes.len() as u64, ChunkHash::of(&bytes))
            .unwrap();
        assert!(!temp.exists(), "the temporary file was left behind");
        outcome
    };
    assert_eq!(stream_in(&store), PutOutcome::Stored);
    assert_eq!(store.get(hash).unwrap(), bytes);
    assert_eq!(stream_in(&store), PutOutcome::AlreadyPresent);
    flip_byte(&store, hash, 3);
    assert_eq!(stream_in(&store), PutOutcome::Stored);
    assert_eq!(store.get(hash).unwrap(), bytes);
    let (_, temp) = store.begin_upload(hash, None).unwrap();
    let refused = store.finish_upload(hash, &temp, 3, ChunkHash::of(b"abc"));
    assert!(matches!(refused, Err(StoreError::HashMismatch { .. })));
    assert!(!temp.exists());
}
