//! `--land BRANCH`: fast-forward the user's branch (and its checkout's files) to the
//! integration branch, and nothing but a fast-forward.

use std::path::Path;

use super::{IntegrateError, full_ref, git};

/// Fast-forward the user's `branch` to `target` (the integration tip). Refuses anything but a
/// fast-forward, and a branch checked out in a worktree with uncommitted changes; a checked
/// out branch gets its files updated like `git merge --ff-only`.
pub fn land(
    repo: &git2::Repository,
    branch: &str,
    target: git2::Oid,
) -> Result<bool, IntegrateError> {
    let refuse = |reason: String| IntegrateError::Land {
        branch: branch.to_owned(),
        reason,
    };
    let name = full_ref(branch);
    let current = repo
        .find_reference(&name)
        .ok()
        .and_then(|r| r.target())
        .ok_or_else(|| refuse("no such local branch".to_owned()))?;
    if current == target {
        return Ok(false);
    }
    if !repo
        .graph_descendant_of(target, current)
        .map_err(git("walk"))?
    {
        return Err(refuse(format!(
            "{branch} ({}) is not an ancestor of the integration branch ({}); only a fast-forward is allowed — merge or rebase by hand",
            short(current),
            short(target)
        )));
    }
    // is the branch checked out somewhere? then its files move with it
    let mut checkouts = Vec::new();
    if !repo.is_bare() && head_is(repo, &name) {
        checkouts.push(repo.workdir().map(Path::to_owned));
    }
    for wt in repo
        .worktrees()
        .map_err(git("list worktrees"))?
        .iter()
        .flatten()
    {
        if let Ok(w) = repo.find_worktree(wt)
            && let Ok(r) = git2::Repository::open_from_worktree(&w)
            && head_is(&r, &name)
        {
            checkouts.push(r.workdir().map(Path::to_owned));
        }
    }
    for dir in checkouts.into_iter().flatten() {
        let wt = git2::Repository::open(&dir).map_err(git("open the checkout"))?;
        let mut opts = git2::StatusOptions::new();
        opts.include_untracked(false).include_ignored(false);
        let dirty = wt
            .statuses(Some(&mut opts))
            .map_err(git("status"))?
            .iter()
            .any(|s| s.status() != git2::Status::CURRENT);
        if dirty {
            return Err(refuse(format!(
                "it is checked out in {} with uncommitted changes; commit or stash them first",
                dir.display()
            )));
        }
        let tree = wt
            .find_commit(target)
            .and_then(|c| c.into_object().peel(git2::ObjectType::Tree))
            .map_err(git("read the target tree"))?;
        wt.checkout_tree(&tree, Some(git2::build::CheckoutBuilder::new().safe()))
            .map_err(git(format!("update the files of {}", dir.display())))?;
    }
    repo.reference_matching(
        &name,
        target,
        true,
        current,
        "baton: land the integration branch (fast-forward)",
    )
    .map_err(|e| refuse(format!("it moved while landing: {}", e.message())))?;
    Ok(true)
}

fn head_is(repo: &git2::Repository, name: &str) -> bool {
    repo.find_reference("HEAD")
        .ok()
        .and_then(|h| h.symbolic_target().map(str::to_owned))
        .is_some_and(|t| t == name)
}

fn short(oid: git2::Oid) -> String {
    oid.to_string()[..10].to_owned()
}
