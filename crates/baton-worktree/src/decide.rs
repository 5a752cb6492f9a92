//! What cleanup does with one worktree: a pure function of its inspected state and the
//! options, so every rule is testable without a repository.
//!
//! Rules, in order: the main checkout is never touched; a worktree baton did not make is out
//! of scope unless `--all` or named; a live owner, a live execution that lists its agent as
//! pending or running, or a process working inside it keeps it even with `--force`; a lock
//! that is not baton's keeps it unless `--force`; an unreadable directory, or one that is no
//! longer this entry's worktree, is kept even with `--force` (unreadable is not missing); a
//! vanished directory is pruned (with a recovery ref for a detached head no ref holds); an
//! unreadable status keeps it; too young (`--older-than`) keeps it; *new* (no commits of its
//! own) and younger than the minimum age keeps it unless `--force`; uncommitted, untracked,
//! hidden (`assume-unchanged`/`skip-worktree`) edits or nested repositories keep it unless
//! `--force`; submodule commits that only its module store holds keep it even with `--force`
//! (commits only its HEAD reflog holds get recovery refs when it goes, see `cleanup.rs`);
//! integrated work is removed and its branch deleted (unless it is the target or checked out
//! elsewhere); unmerged work is kept, or with `--force` removed while its branch is kept; a
//! detached head whose commits are on no branch or tag is kept even with `--force`.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Serialize;

use crate::inspect::WorktreeInfo;
use crate::safety::Presence;

#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub force: bool,
    pub older_than: Option<Duration>,
    /// A worktree with no commits of its own is kept until it is this old (unless `--force`).
    pub min_age: Option<Duration>,
    pub keep_branches: bool,
    /// Also worktrees baton did not make.
    pub all: bool,
    /// The target as given (for messages).
    pub target: String,
    /// The branch the target names (full ref), if it names one.
    pub target_ref: Option<String>,
    /// (plan, agent) pairs a live execution lists as pending or running.
    pub active_agents: BTreeSet<(String, String)>,
}

/// Why a worktree is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeepReason {
    MainCheckout,
    NotCreatedByBaton,
    OwnerAlive,
    LiveExecution,
    ProcessInside,
    Locked,
    Unreadable,
    NotItsDirectory,
    StatusUnreadable,
    TooRecent,
    New,
    Dirty,
    Untracked,
    HiddenEdits,
    NestedRepository,
    SubmoduleCommits,
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
    /// The directory is gone: remove the admin entry only; first write a recovery ref for
    /// its head when `recover` (a detached commit no ref or other worktree holds).
    Prune {
        recover: bool,
    },
}

/// Decide for one worktree. `requested`: the user named it. `detached_reachable` says whether
/// a detached head's commit is held by some ref or other worktree (computed only when needed).
pub fn decide(
    info: &WorktreeInfo,
    rules: &Rules,
    requested: bool,
    detached_reachable: impl FnOnce() -> bool,
) -> Decision {
    use KeepReason as K;
    let keep = |r: KeepReason, m: String| Decision::Keep(r, m);
    if info.main {
        return keep(K::MainCheckout, "the main checkout is never removed".into());
    }
    if !info.created_by_baton && !rules.all && !requested {
        return keep(
            K::NotCreatedByBaton,
            "not made by baton; pass --all (or name it) to include it".into(),
        );
    }
    if info.owner_alive {
        let pid = info.owner.map(|o| o.pid).unwrap_or_default();
        return keep(K::OwnerAlive, format!("its owner process {pid} is running"));
    }
    if let (Some(plan), Some(agent)) = (&info.plan, &info.agent)
        && rules.active_agents.contains(&(plan.clone(), agent.clone()))
    {
        return keep(
            K::LiveExecution,
            format!("the execution of plan {plan} lists agent {agent} as pending or running"),
        );
    }
    if !info.processes_inside.is_empty() {
        let pids: Vec<String> = info.processes_inside.iter().map(u32::to_string).collect();
        return keep(
            K::ProcessInside,
            format!("process(es) {} work inside it", pids.join(", ")),
        );
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
    match &info.presence {
        Presence::Owned => {}
        Presence::Missing => {
            let recover = info.detached && info.head_oid.is_some() && !detached_reachable();
            return Decision::Prune { recover };
        }
        Presence::Unreadable(why) => {
            return keep(
                K::Unreadable,
                format!("cannot be read ({why}); unreadable is not missing, so it stays"),
            );
        }
        Presence::Foreign(why) => {
            return keep(
                K::NotItsDirectory,
                format!("{why}; baton removes only directories it can prove are this worktree"),
            );
        }
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
    if info.fresh
        && !rules.force
        && let (Some(min), Some(age)) = (rules.min_age, info.age_secs)
        && Duration::from_secs(age) < min
    {
        return keep(
            K::New,
            format!(
                "new: no commits of its own yet and only {age}s old (minimum {}s); pass --force to remove it",
                min.as_secs()
            ),
        );
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
        if let Some(h) = &info.hidden {
            if !h.hidden_edits.is_empty() {
                return keep(
                    K::HiddenEdits,
                    format!(
                        "edits hidden by assume-unchanged/skip-worktree in {}; pass --force",
                        h.hidden_edits.join(", ")
                    ),
                );
            }
            if !h.nested_repos.is_empty() {
                return keep(
                    K::NestedRepository,
                    format!(
                        "repositories with their own history inside: {}; move them out or pass --force",
                        h.nested_repos.join(", ")
                    ),
                );
            }
        }
    }
    if !info.submodule_losses.is_empty() {
        return keep(
            K::SubmoduleCommits,
            format!(
                "submodule commits exist only in this worktree's module store: {}; push them first",
                info.submodule_losses.join("; ")
            ),
        );
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
        let full = info.branch.as_ref().map(|b| format!("refs/heads/{b}"));
        let branch_kept = if rules.keep_branches {
            Some(BranchKept::Asked)
        } else if full.is_some() && full == rules.target_ref {
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
    use crate::safety::Hidden;

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
            created_by_baton: true,
            presence: Presence::Owned,
            fresh: false,
            hidden: None,
            submodule_losses: Vec::new(),
            reflog_orphans: Vec::new(),
            processes_inside: Vec::new(),
            admin_dir: None,
            head_oid: None,
            status_error: None,
        }
    }

    fn rules(force: bool) -> Rules {
        Rules {
            force,
            target: "main".into(),
            target_ref: Some("refs/heads/main".into()),
            min_age: Some(Duration::from_secs(3600)),
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
            keep_reason(decide(&i, &rules(true), false, || true)),
            Some(KeepReason::OwnerAlive)
        );
        i.owner_alive = false;
        assert!(matches!(
            decide(&i, &rules(false), false, || true),
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
            keep_reason(decide(&i, &rules(false), false, || true)),
            Some(KeepReason::Unmerged)
        );
        assert_eq!(
            decide(&i, &rules(true), false, || true),
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
            keep_reason(decide(&i, &rules(true), false, || false)),
            Some(KeepReason::DetachedUnreachable)
        );
        assert!(matches!(
            decide(&i, &rules(true), false, || true),
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
            keep_reason(decide(&i, &rules(false), false, || true)),
            Some(KeepReason::Untracked)
        );
        i.branch = Some("main".into());
        assert_eq!(
            decide(&i, &rules(true), false, || true),
            Decision::Remove {
                branch_kept: Some(BranchKept::IsTarget),
                detached: false
            }
        );
        i.dirty = None;
        assert_eq!(
            keep_reason(decide(&i, &rules(true), false, || true)),
            Some(KeepReason::StatusUnreadable)
        );
    }

    #[test]
    fn a_person_lock_needs_force_and_a_vanished_directory_is_pruned() {
        let mut i = clean_merged();
        i.locked = true;
        assert_eq!(
            keep_reason(decide(&i, &rules(false), false, || true)),
            Some(KeepReason::Locked)
        );
        i.exists = false;
        i.presence = Presence::Missing;
        assert_eq!(
            decide(&i, &rules(true), false, || true),
            Decision::Prune { recover: false }
        );
        i.detached = true;
        i.head_oid = Some(git2::Oid::zero());
        assert_eq!(
            decide(&i, &rules(true), false, || false),
            Decision::Prune { recover: true }
        );
    }

    #[test]
    fn unreadable_or_foreign_directories_are_kept_even_with_force() {
        let mut i = clean_merged();
        i.presence = Presence::Unreadable("permission denied".into());
        assert_eq!(
            keep_reason(decide(&i, &rules(true), true, || true)),
            Some(KeepReason::Unreadable)
        );
        i.presence = Presence::Foreign("belongs to another entry".into());
        assert_eq!(
            keep_reason(decide(&i, &rules(true), true, || true)),
            Some(KeepReason::NotItsDirectory)
        );
    }

    #[test]
    fn only_baton_worktrees_unless_all_or_named() {
        let mut i = clean_merged();
        i.created_by_baton = false;
        assert_eq!(
            keep_reason(decide(&i, &rules(false), false, || true)),
            Some(KeepReason::NotCreatedByBaton)
        );
        assert!(matches!(
            decide(&i, &rules(false), true, || true),
            Decision::Remove { .. }
        ));
        let all = Rules {
            all: true,
            ..rules(false)
        };
        assert!(matches!(
            decide(&i, &all, false, || true),
            Decision::Remove { .. }
        ));
    }

    #[test]
    fn new_worktrees_wait_for_the_minimum_age_or_force() {
        let mut i = clean_merged();
        i.fresh = true;
        assert_eq!(
            keep_reason(decide(&i, &rules(false), false, || true)),
            Some(KeepReason::New)
        );
        assert!(matches!(
            decide(&i, &rules(true), false, || true),
            Decision::Remove { .. }
        ));
        i.age_secs = Some(7200);
        assert!(matches!(
            decide(&i, &rules(false), false, || true),
            Decision::Remove { .. }
        ));
    }

    #[test]
    fn work_in_progress_keeps_it_even_with_force() {
        let mut i = clean_merged();
        i.processes_inside = vec![42];
        assert_eq!(
            keep_reason(decide(&i, &rules(true), false, || true)),
            Some(KeepReason::ProcessInside)
        );
        i.processes_inside.clear();
        i.plan = Some("p".into());
        i.agent = Some("a".into());
        let mut r = rules(true);
        r.active_agents.insert(("p".into(), "a".into()));
        assert_eq!(
            keep_reason(decide(&i, &r, false, || true)),
            Some(KeepReason::LiveExecution)
        );
        i.plan = None;
        i.submodule_losses = vec!["sub (0123456789)".into()];
        assert_eq!(
            keep_reason(decide(&i, &rules(true), false, || true)),
            Some(KeepReason::SubmoduleCommits)
        );
    }

    #[test]
    fn hidden_edits_and_nested_repositories_need_force() {
        let mut i = clean_merged();
        i.hidden = Some(Hidden {
            hidden_edits: vec!["a.txt".into()],
            ..Hidden::default()
        });
        assert_eq!(
            keep_reason(decide(&i, &rules(false), false, || true)),
            Some(KeepReason::HiddenEdits)
        );
        i.hidden = Some(Hidden {
            nested_repos: vec!["vendor/x".into()],
            ..Hidden::default()
        });
        assert_eq!(
            keep_reason(decide(&i, &rules(false), false, || true)),
            Some(KeepReason::NestedRepository)
        );
        assert!(matches!(
            decide(&i, &rules(true), false, || true),
            Decision::Remove { .. }
        ));
    }

    #[test]
    fn the_target_is_compared_by_full_ref() {
        let mut i = clean_merged();
        i.branch = Some("feature".into());
        let mut r = rules(false);
        r.target = "refs/heads/feature".into();
        r.target_ref = Some("refs/heads/feature".into());
        assert_eq!(
            decide(&i, &r, false, || true),
            Decision::Remove {
                branch_kept: Some(BranchKept::IsTarget),
                detached: false
            }
        );
    }
}
