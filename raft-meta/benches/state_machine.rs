//! Benchmark of the namespace state machine over the in-memory store.
//!
//! Prints: create-file applies/s and write-commit applies/s with 1,000,000
//! files in the store; the time of one 1,000-entry list page out of a
//! 1,000,000-entry directory; and bytes of store per one-chunk file entry.
//! Run with `cargo bench -p toastyfs-raft-meta --bench state_machine`
//! (single-threaded: the figures are per core). `TOASTYFS_BENCH_FILES`
//! overrides the directory size.

use std::time::Instant;

use toastyfs_proto::namespace::{
    Command, Outcome, Proposal, Query, QueryReply, WriteCommit, MIN_CHUNK_SIZE,
};
use toastyfs_proto::{ChunkHash, ClientId, FsPath, Seq, SessionTag};
use toastyfs_raft_meta::namespace::kv::MemStore;
use toastyfs_raft_meta::namespace::Namespace;

struct Bench {
    ns: Namespace,
    store: MemStore,
    index: u64,
    /// Each client's registered id and last seq.
    clients: Vec<(ClientId, u64)>,
}

impl Bench {
    /// A fresh state with `clients` registered sessions.
    fn new(clients: usize) -> Bench {
        let mut b = Bench {
            ns: Namespace::default(),
            store: MemStore::new(),
            index: 0,
            clients: Vec::new(),
        };
        for _ in 0..clients {
            b.index += 1;
            let register = Proposal {
                session: None,
                time_ms: b.index,
                command: Command::RegisterClient,
            };
            match b.ns.apply(&mut b.store, b.index, &register).expect("store") {
                Ok(Outcome::Registered { client }) => b.clients.push((client, 0)),
                other => panic!("registration answered {other:?}"),
            }
        }
        b
    }

    /// Applies `command` as the next request of one of the clients.
    fn apply(&mut self, command: Command) {
        self.index += 1;
        let slot = (self.index % self.clients.len() as u64) as usize;
        let client = &mut self.clients[slot];
        client.1 += 1;
        let session = Some(SessionTag {
            client: client.0,
            seq: Seq(client.1),
        });
        let proposal = Proposal {
            session,
            time_ms: self.index,
            command,
        };
        let result = self
            .ns
            .apply(&mut self.store, self.index, &proposal)
            .expect("store");
        assert!(result.is_ok(), "{result:?}");
    }
}

fn path(s: &str) -> FsPath {
    FsPath::new(s).expect("valid path")
}

fn create(i: u64) -> Command {
    Command::CreateFile {
        path: path(&format!("/d/f{i:08}")),
        chunk_size: MIN_CHUNK_SIZE,
        expect: None,
    }
}

fn write(i: u64, salt: u64) -> Command {
    let hash = ChunkHash::of(&(i ^ (salt << 40)).to_le_bytes());
    Command::WriteCommit(WriteCommit {
        path: path(&format!("/d/f{i:08}")),
        offset: 0,
        length: u64::from(MIN_CHUNK_SIZE),
        chunks: vec![hash],
        expect: None,
        create_with_chunk_size: None,
    })
}

fn rate(n: u64, started: Instant) -> f64 {
    n as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let files: u64 = std::env::var("TOASTYFS_BENCH_FILES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let mut b = Bench::new(64);
    b.apply(Command::CreateDir {
        path: path("/d"),
        parents: false,
        expect: None,
    });

    let started = Instant::now();
    for i in 0..files {
        b.apply(create(i));
    }
    println!(
        "preload: {files} create-file applies at {:.0}/s",
        rate(files, started)
    );

    let n = 200_000;
    let started = Instant::now();
    for i in files..files + n {
        b.apply(create(i));
    }
    println!(
        "create_file_applies_per_s {:.0} (target >= 300000, store holds {files}+ files)",
        rate(n, started)
    );

    let started = Instant::now();
    for i in 0..n {
        b.apply(write(i * 7 % files, 1));
    }
    println!(
        "write_commit_applies_per_s {:.0} (one new chunk each)",
        rate(n, started)
    );

    let mut times = Vec::new();
    for k in 0..200u64 {
        let after = format!("f{:08}", k * 4999 % (files - 1000));
        let query = Query::List {
            path: path("/d"),
            after: Some(after),
            limit: 1000,
        };
        let started = Instant::now();
        let reply = b.ns.query(&b.store, &query).expect("store");
        times.push(started.elapsed().as_secs_f64() * 1e3);
        assert!(matches!(reply, Ok(QueryReply::List(ref l)) if l.entries.len() == 1000));
    }
    times.sort_by(f64::total_cmp);
    println!(
        "list_page_1000_ms p50 {:.3} p99 {:.3} (target <= 2 ms, directory of {} entries)",
        times[times.len() / 2],
        times[times.len() * 99 / 100],
        files + n
    );

    // Bytes per one-chunk file entry: a fresh store, so the figure is the
    // entry, its chunk key and its chunk's reference count.
    let mut small = Bench::new(64);
    small.apply(Command::CreateDir {
        path: path("/d"),
        parents: false,
        expect: None,
    });
    let before = small.store.payload_bytes();
    let m = 100_000;
    for i in 0..m {
        small.apply(create(i));
        small.apply(write(i, 2));
    }
    let per_file = (small.store.payload_bytes() - before) as f64 / m as f64;
    println!("bytes_per_one_chunk_file {per_file:.1} (target <= 200; keys + values, {m} files)");
}
