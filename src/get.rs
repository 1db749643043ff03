//! `toastyfs get` (and `cat`): ToastyFS files or directories (`-r`) to
//! local files or standard output. Where each file goes follows `cp`
//! ([`target_is_directory`]). Every file is written to a temporary beside
//! its target and renamed over it at the end, so an interrupted or failed
//! get never leaves a partial file under the name.

use std::path::{Path, PathBuf};

use toastyfs_client::{Client, ClientError};
use toastyfs_proto::namespace::EntryKind;
use toastyfs_proto::FsPath;

use crate::cli_fs::fs_path;
use crate::exit::Failure;
use crate::transfer::{self, target_is_directory, Bar, Transfer, TransferArgs};

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  toastyfs get /docs/report.pdf .           # ./report.pdf
  toastyfs get -r /backup/photos ~/photos   # the whole tree
  toastyfs get /big.iso - | sha256sum       # to standard output")]
pub struct GetArgs {
    /// ToastyFS files or directories to copy.
    #[arg(required = true, value_name = "REMOTE")]
    pub sources: Vec<String>,
    /// Where to write: a local file, a directory to copy into (an existing
    /// one, a path ending in `/`, or any target of several sources), or
    /// `-` for standard output.
    #[arg(value_name = "LOCAL")]
    pub local: String,
    #[command(flatten)]
    pub transfer: TransferArgs,
    /// Start at this byte of the file (one file only).
    #[arg(long, default_value_t = 0)]
    pub offset: u64,
    /// Copy at most this many bytes (one file only).
    #[arg(long)]
    pub length: Option<u64>,
}

struct Job {
    remote: FsPath,
    local: PathBuf,
    length: u64,
}

impl std::fmt::Display for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} -> {}", self.remote, self.local.display())
    }
}

#[derive(Default)]
struct Plan {
    dirs: Vec<PathBuf>,
    jobs: Vec<Job>,
}

pub async fn run(client: &Client, args: &GetArgs) -> Result<(), Failure> {
    let ranged = args.offset > 0 || args.length.is_some();
    if args.local == "-" {
        let [source] = &args.sources[..] else {
            return Err(Failure::usage("standard output (`-`) takes one file"));
        };
        return to_stdout(client, &fs_path(source)?, args.offset, args.length).await;
    }
    let plan = plan(client, args).await?;
    if ranged && plan.jobs.len() != 1 {
        return Err(Failure::usage("--offset and --length read one file"));
    }
    for dir in &plan.dirs {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::failed(format!("cannot create {}: {e}", dir.display())))?;
    }
    let total = plan.jobs.iter().map(|j| j.length).sum();
    let transfer = Transfer::new(client, plan.jobs.len(), Some(total), args.transfer);
    let client = transfer.client(client);
    let single = (plan.jobs.len() == 1).then(|| plan.jobs[0].remote.to_string());
    transfer
        .run(
            plan.jobs,
            single,
            |job| copy_one(client, args, job, &transfer),
            |temp| async move {
                let _ = tokio::fs::remove_file(temp).await;
            },
            "the partial downloads were removed",
        )
        .await
}

/// `cat`, and `get REMOTE -`: a closed reader (`| head`) ends quietly.
pub async fn to_stdout(
    client: &Client,
    remote: &FsPath,
    offset: u64,
    length: Option<u64>,
) -> Result<(), Failure> {
    match client
        .read_to(remote, offset, length, tokio::io::stdout(), None)
        .await
    {
        Err(ClientError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map(|_| ()).map_err(Failure::from),
    }
}

/// `.NAME.toastyfs-download-<pid>` beside `path`.
fn download_temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.toastyfs-download-{}", std::process::id()))
}

async fn copy_one(
    client: &Client,
    args: &GetArgs,
    job: Job,
    transfer: &Transfer<PathBuf>,
) -> Result<u64, Failure> {
    let temp = download_temp_path(&job.local);
    transfer.in_flight.start(&temp);
    let result = download(client, args, &job, &temp, &transfer.bar).await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&temp).await;
    }
    transfer.in_flight.finish(&temp);
    result
}

async fn download(
    client: &Client,
    args: &GetArgs,
    job: &Job,
    temp: &Path,
    bar: &Bar,
) -> Result<u64, Failure> {
    // Created here, not on the blocking pool: an interrupt that drops this
    // future must find the file it removes already there.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(temp)
        .map(tokio::fs::File::from_std)
        .map_err(|e| Failure::failed(format!("cannot write {}: {e}", temp.display())))?;
    let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let outcome = client
        .read_to(
            &job.remote,
            args.offset,
            args.length,
            &mut out,
            bar.for_file(),
        )
        .await?;
    tokio::io::AsyncWriteExt::flush(&mut out)
        .await
        .map_err(|e| Failure::failed(format!("cannot write {}: {e}", temp.display())))?;
    tokio::fs::rename(temp, &job.local).await.map_err(|e| {
        Failure::failed(format!(
            "cannot move {} to {}: {e}",
            temp.display(),
            job.local.display()
        ))
    })?;
    Ok(outcome.bytes_read)
}

/// Decides every target before anything is downloaded.
async fn plan(client: &Client, args: &GetArgs) -> Result<Plan, Failure> {
    let local = Path::new(&args.local);
    let trailing_slash = args.local.ends_with('/');
    let exists_as_dir = local.is_dir();
    let into_dir = target_is_directory(exists_as_dir, trailing_slash, args.sources.len());
    if into_dir && local.exists() && !exists_as_dir {
        return Err(Failure::usage(format!(
            "{} is a file, not a directory to copy into",
            local.display()
        )));
    }
    let mut plan = Plan::default();
    if into_dir {
        plan.dirs.push(local.to_path_buf());
    }
    for source in &args.sources {
        let remote = fs_path(source)?;
        let info = client.stat(&remote).await?;
        let dest = match (into_dir, remote.split_last()) {
            (true, Some((_, name))) => local.join(name),
            // The root has no name: its contents go into the target.
            _ => local.to_path_buf(),
        };
        if info.kind == EntryKind::File {
            plan.jobs.push(Job {
                remote,
                local: dest,
                length: info.length,
            });
        } else if args.transfer.recursive {
            walk(client, remote, dest, &mut plan).await?;
        } else {
            return Err(Failure::usage(format!(
                "{source} is a directory (pass -r to copy it and everything in it)"
            )));
        }
    }
    transfer::refuse_duplicates(plan.jobs.iter().map(|j| j.local.display().to_string()))?;
    Ok(plan)
}

/// Every file and directory under `dir` (puts' temporaries left out), at
/// the same place under `dest`.
async fn walk(client: &Client, dir: FsPath, dest: PathBuf, plan: &mut Plan) -> Result<(), Failure> {
    plan.dirs.push(dest.clone());
    for (path, entry) in crate::cli_fs::tree(client, &dir).await? {
        let relative = path
            .as_str()
            .strip_prefix(dir.as_str())
            .unwrap_or(path.as_str())
            .trim_start_matches('/');
        let local = dest.join(relative);
        match entry.kind {
            EntryKind::Dir => plan.dirs.push(local),
            EntryKind::File => plan.jobs.push(Job {
                remote: path,
                local,
                length: entry.length,
            }),
        }
    }
    Ok(())
}
