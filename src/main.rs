//! The one `toastyfs` binary: every component is a subcommand.
//!
//! This file only parses flags, sets up logging and hands over to the
//! library crates; the logic lives in `proto/`, `raft-meta/` and
//! `chunkserver/`.

mod cli_backup;
mod cli_cluster;
mod cli_fs;
mod cli_health;
mod config;
mod config_check;
mod config_file;
mod dev;
mod dev_tls;
mod exit;
mod get;
mod limits;
mod output;
mod put;
mod transfer;

use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use toastyfs_client::secret::ClusterKeys;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use toastyfs_chunkserver::scrub::ScrubConfig;
use toastyfs_chunkserver::ChunkServerConfig;
use toastyfs_raft_meta::server::{self, NodeConfig};

/// ToastyFS: a self-hosted distributed file system with a Raft-replicated
/// namespace and content-addressed, replicated chunks.
#[derive(Parser, Debug)]
#[command(
    name = "toastyfs",
    version,
    about,
    after_help = "Start a local cluster with `toastyfs dev`, then try `toastyfs put FILE /` and `toastyfs ls -l /`.\nThe cluster is found through --meta, TOASTYFS_META, or the config file `toastyfs dev` writes."
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
    /// Metadata node addresses for the command, comma-separated (also
    /// accepted after it).
    #[arg(
        long = "meta",
        id = "meta_before_command",
        value_name = "ADDRS",
        value_delimiter = ','
    )]
    meta: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum Commands {
    /// Run one metadata node (a member of the Raft cluster).
    Meta(MetaArgs),
    /// Run one chunk server.
    Chunk(ChunkArgs),
    /// Form, inspect and change the cluster.
    Cluster(cli_cluster::ClusterArgs),
    /// Run an HTTP gateway to the cluster (GET, HEAD, PUT, DELETE).
    Gateway(GatewayArgs),
    /// Check and write server configuration files (TOML).
    Config {
        #[command(subcommand)]
        command: config_check::ConfigCommand,
    },
    /// Start a whole local cluster (3 metadata nodes, 3 chunk servers, a
    /// gateway).
    Dev(dev::DevArgs),
    /// Print this client's version and every metadata node's.
    Version {
        #[command(flatten)]
        connection: cli_fs::Connection,
    },
    /// Print a shell completion script, e.g. `toastyfs completion bash >
    /// ~/.local/share/bash-completion/completions/toastyfs`.
    Completion {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    #[command(flatten)]
    Fs(cli_fs::FsCommand),
}

/// The commands that talk to a cluster, `cluster …` included, end their
/// long help (`--help`) with the exit-code table; the servers and `dev`
/// do not.
fn command() -> clap::Command {
    let servers = ["meta", "chunk", "gateway", "dev", "completion", "config"];
    Cli::command().mut_subcommands(|sub| {
        if servers.contains(&sub.get_name()) {
            sub
        } else {
            with_exit_codes(sub)
        }
    })
}

fn with_exit_codes(command: clap::Command) -> clap::Command {
    let before = command
        .get_after_help()
        .map(|h| format!("{h}\n\n"))
        .unwrap_or_default();
    command
        .after_long_help(format!("{before}{}", exit::TABLE))
        .mut_subcommands(with_exit_codes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        super::command().debug_assert();
    }
}

#[derive(clap::Args, Debug)]
struct MetaArgs {
    /// A TOML file with a [meta] table of these options, named as here with
    /// `_` for `-` (`toastyfs config example meta` prints one); flags and
    /// TOASTYFS_* variables override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// This node's Raft id (a positive integer, unique in the cluster).
    #[arg(long)]
    id: u64,
    #[command(flatten)]
    server: ServerArgs,
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
    /// A chunk server silent for this long is declared down and its chunks
    /// are re-replicated; a new leader also waits this long before ordering
    /// any deletion.
    #[arg(long, default_value_t = 20_000)]
    chunk_server_timeout_ms: u64,
    /// An upload whose write has not committed within this long may be
    /// condemned as garbage (its commit is then refused and redone); a new
    /// leader also waits this long before condemning any.
    #[arg(long, default_value_t = 120_000)]
    placement_ttl_ms: u64,
    /// A put's temporary file nobody has written for this long (an
    /// abandoned put's) is deleted by the leader.
    #[arg(long, default_value_t = 3_600_000, value_parser = clap::value_parser!(u64).range(1..))]
    upload_temp_ttl_ms: u64,
}

/// What a metadata node and a chunk server share: where they keep their
/// data, where they listen and what they advertise, and what they trust.
#[derive(clap::Args, Debug)]
struct ServerArgs {
    /// Directory of this process's data: a metadata node's RocksDB and
    /// snapshots, or a chunk server's chunks and identity.
    #[arg(long)]
    data_dir: PathBuf,
    /// Address to listen on, e.g. 0.0.0.0:7001 (a metadata node) or
    /// 0.0.0.0:7011 (a chunk server).
    #[arg(long)]
    listen: SocketAddr,
    /// Address peers and clients use to reach this process (default:
    /// --listen); needed when listening on every interface.
    #[arg(long)]
    advertise: Option<String>,
    /// The cluster secret (64 hex digits, mode 0600; `toastyfs cluster
    /// secret` makes one): what this process sends its peers is signed
    /// with it, and Raft RPCs, chunk reports, cluster changes and chunk
    /// copies it receives must be too (chunk requests from clients carry a
    /// token minted with it). Without it, nothing is checked.
    #[arg(long, env = "TOASTYFS_SECRET_FILE")]
    secret_file: Option<PathBuf>,
    /// A second secret also accepted (never signed with), for a rotation:
    /// see docs/operations.md, "Rotating the cluster secret".
    #[arg(long, requires = "secret_file")]
    also_accept_secret_file: Option<PathBuf>,
    #[command(flatten)]
    tls: NodeTlsArgs,
}

impl ServerArgs {
    /// What every server checks and loads before it starts: an address
    /// peers can dial, the cluster secret (and a rotation's second one)
    /// and TLS, if given. `config` is the file it was configured from.
    fn trust(
        &self,
        config: Option<&std::path::Path>,
    ) -> anyhow::Result<(Option<ClusterKeys>, Option<toastyfs_client::tls::NodeTls>)> {
        config_check::dialable(self.listen, self.advertise.as_deref())
            .map_err(anyhow::Error::msg)?;
        if let Some(file) = config {
            tracing::info!(file = %file.display(), "configured from a file");
        }
        let keys = self
            .secret_file
            .as_deref()
            .map(|file| ClusterKeys::load(file, self.also_accept_secret_file.as_deref()))
            .transpose()?;
        Ok((keys, self.tls.load()?))
    }
}

/// TLS for a metadata node or chunk server: what it presents, and the CA
/// it trusts when it reaches its peers.
#[derive(clap::Args, Debug)]
struct NodeTlsArgs {
    /// PEM certificate chain to serve TLS with (`toastyfs dev --tls` makes
    /// one); every client and peer must then use https and --tls-ca.
    #[arg(long, requires_all = ["tls_key", "tls_ca"])]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// PEM certificate of the CA the cluster's certificates chain to.
    #[arg(long, env = "TOASTYFS_TLS_CA", requires = "tls_cert")]
    tls_ca: Option<PathBuf>,
}

impl NodeTlsArgs {
    fn load(&self) -> anyhow::Result<Option<toastyfs_client::tls::NodeTls>> {
        let (Some(cert), Some(key), Some(ca)) = (&self.tls_cert, &self.tls_key, &self.tls_ca)
        else {
            return Ok(None);
        };
        Ok(Some(toastyfs_client::tls::NodeTls::from_files(
            cert, key, ca,
        )?))
    }
}

#[derive(clap::Args, Debug)]
struct ChunkArgs {
    /// A TOML file with a [chunk] table of these options, named as here with
    /// `_` for `-` (`toastyfs config example chunk` prints one); flags and
    /// TOASTYFS_* variables override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    server: ServerArgs,
    /// Metadata node addresses, comma-separated (any of them will do).
    #[arg(long, value_delimiter = ',', required = true)]
    meta: Vec<String>,
    /// Most bytes of chunks to store (default: the whole filesystem).
    #[arg(long)]
    capacity_bytes: Option<u64>,
    /// Time between reports to the metadata leader.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    report_interval_ms: u64,
    /// Delay between the leader's order to drop a chunk and its deletion.
    #[arg(long, default_value_t = 1800)]
    drop_grace_secs: u64,
    /// Rate at which the scrubber re-reads and verifies chunks.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..))]
    scrub_rate_mb_per_sec: u64,
    /// Rest between two scrub passes.
    #[arg(long, default_value_t = 3600)]
    scrub_pause_secs: u64,
}

/// Whether the command's `--meta` value came from `TOASTYFS_META` rather
/// than a flag after the command (then a flag before it wins).
fn meta_from_env_only(matches: &clap::ArgMatches) -> bool {
    let mut leaf = matches;
    while let Some((_, sub)) = leaf.subcommand() {
        leaf = sub;
    }
    leaf.ids().any(|id| id.as_str() == "meta")
        && leaf.value_source("meta") == Some(clap::parser::ValueSource::EnvVariable)
}

#[derive(clap::Args, Debug)]
struct GatewayArgs {
    /// A TOML file with a [gateway] table of these options, named as here with
    /// `_` for `-` (`toastyfs config example gateway` prints one); flags and
    /// TOASTYFS_* variables override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080.
    #[arg(long)]
    listen: SocketAddr,
    /// Require every user to present a client key (the password of HTTP
    /// Basic authentication, or a bearer token); read-only keys may only
    /// read. The gateway itself acts with --secret-file or --key.
    #[arg(long)]
    require_keys: bool,
    /// PEM certificate chain to serve https with.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    #[command(flatten)]
    connection: cli_fs::Connection,
}

/// Servers log at info; CLI commands only warn.
fn default_log_filter(command: &Commands) -> &'static str {
    match command {
        Commands::Meta(_) | Commands::Chunk(_) | Commands::Gateway(_) | Commands::Dev(_) => {
            "info,openraft=warn"
        }
        _ => "warn",
    }
}

fn main() -> ExitCode {
    let args = match config_file::expand(std::env::args_os().collect(), &command()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("toastyfs: {e}");
            return ExitCode::from(exit::code::USAGE);
        }
    };
    let matches = command().get_matches_from(args);
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_log_filter(&cli.command).into()),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal: log files (dev's, a service's) stay text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    config::set_given_before_command(cli.meta.clone(), meta_from_env_only(&matches));
    if let Commands::Completion { shell } = cli.command {
        clap_complete::generate(shell, &mut command(), "toastyfs", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Commands::Meta(args) => run_meta(args).await.map_err(exit::from_anyhow),
            Commands::Chunk(args) => run_chunk(args).await.map_err(exit::from_anyhow),
            Commands::Cluster(args) => cli_cluster::run(args).await,
            Commands::Gateway(args) => run_gateway(args).await,
            Commands::Dev(args) => dev::run(args).await.map_err(exit::from_anyhow),
            Commands::Version { connection } => cli_cluster::version(&connection).await,
            Commands::Completion { .. } => Ok(()),
            Commands::Config { command } => config_check::run(command),
            Commands::Fs(command) => cli_fs::run(command).await,
        }
    });
    // Do not wait for blocking reads still in flight (a put from a pipe
    // interrupted with Ctrl-C has a read of standard input pending forever).
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("toastyfs: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}

async fn run_meta(args: MetaArgs) -> anyhow::Result<()> {
    if args.id == 0 {
        anyhow::bail!("--id must be a positive integer");
    }
    let server = args.server;
    let (keys, tls) = server.trust(args.config.as_deref())?;
    let mut config = NodeConfig::new(args.id, server.data_dir, server.listen);
    if let Some(advertise) = server.advertise {
        config.advertise = advertise;
    }
    config.heartbeat_ms = args.heartbeat_ms;
    config.election_min_ms = args.election_min_ms;
    config.election_max_ms = args.election_max_ms;
    config.snapshot_every = args.snapshot_every;
    config.keep_logs = args.keep_logs;
    config.chunks.server_timeout = std::time::Duration::from_millis(args.chunk_server_timeout_ms);
    config.chunks.placement_ttl = std::time::Duration::from_millis(args.placement_ttl_ms);
    config.upload_temp_ttl = Duration::from_millis(args.upload_temp_ttl_ms);
    config.keys = keys;
    config.tls = tls;
    server::run(config, stop_signal()).await.map_err(Into::into)
}

/// Completes at SIGINT (Ctrl-C) or SIGTERM: a planned stop, at which a
/// leading metadata node hands leadership over before it exits.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(terminate) => terminate,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch for SIGTERM; only Ctrl-C stops gracefully");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted"),
        _ = terminate.recv() => tracing::info!("terminated"),
    }
}

async fn run_gateway(args: GatewayArgs) -> Result<(), exit::Failure> {
    // A server: the library's patience (retries across elections), not
    // the CLI's quick give-up.
    if let Some(file) = &args.config {
        tracing::info!(file = %file.display(), "configured from a file");
    }
    let meta = cli_fs::addresses(&args.connection)?;
    let mut config = toastyfs_client::ClientConfig::new(meta.clone());
    config.secret = cli_fs::secret(&args.connection)?;
    config.key = cli_fs::key(&args.connection)?;
    config.tls = cli_fs::tls(&args.connection)?;
    let client = toastyfs_client::Client::new(config);
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(
            toastyfs_client::tls::ServerTls::from_files(cert, key)
                .map_err(|e| exit::Failure::usage(e.to_string()))?,
        ),
        _ => None,
    };
    let users = args
        .require_keys
        .then(|| toastyfs_gateway::users::UserKeys::new(meta));
    toastyfs_gateway::run(args.listen, client, users, tls, stop_signal())
        .await
        .map_err(|e| exit::Failure::failed(e.to_string()))
}

async fn run_chunk(args: ChunkArgs) -> anyhow::Result<()> {
    let server = args.server;
    let (keys, tls) = server.trust(args.config.as_deref())?;
    let mut config = ChunkServerConfig::new(server.data_dir, server.listen, args.meta);
    config.advertise = server.advertise;
    config.capacity_bytes = args.capacity_bytes;
    config.report_interval = Duration::from_millis(args.report_interval_ms);
    config.drop_grace = Duration::from_secs(args.drop_grace_secs);
    config.keys = keys;
    config.tls = tls;
    config.scrub = ScrubConfig {
        rate_bytes_per_sec: NonZeroU64::new(args.scrub_rate_mb_per_sec.saturating_mul(1 << 20))
            .unwrap_or(NonZeroU64::MIN),
        pause_between_passes: Duration::from_secs(args.scrub_pause_secs),
    };
    tokio::select! {
        result = toastyfs_chunkserver::run(config) => result.map_err(Into::into),
        // SIGTERM too (what `systemctl stop` sends): exit 0, not killed.
        _ = stop_signal() => {
            tracing::info!("stopping");
            Ok(())
        }
    }
}
