//! The git edge of baton. Everything that reads or writes a repository goes through here,
//! on git2 (libgit2, vendored), so baton needs no git binary at run time.
//!
//! - [`RepoPaths`]: finding a repository and its directories.
//! - [`worktrees`]: the main checkout and linked worktrees, with HEAD and prunability.
//! - [`state`]: operations in progress and `index.lock` in one worktree.
//! - [`status`]: fast working-tree status.
//! - [`changes`]: what a line of work changed since a base (tree diffs + worktree status).
//! - [`renames`]: rename detection as git's merge does it.
//! - [`merge`]: in-memory three-way merge prediction of single files.
//! - [`text_merge`]: text merges exactly as git's (git's xdiff, histogram diffs).
//!
//! A `git2::Repository` is `Send` but not `Sync`: code that works in parallel opens one
//! repository per thread with [`RepoPaths::open`].

pub mod changes;
mod errors;
mod fast_status;
pub mod index_file;
pub mod merge;
pub mod pathkey;
mod paths;
pub mod renames;
pub mod state;
pub mod status;
pub mod text_merge;
pub mod worktrees;

pub use errors::GitError;
pub use paths::RepoPaths;

/// Resolve a revision (`HEAD`, a branch, a sha, `main~2`) to a commit id.
pub fn resolve_commit(repo: &git2::Repository, rev: &str) -> Result<git2::Oid, GitError> {
    repo.revparse_single(rev)
        .and_then(|o| o.peel_to_commit())
        .map(|c| c.id())
        .map_err(|_| GitError::UnknownRevision {
            rev: rev.to_owned(),
        })
}

/// The local branches whose short names match `matches`, with their tips, sorted by name.
pub fn branches_matching(
    repo: &git2::Repository,
    mut matches: impl FnMut(&str) -> bool,
) -> Result<Vec<(String, git2::Oid)>, GitError> {
    let mut out = Vec::new();
    let branches = repo
        .branches(Some(git2::BranchType::Local))
        .map_err(GitError::git("list branches"))?;
    for b in branches {
        let (branch, _) = b.map_err(GitError::git("list branches"))?;
        let Ok(Some(name)) = branch.name() else {
            continue;
        };
        if !matches(name) {
            continue;
        }
        if let Some(oid) = branch.get().target() {
            out.push((name.to_owned(), oid));
        }
    }
    out.sort();
    Ok(out)
}
