//! Interrupted cleanups, finished: cleanup removes worktrees first and deletes their branches
//! after, so a SIGKILL in between used to leave `baton/<plan>/<agent>` branches with no
//! worktree — invisible to the next cleanup and blocking the next `create --plan` of those
//! agents ("branch already exists"). Before its first removal, cleanup records the branches
//! it means to delete (`<common dir>/baton-journal/remove-<pid>-<start>.json`); the next
//! command that touches worktrees finishes what a dead cleanup began, branch by branch, with
//! the checks cleanup itself makes at deletion time: the branch still points where it did, no
//! worktree (nor the main checkout) has it, another ref still holds the target, and merging
//! the branch into the target changes nothing. Anything else is kept and said.

use std::path::{Path, PathBuf};

use baton_plan::ProcessRef;
use git2::Oid;
use serde::{Deserialize, Serialize};

use crate::errors::{Result, WorktreeError};
use crate::integrated;
use crate::refs;
use crate::repo::Worktrees;

/// Name prefix of a cleanup's record in the journal directory.
pub const PREFIX: &str = "remove-";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Removal {
    pub schema_version: u32,
    pub owner: ProcessRef,
    /// The commit cleanup judged integration against.
    pub target: String,
    pub branches: Vec<Doomed>,
}

/// A branch cleanup will delete once its worktree is gone, and the commit it pointed at.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Doomed {
    pub branch: String,
    pub head: String,
}

/// Record the branches a cleanup is about to delete. Call before the first removal.
pub fn begin(
    common_dir: &Path,
    owner: ProcessRef,
    target: Oid,
    branches: Vec<Doomed>,
) -> Result<PathBuf> {
    let path =
        super::dir(common_dir).join(format!("{PREFIX}{}-{}.json", owner.pid, owner.start_time));
    baton_store::write_json(
        &path,
        &Removal {
            schema_version: 1,
            owner,
            target: target.to_string(),
            branches,
        },
    )?;
    Ok(path)
}

/// Finish the branch deletions of a cleanup whose process is gone. Returns one line per
/// branch looked at; a dry run deletes nothing.
/// `moved`: worktrees whose files an interrupted cleanup had moved into the spares (their
/// entries are removed before this runs, or, in a dry run, would be).
pub(super) fn finish(
    wt: &Worktrees,
    r: &Removal,
    moved: &[PathBuf],
    dry_run: bool,
) -> Result<Vec<String>> {
    let repo = wt.open()?;
    let entries = wt.entries()?;
    let target = Oid::from_str(&r.target).map_err(WorktreeError::git(
        "read the target of an interrupted cleanup",
    ))?;
    let main_branch = repo
        .head()
        .ok()
        .filter(|h| h.is_branch())
        .and_then(|h| h.shorthand().map(str::to_owned));
    let mut steps = Vec::new();
    // Branches still where the dead cleanup saw them (the others moved or are gone).
    let mut live = Vec::new();
    for d in &r.branches {
        let Ok(head) = Oid::from_str(&d.head) else {
            continue;
        };
        let full = format!("refs/heads/{}", d.branch);
        // A deletion cut short leaves git's `<ref>.lock`: the dead cleanup's, since it was
        // deleting this branch (we hold the admin lock); it would block every later write.
        super::remove_stale_ref_lock(wt, &d.branch, dry_run, &mut steps);
        match repo.find_reference(&full) {
            Err(_) => {} // deleted before the kill, or since
            Ok(now) if now.target() != Some(head) => steps.push(format!(
                "keep branch {} (it moved since the interrupted cleanup checked it)",
                d.branch
            )),
            Ok(_) => live.push((d, head, full)),
        }
    }
    // First finish the dead cleanup's half-done removals of those branches' worktrees: a
    // directory renamed aside (the entry still whole), or an admin dir partly deleted (no
    // `gitdir` left: git itself would prune it, and libgit2 refuses to delete any branch while
    // such a dir exists).
    let mut finished = Vec::new();
    let mut moved_away = Vec::new();
    for (d, _, full) in &live {
        for e in entries
            .iter()
            .filter(|e| e.branch() == Some(d.branch.as_str()))
        {
            if e.path.symlink_metadata().is_err()
                && crate::remove::trash_path_of(&e.path, r.owner.pid).is_dir()
            {
                finished.push(e.admin_dir.clone());
            } else if dry_run && moved.contains(&e.path) {
                // gone in the real run (`spare::finish_moves` said so already)
                moved_away.push(e.admin_dir.clone());
            }
        }
        finished.extend(half_removed_admins(wt.common_dir(), full));
    }
    for a in &finished {
        steps.push(format!("finish removing {}", a.display()));
        if !dry_run {
            crate::admin::remove_entry(a)?;
        }
    }
    for (d, head, full) in live {
        let kept = |why: &str| format!("keep branch {} ({why})", d.branch);
        if entries.iter().any(|e| {
            e.branch() == Some(d.branch.as_str())
                && !finished.contains(&e.admin_dir)
                && !moved_away.contains(&e.admin_dir)
        }) || main_branch.as_deref() == Some(d.branch.as_str())
        {
            // its worktree was not removed yet: the next cleanup decides about both again
            continue;
        }
        let integrated = refs::reachable_from_any_ref(&repo, target, std::slice::from_ref(&full))
            .and_then(|held| {
                if !held {
                    return Ok(Some("it alone holds the cleanup's target"));
                }
                let state = integrated::classify(&repo, head, target)?.state;
                Ok((!state.is_integrated())
                    .then_some("merging it into the cleanup's target would change something"))
            });
        match integrated {
            Ok(Some(why)) => steps.push(kept(why)),
            Err(e) => steps.push(kept(&e.to_string())),
            Ok(None) if dry_run => steps.push(format!("delete branch {}", d.branch)),
            Ok(None) => match refs::delete_branch_if_at(&repo, &d.branch, head) {
                Ok(_) => steps.push(format!(
                    "delete branch {} (an interrupted cleanup removed its worktree; its work is in the target)",
                    d.branch
                )),
                Err(e) => return Err(e),
            },
        }
    }
    Ok(steps)
}

/// Admin dirs whose `HEAD` names `full_ref` but that are no longer whole entries (a removal
/// cut short deleted their `gitdir`): git's own `worktree prune` removes such dirs.
fn half_removed_admins(common_dir: &Path, full_ref: &str) -> Vec<PathBuf> {
    let Ok(read) = std::fs::read_dir(crate::admin::worktrees_dir(common_dir)) else {
        return Vec::new();
    };
    read.flatten()
        .map(|e| e.path())
        .filter(|d| d.is_dir() && crate::admin::read_entry(d).is_none())
        .filter(|d| {
            std::fs::read_to_string(d.join("HEAD"))
                .is_ok_and(|h| h.trim() == format!("ref: {full_ref}"))
        })
        .collect()
}
