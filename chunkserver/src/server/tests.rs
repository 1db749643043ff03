//! A whole chunk server (`run_on`) against an in-test leader that records
//! reports and answers no orders.

use std::sync::Mutex;

use axum::body::Bytes;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use tempfile::TempDir;
use toastyfs_proto::chunks::{ChunkOrders, ChunkReport};
use toastyfs_proto::hash::ChunkHash;
use toastyfs_proto::record;

use super::*;
use toastyfs_proto::routes::{CHUNK_REPORT as REPORT_PATH, RECORD_CONTENT_TYPE};

type Reports = Arc<Mutex<Vec<ChunkReport>>>;

async fn record_report(State(reports): State<Reports>, body: Bytes) -> impl IntoResponse {
    reports.lock().unwrap().push(record::decode(&body).unwrap());
    let orders = ChunkOrders {
        fetch: Vec::new(),
        drop: Vec::new(),
        full_report_wanted: false,
        revoked_keys: vec![],
    };
    (
        [("content-type", RECORD_CONTENT_TYPE)],
        record::encode(&orders).unwrap(),
    )
}

async fn start_leader() -> (String, Reports, AbortOnDrop) {
    let reports = Reports::default();
    let app = Router::new()
        .route(REPORT_PATH, post(record_report))
        .with_state(Arc::clone(&reports));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, reports, AbortOnDrop(task))
}

async fn report_matching(reports: &Reports, f: impl Fn(&ChunkReport) -> bool) -> ChunkReport {
    let poll = async {
        loop {
            if let Some(r) = reports.lock().unwrap().iter().find(|r| f(r)) {
                return r.clone();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .expect("timed out waiting for a report")
}

/// The server registers with a full report under its stored identity and
/// bound address, serves the API, and reports an upload well before the
/// (long) report interval is up.
#[tokio::test]
async fn a_chunk_server_registers_and_reports_uploads_early() {
    let (meta, reports, _leader) = start_leader().await;
    let dir = TempDir::new().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = ChunkServerConfig::new(dir.path().to_owned(), addr, vec![meta]);
    config.report_interval = Duration::from_secs(30);
    let _server = AbortOnDrop(tokio::spawn(async move {
        run_on(listener, config).await.unwrap();
    }));

    let first = report_matching(&reports, |r| r.full).await;
    assert_eq!(first.addr, addr.to_string());
    assert!(first.added.is_empty());
    assert_eq!(first.server, identity::load_or_create(dir.path()).unwrap());

    let hash = ChunkHash::of(b"hello");
    let response = reqwest::Client::new()
        .put(format!("http://{addr}/chunks/{hash}"))
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    let delta = report_matching(&reports, |r| !r.added.is_empty()).await;
    assert!(!delta.full);
    assert_eq!(delta.added, vec![hash]);
}

/// An unspecified address is never advertised.
#[test]
fn unspecified_addresses_are_not_advertised() {
    let any: SocketAddr = "0.0.0.0:7000".parse().unwrap();
    assert!(matches!(
        advertised(None, any),
        Err(ChunkServerError::BadAdvertise { .. })
    ));
    assert_eq!(advertised(Some("host:7000"), any).unwrap(), "host:7000");
    let local: SocketAddr = "127.0.0.1:7000".parse().unwrap();
    assert_eq!(advertised(None, local).unwrap(), "127.0.0.1:7000");
}

/// A second server on the same directory is refused with a clear error.
#[tokio::test]
async fn a_locked_store_is_a_clear_error() {
    let dir = TempDir::new().unwrap();
    let _held = ChunkStore::open(dir.path(), None).unwrap();
    let config = ChunkServerConfig::new(
        dir.path().to_owned(),
        "127.0.0.1:0".parse().unwrap(),
        vec!["127.0.0.1:1".into()],
    );
    let err = run(config).await.unwrap_err();
    assert!(matches!(err, ChunkServerError::Store { .. }), "{err}");
}
