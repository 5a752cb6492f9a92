//! What must be proven before a worktree directory may go, and what would go with it:
//! whether `<path>` is still this entry's worktree (its `.git` points back to this admin dir),
//! missing versus unreadable, the losses `git status` does not show (ignored files, nested
//! repositories, edits hidden by `assume-unchanged`/`skip-worktree`), and submodule commits
//! that live only in the worktree's own module store.

use std::path::{Path, PathBuf};

use git2::{Repository, StatusOptions};
use serde::Serialize;

use crate::inspect::Dirty;
use crate::setup::Includes;

/// Is `<path>` this entry's worktree?
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum Presence {
    /// `<path>/.git` points to this admin dir.
    Owned,
    /// Nothing is at `<path>` (its parent is readable and says so).
    Missing,
    /// `<path>` or its `.git` cannot be read: not the same as missing, nothing is decided.
    Unreadable(String),
    /// Something else is at `<path>`: another worktree, a repository of its own, a file.
    Foreign(String),
}

/// Check that `path` is the worktree of the admin dir `admin_dir`.
pub fn presence(path: &Path, admin_dir: &Path) -> Presence {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Presence::Missing,
        Err(e) => return Presence::Unreadable(format!("{}: {e}", path.display())),
    };
    if meta.file_type().is_symlink() {
        return Presence::Foreign(format!("{} is a symlink", path.display()));
    }
    if !meta.is_dir() {
        return Presence::Foreign(format!("{} is not a directory", path.display()));
    }
    if let Err(e) = std::fs::read_dir(path) {
        return Presence::Unreadable(format!("{}: {e}", path.display()));
    }
    let dotgit = path.join(".git");
    let meta = match std::fs::symlink_metadata(&dotgit) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Presence::Foreign(format!(
                "{} has no .git file: it is no longer a worktree of this repository",
                path.display()
            ));
        }
        Err(e) => return Presence::Unreadable(format!("{}: {e}", dotgit.display())),
    };
    if meta.is_dir() {
        return Presence::Foreign(format!(
            "{} is a repository of its own (.git is a directory)",
            path.display()
        ));
    }
    if !meta.is_file() {
        return Presence::Foreign(format!("{} is not a file", dotgit.display()));
    }
    let text = match std::fs::read_to_string(&dotgit) {
        Ok(t) => t,
        Err(e) => return Presence::Unreadable(format!("{}: {e}", dotgit.display())),
    };
    let Some(pointed) = text.lines().next().and_then(|l| l.strip_prefix("gitdir:")) else {
        return Presence::Foreign(format!("{} is not a gitdir file", dotgit.display()));
    };
    let pointed = PathBuf::from(pointed.trim());
    let pointed = if pointed.is_relative() {
        path.join(pointed)
    } else {
        pointed
    };
    let same = match (
        std::fs::canonicalize(&pointed),
        std::fs::canonicalize(admin_dir),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => pointed == admin_dir,
    };
    if same {
        Presence::Owned
    } else {
        Presence::Foreign(format!(
            "{} belongs to another entry ({})",
            path.display(),
            pointed.display()
        ))
    }
}

/// The admin dir `<path>/.git` names (relative names resolved), if it is a gitdir file.
pub fn dotgit_target(path: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(path.join(".git")).ok()?;
    let pointed = PathBuf::from(text.lines().next()?.strip_prefix("gitdir:")?.trim());
    Some(if pointed.is_relative() {
        path.join(pointed)
    } else {
        pointed
    })
}

/// What removing a worktree would discard besides what `git status` shows as changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Hidden {
    /// Ignored files and directories (a directory counts once), build caches excluded.
    pub ignored: usize,
    /// Up to [`SAMPLE`] of them.
    pub ignored_sample: Vec<String>,
    /// Ignored build caches (`[worktree] reuse_keep`), rebuilt on demand.
    pub caches: Vec<String>,
    /// Repositories with their own history inside the worktree (untracked or ignored).
    pub nested_repos: Vec<String>,
    /// Files whose edits `assume-unchanged` or `skip-worktree` hide from `git status`.
    pub hidden_edits: Vec<String>,
}

pub const SAMPLE: usize = 5;
/// How many entries of an ignored directory are looked at for nested repositories.
const NESTED_SCAN_LIMIT: usize = 20_000;

impl Hidden {
    /// Anything besides caches would be lost.
    pub fn loses_anything(&self) -> bool {
        self.ignored > 0 || !self.nested_repos.is_empty() || !self.hidden_edits.is_empty()
    }
}

/// Scan the worktree `repo` is open on, in one status pass: its uncommitted changes (what
/// [`crate::inspect::dirty_of`] counts) and what else removing it would discard.
pub fn scan(repo: &Repository, caches: &Includes) -> Result<(Dirty, Hidden), git2::Error> {
    let mut dirty = Dirty {
        modified: 0,
        untracked: 0,
    };
    let Some(workdir) = repo.workdir().map(Path::to_owned) else {
        return Ok((dirty, Hidden::default()));
    };
    let mut out = Hidden::default();
    let mut opts = StatusOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(false)
        .include_ignored(true)
        .recurse_ignored_dirs(false)
        .exclude_submodules(false);
    let statuses = repo.statuses(Some(&mut opts))?;
    for s in statuses.iter() {
        let st = s.status();
        let Some(rel) = s.path() else { continue };
        let untracked = st == git2::Status::WT_NEW;
        let ignored = st.contains(git2::Status::IGNORED);
        if untracked {
            dirty.untracked += 1;
        } else if !st.is_empty() && !ignored {
            dirty.modified += 1;
        }
        if !(untracked || ignored) {
            continue;
        }
        if ignored && caches.is_match(rel) {
            out.caches.push(rel.to_owned());
            continue;
        }
        if ignored {
            out.ignored += 1;
            if out.ignored_sample.len() < SAMPLE {
                out.ignored_sample.push(rel.to_owned());
            }
        }
        let abs = workdir.join(rel.trim_end_matches('/'));
        if abs.is_dir() {
            find_nested(&workdir, &abs, &mut out.nested_repos);
        }
    }
    let index = repo.index()?;
    for e in index.iter() {
        const ASSUME_VALID: u16 = 0x8000;
        const SKIP_WORKTREE: u16 = 1 << 14;
        let assume = e.flags & ASSUME_VALID != 0;
        let skip = e.flags_extended & SKIP_WORKTREE != 0;
        if !(assume || skip) {
            continue;
        }
        let rel = String::from_utf8_lossy(&e.path).into_owned();
        let file = workdir.join(&rel);
        let changed = match std::fs::symlink_metadata(&file) {
            // a sparse checkout leaves skip-worktree files absent: nothing there to lose
            Err(_) => assume,
            Ok(m) if m.is_file() => {
                git2::Oid::hash_file(git2::ObjectType::Blob, &file).ok() != Some(e.id)
            }
            Ok(_) => true,
        };
        if changed {
            out.hidden_edits.push(rel);
        }
    }
    Ok((dirty, out))
}

/// Repositories (a `.git` file or directory) at or below `dir`, relative to `workdir`.
fn find_nested(workdir: &Path, dir: &Path, out: &mut Vec<String>) {
    let mut stack = vec![dir.to_owned()];
    let mut seen = 0usize;
    while let Some(d) = stack.pop() {
        if d.join(".git").symlink_metadata().is_ok() {
            let rel = d.strip_prefix(workdir).unwrap_or(&d);
            out.push(rel.to_string_lossy().into_owned());
            continue;
        }
        let Ok(read) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in read.flatten() {
            seen += 1;
            if seen > NESTED_SCAN_LIMIT {
                return;
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
}

/// Submodules whose module store lives in the worktree's admin dir (it goes with the entry)
/// and holds commits found nowhere that stays: not on a remote-tracking ref of that store,
/// and not in the main checkout's store of the same submodule. One line per submodule.
pub fn submodule_losses(repo: &Repository, admin_dir: &Path, common_dir: &Path) -> Vec<String> {
    let Ok(subs) = repo.submodules() else {
        return Vec::new();
    };
    let admin = std::fs::canonicalize(admin_dir).unwrap_or_else(|_| admin_dir.to_owned());
    let mut out = Vec::new();
    for sm in subs {
        let Ok(store) = sm.open() else { continue };
        let store_dir = std::fs::canonicalize(store.path()).unwrap_or_else(|_| store.path().into());
        if !store_dir.starts_with(&admin) {
            continue;
        }
        let name = sm.name().unwrap_or("").to_owned();
        let shared = Repository::open_bare(common_dir.join("modules").join(&name)).ok();
        let mut tips: Vec<git2::Oid> = store
            .head()
            .ok()
            .and_then(|h| h.target())
            .into_iter()
            .collect();
        let mut remote_tips = Vec::new();
        if let Ok(refs) = store.references() {
            for r in refs.flatten() {
                let (Some(n), Some(t)) = (r.name().map(str::to_owned), r.target()) else {
                    continue;
                };
                if n.starts_with("refs/remotes/") || n.starts_with("refs/tags/") {
                    remote_tips.push(t);
                } else {
                    tips.push(t);
                }
            }
        }
        let lost: Vec<String> = tips
            .iter()
            .filter(|&&t| {
                let on_remote = remote_tips
                    .iter()
                    .any(|&r| r == t || store.graph_descendant_of(r, t).unwrap_or(false));
                let in_shared = shared.as_ref().is_some_and(|s| s.find_commit(t).is_ok());
                !on_remote && !in_shared
            })
            .map(|t| t.to_string()[..10].to_owned())
            .collect();
        if !lost.is_empty() {
            let path = sm.path().display().to_string();
            out.push(format!("{path} ({})", lost.join(", ")));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// How many of a worktree's latest HEAD moves are checked for commits only its reflog holds.
const REFLOG_DEPTH: usize = 100;

/// Commits a worktree's HEAD reflog (kept in its admin dir, so removed with it) holds that no
/// ref and not its own HEAD reach: work committed on a detached HEAD and then left behind.
/// `repo` is the worktree's repository.
pub fn reflog_orphans(repo: &Repository) -> Vec<git2::Oid> {
    let Ok(log) = repo.reflog("HEAD") else {
        return Vec::new();
    };
    let mut tips: Vec<git2::Oid> = Vec::new();
    if let Ok(refs) = repo.references() {
        for r in refs.flatten() {
            let keep = r.name().is_some_and(|n| {
                n.starts_with("refs/heads/")
                    || n.starts_with("refs/tags/")
                    || n.starts_with("refs/remotes/")
                    || n.starts_with("refs/baton/")
            });
            if keep && let Ok(c) = r.peel_to_commit() {
                tips.push(c.id());
            }
        }
    }
    if let Ok(h) = repo.head().and_then(|h| h.peel_to_commit()) {
        tips.push(h.id());
    }
    let mut candidates = std::collections::BTreeSet::new();
    for e in log.iter().take(REFLOG_DEPTH) {
        let c = e.id_new();
        if !c.is_zero() && !tips.contains(&c) && repo.find_commit(c).is_ok() {
            candidates.insert(c);
        }
    }
    if candidates.is_empty() {
        return Vec::new();
    }
    // One walk: what the candidates reach that no tip reaches. A candidate it yields is held
    // by nothing (the walk stops where the tips' history begins, so it stays short).
    let Ok(mut walk) = repo.revwalk() else {
        return Vec::new();
    };
    for &c in &candidates {
        if walk.push(c).is_err() {
            return Vec::new();
        }
    }
    for &t in &tips {
        let _ = walk.hide(t);
    }
    let mut out: Vec<git2::Oid> = walk.flatten().filter(|c| candidates.contains(c)).collect();
    out.sort();
    out
}
