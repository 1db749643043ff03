//! `toastyfs put`: local files, directories (`-r`) or standard input into
//! ToastyFS. Where each file goes follows `cp` ([`target_is_directory`]);
//! missing parent directories are created (as `hdfs dfs -put`, `aws s3
//! cp` and rclone do) unless `--no-parents`. Every file is written under
//! a temporary name and renamed over its target, so a reader never sees
//! half a file, and an interrupted put removes the temporaries in flight.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use toastyfs_client::{Client, ClientError, Progress, WriteOptions, WriteOutcome};
use toastyfs_proto::namespace::{EntryInfo, EntryKind, FsError};
use toastyfs_proto::{FsPath, Version};

use crate::exit::{code, Failure};
use crate::transfer::{self, target_is_directory, Bar, Transfer, TransferArgs};
use crate::{cli_fs::fs_path, output};

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  toastyfs put report.pdf /docs/            # writes /docs/report.pdf
  toastyfs put -r photos /backup            # /backup/photos/... (or /backup/... if /backup is new)
  toastyfs put a.txt b.txt /inbox           # several files into a directory
  tar c dir | toastyfs put - /dir.tar       # from standard input
  toastyfs put --append more.log /logs/app.log")]
pub struct PutArgs {
    /// Local files or directories to copy (`-`: standard input).
    #[arg(required = true, value_name = "LOCAL")]
    pub sources: Vec<String>,
    /// Where to write: a file, or a directory to copy into (an existing
    /// directory, a path ending in `/`, or any target of several sources).
    #[arg(value_name = "REMOTE")]
    pub remote: String,
    #[command(flatten)]
    pub transfer: TransferArgs,
    /// Refuse to replace an existing file.
    #[arg(long)]
    pub no_clobber: bool,
    /// Refuse when the parent directory does not exist, instead of
    /// creating it and any missing ancestors.
    #[arg(long)]
    pub no_parents: bool,
    /// Overwrite the existing file in place from this byte offset (one
    /// file only; bytes past the written range are kept, the file grows if
    /// the write goes past its end).
    #[arg(long, conflicts_with = "append")]
    pub offset: Option<u64>,
    /// Append to the end of the existing file (one file only; creates it
    /// when missing; refused if someone else changes it meanwhile).
    #[arg(long)]
    pub append: bool,
    /// Only if the file's version is V (0: only if it does not exist).
    #[arg(long, value_name = "V")]
    pub if_version: Option<u64>,
    /// Chunk size of new files, in bytes (4096..=67108864).
    #[arg(long, value_parser = parse_chunk_size)]
    pub chunk_size: Option<u32>,
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

/// Where one local file goes.
enum Source {
    Stdin,
    File { path: PathBuf, length: u64 },
}

struct Job {
    source: Source,
    remote: FsPath,
}

impl std::fmt::Display for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            Source::Stdin => write!(f, "- -> {}", self.remote),
            Source::File { path, .. } => write!(f, "{} -> {}", path.display(), self.remote),
        }
    }
}

/// Everything a put will do, decided before any byte is uploaded.
#[derive(Default)]
struct Plan {
    /// Directories of copied trees, created even with `--no-parents`.
    dirs: Vec<FsPath>,
    jobs: Vec<Job>,
}

pub async fn run(client: &Client, args: &PutArgs) -> Result<(), Failure> {
    let plan = plan(client, args).await?;
    let in_place = args.offset.is_some() || args.append || args.if_version.is_some();
    if in_place && (plan.jobs.len() != 1 || !plan.dirs.is_empty()) {
        return Err(Failure::usage(
            "--offset, --append and --if-version write one file; name one source file",
        ));
    }
    make_dirs(client, &plan, args.no_parents).await?;
    if let (true, [job]) = (in_place, &plan.jobs[..]) {
        return write_in_place(client, args, job).await;
    }
    let total = plan
        .jobs
        .iter()
        .try_fold(0u64, |sum, job| match job.source {
            Source::File { length, .. } => Some(sum + length),
            Source::Stdin => None,
        });
    let transfer = Transfer::new(client, plan.jobs.len(), total, args.transfer);
    let client = transfer.client(client);
    let single = (plan.jobs.len() == 1).then(|| plan.jobs[0].remote.to_string());
    transfer
        .run(
            plan.jobs,
            single,
            |job| copy_one(client, args, job, &transfer),
            |temp| async move {
                let _ = client.delete(&temp, false, None).await;
            },
            "the partial uploads were removed",
        )
        .await
}

/// Uploads one file through a temporary, which stays registered in
/// `in_flight` while it may exist.
async fn copy_one(
    client: &Client,
    args: &PutArgs,
    job: Job,
    transfer: &Transfer<FsPath>,
) -> Result<u64, Failure> {
    let reader = open(&job.source).await?;
    let temp = toastyfs_client::upload_temp_path(&job.remote)?;
    transfer.in_flight.start(&temp);
    let written = client
        .put_via(
            &job.remote,
            &temp,
            reader,
            args.no_clobber,
            args.chunk_size,
            transfer.bar.for_file(),
        )
        .await;
    transfer.in_flight.finish(&temp);
    Ok(written?.bytes_written)
}

async fn open(source: &Source) -> Result<Box<dyn tokio::io::AsyncRead + Unpin + Send>, Failure> {
    Ok(match source {
        Source::Stdin => Box::new(tokio::io::stdin()),
        Source::File { path, .. } => {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| Failure::failed(format!("cannot read {}: {e}", path.display())))?;
            Box::new(tokio::io::BufReader::with_capacity(1 << 20, file))
        }
    })
}

/// `--offset`, `--append`, `--if-version`: one write into the file itself.
async fn write_in_place(client: &Client, args: &PutArgs, job: &Job) -> Result<(), Failure> {
    let existing = stat_if_exists(client, &job.remote).await?;
    if args.no_clobber && existing.is_some() {
        return Err(ClientError::Refused(FsError::AlreadyExists {
            path: job.remote.to_string(),
        })
        .into());
    }
    let (offset, expect) = match (&existing, args.append) {
        // Appending: at the end of the version just seen, and only to it.
        (Some(info), true) => (
            info.length,
            Some(args.if_version.map_or(info.version, Version)),
        ),
        (None, true) => (0, Some(Version(args.if_version.unwrap_or(0)))),
        (_, false) => (args.offset.unwrap_or(0), args.if_version.map(Version)),
    };
    let bar = Bar::new(match job.source {
        Source::File { length, .. } => Some(length),
        Source::Stdin => None,
    });
    // What has committed so far: a failure after the first window leaves
    // the file partly written, which is not "nothing was changed".
    let committed = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&committed);
    let shown = bar.for_file();
    let progress: Progress = Arc::new(move |done| {
        seen.store(done, Ordering::Relaxed);
        if let Some(shown) = &shown {
            shown(done);
        }
    });
    let options = WriteOptions {
        expect,
        create_with_chunk_size: Some(args.chunk_size.unwrap_or(client.config().chunk_size)),
        progress: Some(progress),
    };
    let partly = |e: Failure| match committed.load(Ordering::Relaxed) {
        0 => e,
        n => Failure::new(
            code::UNKNOWN,
            format!(
                "{}\n{n} bytes from offset {offset} of {} were already written",
                e.message, job.remote
            ),
        ),
    };
    let source = open(&job.source).await?;
    let written: WriteOutcome = client
        .write_at(&job.remote, offset, source, options)
        .await
        .map_err(|e| partly(e.into()))?;
    if args.offset.is_none() && !args.append && written.file_length > written.bytes_written {
        // A whole-file put (`--if-version`) over a longer file: drop the
        // old tail, only from the version just written.
        client
            .truncate(&job.remote, written.bytes_written, Some(written.version))
            .await
            .map_err(|e| partly(e.into()))?;
    }
    bar.finish();
    eprintln!(
        "{}: {} at offset {offset}, version {}",
        job.remote,
        output::transfer(written.bytes_written, bar.elapsed(), args.transfer.bytes),
        written.version
    );
    Ok(())
}

async fn stat_if_exists(client: &Client, path: &FsPath) -> Result<Option<EntryInfo>, Failure> {
    match client.stat(path).await {
        Ok(info) => Ok(Some(info)),
        Err(ClientError::Refused(FsError::NotFound { .. })) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Decides every target before anything is uploaded.
async fn plan(client: &Client, args: &PutArgs) -> Result<Plan, Failure> {
    let stdin = args.sources.iter().any(|s| s == "-");
    if stdin && (args.sources.len() > 1 || args.transfer.recursive) {
        return Err(Failure::usage(
            "standard input (`-`) is copied alone and not with -r",
        ));
    }
    let trimmed = args.remote.trim_end_matches('/');
    let trailing_slash = trimmed.len() < args.remote.len();
    let target = fs_path(if trimmed.is_empty() { "/" } else { trimmed })?;
    let existing = stat_if_exists(client, &target).await?;
    let is_dir = target.is_root() || existing.as_ref().is_some_and(|i| i.kind == EntryKind::Dir);
    let into_dir = target_is_directory(is_dir, trailing_slash, args.sources.len());
    if into_dir && existing.as_ref().is_some_and(|i| i.kind == EntryKind::File) {
        return Err(Failure::usage(format!(
            "{target} is a file, not a directory to copy into"
        )));
    }
    let mut plan = Plan::default();
    for source in &args.sources {
        if source == "-" {
            if into_dir {
                return Err(Failure::usage(format!(
                    "{} is a directory: name the file to write inside it (standard input has no name)",
                    args.remote
                )));
            }
            plan.jobs.push(Job {
                source: Source::Stdin,
                remote: target.clone(),
            });
            continue;
        }
        let local = Path::new(source);
        let dest = if into_dir {
            join(&target, &local_name(local)?)?
        } else {
            target.clone()
        };
        let named = std::fs::metadata(local).map(|m| m.is_file() || m.is_dir());
        if matches!(named, Ok(false)) {
            return Err(Failure::usage(format!(
                "{source} is not a regular file or directory (pipe it in: `cat {source} | toastyfs put - REMOTE`)"
            )));
        }
        add_source(local, dest, args.transfer.recursive, &mut plan)?;
    }
    transfer::refuse_duplicates(plan.jobs.iter().map(|j| j.remote.to_string()))?;
    Ok(plan)
}

/// A local path's own name (`.` and `..` resolved).
fn local_name(local: &Path) -> Result<String, Failure> {
    let named = match local.file_name() {
        Some(_) => local.to_path_buf(),
        None => local
            .canonicalize()
            .map_err(|e| Failure::failed(format!("cannot read {}: {e}", local.display())))?,
    };
    named
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| Failure::usage(format!("{} has no name to copy it under", local.display())))
}

fn join(dir: &FsPath, name: &str) -> Result<FsPath, Failure> {
    dir.join(name)
        .map_err(|e| Failure::usage(format!("cannot write {name:?} into {dir}: {e}")))
}

/// One local file, or (with `-r`) a whole directory tree.
fn add_source(local: &Path, dest: FsPath, recursive: bool, plan: &mut Plan) -> Result<(), Failure> {
    let meta = std::fs::metadata(local)
        .map_err(|e| Failure::failed(format!("cannot read {}: {e}", local.display())))?;
    if meta.is_file() {
        plan.jobs.push(Job {
            source: Source::File {
                path: local.to_path_buf(),
                length: meta.len(),
            },
            remote: dest,
        });
        Ok(())
    } else if meta.is_dir() {
        if !recursive {
            return Err(Failure::usage(format!(
                "{} is a directory (pass -r to copy it and everything in it)",
                local.display()
            )));
        }
        plan.dirs.push(dest.clone());
        let mut entries = std::fs::read_dir(local)
            .and_then(|dir| dir.collect::<Result<Vec<_>, _>>())
            .map_err(|e| Failure::failed(format!("cannot list {}: {e}", local.display())))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                return Err(Failure::failed(format!(
                    "{}: the name is not UTF-8, which ToastyFS paths must be",
                    path.display()
                )));
            };
            let linked_dir = entry.file_type().is_ok_and(|t| t.is_symlink()) && path.is_dir();
            if linked_dir {
                eprintln!(
                    "warning: {} is a link to a directory; not followed",
                    path.display()
                );
                continue;
            }
            add_source(&path, join(&dest, &name)?, recursive, plan)?;
        }
        Ok(())
    } else {
        eprintln!(
            "warning: {} is not a regular file or directory; skipped",
            local.display()
        );
        Ok(())
    }
}

/// Creates the copied trees' directories and, unless `no_parents`, every
/// missing parent; with `no_parents` a missing parent is refused.
async fn make_dirs(client: &Client, plan: &Plan, no_parents: bool) -> Result<(), Failure> {
    let tree: BTreeSet<&FsPath> = plan.dirs.iter().collect();
    let parents: BTreeSet<FsPath> = plan
        .jobs
        .iter()
        .map(|j| &j.remote)
        .chain(plan.dirs.iter())
        .filter_map(|p| p.split_last().map(|(parent, _)| parent))
        .filter(|parent| !parent.is_root() && !tree.contains(parent))
        .collect();
    if no_parents {
        for parent in &parents {
            match stat_if_exists(client, parent).await? {
                Some(info) if info.kind == EntryKind::Dir => {}
                Some(_) => {
                    return Err(Failure::failed(format!(
                        "{parent} is a file, not a directory"
                    )))
                }
                None => {
                    return Err(Failure::failed(format!(
                        "{parent} does not exist (drop --no-parents to create it)"
                    )))
                }
            }
        }
    }
    let wanted: BTreeSet<FsPath> = if no_parents {
        tree.into_iter().cloned().collect()
    } else {
        parents
            .into_iter()
            .chain(tree.into_iter().cloned())
            .collect()
    };
    // `mkdir -p` of the deepest ones creates the rest.
    let names: BTreeSet<&str> = wanted.iter().map(FsPath::as_str).collect();
    for dir in &wanted {
        let below = format!("{}/", dir.as_str());
        let deeper = names
            .range(below.as_str()..)
            .next()
            .is_some_and(|next| next.starts_with(&below));
        if !deeper {
            client.mkdir(dir, true).await?;
        }
    }
    Ok(())
}
