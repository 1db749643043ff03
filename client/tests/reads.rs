//! A read delivers one version of a file (found by the Jepsen register
//! workload: a read of a 5-byte file overwritten meanwhile by a 6-byte one
//! returned the old 5 bytes and the new sixth). Against a node that
//! answers read plans from a script: a read to the end stops at the end the
//! first plan gave, and a later plan of another version ends the read with
//! an error instead of mixing versions.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use toastyfs_client::{Client, ClientConfig, ClientError};
use toastyfs_proto::namespace::{Query, QueryReply, QueryResult, ReadPlan};
use toastyfs_proto::record;
use toastyfs_proto::routes::RECORD_CONTENT_TYPE;
use toastyfs_proto::{FsPath, Version};

mod support;
use support::http::read_request;

/// A plan of holes only (no chunk to fetch): `length` bytes from `offset`.
fn holes(version: u64, file_length: u64, offset: u64, length: u64) -> ReadPlan {
    let chunk_size = 4096;
    let first_chunk = offset / chunk_size;
    let last_chunk = (offset + length).div_ceil(chunk_size);
    ReadPlan {
        version: Version(version),
        chunk_size: chunk_size as u32,
        file_length,
        offset,
        length,
        first_chunk,
        chunks: vec![None; (last_chunk - first_chunk) as usize],
    }
}

/// Answers each read-plan query with `plans(offset)`; records offsets.
async fn plan_node(
    plans: impl Fn(u64) -> ReadPlan + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<u64>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = asked.clone();
    let plans = Arc::new(plans);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (plans, log) = (plans.clone(), log.clone());
            tokio::spawn(async move {
                while let Some(body) = read_request(&mut stream).await {
                    let Ok(Query::ReadPlan { offset, .. }) = record::decode::<Query>(&body) else {
                        return;
                    };
                    log.lock().unwrap().push(offset);
                    let result: QueryResult = Ok(QueryReply::ReadPlan(plans(offset)));
                    let body = record::encode(&result).expect("encode");
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: {RECORD_CONTENT_TYPE}\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(&body).await;
                }
            });
        }
    });
    (addr, asked)
}

fn client(addr: String) -> Client {
    let mut config = ClientConfig::new(vec![addr]);
    config.retry_for = Duration::from_secs(2);
    Client::new(config)
}

fn path() -> FsPath {
    FsPath::new("/f").expect("path")
}

#[tokio::test]
async fn a_read_to_the_end_stops_where_the_file_ended_when_it_began() {
    // Version 1 is 5 bytes; asked again, the node has version 2, 6 bytes.
    let (addr, asked) = plan_node(|offset| match offset {
        0 => holes(1, 5, 0, 5),
        _ => holes(2, 6, offset, 6 - offset),
    })
    .await;
    let mut out = Vec::new();
    let outcome = client(addr)
        .read_to(&path(), 0, None, &mut out, None)
        .await
        .expect("read");
    assert_eq!(out.len(), 5, "the read mixed two versions");
    assert_eq!(outcome.version, Version(1));
    assert_eq!(*asked.lock().unwrap(), vec![0]);
}

#[tokio::test]
async fn a_file_changed_between_two_plans_ends_the_read_with_an_error() {
    // A file of two plans' worth: the second plan is of a newer version.
    let (addr, _) = plan_node(|offset| match offset {
        0 => holes(1, 10_000, 0, 4096),
        _ => holes(2, 10_000, offset, 10_000 - offset),
    })
    .await;
    let mut out = Vec::new();
    let outcome = client(addr).read_to(&path(), 0, None, &mut out, None).await;
    match outcome {
        Err(e @ ClientError::ChangedDuringRead { .. }) => assert!(e.is_definite()),
        other => panic!("expected ChangedDuringRead, got {other:?}"),
    }
}
