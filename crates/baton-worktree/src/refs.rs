//! Branch writes. Callers hold the admin lock; a ref lock held by some other git process is
//! waited out with a few short retries instead of failing with "index.lock"/"ref.lock" errors.

use std::time::Duration;

use git2::{BranchType, ErrorCode, Oid, Repository};

use crate::errors::{Result, WorktreeError};

fn retry<T>(
    mut f: impl FnMut() -> std::result::Result<T, git2::Error>,
) -> std::result::Result<T, git2::Error> {
    let mut wait = Duration::from_millis(5);
    for _ in 0..8 {
        match f() {
            Err(e) if e.code() == ErrorCode::Locked => {
                std::thread::sleep(wait);
                wait *= 2;
            }
            other => return other,
        }
    }
    f()
}

/// Create branch `name` at `at`; an existing branch is an error.
pub fn create_branch(repo: &Repository, name: &str, at: Oid, base: &str) -> Result<()> {
    let commit = repo
        .find_commit(at)
        .map_err(WorktreeError::git(format!("read commit {at}")))?;
    retry(|| {
        repo.reference(
            &format!("refs/heads/{name}"),
            commit.id(),
            false,
            &format!("baton: worktree from {base}"),
        )
    })
    .map(|_| ())
    .map_err(|e| {
        if e.code() == ErrorCode::Exists {
            WorktreeError::BranchExists {
                branch: name.to_owned(),
            }
        } else {
            WorktreeError::git(format!("create branch {name}"))(e)
        }
    })
}

/// Delete branch `name` only if it still points at `at` (nobody moved it since it was
/// checked). Returns whether it was deleted.
pub fn delete_branch_if_at(repo: &Repository, name: &str, at: Oid) -> Result<bool> {
    let mut branch = match repo.find_branch(name, BranchType::Local) {
        Ok(b) => b,
        Err(e) if e.code() == ErrorCode::NotFound => return Ok(false),
        Err(e) => return Err(WorktreeError::git(format!("read branch {name}"))(e)),
    };
    if branch.get().target() != Some(at) {
        return Ok(false);
    }
    retry(|| branch.delete()).map_err(WorktreeError::git(format!("delete branch {name}")))?;
    Ok(true)
}

/// Is `commit` reachable from some branch or tag other than those in `except` (full names)?
pub fn reachable_from_refs(repo: &Repository, commit: Oid, except: &[String]) -> Result<bool> {
    reachable_from(repo, commit, except, false)
}

/// Like [`reachable_from_refs`], remote-tracking branches included.
pub fn reachable_from_any_ref(repo: &Repository, commit: Oid, except: &[String]) -> Result<bool> {
    reachable_from(repo, commit, except, true)
}

fn reachable_from(
    repo: &Repository,
    commit: Oid,
    except: &[String],
    remotes: bool,
) -> Result<bool> {
    let refs = repo
        .references()
        .map_err(WorktreeError::git("list references"))?;
    for r in refs.flatten() {
        let Some(name) = r.name() else { continue };
        if !(name.starts_with("refs/heads/")
            || name.starts_with("refs/tags/")
            || (remotes && name.starts_with("refs/remotes/")))
            || except.iter().any(|e| e == name)
        {
            continue;
        }
        let Ok(tip) = r.peel_to_commit() else {
            continue;
        };
        if tip.id() == commit || repo.graph_descendant_of(tip.id(), commit).unwrap_or(false) {
            return Ok(true);
        }
    }
    Ok(false)
}
