//! Client keys and chunk tokens (issue 15, item 2), on a cluster that has
//! a secret: without a credential every client route of every port says
//! 401; a read-only key reads and is refused (403) every change through
//! the CLI, the gateway and the chunk servers; a read-write key changes
//! files but not the cluster; a revoked key is refused by metadata nodes,
//! chunk servers and the gateway within a bounded wait (the time each took
//! is printed).

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use toastyfs_jepsen::cluster::{free_port, wait_for, Cluster};
use toastyfs_proto::chunk_token::TOKEN_HEADER;
use toastyfs_proto::chunks::LocateRequest;
use toastyfs_proto::client_key::{Access, ClientKey};
use toastyfs_proto::namespace::{Query, QueryReply};
use toastyfs_proto::routes::{self, RECORD_CONTENT_TYPE};
use toastyfs_proto::{record, ChunkHash, FsPath};

/// Runs the CLI against `cluster` presenting `key` (none: no credential).
fn cli(cluster: &Cluster, home: &Path, key: Option<&ClientKey>, args: &[&str]) -> Output {
    let mut command = Command::new(crate::harness::binary());
    command
        .args(args)
        .arg("--meta")
        .arg(cluster.addrs().join(","))
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("TOASTYFS_SECRET_FILE")
        .env_remove("TOASTYFS_META");
    match key {
        Some(key) => command.env("TOASTYFS_KEY", key.to_string()),
        None => command.env_remove("TOASTYFS_KEY"),
    };
    command.output().expect("run the CLI")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The command failed with exit 1 and said `needle`.
fn refused(out: &Output, needle: &str, what: &str) {
    assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(out));
    assert!(stderr(out).contains(needle), "{what}: {}", stderr(out));
}

/// POSTs a record to a metadata node presenting `key`.
async fn post_record(
    addr: &str,
    path: &str,
    body: Vec<u8>,
    key: Option<&ClientKey>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(routes::url(addr, path))
        .header(reqwest::header::CONTENT_TYPE, RECORD_CONTENT_TYPE)
        .body(body);
    if let Some(key) = key {
        request = request.bearer_auth(key.to_string());
    }
    request.send().await.expect("the node answers")
}

/// A chunk download with `token` (none: no credential); its status.
async fn get_chunk(addr: &str, hash: &ChunkHash, token: Option<&str>) -> u16 {
    let mut request = reqwest::Client::new().get(routes::url(addr, &routes::chunk(hash)));
    if let Some(token) = token {
        request = request.header(TOKEN_HEADER, token);
    }
    request
        .send()
        .await
        .expect("the chunk server answers")
        .status()
        .as_u16()
}

/// The first chunk of `path`, read with the harness's secret.
async fn first_chunk(cluster: &Cluster, path: &str) -> ChunkHash {
    let query = Query::ReadPlan {
        path: FsPath::new(path).expect("path"),
        offset: 0,
        length: 1,
    };
    match cluster.read(query).await {
        Ok(QueryReply::ReadPlan(plan)) => plan.chunks[0].expect("a stored chunk"),
        other => panic!("read plan: {other:?}"),
    }
}

/// Waits until `check` says refused; how long it took.
async fn until_refused<F, Fut>(what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    wait_for(what, Duration::from_secs(10), || {
        let refused = check();
        async move { refused.await.then_some(()) }
    })
    .await;
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_gate_every_port_and_a_revoked_key_is_refused_everywhere() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let secret_file = scratch.path().join("cluster.secret");
    toastyfs_client::secret::create(&secret_file).expect("secret");
    let secret_arg = secret_file.display().to_string();
    let mut cluster = Cluster::start_signed(crate::harness::binary(), 3, &secret_file).await;
    let chunk_args = ["--secret-file", &secret_arg, "--report-interval-ms", "200"];
    let servers: Vec<u64> = (0..3)
        .map(|_| cluster.spawn_chunk_server(&chunk_args))
        .collect();
    cluster.wait_chunk_servers_up(3).await;
    let admin = cluster.client();
    let rw = admin
        .create_key("app", Access::ReadWrite)
        .await
        .expect("rw key");
    let ro = admin
        .create_key("reader", Access::ReadOnly)
        .await
        .expect("ro key");
    let home = scratch.path();

    // No credential: the CLI is told what it needs; every node and every
    // chunk server says 401; health stays open.
    refused(
        &cli(&cluster, home, None, &["ls", "/"]),
        "needs a credential",
        "ls without a key",
    );
    let query = record::encode(&Query::Settings).expect("encode");
    for addr in cluster.addrs() {
        let status = post_record(&addr, routes::READ, query.clone(), None)
            .await
            .status();
        assert_eq!(status, 401, "read without a key on {addr}");
        let bad = ClientKey {
            secret: [0; 32],
            ..rw.clone()
        };
        let status = post_record(&addr, routes::READ, query.clone(), Some(&bad))
            .await
            .status();
        assert_eq!(status, 401, "read with a wrong secret on {addr}");
    }

    // The read-write key writes; the read-only key reads it.
    let local = scratch.path().join("data");
    std::fs::write(&local, vec![7u8; 100_000]).expect("write local file");
    let local_arg = local.display().to_string();
    let out = cli(&cluster, home, Some(&rw), &["put", &local_arg, "/f"]);
    assert!(out.status.success(), "put with rw: {}", stderr(&out));
    let out = cli(&cluster, home, Some(&ro), &["cat", "/f"]);
    assert!(out.status.success(), "cat with ro: {}", stderr(&out));
    assert_eq!(out.stdout, vec![7u8; 100_000]);

    // The read-only key changes nothing, through any command; the
    // read-write key changes no cluster setting and manages no keys.
    for args in [
        &["put", &local_arg, "/g"][..],
        &["rm", "/f"],
        &["mkdir", "/d"],
        &["mv", "/f", "/h"],
        &["cluster", "set-min-copies", "2"],
    ] {
        refused(
            &cli(&cluster, home, Some(&ro), args),
            "read-only",
            &format!("{args:?} with ro"),
        );
    }
    refused(
        &cli(
            &cluster,
            home,
            Some(&rw),
            &["cluster", "set-min-copies", "2"],
        ),
        "cluster secret",
        "set-min-copies with rw",
    );
    refused(
        &cli(&cluster, home, Some(&rw), &["cluster", "key", "list"]),
        "cluster secret",
        "key list with rw",
    );
    let out = cli(&cluster, home, Some(&ro), &["stat", "/f"]);
    assert!(
        out.status.success(),
        "the file is still there: {}",
        stderr(&out)
    );

    // Chunk servers: nothing without a token; a read token reads but
    // cannot upload.
    let hash = first_chunk(&cluster, "/f").await;
    let locate = record::encode(&LocateRequest { hashes: vec![hash] }).expect("encode");
    let response = post_record(
        &cluster.addrs()[0],
        routes::CHUNK_LOCATE,
        locate.clone(),
        Some(&ro),
    )
    .await;
    assert_eq!(response.status(), 200);
    let token = response
        .headers()
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .expect("a chunk token with the locate answer")
        .to_owned();
    for n in &servers {
        let addr = cluster.chunk_servers[n].addr.clone();
        assert_eq!(
            get_chunk(&addr, &hash, None).await,
            401,
            "chunk without a token on {addr}"
        );
        let status = reqwest::get(routes::url(&addr, routes::CHUNK_SERVER_STATUS))
            .await
            .expect("status")
            .status();
        assert_eq!(status, 401, "chunk server status without a token on {addr}");
        let health = reqwest::get(routes::url(&addr, routes::HEALTH))
            .await
            .expect("health");
        assert_eq!(health.status(), 200);
    }
    let holder = cluster.chunk_servers[&servers[0]].addr.clone();
    let holders: Vec<String> = servers
        .iter()
        .map(|n| cluster.chunk_servers[n].addr.clone())
        .collect();
    let mut readable = 0;
    for addr in &holders {
        match get_chunk(addr, &hash, Some(&token)).await {
            200 => readable += 1,
            404 => {}
            other => panic!("chunk with a read token on {addr}: {other}"),
        }
    }
    assert!(
        readable >= 1,
        "no holder served the chunk with a read token"
    );
    let upload = reqwest::Client::new()
        .put(routes::url(&holder, &routes::chunk(&ChunkHash::of(b"x"))))
        .header(TOKEN_HEADER, &token)
        .body(b"x".to_vec())
        .send()
        .await
        .expect("upload")
        .status();
    assert_eq!(upload, 403, "upload with a read token");

    // A gateway that requires users' keys.
    let gateway_addr = format!("127.0.0.1:{}", free_port());
    let mut gateway = GatewayProcess::spawn(&cluster, &gateway_addr, &secret_arg, home);
    let url = format!("http://{gateway_addr}/f");
    let http = reqwest::Client::new();
    wait_for("the gateway", Duration::from_secs(20), || {
        let request = http.get(&url).basic_auth("ro", Some(ro.to_string()));
        async move {
            request
                .send()
                .await
                .ok()
                .filter(|r| r.status() == 200)
                .map(|_| ())
        }
    })
    .await;
    let anonymous = http.get(&url).send().await.expect("gateway");
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers().contains_key("www-authenticate"));
    let put = |key: &ClientKey| {
        http.put(format!("http://{gateway_addr}/via-gateway"))
            .bearer_auth(key.to_string())
            .body("hello")
            .send()
    };
    assert_eq!(
        put(&ro).await.expect("put").status(),
        403,
        "gateway put with ro"
    );
    assert!(
        put(&rw).await.expect("put").status().is_success(),
        "gateway put with rw"
    );

    // Revoke the read-only key: every port refuses it.
    admin.revoke_key(ro.id).await.expect("revoke");
    let started = Instant::now();
    for addr in cluster.addrs() {
        let took = until_refused(&format!("{addr} refuses the revoked key"), || {
            let query = query.clone();
            let addr = addr.clone();
            let ro = ro.clone();
            async move {
                post_record(&addr, routes::READ, query, Some(&ro))
                    .await
                    .status()
                    == 401
            }
        })
        .await;
        println!("metadata node {addr} refused the revoked key after {took:?}");
    }
    for addr in &holders {
        let took = until_refused(&format!("{addr} refuses the revoked key's token"), || {
            let token = token.clone();
            let addr = addr.clone();
            async move { get_chunk(&addr, &hash, Some(&token)).await == 401 }
        })
        .await;
        println!("chunk server {addr} refused the revoked key's token after {took:?}");
    }
    let took = until_refused("the gateway refuses the revoked key", || {
        let request = http.get(&url).basic_auth("ro", Some(ro.to_string()));
        async move { request.send().await.is_ok_and(|r| r.status() == 401) }
    })
    .await;
    println!(
        "the gateway refused the revoked key after {took:?}; all within {:?} of the revocation",
        started.elapsed()
    );
    refused(
        &cli(&cluster, home, Some(&ro), &["cat", "/f"]),
        "revoked",
        "cat with a revoked key",
    );
    let out = cli(&cluster, home, Some(&rw), &["cat", "/f"]);
    assert!(
        out.status.success(),
        "the other key still works: {}",
        stderr(&out)
    );
    gateway.stop();
}

/// A gateway process, killed on drop.
struct GatewayProcess(std::process::Child);

impl GatewayProcess {
    fn spawn(cluster: &Cluster, addr: &str, secret: &str, home: &Path) -> GatewayProcess {
        let log = std::fs::File::create(home.join("gateway.log")).expect("gateway log");
        let child = Command::new(crate::harness::binary())
            .args([
                "gateway",
                "--listen",
                addr,
                "--require-keys",
                "--secret-file",
                secret,
            ])
            .arg("--meta")
            .arg(cluster.addrs().join(","))
            .env("HOME", home)
            .env_remove("TOASTYFS_KEY")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the gateway");
        GatewayProcess(child)
    }

    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
