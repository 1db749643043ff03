//! At-most-once across session expiry, through the public API against a
//! scripted metadata node: a write refused because its session expired is
//! sent again under a new session only when no earlier attempt of it can
//! have been applied; otherwise its outcome is unknown.

use std::time::Duration;

mod support;
use support::scripted::{scripted_node, Act};

use toastyfs_client::{Client, ClientConfig, ClientError};
use toastyfs_proto::namespace::{Command, CommandResult, FsError, Outcome};
use toastyfs_proto::{ClientId, FsPath, Version};

fn client(addr: String) -> Client {
    let mut config = ClientConfig::new(vec![addr]);
    config.retry_for = Duration::from_secs(3);
    config.request_timeout = Duration::from_secs(2);
    Client::new(config)
}

fn created() -> CommandResult {
    Ok(Outcome::Created {
        version: Version(1),
    })
}

fn expired(client: u64) -> CommandResult {
    Err(FsError::SessionExpired {
        client: ClientId(client),
    })
}

fn dir(s: &str) -> FsPath {
    FsPath::new(s).expect("path")
}

/// Issue 11, defect 5: an attempt reached a node and got no answer, the
/// session was then evicted, and the retry is refused as expired. The
/// first attempt may have been applied, so the write is unknown; before
/// the fix the client resent it under a new session (or, at seq 1, gave a
/// definite "refused" error).
#[tokio::test]
async fn an_expiry_after_an_unanswered_attempt_is_unknown() {
    let (addr, seen) = scripted_node(vec![Act::HangUp, Act::Answer(expired(101))]).await;
    let outcome = client(addr).mkdir(&dir("/d"), false).await;
    match outcome {
        Err(e @ ClientError::Unknown(_)) => assert!(!e.is_definite()),
        other => panic!("expected unknown, got {other:?}"),
    }
    let writes = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p.command != Command::RegisterClient)
        .count();
    assert_eq!(
        writes, 2,
        "the write must not be resent under a new session"
    );
}

/// The same after an earlier write of the session succeeded (seq 2).
#[tokio::test]
async fn a_later_write_whose_session_expired_mid_retry_is_unknown() {
    let script = vec![
        Act::Answer(created()),
        Act::HangUp,
        Act::Answer(expired(101)),
        // What a resend under a new session would get.
        Act::Answer(created()),
    ];
    let (addr, _) = scripted_node(script).await;
    let client = client(addr);
    client.mkdir(&dir("/a"), false).await.expect("first write");
    let outcome = client.mkdir(&dir("/b"), false).await;
    assert!(
        matches!(outcome, Err(ClientError::Unknown(_))),
        "{outcome:?}"
    );
}

/// A session that expired while idle refuses the first attempt: the write
/// never ran, so it is sent again under a newly registered session.
#[tokio::test]
async fn an_idle_session_that_expired_is_replaced_and_the_write_sent_again() {
    let script = vec![
        Act::Answer(created()),
        Act::Answer(expired(101)),
        Act::Answer(created()),
    ];
    let (addr, seen) = scripted_node(script).await;
    let client = client(addr);
    client.mkdir(&dir("/a"), false).await.expect("first write");
    client
        .mkdir(&dir("/b"), false)
        .await
        .expect("resent under a new session");
    let tags: Vec<_> = seen
        .lock()
        .unwrap()
        .iter()
        .filter_map(|p| p.session.map(|t| (t.client.0, t.seq.0)))
        .collect();
    assert_eq!(tags, vec![(101, 1), (101, 2), (102, 1)]);
}
