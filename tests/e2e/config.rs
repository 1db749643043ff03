//! Server configuration files (issue 16, item 1): a metadata node, two
//! chunk servers and a gateway start from nothing but `--config FILE`,
//! each file begun from `toastyfs config example ROLE`; `config check`
//! passes them; a flag overrides its file; a broken file is refused, by
//! the check and by the server, with every problem named.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use toastyfs_client::admin::Admin;

use crate::dev::{free_base, Running};
use crate::harness::wait_for;

fn toastyfs(args: &[&str]) -> Command {
    let mut command = Command::new(crate::harness::binary());
    command
        .args(args)
        .env_remove("TOASTYFS_META")
        .env_remove("TOASTYFS_SECRET_FILE")
        .env_remove("TOASTYFS_TLS_CA")
        .env_remove("TOASTYFS_KEY");
    command
}

fn run(args: &[&str]) -> Output {
    toastyfs(args).output().expect("run toastyfs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `example` with `key` set to `value` (its line, commented or not,
/// replaced).
fn set(example: &str, key: &str, value: &str) -> String {
    let prefix = format!("{key} = ");
    let mut found = false;
    let lines: Vec<String> = example
        .lines()
        .map(|line| {
            if line.trim_start_matches("# ").starts_with(&prefix) {
                found = true;
                format!("{key} = {value}")
            } else {
                line.to_owned()
            }
        })
        .collect();
    assert!(found, "the example has no `{key}` line");
    lines.join("\n") + "\n"
}

/// The role's example with `settings` applied, written to `dir/NAME.toml`
/// and passed by `config check`.
fn config_file(dir: &Path, name: &str, role: &str, settings: &[(&str, String)]) -> String {
    let out = run(&["config", "example", role]);
    assert!(
        out.status.success(),
        "config example: {}",
        text(&out.stderr)
    );
    let mut file = text(&out.stdout);
    for (key, value) in settings {
        file = set(&file, key, value);
    }
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, file).expect("write the config file");
    let path = path.display().to_string();
    let out = run(&["config", "check", &path]);
    assert!(
        out.status.success() && text(&out.stdout).contains(": ok"),
        "config check {name}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    path
}

fn quoted(value: impl std::fmt::Display) -> String {
    format!("{:?}", value.to_string())
}

/// Starts `toastyfs ROLE --config FILE EXTRA…`, logging to `dir/NAME.log`.
fn start(dir: &Path, name: &str, role: &str, file: &str, extra: &[&str]) -> Running {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log file");
    let child = toastyfs(&[role, "--config", file])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start a server");
    Running(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_start_from_their_config_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let base = free_base();
    let addr = |offset: u16| format!("127.0.0.1:{}", base + offset);
    let secret = dir.join("cluster.secret");
    let out = run(&["cluster", "secret", &secret.display().to_string()]);
    assert!(
        out.status.success(),
        "cluster secret: {}",
        text(&out.stderr)
    );
    let secret_value = quoted(secret.display());
    let meta_list = format!("[{}]", quoted(addr(1)));

    let meta = config_file(
        dir,
        "meta",
        "meta",
        &[
            ("id", "1".into()),
            ("data_dir", quoted(dir.join("meta").display())),
            ("listen", quoted(addr(1))),
            ("advertise", quoted(addr(1))),
            ("secret_file", secret_value.clone()),
        ],
    );
    let mut servers = vec![start(dir, "meta", "meta", &meta, &[])];
    for i in 1..=2 {
        let chunk = config_file(
            dir,
            &format!("chunk{i}"),
            "chunk",
            &[
                ("data_dir", quoted(dir.join(format!("chunk{i}")).display())),
                ("listen", quoted(addr(10 + i))),
                ("advertise", quoted(addr(10 + i))),
                ("meta", meta_list.clone()),
                ("secret_file", secret_value.clone()),
                ("report_interval_ms", "200".into()),
            ],
        );
        servers.push(start(dir, &format!("chunk{i}"), "chunk", &chunk, &[]));
    }
    let gateway = config_file(
        dir,
        "gateway",
        "gateway",
        &[
            ("listen", quoted(addr(20))),
            ("meta", meta_list.clone()),
            ("secret_file", secret_value.clone()),
        ],
    );
    // A flag beats the file: this gateway listens on the flag's port.
    servers.push(start(
        dir,
        "gateway",
        "gateway",
        &gateway,
        &["--listen", &addr(21)],
    ));

    let voter = format!("1={}", addr(1));
    let secret_path = secret.display().to_string();
    let init = ["cluster", "init", &voter, "--meta", &addr(1)];
    let out = toastyfs(&init)
        .args(["--secret-file", &secret_path])
        .output()
        .expect("cluster init");
    assert!(out.status.success(), "cluster init: {}", text(&out.stderr));

    wait_for("both chunk servers up", Duration::from_secs(60), || {
        let key = toastyfs_client::secret::load(&secret).ok();
        let admin = Admin::connect_with(vec![addr(1)], key, None);
        async move {
            let status = admin.chunk_status().await.ok()?;
            (status.servers.iter().filter(|s| s.up).count() == 2).then_some(())
        }
    })
    .await;

    let http = reqwest::Client::new();
    let url = format!("http://{}/configured.txt", addr(21));
    wait_for(
        "the gateway to store a file",
        Duration::from_secs(30),
        || {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let put = http
                    .put(&url)
                    .body("from config files\n")
                    .send()
                    .await
                    .ok()?;
                put.status().is_success().then_some(())
            }
        },
    )
    .await;
    let body = http
        .get(&url)
        .send()
        .await
        .expect("get through the gateway")
        .text()
        .await
        .expect("body");
    assert_eq!(body, "from config files\n");
    let file_port = std::net::TcpStream::connect(addr(20));
    assert!(
        file_port.is_err(),
        "the gateway listens on its file's port too, though a flag moved it"
    );
    drop(servers);
}

#[test]
fn a_broken_file_is_refused_with_every_problem() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("broken.toml");
    std::fs::write(
        &path,
        "[metta]\nid = 1\n\n[meta]\nid = 1\ndata_dri = \"/x\"\nlisten = \"localhost\"\n",
    )
    .expect("write");
    let path = path.display().to_string();

    let out = run(&["config", "check", &path]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let said = text(&out.stderr);
    assert!(
        said.contains("unknown table [metta] (did you mean `meta`?)"),
        "{said}"
    );
    assert!(
        said.contains("unknown key `data_dri` in [meta] (did you mean `data_dir`?)"),
        "{said}"
    );
    assert!(said.contains("`listen = \"localhost\"`"), "{said}");

    // The server refuses to start from it, naming the same problems.
    let out = run(&["meta", "--config", &path]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let said = text(&out.stderr);
    assert!(said.contains("unknown key `data_dri`"), "{said}");

    let out = run(&[
        "meta",
        "--config",
        &dir.path().join("none.toml").display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot read"),
        "{}",
        text(&out.stderr)
    );
}
