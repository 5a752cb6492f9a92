//! The state of every worktree, for `list`, `cleanup` and reuse: branch, head, base, dirty,
//! ahead/behind, merged state, lock and owner, prunable, age. Worktrees are inspected in
//! parallel, one repository handle per thread.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use baton_plan::ProcessRef;
use git2::{Oid, Repository, StatusOptions};
use rayon::prelude::*;
use serde::Serialize;

use crate::admin::{Entry, Head};
use crate::errors::{Result, WorktreeError};
use crate::integrated::{self, MergeState};
use crate::process;
use crate::repo::{Target, Worktrees};
use crate::safety::{self, Hidden, Presence};
use crate::setup::Includes;

/// Uncommitted work in a worktree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Dirty {
    /// Tracked files modified, added, deleted or renamed (staged or not), and conflicts.
    pub modified: usize,
    /// Untracked files and directories (ignored ones do not count).
    pub untracked: usize,
}

impl Dirty {
    pub fn is_clean(&self) -> bool {
        self.modified == 0 && self.untracked == 0
    }
}

/// One worktree as `baton worktree list --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct WorktreeInfo {
    /// Admin name (`None` for the main checkout).
    pub name: Option<String>,
    pub path: PathBuf,
    pub main: bool,
    /// The directory exists.
    pub exists: bool,
    pub branch: Option<String>,
    pub head: Option<String>,
    pub detached: bool,
    pub base: Option<String>,
    pub base_commit: Option<String>,
    pub plan: Option<String>,
    pub agent: Option<String>,
    /// `None` when the directory is gone or its status could not be read.
    pub dirty: Option<Dirty>,
    /// Commits on the head not on the target, and the reverse.
    pub ahead: Option<usize>,
    pub behind: Option<usize>,
    pub merge: Option<MergeState>,
    pub merge_detail: Option<String>,
    pub locked: bool,
    pub lock_reason: Option<String>,
    /// The process recorded as owner in a baton lock.
    pub owner: Option<ProcessRef>,
    pub owner_alive: bool,
    /// The directory is gone and nothing holds the entry: `prune` removes it.
    pub prunable: bool,
    /// Other worktrees that have the same branch checked out.
    pub branch_checked_out_elsewhere: Vec<PathBuf>,
    pub age_secs: Option<u64>,
    /// baton made it (it has `baton.json`); cleanup touches only these unless `--all`.
    pub created_by_baton: bool,
    /// Whether the directory is still this entry's worktree, missing, or unreadable.
    pub presence: Presence,
    /// No commits of its own yet (its head is still its base): *new*, not merged.
    pub fresh: bool,
    /// What removing it would discard that `dirty` does not count.
    pub hidden: Option<Hidden>,
    /// Submodules whose commits live only in this worktree's module store.
    pub submodule_losses: Vec<String>,
    /// Commits only this worktree's HEAD reflog holds (left behind on a detached HEAD).
    pub reflog_orphans: Vec<String>,
    /// Processes whose working directory is inside it.
    pub processes_inside: Vec<u32>,
    #[serde(skip)]
    pub admin_dir: Option<PathBuf>,
    #[serde(skip)]
    pub head_oid: Option<Oid>,
    #[serde(skip)]
    pub status_error: Option<String>,
}

impl WorktreeInfo {
    /// The full ref of its branch, if on one.
    pub fn branch_ref(&self) -> Option<String> {
        self.branch.as_ref().map(|b| format!("refs/heads/{b}"))
    }

    /// A lock baton cannot attribute to a live or dead baton owner (a person's lock).
    pub fn foreign_lock(&self) -> bool {
        self.locked && self.owner.is_none()
    }
}

/// Every worktree, the main checkout first.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub target: String,
    pub target_commit: String,
    /// The branch the target names (full ref), if it names one.
    pub target_ref: Option<String>,
    pub worktrees: Vec<WorktreeInfo>,
}

/// Inspect every worktree against `target`.
pub fn list(wt: &Worktrees, target: Option<&str>, now: SystemTime) -> Result<Listing> {
    let repo = wt.open()?;
    let target = wt.resolve_target(&repo, target)?;
    let entries = wt.entries()?;
    let caches = wt.config.reuse_keep_set()?;
    let cwds = process::working_dirs();
    let main_head = repo.head().ok();
    let main_branch = main_head
        .as_ref()
        .filter(|h| h.is_branch())
        .and_then(|h| h.shorthand().map(str::to_owned));
    let mut infos: Vec<WorktreeInfo> = entries
        .par_iter()
        .map_init(
            || wt.open(),
            |repo, entry| match repo {
                Ok(repo) => inspect(repo, wt, entry, &target, &caches, &cwds, now),
                Err(e) => Err(WorktreeError::io("open the repository for", &entry.path)(
                    std::io::Error::other(e.to_string()),
                )),
            },
        )
        .collect::<Result<_>>()?;

    let main = WorktreeInfo {
        name: None,
        path: wt.main_workdir.clone(),
        main: true,
        exists: true,
        branch: main_branch.clone(),
        head: main_head
            .as_ref()
            .and_then(|h| h.target())
            .map(|o| o.to_string()),
        detached: main_branch.is_none(),
        base: None,
        base_commit: None,
        plan: None,
        agent: None,
        dirty: dirty_of(&repo).ok(),
        ahead: None,
        behind: None,
        merge: None,
        merge_detail: None,
        locked: false,
        lock_reason: None,
        owner: None,
        owner_alive: false,
        prunable: false,
        branch_checked_out_elsewhere: Vec::new(),
        age_secs: None,
        created_by_baton: false,
        presence: Presence::Owned,
        fresh: false,
        hidden: None,
        submodule_losses: Vec::new(),
        reflog_orphans: Vec::new(),
        processes_inside: Vec::new(),
        admin_dir: None,
        head_oid: main_head.as_ref().and_then(|h| h.target()),
        status_error: None,
    };
    infos.insert(0, main);

    // Which branches are checked out where.
    let holders: Vec<(Option<String>, PathBuf)> = infos
        .iter()
        .map(|i| (i.branch.clone(), i.path.clone()))
        .collect();
    for info in &mut infos {
        if let Some(b) = &info.branch {
            info.branch_checked_out_elsewhere = holders
                .iter()
                .filter(|(hb, p)| hb.as_ref() == Some(b) && *p != info.path)
                .map(|(_, p)| p.clone())
                .collect();
        }
    }
    Ok(Listing {
        target: target.name,
        target_commit: target.commit.to_string(),
        target_ref: target.branch_ref,
        worktrees: infos,
    })
}

fn inspect(
    repo: &Repository,
    wt: &Worktrees,
    entry: &Entry,
    target: &Target,
    caches: &Includes,
    cwds: &[(u32, PathBuf)],
    now: SystemTime,
) -> Result<WorktreeInfo> {
    let presence = safety::presence(&entry.path, &entry.admin_dir);
    let exists = presence != Presence::Missing;
    let owned = presence == Presence::Owned;
    let (branch, head_oid) = match &entry.head {
        Head::Branch(r) => {
            let oid = repo.refname_to_id(r).ok();
            (entry.branch().map(str::to_owned), oid)
        }
        Head::Detached(oid) => (None, Some(*oid)),
        Head::Unknown => (None, None),
    };
    let owner = entry.locked.as_deref().and_then(process::parse_lock_reason);
    let owner_alive = owner.as_ref().is_some_and(process::is_alive);
    let held = entry.locked.is_some() && (owner.is_none() || owner_alive);
    let (mut dirty, mut status_error, mut hidden, mut submodule_losses) =
        (None, None, None, Vec::new());
    let mut reflog_orphans = Vec::new();
    if owned {
        match Repository::open(&entry.path) {
            Ok(r) => {
                match safety::scan(&r, caches) {
                    Ok((d, h)) => {
                        dirty = Some(d);
                        hidden = Some(h);
                    }
                    Err(e) => status_error = Some(e.message().to_owned()),
                }
                submodule_losses = safety::submodule_losses(&r, &entry.admin_dir, wt.common_dir());
                reflog_orphans = not_integrated(repo, safety::reflog_orphans(&r), target.commit)
                    .into_iter()
                    .map(|o| o.to_string())
                    .collect();
            }
            Err(e) => status_error = Some(e.message().to_owned()),
        }
    }
    let processes_inside = match std::fs::canonicalize(&entry.path) {
        Ok(canon) if exists => cwds
            .iter()
            .filter(|(_, cwd)| cwd.starts_with(&canon))
            .map(|(pid, _)| *pid)
            .collect(),
        _ => Vec::new(),
    };
    let fresh = match (&entry.meta, head_oid) {
        (Some(m), Some(h)) => m.base_commit == h.to_string(),
        _ => false,
    };
    let (mut ahead, mut behind, mut merge, mut merge_detail) = (None, None, None, None);
    if let Some(h) = head_oid {
        if let Ok((a, b)) = repo.graph_ahead_behind(h, target.commit) {
            ahead = Some(a);
            behind = Some(b);
        }
        let verdict = integrated::classify(repo, h, target.commit)?;
        merge = Some(verdict.state);
        merge_detail = verdict.detail;
    }
    let created = entry
        .meta
        .as_ref()
        // a `created_at` past what the clock can hold (a hand-edited file) reads as "now"
        .map(|m| {
            SystemTime::UNIX_EPOCH
                .checked_add(Duration::from_secs(m.created_at))
                .unwrap_or(now)
        })
        .or_else(|| {
            std::fs::metadata(&entry.admin_dir)
                .and_then(|m| m.modified())
                .ok()
        });
    let age_secs = created.map(|c| now.duration_since(c).unwrap_or_default().as_secs());
    Ok(WorktreeInfo {
        name: Some(entry.name.clone()),
        path: entry.path.clone(),
        main: false,
        exists,
        detached: matches!(entry.head, Head::Detached(_)),
        branch,
        head: head_oid.map(|o| o.to_string()),
        base: entry.meta.as_ref().map(|m| m.base.clone()),
        base_commit: entry.meta.as_ref().map(|m| m.base_commit.clone()),
        plan: entry.meta.as_ref().and_then(|m| m.plan.clone()),
        agent: entry.meta.as_ref().and_then(|m| m.agent.clone()),
        dirty,
        ahead,
        behind,
        merge,
        merge_detail,
        locked: entry.locked.is_some(),
        lock_reason: entry.locked.clone().filter(|r| !r.is_empty()),
        owner,
        owner_alive,
        prunable: !exists && !held,
        branch_checked_out_elsewhere: Vec::new(),
        age_secs,
        // baton's metadata, or baton's lock (a create killed before it wrote its metadata)
        created_by_baton: entry.meta.is_some() || owner.is_some(),
        presence,
        fresh,
        hidden,
        submodule_losses,
        reflog_orphans,
        processes_inside,
        admin_dir: Some(entry.admin_dir.clone()),
        head_oid,
        status_error,
    })
}

/// The commits of `orphans` whose content is not in the target: neither integrated themselves
/// nor an ancestor of an integrated one (a squash-merged branch's earlier commits).
fn not_integrated(repo: &Repository, orphans: Vec<Oid>, target: Oid) -> Vec<Oid> {
    let integrated: Vec<Oid> = orphans
        .iter()
        .copied()
        .filter(|&c| integrated::classify(repo, c, target).is_ok_and(|v| v.state.is_integrated()))
        .collect();
    orphans
        .into_iter()
        .filter(|&c| {
            !integrated
                .iter()
                .any(|&i| i == c || repo.graph_descendant_of(i, c).unwrap_or(false))
        })
        .collect()
}

/// Count uncommitted changes of the worktree `repo` is open on.
pub fn dirty_of(repo: &Repository) -> Result<Dirty> {
    let mut opts = StatusOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(false)
        .include_ignored(false)
        .exclude_submodules(false);
    let statuses = repo
        .statuses(Some(&mut opts))
        .map_err(WorktreeError::git(format!(
            "read the status of {}",
            repo.workdir().unwrap_or(repo.path()).display()
        )))?;
    let mut dirty = Dirty {
        modified: 0,
        untracked: 0,
    };
    for s in statuses.iter() {
        let st = s.status();
        if st == git2::Status::WT_NEW {
            dirty.untracked += 1;
        } else if !st.is_empty() && st != git2::Status::IGNORED {
            dirty.modified += 1;
        }
    }
    Ok(dirty)
}
