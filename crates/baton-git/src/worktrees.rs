//! Enumerating the worktrees of a repository: the main checkout and every linked worktree, each
//! with its HEAD and whether git would prune it.
//!
//! A small, read-only duplicate of what `baton-worktree` manages; verify needs only this much.

use std::path::{Path, PathBuf};

use crate::{GitError, RepoPaths};

/// What a worktree's HEAD points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// On a branch (short name, e.g. `main`), which may be unborn.
    Branch {
        name: String,
        oid: Option<git2::Oid>,
    },
    /// A detached HEAD at a commit.
    Detached(git2::Oid),
    /// HEAD could not be read (a broken or half-removed worktree).
    Unknown,
}

impl Head {
    pub fn oid(&self) -> Option<git2::Oid> {
        match self {
            Head::Branch { oid, .. } => *oid,
            Head::Detached(oid) => Some(*oid),
            Head::Unknown => None,
        }
    }
    pub fn branch(&self) -> Option<&str> {
        match self {
            Head::Branch { name, .. } => Some(name),
            _ => None,
        }
    }
}

/// One worktree of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorktreeInfo {
    /// `None` for the main checkout, else the name under `.git/worktrees/`.
    pub name: Option<String>,
    /// The checkout directory.
    pub path: PathBuf,
    /// Its git directory (`.git` or `.git/worktrees/<name>`).
    pub git_dir: PathBuf,
    pub head: Head,
    /// The linked worktree's directory is gone (and it is not locked): `git worktree prune`
    /// would remove its administrative files.
    pub prunable: bool,
    pub locked: bool,
}

impl WorktreeInfo {
    pub fn is_main(&self) -> bool {
        self.name.is_none()
    }
    /// A short label for messages: `main checkout` or the worktree's name.
    pub fn label(&self) -> String {
        match &self.name {
            None => "main checkout".to_owned(),
            Some(n) => n.clone(),
        }
    }
    /// The paths of this worktree's repository, when it still exists.
    pub fn repo_paths(&self, common_dir: &Path) -> Option<RepoPaths> {
        if self.prunable || !self.path.is_dir() {
            return None;
        }
        Some(RepoPaths {
            workdir: self.path.clone(),
            git_dir: self.git_dir.clone(),
            common_dir: common_dir.to_owned(),
        })
    }
}

/// The main checkout (when the repository is not bare) followed by every linked worktree,
/// sorted by name.
pub fn list_worktrees(repo: &git2::Repository) -> Result<Vec<WorktreeInfo>, GitError> {
    let common_dir = repo.commondir().to_owned();
    let mut out = Vec::new();
    let main_git_dir = strip_slash(&common_dir);
    let main_path = if main_git_dir.file_name().is_some_and(|n| n == ".git") {
        main_git_dir.parent().map(Path::to_owned)
    } else if strip_slash(repo.path()) == main_git_dir {
        // a checkout whose git dir is not called `.git` (`--separate-git-dir`), or a bare repo
        repo.workdir().map(strip_slash)
    } else {
        // opened from a linked worktree of a repository with an unusual git dir: read
        // core.worktree if there is one, else treat the main repository as bare
        None
    };
    if let Some(path) = main_path {
        out.push(WorktreeInfo {
            name: None,
            head: read_head(repo, &main_git_dir),
            path,
            git_dir: main_git_dir.clone(),
            prunable: false,
            locked: false,
        });
    }
    let names = repo
        .worktrees()
        .map_err(GitError::git("list the linked worktrees"))?;
    let mut linked: Vec<String> = names.iter().flatten().map(str::to_owned).collect();
    linked.sort();
    for name in linked {
        let admin = main_git_dir.join("worktrees").join(&name);
        let (path, prunable, locked) = match repo.find_worktree(&name) {
            Ok(wt) => {
                let locked = matches!(wt.is_locked(), Ok(git2::WorktreeLockStatus::Locked(_)));
                let prunable = wt.is_prunable(None).unwrap_or(false);
                (strip_slash(wt.path()), prunable, locked)
            }
            // libgit2 cannot even read its gitdir file: only prune can help
            Err(_) => (admin.clone(), true, admin.join("locked").exists()),
        };
        out.push(WorktreeInfo {
            name: Some(name),
            head: read_head(repo, &admin),
            path,
            git_dir: admin,
            prunable,
            locked,
        });
    }
    Ok(out)
}

/// Read a worktree's HEAD file and resolve it against the shared refs.
fn read_head(repo: &git2::Repository, git_dir: &Path) -> Head {
    let Ok(text) = std::fs::read_to_string(git_dir.join("HEAD")) else {
        return Head::Unknown;
    };
    let text = text.trim();
    if let Some(refname) = text.strip_prefix("ref:") {
        let refname = refname.trim();
        let name = refname
            .strip_prefix("refs/heads/")
            .unwrap_or(refname)
            .to_owned();
        let oid = repo.refname_to_id(refname).ok();
        Head::Branch { name, oid }
    } else {
        git2::Oid::from_str(text)
            .map(Head::Detached)
            .unwrap_or(Head::Unknown)
    }
}

fn strip_slash(p: &Path) -> PathBuf {
    let s = p.to_string_lossy();
    if s.len() > 1 && s.ends_with('/') {
        PathBuf::from(s.trim_end_matches('/'))
    } else {
        p.to_owned()
    }
}

/// The commit the main checkout has checked out: the integration target agents' work is
/// measured against, whichever worktree the caller stands in.
pub fn main_head(repo: &git2::Repository) -> Result<Option<git2::Oid>, GitError> {
    Ok(list_worktrees(repo)?
        .into_iter()
        .find(WorktreeInfo::is_main)
        .and_then(|w| w.head.oid()))
}
