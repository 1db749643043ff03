//! The file commands of the CLI: ls, mkdir, put, get, cat, rm, mv, stat,
//! truncate, fsck, and where they find the cluster. Errors become one
//! line saying what went wrong and what to do, and an exit code from the
//! one table in [`crate::exit`].

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde::Serialize;
use toastyfs_client::tls::ClientTls;
use toastyfs_client::{Client, ClientConfig, FileHealth};
use toastyfs_proto::auth::Secret;
use toastyfs_proto::client_key::ClientKey;
use toastyfs_proto::namespace::{EntryInfo, EntryKind, MAX_LIST_PAGE};
use toastyfs_proto::FsPath;

use crate::exit::{self, Failure};
use crate::get::GetArgs;
use crate::output::{self, outln, Format, OutputArgs};
use crate::put::PutArgs;

/// Where the cluster is. Global within the command that has it (so
/// `cluster --meta A init` and `cluster init --meta A` both work);
/// `toastyfs --meta A COMMAND` gives the same through
/// [`crate::config::set_given_before_command`].
#[derive(Args, Debug, Clone)]
pub struct Connection {
    /// Metadata node addresses, comma-separated (default: TOASTYFS_META, then
    /// the config file `toastyfs dev` writes).
    #[arg(long, env = "TOASTYFS_META", value_delimiter = ',', global = true)]
    pub meta: Vec<String>,
    /// The cluster secret file, for cluster management of a cluster that
    /// has one (default: TOASTYFS_SECRET_FILE, then the config file
    /// `toastyfs dev` writes).
    #[arg(long, env = "TOASTYFS_SECRET_FILE", global = true)]
    pub secret_file: Option<PathBuf>,
    /// A client key (`toastyfs cluster key create`), for a cluster that
    /// needs one (default: TOASTYFS_KEY, then `key` in the config file).
    #[arg(long, env = "TOASTYFS_KEY", global = true, hide_env_values = true)]
    pub key: Option<String>,
    /// The CA certificate (PEM) of a cluster serving TLS: connect over
    /// https and trust only it (default: TOASTYFS_TLS_CA, then `tls_ca` in
    /// the config file).
    #[arg(long, env = "TOASTYFS_TLS_CA", global = true)]
    pub tls_ca: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum FsCommand {
    /// List a directory (or show one file).
    #[command(
        after_help = "Examples:\n  toastyfs ls -l /docs\n  toastyfs ls -o json / | jq '.[].name'"
    )]
    Ls {
        /// The directory to list.
        #[arg(default_value = "/")]
        path: String,
        /// Long format: kind, size, version, chunk size, modified time, name.
        #[arg(short, long)]
        long: bool,
        /// Also show the temporaries of puts in progress.
        #[arg(short, long)]
        all: bool,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        connection: Connection,
    },
    /// Create a directory.
    Mkdir {
        /// The directory to create.
        path: String,
        /// Create missing parents; an existing directory is fine.
        #[arg(short, long)]
        parents: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Copy local files or directories (or `-` for stdin) into ToastyFS.
    Put {
        #[command(flatten)]
        args: PutArgs,
        #[command(flatten)]
        connection: Connection,
    },
    /// Copy ToastyFS files or directories to local ones (or `-` for stdout).
    Get {
        #[command(flatten)]
        args: GetArgs,
        #[command(flatten)]
        connection: Connection,
    },
    /// Print a file to stdout.
    Cat {
        /// The file to print.
        remote: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Delete a file or an empty directory (`-r`: any directory).
    Rm {
        /// What to delete.
        path: String,
        /// Delete a directory and everything in it.
        #[arg(short, long)]
        recursive: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Rename or move (replaces an existing file or empty directory).
    Mv {
        /// The current path.
        from: String,
        /// The new path.
        to: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Show an entry's kind, size, version, chunk size and modified time.
    Stat {
        /// The file or directory.
        path: String,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        connection: Connection,
    },
    /// Set a file's length (cutting it, or extending it with zeros).
    Truncate {
        /// The file.
        path: String,
        /// Its new length in bytes.
        length: u64,
        #[command(flatten)]
        connection: Connection,
    },
    /// List files whose chunks are lost or below the replication factor;
    /// exit 1 when any is.
    Fsck {
        /// Where to start.
        #[arg(default_value = "/")]
        path: String,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        connection: Connection,
    },
}

impl FsCommand {
    pub fn connection(&self) -> &Connection {
        match self {
            FsCommand::Ls { connection, .. }
            | FsCommand::Mkdir { connection, .. }
            | FsCommand::Put { connection, .. }
            | FsCommand::Get { connection, .. }
            | FsCommand::Cat { connection, .. }
            | FsCommand::Rm { connection, .. }
            | FsCommand::Mv { connection, .. }
            | FsCommand::Stat { connection, .. }
            | FsCommand::Truncate { connection, .. }
            | FsCommand::Fsck { connection, .. } => connection,
        }
    }

    /// Chunks a transfer moves at once.
    fn parallelism(&self) -> Option<u16> {
        match self {
            FsCommand::Put { args, .. } => Some(args.transfer.parallelism),
            FsCommand::Get { args, .. } => Some(args.transfer.parallelism),
            _ => None,
        }
    }
}

pub fn fs_path(s: &str) -> Result<FsPath, Failure> {
    FsPath::new(s).map_err(|e| Failure::usage(format!("bad path {s:?}: {e}")))
}

/// The metadata addresses from the flag, the environment or the config
/// file; none anywhere is exit 3 with the `toastyfs dev` hint.
pub fn addresses(connection: &Connection) -> Result<Vec<String>, Failure> {
    crate::config::resolve(&connection.meta).ok_or_else(exit::no_address)
}

/// The cluster secret to sign with: `--secret-file` (or
/// `TOASTYFS_SECRET_FILE`), else the one the config file names when the
/// addresses come from it too; none otherwise.
pub fn secret(connection: &Connection) -> Result<Option<Secret>, Failure> {
    let Some(path) = connection
        .secret_file
        .clone()
        .or_else(|| crate::config::secret_file_for(&connection.meta))
    else {
        return Ok(None);
    };
    toastyfs_client::secret::load(&path)
        .map(Some)
        .map_err(|e| Failure::usage(e.to_string()))
}

/// The client key to present: `--key` (or `TOASTYFS_KEY`), else the one
/// the config file names when the addresses come from it too.
pub fn key(connection: &Connection) -> Result<Option<ClientKey>, Failure> {
    let Some(text) = connection
        .key
        .clone()
        .or_else(|| crate::config::value_for("key", &connection.meta))
    else {
        return Ok(None);
    };
    text.parse()
        .map(Some)
        .map_err(|e| Failure::usage(format!("the client key: {e}")))
}

/// The CA to trust: `--tls-ca` (or `TOASTYFS_TLS_CA`), else the config
/// file's when the addresses come from it too; none: plain HTTP.
pub fn tls(connection: &Connection) -> Result<Option<ClientTls>, Failure> {
    let Some(path) = connection
        .tls_ca
        .clone()
        .or_else(|| crate::config::value_for("tls_ca", &connection.meta).map(PathBuf::from))
    else {
        return Ok(None);
    };
    ClientTls::from_ca_file(&path)
        .map(Some)
        .map_err(|e| Failure::usage(format!("--tls-ca: {e}")))
}

pub fn client(connection: &Connection, parallelism: Option<u16>) -> Result<Client, Failure> {
    let mut config = ClientConfig::new(addresses(connection)?);
    if let Some(parallelism) = parallelism {
        config.parallelism = usize::from(parallelism.max(1));
    }
    // A person waits at the terminal: an unreachable cluster is reported
    // within about two seconds, not after the library's longer wait.
    config.unreachable_after = crate::limits::CLI_UNREACHABLE_AFTER;
    config.connect_timeout = crate::limits::CLI_CONNECT_TIMEOUT;
    config.secret = secret(connection)?;
    config.key = key(connection)?;
    config.tls = tls(connection)?;
    Ok(Client::new(config))
}

pub async fn run(command: FsCommand) -> Result<(), Failure> {
    let client = client(command.connection(), command.parallelism())?;
    match command {
        FsCommand::Ls {
            path,
            long,
            all,
            output,
            ..
        } => ls(&client, &fs_path(&path)?, long, all, output).await,
        FsCommand::Mkdir { path, parents, .. } => {
            client.mkdir(&fs_path(&path)?, parents).await?;
            Ok(())
        }
        FsCommand::Put { args, .. } => crate::put::run(&client, &args).await,
        FsCommand::Get { args, .. } => crate::get::run(&client, &args).await,
        FsCommand::Cat { remote, .. } => {
            crate::get::to_stdout(&client, &fs_path(&remote)?, 0, None).await
        }
        FsCommand::Rm {
            path, recursive, ..
        } => {
            client.delete(&fs_path(&path)?, recursive, None).await?;
            Ok(())
        }
        FsCommand::Mv { from, to, .. } => {
            client
                .rename(&fs_path(&from)?, &fs_path(&to)?, true, None)
                .await?;
            Ok(())
        }
        FsCommand::Stat { path, output, .. } => stat(&client, &fs_path(&path)?, output).await,
        FsCommand::Truncate { path, length, .. } => {
            client.truncate(&fs_path(&path)?, length, None).await?;
            Ok(())
        }
        FsCommand::Fsck { path, output, .. } => fsck(&client, &fs_path(&path)?, output).await,
    }
}

/// One entry as `-o json` prints it (a stable shape, docs/operations.md).
#[derive(Debug, Serialize)]
pub struct EntryJson {
    pub name: String,
    /// "file" or "dir".
    pub kind: &'static str,
    pub size: u64,
    pub version: u64,
    pub chunk_size: u32,
    pub modified_ms: u64,
    /// The same time as RFC 3339 in UTC.
    pub modified: String,
}

impl From<&EntryInfo> for EntryJson {
    fn from(e: &EntryInfo) -> EntryJson {
        EntryJson {
            name: e.name.clone(),
            kind: kind_name(e.kind),
            size: e.length,
            version: e.version.0,
            chunk_size: e.chunk_size,
            modified_ms: e.mtime_ms,
            modified: i64::try_from(e.mtime_ms)
                .ok()
                .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
                .map(|t| t.to_string())
                .unwrap_or_default(),
        }
    }
}

fn kind_name(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::Dir => "dir",
        EntryKind::File => "file",
    }
}

async fn ls(
    client: &Client,
    path: &FsPath,
    long: bool,
    all: bool,
    output: OutputArgs,
) -> Result<(), Failure> {
    let info = client.stat(path).await?;
    let mut entries = Vec::new();
    if info.kind == EntryKind::File {
        entries.push(info);
    } else {
        let mut after = None;
        loop {
            let page = client.list(path, after, MAX_LIST_PAGE).await?;
            entries.extend(
                page.entries
                    .into_iter()
                    .filter(|e| all || !toastyfs_client::is_upload_temp(&e.name)),
            );
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    if output.format == Format::Json {
        let json: Vec<EntryJson> = entries.iter().map(EntryJson::from).collect();
        return output::print_json(&json);
    }
    if long {
        outln!(
            "{:<4} {:>10} {:>8} {:>10}  {:<26}  NAME",
            "KIND",
            "SIZE",
            "VERSION",
            "CHUNK",
            "MODIFIED"
        );
    }
    for entry in &entries {
        print_entry(entry, long, output);
    }
    Ok(())
}

fn print_entry(entry: &EntryInfo, long: bool, output: OutputArgs) {
    let dir = entry.kind == EntryKind::Dir;
    let name = if dir {
        format!("{}/", entry.name)
    } else {
        entry.name.clone()
    };
    if !long {
        outln!("{name}");
        return;
    }
    let (kind, size, chunk) = if dir {
        ("d", "-".to_owned(), "-".to_owned())
    } else {
        (
            "-",
            output.size(entry.length),
            output.size(u64::from(entry.chunk_size)),
        )
    };
    outln!(
        "{kind:<4} {size:>10} {:>8} {chunk:>10}  {:<26}  {name}",
        entry.version.0,
        output::local_time(entry.mtime_ms)
    );
}

async fn stat(client: &Client, path: &FsPath, output: OutputArgs) -> Result<(), Failure> {
    let info = client.stat(path).await?;
    if output.format == Format::Json {
        #[derive(Serialize)]
        struct StatJson {
            path: String,
            #[serde(flatten)]
            entry: EntryJson,
        }
        return output::print_json(&StatJson {
            path: path.to_string(),
            entry: EntryJson::from(&info),
        });
    }
    let dir = info.kind == EntryKind::Dir;
    outln!("path:       {path}");
    outln!("kind:       {}", if dir { "directory" } else { "file" });
    if !dir {
        outln!(
            "size:       {} ({} bytes)",
            output.size(info.length),
            info.length
        );
        outln!("chunk size: {}", output.size(u64::from(info.chunk_size)));
    }
    outln!("version:    {}", info.version.0);
    outln!("modified:   {}", output::local_time(info.mtime_ms));
    Ok(())
}

/// Every entry under `root`, depth first, puts' temporaries left out; each
/// name checked to be one component (never `..` nor a `/`), so a copy of
/// the tree stays inside its target.
pub async fn tree(client: &Client, root: &FsPath) -> Result<Vec<(FsPath, EntryInfo)>, Failure> {
    let mut found = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        let mut after = None;
        loop {
            let page = client.list(&dir, after, MAX_LIST_PAGE).await?;
            for entry in page.entries {
                if toastyfs_client::is_upload_temp(&entry.name) {
                    continue;
                }
                let path = toastyfs_proto::path::validate_component(&entry.name)
                    .and_then(|()| dir.join(&entry.name))
                    .map_err(|e| Failure::failed(format!("bad name {:?}: {e}", entry.name)))?;
                if entry.kind == EntryKind::Dir {
                    dirs.push(path.clone());
                }
                found.push((path, entry));
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    Ok(found)
}

/// One unhealthy file in `fsck -o json`.
#[derive(Serialize)]
struct UnhealthyJson {
    path: String,
    #[serde(flatten)]
    health: FileHealth,
}

/// Walks `root` and lists every file with a chunk lost, below the
/// replication factor or still pending reports, by the definition `cluster
/// status` counts with. Exit 1 when a chunk is lost or under-replicated.
async fn fsck(client: &Client, root: &FsPath, output: OutputArgs) -> Result<(), Failure> {
    let status = client.admin().chunk_status().await?;
    let rf = status.replication_factor;
    let table = output.format == Format::Table;
    let (mut files, mut unhealthy) = (0u64, Vec::new());
    for (path, entry) in tree(client, root).await? {
        if entry.kind == EntryKind::Dir {
            continue;
        }
        files += 1;
        let health = client.file_health(&path).await?;
        if health.is_healthy() {
            continue;
        }
        if table {
            outln!(
                "{path}: {} of {} chunks below {rf} copies, {} lost, {} pending reports",
                health.under_replicated,
                health.chunks,
                health.lost,
                health.pending
            );
        }
        unhealthy.push(UnhealthyJson {
            path: path.to_string(),
            health,
        });
    }
    let damaged = unhealthy
        .iter()
        .filter(|u| u.health.lost > 0 || u.health.under_replicated > 0)
        .count();
    if table {
        outln!(
            "{files} files checked, {damaged} with lost or under-replicated chunks, {} with chunks pending reports",
            unhealthy.len() - damaged
        );
        outln!(
            "cluster-wide: {} chunks under-replicated, {} lost, {} pending reports (replication factor {rf})",
            status.under_replicated, status.lost, status.pending
        );
    } else {
        #[derive(Serialize)]
        struct FsckJson {
            files_checked: u64,
            replication_factor: u32,
            unhealthy: Vec<UnhealthyJson>,
            under_replicated: u64,
            lost: u64,
            pending: u64,
        }
        output::print_json(&FsckJson {
            files_checked: files,
            replication_factor: rf,
            unhealthy,
            under_replicated: status.under_replicated,
            lost: status.lost,
            pending: status.pending,
        })?;
    }
    if damaged > 0 {
        return Err(Failure::failed(format!(
            "{damaged} files have lost or under-replicated chunks"
        )));
    }
    Ok(())
}
