//! Atomic rename. Names map to inodes, so moving a whole subtree rewrites
//! one key; a directory is never moved into its own subtree.

use toastyfs_proto::namespace::{EntryKind, FsError, Outcome};
use toastyfs_proto::{FsPath, Version};

use super::create;
use super::keys;
use super::kv::KvStore;
use super::remove;
use super::stored;
use super::tree::{self, Slot};
use super::{OpResult, Txn};

/// Moves `from` to `to`. Rules: neither may be the root; `to` may not be
/// inside `from`; an existing `to` is replaced only with `replace`, only by
/// an entry of the same kind, and only if it is a file or an empty
/// directory. Renaming an entry onto itself changes nothing. `expect` is
/// checked against `from`.
pub fn rename<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    from: &FsPath,
    to: &FsPath,
    replace: bool,
    expect: Option<Version>,
) -> OpResult<Outcome> {
    if from.is_root() || to.is_root() {
        return Err(FsError::RootNotAllowed {
            action: "renamed or replaced".to_owned(),
        }
        .into());
    }
    let mut source = tree::lookup(txn.store, from)?;
    tree::check_expect(from, expect, source.entry.version)?;
    if from == to {
        return Ok(Outcome::Renamed {
            version: source.entry.version,
            freed: vec![],
        });
    }
    if from.is_ancestor_or_self_of(to) {
        return Err(FsError::RenameIntoOwnSubtree {
            from: from.to_string(),
            to: to.to_string(),
        }
        .into());
    }
    let (to_parent_path, to_name) = create::split(to)?;
    let to_parent = tree::lookup_dir(txn.store, &to_parent_path)?;
    let existing = tree::child(txn.store, to_parent.entry.inode, to_name)?;
    if let Some(target) = &existing {
        if !replace {
            return Err(FsError::RenameTargetExists { to: to.to_string() }.into());
        }
        if target.kind != source.entry.kind {
            return Err(FsError::RenameKindMismatch {
                from: from.to_string(),
                to: to.to_string(),
            }
            .into());
        }
        if target.kind == EntryKind::Dir && !tree::is_empty_dir(txn.store, target.inode)? {
            return Err(FsError::NotEmpty {
                path: to.to_string(),
            }
            .into());
        }
    }
    let version = txn.bump_version();
    if let Some(target) = &existing {
        remove::drop_entry(txn, target)?;
    }
    let Slot::Child {
        parent: from_parent,
        name: from_name,
    } = &source.slot
    else {
        unreachable!("the root was refused above");
    };
    txn.store
        .delete(&keys::dir_entry(*from_parent, from_name))?;
    source.entry.version = version;
    stored::write(
        txn.store,
        keys::dir_entry(to_parent.entry.inode, to_name),
        &source.entry,
    )?;
    // Touch both parents; re-read them since either may be the other's
    // ancestor and the first touch must not be overwritten by a stale copy.
    let (from_parent_path, _) = create::split(from)?;
    let from_parent_found = tree::lookup_dir(txn.store, &from_parent_path)?;
    create::touch(txn, from_parent_found, version)?;
    if from_parent_path != to_parent_path {
        let to_parent_found = tree::lookup_dir(txn.store, &to_parent_path)?;
        create::touch(txn, to_parent_found, version)?;
    }
    Ok(Outcome::Renamed {
        version,
        freed: txn.take_freed(),
    })
}
