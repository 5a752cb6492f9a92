//! Serialising the writes that git does not let two writers make at once: refs, config and
//! the `worktrees/` admin dirs. A process-wide mutex orders threads, and an advisory file lock
//! (`<common dir>/baton-worktree.lock`) orders processes. Checkouts run outside the lock.
//!
//! The lock is re-entrant on one thread: a rollback or a recovery that runs while its caller
//! already holds it gets a guard that releases nothing, instead of waiting on itself forever
//! (neither the mutex nor `flock` on a second descriptor is re-entrant).

use std::cell::Cell;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use baton_store::LockGuard;

use crate::errors::Result;

static IN_PROCESS: Mutex<()> = Mutex::new(());

thread_local! {
    /// How many admin locks this thread holds (nested guards after the first hold nothing).
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Held while refs or admin dirs are written; dropped as soon as that is done.
pub struct AdminLock {
    _held: Option<(LockGuard, MutexGuard<'static, ()>)>,
}

impl Drop for AdminLock {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Wait for and take the admin lock of the repository whose common dir is `common_dir`.
/// Taking it again on a thread that holds it returns at once.
pub fn admin_lock(common_dir: &Path) -> Result<AdminLock> {
    if DEPTH.with(Cell::get) > 0 {
        DEPTH.with(|d| d.set(d.get() + 1));
        return Ok(AdminLock { _held: None });
    }
    // A poisoned mutex only means another thread panicked while holding it; the data it guards
    // lives on disk, so carrying on is safe.
    let thread = IN_PROCESS.lock().unwrap_or_else(|p| p.into_inner());
    let file = baton_store::lock_exclusive(&common_dir.join("baton-worktree"))?;
    DEPTH.with(|d| d.set(d.get() + 1));
    Ok(AdminLock {
        _held: Some((file, thread)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taking_the_lock_twice_on_one_thread_does_not_wait_on_itself() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outer = admin_lock(dir.path()).expect("outer");
        let inner = admin_lock(dir.path()).expect("inner");
        drop(inner);
        drop(outer);
        // released for real: another thread can take it now
        let path = dir.path().to_owned();
        std::thread::spawn(move || admin_lock(&path).map(drop))
            .join()
            .expect("thread")
            .expect("lock");
    }
}
