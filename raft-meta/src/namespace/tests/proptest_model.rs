//! Property tests: random operation sequences from many clients give the
//! results and the tree of the reference model (`model.rs`), apply is
//! deterministic (also through a write overlay), and a restored snapshot
//! continues identically.

use proptest::prelude::*;
use toastyfs_proto::client_key::{Access, KeyId};
use toastyfs_proto::namespace::*;
use toastyfs_proto::{ChunkHash, ClientId, Seq, SessionTag, Version};

use super::model::{MEntry, Model};
use super::{h, p};
use crate::namespace::invariants::check_invariants;
use crate::namespace::kv::{KvRead, KvStore, MemStore, Overlay};
use crate::namespace::{header, keys, stored, Namespace, NamespaceConfig};

/// An operation template, resolved against the model's state when run so
/// that most writes carry the right number of chunks.
#[derive(Debug, Clone)]
enum Op {
    Mkdir(String, bool, Option<u64>),
    Create(String, u32, Option<u64>),
    Delete(String, bool, Option<u64>),
    Write {
        path: String,
        offset: u64,
        length: u64,
        hashes: Vec<u8>,
        skew: i8,
        create: bool,
        expect: Option<u64>,
    },
    Rename(String, String, bool, Option<u64>),
    Truncate(String, u64, Option<u8>, Option<u64>),
    Reclaim,
    SetReplication(u32, Option<u64>),
    SetMinCopies(u32, Option<u64>),
    /// Create a key named by index into a few names (one empty, one too
    /// long), read-only or not.
    CreateKey(u8, bool),
    /// Revoke a key by an id near the indexes a run reaches.
    RevokeKey(u64),
    ListKeys,
    Forget(Vec<u8>),
    Condemn(Vec<u8>),
    Pardon(Vec<u8>),
    /// A write or truncation (guarded or not) placed this many entries
    /// before the last applied one.
    Placed(Box<Op>, u64),
    /// A guarded command: each check names a slot and either what the
    /// model holds there now (`None`) or a given content (`Some`: a hole
    /// or a hash).
    Guard(Box<Op>, Vec<(u64, Option<Option<u8>>)>),
    Stat(String),
    List(String, Option<String>, u32),
    Plan(String, u64, u64),
    Settings,
    /// A whole-content inline write of this many bytes (filled with the
    /// byte given), creating the file or not.
    WriteInline(String, usize, u8, bool, Option<u64>),
    SetInlineMax(u32, Option<u64>),
}

/// Who sends an operation: no session, a fresh request of a client (its
/// registration first, if it has no session), a retry of that client's
/// last request, a stale sequence number, or a tag the cluster never
/// assigned.
#[derive(Debug, Clone, Copy)]
enum Sender {
    Anonymous,
    Next(u64),
    Retry(u64),
    Stale(u64),
    Unregistered(u64),
}

/// Directory-like paths (mostly not the root).
fn dir_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just("/".to_owned()),
        12 => proptest::collection::vec(prop_oneof!["a", "b"], 1..3).prop_map(|c| format!("/{}", c.join("/"))),
    ]
}

/// File-like paths: a directory and a leaf name.
fn file_strategy() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(prop_oneof!["a", "b"], 0..2),
        prop_oneof!["f", "g"],
    )
        .prop_map(|(dirs, leaf)| {
            format!(
                "/{}",
                dirs.into_iter().chain([leaf]).collect::<Vec<_>>().join("/")
            )
        })
}

fn path_strategy() -> impl Strategy<Value = String> {
    prop_oneof![dir_strategy(), file_strategy()]
}

fn name_strategy() -> impl Strategy<Value = String> {
    prop_oneof!["a", "b", "f", "aa"].prop_map(String::from)
}

fn expect_strategy() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![6 => Just(None), 1 => (0u64..12).prop_map(Some)]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let cs = u64::from(MIN_CHUNK_SIZE);
    prop_oneof![
        3 => (dir_strategy(), proptest::bool::weighted(0.75), expect_strategy()).prop_map(|(p, r, e)| Op::Mkdir(p, r, e)),
        3 => (file_strategy(), prop_oneof![4 => Just(MIN_CHUNK_SIZE), 4 => Just(2 * MIN_CHUNK_SIZE), 1 => Just(100)], expect_strategy())
            .prop_map(|(p, c, e)| Op::Create(p, c, e)),
        2 => (path_strategy(), any::<bool>(), expect_strategy()).prop_map(|(p, r, e)| Op::Delete(p, r, e)),
        6 => (file_strategy(), prop_oneof![3 => 0..6 * cs, 1 => Just(0)], 0..4 * cs, proptest::collection::vec(0u8..6, 8), prop_oneof![8 => Just(0i8), 1 => Just(1i8), 1 => Just(-1i8)], proptest::bool::weighted(0.8), expect_strategy())
            .prop_map(|(path, offset, length, hashes, skew, create, expect)| Op::Write { path, offset, length, hashes, skew, create, expect }),
        2 => (path_strategy(), path_strategy(), any::<bool>(), expect_strategy()).prop_map(|(a, b, r, e)| Op::Rename(a, b, r, e)),
        2 => (file_strategy(), prop_oneof![3 => 0..6 * cs, 1 => 0u64..100], proptest::option::of(0u8..6), expect_strategy()).prop_map(|(p, l, c, e)| Op::Truncate(p, l, c, e)),
        4 => (file_strategy(), prop_oneof![8 => 0usize..80, 1 => Just(MAX_INLINE_BYTES as usize), 1 => Just(MAX_INLINE_BYTES as usize + 1)], any::<u8>(), proptest::bool::weighted(0.8), expect_strategy())
            .prop_map(|(p, n, b, c, e)| Op::WriteInline(p, n, b, c, e)),
        1 => (prop_oneof![0u32..64, Just(MAX_INLINE_BYTES), Just(MAX_INLINE_BYTES + 1)], expect_strategy()).prop_map(|(b, e)| Op::SetInlineMax(b, e)),
        1 => Just(Op::Reclaim),
        1 => (0u32..18, expect_strategy()).prop_map(|(f, e)| Op::SetReplication(f, e)),
        1 => (0u32..18, expect_strategy()).prop_map(|(c, e)| Op::SetMinCopies(c, e)),
        1 => Just(Op::Settings),
        1 => (0u8..4, any::<bool>()).prop_map(|(n, ro)| Op::CreateKey(n, ro)),
        1 => (0u64..40).prop_map(Op::RevokeKey),
        1 => Just(Op::ListKeys),
        1 => proptest::collection::vec(0u8..6, 0..4).prop_map(Op::Forget),
        1 => proptest::collection::vec(0u8..6, 0..4).prop_map(Op::Condemn),
        2 => proptest::collection::vec(0u8..6, 0..4).prop_map(Op::Pardon),
        2 => path_strategy().prop_map(Op::Stat),
        2 => (dir_strategy(), proptest::option::of(name_strategy()), 0u32..4).prop_map(|(p, a, l)| Op::List(p, a, l)),
        2 => (file_strategy(), 0..6 * cs, 0..8 * cs).prop_map(|(p, o, l)| Op::Plan(p, o, l)),
    ]
}

/// A guard around any command (most are write commits and truncations;
/// the rest must be refused as unguardable).
fn guard_strategy() -> impl Strategy<Value = Op> {
    let check = (
        0u64..6,
        prop_oneof![3 => Just(None), 1 => proptest::option::of(0u8..6).prop_map(Some)],
    );
    let command = op_strategy().prop_filter("a command, not a query", |op| to_query(op).is_none());
    (command, proptest::collection::vec(check, 0..3))
        .prop_map(|(inner, checks)| Op::Guard(Box::new(inner), checks))
}

/// A placed command: mostly a write or truncation placed just now, some
/// placed long ago, a few that cannot carry a placement.
fn placed_strategy() -> impl Strategy<Value = Op> {
    let command = prop_oneof![4 => op_strategy(), 1 => guard_strategy()]
        .prop_filter("a command, not a query", |op| to_query(op).is_none());
    let back = prop_oneof![6 => Just(0u64), 2 => 1u64..4, 1 => 4u64..40];
    (command, back).prop_map(|(inner, back)| Op::Placed(Box::new(inner), back))
}

fn any_op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![12 => op_strategy(), 3 => guard_strategy(), 8 => placed_strategy()]
}

fn sender_strategy() -> impl Strategy<Value = Sender> {
    prop_oneof![
        3 => Just(Sender::Anonymous),
        4 => (0u64..4).prop_map(Sender::Next),
        2 => (0u64..4).prop_map(Sender::Retry),
        1 => (0u64..4).prop_map(Sender::Stale),
        1 => (0u64..4).prop_map(Sender::Unregistered),
    ]
}

fn small_config() -> NamespaceConfig {
    NamespaceConfig {
        session_ttl_entries: 40,
        max_sessions: 3,
        reclaim_budget: 3,
        expire_per_apply: 2,
        lift_ttl_entries: 12,
    }
}

fn to_command(op: &Op, model: &Model) -> Option<Command> {
    let v = |e: &Option<u64>| e.map(Version);
    Some(match op {
        Op::Mkdir(path, parents, e) => Command::CreateDir {
            path: p(path),
            parents: *parents,
            expect: v(e),
        },
        Op::Create(path, cs, e) => Command::CreateFile {
            path: p(path),
            chunk_size: *cs,
            expect: v(e),
        },
        Op::Delete(path, r, e) => Command::Delete {
            path: p(path),
            recursive: *r,
            expect: v(e),
        },
        Op::Write {
            path,
            offset,
            length,
            hashes,
            skew,
            create,
            expect,
        } => {
            let cs = match model.resolve(&p(path)) {
                Ok(Some(e)) if e.chunk_size > 0 => u64::from(e.chunk_size),
                _ => u64::from(MIN_CHUNK_SIZE),
            };
            let count = if *length == 0 {
                0
            } else {
                (offset + length - 1) / cs - offset / cs + 1
            };
            let count = (count as i64 + i64::from(*skew)).max(0) as usize;
            let chunks = (0..count).map(|i| h(hashes[i % hashes.len()])).collect();
            Command::WriteCommit(WriteCommit {
                path: p(path),
                offset: *offset,
                length: *length,
                chunks,
                expect: v(expect),
                create_with_chunk_size: create.then_some(MIN_CHUNK_SIZE),
            })
        }
        Op::Rename(a, b, r, e) => Command::Rename {
            from: p(a),
            to: p(b),
            replace: *r,
            expect: v(e),
        },
        Op::Truncate(path, l, c, e) => Command::Truncate {
            path: p(path),
            length: *l,
            cut_chunk: c.map(h),
            expect: v(e),
        },
        Op::Reclaim => Command::Reclaim,
        Op::SetReplication(factor, e) => Command::SetReplicationFactor {
            factor: *factor,
            expect: v(e),
        },
        Op::SetMinCopies(copies, e) => Command::SetMinCopies {
            copies: *copies,
            expect: v(e),
        },
        Op::CreateKey(name, read_only) => Command::CreateKey {
            name: ["app", "", "backups", &"n".repeat(200)][usize::from(*name % 4)].to_owned(),
            access: if *read_only {
                Access::ReadOnly
            } else {
                Access::ReadWrite
            },
            secret_hash: [*name; 32],
        },
        Op::RevokeKey(id) => Command::RevokeKey { id: KeyId(*id) },
        Op::WriteInline(path, n, byte, create, e) => Command::WriteInline(WriteInline {
            path: p(path),
            content: vec![*byte; *n],
            expect: v(e),
            create_with_chunk_size: create.then_some(MIN_CHUNK_SIZE),
        }),
        Op::SetInlineMax(bytes, e) => Command::SetInlineMax {
            bytes: *bytes,
            expect: v(e),
        },
        Op::Forget(hashes) => Command::ForgetGarbage {
            hashes: hashes.iter().map(|i| h(*i)).collect(),
        },
        Op::Condemn(hashes) => Command::Condemn {
            hashes: hashes.iter().map(|i| h(*i)).collect(),
        },
        Op::Pardon(hashes) => Command::Pardon {
            hashes: hashes.iter().map(|i| h(*i)).collect(),
        },
        Op::Placed(inner, back) => Command::Placed {
            placed_at: model.applied_index().saturating_sub(*back),
            command: Box::new(to_command(inner, model)?),
        },
        Op::Guard(inner, checks) => {
            let command = to_command(inner, model)?;
            let current = guarded_file(&command, model);
            let checks = checks
                .iter()
                .map(|(index, given)| SlotCheck {
                    index: *index,
                    holds: match given {
                        Some(content) => content.map(h),
                        None => current.as_ref().and_then(|f| f.chunks.get(index).copied()),
                    },
                })
                .collect();
            Command::Guarded {
                checks,
                command: Box::new(command),
            }
        }
        _ => return None,
    })
}

/// The file a guardable command names, as the model holds it now.
fn guarded_file(command: &Command, model: &Model) -> Option<MEntry> {
    let path = match command {
        Command::WriteCommit(w) => &w.path,
        Command::Truncate { path, .. } => path,
        _ => return None,
    };
    model.resolve(path).ok().flatten()
}

fn to_query(op: &Op) -> Option<Query> {
    Some(match op {
        Op::Stat(path) => Query::Stat { path: p(path) },
        Op::List(path, after, limit) => Query::List {
            path: p(path),
            after: after.clone(),
            limit: *limit,
        },
        Op::Plan(path, offset, length) => Query::ReadPlan {
            path: p(path),
            offset: *offset,
            length: *length,
        },
        Op::Settings => Query::Settings,
        Op::ListKeys => Query::ListKeys,
        _ => return None,
    })
}

/// The part of a result the model can predict exactly: freed lists and
/// reclaim progress depend on deferred reclaim, which the model does eagerly.
fn normalized(result: &CommandResult) -> CommandResult {
    result.clone().map(|o| match o {
        Outcome::Deleted { version, .. } => Outcome::Deleted {
            version,
            freed: vec![],
        },
        Outcome::Written {
            version,
            file_length,
            bytes_written,
            ..
        } => Outcome::Written {
            version,
            file_length,
            bytes_written,
            freed: vec![],
        },
        Outcome::Renamed { version, .. } => Outcome::Renamed {
            version,
            freed: vec![],
        },
        Outcome::Truncated { version, .. } => Outcome::Truncated {
            version,
            freed: vec![],
        },
        Outcome::Reclaimed { .. } => Outcome::Reclaimed {
            freed: vec![],
            pending: false,
        },
        other => other,
    })
}

fn sorted_freed(result: &CommandResult) -> Vec<ChunkHash> {
    let mut v = result
        .as_ref()
        .map(|o| o.freed().to_vec())
        .unwrap_or_default();
    v.sort();
    v
}

/// Turns op templates and senders into the proposals a log would hold,
/// keeping per-client session ids, sequence numbers and last requests, as
/// the client library does.
struct Driver {
    ids: [Option<ClientId>; 4],
    seqs: [u64; 4],
    last: [Option<Command>; 4],
    /// The client whose registration was proposed last.
    registering: Option<usize>,
}

impl Driver {
    fn new() -> Driver {
        Driver {
            ids: [None; 4],
            seqs: [0; 4],
            last: Default::default(),
            registering: None,
        }
    }

    fn proposal(&mut self, index: u64, sender: Sender, command: Command) -> Proposal {
        let tagged = |client: ClientId, s: u64| {
            Some(SessionTag {
                client,
                seq: Seq(s),
            })
        };
        self.registering = None;
        let (session, command) = match sender {
            Sender::Anonymous => (None, command),
            Sender::Next(c) => match self.ids[c as usize] {
                None => {
                    self.registering = Some(c as usize);
                    (None, Command::RegisterClient)
                }
                Some(id) => {
                    self.seqs[c as usize] += 1;
                    self.last[c as usize] = Some(command.clone());
                    (tagged(id, self.seqs[c as usize]), command)
                }
            },
            Sender::Retry(c) => match (self.ids[c as usize], &self.last[c as usize]) {
                (Some(id), Some(last)) => (tagged(id, self.seqs[c as usize]), last.clone()),
                _ => (None, command),
            },
            Sender::Stale(c) => match self.ids[c as usize] {
                Some(id) => (
                    tagged(id, self.seqs[c as usize].saturating_sub(1).max(1)),
                    command,
                ),
                None => (None, command),
            },
            // Registrations take namespace indexes, which stay far below.
            Sender::Unregistered(c) => (tagged(ClientId(u64::MAX - c), 1), command),
        };
        Proposal {
            session,
            time_ms: index * 1000,
            command,
        }
    }

    /// A registration gives its client an id; a client whose session
    /// expired registers again before its next request.
    fn observe(&mut self, result: &CommandResult) {
        match result {
            Ok(Outcome::Registered { client }) => {
                if let Some(c) = self.registering.take() {
                    self.ids[c] = Some(*client);
                    self.seqs[c] = 0;
                    self.last[c] = None;
                }
            }
            Err(FsError::SessionExpired { client }) => {
                if let Some(c) = self.ids.iter().position(|id| *id == Some(*client)) {
                    self.ids[c] = None;
                    self.seqs[c] = 0;
                    self.last[c] = None;
                }
            }
            _ => {}
        }
    }
}

/// The log a run of `ops` produces (the model stands in for the results
/// the clients see).
fn replay(ops: &[(Op, Sender)]) -> Vec<(u64, Proposal)> {
    let mut model = Model::new(small_config());
    let mut driver = Driver::new();
    let mut out = Vec::new();
    let mut index = 0;
    for (op, sender) in ops {
        if let Some(command) = to_command(op, &model) {
            index += 3; // indexes need not be consecutive (Raft's own entries)
            let proposal = driver.proposal(index, *sender, command);
            driver.observe(&model.apply(index, &proposal));
            out.push((index, proposal));
        }
    }
    out
}

/// The leader proposes `ForgetGarbage` only for chunks that are garbage in
/// its state. The model reclaims eagerly, so it may see more garbage than a
/// store with deferred reclaim pending; keeping to the store's garbage keeps
/// both in step.
fn only_real_garbage(command: Command, store: &MemStore) -> Command {
    match command {
        Command::ForgetGarbage { hashes } => Command::ForgetGarbage {
            hashes: hashes
                .into_iter()
                .filter(|h| store.get(&keys::garbage(h)).unwrap().is_some())
                .collect(),
        },
        other => other,
    }
}

/// Every chunk hash a command names.
fn mentioned_hashes(command: &Command) -> Vec<ChunkHash> {
    match command {
        Command::WriteCommit(w) => w.chunks.clone(),
        Command::Truncate { cut_chunk, .. } => cut_chunk.iter().copied().collect(),
        Command::Guarded { command, .. } | Command::Placed { command, .. } => {
            mentioned_hashes(command)
        }
        Command::ForgetGarbage { hashes }
        | Command::Condemn { hashes }
        | Command::Pardon { hashes } => hashes.clone(),
        _ => vec![],
    }
}

/// Whether `command` names a chunk the store still references (its file
/// awaits reclaim) that the model, which reclaims eagerly, has released:
/// their collection state may differ until the reclaim is done.
fn names_unreclaimed_chunk(command: &Command, store: &MemStore, model: &Model) -> bool {
    mentioned_hashes(command).iter().any(|hash| {
        !model.refs.contains_key(hash) && store.get(&keys::ref_count(hash)).unwrap().is_some()
    })
}

fn trash_is_empty(store: &MemStore) -> bool {
    store.pairs().all(|(k, _)| k.first() != Some(&keys::TRASH))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, max_shrink_iters: 2000, ..ProptestConfig::default() })]

    /// Random operation sequences from many clients, with retries and
    /// stale requests, give the model's results and the model's tree.
    #[test]
    fn matches_the_reference_model(ops in proptest::collection::vec((any_op_strategy(), sender_strategy()), 1..60)) {
        let ns = Namespace::new(small_config());
        let mut store = MemStore::new();
        let mut model = Model::new(small_config());
        let mut driver = Driver::new();
        let mut index = 0;
        for (op, sender) in &ops {
            if let Some(query) = to_query(op) {
                prop_assert_eq!(ns.query(&store, &query).unwrap(), model.query(&query), "query {:?}", query);
                continue;
            }
            let command = only_real_garbage(to_command(op, &model).unwrap(), &store);
            // A retry resends the client's previous command: check the one
            // that will be applied.
            let mut proposal = driver.proposal(index + 1, *sender, command);
            if names_unreclaimed_chunk(&proposal.command, &store, &model) {
                for _ in 0..1000 {
                    if trash_is_empty(&store) { break; }
                    index += 1;
                    let reclaim = Proposal { session: None, time_ms: 0, command: Command::Reclaim };
                    let _ = ns.apply(&mut store, index, &reclaim).unwrap();
                    let _ = model.apply(index, &reclaim);
                }
            }
            index += 1;
            proposal.time_ms = index * 1000;
            let settled = trash_is_empty(&store);
            let real = ns.apply(&mut store, index, &proposal).unwrap();
            let expected = model.apply(index, &proposal);
            driver.observe(&expected);
            prop_assert_eq!(normalized(&real), normalized(&expected), "proposal {:?}", proposal);
            if settled && trash_is_empty(&store) && proposal.session.is_none() {
                prop_assert_eq!(sorted_freed(&real), sorted_freed(&expected), "freed by {:?}", proposal);
            }
            if let Err(e) = check_invariants(&store).unwrap() {
                return Err(TestCaseError::fail(format!("invariant broken after {proposal:?}: {e}")));
            }
        }
        // Drain deferred reclaim, then the trees and reference counts agree.
        for _ in 0..1000 {
            if trash_is_empty(&store) { break; }
            index += 1;
            let _ = ns.apply(&mut store, index, &Proposal { session: None, time_ms: 0, command: Command::Reclaim }).unwrap();
        }
        prop_assert!(trash_is_empty(&store));
        for (path, entry) in &model.entries {
            let QueryReply::Stat(info) = ns.query(&store, &Query::Stat { path: p(path) }).unwrap().unwrap() else { unreachable!() };
            prop_assert_eq!((info.kind, info.version, info.length), (entry.kind, entry.version, entry.length));
            if entry.kind == EntryKind::File {
                let plan = Query::ReadPlan { path: p(path), offset: 0, length: entry.length };
                let inline = match ns.query(&store, &plan).unwrap().unwrap() {
                    QueryReply::Inline(inline) => Some(inline.content),
                    _ => None,
                };
                prop_assert_eq!(&inline, &entry.inline, "inline content of {}", path);
            }
        }
        let real_refs: Vec<(ChunkHash, u64)> = store.pairs().filter(|(k, _)| k[0] == keys::REF_COUNT)
            .map(|(k, v)| (ChunkHash::from_slice(&k[1..]).unwrap(), stored::decode_value::<stored::RefCount>(k, v).unwrap().0)).collect();
        prop_assert_eq!(real_refs, model.refs.iter().map(|(h, c)| (*h, *c)).collect::<Vec<_>>());
        let real_garbage: Vec<ChunkHash> = store.pairs().filter(|(k, _)| k[0] == keys::GARBAGE).map(|(k, _)| ChunkHash::from_slice(&k[1..]).unwrap()).collect();
        prop_assert_eq!(real_garbage, model.garbage.iter().copied().collect::<Vec<_>>());
        let real_entries = store.pairs().filter(|(k, _)| k[0] == keys::DIR_ENTRY).count();
        prop_assert_eq!(real_entries, model.entries.len());
    }

    /// Two stores fed the same log have the same digest at every step, and
    /// a store applied through a write overlay (as the RocksDB store does)
    /// ends byte-identical to one applied directly.
    #[test]
    fn apply_is_deterministic(ops in proptest::collection::vec((any_op_strategy(), sender_strategy()), 1..60)) {
        let ns = Namespace::new(small_config());
        let mut direct = MemStore::new();
        let mut again = MemStore::new();
        let mut batched = MemStore::new();
        for (index, proposal) in replay(&ops) {
            let a = ns.apply(&mut direct, index, &proposal).unwrap();
            let b = ns.apply(&mut again, index, &proposal).unwrap();
            let mut overlay = Overlay::new(&batched);
            let c = ns.apply(&mut overlay, index, &proposal).unwrap();
            let writes = overlay.into_writes();
            for (k, v) in writes {
                match v { Some(v) => batched.put(k, v).unwrap(), None => batched.delete(&k).unwrap() }
            }
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(&a, &c);
            prop_assert_eq!(header(&direct).unwrap().digest, header(&again).unwrap().digest);
            prop_assert_eq!(header(&direct).unwrap().digest, header(&batched).unwrap().digest);
        }
        prop_assert_eq!(&direct, &batched);
    }

    /// A snapshot of the store restored elsewhere has the same digest and
    /// gives the same results for the rest of the log.
    #[test]
    fn restored_snapshot_continues_identically(
        ops in proptest::collection::vec((any_op_strategy(), sender_strategy()), 1..60),
        cut in 0usize..60,
    ) {
        let ns = Namespace::new(small_config());
        let log = replay(&ops);
        let cut = cut.min(log.len());
        let mut original = MemStore::new();
        for (index, proposal) in &log[..cut] {
            let _ = ns.apply(&mut original, *index, proposal).unwrap();
        }
        let snapshot: Vec<(Vec<u8>, Vec<u8>)> = original.pairs().map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut restored = MemStore::from_pairs(snapshot);
        prop_assert_eq!(header(&restored).unwrap(), header(&original).unwrap());
        for (index, proposal) in &log[cut..] {
            let a = ns.apply(&mut original, *index, proposal).unwrap();
            let b = ns.apply(&mut restored, *index, proposal).unwrap();
            prop_assert_eq!(a, b);
            prop_assert_eq!(header(&original).unwrap().digest, header(&restored).unwrap().digest);
        }
    }
}
