//! A sample of every stored record of the namespace (kinds 16 to 27),
//! shared by the tamper-evidence test here and the golden fixtures in
//! `store/formats.rs`, so both cover the same values.

use toastyfs_proto::namespace::{ClusterSettings, EntryKind, FsError, Outcome};
use toastyfs_proto::record::Sample;
use toastyfs_proto::{ChunkHash, InodeId, Seq, Version};

use crate::namespace::stored::{
    ChunkRef, CollectFence, GarbageSince, InlineBytes, Lifted, RefCount, SessionRecord,
    StateHeader, StoredEntry, StoredKey, StoredSettings, TrashEntry,
};

/// One sample of every stored record type, named by its golden fixture.
pub(crate) fn stored_record_samples() -> Vec<Sample> {
    vec![
        Sample::new(
            "state-header",
            StateHeader {
                applied_index: 9,
                digest: [7; 32],
                version: Version(12),
                next_inode: InodeId(40),
                session_count: 3,
                session_floor: 5,
            },
        ),
        Sample::new(
            "stored-entry",
            StoredEntry {
                inode: InodeId(5),
                kind: EntryKind::File,
                version: Version(3),
                mtime_ms: 1_700_000_000_000,
                chunk_size: 4096,
                length: 10,
            },
        ),
        Sample::new("chunk-ref", ChunkRef(ChunkHash::of(b"a"))),
        Sample::new("ref-count", RefCount(3)),
        Sample::new("garbage-since", GarbageSince(11)),
        Sample::new("lifted", Lifted(13)),
        Sample::new("collect-fence", CollectFence(17)),
        Sample::new(
            "trash-entry",
            TrashEntry {
                kind: EntryKind::Dir,
            },
        ),
        Sample::new(
            "session-record-ok",
            SessionRecord {
                last_seq: Seq(4),
                last_index: 8,
                result: Ok(Outcome::Created {
                    version: Version(1),
                }),
            },
        ),
        Sample::new(
            "session-record-err",
            SessionRecord {
                last_seq: Seq(4),
                last_index: 8,
                result: Err(FsError::NotFound { path: "/q".into() }),
            },
        ),
        Sample::new(
            "stored-settings",
            StoredSettings(ClusterSettings {
                replication_factor: 2,
                min_copies: 3,
                version: Version(6),
                inline_max_bytes: 1024,
            }),
        ),
        Sample::new("inline-bytes", InlineBytes(b"small file".to_vec())),
        Sample::new(
            "stored-key",
            StoredKey {
                name: "backups".into(),
                access: toastyfs_proto::client_key::Access::ReadOnly,
                secret_hash: [4; 32],
                created_ms: 1_700_000_000_000,
                revoked_ms: Some(1_700_000_100_000),
            },
        ),
    ]
}

/// Every stored record type rejects every truncation and bit flip.
#[test]
fn stored_records_are_tamper_evident() {
    for sample in stored_record_samples() {
        sample.assert_tamper_evident();
    }
}

/// Settings stored by older formats (the bytes kept in
/// `tests/fixtures/upgrades/`) decode through the upgrade: version 1
/// (before `min_copies`) gets the default copies, versions 1 and 2 (before
/// `inline_max_bytes`) the default inline limit.
#[test]
fn older_settings_upgrade_with_the_defaults_of_what_they_lack() {
    use toastyfs_proto::namespace::{DEFAULT_INLINE_MAX_BYTES, DEFAULT_MIN_COPIES};
    let fixtures = [
        (
            include_str!("../../../tests/fixtures/upgrades/stored-settings-v1.hex"),
            DEFAULT_MIN_COPIES,
        ),
        (
            include_str!("../../../tests/fixtures/upgrades/stored-settings-v2.hex"),
            3,
        ),
    ];
    for (text, min_copies) in fixtures {
        let bytes = hex::decode(text.trim()).expect("fixture is hex");
        let settings: StoredSettings = toastyfs_proto::record::decode(&bytes).expect("upgrades");
        let expected = ClusterSettings {
            replication_factor: 2,
            min_copies,
            version: Version(6),
            inline_max_bytes: DEFAULT_INLINE_MAX_BYTES,
        };
        assert_eq!(settings, StoredSettings(expected));
    }
}
