//! The one `toastyfs` binary: every component is a subcommand.
//!
//! This file only parses flags, sets up logging and hands over to the
//! library crates; the logic lives in `proto/` and `raft-meta/`.

mod cli_cluster;
mod cli_fs;
mod config;
mod dev;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use toastyfs_raft_meta::node::{self, NodeConfig};

/// ToastyFS: a self-hosted distributed file system with a Raft-replicated
/// namespace and content-addressed, replicated chunks.
#[derive(Parser, Debug)]
#[command(name = "toastyfs", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
    #[command(flatten)]
    connection: cli_fs::Connection,
}

#[derive(Subcommand, Debug)]
enum Commands {
    /// Run one metadata node (a member of the Raft cluster).
    Meta(MetaArgs),
    /// Form, inspect and change the cluster.
    Cluster(cli_cluster::ClusterArgs),
    /// Start a whole local cluster (3 metadata nodes, 3 chunk servers).
    Dev(dev::DevArgs),
    #[command(flatten)]
    Fs(cli_fs::FsCommand),
}

#[derive(clap::Args, Debug)]
struct MetaArgs {
    /// This node's Raft id (a positive integer, unique in the cluster).
    #[arg(long)]
    id: u64,
    /// Directory for this node's RocksDB and snapshots.
    #[arg(long)]
    data_dir: PathBuf,
    /// Address to listen on, e.g. 127.0.0.1:7001.
    #[arg(long)]
    listen: SocketAddr,
    /// Address peers and clients use to reach this node (default: --listen).
    #[arg(long)]
    advertise: Option<String>,
    /// Raft heartbeat interval.
    #[arg(long, default_value_t = 100)]
    heartbeat_ms: u64,
    /// Lower bound of the randomised election timeout.
    #[arg(long, default_value_t = 300)]
    election_min_ms: u64,
    /// Upper bound of the randomised election timeout.
    #[arg(long, default_value_t = 600)]
    election_max_ms: u64,
    /// Take a snapshot and compact the log every this many entries.
    #[arg(long, default_value_t = 20_000)]
    snapshot_every: u64,
    /// Log entries kept behind a snapshot for lagging followers.
    #[arg(long, default_value_t = 1_000)]
    keep_logs: u64,
}

/// Servers log at info; CLI commands only warn.
fn default_log_filter(command: &Commands) -> &'static str {
    match command {
        Commands::Meta(_) | Commands::Dev(_) => "info,openraft=warn",
        _ => "warn",
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_log_filter(&cli.command).into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Commands::Meta(args) => run_meta(args).await.map_err(failure),
            Commands::Cluster(args) => cli_cluster::run(args, &cli.connection).await,
            Commands::Dev(args) => dev::run(args).await.map_err(failure),
            Commands::Fs(command) => cli_fs::run(command, &cli.connection).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("toastyfs: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}

fn failure(e: anyhow::Error) -> cli_fs::Failure {
    cli_fs::Failure {
        message: format!("{e:#}"),
        code: 1,
    }
}

async fn run_meta(args: MetaArgs) -> anyhow::Result<()> {
    if args.id == 0 {
        anyhow::bail!("--id must be a positive integer");
    }
    let mut config = NodeConfig::new(args.id, args.data_dir, args.listen);
    if let Some(advertise) = args.advertise {
        config.advertise = advertise;
    }
    config.heartbeat_ms = args.heartbeat_ms;
    config.election_min_ms = args.election_min_ms;
    config.election_max_ms = args.election_max_ms;
    config.snapshot_every = args.snapshot_every;
    config.keep_logs = args.keep_logs;
    tokio::select! {
        result = node::run(config) => result.map_err(Into::into),
        _ = tokio::signal::ctrl_c() => {
            tracing::info!("interrupted; stopping");
            Ok(())
        }
    }
}
