//! Benchmark of the replication scan's hold on the chunk map's lock.
//!
//! Builds a namespace (the in-memory store) whose files reference N
//! chunks, and a leader's chunk map in which three chunk servers hold
//! every one of them; then times one whole scan in a single hold (what the
//! scan did before it was paged) and one pass in pages of [`SCAN_PAGE`],
//! printing the longest page: the longest any report, placement or read
//! waits for the lock behind the scan. Each chunk costs the real
//! namespace lookups (`replication::collection`), over the in-memory store
//! rather than RocksDB. Run with
//! `cargo bench -p toastyfs-raft-meta --bench chunk_scan`;
//! `TOASTYFS_BENCH_CHUNKS` sets N (default 1,000,000).

use std::time::{Duration, Instant};

use toastyfs_proto::chunks::{ChunkReport, ChunkServerId};
use toastyfs_proto::namespace::{Command, Proposal, WriteCommit, MIN_CHUNK_SIZE};
use toastyfs_proto::{ChunkHash, FsPath};
use toastyfs_raft_meta::chunk_map::{ChunkMap, ChunkMapConfig, ScanPass};
use toastyfs_raft_meta::limits::SCAN_PAGE;
use toastyfs_raft_meta::namespace::kv::MemStore;
use toastyfs_raft_meta::namespace::Namespace;
use toastyfs_raft_meta::replication::collection;

fn hash(i: u64) -> ChunkHash {
    ChunkHash::of(&i.to_le_bytes())
}

/// A namespace of `n` one-chunk files in one directory.
fn namespace(n: u64) -> MemStore {
    let ns = Namespace::default();
    let mut store = MemStore::new();
    let mut index = 0;
    let mut apply = |command: Command| {
        index += 1;
        let proposal = Proposal {
            session: None,
            time_ms: index,
            command,
        };
        let result = ns.apply(&mut store, index, &proposal).expect("store");
        assert!(result.is_ok(), "{result:?}");
    };
    apply(Command::CreateDir {
        path: FsPath::new("/d").expect("valid path"),
        parents: false,
        expect: None,
    });
    for i in 0..n {
        apply(Command::WriteCommit(WriteCommit {
            path: FsPath::new(&format!("/d/f{i:09}")).expect("valid path"),
            offset: 0,
            length: u64::from(MIN_CHUNK_SIZE),
            chunks: vec![hash(i)],
            expect: None,
            create_with_chunk_size: Some(MIN_CHUNK_SIZE),
        }));
    }
    store
}

/// A leader's map (past its warm-up) in which servers 1 to 3 hold every chunk.
fn chunk_map(n: u64, now: Instant) -> ChunkMap {
    let config = ChunkMapConfig {
        server_timeout: Duration::from_secs(3600),
        ..ChunkMapConfig::default()
    };
    let mut map = ChunkMap::new(config, 1, now);
    let held: Vec<ChunkHash> = (0..n).map(hash).collect();
    for id in 1..=3 {
        let report = ChunkReport {
            server: ChunkServerId(id),
            addr: format!("cs{id}:1"),
            full: true,
            added: held.clone(),
            lost: vec![],
            chunks: n,
            used_bytes: 0,
            free_bytes: 1 << 40,
            dropping: vec![],
            boot: 0,
            seq: 0,
        };
        map.report(report, now);
    }
    map
}

fn main() {
    let n: u64 = std::env::var("TOASTYFS_BENCH_CHUNKS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let started = Instant::now();
    let store = namespace(n);
    let now = Instant::now();
    let mut map = chunk_map(n, now);
    println!(
        "preload: {n} referenced chunks, 3 copies each, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let read = |h: &ChunkHash| collection(&store, h);

    let started = Instant::now();
    let whole = map.scan(now, read).expect("reads");
    let one_hold = started.elapsed();
    assert_eq!(whole.summary.chunks, n);

    let started = Instant::now();
    let mut pass = ScanPass::new();
    let mut longest = Duration::ZERO;
    let mut pages = 0u64;
    let paged = loop {
        let page_started = Instant::now();
        let page = map
            .scan_page(&mut pass, now, SCAN_PAGE, read)
            .expect("reads");
        longest = longest.max(page_started.elapsed());
        pages += 1;
        if let Some(outcome) = page {
            break outcome;
        }
    };
    let total = started.elapsed();
    assert_eq!(paged, whole);
    println!(
        "scan_whole_pass_one_hold_ms {:.1} ({n} chunks)",
        one_hold.as_secs_f64() * 1e3
    );
    println!(
        "scan_paged_longest_hold_ms {:.2} ({pages} pages of {SCAN_PAGE}; whole pass {:.1} ms)",
        longest.as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e3
    );
}
