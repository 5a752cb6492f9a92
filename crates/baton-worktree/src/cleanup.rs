//! `cleanup`: remove worktrees whose work is integrated, prune vanished ones, and report what
//! was kept and why. Decisions come from [`crate::decide`]; this file selects, executes (in
//! parallel) and reports. Nothing is removed in a dry run.
//!
//! Every removal is preceded by the identity check of [`crate::safety::presence`]; every
//! branch deletion by proof that the target stays held by another ref; a pruned entry whose
//! detached head nothing else holds leaves a recovery ref `refs/baton/recovered/<name>-<oid>`.

use std::path::PathBuf;
use std::time::SystemTime;

use baton_plan::ProcessRef;
use rayon::prelude::*;
use serde::Serialize;

use crate::admin;
use crate::decide::{self, BranchKept, Decision, KeepReason, Rules};
use crate::errors::Result;
use crate::inspect::{self, WorktreeInfo};
use crate::lock::admin_lock;
use crate::process;
use crate::refs;
use crate::remove;
use crate::repo::Worktrees;
use crate::safety::{Hidden, Presence};
use crate::spare;

#[derive(Debug, Clone, Default)]
pub struct CleanupOptions {
    pub force: bool,
    pub dry_run: bool,
    pub older_than: Option<std::time::Duration>,
    pub keep_branches: bool,
    /// Only these worktrees (names, paths or branches); asking for one that is kept fails.
    pub only: Vec<String>,
    /// Only worktrees made for this plan.
    pub plan: Option<String>,
    /// The plan is stored (so a plan with no worktrees is not an unknown plan).
    pub plan_stored: bool,
    pub target: Option<String>,
    /// Also worktrees baton did not make.
    pub all: bool,
    /// New worktrees (no commits of their own) are kept until this old, unless `--force`.
    pub min_age: Option<std::time::Duration>,
    /// (plan, agent) pairs a live execution lists as pending or running.
    pub active_agents: std::collections::BTreeSet<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Remove the directory and the admin entry.
    Remove,
    /// Remove the admin entry of a directory that is gone.
    Prune,
}

#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub kind: ActionKind,
    pub name: String,
    pub path: PathBuf,
    pub branch: Option<String>,
    pub head: Option<String>,
    pub merge: Option<crate::MergeState>,
    /// The branch is deleted with the worktree.
    pub delete_branch: bool,
    /// Why the branch stays, if it does.
    pub branch_kept: Option<BranchKept>,
    /// A baton lock whose owner is gone, ignored.
    pub stale_owner: Option<ProcessRef>,
    /// Anything discarded besides the checked-out commit: uncommitted or untracked work (with
    /// `--force`), ignored files, nested repositories, hidden edits.
    pub discards_changes: bool,
    /// Uncommitted and untracked changes discarded.
    pub dirty: Option<crate::Dirty>,
    /// Ignored files (count and sample), caches, nested repositories, hidden edits discarded.
    pub hidden: Option<Hidden>,
    /// Refs written to keep commits reachable that only this entry held: a pruned entry's
    /// detached head, or commits only a removed worktree's HEAD reflog held.
    pub recovered_refs: Vec<String>,
    /// Kept on disk as a spare for the next create (`[worktree] spares`) instead of deleted:
    /// the same removal for git (entry and branch go), without its ignored files except
    /// `reuse_keep`.
    pub spare: bool,
    /// Done (false in a dry run, or when it failed).
    pub done: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Kept {
    pub name: String,
    pub path: PathBuf,
    pub branch: Option<String>,
    pub reason: KeepReason,
    pub message: String,
    /// The user named this worktree, so keeping it is a refusal.
    pub requested: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct CleanupReport {
    pub target: String,
    /// `baton` (worktrees baton made, and those named) or `all` (`--all`).
    pub scope: &'static str,
    pub dry_run: bool,
    pub actions: Vec<Action>,
    pub kept: Vec<Kept>,
    /// Leftovers of interrupted removals, deleted (or, in a dry run, to delete).
    pub swept: Vec<PathBuf>,
    /// Interrupted creates, rolled back or forward (or, in a dry run, to be).
    pub debris: Vec<crate::journal::Debris>,
    /// Spares on disk after this cleanup (`[worktree] spares`), with their disk use.
    pub spares: crate::SpareUsage,
    /// A worktree the user named was kept, or an action failed.
    pub refused: bool,
}

pub fn cleanup(wt: &Worktrees, opts: &CleanupOptions, now: SystemTime) -> Result<CleanupReport> {
    let debris = crate::journal::recover(wt, opts.dry_run)?;
    let listing = inspect::list(wt, opts.target.as_deref(), now)?;
    let entries = wt.entries()?;
    // Resolve names first: an unknown one is bad input and nothing happens.
    let mut wanted = Vec::new();
    for given in &opts.only {
        wanted.push(wt.find_entry(&entries, given)?.name.clone());
    }
    if let Some(plan) = &opts.plan
        && !opts.plan_stored
        && !entries
            .iter()
            .any(|e| e.meta.as_ref().and_then(|m| m.plan.as_deref()) == Some(plan.as_str()))
    {
        return Err(crate::WorktreeError::UnknownPlan {
            given: plan.clone(),
        });
    }
    let rules = Rules {
        force: opts.force,
        older_than: opts.older_than,
        min_age: opts.min_age,
        keep_branches: opts.keep_branches,
        all: opts.all,
        target: listing.target.clone(),
        target_ref: listing.target_ref.clone(),
        active_agents: opts.active_agents.clone(),
    };
    let repo = wt.open()?;
    let target_oid = git2::Oid::from_str(&listing.target_commit)
        .map_err(crate::WorktreeError::git("read the target commit"))?;
    let mut actions = Vec::new();
    let mut kept = Vec::new();
    // Room for new spares once those beyond the configured number are gone.
    let mut spare_room = wt.config.spares.saturating_sub(spare::list(&wt.root).len());
    // What the rollback of interrupted creates removes is not there for the real run to decide
    // on; a dry run leaves it out too, so both say the same.
    let rolled_back: Vec<&PathBuf> = debris.iter().flat_map(|d| &d.rolled_back).collect();
    for info in listing
        .worktrees
        .iter()
        .filter(|i| !i.main && !rolled_back.contains(&&i.path))
    {
        let name = info.name.clone().unwrap_or_default();
        let requested = wanted.contains(&name);
        if !wanted.is_empty() && !requested {
            continue;
        }
        if let Some(plan) = &opts.plan
            && info.plan.as_deref() != Some(plan.as_str())
            && !requested
        {
            continue;
        }
        let reachable = || {
            info.head_oid.is_some_and(|h| {
                held_by_other_worktree(&repo, &listing.worktrees, info, h)
                    || refs::reachable_from_refs(&repo, h, &[]).unwrap_or(false)
            })
        };
        match decide::decide(info, &rules, requested, reachable) {
            Decision::Keep(reason, message) => kept.push(Kept {
                name,
                path: info.path.clone(),
                branch: info.branch.clone(),
                reason,
                message,
                requested,
            }),
            Decision::Prune { recover } => {
                let mut a = action(info, ActionKind::Prune, None, true);
                if recover && let Some(h) = info.head_oid {
                    a.recovered_refs.push(recovery_ref(&name, h));
                }
                actions.push(a);
            }
            Decision::Remove {
                mut branch_kept,
                detached,
            } => {
                // The target must stay held by another ref: `--target <sha>` (or `feature~0`)
                // of this branch's tip names only a commit, and deleting the one branch that
                // holds it would orphan it. Decided here so a dry run says the same.
                if branch_kept.is_none()
                    && !detached
                    && let Some(b) = &info.branch
                    && !refs::reachable_from_any_ref(
                        &repo,
                        target_oid,
                        &[format!("refs/heads/{b}")],
                    )?
                {
                    branch_kept = Some(BranchKept::IsTarget);
                }
                let mut a = action(info, ActionKind::Remove, branch_kept, detached);
                if spare_room > 0 && spare_eligible(info) {
                    a.spare = true;
                    spare_room -= 1;
                }
                actions.push(a);
            }
        }
    }
    let swept = remove::leftovers(&wt.root);
    let budget = wt.config.spares_max_bytes();
    let mut spares_freed = spare::to_trim(&wt.root, wt.config.spares, budget);
    if !opts.dry_run {
        spares_freed = spare::trim(&wt.root, wt.config.spares, budget)?;
        execute(wt, &listing.worktrees, target_oid, &mut actions)?;
        // the new spares count against the budget too (the newest are kept)
        spares_freed += spare::trim(&wt.root, wt.config.spares, budget)?;
        for p in &swept {
            remove::remove_tree(p)?;
        }
    }
    let spares = spare::usage(&wt.root, spares_freed);
    let refused = kept.iter().any(|k| k.requested) || actions.iter().any(|a| a.error.is_some());
    Ok(CleanupReport {
        target: listing.target,
        scope: if opts.all { "all" } else { "baton" },
        dry_run: opts.dry_run,
        actions,
        kept,
        swept,
        debris,
        spares,
        refused,
    })
}

fn action(
    info: &WorktreeInfo,
    kind: ActionKind,
    branch_kept: Option<BranchKept>,
    detached: bool,
) -> Action {
    let has_branch = info.branch.is_some() && !detached && kind == ActionKind::Remove;
    Action {
        kind,
        name: info.name.clone().unwrap_or_default(),
        path: info.path.clone(),
        branch: info.branch.clone(),
        head: info.head.clone(),
        merge: info.merge,
        delete_branch: has_branch && branch_kept.is_none(),
        branch_kept: if has_branch { branch_kept } else { None },
        stale_owner: info.owner.filter(|_| !info.owner_alive),
        discards_changes: info.dirty.is_some_and(|d| !d.is_clean())
            || info.hidden.as_ref().is_some_and(Hidden::loses_anything),
        dirty: info.dirty,
        hidden: info.hidden.clone(),
        // commits only the worktree's HEAD reflog holds go with its admin dir: keep them
        recovered_refs: if kind == ActionKind::Remove {
            info.reflog_orphans
                .iter()
                .map(|c| {
                    format!(
                        "refs/baton/recovered/{}-{}",
                        info.name.as_deref().unwrap_or("wt"),
                        &c[..12.min(c.len())]
                    )
                })
                .collect()
        } else {
            Vec::new()
        },
        spare: false,
        done: false,
        error: None,
    }
}

/// Only a worktree baton made whose removal loses nothing but ignored files becomes a spare
/// (and those are deleted first): no uncommitted or untracked work, hidden edits or nested
/// repositories. A worktree the user made (`--all`) is removed as before.
fn spare_eligible(info: &WorktreeInfo) -> bool {
    info.created_by_baton
        && info.head_oid.is_some()
        && info.dirty.is_some_and(|d| d.is_clean())
        && info
            .hidden
            .as_ref()
            .is_some_and(|h| h.nested_repos.is_empty() && h.hidden_edits.is_empty())
}

const REMOVAL_THREADS: usize = 8;

/// `refs/baton/recovered/<name>-<oid>`: where a commit only a pruned entry held is kept.
pub fn recovery_ref(name: &str, head: git2::Oid) -> String {
    format!("refs/baton/recovered/{name}-{}", &head.to_string()[..12])
}

/// Is commit `h` the head of (or an ancestor of the head of) a worktree other than `info`?
fn held_by_other_worktree(
    repo: &git2::Repository,
    all: &[WorktreeInfo],
    info: &WorktreeInfo,
    h: git2::Oid,
) -> bool {
    all.iter()
        .filter(|o| o.path != info.path)
        .filter_map(|o| o.head_oid)
        .any(|o| o == h || repo.graph_descendant_of(o, h).unwrap_or(false))
}

fn execute(
    wt: &Worktrees,
    infos: &[WorktreeInfo],
    target: git2::Oid,
    actions: &mut [Action],
) -> Result<()> {
    // The branches go after their worktrees: a record of them first, so a cleanup killed in
    // between is finished by the next command rather than leaving branches with no worktree.
    let doomed: Vec<crate::journal::removal::Doomed> = actions
        .iter()
        .filter(|a| a.delete_branch)
        .filter_map(|a| {
            Some(crate::journal::removal::Doomed {
                branch: a.branch.clone()?,
                head: a.head.clone()?,
            })
        })
        .collect();
    let record = match (doomed.is_empty(), process::current_process()) {
        (false, Some(me)) => Some(crate::journal::removal::begin(
            wt.common_dir(),
            me,
            target,
            doomed,
        )?),
        _ => None,
    };
    let result = execute_recorded(wt, infos, target, actions);
    if let Some(r) = &record {
        crate::journal::end(r);
    }
    result
}

fn execute_recorded(
    wt: &Worktrees,
    infos: &[WorktreeInfo],
    target: git2::Oid,
    actions: &mut [Action],
) -> Result<()> {
    let find = |name: &str| infos.iter().find(|i| i.name.as_deref() == Some(name));
    // Unlinking waits on the filesystem more than on the CPU: more threads than cores keep
    // the disk busy (measured here: 8 threads halve the time of 2 on a 2-core machine).
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(REMOVAL_THREADS)
        .build()
        .ok();
    let run = |a: &mut [Action], f: &(dyn Fn(&mut Action) + Sync)| match &pool {
        Some(p) => p.install(|| a.par_iter_mut().for_each(f)),
        None => a.par_iter_mut().for_each(f),
    };
    run(actions, &|a: &mut Action| {
        let Some(info) = find(&a.name) else { return };
        let Some(admin_dir) = info.admin_dir.as_deref() else {
            return;
        };
        // An owner may have taken the worktree since it was inspected, or its HEAD moved (a
        // detached commit made meanwhile would go with the admin dir).
        if let Some(entry) = admin::read_entry(admin_dir) {
            let owner = entry.locked.as_deref().and_then(process::parse_lock_reason);
            if owner.as_ref().is_some_and(process::is_alive) {
                a.error = Some("an owner process locked it meanwhile".into());
                return;
            }
            let moved = match (&entry.head, info.head_oid) {
                (admin::Head::Detached(now), Some(then)) => *now != then,
                (admin::Head::Branch(r), _) => Some(r.as_str()) != info.branch_ref().as_deref(),
                _ => false,
            };
            if moved {
                a.error = Some("its HEAD changed since it was inspected; run cleanup again".into());
                return;
            }
        }
        let result = match a.kind {
            ActionKind::Remove => info
                .reflog_orphans
                .iter()
                .zip(&a.recovered_refs)
                .try_for_each(|(c, r)| {
                    let oid = git2::Oid::from_str(c)
                        .map_err(crate::WorktreeError::git("read a reflog commit"))?;
                    write_recovery_ref(wt, r, oid)
                })
                .and_then(|()| {
                    if a.spare && keep_spare(wt, info, &a.path, admin_dir).is_ok() {
                        return Ok(());
                    }
                    a.spare = false;
                    remove::remove_worktree(&a.path, admin_dir)
                }),
            ActionKind::Prune
                if crate::safety::presence(&a.path, admin_dir) != Presence::Missing =>
            {
                a.error = Some("its directory reappeared or cannot be read".into());
                return;
            }
            ActionKind::Prune => match (a.recovered_refs.first(), info.head_oid) {
                (Some(r), Some(h)) => {
                    write_recovery_ref(wt, r, h).and_then(|()| admin::remove_entry(admin_dir))
                }
                _ => admin::remove_entry(admin_dir),
            },
        };
        if result.is_ok()
            && let Some(parent) = a.path.parent()
            && parent.starts_with(&wt.root)
            && parent != wt.root
        {
            // a plan's directory goes with its last worktree; fails harmlessly if not empty
            let _ = std::fs::remove_dir(parent);
        }
        match result {
            Ok(()) => a.done = true,
            Err(e) => a.error = Some(e.to_string()),
        }
    });
    let deletions: Vec<&mut Action> = actions
        .iter_mut()
        .filter(|a| a.done && a.delete_branch)
        .collect();
    if deletions.is_empty() {
        return Ok(());
    }
    let repo = wt.open()?;
    let _lock = admin_lock(wt.common_dir())?;
    let entries = wt.entries()?;
    let main_branch = repo
        .head()
        .ok()
        .filter(|h| h.is_branch())
        .and_then(|h| h.shorthand().map(str::to_owned));
    for a in deletions {
        let (Some(branch), Some(head)) = (a.branch.clone(), a.head.as_deref()) else {
            continue;
        };
        let elsewhere = entries.iter().any(|e| e.branch() == Some(branch.as_str()))
            || main_branch.as_deref() == Some(branch.as_str());
        let Ok(oid) = git2::Oid::from_str(head) else {
            continue;
        };
        // The target must stay held by another ref: `--target <sha>` of this branch's tip
        // names a commit, and deleting the only branch holding it would orphan it.
        let full = format!("refs/heads/{branch}");
        if !refs::reachable_from_any_ref(&repo, target, std::slice::from_ref(&full))? {
            a.delete_branch = false;
            a.branch_kept = Some(BranchKept::IsTarget);
            continue;
        }
        if elsewhere {
            a.delete_branch = false;
            a.branch_kept = Some(BranchKept::CheckedOutElsewhere);
            continue;
        }
        match refs::delete_branch_if_at(&repo, &branch, oid) {
            Ok(true) => {}
            Ok(false) => {
                a.delete_branch = false;
                a.error = Some(format!("branch {branch} moved since it was checked; kept"));
            }
            Err(e) => {
                a.delete_branch = false;
                a.error = Some(e.to_string());
            }
        }
    }
    Ok(())
}

/// Keep the worktree at `path` as a spare, after the same proof of identity as a removal.
fn keep_spare(
    wt: &Worktrees,
    info: &WorktreeInfo,
    path: &std::path::Path,
    admin_dir: &std::path::Path,
) -> Result<()> {
    let Some(head) = info.head_oid else {
        return Err(crate::WorktreeError::BadConfig {
            field: "spares",
            message: "no HEAD".into(),
        });
    };
    if crate::safety::presence(path, admin_dir) != Presence::Owned {
        return Err(crate::WorktreeError::NotOurs {
            path: path.to_owned(),
            why: "not proven this entry's worktree".into(),
        });
    }
    spare::keep(
        &wt.root,
        path,
        admin_dir,
        head,
        &wt.config.reuse_keep_set()?,
    )
}

fn write_recovery_ref(wt: &Worktrees, name: &str, head: git2::Oid) -> Result<()> {
    let repo = wt.open()?;
    let _lock = admin_lock(wt.common_dir())?;
    repo.reference(
        name,
        head,
        true,
        "baton: keep the head of a pruned worktree",
    )
    .map(|_| ())
    .map_err(crate::WorktreeError::git(format!("write {name}")))
}
