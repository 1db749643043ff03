//! An exhaustive check of the chunk lifecycle protocol (see "Chunk
//! lifecycle" in docs/architecture.md): every interleaving, up to a bound,
//! of placements (with their pardons), uploads, commits, file deletes,
//! replication scans (a page of one chunk per step, so anything can come
//! between a page and the end of its pass) and the
//! `Condemn`/`ForgetGarbage` proposals they make, chunk server reports,
//! late delivery of their answers, deletions, time passing and leader
//! changes, over the real [`Namespace`] state machine
//! and the real [`ChunkMap`]. After every step it asserts the protocol's
//! invariant: every chunk a file references has a copy on some chunk
//! server.
//!
//! The chunk servers are modelled by their two rules (each unit-tested in
//! the chunkserver crate): the answer to a report replaces the pending
//! drops, each as old as the report's acknowledgement clock; a pending
//! drop deletes a copy only if it was not acknowledged after that. The
//! grace period is taken as zero (the worst case: safety must not depend
//! on it), and answers may arrive arbitrarily late, after a leader change.
//! A client pauses simply by not being scheduled.
//!
//! States are deduplicated by a hash of their whole contents; the
//! search is depth-first (memory stays at the fingerprints and one path),
//! and a failure is reported with the trace that reached it.

use std::collections::hash_map::DefaultHasher;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

use std::time::{Duration, Instant};

use toastyfs_proto::chunks::{ChunkReport, ChunkServerId};
use toastyfs_proto::namespace::{Command, FsError, Outcome, Proposal, WriteCommit, MIN_CHUNK_SIZE};
use toastyfs_proto::{ChunkHash, FsPath};

use crate::chunk_map::{ChunkMap, ChunkMapConfig, ScanPass};
use crate::namespace::kv::MemStore;
use crate::namespace::{self, Namespace};
use crate::replication;

/// The bounds of one exploration.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    servers: u64,
    clients: usize,
    attempts: u32,
    ticks: u32,
    leader_changes: u32,
    file_deletes: u32,
    replication_factor: u32,
    /// Steps in one trace.
    depth: usize,
}

/// A chunk server as the protocol sees it.
#[derive(Debug, Clone, Hash)]
struct Server {
    id: u64,
    /// Held chunks and the acknowledgement clock of their latest upload.
    chunks: BTreeMap<ChunkHash, u64>,
    clock: u64,
    /// Pending drops and the clock of the report their order answered.
    pending: BTreeMap<ChunkHash, u64>,
    /// An answer on its way: the clock its report was sent at, and the
    /// drop set it lists.
    answer: Option<(u64, Vec<ChunkHash>)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Step {
    Idle,
    Placed {
        placed_at: u64,
        target: Option<u64>,
        uploaded: bool,
    },
    Done,
}

#[derive(Debug, Clone, Hash)]
struct Client {
    path: &'static str,
    step: Step,
    attempts: u32,
}

#[derive(Debug, Clone, Hash)]
struct World {
    now_secs: u64,
    ticks: u32,
    leader_changes: u32,
    file_deletes: u32,
    term: u64,
    index: u64,
    store: MemStore,
    map: ChunkMap,
    servers: Vec<Server>,
    clients: Vec<Client>,
    /// Collection commands a scan decided, not yet applied.
    proposals: Vec<Proposed>,
    /// The replication scan's pass in progress: it runs a page of one
    /// chunk per step, so every other step can come between its pages.
    pass: Option<ScanPass>,
}

/// A collection command a scan decided.
#[derive(Debug, Clone, Hash)]
enum Proposed {
    Condemn(Vec<ChunkHash>),
    Forget(Vec<ChunkHash>),
}

/// The one content every file holds: the dedup, delete and re-upload
/// races are all about one hash.
fn content() -> ChunkHash {
    ChunkHash::of(b"the content")
}

fn path(p: &str) -> FsPath {
    FsPath::new(p).expect("valid path")
}

struct Checker {
    base: Instant,
    ns: Namespace,
    bounds: Bounds,
}

impl Checker {
    fn now(&self, world: &World) -> Instant {
        self.base + Duration::from_secs(world.now_secs)
    }

    fn apply(&self, world: &mut World, command: Command) -> Result<Outcome, FsError> {
        world.index += 1;
        let proposal = Proposal {
            session: None,
            time_ms: world.index,
            command,
        };
        self.ns
            .apply(&mut world.store, world.index, &proposal)
            .expect("the in-memory store does not fail")
    }

    /// The initial world: `/old` holds the content, stored on server 1,
    /// which has reported it; the leader has led since time 0.
    fn initial(&self) -> World {
        let config = ChunkMapConfig {
            replication_factor: self.bounds.replication_factor,
            copies_to_acknowledge: 1,
            server_timeout: Duration::from_secs(10),
            fetch_timeout: Duration::from_secs(30),
            placement_ttl: Duration::from_secs(60),
        };
        let servers = (1..=self.bounds.servers)
            .map(|id| Server {
                id,
                chunks: BTreeMap::new(),
                clock: 0,
                pending: BTreeMap::new(),
                answer: None,
            })
            .collect();
        let clients = ["/new", "/other"]
            .into_iter()
            .take(self.bounds.clients)
            .map(|path| Client {
                path,
                step: Step::Idle,
                attempts: self.bounds.attempts,
            })
            .collect();
        let mut world = World {
            now_secs: 0,
            ticks: 0,
            leader_changes: 0,
            file_deletes: 0,
            term: 1,
            index: 0,
            store: MemStore::new(),
            map: ChunkMap::new(config, 1, self.base),
            servers,
            clients,
            proposals: Vec::new(),
            pass: None,
        };
        self.apply(&mut world, write("/old"))
            .expect("the first write applies");
        world.servers[0].clock = 1;
        world.servers[0].chunks.insert(content(), 1);
        for i in 0..world.servers.len() {
            self.report(&mut world, i);
            self.deliver(&mut world, i);
        }
        world
    }

    /// Every step possible from `world`, named.
    fn successors(&self, world: &World) -> Vec<(String, World)> {
        let mut next = Vec::new();
        let mut try_step = |name: String, step: &dyn Fn(&mut World) -> bool| {
            let mut w = world.clone();
            if step(&mut w) {
                next.push((name, w));
            }
        };
        for i in 0..world.servers.len() {
            try_step(format!("report s{}", i + 1), &|w| {
                w.servers[i].answer.is_none() && {
                    self.report(w, i);
                    true
                }
            });
            try_step(format!("deliver s{}", i + 1), &|w| self.deliver(w, i));
            try_step(format!("delete on s{}", i + 1), &|w| self.delete_due(w, i));
        }
        for c in 0..world.clients.len() {
            try_step(format!("place c{c}"), &|w| self.place(w, c));
            try_step(format!("upload c{c}"), &|w| self.upload(w, c));
            try_step(format!("commit c{c}"), &|w| self.commit(w, c));
        }
        try_step("scan page".into(), &|w| self.scan(w));
        try_step("apply proposals".into(), &|w| self.apply_proposals(w));
        for file in ["/old", "/new", "/other"] {
            try_step(format!("rm {file}"), &|w| self.remove(w, file));
        }
        // One step of time passes every timer at once: servers not heard
        // from are down, placements expire, a new leader's warm-up ends.
        try_step("time passes".into(), &|w| {
            w.ticks < self.bounds.ticks && {
                w.ticks += 1;
                w.now_secs += 61;
                true
            }
        });
        try_step("leader change".into(), &|w| {
            w.leader_changes < self.bounds.leader_changes && {
                w.leader_changes += 1;
                w.term += 1;
                let now = self.now(w);
                w.map.reset(w.term, now);
                w.proposals.clear();
                w.pass = None;
                true
            }
        });
        next
    }

    /// A full report; the leader answers now, the answer arrives later.
    fn report(&self, world: &mut World, i: usize) {
        let now = self.now(world);
        let server = &world.servers[i];
        let report = ChunkReport {
            server: ChunkServerId(server.id),
            addr: addr(server.id),
            full: true,
            added: server.chunks.keys().copied().collect(),
            lost: vec![],
            chunks: server.chunks.len() as u64,
            used_bytes: 0,
            free_bytes: 100 << 30,
            dropping: server.pending.keys().copied().collect(),
            boot: 0,
            seq: 0,
        };
        let clock = server.clock;
        let (orders, _) = world.map.report(report, now);
        world.servers[i].answer = Some((clock, orders.drop));
    }

    /// The answer replaces the pending drops; a drop already pending keeps
    /// the clock it was first ordered at.
    fn deliver(&self, world: &mut World, i: usize) -> bool {
        let server = &mut world.servers[i];
        let Some((clock, drops)) = server.answer.take() else {
            return false;
        };
        server.pending = drops
            .into_iter()
            .map(|h| (h, server.pending.get(&h).copied().unwrap_or(clock)))
            .collect();
        true
    }

    /// Deletes every due drop of a copy not acknowledged since its order.
    fn delete_due(&self, world: &mut World, i: usize) -> bool {
        let server = &mut world.servers[i];
        if server.pending.is_empty() {
            return false;
        }
        for (hash, clock) in std::mem::take(&mut server.pending) {
            if server
                .chunks
                .get(&hash)
                .is_some_and(|acked| *acked <= clock)
            {
                server.chunks.remove(&hash);
            }
        }
        true
    }

    /// The placement endpoint: pardon condemned chunks, then answer.
    fn place(&self, world: &mut World, c: usize) -> bool {
        let client = &world.clients[c];
        if client.step != Step::Idle || client.attempts == 0 {
            return false;
        }
        world.clients[c].attempts -= 1;
        let hashes = [content()];
        let condemned = replication::condemned_among(&world.store, &hashes).expect("reads");
        if !condemned.is_empty() {
            let pardoned = self.apply(world, Command::Pardon { hashes: condemned });
            assert!(pardoned.is_ok(), "pardon refused: {pardoned:?}");
        }
        let placed_at = namespace::header(&world.store)
            .expect("reads")
            .applied_index;
        let now = self.now(world);
        let store = world.store.clone();
        let reply = world.map.place(&hashes, now, placed_at, |h| {
            namespace::is_referenced(&store, h)
        });
        if let Ok(reply) = reply {
            let placement = &reply.placements[0];
            let target = (!placement.present).then(|| server_of(&placement.targets[0]));
            world.clients[c].step = Step::Placed {
                placed_at: reply.placed_at,
                target,
                uploaded: false,
            };
        }
        true
    }

    /// An upload to the placement's target: stored (or already there), and
    /// acknowledged at the server's next clock.
    fn upload(&self, world: &mut World, c: usize) -> bool {
        let Step::Placed {
            target: Some(target),
            uploaded: false,
            placed_at,
        } = world.clients[c].step
        else {
            return false;
        };
        let server = &mut world.servers[(target - 1) as usize];
        server.clock += 1;
        server.chunks.insert(content(), server.clock);
        world.clients[c].step = Step::Placed {
            placed_at,
            target: Some(target),
            uploaded: true,
        };
        true
    }

    /// The commit, carrying its placement; a `ChunkCollected` refusal
    /// sends the client back to placement.
    fn commit(&self, world: &mut World, c: usize) -> bool {
        let Step::Placed {
            placed_at,
            target,
            uploaded,
        } = world.clients[c].step
        else {
            return false;
        };
        if target.is_some() && !uploaded {
            return false;
        }
        let command = Command::Placed {
            placed_at,
            command: Box::new(write(world.clients[c].path)),
        };
        world.clients[c].step = match self.apply(world, command) {
            Ok(_) => Step::Done,
            Err(FsError::ChunkCollected { .. }) => Step::Idle,
            Err(e) => panic!("unexpected refusal of a commit: {e}"),
        };
        true
    }

    fn remove(&self, world: &mut World, file: &str) -> bool {
        if world.file_deletes >= self.bounds.file_deletes {
            return false;
        }
        let command = Command::Delete {
            path: path(file),
            recursive: false,
            expect: None,
        };
        match self.apply(world, command) {
            Ok(_) => {
                world.file_deletes += 1;
                true
            }
            Err(FsError::NotFound { .. }) => false,
            Err(e) => panic!("unexpected refusal of a delete: {e}"),
        }
    }

    /// One page (of one chunk) of the replication scan; what a finished
    /// pass decides to propose is applied later.
    fn scan(&self, world: &mut World) -> bool {
        if !world.proposals.is_empty() {
            return false;
        }
        let now = self.now(world);
        let store = world.store.clone();
        let mut pass = world.pass.take().unwrap_or_default();
        let page = world
            .map
            .scan_page(&mut pass, now, 1, |h| replication::collection(&store, h))
            .expect("reads");
        let Some(outcome) = page else {
            world.pass = Some(pass);
            return true;
        };
        if !outcome.condemn.is_empty() {
            world.proposals.push(Proposed::Condemn(outcome.condemn));
        }
        let forget = replication::forgettable(&store, &world.map, &mut None, now).expect("reads");
        if !forget.is_empty() {
            world.proposals.push(Proposed::Forget(forget));
        }
        true
    }

    fn apply_proposals(&self, world: &mut World) -> bool {
        if world.proposals.is_empty() {
            return false;
        }
        for proposed in std::mem::take(&mut world.proposals) {
            let command = match proposed {
                Proposed::Condemn(hashes) => Command::Condemn { hashes },
                Proposed::Forget(hashes) => Command::ForgetGarbage { hashes },
            };
            let result = self.apply(world, command);
            assert!(
                result.is_ok(),
                "a collection command was refused: {result:?}"
            );
        }
        true
    }

    /// The invariant: every referenced chunk has a copy somewhere.
    fn check(&self, world: &World) -> Result<(), String> {
        let hash = content();
        let referenced = namespace::is_referenced(&world.store, &hash).expect("reads");
        let held = world.servers.iter().any(|s| s.chunks.contains_key(&hash));
        if referenced && !held {
            return Err("a committed file references a chunk no server holds".into());
        }
        Ok(())
    }

    /// Depth-first over every state reachable within the depth bound (a
    /// state seen before is explored again only when reached in fewer
    /// steps); returns how many there were, or the trace to a violation.
    fn explore(&self, limit: usize) -> Result<usize, String> {
        let start = self.initial();
        let mut seen = HashMap::new();
        seen.insert(fingerprint(&start), 0);
        let mut stack = vec![(start, Vec::<String>::new())];
        while let Some((world, trace)) = stack.pop() {
            for (name, next) in self.successors(&world) {
                let depth = trace.len() + 1;
                match seen.entry(fingerprint(&next)) {
                    Entry::Occupied(e) if *e.get() <= depth => continue,
                    Entry::Occupied(mut e) => {
                        e.insert(depth);
                    }
                    Entry::Vacant(e) => {
                        e.insert(depth);
                    }
                }
                let mut trace = trace.clone();
                trace.push(name);
                if let Err(e) = self.check(&next) {
                    return Err(format!("{e} after: {}", trace.join(", ")));
                }
                assert!(seen.len() <= limit, "more than {limit} states");
                if trace.len() < self.bounds.depth {
                    stack.push((next, trace));
                }
            }
        }
        Ok(seen.len())
    }
}

fn write(file: &str) -> Command {
    Command::WriteCommit(WriteCommit {
        path: path(file),
        offset: 0,
        length: 10,
        chunks: vec![content()],
        expect: None,
        create_with_chunk_size: Some(MIN_CHUNK_SIZE),
    })
}

fn addr(id: u64) -> String {
    format!("cs{id}:1")
}

fn server_of(addr: &str) -> u64 {
    addr.trim_start_matches("cs")
        .trim_end_matches(":1")
        .parse()
        .expect("a model address")
}

fn fingerprint(world: &World) -> u64 {
    let mut hasher = DefaultHasher::new();
    world.hash(&mut hasher);
    hasher.finish()
}

fn check(bounds: Bounds) -> usize {
    let checker = Checker {
        base: Instant::now(),
        ns: Namespace::default(),
        bounds,
    };
    let started = Instant::now();
    match checker.explore(2_000_000) {
        Ok(states) => {
            eprintln!("{bounds:?}: {states} states in {:?}", started.elapsed());
            states
        }
        Err(trace) => panic!("chunk lifecycle invariant broken: {trace}"),
    }
}

/// Extra steps for a deeper run than CI's: `TOASTYFS_LIFECYCLE_DEPTH=6
/// cargo test -p toastyfs-raft-meta lifecycle` (docs/testing.md).
fn extra_depth() -> usize {
    std::env::var("TOASTYFS_LIFECYCLE_DEPTH")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0)
}

/// One client re-puts content whose only file is being deleted, against
/// scans, condemnations, forgets, answers delivered late and deletions.
#[test]
fn one_client_against_delete_scan_and_late_answers() {
    let states = check(Bounds {
        servers: 2,
        clients: 1,
        attempts: 2,
        ticks: 2,
        leader_changes: 0,
        file_deletes: 1,
        replication_factor: 1,
        depth: 24 + extra_depth(),
    });
    assert!(states > 100_000, "explored only {states} states");
}

/// The same across a leader change: the new leader's map starts empty and
/// the old leader's answers may still arrive.
#[test]
fn one_client_across_a_leader_change() {
    let states = check(Bounds {
        servers: 2,
        clients: 1,
        attempts: 2,
        ticks: 2,
        leader_changes: 1,
        file_deletes: 1,
        replication_factor: 1,
        depth: 18 + extra_depth(),
    });
    assert!(states > 100_000, "explored only {states} states");
}

/// Two clients writing the same content (each other's dedup) while a file
/// holding it is deleted.
#[test]
fn two_clients_deduplicating_against_a_delete() {
    let states = check(Bounds {
        servers: 2,
        clients: 2,
        attempts: 1,
        ticks: 2,
        leader_changes: 0,
        file_deletes: 1,
        replication_factor: 1,
        depth: 16 + extra_depth(),
    });
    assert!(states > 100_000, "explored only {states} states");
}
