//! Filling a new worktree with the files of a commit, and writing its index.

use std::path::Path;

use git2::build::CheckoutBuilder;
use git2::{Oid, Repository};

use crate::errors::{Result, WorktreeError};

/// Check out `commit` into the empty worktree at `path` (its HEAD already names the branch).
/// Returns the number of files written.
pub fn populate(path: &Path, commit: Oid) -> Result<usize> {
    let repo = Repository::open(path).map_err(WorktreeError::git(format!(
        "open the new worktree {}",
        path.display()
    )))?;
    let tree = repo
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(WorktreeError::git(format!("read the tree of {commit}")))?;
    let mut written = 0usize;
    let mut opts = CheckoutBuilder::new();
    opts.force()
        .notify_on(git2::CheckoutNotificationType::empty());
    opts.progress(|_, done, _| written = done);
    repo.checkout_tree(tree.as_object(), Some(&mut opts))
        .map_err(WorktreeError::git(format!(
            "check out {commit} into {}",
            path.display()
        )))?;
    drop(opts);
    Ok(written)
}
