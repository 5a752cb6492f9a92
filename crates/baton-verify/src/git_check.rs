//! The git check: the state of the main checkout and of every linked worktree.
//!
//! Errors: `unmerged_paths`, `operation_in_progress`, `index_lock` (held by a live process),
//! `stale_index_lock` (held by none), `conflict_markers` (in the worktree, or committed on the
//! main checkout's branch since the base).
//! Warnings: `uncommitted_changes`, `untracked_files`, `detached_head`, `prunable_worktree`.
//! Only files that status reports as changed or untracked are read (for conflict markers);
//! everything else rests on the index's stat cache, so a clean 20k-file checkout costs about
//! one `git status`.

use std::path::Path;
use std::time::{Duration, SystemTime};

use baton_git::state::{index_lock_age, open_by, operations_in_progress};
use baton_git::status::{EntryKind, StatusMode, status};
use baton_git::worktrees::{Head, WorktreeInfo, list_worktrees};
use baton_git::{GitError, RepoPaths};
use baton_report::{Finding, Severity};
use rayon::prelude::*;

use crate::findings::finding;
use crate::markers::{MAX_SCAN_BYTES, conflict_blocks};

/// Options of the git check.
#[derive(Debug, Clone)]
pub struct GitCheckOptions {
    /// "Now", for the age of `index.lock` files.
    pub now: SystemTime,
    /// An `index.lock` older than this is stale (no git command holds a lock that long).
    pub stale_lock_after: Duration,
    /// The base of the batch: conflict markers committed on the main checkout's branch since
    /// it are reported (`None`: not scanned).
    pub base: Option<git2::Oid>,
    /// Scan every tracked file of the main checkout's HEAD for committed conflict markers,
    /// not only the files changed since `base`.
    pub full: bool,
}

/// Run the git check over every worktree of the repository at `repo`, in parallel (one
/// `Repository` per thread).
pub fn check_git(repo: &RepoPaths, opts: &GitCheckOptions) -> Result<Vec<Finding>, GitError> {
    let worktrees = list_worktrees(&repo.open()?)?;
    let check = |wt: &WorktreeInfo| check_worktree(wt, &repo.common_dir, opts);
    // rayon's idle workers spin for a while; on a small machine that slows a lone status down
    let per_worktree: Vec<Result<Vec<Finding>, GitError>> = if worktrees.len() > 1 {
        worktrees.par_iter().map(check).collect()
    } else {
        worktrees.iter().map(check).collect()
    };
    let mut findings = Vec::new();
    for r in per_worktree {
        findings.extend(r?);
    }
    if let Some(main) = worktrees.iter().find(|w| w.is_main())
        && let Some(paths) = main.repo_paths(&repo.common_dir)
    {
        findings.extend(committed_markers(
            &paths.open()?,
            main,
            opts.base,
            opts.full,
        )?);
    }
    crate::findings::sort(&mut findings);
    Ok(findings)
}

/// The findings of one worktree.
pub fn check_worktree(
    wt: &WorktreeInfo,
    common_dir: &Path,
    opts: &GitCheckOptions,
) -> Result<Vec<Finding>, GitError> {
    let label = wt.label();
    let at = |mut f: Finding| {
        f.worktree = Some(wt.path.display().to_string());
        f
    };
    let mut out = Vec::new();
    if wt.prunable {
        out.push(at(finding(
            "prunable_worktree",
            Severity::Warning,
            format!(
                "worktree {label} points at {}, which no longer exists; run `git worktree prune`",
                wt.path.display()
            ),
        )));
        return Ok(out);
    }
    let Some(paths) = wt.repo_paths(common_dir) else {
        return Ok(out);
    };
    for op in operations_in_progress(&wt.git_dir) {
        out.push(at(finding(
            "operation_in_progress",
            Severity::Error,
            format!(
                "a {} is in progress in {label}; {}",
                op.as_str(),
                op.resolve_hint()
            ),
        )));
    }
    if let Some(age) = index_lock_age(&wt.git_dir, opts.now) {
        out.push(at(index_lock_finding(wt, age, opts)));
    }
    match &wt.head {
        Head::Detached(oid) => out.push(at(finding(
            "detached_head",
            Severity::Warning,
            format!(
                "HEAD of {label} is detached at {}; commits made there belong to no branch",
                short(*oid)
            ),
        ))),
        Head::Unknown => out.push(at(finding(
            "detached_head",
            Severity::Warning,
            format!("HEAD of {label} cannot be read"),
        ))),
        Head::Branch { .. } => {}
    }
    let repo = paths.open()?;
    let entries = status(&repo, StatusMode::default())?;
    let mut modified = Vec::new();
    let mut untracked = Vec::new();
    let mut to_scan = Vec::new();
    for e in &entries {
        match e.kind {
            EntryKind::Unmerged => {
                let mut f = finding(
                    "unmerged_paths",
                    Severity::Error,
                    format!(
                        "{} in {label} has unresolved merge conflicts; resolve them and `git add` it",
                        e.path
                    ),
                );
                f.path = Some(e.path.clone());
                out.push(at(f));
            }
            EntryKind::Untracked => {
                untracked.push(e.path.clone());
                to_scan.push(e.path.clone());
            }
            EntryKind::Deleted => modified.push(e.path.clone()),
            EntryKind::Modified | EntryKind::Added => {
                modified.push(e.path.clone());
                to_scan.push(e.path.clone());
            }
        }
    }
    let scan = |p: &String| {
        let file = wt.path.join(baton_git::pathkey::key_path(p));
        let meta = std::fs::symlink_metadata(&file).ok()?;
        if !meta.is_file() || meta.len() > MAX_SCAN_BYTES {
            return None;
        }
        let lines = conflict_blocks(&std::fs::read(&file).ok()?);
        (!lines.is_empty()).then(|| (p.clone(), lines))
    };
    let marked: Vec<(String, Vec<u32>)> = if to_scan.len() > 64 {
        to_scan.par_iter().filter_map(scan).collect()
    } else {
        to_scan.iter().filter_map(scan).collect()
    };
    for (path, lines) in marked {
        let mut f = finding(
            "conflict_markers",
            Severity::Error,
            format!(
                "{path} in {label} has {} conflict marker block(s), the first at line {}; finish resolving it",
                lines.len(),
                lines[0]
            ),
        );
        f.line = Some(lines[0]);
        f.path = Some(path);
        out.push(at(f));
    }
    if !modified.is_empty() {
        let mut f = finding(
            "uncommitted_changes",
            Severity::Warning,
            format!(
                "{label}{}: {} tracked file(s) changed but not committed ({})",
                wt.head
                    .branch()
                    .map(|b| format!(" (branch {b})"))
                    .unwrap_or_default(),
                modified.len(),
                sample(&modified)
            ),
        );
        f.paths = modified;
        out.push(at(f));
    }
    if !untracked.is_empty() {
        let mut f = finding(
            "untracked_files",
            Severity::Warning,
            format!(
                "{label}: {} untracked file(s) ({}); commit them, or ignore them in .gitignore",
                untracked.len(),
                sample(&untracked)
            ),
        );
        f.paths = untracked;
        out.push(at(f));
    }
    Ok(out)
}

/// An `index.lock` blocks the next merge whatever its age: say who holds it, or that no
/// process does (stale; a hook run by git may also be between steps, when it is young).
fn index_lock_finding(wt: &WorktreeInfo, age: Duration, opts: &GitCheckOptions) -> Finding {
    let lock = wt.git_dir.join("index.lock");
    let label = wt.label();
    let holders = open_by(&lock);
    let mut f = if holders.is_empty() {
        let why = if age >= opts.stale_lock_after {
            "no git command holds a lock that long".to_owned()
        } else {
            "it is young: a git hook may still be running; if it stays, it was left behind"
                .to_owned()
        };
        finding(
            "stale_index_lock",
            Severity::Error,
            format!(
                "{} is {}s old and no process has it open ({why}); it blocks the next merge in {label}: if no git process is running there, delete it",
                lock.display(),
                age.as_secs()
            ),
        )
    } else {
        let who = holders
            .iter()
            .map(|h| format!("pid {} ({})", h.pid, h.command))
            .collect::<Vec<_>>()
            .join(", ");
        finding(
            "index_lock",
            Severity::Error,
            format!(
                "{} is held by {who} ({}s old); it blocks the next merge in {label} until that process finishes",
                lock.display(),
                age.as_secs()
            ),
        )
    };
    f.path = Some(lock.display().to_string());
    f
}

/// Conflict markers committed on the main checkout's branch: in the files changed since
/// `base`, or (`full`) in every tracked file of its HEAD.
fn committed_markers(
    repo: &git2::Repository,
    main: &WorktreeInfo,
    base: Option<git2::Oid>,
    full: bool,
) -> Result<Vec<Finding>, GitError> {
    let Some(head) = main.head.oid() else {
        return Ok(Vec::new());
    };
    let tree_of = |oid: git2::Oid| {
        repo.find_commit(oid)
            .and_then(|c| c.tree())
            .map_err(GitError::git(format!("read the tree of {oid}")))
    };
    let head_tree = tree_of(head)?;
    let mut blobs: Vec<(String, git2::Oid)> = Vec::new();
    if full {
        for (path, oid, mode) in baton_git::changes::tree_files(repo, &head_tree)? {
            if matches!(mode, 0o100644 | 0o100755) {
                blobs.push((path, oid));
            }
        }
    } else if let Some(base) = base.filter(|b| *b != head) {
        let base_tree = tree_of(base)?;
        for c in baton_git::changes::tree_changes(repo, Some(&base_tree), Some(&head_tree))? {
            if let (Some(dest), Some(baton_git::changes::Content::Blob { oid, mode })) =
                (c.dest, c.content)
                && matches!(mode, 0o100644 | 0o100755)
            {
                blobs.push((dest, oid));
            }
        }
    }
    let what = if full {
        "committed on HEAD".to_owned()
    } else {
        format!(
            "committed since the base {}",
            base.map(short).unwrap_or_default()
        )
    };
    let mut out = Vec::new();
    for (path, oid) in blobs {
        let Ok(blob) = repo.find_blob(oid) else {
            continue;
        };
        if blob.size() as u64 > MAX_SCAN_BYTES {
            continue;
        }
        let lines = conflict_blocks(blob.content());
        if lines.is_empty() {
            continue;
        }
        let mut f = finding(
            "conflict_markers",
            Severity::Error,
            format!(
                "{path} has {} conflict marker block(s) {what} in the main checkout{}, the first at line {}; resolve them and commit",
                lines.len(),
                main.head
                    .branch()
                    .map(|b| format!(" (branch {b})"))
                    .unwrap_or_default(),
                lines[0]
            ),
        );
        f.line = Some(lines[0]);
        f.path = Some(path);
        f.worktree = Some(main.path.display().to_string());
        out.push(f);
    }
    Ok(out)
}

/// The first few paths of a list, for a one-line message.
pub fn sample(paths: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut s = paths
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > SHOWN {
        s.push_str(&format!(", and {} more", paths.len() - SHOWN));
    }
    s
}

fn short(oid: git2::Oid) -> String {
    oid.to_string()[..10].to_owned()
}
