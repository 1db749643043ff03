//! Golden fixtures of the `Proposal` record, one per `Command` variant, in
//! `tests/fixtures/proposal-<variant>.hex`: the encoding of the sample must
//! equal the fixture and the fixture must decode back to the sample, so a
//! format change cannot slip in unnoticed (old logs would stop decoding).
//! The same samples feed the tamper-evidence check.
//!
//! A new variant does not compile until [`fixture_name`] names it, and the
//! tests fail until [`commands`] holds a sample of it and its fixture is
//! written: run with `TOASTYFS_BLESS=1` to (re)write the fixtures, then
//! review and commit the diff.

use std::path::{Path, PathBuf};

use serde::de::{self, Deserialize, Deserializer, Visitor};
use toastyfs_proto::namespace::*;
use toastyfs_proto::record::Sample;

#[path = "support/golden.rs"]
mod golden;
use golden::check_or_bless;
use toastyfs_proto::client_key::{Access, KeyId};
use toastyfs_proto::{ChunkHash, ClientId, FsPath, Seq, SessionTag, Version};

/// The fixture of each command's proposal. No wildcard arm: a new variant
/// must be named here before this compiles.
fn fixture_name(command: &Command) -> &'static str {
    match command {
        Command::CreateDir { .. } => "proposal-create-dir",
        Command::CreateFile { .. } => "proposal-create-file",
        Command::Delete { .. } => "proposal-delete",
        Command::WriteCommit(_) => "proposal-write-commit",
        Command::Rename { .. } => "proposal-rename",
        Command::Truncate { .. } => "proposal-truncate",
        Command::Reclaim => "proposal-reclaim",
        Command::SetReplicationFactor { .. } => "proposal-set-replication-factor",
        Command::ForgetGarbage { .. } => "proposal-forget-garbage",
        Command::Guarded { .. } => "proposal-guarded",
        Command::SetMinCopies { .. } => "proposal-set-min-copies",
        Command::Condemn { .. } => "proposal-condemn",
        Command::Pardon { .. } => "proposal-pardon",
        Command::Placed { .. } => "proposal-placed",
        Command::RegisterClient => "proposal-register-client",
        Command::CreateKey { .. } => "proposal-create-key",
        Command::RevokeKey { .. } => "proposal-revoke-key",
        Command::WriteInline(_) => "proposal-write-inline",
        Command::SetInlineMax { .. } => "proposal-set-inline-max",
    }
}

fn p(s: &str) -> FsPath {
    FsPath::new(s).expect("valid path")
}

/// One sample of every command; fields are set so that every optional
/// part is present somewhere.
fn commands() -> Vec<Command> {
    vec![
        Command::CreateDir {
            path: p("/a/b"),
            parents: true,
            expect: Some(Version(3)),
        },
        Command::CreateFile {
            path: p("/a/f"),
            chunk_size: DEFAULT_CHUNK_SIZE,
            expect: None,
        },
        Command::Delete {
            path: p("/a"),
            recursive: true,
            expect: None,
        },
        Command::WriteCommit(WriteCommit {
            path: p("/a/f"),
            offset: 5,
            length: 10,
            chunks: vec![ChunkHash::of(b"x")],
            expect: Some(Version(0)),
            create_with_chunk_size: Some(MIN_CHUNK_SIZE),
        }),
        Command::Rename {
            from: p("/a"),
            to: p("/b"),
            replace: false,
            expect: None,
        },
        Command::Truncate {
            path: p("/a/f"),
            length: 3,
            cut_chunk: Some(ChunkHash::of(b"y")),
            expect: None,
        },
        Command::Reclaim,
        Command::SetReplicationFactor {
            factor: 2,
            expect: Some(Version(7)),
        },
        Command::ForgetGarbage {
            hashes: vec![ChunkHash::of(b"g1"), ChunkHash::of(b"g2")],
        },
        Command::SetMinCopies {
            copies: 3,
            expect: Some(Version(4)),
        },
        Command::Condemn {
            hashes: vec![ChunkHash::of(b"c1")],
        },
        Command::Pardon {
            hashes: vec![ChunkHash::of(b"c2"), ChunkHash::of(b"c3")],
        },
        Command::RegisterClient,
        Command::CreateKey {
            name: "backups".into(),
            access: Access::ReadOnly,
            secret_hash: [5; 32],
        },
        Command::RevokeKey { id: KeyId(12) },
        Command::WriteInline(WriteInline {
            path: p("/a/small"),
            content: b"inline bytes".to_vec(),
            expect: Some(Version(0)),
            create_with_chunk_size: Some(MIN_CHUNK_SIZE),
        }),
        Command::SetInlineMax {
            bytes: 1024,
            expect: Some(Version(9)),
        },
        Command::Placed {
            placed_at: 77,
            command: Box::new(Command::Truncate {
                path: p("/a/f"),
                length: 1,
                cut_chunk: Some(ChunkHash::of(b"cut")),
                expect: None,
            }),
        },
        Command::Guarded {
            checks: vec![
                SlotCheck {
                    index: 0,
                    holds: Some(ChunkHash::of(b"old")),
                },
                SlotCheck {
                    index: 9,
                    holds: None,
                },
            ],
            command: Box::new(Command::WriteCommit(WriteCommit {
                path: p("/a/f"),
                offset: 1,
                length: 2,
                chunks: vec![ChunkHash::of(b"new")],
                expect: None,
                create_with_chunk_size: None,
            })),
        },
    ]
}

/// A proposal of every command, named by its fixture.
fn samples() -> Vec<Sample> {
    commands()
        .into_iter()
        .map(|command| {
            let name = fixture_name(&command);
            let proposal = Proposal {
                session: Some(SessionTag {
                    client: ClientId(9),
                    seq: Seq(2),
                }),
                time_ms: 1_700_000_000_000,
                command,
            };
            Sample::new(name, proposal)
        })
        .collect()
}

/// The variant names serde knows for `T` (every variant, whatever the
/// samples hold), read by asking `T` to deserialize itself as an enum.
fn variant_names<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    struct Probe(Option<&'static [&'static str]>);
    impl<'de> Deserializer<'de> for &mut Probe {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not an enum"))
        }
        fn deserialize_enum<V: Visitor<'de>>(
            self,
            _: &'static str,
            variants: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = Some(variants);
            Err(de::Error::custom("variants read"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map struct identifier ignored_any
        }
    }
    let mut probe = Probe(None);
    let _ = T::deserialize(&mut probe);
    probe.0.expect("an enum")
}

/// `SetReplicationFactor` -> `set-replication-factor`.
fn kebab(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The samples cover every variant serde knows, under the name the
/// exhaustive match gives it.
#[test]
fn every_command_variant_has_a_sample() {
    let named: Vec<&str> = commands().iter().map(fixture_name).collect();
    let mut expected: Vec<String> = variant_names::<Command>()
        .iter()
        .map(|v| format!("proposal-{}", kebab(v)))
        .collect();
    let mut got: Vec<String> = named.iter().map(|n| n.to_string()).collect();
    expected.sort();
    got.sort();
    assert_eq!(
        got, expected,
        "one sample per Command variant, named by fixture_name"
    );
}

#[test]
fn proposals_match_their_golden_fixtures() {
    check_or_bless(&fixture_dir(), "proposal-", &samples());
}

/// Every proposal sample rejects every truncation and bit flip.
#[test]
fn every_proposal_is_tamper_evident() {
    for sample in samples() {
        sample.assert_tamper_evident();
    }
}
