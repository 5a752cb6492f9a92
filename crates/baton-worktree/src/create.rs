//! Creating worktrees, many at once. Everything is checked before anything is written (bad
//! input changes nothing); branches and admin dirs are written under the admin lock; the
//! checkouts, which are the slow part, run in parallel outside it. A new worktree is locked by
//! the creating process from its first moment, then handed to its owner (or unlocked).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use baton_plan::ProcessRef;
use git2::{Oid, Repository};
use rayon::prelude::*;
use serde::Serialize;

use crate::admin::{self, Meta};
use crate::errors::{Result, WorktreeError};
use crate::journal::{self, Item};
use crate::lock::admin_lock;
use crate::process;
use crate::repo::Worktrees;
use crate::reuse::{self, Candidate};
use crate::setup::{self, Includes};
use crate::{checkout, refs, spare};

/// One worktree to make.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    /// Directory relative to the worktree root (`<plan>/<agent>` or a name).
    pub dir: PathBuf,
    /// Short branch name to create.
    pub branch: String,
    /// The base as given: branch, tag or commit.
    pub base: String,
    pub plan: Option<String>,
    pub agent: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Lock each worktree for this process (else it is left unlocked).
    pub owner: Option<ProcessRef>,
    /// Reuse finished, clean, integrated worktrees where there are some.
    pub reuse: bool,
    /// Copy include files and run the setup command.
    pub setup: bool,
    /// The target that reuse candidates must be integrated into (default as in `list`).
    pub target: Option<String>,
    /// Counts files as the checkouts write them (summed over worktrees), so the caller can
    /// show progress while a large checkout runs.
    pub progress: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
}

/// A worktree made (or reused).
#[derive(Debug, Clone, Serialize)]
pub struct Created {
    pub name: String,
    pub path: PathBuf,
    pub branch: String,
    pub base: String,
    pub base_commit: String,
    pub plan: Option<String>,
    pub agent: Option<String>,
    /// The worktree this one was made from, when reused.
    pub reused_from: Option<PathBuf>,
    /// The old branch of a reused worktree, deleted because it was integrated.
    pub deleted_branch: Option<String>,
    /// Files the checkout wrote.
    pub files_written: usize,
    /// Include files copied from the main checkout.
    pub copied: Vec<String>,
    /// Include files it did not get: the checkout had them, or had a symlink on their way.
    pub not_copied: Vec<crate::setup::NotCopied>,
    pub owner: Option<ProcessRef>,
}

struct Planned {
    req: CreateRequest,
    base_oid: Oid,
    path: PathBuf,
    reuse: Option<Candidate>,
}

/// Create the worktrees of `reqs`; all of them or none.
pub fn create(
    wt: &Worktrees,
    reqs: Vec<CreateRequest>,
    opts: &CreateOptions,
    now: SystemTime,
) -> Result<Vec<Created>> {
    let repo = wt.open()?;
    let me = process::current_process().ok_or(WorktreeError::NoSuchProcess {
        pid: std::process::id(),
    })?;
    if let Some(o) = &opts.owner
        && !process::is_alive(o)
    {
        return Err(WorktreeError::NoSuchProcess { pid: o.pid });
    }
    // Debris of creates that were killed first: their branches and paths block this one.
    journal::recover(wt, false)?;
    let includes = if opts.setup {
        Some(Includes::load(&wt.main_workdir, &wt.config.include)?)
    } else {
        None
    };
    let mut planned = validate(wt, &repo, reqs)?;
    if opts.reuse {
        let mut pool = reuse::candidates(wt, opts.target.as_deref(), now)?;
        for p in &mut planned {
            p.reuse = reuse::take_best(&mut pool, p.base_oid);
        }
    }
    let creating = process::lock_reason(&me);
    // A root inside the main checkout must not show up there as untracked files.
    if let Ok(rel) = wt.root.strip_prefix(&wt.main_workdir) {
        let pattern = format!("/{}/", rel.to_string_lossy().trim_end_matches('/'));
        baton_store::ensure_excluded(&wt.common_dir().join("info").join("exclude"), &pattern)?;
    }

    for p in planned.iter().filter(|p| p.reuse.is_none()) {
        checkout::make_parents(&wt.root, &p.path)?;
    }

    // Refs and admin dirs: one writer at a time.
    let mut made: Vec<(Planned, String, PathBuf)> = Vec::new();
    let journal_file: Option<PathBuf>;
    {
        let _lock = admin_lock(wt.common_dir())?;
        // dropped first: the directories it set aside go under the lock
        let mut placer = crate::place::Placer::default();
        // Names first, then the journal, then the writes: a kill at any point leaves a record
        // of everything that may exist.
        let mut taken = Vec::new();
        let mut items = Vec::new();
        for p in &planned {
            let base_name = p
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "wt".to_owned());
            let admin_name = p.reuse.is_none().then(|| {
                let n = admin::free_name(wt.common_dir(), &base_name, &taken);
                taken.push(n.clone());
                n
            });
            items.push(Item {
                branch: p.req.branch.clone(),
                base_commit: p.base_oid.to_string(),
                path: p.path.clone(),
                plan: p.req.plan.clone(),
                agent: p.req.agent.clone(),
                admin: admin_name,
                reused: p.reuse.as_ref().map(|c| journal::Reused {
                    admin_dir: c.admin_dir.clone(),
                    path: c.path.clone(),
                    branch: c.branch.clone(),
                    head: c.head.to_string(),
                    delete_branch: c.delete_old_branch,
                }),
            });
        }
        journal_file = Some(journal::begin(wt.common_dir(), me, items.clone())?);
        for (p, item) in planned.into_iter().zip(items) {
            let step = (|| -> Result<(String, PathBuf)> {
                if let Some(c) = &p.reuse {
                    reuse::claim(c, &creating)?;
                }
                refs::create_branch(&repo, &p.req.branch, p.base_oid, &p.req.base)?;
                let Some(name) = item.admin.clone() else {
                    return Ok((String::new(), PathBuf::new()));
                };
                let written = admin::write_entry(
                    wt.common_dir(),
                    &name,
                    &p.path,
                    &format!("refs/heads/{}", p.req.branch),
                    &creating,
                    &mut placer,
                );
                match written {
                    Ok(admin_dir) => Ok((name, admin_dir)),
                    Err(e) => {
                        // write_entry undid its own files; the branch is ours and at its base
                        let _ = refs::delete_branch_if_at(&repo, &p.req.branch, p.base_oid);
                        Err(e)
                    }
                }
            })();
            match step {
                Ok((name, admin_dir)) => made.push((p, name, admin_dir)),
                Err(e) => {
                    rollback(wt, &repo, &made, journal_file.as_deref());
                    return Err(e);
                }
            }
        }
    }

    let copy_list = match &includes {
        Some(inc) => inc.matching(&repo)?,
        None => Vec::new(),
    };
    // Spares (`[worktree] spares`) first: a spare's files move in and only those that differ
    // from the base are rewritten. The rest are checked out, in parallel: fresh worktrees of
    // one base together (each blob read once).
    let mut spared = Vec::new();
    let mut groups: BTreeMap<Oid, Vec<&Path>> = BTreeMap::new();
    for (p, _, admin_dir) in made.iter().filter(|(p, _, _)| p.reuse.is_none()) {
        let spare = (wt.config.spares > 0)
            .then(|| spare::take(&wt.root, p.base_oid, |h| repo.find_commit(h).is_ok()))
            .flatten();
        match spare {
            Some(s) => spared.push((p, admin_dir, s)),
            None => groups.entry(p.base_oid).or_default().push(&p.path),
        }
    }
    let mut written: BTreeMap<PathBuf, usize> = BTreeMap::new();
    let from_spares: Vec<Result<(PathBuf, usize)>> = spared
        .par_iter()
        .map(|(p, admin_dir, s)| {
            spare::apply(s, &p.path, admin_dir, &p.req.branch, p.base_oid)
                .map(|n| (p.path.clone(), n))
        })
        .collect();
    for r in from_spares {
        match r {
            Ok((path, n)) => {
                if let Some(c) = opts.progress.as_deref() {
                    c.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                }
                written.insert(path, n);
            }
            Err(e) => {
                rollback(wt, &repo, &made, journal_file.as_deref());
                return Err(e);
            }
        }
    }
    for (oid, paths) in &groups {
        match checkout::populate_many(paths, *oid, opts.progress.as_deref()) {
            Ok(n) => {
                for p in paths {
                    written.insert(p.to_path_buf(), n);
                }
            }
            Err(e) => {
                rollback(wt, &repo, &made, journal_file.as_deref());
                return Err(e);
            }
        }
    }
    let results: Vec<Result<Created>> = made
        .par_iter()
        .map(|(p, name, admin_dir)| {
            let n = written.get(&p.path).copied().unwrap_or(0);
            finish(wt, p, name, admin_dir, n, opts, &copy_list, now)
        })
        .collect();
    if let Some(pos) = results.iter().position(Result::is_err) {
        rollback(wt, &repo, &made, journal_file.as_deref());
        return Err(results
            .into_iter()
            .nth(pos)
            .and_then(Result::err)
            .unwrap_or(WorktreeError::UnknownWorktree {
                given: String::new(),
            }));
    }
    if let Some(j) = &journal_file {
        journal::end(j);
    }
    results.into_iter().collect()
}

fn validate(wt: &Worktrees, repo: &Repository, reqs: Vec<CreateRequest>) -> Result<Vec<Planned>> {
    let entries = wt.entries()?;
    let mut branches = BTreeSet::new();
    let mut paths = BTreeSet::new();
    let mut out = Vec::new();
    for req in reqs {
        let base_oid = wt.resolve_base(repo, &req.base)?;
        if !git2::Branch::name_is_valid(&req.branch).unwrap_or(false) {
            return Err(WorktreeError::BadBranch { branch: req.branch });
        }
        if !branches.insert(req.branch.clone()) {
            return Err(WorktreeError::Duplicate {
                what: "branch",
                given: req.branch,
            });
        }
        if repo
            .find_branch(&req.branch, git2::BranchType::Local)
            .is_ok()
        {
            return Err(WorktreeError::BranchExists { branch: req.branch });
        }
        let path = setup::inside(&wt.root, &req.dir).ok_or_else(|| WorktreeError::BadName {
            name: req.dir.display().to_string(),
        })?;
        if !paths.insert(path.clone()) {
            return Err(WorktreeError::Duplicate {
                what: "worktree path",
                given: path.display().to_string(),
            });
        }
        if path.symlink_metadata().is_ok() {
            return Err(WorktreeError::PathExists { path });
        }
        // A stale entry whose directory is gone still claims the path: a new worktree there
        // would later look like that entry's directory.
        if let Some(e) = entries.iter().find(|e| e.path == path) {
            return Err(WorktreeError::PathClaimed {
                path,
                name: e.name.clone(),
            });
        }
        out.push(Planned {
            req,
            base_oid,
            path,
            reuse: None,
        });
    }
    Ok(out)
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call site; a struct would only rename them"
)]
fn finish(
    wt: &Worktrees,
    p: &Planned,
    name: &str,
    admin_dir: &Path,
    checked_out: usize,
    opts: &CreateOptions,
    copy_list: &[String],
    now: SystemTime,
) -> Result<Created> {
    let (name, admin_dir, files_written, reused_from, deleted_branch) = match &p.reuse {
        Some(c) => {
            let moved = reuse::switch(wt, c, &p.path, &p.req.branch, p.base_oid)?;
            (
                moved.name,
                moved.admin_dir,
                moved.files_written,
                Some(c.path.clone()),
                moved.deleted_branch,
            )
        }
        None => (
            name.to_owned(),
            admin_dir.to_owned(),
            checked_out,
            None,
            None,
        ),
    };
    let created_at = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    admin::write_meta(
        &admin_dir,
        &Meta {
            schema_version: 1,
            base: p.req.base.clone(),
            base_commit: p.base_oid.to_string(),
            created_at,
            plan: p.req.plan.clone(),
            agent: p.req.agent.clone(),
        },
    )?;
    let not_copied = if opts.setup {
        let skipped = setup::copy_paths(&wt.main_workdir, &p.path, copy_list)?;
        setup::run_setup(&wt.config.setup, &p.path)?;
        skipped
    } else {
        Vec::new()
    };
    let reason = opts.owner.as_ref().map(process::lock_reason);
    admin::set_lock(&admin_dir, reason.as_deref())?;
    Ok(Created {
        name,
        path: p.path.clone(),
        branch: p.req.branch.clone(),
        base: p.req.base.clone(),
        base_commit: p.base_oid.to_string(),
        plan: p.req.plan.clone(),
        agent: p.req.agent.clone(),
        reused_from,
        deleted_branch,
        files_written,
        copied: if opts.setup {
            copy_list
                .iter()
                .filter(|c| !not_copied.iter().any(|n| &n.path == *c))
                .cloned()
                .collect()
        } else {
            Vec::new()
        },
        not_copied,
        owner: opts.owner,
    })
}

/// Undo fresh worktrees of a failed call: their directories (proven theirs first), admin dirs
/// and branches (which still point at their base, so no work is lost). Reused worktrees stay
/// where they are, unlocked. The admin lock is re-entrant, so this may run while the caller
/// holds it.
fn rollback(
    wt: &Worktrees,
    repo: &Repository,
    made: &[(Planned, String, PathBuf)],
    journal_file: Option<&Path>,
) {
    let _lock = admin_lock(wt.common_dir());
    for (p, _, admin_dir) in made {
        if let Some(c) = &p.reuse {
            let _ = admin::set_lock(&c.admin_dir, None);
            let _ = refs::delete_branch_if_at(repo, &p.req.branch, p.base_oid);
            continue;
        }
        let _ = crate::remove::remove_worktree(&p.path, admin_dir);
        let _ = refs::delete_branch_if_at(repo, &p.req.branch, p.base_oid);
    }
    if let Some(j) = journal_file {
        journal::end(j);
    }
}
