//! Finding a repository and its directories.

use std::path::{Path, PathBuf};

use crate::GitError;

/// Where a repository lives. Cheap to clone and `Sync`, unlike `git2::Repository`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoPaths {
    /// The checkout's top directory (of the worktree `discover` started in).
    pub workdir: PathBuf,
    /// This worktree's git directory (`.git`, or `.git/worktrees/<name>` for linked worktrees).
    pub git_dir: PathBuf,
    /// The common git directory shared by all worktrees.
    pub common_dir: PathBuf,
}

impl RepoPaths {
    /// Find the repository containing `start`.
    pub fn discover(start: &Path) -> Result<Self, GitError> {
        let repo = git2::Repository::discover(start).map_err(|e| match e.code() {
            git2::ErrorCode::NotFound => GitError::NotARepo {
                path: start.to_owned(),
            },
            _ => GitError::Git {
                action: format!("open the repository at {}", start.display()),
                source: e,
            },
        })?;
        Self::of(&repo)
    }

    /// The paths of an open repository.
    pub fn of(repo: &git2::Repository) -> Result<Self, GitError> {
        let workdir = repo
            .workdir()
            .ok_or_else(|| GitError::Bare {
                path: repo.path().to_owned(),
            })?
            .to_owned();
        Ok(RepoPaths {
            workdir: strip_trailing_slash(workdir),
            git_dir: strip_trailing_slash(repo.path().to_owned()),
            common_dir: strip_trailing_slash(repo.commondir().to_owned()),
        })
    }

    /// The working directory of the main worktree (the one whose `.git` is the common dir).
    pub fn main_workdir(&self) -> PathBuf {
        if self.common_dir.file_name().is_some_and(|n| n == ".git") {
            self.common_dir
                .parent()
                .map(Path::to_owned)
                .unwrap_or_else(|| self.workdir.clone())
        } else {
            self.workdir.clone()
        }
    }

    /// Open the repository (one per thread when working in parallel).
    pub fn open(&self) -> Result<git2::Repository, GitError> {
        git2::Repository::open(&self.workdir).map_err(GitError::git(format!(
            "open the repository at {}",
            self.workdir.display()
        )))
    }

    /// git's `info/exclude` file, shared by all worktrees.
    pub fn info_exclude(&self) -> PathBuf {
        self.common_dir.join("info").join("exclude")
    }
}

fn strip_trailing_slash(p: PathBuf) -> PathBuf {
    let s = p.to_string_lossy();
    if s.len() > 1 && s.ends_with('/') {
        PathBuf::from(s.trim_end_matches('/'))
    } else {
        p
    }
}
