//! `toastyfs dev`: a whole local cluster in one command — 3 metadata nodes
//! and 3 chunk servers as child processes, data and logs under one
//! directory, fixed loopback ports kept in `DIR/dev.json` so a restart
//! finds the same cluster. Writes the CLI's config file so `toastyfs ls`
//! and friends need no flag. Ctrl-C, SIGTERM and SIGHUP stop every child;
//! children also die with their parent (`PR_SET_PDEATHSIG`), so a killed
//! dev leaves nothing running. The directory is locked (`DIR/dev.lock`):
//! a second dev on it says where the first runs and exits.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde_json::json;
use toastyfs_client::Admin;
use toastyfs_proto::auth::Secret;
use toastyfs_proto::routes;

#[derive(Args, Debug)]
pub struct DevArgs {
    /// Where data and logs go (default: ~/.local/share/toastyfs-dev).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// First port: metadata nodes listen on PORT+1..=PORT+3, chunk servers
    /// on PORT+11..=PORT+13, the gateway on PORT+20 [default: 7100]. A
    /// directory keeps the ports it was created with (in `DIR/dev.json`).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=65_515))]
    base_port: Option<u16>,
    /// Serve TLS everywhere, with a CA and certificate made for this
    /// directory (`DIR/tls/`); the CLI config names the CA.
    #[arg(long)]
    tls: bool,
}

struct Layout {
    meta: Vec<(u64, String)>,
    chunk: Vec<String>,
    gateway: String,
}

/// The default first port of a new dev directory.
const DEFAULT_BASE_PORT: u16 = 7100;

fn layout(dir: &Path, base_port: Option<u16>) -> anyhow::Result<Layout> {
    let file = dir.join("dev.json");
    let base = match std::fs::read_to_string(&file) {
        Ok(text) => {
            let v: serde_json::Value =
                serde_json::from_str(&text).context("dev.json is corrupt")?;
            let kept = v["base_port"]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .context("dev.json lacks a valid base_port")?;
            if let Some(asked) = base_port.filter(|asked| *asked != kept) {
                eprintln!(
                    "note: {} keeps base port {kept} (its cluster's addresses); ignoring --base-port {asked}. Use another --dir for a new cluster.",
                    dir.display()
                );
            }
            kept
        }
        Err(_) => {
            let base = base_port.unwrap_or(DEFAULT_BASE_PORT);
            std::fs::write(&file, json!({ "base_port": base }).to_string())?;
            base
        }
    };
    Ok(Layout {
        meta: (1..=3)
            .map(|i| (i, format!("127.0.0.1:{}", base + i as u16)))
            .collect(),
        chunk: (1..=3)
            .map(|i| format!("127.0.0.1:{}", base + 10 + i))
            .collect(),
        gateway: format!("127.0.0.1:{}", base + 20),
    })
}

fn spawn(dir: &Path, name: &str, args: &[String]) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("cannot find the toastyfs binary")?;
    let log_path = dir.join("logs").join(format!("{name}.log"));
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .open(&log_path)?;
    let mut command = Command::new(exe);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: prctl is async-signal-safe and touches no memory of ours; it
    // runs in the child between fork and exec.
    unsafe {
        command.pre_exec(|| {
            // Die with the parent (dev killed with -9 included).
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
        .spawn()
        .with_context(|| format!("cannot start {name}"))
}

/// Holds `DIR/dev.lock` for as long as this dev runs (the kernel releases
/// it when the process ends, however it ends). A second dev on the same
/// directory is refused, naming the process that holds it.
fn lock_dir(dir: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let path = dir.join("dev.lock");
    let mut file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: flock on a file descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let holder = std::fs::read_to_string(&path).unwrap_or_default();
        bail!(
            "a dev cluster is already running on {} (pid {}); stop it first, or pass another --dir",
            dir.display(),
            holder.trim()
        );
    }
    file.set_len(0)?;
    write!(file, "{}", std::process::id())?;
    Ok(file)
}

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let dir = match args.dir {
        Some(dir) => dir,
        None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set; pass --dir")?)
            .join(".local/share/toastyfs-dev"),
    };
    std::fs::create_dir_all(dir.join("logs"))?;
    let dir = dir.canonicalize()?;
    let _lock = lock_dir(&dir)?;
    let layout = layout(&dir, args.base_port)?;
    let meta_addrs: Vec<String> = layout.meta.iter().map(|(_, a)| a.clone()).collect();
    let (secret_file, secret) = cluster_secret(&dir)?;
    let secret_arg = secret_file.display().to_string();
    let tls = if args.tls {
        Some(crate::dev_tls::certificates(&dir)?)
    } else {
        None
    };
    let tls_args = tls.as_ref().map(|t| t.node_args()).unwrap_or_default();
    let mut children: Vec<(String, Child)> = Vec::new();
    for (id, addr) in &layout.meta {
        let args = vec![
            "meta".into(),
            "--id".into(),
            id.to_string(),
            "--listen".into(),
            addr.clone(),
            "--data-dir".into(),
            dir.join(format!("meta{id}")).display().to_string(),
            "--secret-file".into(),
            secret_arg.clone(),
        ];
        let args = [args, tls_args.clone()].concat();
        children.push((
            format!("meta{id}"),
            spawn(&dir, &format!("meta{id}"), &args)?,
        ));
    }
    let client_tls = tls
        .as_ref()
        .map(|t| toastyfs_client::tls::ClientTls::from_ca_file(&t.ca))
        .transpose()?;
    let client = Admin::connect_with(meta_addrs.clone(), Some(secret), client_tls);
    let result = form(&client, &layout).await;
    if let Err(e) = result {
        stop(&mut children);
        return Err(e);
    }
    for (i, addr) in layout.chunk.iter().enumerate() {
        let name = format!("chunk{}", i + 1);
        let args = vec![
            "chunk".into(),
            "--listen".into(),
            addr.clone(),
            "--meta".into(),
            meta_addrs.join(","),
            "--data-dir".into(),
            dir.join(&name).display().to_string(),
            "--secret-file".into(),
            secret_arg.clone(),
        ];
        let args = [args, tls_args.clone()].concat();
        children.push((name.clone(), spawn(&dir, &name, &args)?));
    }
    let args = vec![
        "gateway".into(),
        "--listen".into(),
        layout.gateway.clone(),
        "--meta".into(),
        meta_addrs.join(","),
        "--secret-file".into(),
        secret_arg.clone(),
    ];
    let args = [args, tls_args].concat();
    children.push(("gateway".into(), spawn(&dir, "gateway", &args)?));
    let ca = tls.as_ref().map(|t| t.ca.as_path());
    let config = crate::config::write_meta(&meta_addrs, &secret_file, ca)?;
    print_banner(&dir, &layout, &config, tls.is_some());
    supervise(&mut children).await;
    Ok(())
}

/// The dev cluster's secret, `cluster.secret` in its directory: made on
/// first start, read on every later one.
fn cluster_secret(dir: &Path) -> anyhow::Result<(PathBuf, Secret)> {
    let path = dir.join("cluster.secret");
    let secret = if path.exists() {
        toastyfs_client::secret::load(&path)?
    } else {
        toastyfs_client::secret::create(&path)?
    };
    Ok((path, secret))
}

/// Waits for the metadata nodes and forms the cluster on first start.
async fn form(client: &Admin, layout: &Layout) -> anyhow::Result<()> {
    let started = Instant::now();
    for (_, addr) in &layout.meta {
        while client.status(addr).await.is_err() {
            if started.elapsed() > Duration::from_secs(30) {
                bail!("metadata node {addr} did not start; see its log");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let first = &layout.meta[0].1;
    let status = client.status(first).await?;
    if status.voters.is_empty() {
        client
            .init(first, layout.meta.iter().cloned().collect())
            .await?;
    }
    while client
        .status(first)
        .await
        .map(|s| s.leader.is_none())
        .unwrap_or(true)
    {
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the metadata cluster elected no leader; see the logs");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

fn print_banner(dir: &Path, layout: &Layout, config: &Path, tls: bool) {
    let scheme = if tls { "https" } else { "http" };
    println!(
        "ToastyFS dev cluster running (Ctrl-C stops it; run again to restart on the same data)\n"
    );
    for (id, addr) in &layout.meta {
        println!(
            "  metadata node {id}   {scheme}://{addr}   (status: {}, metrics: {})",
            routes::STATUS,
            routes::METRICS
        );
    }
    for (i, addr) in layout.chunk.iter().enumerate() {
        println!("  chunk server {}    {scheme}://{addr}", i + 1);
    }
    println!(
        "  gateway          {scheme}://{}/   (curl, scripts)",
        layout.gateway
    );
    println!(
        "  WebDAV           {scheme}://{}/dav/   (file managers, davfs2, rclone)",
        layout.gateway
    );
    println!(
        "\n  data and logs: {}\n  CLI config:    {} (the CLI needs no flags)\n",
        dir.display(),
        config.display()
    );
    println!("Try:\n  toastyfs put README.md /hello.md\n  toastyfs ls -l /\n  toastyfs cat /hello.md\n  toastyfs cluster status");
}

async fn supervise(children: &mut [(String, Child)]) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut reported = std::collections::BTreeSet::new();
    let (mut term, mut hangup) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(term), Ok(hangup)) => (term, hangup),
        _ => {
            eprintln!("error: cannot watch for SIGTERM and SIGHUP; stopping the dev cluster");
            stop(children);
            return;
        }
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = hangup.recv() => break,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                for (name, child) in children.iter_mut() {
                    if let Ok(Some(status)) = child.try_wait() {
                        if reported.insert(name.clone()) {
                            eprintln!("warning: {name} exited ({status}); see its log");
                        }
                    }
                }
            }
        }
    }
    eprintln!("stopping the dev cluster...");
    stop(children);
}

fn stop(children: &mut [(String, Child)]) {
    for (_, child) in children.iter_mut() {
        // SIGINT first so the nodes stop cleanly, then make sure. A child
        // that already exited is skipped (no "No such process" noise).
        if let Ok(None) = child.try_wait() {
            if let Ok(pid) = libc::pid_t::try_from(child.id()) {
                // SAFETY: signalling our own child by its pid.
                unsafe { libc::kill(pid, libc::SIGINT) };
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for (_, child) in children.iter_mut() {
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}
