//! Handing a worktree to the process that works in it, and taking it back: the owner is
//! recorded in git's own lock (`<admin dir>/locked`), so `git worktree remove` and `prune`
//! respect it too, and baton checks pid + start time to tell a live owner from a dead one.

use std::path::PathBuf;

use baton_plan::ProcessRef;

use crate::admin;
use crate::errors::{Result, WorktreeError};
use crate::process;
use crate::repo::Worktrees;

/// Lock the worktree `given` (name, path or branch) for `owner`, which must be alive.
pub fn set_owner(wt: &Worktrees, given: &str, owner: ProcessRef) -> Result<PathBuf> {
    if !process::is_alive(&owner) {
        return Err(WorktreeError::NoSuchProcess { pid: owner.pid });
    }
    let entries = wt.entries()?;
    let entry = wt.find_entry(&entries, given)?;
    admin::set_lock(&entry.admin_dir, Some(&process::lock_reason(&owner)))?;
    Ok(entry.path.clone())
}

/// Remove the lock of the worktree `given`. Returns the owner that held it, if it was baton's.
pub fn release(wt: &Worktrees, given: &str) -> Result<Option<ProcessRef>> {
    let entries = wt.entries()?;
    let entry = wt.find_entry(&entries, given)?;
    let owner = entry.locked.as_deref().and_then(process::parse_lock_reason);
    admin::set_lock(&entry.admin_dir, None)?;
    Ok(owner)
}
