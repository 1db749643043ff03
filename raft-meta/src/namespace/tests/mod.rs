//! Tests of the namespace state machine: unit tests of its rules, by
//! concept, property tests against the reference model, and the samples of
//! its stored records. Every unit test runs `check_invariants` after each
//! step (see [`Fixture::run`]).

mod chunks;
mod collect;
pub(super) mod formats;
mod inline;
mod model;
mod proptest_model;
mod sessions;
mod settings;
mod tree;

use toastyfs_proto::namespace::*;
use toastyfs_proto::{ChunkHash, FsPath};

use super::invariants::check_invariants;
use super::kv::MemStore;
use super::{Namespace, NamespaceConfig};

fn p(s: &str) -> FsPath {
    FsPath::new(s).unwrap()
}

fn h(i: u8) -> ChunkHash {
    ChunkHash([i; 32])
}

/// A store, a state machine and a log index, for unit tests.
struct Fixture {
    ns: Namespace,
    store: MemStore,
    index: u64,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with_config(NamespaceConfig::default())
    }

    fn with_config(config: NamespaceConfig) -> Fixture {
        Fixture {
            ns: Namespace::new(config),
            store: MemStore::new(),
            index: 0,
        }
    }

    fn run(&mut self, command: Command) -> CommandResult {
        self.index += 1;
        let proposal = Proposal {
            session: None,
            time_ms: self.index * 10,
            command,
        };
        let result = self
            .ns
            .apply(&mut self.store, self.index, &proposal)
            .unwrap();
        check_invariants(&self.store).unwrap().unwrap();
        result
    }

    fn ok(&mut self, command: Command) -> Outcome {
        self.run(command).unwrap()
    }

    fn query(&self, query: Query) -> QueryResult {
        self.ns.query(&self.store, &query).unwrap()
    }

    fn write(&mut self, path: &str, offset: u64, length: u64, chunks: &[u8]) -> CommandResult {
        self.run(Command::WriteCommit(WriteCommit {
            path: p(path),
            offset,
            length,
            chunks: chunks.iter().map(|i| h(*i)).collect(),
            expect: None,
            create_with_chunk_size: Some(MIN_CHUNK_SIZE),
        }))
    }

    fn plan(&self, path: &str, offset: u64, length: u64) -> ReadPlan {
        match self
            .query(Query::ReadPlan {
                path: p(path),
                offset,
                length,
            })
            .unwrap()
        {
            QueryReply::ReadPlan(plan) => plan,
            other => panic!("not a plan: {other:?}"),
        }
    }
}

fn mkdir(path: &str) -> Command {
    Command::CreateDir {
        path: p(path),
        parents: false,
        expect: None,
    }
}

fn mkfile(path: &str) -> Command {
    Command::CreateFile {
        path: p(path),
        chunk_size: MIN_CHUNK_SIZE,
        expect: None,
    }
}
