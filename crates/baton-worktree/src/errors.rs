//! Errors of worktree operations. Each names the worktree, branch or file at fault and what to
//! do; [`WorktreeError::is_bad_input`] tells the CLI whether it is the user's input (exit 2) or
//! the environment (exit 3).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum WorktreeError {
    #[error("base {given:?} is not a branch, tag or commit of this repository")]
    UnknownBase { given: String },
    #[error("target {given:?} is not a branch or commit of this repository; pass --target REF")]
    UnknownTarget { given: String },
    #[error(
        "the main checkout is detached, so there is no default target; pass --target BRANCH or set [worktree] target in .config/baton.toml"
    )]
    DetachedMain,
    #[error("the repository has no commits yet; make a first commit, then create worktrees")]
    NoCommits,
    #[error(
        "{} is still claimed by the stale worktree entry {name}; run `baton worktree prune` first",
        path.display()
    )]
    PathClaimed { path: PathBuf, name: String },
    #[error("{} is not removed: {why}", path.display())]
    NotOurs { path: PathBuf, why: String },
    #[error("no stored plan and no worktree for plan {given:?}; see `baton plan list`")]
    UnknownPlan { given: String },
    #[error("{what} {given:?} is given twice")]
    Duplicate { what: &'static str, given: String },
    #[error("branch {branch} already exists; pick another agent or name, or clean it up first")]
    BranchExists { branch: String },
    #[error("{} already exists; pick another name or root", path.display())]
    PathExists { path: PathBuf },
    #[error(
        "{name:?} is not a valid worktree name: use [A-Za-z0-9._-], not starting with '.' or '-'"
    )]
    BadName { name: String },
    #[error("{branch:?} is not a valid branch name")]
    BadBranch { branch: String },
    #[error("no worktree named {given:?}; see `baton worktree list`")]
    UnknownWorktree { given: String },
    #[error("worktree.{field} in .config/baton.toml: {message}")]
    BadConfig {
        field: &'static str,
        message: String,
    },
    #[error("pattern {pattern:?} of {source_file}: {message}")]
    BadPattern {
        source_file: String,
        pattern: String,
        message: String,
    },
    #[error(
        "the base's tree has an entry {path:?} that git refuses to check out (it would write outside the worktree, through another entry or into a .git of its own; `git fsck` flags it); start from another base"
    )]
    UnsafeTreePath { path: String },
    #[error("process {pid} does not exist, so it cannot own a worktree")]
    NoSuchProcess { pid: u32 },
    #[error("git: cannot {action}: {}", source.message())]
    Git {
        action: String,
        #[source]
        source: git2::Error,
    },
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("setup command {argv:?} in {} failed: {message}", dir.display())]
    Setup {
        argv: Vec<String>,
        dir: PathBuf,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] baton_store::StoreError),
    #[error(transparent)]
    RepoGit(#[from] baton_git::GitError),
}

impl WorktreeError {
    pub fn git(action: impl Into<String>) -> impl FnOnce(git2::Error) -> WorktreeError {
        let action = action.into();
        move |source| WorktreeError::Git { action, source }
    }

    pub fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> WorktreeError {
        let path = path.into();
        move |source| WorktreeError::Io {
            action,
            path,
            source,
        }
    }

    /// True when the user's input is at fault (exit 2); otherwise it is the environment (exit 3).
    pub fn is_bad_input(&self) -> bool {
        match self {
            WorktreeError::UnknownBase { .. }
            | WorktreeError::UnknownTarget { .. }
            | WorktreeError::DetachedMain
            | WorktreeError::NoCommits
            | WorktreeError::Duplicate { .. }
            | WorktreeError::UnknownPlan { .. }
            | WorktreeError::PathClaimed { .. }
            | WorktreeError::BranchExists { .. }
            | WorktreeError::PathExists { .. }
            | WorktreeError::BadName { .. }
            | WorktreeError::BadBranch { .. }
            | WorktreeError::UnknownWorktree { .. }
            | WorktreeError::BadConfig { .. }
            | WorktreeError::BadPattern { .. }
            | WorktreeError::UnsafeTreePath { .. }
            | WorktreeError::NoSuchProcess { .. } => true,
            WorktreeError::Store(e) => e.is_bad_content(),
            WorktreeError::Git { .. }
            | WorktreeError::NotOurs { .. }
            | WorktreeError::Io { .. }
            | WorktreeError::Setup { .. }
            | WorktreeError::RepoGit(_) => false,
        }
    }
}

pub type Result<T, E = WorktreeError> = std::result::Result<T, E>;
