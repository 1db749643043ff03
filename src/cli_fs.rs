//! The file commands of the CLI: ls, mkdir, put, get, cat, rm, mv, stat,
//! truncate, fsck. Errors become one line saying what went wrong and what
//! to do, and an exit code per kind of failure.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};
use toastyfs_client::{Client, ClientConfig, ClientError, Progress, WriteOptions};
use toastyfs_proto::namespace::{EntryKind, FsError, MAX_LIST_PAGE};
use toastyfs_proto::{FsPath, Version};

#[derive(Args, Debug)]
pub struct Connection {
    /// Metadata node addresses, comma-separated (default: TOASTYFS_META, then
    /// the config file `toastyfs dev` writes).
    #[arg(long, env = "TOASTYFS_META", value_delimiter = ',', global = true)]
    pub meta: Vec<String>,
    /// Chunks transferred in parallel.
    #[arg(long, default_value_t = 8, global = true)]
    pub parallelism: usize,
}

#[derive(Subcommand, Debug)]
pub enum FsCommand {
    /// List a directory.
    Ls {
        #[arg(default_value = "/")]
        path: String,
        /// Long format: kind, size, version, chunk size, name.
        #[arg(short, long)]
        long: bool,
        /// Also show the temporaries of puts in progress.
        #[arg(short, long)]
        all: bool,
    },
    /// Create a directory.
    Mkdir {
        path: String,
        /// Create missing parents; an existing directory is fine.
        #[arg(short, long)]
        parents: bool,
    },
    /// Copy a local file (or `-` for stdin) into ToastyFS.
    Put {
        local: String,
        remote: String,
        /// Refuse if REMOTE exists.
        #[arg(long)]
        no_clobber: bool,
        /// Write into the existing file at this byte offset (extends it past
        /// the end; the rest of the file is kept).
        #[arg(long)]
        offset: Option<u64>,
        /// Only if the file's version is V (0: only if it does not exist).
        #[arg(long)]
        if_version: Option<u64>,
        /// Chunk size for a new file, in bytes (4096..=67108864).
        #[arg(long, value_parser = parse_chunk_size)]
        chunk_size: Option<u32>,
    },
    /// Copy a ToastyFS file to a local file (or `-` for stdout).
    Get {
        remote: String,
        local: String,
        #[arg(long, default_value_t = 0)]
        offset: u64,
        #[arg(long)]
        length: Option<u64>,
    },
    /// Print a file to stdout.
    Cat { remote: String },
    /// Delete a file or an empty directory (`-r`: any directory).
    Rm {
        path: String,
        #[arg(short, long)]
        recursive: bool,
    },
    /// Rename or move (replaces an existing file or empty directory).
    Mv { from: String, to: String },
    /// Show an entry's kind, size, version and chunk size.
    Stat { path: String },
    /// Set a file's length.
    Truncate { path: String, length: u64 },
    /// List files whose chunks are lost or below the replication factor.
    Fsck {
        #[arg(default_value = "/")]
        path: String,
    },
}

/// `--chunk-size`: a number in the range every file's chunk size must be
/// in (out of range is a usage error, exit 2, before anything is sent).
fn parse_chunk_size(text: &str) -> Result<u32, String> {
    let size: u32 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of bytes"))?;
    toastyfs_proto::namespace::check_chunk_size(size).map_err(|e| e.to_string())?;
    Ok(size)
}

/// A failure, printed once with advice and mapped to an exit code.
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Failure {
        let (message, code) = match &e {
            ClientError::Refused(FsError::VersionMismatch { .. }) => {
                (format!("{e} (someone else changed it; re-read and retry)"), 1)
            }
            ClientError::Refused(_) | ClientError::Rejected { .. } => (e.to_string(), 1),
            ClientError::Unavailable { .. } => (
                format!("{e}\nIs the cluster running? Start one with `toastyfs dev`, or pass --meta ADDR / set TOASTYFS_META."),
                3,
            ),
            ClientError::Unknown(_) => (format!("{e}\nCheck with `toastyfs stat` before retrying."), 4),
            ClientError::ChunkUnavailable { .. } | ClientError::UploadFailed { .. } => {
                (format!("{e}\nSee `toastyfs cluster status` for chunk servers that are down."), 5)
            }
            ClientError::ChangedDuringRead { .. }
            | ClientError::Protocol(_)
            | ClientError::Io(_) => (e.to_string(), 1),
        };
        Failure { message, code }
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure { message, code: 2 }
    }
}

fn fs_path(s: &str) -> Result<FsPath, Failure> {
    FsPath::new(s).map_err(|e| Failure {
        message: format!("bad path {s:?}: {e}"),
        code: 2,
    })
}

/// No metadata address anywhere: exit 3, like an unreachable cluster.
pub fn no_address() -> Failure {
    Failure {
        message: "no cluster address: pass --meta ADDR[,ADDR...], set TOASTYFS_META, or start a local cluster with `toastyfs dev`".into(),
        code: 3,
    }
}

pub fn client(connection: &Connection) -> Result<Client, Failure> {
    let meta = crate::config::resolve(&connection.meta).ok_or_else(no_address)?;
    let mut config = ClientConfig::new(meta);
    config.parallelism = connection.parallelism.max(1);
    Ok(Client::new(config))
}

/// A bar with the total, rate and time left for a known length; for an
/// unknown one (a put from a pipe), a spinner with the bytes so far and the
/// rate, never a bar whose "total" is just the bytes read.
fn progress_template(total: Option<u64>) -> &'static str {
    match total {
        Some(_) => "{bytes}/{total_bytes} {bytes_per_sec} [{wide_bar}] {eta}",
        None => "{spinner} {bytes} {bytes_per_sec} {elapsed}",
    }
}

/// A progress bar on stderr when it is a terminal.
fn progress_bar(total: Option<u64>) -> (Option<Progress>, Option<indicatif::ProgressBar>) {
    if !std::io::stderr().is_terminal() {
        return (None, None);
    }
    let bar = match total {
        Some(total) => indicatif::ProgressBar::new(total),
        None => {
            let spinner = indicatif::ProgressBar::new_spinner();
            spinner.enable_steady_tick(std::time::Duration::from_millis(120));
            spinner
        }
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(progress_template(total))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let handle = bar.clone();
    (
        Some(Arc::new(move |done| handle.set_position(done))),
        Some(bar),
    )
}

pub async fn run(command: FsCommand, connection: &Connection) -> Result<(), Failure> {
    let client = client(connection)?;
    match command {
        FsCommand::Ls { path, long, all } => ls(&client, &fs_path(&path)?, long, all).await,
        FsCommand::Mkdir { path, parents } => {
            client.mkdir(&fs_path(&path)?, parents).await?;
            Ok(())
        }
        FsCommand::Put {
            local,
            remote,
            no_clobber,
            offset,
            if_version,
            chunk_size,
        } => {
            let remote = put_target(&client, &local, &remote).await?;
            put(
                &client,
                &local,
                &remote,
                no_clobber,
                offset,
                if_version.map(Version),
                chunk_size,
            )
            .await
        }
        FsCommand::Get {
            remote,
            local,
            offset,
            length,
        } => get(&client, &fs_path(&remote)?, &local, offset, length).await,
        FsCommand::Cat { remote } => get(&client, &fs_path(&remote)?, "-", 0, None).await,
        FsCommand::Rm { path, recursive } => {
            client.delete(&fs_path(&path)?, recursive, None).await?;
            Ok(())
        }
        FsCommand::Mv { from, to } => {
            client
                .rename(&fs_path(&from)?, &fs_path(&to)?, true, None)
                .await?;
            Ok(())
        }
        FsCommand::Stat { path } => {
            let info = client.stat(&fs_path(&path)?).await?;
            let kind = if info.kind == EntryKind::Dir {
                "directory"
            } else {
                "file"
            };
            println!("path:       {path}\nkind:       {kind}\nsize:       {}\nversion:    {}\nchunk size: {}\nmodified:   {} ms since the epoch", info.length, info.version, info.chunk_size, info.mtime_ms);
            Ok(())
        }
        FsCommand::Truncate { path, length } => {
            client.truncate(&fs_path(&path)?, length, None).await?;
            Ok(())
        }
        FsCommand::Fsck { path } => fsck(&client, &fs_path(&path)?).await,
    }
}

async fn ls(client: &Client, path: &FsPath, long: bool, all: bool) -> Result<(), Failure> {
    let info = client.stat(path).await?;
    if info.kind == EntryKind::File {
        print_entry(&info, long);
        return Ok(());
    }
    let mut after = None;
    loop {
        let page = client.list(path, after, MAX_LIST_PAGE).await?;
        for entry in page
            .entries
            .iter()
            .filter(|e| all || !toastyfs_client::is_upload_temp(&e.name))
        {
            print_entry(entry, long);
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(()),
        }
    }
}

fn print_entry(entry: &toastyfs_proto::namespace::EntryInfo, long: bool) {
    let name = if entry.kind == EntryKind::Dir {
        format!("{}/", entry.name)
    } else {
        entry.name.clone()
    };
    if long {
        let kind = if entry.kind == EntryKind::Dir {
            'd'
        } else {
            '-'
        };
        println!(
            "{kind} {:>14} v{:<10} {:>9} {name}",
            entry.length, entry.version, entry.chunk_size
        );
    } else {
        println!("{name}");
    }
}

/// Where a put writes, like `cp`: onto an existing directory (or a target
/// ending in `/`) it writes `DIR/<local file name>`. Decided before
/// anything is uploaded.
async fn put_target(client: &Client, local: &str, remote: &str) -> Result<FsPath, Failure> {
    let trimmed = remote.trim_end_matches('/');
    let dir_syntax = trimmed.len() < remote.len();
    let path = fs_path(if trimmed.is_empty() { "/" } else { trimmed })?;
    let into_dir = dir_syntax
        || path.is_root()
        || matches!(client.stat(&path).await, Ok(info) if info.kind == EntryKind::Dir);
    if !into_dir {
        return Ok(path);
    }
    let name = std::path::Path::new(local)
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|_| local != "-")
        .ok_or_else(|| Failure {
            message: format!(
                "{remote} is a directory: name the file to write inside it (standard input has no name)"
            ),
            code: 2,
        })?;
    path.join(name).map_err(|e| Failure {
        message: format!("cannot write {name:?} into {remote}: {e}"),
        code: 2,
    })
}

/// `.NAME.toastyfs-download-<pid>` beside `path`.
fn download_temp_path(path: &std::path::Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.toastyfs-download-{}", std::process::id()))
}

/// Takes over SIGINT from now on (the watch is armed when this returns).
fn interrupt_watch() -> Result<tokio::signal::unix::Signal, Failure> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).map_err(|e| Failure {
        message: format!("cannot watch for Ctrl-C: {e}"),
        code: 1,
    })
}

/// Ctrl-C: exit 130, as shells report an interrupted command.
fn interrupted(what: &str) -> Failure {
    Failure {
        message: format!("interrupted; {what}"),
        code: 130,
    }
}

async fn put(
    client: &Client,
    local: &str,
    remote: &FsPath,
    no_clobber: bool,
    offset: Option<u64>,
    if_version: Option<Version>,
    chunk_size: Option<u32>,
) -> Result<(), Failure> {
    let total = if local == "-" {
        None
    } else {
        std::fs::metadata(local).ok().map(|m| m.len())
    };
    let reader: Box<dyn tokio::io::AsyncRead + Unpin + Send> = if local == "-" {
        Box::new(tokio::io::stdin())
    } else {
        let file = tokio::fs::File::open(local).await.map_err(|e| Failure {
            message: format!("cannot read {local}: {e}"),
            code: 1,
        })?;
        Box::new(tokio::io::BufReader::with_capacity(1 << 20, file))
    };
    let (progress, bar) = progress_bar(total);
    let outcome = if offset.is_some() || if_version.is_some() {
        let options = WriteOptions {
            expect: if_version,
            create_with_chunk_size: Some(chunk_size.unwrap_or(client.config().chunk_size)),
            progress,
        };
        if no_clobber && client.stat(remote).await.is_ok() {
            return Err(ClientError::Refused(FsError::AlreadyExists {
                path: remote.to_string(),
            })
            .into());
        }
        let written = client
            .write_at(remote, offset.unwrap_or(0), reader, options)
            .await?;
        if offset.is_none() && written.file_length > written.bytes_written {
            // A whole-file put over a longer file: drop the old tail.
            client.truncate(remote, written.bytes_written, None).await?;
        }
        written
    } else {
        let temp = toastyfs_client::upload_temp_path(remote)?;
        let mut interrupt = interrupt_watch()?;
        let upload = client.put_via(remote, &temp, reader, no_clobber, chunk_size, progress);
        tokio::select! {
            result = upload => result?,
            _ = interrupt.recv() => {
                // The abandoned put's temporary goes with it.
                let _ = client.delete(&temp, false, None).await;
                return Err(interrupted("the partial upload was removed"));
            }
        }
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    eprintln!(
        "{remote}: {} bytes written, version {}",
        outcome.bytes_written, outcome.version
    );
    Ok(())
}

async fn get(
    client: &Client,
    remote: &FsPath,
    local: &str,
    offset: u64,
    length: Option<u64>,
) -> Result<(), Failure> {
    if local == "-" {
        return match client
            .read_to(remote, offset, length, tokio::io::stdout(), None)
            .await
        {
            // The reader went away (`| head`): end quietly, like cat.
            Err(ClientError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => other.map(|_| ()).map_err(Failure::from),
        };
    }
    let info = client.stat(remote).await?;
    let (progress, bar) = progress_bar(Some(length.unwrap_or(info.length.saturating_sub(offset))));
    let path = PathBuf::from(local);
    // Written beside the target and renamed over it at the end, so an
    // interrupted or failed get never leaves a partial file under the name.
    let temp = download_temp_path(&path);
    // Watch for Ctrl-C before the temporary exists, so no interrupt can
    // land between its creation and the watch.
    let mut interrupt = interrupt_watch()?;
    let file = tokio::fs::File::create(&temp).await.map_err(|e| Failure {
        message: format!("cannot write {}: {e}", temp.display()),
        code: 1,
    })?;
    let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let read = async {
        let outcome = client
            .read_to(remote, offset, length, &mut out, progress)
            .await?;
        tokio::io::AsyncWriteExt::flush(&mut out).await?;
        Ok::<_, ClientError>(outcome)
    };
    let outcome = tokio::select! {
        result = read => result,
        _ = interrupt.recv() => {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(interrupted("the partial download was removed"));
        }
    };
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(e.into());
        }
    };
    tokio::fs::rename(&temp, &path).await.map_err(|e| Failure {
        message: format!("cannot move {} to {local}: {e}", temp.display()),
        code: 1,
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    eprintln!(
        "{remote}: {} bytes read, version {}",
        outcome.bytes_read, outcome.version
    );
    Ok(())
}

/// Walks `root` and lists every file with a chunk that has no live
/// holder (LOST) or fewer than the replication factor (UNDER).
async fn fsck(client: &Client, root: &FsPath) -> Result<(), Failure> {
    let status = client.admin().chunk_status().await?;
    let rf = status.replication_factor as usize;
    let mut dirs = vec![root.clone()];
    let (mut files, mut bad) = (0u64, 0u64);
    while let Some(dir) = dirs.pop() {
        let mut after = None;
        loop {
            let page = client.list(&dir, after, MAX_LIST_PAGE).await?;
            for entry in &page.entries {
                let path = dir
                    .join(&entry.name)
                    .map_err(|e| format!("bad name {}: {e}", entry.name))?;
                if entry.kind == EntryKind::Dir {
                    dirs.push(path);
                    continue;
                }
                files += 1;
                let (lost, under) = client.file_health(&path, rf).await?;
                if lost > 0 || under > 0 {
                    bad += 1;
                    println!("{path}: {lost} chunks lost, {under} below {rf} replicas");
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    println!(
        "{files} files checked, {bad} unhealthy ({} chunks under-replicated cluster-wide)",
        status.under_replicated
    );
    if bad > 0 {
        return Err(Failure {
            message: format!("{bad} files have lost or under-replicated chunks"),
            code: 1,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::progress_template;

    /// An unknown length shows a spinner with bytes and rate, no total.
    #[test]
    fn an_unknown_length_shows_a_spinner_without_a_total() {
        let unknown = progress_template(None);
        assert!(unknown.contains("{spinner}") && unknown.contains("{bytes_per_sec}"));
        assert!(!unknown.contains("total") && !unknown.contains("bar"));
        assert!(progress_template(Some(10)).contains("{total_bytes}"));
        for total in [None, Some(10)] {
            assert!(indicatif::ProgressStyle::with_template(progress_template(total)).is_ok());
        }
    }
}
