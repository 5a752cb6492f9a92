//! Advisory locks on sidecar `<file>.lock` files.
//!
//! The lock file is never deleted: deleting it would let two processes hold "the" lock on two
//! different inodes. It is small and lives beside the data in `.baton/`.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::StoreError;

/// Holds an exclusive advisory lock until dropped.
#[derive(Debug)]
pub struct LockGuard {
    file: File,
    path: PathBuf,
}

impl LockGuard {
    /// The lock file held.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // Closing the descriptor releases the lock too; unlocking first just makes it prompt.
        let _ = self.file.unlock();
    }
}

/// The sidecar lock path of a data file: `plan.json` → `plan.json.lock`.
pub fn lock_path(data: &Path) -> PathBuf {
    let mut name = data.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    data.with_file_name(name)
}

/// Take the exclusive lock that guards `data`, waiting for other holders.
/// Creates the parent directory if needed.
pub fn lock_exclusive(data: &Path) -> Result<LockGuard, StoreError> {
    let path = lock_path(data);
    let open = || {
        use std::os::unix::fs::OpenOptionsExt;
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
    };
    // never through a link below the state dir (see `confine`)
    crate::confine::check_parent_dirs(&path)?;
    // the directory almost always exists: make it only when the open says it does not
    let file = match open() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::confine::create_parent_dirs(&path)?;
            open()
        }
        other => other,
    }
    .map_err(|e| crate::confine::link_or_io("open lock file", &path, e))?;
    file.lock().map_err(|e| StoreError::io("lock", &path, e))?;
    Ok(LockGuard { file, path })
}
