//! The outcome rule end to end through the public API: a write whose
//! connection is cut after the request went out (a leader killed
//! mid-request) is reported as unknown, never as failed; a write no node
//! ever accepted a connection for is a definite failure.

use std::time::Duration;

use tokio::net::TcpListener;

mod support;
use support::scripted::scripted_node;
use support::silent::hangs_up_after_reading;

use toastyfs_client::{Admin, Client, ClientConfig, ClientError};
use toastyfs_proto::namespace::{Command, Proposal};
use toastyfs_proto::{ClientId, FsPath, Seq, SessionTag};

async fn nothing_listens() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    drop(listener);
    addr
}

fn proposal() -> Proposal {
    Proposal {
        session: Some(SessionTag {
            client: ClientId(7),
            seq: Seq(1),
        }),
        time_ms: 0,
        command: Command::CreateDir {
            path: FsPath::new("/d").expect("path"),
            parents: false,
            expect: None,
        },
    }
}

fn client(addrs: Vec<String>) -> Client {
    let mut config = ClientConfig::new(addrs);
    config.retry_for = Duration::from_secs(1);
    config.request_timeout = Duration::from_secs(2);
    Client::new(config)
}

#[tokio::test]
async fn a_write_cut_after_sending_is_unknown_not_failed() {
    let addr = hangs_up_after_reading().await;
    let admin = Admin::with_budget(vec![addr.clone()], Duration::from_secs(1));
    let outcome = admin.propose(&proposal()).await;
    assert!(
        matches!(outcome, Err(ClientError::Unknown(_))),
        "admin proposal: {outcome:?}"
    );
    // The client registers its session first (answered), then its write
    // is cut after it went out.
    let (node, _) = scripted_node(vec![]).await;
    let outcome = client(vec![node])
        .mkdir(&FsPath::new("/d").expect("path"), false)
        .await;
    match outcome {
        Err(e @ ClientError::Unknown(_)) => assert!(!e.is_definite()),
        other => panic!("client mkdir: expected unknown, got {other:?}"),
    }
}

/// A write whose session could not even be registered never went out: a
/// definite failure, though the registration itself may have been applied.
#[tokio::test]
async fn a_write_whose_registration_was_cut_is_a_definite_failure() {
    let addr = hangs_up_after_reading().await;
    let outcome = client(vec![addr])
        .mkdir(&FsPath::new("/d").expect("path"), false)
        .await;
    match outcome {
        Err(e @ ClientError::Unavailable { .. }) => assert!(e.is_definite()),
        other => panic!("expected a definite failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_write_that_reached_one_node_stays_unknown_when_others_refuse_connections() {
    let cut = hangs_up_after_reading().await;
    let down = nothing_listens().await;
    let admin = Admin::with_budget(vec![down, cut], Duration::from_secs(1));
    let outcome = admin.propose(&proposal()).await;
    assert!(
        matches!(outcome, Err(ClientError::Unknown(_))),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_write_no_node_accepted_is_a_definite_failure() {
    let down = nothing_listens().await;
    let admin = Admin::with_budget(vec![down.clone()], Duration::from_secs(1));
    let outcome = admin.propose(&proposal()).await;
    match outcome {
        Err(e @ ClientError::Unavailable { .. }) => assert!(e.is_definite()),
        other => panic!("expected unavailable, got {other:?}"),
    }
    let outcome = client(vec![down])
        .mkdir(&FsPath::new("/d").expect("path"), false)
        .await;
    assert!(
        matches!(outcome, Err(ClientError::Unavailable { .. })),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_read_cut_after_sending_simply_failed() {
    let addr = hangs_up_after_reading().await;
    let outcome = client(vec![addr])
        .stat(&FsPath::new("/d").expect("path"))
        .await;
    assert!(
        matches!(outcome, Err(ClientError::Unavailable { .. })),
        "{outcome:?}"
    );
}
