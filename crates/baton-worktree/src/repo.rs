//! The repository a worktree operation works on: its paths, its `[worktree]` config, and how
//! names given on the command line (bases, targets, worktrees) resolve.

use std::path::{Path, PathBuf};

use baton_git::RepoPaths;
use git2::{Oid, Repository};

use crate::admin::{self, Entry};
use crate::config::WorktreeConfig;
use crate::errors::{Result, WorktreeError};

/// A repository with its worktree config. Cheap to share between threads (it holds paths, not
/// a `git2::Repository`, which is not `Sync`): each thread calls [`Worktrees::open`].
#[derive(Debug, Clone)]
pub struct Worktrees {
    pub paths: RepoPaths,
    pub main_workdir: PathBuf,
    pub config: WorktreeConfig,
    /// Where new worktrees go.
    pub root: PathBuf,
}

/// A resolved target: the name as given, its commit, and the branch it names, if it names one
/// (`main`, `heads/main`, `refs/heads/main` all name `refs/heads/main`; `main~0` or a sha name
/// only a commit). Branches are compared by full ref name, never by the string given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub commit: Oid,
    pub branch_ref: Option<String>,
}

impl Worktrees {
    pub fn new(paths: RepoPaths, config: WorktreeConfig) -> Result<Self> {
        config.validate()?;
        let main_workdir = paths.main_workdir();
        let root = config.root_for(&main_workdir);
        Ok(Worktrees {
            paths,
            main_workdir,
            config,
            root,
        })
    }

    pub fn common_dir(&self) -> &Path {
        &self.paths.common_dir
    }

    /// Open the main repository (one per thread).
    pub fn open(&self) -> Result<Repository> {
        Repository::open(&self.main_workdir).map_err(WorktreeError::git(format!(
            "open the repository at {}",
            self.main_workdir.display()
        )))
    }

    /// The linked worktrees' admin entries.
    pub fn entries(&self) -> Result<Vec<Entry>> {
        admin::entries(self.common_dir())
    }

    /// The commit a base (branch, tag, commit, any revision) names.
    pub fn resolve_base(&self, repo: &Repository, given: &str) -> Result<Oid> {
        repo.revparse_single(given)
            .and_then(|o| o.peel_to_commit())
            .map(|c| c.id())
            .map_err(|_| {
                if repo.is_empty().unwrap_or(false) {
                    WorktreeError::NoCommits
                } else {
                    WorktreeError::UnknownBase {
                        given: given.to_owned(),
                    }
                }
            })
    }

    /// The branch work must reach: `given`, else the config's target, else the branch checked
    /// out in the main checkout. A detached or unborn main checkout is no default: the user
    /// must say which branch counts.
    pub fn resolve_target(&self, repo: &Repository, given: Option<&str>) -> Result<Target> {
        let name = match given.or(self.config.target.as_deref()) {
            Some(n) => n.to_owned(),
            None => {
                if repo.head_detached().unwrap_or(false) {
                    return Err(WorktreeError::DetachedMain);
                }
                let head = repo.head().map_err(|e| match e.code() {
                    git2::ErrorCode::UnbornBranch | git2::ErrorCode::NotFound => {
                        WorktreeError::NoCommits
                    }
                    _ => WorktreeError::git("read HEAD of the main checkout")(e),
                })?;
                head.shorthand().unwrap_or("HEAD").to_owned()
            }
        };
        let commit = repo
            .revparse_single(&name)
            .and_then(|o| o.peel_to_commit())
            .map(|c| c.id())
            .map_err(|_| {
                if repo.is_empty().unwrap_or(false) {
                    WorktreeError::NoCommits
                } else {
                    WorktreeError::UnknownTarget {
                        given: name.clone(),
                    }
                }
            })?;
        // symbolic refs (`HEAD`) are followed to the branch they name
        let branch_ref = repo
            .resolve_reference_from_short_name(&name)
            .and_then(|r| r.resolve())
            .ok()
            .and_then(|r| r.name().map(str::to_owned))
            .filter(|n| n.starts_with("refs/heads/"));
        Ok(Target {
            name,
            commit,
            branch_ref,
        })
    }

    /// The linked worktree a user named: by admin name, by path, or by branch.
    pub fn find_entry<'e>(&self, entries: &'e [Entry], given: &str) -> Result<&'e Entry> {
        let as_path = std::fs::canonicalize(given).ok();
        entries
            .iter()
            .find(|e| e.name == given)
            .or_else(|| {
                entries.iter().find(|e| {
                    as_path.as_deref() == Some(e.path.as_path())
                        || std::fs::canonicalize(&e.path).ok() == as_path && as_path.is_some()
                })
            })
            .or_else(|| entries.iter().find(|e| e.branch() == Some(given)))
            .ok_or_else(|| WorktreeError::UnknownWorktree {
                given: given.to_owned(),
            })
    }
}

/// A name safe as one path component and in an admin dir: `[A-Za-z0-9._-]`, not starting with
/// `.` or `-`, at most 100 characters.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(WorktreeError::BadName {
            name: name.to_owned(),
        })
    }
}
