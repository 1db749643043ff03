//! Hedged metadata requests: a node that accepts a request and never
//! answers (paused, or cut off after the connection was made) costs a
//! hedge delay, not a request timeout: the same request, with the same
//! session tag, goes to the next address, and the first answer wins.

use std::time::Duration;

mod support;
use support::scripted::{scripted_node, Act};
use support::silent::stalled_node;

use toastyfs_client::Admin;
use toastyfs_proto::namespace::{Command, Outcome, Proposal};
use toastyfs_proto::{ClientId, FsPath, Seq, SessionTag, Version};

fn tagged_mkdir() -> Proposal {
    Proposal {
        session: Some(SessionTag {
            client: ClientId(7),
            seq: Seq(3),
        }),
        time_ms: 0,
        command: Command::CreateDir {
            path: FsPath::new("/d").expect("path"),
            parents: false,
            expect: None,
        },
    }
}

#[tokio::test]
async fn a_stalled_node_costs_a_hedge_delay_and_the_hedge_carries_the_same_tag() {
    let stalled = stalled_node().await;
    let answered = Ok(Outcome::Created {
        version: Version(1),
    });
    let (node, seen) = scripted_node(vec![Act::Answer(answered.clone())]).await;
    // The stalled node first; its attempt would wait the 10 s request
    // timeout without the hedge.
    let admin = Admin::with_budget(vec![stalled, node], Duration::from_secs(30));
    let proposal = tagged_mkdir();
    let outcome = tokio::time::timeout(Duration::from_secs(5), admin.propose(&proposal))
        .await
        .expect("answered by the hedge long before the request timeout");
    assert_eq!(outcome.expect("an answer"), answered);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen, vec![proposal], "the hedge is the same request");
}
