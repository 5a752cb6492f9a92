//! The pool: a finished agent's worktree (baton-made, clean, integrated, no live owner — what
//! cleanup would remove) is reused for the next agent instead of a fresh checkout. It moves to
//! the new branch and base with a checkout of the new tree against its current index, so only
//! the files that differ are rewritten and the build caches `[worktree] reuse_keep` names
//! (`target/`, `node_modules/`) stay warm while every other ignored file is deleted; then its directory and admin dir are renamed for the new agent, and its old branch
//! is deleted (it was integrated).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use git2::build::CheckoutBuilder;
use git2::{Oid, Repository};

use crate::admin;
use crate::decide::{self, Decision, Rules};
use crate::errors::{Result, WorktreeError};
use crate::inspect;
use crate::lock::admin_lock;
use crate::process;
use crate::refs;
use crate::repo::Worktrees;

/// A worktree that can be reused.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub name: String,
    pub path: PathBuf,
    pub admin_dir: PathBuf,
    pub head: Oid,
    pub branch: Option<String>,
    /// Its branch is integrated and checked out nowhere else, so it can go.
    pub delete_old_branch: bool,
}

/// Where a reused worktree ended up.
#[derive(Debug, Clone)]
pub struct Moved {
    pub name: String,
    pub admin_dir: PathBuf,
    pub files_written: usize,
    pub deleted_branch: Option<String>,
}

/// Worktrees that cleanup would remove without `--force`, made by baton.
pub fn candidates(wt: &Worktrees, target: Option<&str>, now: SystemTime) -> Result<Vec<Candidate>> {
    let listing = inspect::list(wt, target, now)?;
    let rules = Rules {
        target: listing.target.clone(),
        target_ref: listing.target_ref.clone(),
        min_age: Some(wt.config.min_age.0),
        ..Rules::default()
    };
    let mut out = Vec::new();
    for info in &listing.worktrees {
        if info.main || !info.created_by_baton {
            continue;
        }
        let (Some(head), Some(admin_dir), Some(name)) =
            (info.head_oid, &info.admin_dir, &info.name)
        else {
            continue;
        };
        if let Decision::Remove {
            branch_kept,
            detached,
        } = decide::decide(info, &rules, false, || false)
        {
            out.push(Candidate {
                name: name.clone(),
                path: info.path.clone(),
                admin_dir: admin_dir.clone(),
                head,
                branch: info.branch.clone(),
                delete_old_branch: !detached && branch_kept.is_none(),
            });
        }
    }
    Ok(out)
}

/// Take the candidate best suited to `base`: one already at it, else the first.
pub fn take_best(pool: &mut Vec<Candidate>, base: Oid) -> Option<Candidate> {
    if pool.is_empty() {
        return None;
    }
    let pos = pool.iter().position(|c| c.head == base).unwrap_or(0);
    Some(pool.remove(pos))
}

/// Lock a candidate for the creating process. Call under the admin lock; fails if an owner
/// took it since it was inspected.
pub fn claim(c: &Candidate, reason: &str) -> Result<()> {
    if let Some(e) = admin::read_entry(&c.admin_dir)
        && let Some(owner) = e.locked.as_deref().and_then(process::parse_lock_reason)
        && process::is_alive(&owner)
    {
        return Err(WorktreeError::PathExists {
            path: c.path.clone(),
        });
    }
    admin::set_lock(&c.admin_dir, Some(reason))
}

/// Move candidate `c` to `new_branch` at `base` and to the directory `new_path`.
pub fn switch(
    wt: &Worktrees,
    c: &Candidate,
    new_path: &Path,
    new_branch: &str,
    base: Oid,
) -> Result<Moved> {
    let files_written = checkout_branch(&c.path, new_branch, base)?;
    scrub(&c.path, &wt.config.reuse_keep_set()?)?;
    let _lock = admin_lock(wt.common_dir())?;
    let (name, admin_dir) = relocate(wt, c, new_path)?;
    let mut deleted_branch = None;
    if c.delete_old_branch
        && let Some(old) = &c.branch
    {
        let repo = wt.open()?;
        let elsewhere = wt
            .entries()?
            .iter()
            .any(|e| e.branch() == Some(old.as_str()));
        if !elsewhere && refs::delete_branch_if_at(&repo, old, c.head)? {
            deleted_branch = Some(old.clone());
        }
    }
    Ok(Moved {
        name,
        admin_dir,
        files_written,
        deleted_branch,
    })
}

/// Delete every ignored or untracked file of the previous agent except the build caches the
/// config names (`[worktree] reuse_keep`): a `.env`, notes or secrets never reach an agent of
/// another plan.
pub(crate) fn scrub(path: &Path, keep: &crate::setup::Includes) -> Result<()> {
    let repo =
        Repository::open(path).map_err(WorktreeError::git(format!("open {}", path.display())))?;
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(false)
        .include_ignored(true)
        .recurse_ignored_dirs(false)
        .exclude_submodules(true);
    let statuses = repo
        .statuses(Some(&mut opts))
        .map_err(WorktreeError::git(format!(
            "list ignored files of {}",
            path.display()
        )))?;
    for s in statuses.iter() {
        let st = s.status();
        let leftover = st.contains(git2::Status::IGNORED) || st.contains(git2::Status::WT_NEW);
        let Some(rel) = s.path() else { continue };
        if leftover && !keep.is_match(rel) {
            crate::remove::remove_tree(&path.join(rel.trim_end_matches('/')))?;
        }
    }
    Ok(())
}

/// Check out `base` in the worktree at `path` (safe mode: only files that differ from the index
/// are touched; untracked and ignored files stay) and point its HEAD at `branch`.
pub(crate) fn checkout_branch(path: &Path, branch: &str, base: Oid) -> Result<usize> {
    let repo =
        Repository::open(path).map_err(WorktreeError::git(format!("open {}", path.display())))?;
    let tree = repo
        .find_commit(base)
        .and_then(|c| c.tree())
        .map_err(WorktreeError::git(format!("read the tree of {base}")))?;
    let mut written = 0usize;
    let mut opts = CheckoutBuilder::new();
    opts.safe();
    opts.progress(|_, done, _| written = done);
    repo.checkout_tree(tree.as_object(), Some(&mut opts))
        .map_err(WorktreeError::git(format!(
            "check out {base} in {}",
            path.display()
        )))?;
    drop(opts);
    repo.set_head(&format!("refs/heads/{branch}"))
        .map_err(WorktreeError::git(format!(
            "switch {} to {branch}",
            path.display()
        )))?;
    Ok(written)
}

/// Rename the worktree's directory and admin dir for its new agent and rewrite the two files
/// that point at each other. Call under the admin lock.
fn relocate(wt: &Worktrees, c: &Candidate, new_path: &Path) -> Result<(String, PathBuf)> {
    if new_path == c.path {
        return Ok((c.name.clone(), c.admin_dir.clone()));
    }
    if let Some(parent) = new_path.parent() {
        std::fs::create_dir_all(parent).map_err(WorktreeError::io("create", parent))?;
    }
    std::fs::rename(&c.path, new_path).map_err(WorktreeError::io("move", &c.path))?;
    let base_name = new_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| c.name.clone());
    let name = if base_name == c.name {
        c.name.clone()
    } else {
        admin::free_name(wt.common_dir(), &base_name, &[])
    };
    let admin_dir = admin::worktrees_dir(wt.common_dir()).join(&name);
    if admin_dir != c.admin_dir {
        std::fs::rename(&c.admin_dir, &admin_dir)
            .map_err(WorktreeError::io("move", &c.admin_dir))?;
    }
    // Atomic rewrites: a kill between them leaves each file old or new, never half written,
    // so the next command can still prove which directory is whose.
    baton_store::write_atomic(
        &admin_dir.join("gitdir"),
        format!("{}\n", new_path.join(".git").display()).as_bytes(),
    )?;
    baton_store::write_atomic(
        &new_path.join(".git"),
        crate::admin::dotgit_text(&admin_dir).as_bytes(),
    )?;
    Ok((name, admin_dir))
}
