//! TLS (issue 15, item 3): `toastyfs dev --tls` serves every port over
//! TLS with a CA it made; the CLI (through its config file) and an https
//! client trusting that CA round-trip a file; a client trusting another
//! CA is refused with a message naming the certificate; a plain client on
//! a TLS port and a TLS client on a plain port each get a clear error,
//! not a hang.

use std::process::{Command, Output};
use std::time::Duration;

use crate::dev::{dev, free_base, wait_running, Running};

fn cli(home: &std::path::Path, args: &[&str]) -> Output {
    Command::new(crate::harness::binary())
        .args(args)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("TOASTYFS_META")
        .env_remove("TOASTYFS_SECRET_FILE")
        .env_remove("TOASTYFS_TLS_CA")
        .env_remove("TOASTYFS_KEY")
        .output()
        .expect("run the CLI")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A CA nobody's certificate chains to.
fn foreign_ca(path: &std::path::Path) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).expect("self-signed CA");
    std::fs::write(path, cert.pem()).expect("write the foreign CA");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_tls_round_trips_and_mismatches_fail_clearly() {
    let home = tempfile::tempdir().expect("temp dir");
    let dir = home.path().join("dev");
    std::fs::create_dir_all(&dir).expect("dev dir");
    let base = free_base();
    let mut command = dev(&dir, base);
    command.arg("--tls");
    let _running = Running(command.spawn().expect("start dev --tls"));
    wait_running(&dir, base).await;
    let meta = format!("127.0.0.1:{}", base + 1);
    let gateway = format!("127.0.0.1:{}", base + 20);

    // The CLI finds the addresses, the secret and the CA in its config.
    let local = home.path().join("hello.txt");
    std::fs::write(&local, b"over TLS\n").expect("local file");
    let out = cli(&dir, &["put", &local.display().to_string(), "/hello.txt"]);
    assert!(out.status.success(), "put over TLS: {}", stderr(&out));
    let out = cli(&dir, &["cat", "/hello.txt"]);
    assert!(out.status.success(), "cat over TLS: {}", stderr(&out));
    assert_eq!(out.stdout, b"over TLS\n");

    // An https client trusting the CA reads it through the gateway.
    let ca = std::fs::read(dir.join("tls/ca.pem")).expect("the dev CA");
    let https = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA"))
        .build()
        .expect("https client");
    let body = https
        .get(format!("https://{gateway}/hello.txt"))
        .send()
        .await
        .expect("gateway over TLS")
        .bytes()
        .await
        .expect("body");
    assert_eq!(&body[..], b"over TLS\n");

    // Another CA: refused, saying why.
    let foreign = home.path().join("foreign-ca.pem");
    foreign_ca(&foreign);
    let out = cli(
        &dir,
        &[
            "ls",
            "/",
            "--meta",
            &meta,
            "--tls-ca",
            &foreign.display().to_string(),
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not signed by the CA"),
        "{}",
        stderr(&out)
    );

    // Plain HTTP on a TLS port: a plain answer saying to use https.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let answer = plain
        .get(format!("http://{meta}/v1/status"))
        .send()
        .await
        .expect("a TLS port answers plain HTTP");
    assert_eq!(answer.status(), 400);
    assert!(answer
        .text()
        .await
        .unwrap_or_default()
        .contains("speaks TLS"));

    // TLS on a plain port: the CLI says the server does not speak TLS.
    let plain_cluster = crate::harness::start(1, &[]).await;
    let ca_arg = dir.join("tls/ca.pem").display().to_string();
    let plain_addr = plain_cluster.addrs().join(",");
    let out = cli(
        &dir,
        &["ls", "/", "--meta", &plain_addr, "--tls-ca", &ca_arg],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("does not speak TLS"),
        "{}",
        stderr(&out)
    );
}
