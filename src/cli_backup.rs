//! `toastyfs cluster backup FILE` and `toastyfs cluster restore FILE`:
//! the namespace saved from the leader while the cluster serves, checked
//! before it is kept, and restored as the first node of a new cluster.
//! The format and the restore itself are `toastyfs_raft_meta::store::backup`'s.

use std::path::{Path, PathBuf};

use toastyfs_proto::cluster::Role;
use toastyfs_raft_meta::store::backup::{self, BackupError, BackupSummary};

use crate::cli_cluster::members;
use crate::cli_fs::{addresses, Connection};
use crate::exit::Failure;
use crate::output::outln;

/// Saves a backup from the leader into `file` (never over an existing
/// file): received into `FILE.partial`, synced, checked whole, renamed.
pub async fn backup(connection: &Connection, file: &Path) -> Result<(), Failure> {
    if file.exists() {
        return Err(Failure::usage(format!(
            "{} exists; a backup never replaces a file",
            file.display()
        )));
    }
    let meta = addresses(connection)?;
    let admin = crate::cli_fs::client(connection, None)?.admin();
    let nodes = members(&admin, &meta).await?;
    let leader = nodes
        .iter()
        .find(|n| n.status.as_ref().is_some_and(|s| s.role == Role::Leader))
        .ok_or_else(|| {
            Failure::failed("no leader answered; try again once `cluster status` shows one")
        })?;
    let partial = PathBuf::from(format!("{}.partial", file.display()));
    let io = |e: std::io::Error| Failure::failed(format!("{}: {e}", partial.display()));
    let mut out = tokio::fs::File::create_new(&partial).await.map_err(io)?;
    let received = admin.backup(&leader.addr, &mut out).await;
    let synced = out.sync_all().await;
    drop(out);
    let checked = match (received, synced) {
        (Ok(_), Ok(())) => {
            let path = partial.clone();
            tokio::task::spawn_blocking(move || backup::verify_file(&path))
                .await
                .map_err(|e| Failure::failed(e.to_string()))?
                .map_err(|e| Failure::failed(format!("the backup received is not sound: {e}")))
        }
        (Err(e), _) => Err(Failure::from(e)),
        (_, Err(e)) => Err(io(e)),
    };
    let summary = match checked {
        Ok(summary) => summary,
        Err(failure) => {
            let _ = std::fs::remove_file(&partial);
            return Err(failure);
        }
    };
    std::fs::rename(&partial, file).map_err(io)?;
    outln!(
        "backed up the namespace from node {} at applied index {} (term {}), digest {}: {} pairs, {} bytes, in {}",
        leader.id,
        summary.applied_index,
        summary.applied_term,
        summary.digest,
        summary.pairs,
        summary.bytes,
        file.display()
    );
    eprintln!("chunk data is not in it: it stays on the chunk servers (docs/operations.md, \"Backup and restore\")");
    Ok(())
}

/// Makes `data_dir` node `id` at `advertise`, the only voter of a new
/// cluster holding the backup in `file`.
pub async fn restore(
    file: &Path,
    data_dir: &Path,
    id: u64,
    advertise: &str,
) -> Result<(), Failure> {
    if id == 0 {
        return Err(Failure::usage("--id must be a positive integer"));
    }
    crate::config_check::host_port(advertise)
        .map_err(|e| Failure::usage(format!("--advertise {advertise:?}: {e}")))?;
    let summary: BackupSummary = backup::restore(file, data_dir, id, advertise)
        .await
        .map_err(|e| match e {
            BackupError::Occupied(_) | BackupError::Damaged(_) | BackupError::Empty => {
                Failure::failed(e.to_string())
            }
            other => Failure::failed(format!("restoring into {}: {other}", data_dir.display())),
        })?;
    outln!(
        "restored the namespace at applied index {}, digest {} ({} pairs) into {} as node {id}, the only voter, at {advertise}",
        summary.applied_index,
        summary.digest,
        summary.pairs,
        data_dir.display()
    );
    outln!(
        "next: toastyfs meta --id {id} --data-dir {} --listen {advertise}   (with the new cluster's --secret-file), then `toastyfs cluster add-node` the others",
        data_dir.display()
    );
    Ok(())
}
