//! What cleanup does with one worktree: a pure function of its inspected state and the
//! options, so every rule is testable without a repository.
//!
//! Rules, in order: the main checkout is never touched; a live owner keeps a worktree even with
//! `--force`; a lock that is not baton's keeps it unless `--force`; a vanished directory is
//! pruned; an unreadable status keeps it; too young (`--older-than`) keeps it; uncommitted or
//! untracked work keeps it unless `--force`; integrated work is removed and its branch deleted
//! (unless it is the target or checked out elsewhere); unmerged work is kept, or with
//! `--force` removed while its branch is kept; a detached head whose commits are on no branch
//! or tag is kept even with `--force`.

use std::time::Duration;

use serde::Serialize;

use crate::inspect::WorktreeInfo;

#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub force: bool,
    pub older_than: Option<Duration>,
    pub keep_branches: bool,
    /// The target branch's short name.
    pub target: String,
}

/// Why a worktree is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeepReason {
    MainCheckout,
    OwnerAlive,
    Locked,
    StatusUnreadable,
    TooRecent,
    Dirty,
    Untracked,
    Unmerged,
    DetachedUnreachable,
    NoHead,
}

/// Why a branch is kept although its worktree goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BranchKept {
    /// It has commits the target does not have.
    Unmerged,
    /// It is the target branch.
    IsTarget,
    /// Another worktree has it checked out.
    CheckedOutElsewhere,
    /// `--keep-branches`.
    Asked,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Keep(KeepReason, String),
    /// Remove the directory and admin dir; delete the branch when `branch_kept` is `None`.
    Remove {
        branch_kept: Option<BranchKept>,
        /// The head is detached (there is no branch to delete or keep).
        detached: bool,
    },
    /// The directory is gone: remove the admin entry only.
    Prune,
}

/// Decide for one worktree. `detached_reachable` says whether a detached head's commit is on
/// some branch or tag (callers compute it only when needed).
pub fn decide(
    info: &WorktreeInfo,
    rules: &Rules,
    detached_reachable: impl FnOnce() -> bool,
) -> Decision {
    use KeepReason as K;
    let keep = |r: KeepReason, m: String| Decision::Keep(r, m);
    if info.main {
        return keep(K::MainCheckout, "the main checkout is never removed".into());
    }
    if info.owner_alive {
        let pid = info.owner.map(|o| o.pid).unwrap_or_default();
        return keep(K::OwnerAlive, format!("its owner process {pid} is running"));
    }
    if info.foreign_lock() && !rules.force {
        let why = info
            .lock_reason
            .clone()
            .unwrap_or_else(|| "no reason given".into());
        return keep(
            K::Locked,
            format!("locked ({why}); unlock it or pass --force"),
        );
    }
    if !info.exists {
        return Decision::Prune;
    }
    let Some(dirty) = info.dirty else {
        let why = info
            .status_error
            .clone()
            .unwrap_or_else(|| "unknown error".into());
        return keep(
            K::StatusUnreadable,
            format!("its status cannot be read: {why}"),
        );
    };
    if let (Some(min), Some(age)) = (rules.older_than, info.age_secs)
        && Duration::from_secs(age) < min
    {
        return keep(K::TooRecent, format!("only {age}s old"));
    }
    if !rules.force {
        if dirty.modified > 0 {
            return keep(
                K::Dirty,
                format!(
                    "{} uncommitted change(s); commit them or pass --force",
                    dirty.modified
                ),
            );
        }
        if dirty.untracked > 0 {
            return keep(
                K::Untracked,
                format!(
                    "{} untracked file(s); commit or delete them, or pass --force",
                    dirty.untracked
                ),
            );
        }
    }
    let Some(merge) = info.merge else {
        return keep(K::NoHead, "its HEAD cannot be read".into());
    };
    if info.detached {
        if merge.is_integrated() || (rules.force && detached_reachable()) {
            return Decision::Remove {
                branch_kept: None,
                detached: true,
            };
        }
        if rules.force {
            return keep(
                K::DetachedUnreachable,
                "detached HEAD with commits on no branch or tag; create a branch for them first"
                    .into(),
            );
        }
        return keep(
            K::Unmerged,
            format!("detached HEAD not merged into {}", rules.target),
        );
    }
    if merge.is_integrated() {
        let branch_kept = if rules.keep_branches {
            Some(BranchKept::Asked)
        } else if info.branch.as_deref() == Some(rules.target.as_str()) {
            Some(BranchKept::IsTarget)
        } else if !info.branch_checked_out_elsewhere.is_empty() {
            Some(BranchKept::CheckedOutElsewhere)
        } else {
            None
        };
        return Decision::Remove {
            branch_kept,
            detached: false,
        };
    }
    if rules.force {
        return Decision::Remove {
            branch_kept: Some(BranchKept::Unmerged),
            detached: false,
        };
    }
    let ahead = info.ahead.unwrap_or(0);
    keep(
        K::Unmerged,
        format!(
            "{ahead} commit(s) not in {}; merge them or pass --force (the branch is kept)",
            rules.target
        ),
    )
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use baton_plan::ProcessRef;

    use super::*;
    use crate::MergeState;
    use crate::inspect::Dirty;

    fn clean_merged() -> WorktreeInfo {
        WorktreeInfo {
            name: Some("w".into()),
            path: PathBuf::from("/w"),
            main: false,
            exists: true,
            branch: Some("agent".into()),
            head: Some("0".repeat(40)),
            detached: false,
            base: Some("main".into()),
            base_commit: None,
            plan: None,
            agent: None,
            dirty: Some(Dirty {
                modified: 0,
                untracked: 0,
            }),
            ahead: Some(0),
            behind: Some(0),
            merge: Some(MergeState::Merged),
            merge_detail: None,
            locked: false,
            lock_reason: None,
            owner: None,
            owner_alive: false,
            prunable: false,
            branch_checked_out_elsewhere: Vec::new(),
            age_secs: Some(10),
            admin_dir: None,
            head_oid: None,
            status_error: None,
        }
    }

    fn rules(force: bool) -> Rules {
        Rules {
            force,
            target: "main".into(),
            ..Rules::default()
        }
    }

    fn keep_reason(d: Decision) -> Option<KeepReason> {
        match d {
            Decision::Keep(r, _) => Some(r),
            _ => None,
        }
    }

    #[test]
    fn a_live_owner_keeps_a_worktree_even_with_force() {
        let mut i = clean_merged();
        i.locked = true;
        i.owner = Some(ProcessRef {
            pid: 1,
            start_time: 1,
        });
        i.owner_alive = true;
        assert_eq!(
            keep_reason(decide(&i, &rules(true), || true)),
            Some(KeepReason::OwnerAlive)
        );
        i.owner_alive = false;
        assert!(matches!(
            decide(&i, &rules(false), || true),
            Decision::Remove {
                branch_kept: None,
                ..
            }
        ));
    }

    #[test]
    fn unmerged_work_keeps_its_branch_even_with_force() {
        let mut i = clean_merged();
        i.merge = Some(MergeState::Unmerged);
        assert_eq!(
            keep_reason(decide(&i, &rules(false), || true)),
            Some(KeepReason::Unmerged)
        );
        assert_eq!(
            decide(&i, &rules(true), || true),
            Decision::Remove {
                branch_kept: Some(BranchKept::Unmerged),
                detached: false
            }
        );
    }

    #[test]
    fn detached_commits_on_no_ref_are_kept_even_with_force() {
        let mut i = clean_merged();
        i.branch = None;
        i.detached = true;
        i.merge = Some(MergeState::Unmerged);
        assert_eq!(
            keep_reason(decide(&i, &rules(true), || false)),
            Some(KeepReason::DetachedUnreachable)
        );
        assert!(matches!(
            decide(&i, &rules(true), || true),
            Decision::Remove { detached: true, .. }
        ));
    }

    #[test]
    fn dirty_and_untracked_need_force_and_the_target_branch_is_never_deleted() {
        let mut i = clean_merged();
        i.dirty = Some(Dirty {
            modified: 0,
            untracked: 2,
        });
        assert_eq!(
            keep_reason(decide(&i, &rules(false), || true)),
            Some(KeepReason::Untracked)
        );
        i.branch = Some("main".into());
        assert_eq!(
            decide(&i, &rules(true), || true),
            Decision::Remove {
                branch_kept: Some(BranchKept::IsTarget),
                detached: false
            }
        );
        i.dirty = None;
        assert_eq!(
            keep_reason(decide(&i, &rules(true), || true)),
            Some(KeepReason::StatusUnreadable)
        );
    }

    #[test]
    fn a_person_lock_needs_force_and_a_vanished_directory_is_pruned() {
        let mut i = clean_merged();
        i.locked = true;
        assert_eq!(
            keep_reason(decide(&i, &rules(false), || true)),
            Some(KeepReason::Locked)
        );
        i.exists = false;
        assert_eq!(decide(&i, &rules(true), || true), Decision::Prune);
    }
}
