//! The cluster secret (issue 15, item 1): node-to-node requests (Raft
//! RPCs, chunk reports, cluster management) are signed with it, and a
//! node refuses, with 401, one that is unsigned, signed with another
//! secret, stale or replayed. A rogue node or chunk server holding the
//! wrong secret can neither vote, append, lead nor report; a forged
//! append with a higher term changes nothing; a rotation to a new secret
//! keeps the cluster serving.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openraft::raft::AppendEntriesRequest;
use openraft::Vote;
use toastyfs_proto::auth::{self, Secret, SignedParts};
use toastyfs_proto::namespace::Command;
use toastyfs_proto::record;
use toastyfs_proto::routes::{self, RECORD_CONTENT_TYPE};
use toastyfs_proto::FsPath;
use toastyfs_raft_meta::election::{PreVoteRequest, PreVoteRpc};
use toastyfs_raft_meta::network::AppendRequest;

use crate::harness::{wait_for, Cluster};

fn new_secret(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    toastyfs_client::secret::create(&path).expect("write a cluster secret");
    path
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

/// A fresh nonce for each request the test signs by hand.
fn nonce() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "{:016x}{:016x}",
        now_ms(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A record POST to `path` on `addr`, signed under `secret` with the
/// date `date_ms` and `nonce` when given (unsigned otherwise).
fn post(
    addr: &str,
    path: &str,
    body: &[u8],
    signing: Option<(&Secret, u64, &str)>,
) -> reqwest::RequestBuilder {
    let mut request = reqwest::Client::new()
        .post(routes::url(addr, path))
        .header(reqwest::header::CONTENT_TYPE, RECORD_CONTENT_TYPE)
        .body(body.to_vec());
    if let Some((secret, date_ms, nonce)) = signing {
        let digest = auth::body_digest(body);
        let signature = auth::sign(
            secret,
            &SignedParts {
                method: "POST",
                path_and_query: path,
                content_sha256: &digest,
                date_ms,
                nonce,
            },
        );
        request = request
            .header(auth::DATE_HEADER, date_ms.to_string())
            .header(auth::NONCE_HEADER, nonce)
            .header(auth::CONTENT_SHA256_HEADER, digest)
            .header(auth::SIGNATURE_HEADER, signature);
    }
    request
}

/// Sends `request`; its status and error text.
async fn answer(request: reqwest::RequestBuilder) -> (u16, String) {
    let response = request.send().await.expect("the node answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

fn forged_append(term: u64) -> Vec<u8> {
    let rpc = AppendEntriesRequest {
        vote: Vote::new_committed(term, 9),
        prev_log_id: None,
        leader_commit: None,
        entries: Vec::new(),
    };
    record::encode(&AppendRequest::from_owned(rpc)).expect("encode an append")
}

fn pre_vote() -> Vec<u8> {
    record::encode(&PreVoteRpc::from_owned(PreVoteRequest {
        candidate: 9,
        last_log_id: None,
    }))
    .expect("encode a pre-vote")
}

/// Every node's (leader, term).
async fn views(cluster: &Cluster) -> Vec<(Option<u64>, u64)> {
    let mut views = Vec::new();
    for id in cluster.nodes.keys() {
        let status = cluster.status(*id).await.expect("status");
        views.push((status.leader, status.term));
    }
    views
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_to_node_requests_need_the_cluster_secret_once() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let secret_file = new_secret(scratch.path(), "cluster.secret");
    let wrong_file = new_secret(scratch.path(), "wrong.secret");
    let secret = toastyfs_client::secret::load(&secret_file).expect("secret");
    let wrong = toastyfs_client::secret::load(&wrong_file).expect("secret");
    let cluster = Cluster::start_signed(crate::harness::binary(), 3, &secret_file).await;
    let leader = cluster.wait_leader().await;
    let follower = cluster.nodes[&(leader % 3 + 1)].addr.clone();
    let before = views(&cluster).await;

    // A forged append with a much higher term, unsigned or signed with
    // another secret: refused, and no node's term or leader moves.
    let forged = forged_append(before[0].1 + 100);
    for id in 1..=3 {
        let addr = &cluster.nodes[&id].addr;
        let (status, text) = answer(post(addr, routes::RAFT_APPEND, &forged, None)).await;
        assert_eq!(status, 401, "unsigned append: {text}");
        assert!(text.contains("not signed"), "{text}");
        let fresh = nonce();
        let signing = Some((&wrong, now_ms(), fresh.as_str()));
        let (status, text) = answer(post(addr, routes::RAFT_APPEND, &forged, signing)).await;
        assert_eq!(status, 401, "append signed with another secret: {text}");
        assert!(text.contains("does not verify"), "{text}");
    }
    for path in [
        routes::RAFT_VOTE,
        routes::RAFT_PRE_VOTE,
        routes::RAFT_SNAPSHOT,
        routes::RAFT_CAMPAIGN,
        routes::CHUNK_REPORT,
        routes::CLUSTER_INIT,
        routes::CLUSTER_ADD_NODE,
        routes::CLUSTER_REMOVE_NODE,
    ] {
        let (status, text) = answer(post(&follower, path, b"{}", None)).await;
        assert_eq!(status, 401, "{path} unsigned: {text}");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        views(&cluster).await,
        before,
        "a refused request moved a term"
    );

    // Correctly signed: answered, once. The same request again is a
    // replay; one dated a minute ago is stale.
    let body = pre_vote();
    let once = nonce();
    let date = now_ms();
    let (status, text) = answer(post(
        &follower,
        routes::RAFT_PRE_VOTE,
        &body,
        Some((&secret, date, &once)),
    ))
    .await;
    assert_eq!(status, 200, "a signed pre-vote: {text}");
    let (status, text) = answer(post(
        &follower,
        routes::RAFT_PRE_VOTE,
        &body,
        Some((&secret, date, &once)),
    ))
    .await;
    assert_eq!(status, 401, "a replayed pre-vote: {text}");
    assert!(text.contains("replayed"), "{text}");
    let stale = now_ms() - 60_000;
    let (status, text) = answer(post(
        &follower,
        routes::RAFT_PRE_VOTE,
        &body,
        Some((&secret, stale, &nonce())),
    ))
    .await;
    assert_eq!(status, 401, "a stale pre-vote: {text}");
    assert!(text.contains("ms away"), "{text}");
    // A signed body swapped for another: refused.
    let (status, _) = answer(
        post(
            &follower,
            routes::RAFT_PRE_VOTE,
            &body,
            Some((&secret, now_ms(), &nonce())),
        )
        .body(forged.clone()),
    )
    .await;
    assert_eq!(status, 401, "a body swapped under a signature");

    // Refusals are counted, and logged once per source.
    let metrics = reqwest::get(routes::url(&follower, routes::METRICS))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    for reason in [
        "missing",
        "bad_signature",
        "replayed",
        "stale",
        "body_mismatch",
    ] {
        assert!(
            metrics.contains(&format!(
                "toastyfs_meta_auth_refused_total{{reason=\"{reason}\"}}"
            )),
            "no {reason} refusals counted:\n{metrics}"
        );
    }
    let follower_id = leader % 3 + 1;
    let warnings = cluster
        .log_of(follower_id)
        .matches("refused an unauthenticated request")
        .count();
    assert_eq!(warnings, 1, "one warning per source address");

    // The cluster itself, signing with the secret, still serves, and the
    // operator commands need the secret.
    let mkdir = Command::CreateDir {
        path: FsPath::new("/signed").expect("path"),
        parents: true,
        expect: None,
    };
    assert!(cluster.write(mkdir).await.is_ok());
    let unsigned = toastyfs_client::Admin::connect(cluster.addrs());
    let refused = unsigned.remove_node(follower_id).await;
    assert!(
        matches!(
            refused,
            Err(toastyfs_client::ClientError::Rejected { status: 401, .. })
        ),
        "remove-node without the secret: {refused:?}"
    );

    // Signed, but naming an address nobody could dial: refused, saying why.
    let bad = cluster.client().add_node(4, "evil/../x:80").await;
    let why = bad.expect_err("add-node with a bad address").to_string();
    assert!(
        why.contains("neither an IP address nor a DNS name"),
        "{why}"
    );
}

/// A node started with the wrong secret, initialised as a cluster with
/// two real nodes, campaigns against them for seconds: they refuse its
/// pre-votes and votes, so it never leads and the real cluster's term
/// and leader do not move. A chunk server with the wrong secret is never
/// registered; one with the right secret is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rogue_node_or_chunk_server_with_the_wrong_secret_gets_nowhere() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let secret_file = new_secret(scratch.path(), "cluster.secret");
    let wrong_file = new_secret(scratch.path(), "wrong.secret");
    let mut cluster = Cluster::start_signed(crate::harness::binary(), 3, &secret_file).await;
    let before = views(&cluster).await;

    let wrong_arg = wrong_file.display().to_string();
    let mut rogue = Cluster::empty(crate::harness::binary());
    rogue.secret = Some(toastyfs_client::secret::load(&wrong_file).expect("secret"));
    rogue.spawn_new(4, &["--secret-file", &wrong_arg]);
    rogue.wait_healthy(4).await;
    let members = [
        (4, rogue.nodes[&4].addr.clone()),
        (1, cluster.nodes[&1].addr.clone()),
        (2, cluster.nodes[&2].addr.clone()),
    ]
    .into_iter()
    .collect();
    rogue
        .client()
        .init(&rogue.nodes[&4].addr.clone(), members)
        .await
        .expect("the rogue initialises itself");

    let right_arg = secret_file.display().to_string();
    let good =
        cluster.spawn_chunk_server(&["--secret-file", &right_arg, "--report-interval-ms", "200"]);
    let bad =
        cluster.spawn_chunk_server(&["--secret-file", &wrong_arg, "--report-interval-ms", "200"]);
    cluster.wait_chunk_servers_up(1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    assert_eq!(views(&cluster).await, before, "the rogue moved the cluster");
    let rogue_status = rogue.status(4).await.expect("the rogue's status");
    assert_ne!(rogue_status.leader, Some(4), "the rogue leads");
    let chunks = cluster.client().chunk_status().await.expect("chunk status");
    let addrs: Vec<&str> = chunks.servers.iter().map(|s| s.addr.as_str()).collect();
    assert!(
        addrs.contains(&cluster.chunk_servers[&good].addr.as_str()),
        "{addrs:?}"
    );
    assert!(
        !addrs.contains(&cluster.chunk_servers[&bad].addr.as_str()),
        "{addrs:?}"
    );
    assert!(
        cluster.chunk_log_of(bad).contains("401"),
        "the rogue chunk server was not told why: {}",
        cluster.chunk_log_of(bad)
    );
}

/// Rotating the secret, one node at a time, in the three rounds
/// docs/operations.md gives: accept the new one too, sign with the new
/// one, drop the old one. A leader serves throughout, and afterwards
/// the old secret is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_rotation_one_node_at_a_time_keeps_the_cluster_serving() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let old = new_secret(scratch.path(), "old.secret");
    let new = new_secret(scratch.path(), "new.secret");
    let (old_arg, new_arg) = (old.display().to_string(), new.display().to_string());
    let mut cluster = Cluster::start_signed(crate::harness::binary(), 3, &old).await;
    let rounds: [(&[&str], &Path); 3] = [
        (
            &[
                "--secret-file",
                &old_arg,
                "--also-accept-secret-file",
                &new_arg,
            ],
            &old,
        ),
        (
            &[
                "--secret-file",
                &new_arg,
                "--also-accept-secret-file",
                &old_arg,
            ],
            &new,
        ),
        (&["--secret-file", &new_arg], &new),
    ];
    let mut written = 0;
    for (args, signer) in rounds {
        for id in 1..=3 {
            cluster.kill(id);
            let node = cluster.nodes.get_mut(&id).expect("node");
            node.extra_args = args.iter().map(|a| a.to_string()).collect();
            cluster.restart(id).await;
            cluster.wait_leader().await;
            written += 1;
            let mkdir = Command::CreateDir {
                path: FsPath::new(&format!("/rotation/{written}")).expect("path"),
                parents: true,
                expect: None,
            };
            assert!(
                cluster.write(mkdir).await.is_ok(),
                "a write after restarting node {id}"
            );
        }
        cluster.secret = Some(toastyfs_client::secret::load(signer).expect("secret"));
    }
    let converged = cluster.wait_converged().await;
    assert!(!converged.is_empty());
    let stale_secret = toastyfs_client::secret::load(&old).expect("secret");
    let addr = cluster.nodes[&1].addr.clone();
    let (status, text) = wait_for("an answer", Duration::from_secs(5), || async {
        Some(
            answer(post(
                &addr,
                routes::RAFT_PRE_VOTE,
                &pre_vote(),
                Some((&stale_secret, now_ms(), &nonce())),
            ))
            .await,
        )
    })
    .await;
    assert_eq!(status, 401, "the rotated-out secret: {text}");
}

/// The config file `toastyfs dev` writes names that cluster's secret
/// with its addresses. A command given other addresses (`--meta`) must
/// not use that secret: the dev cluster and its secret may be long gone
/// (every CLI command failed with "cannot read the cluster secret" after
/// a dev cluster's directory was deleted). Without `--meta`, the config
/// file's cluster is meant, and a missing secret is said plainly; a
/// management command without the secret is refused with the hint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_dev_config_does_not_break_commands_given_addresses() {
    let home = tempfile::tempdir().expect("temp dir");
    let secret_file = new_secret(home.path(), "cluster.secret");
    let cluster = Cluster::start_signed(crate::harness::binary(), 3, &secret_file).await;
    let config = home.path().join(".config/toastyfs");
    std::fs::create_dir_all(&config).expect("config dir");
    std::fs::write(
        config.join("config"),
        "meta = \"127.0.0.1:1\"\nsecret_file = \"/nonexistent/cluster.secret\"\n",
    )
    .expect("write the config");
    let cli = |args: &[&str]| {
        std::process::Command::new(crate::harness::binary())
            .args(args)
            .env("HOME", home.path())
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("TOASTYFS_META")
            .env_remove("TOASTYFS_SECRET_FILE")
            .output()
            .expect("run the CLI")
    };
    let addrs = cluster.addrs().join(",");
    let real = secret_file.display().to_string();
    let given = cli(&["--meta", &addrs, "mkdir", "/given", "--secret-file", &real]);
    assert!(
        given.status.success(),
        "{}",
        String::from_utf8_lossy(&given.stderr)
    );
    let unsigned = cli(&["--meta", &addrs, "cluster", "remove-node", "3"]);
    assert_eq!(unsigned.status.code(), Some(1), "refused: nothing changed");
    let said = String::from_utf8_lossy(&unsigned.stderr);
    assert!(said.contains("--secret-file FILE"), "{said}");
    let anonymous = cli(&["--meta", &addrs, "mkdir", "/anonymous"]);
    assert_eq!(anonymous.status.code(), Some(1), "refused: nothing changed");
    let from_file = cli(&["ls", "/"]);
    assert_eq!(from_file.status.code(), Some(2));
    let said = String::from_utf8_lossy(&from_file.stderr);
    assert!(said.contains("/nonexistent/cluster.secret"), "{said}");
}
