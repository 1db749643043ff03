//! `toastyfs dev` as a process: its directory is locked against a second
//! dev, SIGTERM and SIGHUP stop the whole cluster like Ctrl-C, and a dev killed with
//! SIGKILL takes its children with it.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use toastyfs_client::Admin;

use crate::harness::wait_for;

/// A base port whose 20 ports above it are free right now (each call of
/// this process starts its search elsewhere, so concurrent tests differ).
pub(crate) fn free_base() -> u16 {
    static CALLS: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let start = 20_000 + ((std::process::id() as u16 % 60 + call * 7) % 400) * 100;
    (0..100)
        .map(|i| start.wrapping_add(i * 25))
        .find(|base| (1..=20).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()))
        .expect("a free port range")
}

pub(crate) fn dev(dir: &std::path::Path, base: u16) -> Command {
    let mut command = Command::new(crate::harness::binary());
    command
        .args(["dev", "--dir"])
        .arg(dir)
        .args(["--base-port", &base.to_string()])
        .env("HOME", dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Every port of the dev cluster that still accepts connections.
fn listening(base: u16) -> Vec<u16> {
    [1, 2, 3, 11, 12, 13, 20]
        .into_iter()
        .map(|i| base + i)
        .filter(|port| {
            TcpStream::connect_timeout(&([127, 0, 0, 1], *port).into(), Duration::from_millis(200))
                .is_ok()
        })
        .collect()
}

/// Waits until the dev cluster in `dir` serves, asking with the secret
/// it made there (`cluster.secret`), over TLS if it made a CA.
pub(crate) async fn wait_running(dir: &std::path::Path, base: u16) {
    let meta: Vec<String> = (1..=3).map(|i| format!("127.0.0.1:{}", base + i)).collect();
    let secret_file = dir.join("cluster.secret");
    let ca = dir.join("tls/ca.pem");
    wait_for("the dev cluster to serve", Duration::from_secs(90), || {
        let secret = toastyfs_client::secret::load(&secret_file).ok();
        let tls = toastyfs_client::tls::ClientTls::from_ca_file(&ca).ok();
        let admin = Admin::connect_with(meta.clone(), secret, tls);
        async move {
            let status = admin.chunk_status().await.ok()?;
            (status.servers.iter().filter(|s| s.up).count() == 3).then_some(())
        }
    })
    .await;
}

async fn wait_all_stopped(base: u16, what: &str) {
    wait_for(what, Duration::from_secs(20), || async {
        listening(base).is_empty().then_some(())
    })
    .await;
}

/// Runs `command` for at most `limit`; its exit status (`None`: still
/// running, killed) and what it printed on stderr.
fn run_bounded(
    mut command: Command,
    limit: Duration,
) -> (Option<std::process::ExitStatus>, String) {
    let mut child = command.spawn().expect("start");
    let started = std::time::Instant::now();
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut text = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        use std::io::Read;
        let _ = stderr.read_to_string(&mut text);
    }
    (status, text)
}

/// Waits up to `limit` for `child` to exit.
fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

/// A dev process killed (with its children, by `PR_SET_PDEATHSIG`) when the
/// test ends, whatever happened.
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_locks_its_directory_and_never_leaves_children_behind() {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = free_base();
    let mut first = Running(dev(dir.path(), base).spawn().expect("start dev"));
    wait_running(dir.path(), base).await;

    let (status, text) = run_bounded(dev(dir.path(), base), Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| !s.success()),
        "a second dev on the same directory ran ({status:?}): {text}"
    );
    assert!(text.contains("already running"), "{text}");
    assert!(
        !listening(base).is_empty(),
        "the second dev stopped the first"
    );

    signal(&first.0, "-TERM");
    let exited = wait_exit(&mut first.0, Duration::from_secs(20));
    assert!(exited.is_some(), "dev did not stop on SIGTERM");
    wait_all_stopped(base, "SIGTERM to stop every child").await;

    // The lock went with the process: dev starts again on the same data,
    // on the ports the directory keeps, and says so when asked for others.
    let mut again = Running(dev(dir.path(), base + 1).spawn().expect("restart dev"));
    wait_running(dir.path(), base).await;
    signal(&again.0, "-KILL");
    assert!(wait_exit(&mut again.0, Duration::from_secs(10)).is_some());
    let mut said = String::new();
    if let Some(mut stderr) = again.0.stderr.take() {
        use std::io::Read;
        let _ = stderr.read_to_string(&mut said);
    }
    assert!(
        said.contains(&format!("keeps base port {base}")),
        "no word about the kept port: {said}"
    );
    wait_all_stopped(base, "the children to die with a SIGKILLed dev").await;

    // A closed terminal (SIGHUP) stops it like Ctrl-C.
    let mut hung_up = Running(dev(dir.path(), base).spawn().expect("restart dev"));
    wait_running(dir.path(), base).await;
    signal(&hung_up.0, "-HUP");
    let exited = wait_exit(&mut hung_up.0, Duration::from_secs(20));
    assert!(exited.is_some(), "dev did not stop on SIGHUP");
    wait_all_stopped(base, "SIGHUP to stop every child").await;
}
