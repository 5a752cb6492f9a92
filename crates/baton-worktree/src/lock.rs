//! Serialising the writes that git does not let two writers make at once: refs, config and
//! the `worktrees/` admin dirs. A process-wide mutex orders threads, and an advisory file lock
//! (`<common dir>/baton-worktree.lock`) orders processes. Checkouts run outside the lock.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use baton_store::LockGuard;

use crate::errors::Result;

static IN_PROCESS: Mutex<()> = Mutex::new(());

/// Held while refs or admin dirs are written; dropped as soon as that is done.
pub struct AdminLock {
    _file: LockGuard,
    _thread: MutexGuard<'static, ()>,
}

/// Wait for and take the admin lock of the repository whose common dir is `common_dir`.
pub fn admin_lock(common_dir: &Path) -> Result<AdminLock> {
    // A poisoned mutex only means another thread panicked while holding it; the data it guards
    // lives on disk, so carrying on is safe.
    let thread = IN_PROCESS.lock().unwrap_or_else(|p| p.into_inner());
    let file = baton_store::lock_exclusive(&common_dir.join("baton-worktree"))?;
    Ok(AdminLock {
        _file: file,
        _thread: thread,
    })
}
