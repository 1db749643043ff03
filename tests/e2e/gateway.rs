//! The HTTP gateway (issue 14, plain HTTP) in front of a real cluster:
//! PUT and GET round trips streamed both ways, ranges, entity tags from
//! versions and the conditional requests built on them, directory
//! listings as HTML and JSON with pages, DELETE, and the status of every
//! failure.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::header;
use reqwest::StatusCode;

use crate::harness::{pattern, wait_for, Cluster};

pub struct Gateway {
    pub child: Child,
    pub url: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn start() -> (Cluster, Gateway) {
    let mut cluster = crate::harness::start(3, &[]).await;
    for _ in 0..3 {
        cluster.spawn_chunk_server(&["--report-interval-ms", "200"]);
    }
    cluster.wait_chunk_servers_up(3).await;
    let addr = format!("127.0.0.1:{}", toastyfs_jepsen::cluster::free_port());
    let child = Command::new(crate::harness::binary())
        .args([
            "gateway",
            "--listen",
            &addr,
            "--meta",
            &cluster.addrs().join(","),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the gateway");
    let gateway = Gateway {
        child,
        url: format!("http://{addr}"),
    };
    let http = reqwest::Client::new();
    wait_for("the gateway to answer", Duration::from_secs(30), || async {
        let answer = http.get(&gateway.url).send().await.ok()?;
        (answer.status() == StatusCode::OK).then_some(())
    })
    .await;
    (cluster, gateway)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_go_in_and_out_with_ranges_tags_and_conditions() {
    let (_cluster, gateway) = start().await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", gateway.url);

    let made = http.put(url("/docs/")).send().await.expect("mkdir");
    assert_eq!(made.status(), StatusCode::CREATED);
    let again = http.put(url("/docs/")).send().await.expect("mkdir again");
    assert_eq!(again.status(), StatusCode::OK);

    let content = pattern(300_000, 1);
    let put = http
        .put(url("/docs/a%20b.bin"))
        .header("x-toastyfs-chunk-size", "65536")
        .body(content.clone())
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), StatusCode::CREATED);
    let tag = put.headers()[header::ETAG]
        .to_str()
        .expect("etag")
        .to_owned();
    assert!(tag.starts_with("\"v"), "{tag}");

    let got = http.get(url("/docs/a%20b.bin")).send().await.expect("get");
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.headers()[header::ETAG], tag.as_str());
    assert_eq!(got.headers()[header::ACCEPT_RANGES], "bytes");
    let modified = got.headers()[header::LAST_MODIFIED]
        .to_str()
        .expect("date")
        .to_owned();
    assert_eq!(got.bytes().await.expect("body").as_ref(), &content[..]);

    let part = http
        .get(url("/docs/a%20b.bin"))
        .header(header::RANGE, "bytes=70000-70009")
        .send()
        .await
        .expect("range");
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()[header::CONTENT_RANGE],
        "bytes 70000-70009/300000"
    );
    assert_eq!(
        part.bytes().await.expect("body").as_ref(),
        &content[70_000..70_010]
    );
    let tail = http
        .get(url("/docs/a%20b.bin"))
        .header(header::RANGE, "bytes=-5")
        .send()
        .await
        .expect("suffix");
    assert_eq!(
        tail.bytes().await.expect("body").as_ref(),
        &content[299_995..]
    );
    let past = http
        .get(url("/docs/a%20b.bin"))
        .header(header::RANGE, "bytes=300000-")
        .send()
        .await
        .expect("past");
    assert_eq!(past.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(past.headers()[header::CONTENT_RANGE], "bytes */300000");

    let cached = http
        .get(url("/docs/a%20b.bin"))
        .header(header::IF_NONE_MATCH, &tag)
        .send()
        .await
        .expect("inm");
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    let since = http
        .get(url("/docs/a%20b.bin"))
        .header(header::IF_MODIFIED_SINCE, &modified)
        .send()
        .await
        .expect("ims");
    assert_eq!(since.status(), StatusCode::NOT_MODIFIED);
    let wrong = http
        .get(url("/docs/a%20b.bin"))
        .header(header::IF_MATCH, "\"v999\"")
        .send()
        .await
        .expect("im");
    assert_eq!(wrong.status(), StatusCode::PRECONDITION_FAILED);
    let head = http
        .head(url("/docs/a%20b.bin"))
        .send()
        .await
        .expect("head");
    assert_eq!(head.headers()[header::CONTENT_LENGTH], "300000");

    // Conditional writes: create-only refused over a file, a replace
    // refused once the version moved on.
    let create_only = http
        .put(url("/docs/a%20b.bin"))
        .header(header::IF_NONE_MATCH, "*")
        .body("x")
        .send()
        .await
        .expect("put");
    assert_eq!(create_only.status(), StatusCode::PRECONDITION_FAILED);
    let replaced = http
        .put(url("/docs/a%20b.bin"))
        .header(header::IF_MATCH, &tag)
        .body("new")
        .send()
        .await
        .expect("put");
    assert_eq!(replaced.status(), StatusCode::NO_CONTENT);
    let stale = http
        .put(url("/docs/a%20b.bin"))
        .header(header::IF_MATCH, &tag)
        .body("newer")
        .send()
        .await
        .expect("put");
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    let text = http
        .get(url("/docs/a%20b.bin"))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    assert_eq!(text, "new");

    let orphan = http
        .put(url("/nowhere/f"))
        .body("x")
        .send()
        .await
        .expect("put");
    assert_eq!(orphan.status(), StatusCode::CONFLICT);
    assert!(orphan
        .text()
        .await
        .expect("text")
        .contains("parent directory"));
    let broken = http.get(url("/bad%zz")).send().await.expect("get");
    assert_eq!(broken.status(), StatusCode::BAD_REQUEST);
    let patch = http
        .patch(url("/docs/a%20b.bin"))
        .send()
        .await
        .expect("patch");
    assert_eq!(patch.status(), StatusCode::METHOD_NOT_ALLOWED);
    let missing = http.get(url("/docs/none")).send().await.expect("get");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.text().await.expect("text").contains("/docs/none"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directories_list_in_pages_and_delete_only_when_asked() {
    let (_cluster, gateway) = start().await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", gateway.url);
    http.put(url("/d/")).send().await.expect("mkdir");
    for name in ["one", "two<script>", "three"] {
        let path = format!("/d/{}", name.replace('<', "%3C").replace('>', "%3E"));
        let put = http
            .put(url(&path))
            .body(name.to_owned())
            .send()
            .await
            .expect("put");
        assert_eq!(put.status(), StatusCode::CREATED, "{name}");
    }
    let page = http
        .get(url("/d/?limit=2"))
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .expect("list");
    let page: serde_json::Value = page.json().await.expect("json");
    assert_eq!(page["entries"].as_array().map(Vec::len), Some(2), "{page}");
    let next = page["next"].as_str().expect("a next page").to_owned();
    let rest: serde_json::Value = http
        .get(url(&format!("/d/?after={next}&limit=2")))
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(rest["entries"].as_array().map(Vec::len), Some(1), "{rest}");
    assert!(rest.get("next").is_none(), "{rest}");

    let html = http.get(url("/d/")).send().await.expect("html");
    assert!(html.headers()[header::CONTENT_TYPE]
        .to_str()
        .expect("type")
        .starts_with("text/html"));
    let html = html.text().await.expect("text");
    assert!(html.contains("href=\"/d/one\""), "{html}");
    assert!(
        html.contains("two&lt;script&gt;") && !html.contains("two<script>"),
        "{html}"
    );

    let refused = http.delete(url("/d")).send().await.expect("delete");
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let deleted = http
        .delete(url("/d?recursive=true"))
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let gone = http.get(url("/d/")).send().await.expect("get");
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);

    // A file of many chunks, streamed in and out.
    let big = pattern(12 << 20, 2);
    let put = http
        .put(url("/big"))
        .body(big.clone())
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), StatusCode::CREATED);
    let got = http
        .get(url("/big"))
        .send()
        .await
        .expect("get")
        .bytes()
        .await
        .expect("body");
    assert!(
        got.as_ref() == big.as_slice(),
        "the 12 MiB file came back different"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_browses_files_and_shows_the_cluster() {
    let (_cluster, gateway) = start().await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", gateway.url);
    let put = http
        .put(url("/page%20test.txt"))
        .body("hello")
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), StatusCode::CREATED);

    let page = http.get(url("/")).send().await.expect("get /");
    let html = page.text().await.expect("html");
    for part in [
        "<script src=\"/ui/app.js\"",
        "id=\"pick\"",
        "id=\"drop\"",
        "<progress id=\"progress\"",
        "data-name=\"page test.txt\"",
        "download=\"page test.txt\"",
        "data-action=\"rename\"",
        "data-action=\"delete\"",
    ] {
        assert!(html.contains(part), "the listing has {part}: {html}");
    }
    for (asset, kind) in [
        ("/ui/app.js", "text/javascript"),
        ("/ui/cluster.js", "text/javascript"),
        ("/ui/style.css", "text/css"),
        ("/ui/cluster", "text/html"),
    ] {
        let answer = http.get(url(asset)).send().await.expect("asset");
        assert_eq!(answer.status(), StatusCode::OK, "{asset}");
        let content_type = answer.headers()[header::CONTENT_TYPE]
            .to_str()
            .expect("type");
        assert!(content_type.starts_with(kind), "{asset}: {content_type}");
    }

    // The cluster view: 3 nodes answering, one leader, one digest per
    // index, and the 3 chunk servers up.
    let view: serde_json::Value = wait_for("the cluster view", Duration::from_secs(30), || async {
        let view: serde_json::Value = http
            .get(url("/ui/cluster.json"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let up = view["chunks"]["servers"]
            .as_array()?
            .iter()
            .filter(|s| s["up"] == true)
            .count();
        (up == 3).then_some(view)
    })
    .await;
    let ids = view["chunks"]["server_ids"].as_array().expect("server ids");
    assert!(
        ids.len() == 3 && ids.iter().all(|id| id.is_string()),
        "ids exact: {view}"
    );
    let nodes = view["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 3, "{view}");
    let statuses: Vec<&serde_json::Value> = nodes.iter().map(|n| &n["status"]).collect();
    assert!(
        statuses.iter().all(|s| s.is_object()),
        "every node answers: {view}"
    );
    let leaders = statuses.iter().filter(|s| s["role"] == "Leader").count();
    assert_eq!(leaders, 1, "{view}");
    for node in &statuses {
        for other in &statuses {
            if node["digest_index"] == other["digest_index"] {
                assert_eq!(node["digest"], other["digest"], "{view}");
            }
        }
    }
}
