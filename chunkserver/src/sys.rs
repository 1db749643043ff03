//! The few operating-system calls std does not offer on our minimum Rust
//! version: filesystem free space (`statvfs`), an exclusive advisory lock
//! (`flock`), plus durable-write helpers (fsync of files and directories).
//! Unix only, like the rest of ToastyFS.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Write};
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

/// Bytes available to unprivileged users on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    let mut stat = MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c_path` is NUL-terminated and `stat` is writable memory of the
    // type statvfs fills in.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it initialised `stat`.
    let stat = unsafe { stat.assume_init() };
    // The field types differ between platforms, hence the casts.
    #[allow(clippy::unnecessary_cast)]
    let (blocks, block_size) = (stat.f_bavail as u64, stat.f_frsize as u64);
    Ok(blocks.saturating_mul(block_size))
}

/// Takes an exclusive, non-blocking `flock` on `file`. `Ok(false)` means
/// another process holds it. The lock lasts as long as the file is open.
pub fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    // SAFETY: the descriptor is valid for as long as `file` is borrowed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EWOULDBLOCK) => Ok(false),
        _ => Err(err),
    }
}

/// Creates `path` (which must not exist), writes `bytes` and fsyncs it.
pub fn write_new_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = File::options().write(true).create_new(true).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Fsyncs a directory, making renames and unlinks in it durable.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    #[cfg(test)]
    if FAIL_DIR_SYNCS.with(std::cell::Cell::get) {
        return Err(io::Error::other("injected directory fsync failure"));
    }
    File::open(path)?.sync_all()
}

#[cfg(test)]
thread_local! {
    static FAIL_DIR_SYNCS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Tests only: makes every [`sync_dir`] on this thread fail (or work again).
#[cfg(test)]
pub fn fail_dir_syncs(fail: bool) {
    FAIL_DIR_SYNCS.with(|f| f.set(fail));
}
