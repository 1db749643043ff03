//! Sync tests: the real loop against a tiny in-test "leader" (an axum
//! server on loopback that records every report and answers scripted
//! orders), and, for fetch orders, a second real chunk server.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use tempfile::TempDir;
use toastyfs_proto::chunks::FetchOrder;
use toastyfs_proto::record;
use toastyfs_proto::routes::{CHUNK_REPORT as REPORT_PATH, RECORD_CONTENT_TYPE};
use tokio::net::TcpListener;

use crate::store::PutOutcome;

use super::*;

const INTERVAL: Duration = Duration::from_millis(50);
const GRACE: Duration = Duration::from_millis(400);
const PATIENCE: Duration = Duration::from_secs(20);

/// What the in-test leader saw and will answer.
struct LeaderState {
    /// Every report, with whether it was answered 200.
    reports: Vec<(ChunkReport, bool)>,
    /// The standing answer.
    answer: ChunkOrders,
    /// Set `full_report_wanted` in the next answer.
    want_full_once: bool,
    /// Index of the report that was answered `full_report_wanted`.
    wanted_at: Option<usize>,
    /// Refuse (503) this many reports.
    refuse: usize,
}

struct Leader {
    addr: String,
    state: Arc<Mutex<LeaderState>>,
    task: JoinHandle<()>,
}

impl Drop for Leader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn no_orders() -> ChunkOrders {
    ChunkOrders {
        fetch: Vec::new(),
        drop: Vec::new(),
        full_report_wanted: false,
        revoked_keys: vec![],
    }
}

async fn serve(app: Router) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, task)
}

async fn start_leader() -> Leader {
    let state = Arc::new(Mutex::new(LeaderState {
        reports: Vec::new(),
        answer: no_orders(),
        want_full_once: false,
        wanted_at: None,
        refuse: 0,
    }));
    let app = Router::new()
        .route(REPORT_PATH, post(take_report))
        .with_state(Arc::clone(&state));
    let (addr, task) = serve(app).await;
    Leader { addr, state, task }
}

async fn take_report(State(state): State<Arc<Mutex<LeaderState>>>, body: Bytes) -> Response {
    let report: ChunkReport = match record::decode(&body) {
        Ok(report) => report,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let mut s = state.lock().unwrap();
    if s.refuse > 0 {
        s.refuse -= 1;
        s.reports.push((report, false));
        let error = serde_json::json!({ "error": "no leader" });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(error)).into_response();
    }
    s.reports.push((report, true));
    let mut answer = s.answer.clone();
    if std::mem::take(&mut s.want_full_once) {
        answer.full_report_wanted = true;
        s.wanted_at = Some(s.reports.len() - 1);
    }
    let body = record::encode(&answer).unwrap();
    ([(CONTENT_TYPE, RECORD_CONTENT_TYPE)], body).into_response()
}

impl Leader {
    fn with<T>(&self, f: impl FnOnce(&mut LeaderState) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// Polls the leader's state until `f` finds something, bounded.
    async fn wait_for<T>(&self, what: &str, mut f: impl FnMut(&LeaderState) -> Option<T>) -> T {
        let poll = async {
            loop {
                if let Some(found) = self.with(|s| f(s)) {
                    return found;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(PATIENCE, poll)
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    }

    /// The first answered report from index `from` on that satisfies `f`.
    async fn report_after(
        &self,
        from: usize,
        what: &str,
        f: impl Fn(&ChunkReport) -> bool,
    ) -> (usize, ChunkReport) {
        self.wait_for(what, |s| {
            s.reports
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, (r, answered))| *answered && f(r))
                .map(|(i, (r, _))| (i, r.clone()))
        })
        .await
    }
}

/// Waits until `f` holds, bounded.
async fn eventually(what: &str, f: impl Fn() -> bool) {
    let poll = async {
        while !f() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(PATIENCE, poll)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

fn store_with(chunks: &[&[u8]]) -> (TempDir, Arc<ChunkStore>) {
    let dir = TempDir::new().unwrap();
    let store = ChunkStore::open(dir.path(), None).unwrap();
    for bytes in chunks {
        store.put(ChunkHash::of(bytes), bytes).unwrap();
    }
    (dir, Arc::new(store))
}

fn config(meta: Vec<String>) -> SyncConfig {
    SyncConfig {
        server: ChunkServerId(7),
        advertise: "127.0.0.1:9".into(),
        meta,
        report_interval: INTERVAL,
        drop_grace: GRACE,
        fetch_parallelism: 2,
        secret: None,
        revoked: None,
        tls: None,
    }
}

/// An address nothing listens on.
async fn dead_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().to_string()
}

fn h(bytes: &[u8]) -> ChunkHash {
    ChunkHash::of(bytes)
}

/// The hashes of `chunks` in inventory (sorted) order.
fn sorted(chunks: &[&[u8]]) -> Vec<ChunkHash> {
    let mut hashes: Vec<ChunkHash> = chunks.iter().map(|c| h(c)).collect();
    hashes.sort();
    hashes
}

/// The first report is full with the inventory; later ones carry the
/// chunks added since; `full_report_wanted` makes the next one full.
#[tokio::test]
async fn reports_full_then_deltas_then_full_on_request() {
    let leader = start_leader().await;
    let (_dir, store) = store_with(&[b"one"]);
    let _sync = spawn(Arc::clone(&store), config(vec![leader.addr.clone()])).unwrap();

    let (_, first) = leader.report_after(0, "the first report", |_| true).await;
    assert!(first.full);
    assert_eq!(first.added, vec![h(b"one")]);
    assert_eq!(first.server, ChunkServerId(7));
    assert_eq!(first.addr, "127.0.0.1:9");
    assert_eq!((first.chunks, first.used_bytes), (1, 3));
    assert!(first.free_bytes > 0);

    store.put(h(b"two"), b"two").unwrap();
    let (i, delta) = leader
        .report_after(1, "a report of the new chunk", |r| !r.added.is_empty())
        .await;
    assert!(!delta.full);
    assert_eq!(delta.added, vec![h(b"two")]);
    assert!(leader.with(|s| s.reports[1..i].iter().all(|(r, _)| !r.full)));

    leader.with(|s| s.want_full_once = true);
    let wanted = leader
        .wait_for("the full_report_wanted answer", |s| s.wanted_at)
        .await;
    let (next, full) = leader
        .report_after(wanted + 1, "the next report", |_| true)
        .await;
    assert_eq!(next, wanted + 1);
    assert!(full.full);
    assert_eq!(full.added, sorted(&[b"one", b"two"]));
}

/// Reports go to whichever node answers; after a refused report the next
/// answered one is full again, with the whole inventory.
#[tokio::test]
async fn a_failed_report_makes_the_next_one_full() {
    let leader = start_leader().await;
    let (_dir, store) = store_with(&[b"one"]);
    let meta = vec![dead_addr().await, leader.addr.clone()];
    let _sync = spawn(Arc::clone(&store), config(meta)).unwrap();
    leader.report_after(0, "the first report", |r| r.full).await;
    leader.report_after(1, "a delta report", |r| !r.full).await;

    leader.with(|s| s.refuse = 2);
    store.put(h(b"two"), b"two").unwrap();
    let last_refused = leader
        .wait_for("two refused reports", |s| {
            let last = s.reports.iter().rposition(|(_, answered)| !answered);
            last.filter(|_| s.refuse == 0)
        })
        .await;
    let (_, next) = leader
        .report_after(last_refused + 1, "an answered report", |_| true)
        .await;
    assert!(next.full, "{next:?}");
    assert_eq!(next.added, sorted(&[b"one", b"two"]));
}

/// An address that accepts connections and never answers (a paused or
/// cut-off node); it listens as long as the returned task runs.
async fn silent_addr() -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (addr, task)
}

/// A node that takes reports and never answers (the leader that was,
/// paused) costs a hedge delay, not the report timeout: the report also
/// goes to the next node (issue 18).
#[tokio::test]
async fn a_silent_node_does_not_hold_the_report() {
    let leader = start_leader().await;
    let (_dir, store) = store_with(&[b"one"]);
    let (silent, _listening) = silent_addr().await;
    let _sync = spawn(
        Arc::clone(&store),
        config(vec![silent, leader.addr.clone()]),
    )
    .unwrap();
    let reported = leader.report_after(0, "a report past the silent node", |r| r.full);
    tokio::time::timeout(crate::limits::REPORT_TIMEOUT / 2, reported)
        .await
        .expect("the report waited on the silent node");
}

/// While the others elect, a paused leader stays silent and the nodes
/// that answer refuse at once (503: no leader known yet). The report must
/// go to them again within the round, not wait out the silent node's
/// report timeout (the soak of c4e254b: 4.4 s of reads finding no chunk
/// holder after a leader pause).
#[tokio::test]
async fn a_node_that_refused_at_once_is_tried_again_while_another_is_silent() {
    let leader = start_leader().await;
    leader.with(|s| s.refuse = 2);
    let (_dir, store) = store_with(&[b"one"]);
    let (silent, _listening) = silent_addr().await;
    let _sync = spawn(
        Arc::clone(&store),
        config(vec![silent, leader.addr.clone()]),
    )
    .unwrap();
    let reported = leader.report_after(0, "an answered report past the silent node", |_| true);
    tokio::time::timeout(crate::limits::REPORT_TIMEOUT / 2, reported)
        .await
        .expect("the report waited on the silent node after the others refused");
}

/// A fetch order copies the chunk from a peer chunk server, skipping a
/// source that is down, and the next report says it was added.
#[tokio::test]
async fn a_fetch_order_copies_a_chunk_from_a_peer() {
    let (_peer_dir, peer_store) = store_with(&[b"three"]);
    let (peer, _peer_task) = serve(crate::api::router(peer_store, None)).await;
    let leader = start_leader().await;
    let order = FetchOrder {
        hash: h(b"three"),
        from: vec![dead_addr().await, peer],
    };
    leader.with(|s| s.answer.fetch = vec![order]);
    let (_dir, store) = store_with(&[]);
    let _sync = spawn(Arc::clone(&store), config(vec![leader.addr.clone()])).unwrap();

    eventually("the copy", || store.contains(&[h(b"three")]) == [true]).await;
    assert_eq!(store.get(h(b"three")).unwrap(), b"three");
    leader
        .report_after(1, "a report of the copy", |r| {
            r.added.contains(&h(b"three"))
        })
        .await;
}

/// A drop order deletes the chunk only after the grace period, and the
/// deletion is reported as lost; a drop the leader withdraws in time keeps
/// its chunk.
#[tokio::test]
async fn a_drop_order_deletes_after_the_grace_period() {
    let leader = start_leader().await;
    leader.with(|s| s.answer.drop = vec![h(b"one"), h(b"two")]);
    let (_dir, store) = store_with(&[b"one", b"two"]);
    let ordered_at = Instant::now();
    let _sync = spawn(Arc::clone(&store), config(vec![leader.addr.clone()])).unwrap();
    leader.report_after(0, "the first report", |_| true).await;
    leader.with(|s| s.answer.drop = vec![h(b"one")]);

    eventually("the deletion", || store.contains(&[h(b"one")]) == [false]).await;
    assert!(ordered_at.elapsed() >= GRACE, "{:?}", ordered_at.elapsed());
    leader
        .report_after(0, "a report of the deletion", |r| {
            r.lost.contains(&h(b"one"))
        })
        .await;
    tokio::time::sleep(GRACE + INTERVAL * 4).await;
    assert_eq!(store.contains(&[h(b"two")]), [true]);
}

/// Without answers (every node refuses) nothing is deleted, however old
/// the drop order.
#[tokio::test]
async fn a_drop_order_is_not_carried_out_without_fresh_answers() {
    let leader = start_leader().await;
    leader.with(|s| s.answer.drop = vec![h(b"one")]);
    let (_dir, store) = store_with(&[b"one"]);
    let _sync = spawn(Arc::clone(&store), config(vec![leader.addr.clone()])).unwrap();
    leader.report_after(0, "the first report", |_| true).await;
    leader.with(|s| s.refuse = usize::MAX);
    tokio::time::sleep(GRACE * 2).await;
    assert_eq!(store.contains(&[h(b"one")]), [true]);
}

/// A report is split into messages of at most `max` hashes; only the first
/// keeps `full`.
#[test]
fn large_reports_are_split() {
    let template = ChunkReport {
        server: ChunkServerId(1),
        addr: "a:1".into(),
        full: false,
        added: Vec::new(),
        lost: Vec::new(),
        chunks: 5,
        used_bytes: 0,
        free_bytes: 0,
        dropping: vec![],
        boot: 0,
        seq: 0,
    };
    let hashes: Vec<ChunkHash> = (0..5u8).map(|i| ChunkHash::of(&[i])).collect();
    let parts = split_report(&template, true, hashes.clone(), vec![hashes[0]], 2);
    let shape: Vec<(bool, usize, usize)> = parts
        .iter()
        .map(|r| (r.full, r.lost.len(), r.added.len()))
        .collect();
    assert_eq!(shape, [(true, 1, 1), (false, 0, 2), (false, 0, 2)]);
    let added: Vec<ChunkHash> = parts.iter().flat_map(|r| r.added.clone()).collect();
    assert_eq!(added, hashes);

    let empty = split_report(&template, false, Vec::new(), Vec::new(), 2);
    assert_eq!(empty.len(), 1);
    assert!(!empty[0].full && empty[0].added.is_empty());
}

/// A chunk uploaded again after its drop was ordered (the client was told
/// "already present") survives the deletion that comes due: acknowledging
/// and deleting are ordered under the store's lock. Before, the deletion
/// ran on the old order and deleted the chunk the client had just been
/// told was stored.
#[test]
fn an_upload_acknowledged_after_the_drop_order_is_never_deleted_by_it() {
    let (_dir, store) = store_with(&[b"wanted again"]);
    let hash = h(b"wanted again");
    let mut drops = DropSchedule::new(Duration::ZERO, Duration::from_secs(3600));
    let sent_at = store.ack_clock();
    drops.update(&[hash], Instant::now(), sent_at);
    assert_eq!(
        store.put(hash, b"wanted again").unwrap(),
        PutOutcome::AlreadyPresent
    );
    let due = drops.due(Instant::now());
    assert_eq!(due, vec![(hash, sent_at)]);
    let deleted = delete_due(&store, &Mutex::new(drops), due);
    assert!(deleted.is_empty(), "deleted {deleted:?}");
    assert_eq!(store.get(hash).unwrap(), b"wanted again");
}

/// A drop order newer than the last acknowledgement is carried out.
#[test]
fn a_drop_ordered_after_the_last_upload_deletes() {
    let (_dir, store) = store_with(&[b"garbage"]);
    let hash = h(b"garbage");
    let mut drops = DropSchedule::new(Duration::ZERO, Duration::from_secs(3600));
    drops.update(&[hash], Instant::now(), store.ack_clock());
    let due = drops.due(Instant::now());
    assert_eq!(delete_due(&store, &Mutex::new(drops), due), vec![hash]);
    assert!(store.inventory().is_empty());
}
