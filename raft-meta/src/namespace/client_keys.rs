//! Client keys in the replicated state, under the `K` keys: creating and
//! revoking them (commands that need the cluster secret), and reading them
//! (every node checks a presented key against its own applied state, so a
//! revocation takes effect on each node as soon as it applies it).
//!
//! A revoked key's record stays, with the time of its revocation, for
//! [`REVOCATION_NOTICE_MS`]: the leader tells chunk servers about it until
//! every chunk token minted for it has expired. Each `CreateKey` removes
//! the records revoked longer ago than that (by the proposal's time, so
//! every replica removes the same ones), which bounds the table.

use toastyfs_proto::admission::check_key_name;
use toastyfs_proto::chunk_token::REVOCATION_NOTICE_MS;
use toastyfs_proto::client_key::{Access, KeyId, KeyInfo, MAX_KEYS};
use toastyfs_proto::namespace::{FsError, Outcome};

use super::keys;
use super::kv::{KvRead, KvStore, StoreError};
use super::stored;
pub use super::stored::StoredKey;
use super::{OpResult, Txn};

/// Keys read per scan step.
const SCAN_PAGE: usize = 1_024;

/// The key with `id`, valid or revoked.
pub fn get<S: KvRead + ?Sized>(store: &S, id: KeyId) -> Result<Option<StoredKey>, StoreError> {
    stored::read(store, &keys::client_key(id))
}

/// Every key record, in id order.
pub fn all<S: KvRead + ?Sized>(store: &S) -> Result<Vec<KeyInfo>, StoreError> {
    let prefix = [keys::CLIENT_KEY];
    let mut from = prefix.to_vec();
    let mut found = Vec::new();
    loop {
        let page = store.scan(&prefix, &from, SCAN_PAGE)?;
        let Some((last, _)) = page.last() else {
            return Ok(found);
        };
        from = last.clone();
        from.push(0);
        for (key, value) in &page {
            let Some(id) = key.get(1..9).and_then(|b| b.try_into().ok()) else {
                continue;
            };
            let record: StoredKey = stored::decode_value(key, value)?;
            found.push(info(KeyId(u64::from_be_bytes(id)), record));
        }
        if page.len() < SCAN_PAGE {
            return Ok(found);
        }
    }
}

/// Keys revoked at or after `since_ms`.
pub fn revoked_since<S: KvRead + ?Sized>(
    store: &S,
    since_ms: u64,
) -> Result<Vec<KeyId>, StoreError> {
    Ok(all(store)?
        .into_iter()
        .filter(|k| k.revoked_ms.is_some_and(|at| at >= since_ms))
        .map(|k| k.id)
        .collect())
}

fn info(id: KeyId, record: StoredKey) -> KeyInfo {
    KeyInfo {
        id,
        name: record.name,
        access: record.access,
        created_ms: record.created_ms,
        revoked_ms: record.revoked_ms,
    }
}

/// `CreateKey`: a new key under this entry's index.
pub(crate) fn create<S: KvStore + ?Sized>(
    txn: &mut Txn<'_, S>,
    name: &str,
    access: Access,
    secret_hash: [u8; 32],
) -> OpResult<Outcome> {
    check_key_name(name)?;
    let mut valid = 0u64;
    for key in all(txn.store)? {
        match key.revoked_ms {
            None => valid += 1,
            Some(at) if at.saturating_add(REVOCATION_NOTICE_MS) < txn.time_ms => {
                txn.store.delete(&keys::client_key(key.id))?;
            }
            Some(_) => {}
        }
    }
    if valid >= MAX_KEYS {
        return Err(FsError::TooManyKeys.into());
    }
    let id = KeyId(txn.index);
    let record = StoredKey {
        name: name.to_owned(),
        access,
        secret_hash,
        created_ms: txn.time_ms,
        revoked_ms: None,
    };
    stored::write(txn.store, keys::client_key(id), &record)?;
    Ok(Outcome::KeyCreated { id })
}

/// `RevokeKey`: marks the key revoked now.
pub(crate) fn revoke<S: KvStore + ?Sized>(txn: &mut Txn<'_, S>, id: KeyId) -> OpResult<Outcome> {
    let Some(mut record) = get(txn.store, id)? else {
        return Err(FsError::NoSuchKey { id }.into());
    };
    if record.revoked_ms.is_some() {
        return Err(FsError::KeyAlreadyRevoked { id }.into());
    }
    record.revoked_ms = Some(txn.time_ms);
    stored::write(txn.store, keys::client_key(id), &record)?;
    Ok(Outcome::KeyRevoked { id })
}
