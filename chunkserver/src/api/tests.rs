//! API tests: requests sent straight into the router with `oneshot`.

use std::fs;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use tempfile::TempDir;
use tower::ServiceExt;

use super::*;

struct Fixture {
    _dir: TempDir,
    store: Arc<ChunkStore>,
    app: Router,
}

fn fixture(capacity_bytes: Option<u64>) -> Fixture {
    let dir = TempDir::new().unwrap();
    let store = Arc::new(ChunkStore::open(dir.path(), capacity_bytes).unwrap());
    let app = router(Arc::clone(&store), None);
    Fixture {
        _dir: dir,
        store,
        app,
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn error(&self) -> String {
        self.json()["error"].as_str().unwrap().to_owned()
    }
}

async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body,
    }
}

fn request(method: &str, uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(body.into())
        .unwrap()
}

async fn upload(app: &Router, bytes: &'static [u8]) -> (ChunkHash, Reply) {
    let hash = ChunkHash::of(bytes);
    (
        hash,
        send(app, request("PUT", &format!("/chunks/{hash}"), bytes)).await,
    )
}

async fn get_range(app: &Router, hash: ChunkHash, range: &str) -> Reply {
    let req = Request::builder()
        .uri(format!("/chunks/{hash}"))
        .header(header::RANGE, range)
        .body(Body::empty())
        .unwrap();
    send(app, req).await
}

/// Upload answers 201 then 200 on repeat; download returns the bytes.
#[tokio::test]
async fn upload_then_download() {
    let f = fixture(None);
    let (hash, reply) = upload(&f.app, b"0123456789").await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.json()["hash"], hash.to_string());
    assert_eq!(upload(&f.app, b"0123456789").await.1.status, StatusCode::OK);
    let reply = send(
        &f.app,
        request("GET", &format!("/chunks/{hash}"), Body::empty()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(&reply.body[..], b"0123456789");
}

/// A body that does not hash to the URL's name, or a malformed name, is 400.
#[tokio::test]
async fn mismatched_or_malformed_hash_is_400() {
    let f = fixture(None);
    let wrong = ChunkHash::of(b"other");
    let reply = send(&f.app, request("PUT", &format!("/chunks/{wrong}"), "body")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.error().contains("hashes to"), "{}", reply.error());
    let reply = send(&f.app, request("PUT", "/chunks/xyz", "body")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.error().contains("malformed chunk hash"));
    assert!(f.store.inventory().is_empty());
}

/// A chunk that is not here is 404 with a JSON error.
#[tokio::test]
async fn absent_chunk_is_404() {
    let f = fixture(None);
    let hash = ChunkHash::of(b"absent");
    let reply = send(
        &f.app,
        request("GET", &format!("/chunks/{hash}"), Body::empty()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.error().contains("not on this server"));
}

/// Ranges answer 206 with Content-Range; unsatisfiable ones 416, malformed 400.
#[tokio::test]
async fn range_downloads() {
    let f = fixture(None);
    let (hash, _) = upload(&f.app, b"0123456789").await;
    let cases = [
        ("bytes=2-4", "234", "bytes 2-4/10"),
        ("bytes=7-", "789", "bytes 7-9/10"),
        ("bytes=-2", "89", "bytes 8-9/10"),
    ];
    for (range, body, content_range) in cases {
        let reply = get_range(&f.app, hash, range).await;
        assert_eq!(reply.status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(&reply.body[..], body.as_bytes());
        assert_eq!(reply.headers[header::CONTENT_RANGE], content_range);
    }
    let reply = get_range(&f.app, hash, "bytes=10-").await;
    assert_eq!(reply.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(reply.headers[header::CONTENT_RANGE], "bytes */10");
    assert_eq!(
        get_range(&f.app, hash, "bytes=0-1,4-5").await.status,
        StatusCode::BAD_REQUEST
    );
}

/// A chunk corrupted on disk answers 410 and is reported lost.
#[tokio::test]
async fn corrupt_chunk_is_410() {
    let f = fixture(None);
    let (hash, _) = upload(&f.app, b"fragile").await;
    fs::write(f.store.chunk_path(hash), b"fragilE").unwrap();
    let reply = send(
        &f.app,
        request("GET", &format!("/chunks/{hash}"), Body::empty()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::GONE);
    assert_eq!(f.store.take_lost(), vec![hash]);
}

fn get_to_verify(hash: ChunkHash) -> Request<Body> {
    Request::builder()
        .uri(format!("/chunks/{hash}"))
        .header(routes::CALLER_VERIFIES_HEADER, "1")
        .body(Body::empty())
        .unwrap()
}

/// A caller that verifies gets the bytes as stored, unhashed; its report
/// of a mismatch makes the server hash the copy, quarantine it (410) and
/// report it lost; an intact copy answers its size.
#[tokio::test]
async fn a_caller_that_verifies_gets_unhashed_bytes_and_reports_bad_ones() {
    let f = fixture(None);
    let (hash, _) = upload(&f.app, b"fragile").await;
    let verify = || request("POST", &format!("/chunks/{hash}/verify"), Body::empty());
    let reply = send(&f.app, verify()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["size_bytes"], 7);
    fs::write(f.store.chunk_path(hash), b"fragilE").unwrap();
    let reply = send(&f.app, get_to_verify(hash)).await;
    assert_eq!(reply.status, StatusCode::OK, "served without hashing");
    assert_eq!(&reply.body[..], b"fragilE");
    assert!(f.store.take_lost().is_empty());
    let reply = send(&f.app, verify()).await;
    assert_eq!(reply.status, StatusCode::GONE);
    assert_eq!(f.store.take_lost(), vec![hash]);
    let reply = send(&f.app, get_to_verify(hash)).await;
    assert_eq!(
        reply.status,
        StatusCode::NOT_FOUND,
        "quarantined copies are not served"
    );
}

/// Without hashing, a copy of another length than was stored is still
/// caught: quarantined and answered 410; a range is always hashed.
#[tokio::test]
async fn a_copy_of_the_wrong_length_is_caught_without_hashing() {
    let f = fixture(None);
    let (hash, _) = upload(&f.app, b"truncated").await;
    fs::write(f.store.chunk_path(hash), b"trunc").unwrap();
    let reply = send(&f.app, get_to_verify(hash)).await;
    assert_eq!(reply.status, StatusCode::GONE);
    assert_eq!(f.store.take_lost(), vec![hash]);
    let (hash, _) = upload(&f.app, b"ranged").await;
    fs::write(f.store.chunk_path(hash), b"rangeD").unwrap();
    let mut ranged = get_to_verify(hash);
    ranged
        .headers_mut()
        .insert(header::RANGE, HeaderValue::from_static("bytes=0-1"));
    assert_eq!(send(&f.app, ranged).await.status, StatusCode::GONE);
}

/// PATCH stores the patched chunk and returns its hash; a missing offset is 400.
#[tokio::test]
async fn patch_returns_the_new_hash() {
    let f = fixture(None);
    let (source, _) = upload(&f.app, b"abcdef").await;
    let reply = send(
        &f.app,
        request("PATCH", &format!("/chunks/{source}?offset=4"), "XYZ"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let new = ChunkHash::of(b"abcdXYZ");
    assert_eq!(reply.json()["hash"], new.to_string());
    assert_eq!(f.store.get(new).unwrap(), b"abcdXYZ");
    let reply = send(&f.app, request("PATCH", &format!("/chunks/{source}"), "X")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.error().contains("query"));
}

/// exists answers per hash, and refuses oversized batches and bad hashes.
#[tokio::test]
async fn exists_reports_presence_and_is_bounded() {
    let f = fixture(None);
    let (here, _) = upload(&f.app, b"here").await;
    let absent = ChunkHash::of(b"absent");
    let body = serde_json::json!({ "hashes": [here.to_string(), absent.to_string()] }).to_string();
    let reply = send(&f.app, request("POST", "/chunks/exists", body)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["present"], serde_json::json!([true, false]));
    let many = vec![here.to_string(); MAX_EXISTS_HASHES + 1];
    let body = serde_json::json!({ "hashes": many }).to_string();
    let reply = send(&f.app, request("POST", "/chunks/exists", body)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.error().contains("at most"));
    let body = serde_json::json!({ "hashes": ["nothex"] }).to_string();
    assert_eq!(
        send(&f.app, request("POST", "/chunks/exists", body))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    let huge = vec![b' '; MAX_EXISTS_BODY_BYTES + 1];
    let reply = send(&f.app, request("POST", "/chunks/exists", huge)).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
}

/// Past the configured capacity an upload is 507.
#[tokio::test]
async fn full_store_is_507() {
    let f = fixture(Some(4));
    let (_, reply) = upload(&f.app, b"12345").await;
    assert_eq!(reply.status, StatusCode::INSUFFICIENT_STORAGE);
    assert!(reply.error().contains("capacity"));
}

/// health and status answer; status reports usage.
#[tokio::test]
async fn health_and_status() {
    let f = fixture(Some(1000));
    upload(&f.app, b"abc").await;
    let reply = send(&f.app, request("GET", "/health", Body::empty())).await;
    assert_eq!(
        (reply.status, &reply.body[..]),
        (StatusCode::OK, &b"ok"[..])
    );
    let reply = send(&f.app, request("GET", "/status", Body::empty())).await;
    let usage = reply.json();
    assert_eq!(
        (usage["chunks"].as_u64(), usage["bytes"].as_u64()),
        (Some(1), Some(3))
    );
    assert_eq!(usage["capacity_bytes"].as_u64(), Some(1000));
    assert!(usage["free_bytes"].as_u64().unwrap() <= 997);
}

/// /metrics is 404 without a handle and Prometheus text with one.
#[tokio::test]
async fn metrics_endpoint() {
    let f = fixture(None);
    assert_eq!(
        send(&f.app, request("GET", "/metrics", Body::empty()))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let handle = crate::metrics::install();
    assert!(handle.is_some(), "no other recorder is installed in tests");
    let app = router(Arc::clone(&f.store), handle);
    upload(&app, b"counted").await;
    crate::metrics::record_healing_copy();
    let reply = send(&app, request("GET", "/metrics", Body::empty())).await;
    assert_eq!(reply.status, StatusCode::OK);
    let text = String::from_utf8(reply.body.to_vec()).unwrap();
    for series in [
        "toastyfs_chunk_uploads_total",
        "toastyfs_chunk_free_bytes",
        "toastyfs_chunk_healing_copies_total",
    ] {
        assert!(text.contains(series), "{series} missing from:\n{text}");
    }
}

/// A body over the chunk size is 413, whether the store or the body limit
/// refuses it.
#[tokio::test]
async fn oversized_upload_is_413() {
    let f = fixture(None);
    let uri = format!("/chunks/{}", ChunkHash::of(b"big"));
    for size in [
        MAX_CHUNK_BYTES as usize + 1,
        MAX_CHUNK_BYTES as usize + BODY_SLACK_BYTES + 1,
    ] {
        let reply = send(&f.app, request("PUT", &uri, vec![0u8; size])).await;
        assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{size} bytes");
        assert!(reply.json()["error"].is_string());
    }
}

/// Files left in the store's temporary directory.
fn temp_files(f: &Fixture) -> usize {
    fs::read_dir(f._dir.path().join("tmp")).unwrap().count()
}

/// A body streamed in pieces, without a length, is stored as it arrives;
/// one past the largest chunk, or cut off, or hashing to another name, is
/// refused and leaves no temporary file.
#[tokio::test]
async fn a_streamed_upload_is_stored_and_a_bad_one_leaves_nothing() {
    let f = fixture(None);
    let pieces: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i; 64 << 10]).collect();
    let whole: Vec<u8> = pieces.concat();
    let hash = ChunkHash::of(&whole);
    let stream = futures::stream::iter(
        pieces
            .into_iter()
            .map(|p| Ok::<_, std::io::Error>(Bytes::from(p))),
    );
    let uri = format!("/chunks/{hash}");
    let reply = send(&f.app, request("PUT", &uri, Body::from_stream(stream))).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(f.store.get(hash).unwrap(), whole);

    let endless = futures::stream::iter(
        (0..(MAX_CHUNK_BYTES >> 20) + 2)
            .map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![1u8; 1 << 20]))),
    );
    let big = format!("/chunks/{}", ChunkHash::of(b"endless"));
    let reply = send(&f.app, request("PUT", &big, Body::from_stream(endless))).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);

    let cut = futures::stream::iter(vec![
        Ok(Bytes::from_static(b"half a body")),
        Err(std::io::Error::other("the client went away")),
    ]);
    let other = format!("/chunks/{}", ChunkHash::of(b"never whole"));
    let reply = send(&f.app, request("PUT", &other, Body::from_stream(cut))).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);

    let reply = send(&f.app, request("PUT", &other, Body::from("something else"))).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        temp_files(&f),
        0,
        "a refused upload left its temporary file"
    );
    assert!(f.store.get(ChunkHash::of(b"never whole")).is_err());
}

/// A store served on a loopback port with a chain link named by its
/// address; the store, the address and the server task.
async fn chained_server() -> (
    TempDir,
    Arc<ChunkStore>,
    String,
    tokio::task::JoinHandle<()>,
) {
    let dir = TempDir::new().unwrap();
    let store = Arc::new(ChunkStore::open(dir.path(), None).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let link = chain_link(&addr);
    let app = chained_router(Arc::clone(&store), None, Some(link));
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (dir, store, addr, task)
}

fn chain_link(advertise: &str) -> ChainLink {
    let transport = toastyfs_client::transport::Transport::new(std::time::Duration::from_secs(10));
    ChainLink::new(transport, advertise.to_owned())
}

fn chained_put(hash: ChunkHash, body: &'static [u8], chain: &str) -> Request<Body> {
    Request::builder()
        .method("PUT")
        .uri(format!("/chunks/{hash}"))
        .header(routes::CHAIN_HEADER, chain)
        .body(Body::from(body))
        .unwrap()
}

/// An upload naming a chain is stored here and streamed down it as it
/// arrives: every server stores it and the answer names each durable
/// copy. A dead link ends the chain with its error; the copies before it
/// stay stored. A malformed chain is refused before anything is stored.
#[tokio::test]
async fn an_upload_goes_down_its_chain_and_names_every_durable_copy() {
    let f = fixture(None);
    let first = chained_router(Arc::clone(&f.store), None, Some(chain_link("first:1")));
    let (_d2, second, second_addr, _t2) = chained_server().await;
    let (_d3, third, third_addr, _t3) = chained_server().await;
    let body: &'static [u8] = b"chained chunk bytes";
    let hash = ChunkHash::of(body);
    let chain = format!("{second_addr},{third_addr}");
    let reply = send(&first, chained_put(hash, body, &chain)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    let answer: UploadReply = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(
        answer.durable,
        vec!["first:1".to_owned(), second_addr.clone(), third_addr]
    );
    assert!(answer.chain_errors.is_empty(), "{answer:?}");
    for store in [&f.store, &second, &third] {
        assert_eq!(store.contains(&[hash]), vec![true]);
    }
    let other: &'static [u8] = b"a chain with a dead link";
    let hash = ChunkHash::of(other);
    let reply = send(
        &first,
        chained_put(hash, other, &format!("{second_addr},127.0.0.1:1")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let answer: UploadReply = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(answer.durable, vec!["first:1".to_owned(), second_addr]);
    assert_eq!(answer.chain_errors.len(), 1, "{answer:?}");
    assert!(
        answer.chain_errors[0].starts_with("127.0.0.1:1"),
        "{answer:?}"
    );
    let bad: &'static [u8] = b"bad chain";
    let refused = send(&first, chained_put(ChunkHash::of(bad), bad, "nowhere")).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(f.store.contains(&[ChunkHash::of(bad)]), vec![false]);
}
