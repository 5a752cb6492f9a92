//! Working-tree status on git2, tuned for big repositories: untracked files listed one by
//! one, no index rewrite, submodules skipped, and the index's stat cache trusted so only
//! files whose stat data changed are hashed.

use crate::GitError;

/// How one path differs from HEAD in a worktree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// Conflicted in the index (a merge or rebase stopped on it).
    Unmerged,
    /// Tracked and changed (staged, unstaged or both), including renames and type changes.
    Modified,
    /// New in the index but not in HEAD.
    Added,
    /// In HEAD, gone from the index or the working tree.
    Deleted,
    /// Not tracked and not ignored.
    Untracked,
}

/// One changed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusEntry {
    /// The path now (repository-relative, `/`-separated).
    pub path: String,
    /// The path in HEAD when the change is a rename (staged or detected), else `None`.
    pub head_path: Option<String>,
    pub kind: EntryKind,
    /// Staged changes exist.
    pub staged: bool,
    /// Unstaged changes in the working tree exist (always true for untracked files).
    pub unstaged: bool,
}

/// Options for [`status`].
#[derive(Debug, Clone, Copy, Default)]
pub struct StatusMode {
    /// Pair deletions with additions into renames (reads the content of the candidates).
    pub renames: bool,
    /// Use the stat pre-pass of [`crate::fast_status`] from this many index entries on
    /// (`None`: from 2048; `Some(0)`: always; `Some(usize::MAX)`: never).
    pub fast_from: Option<usize>,
}

/// Process-wide libgit2 setting for read-only work like verify: trust the object store
/// instead of re-hashing each object read (git does not re-hash either). Call once, early,
/// from the binary.
pub fn tune_for_reading() {
    git2::opts::strict_hash_verification(false);
}

/// The status of the worktree `repo` was opened on.
pub fn status(repo: &git2::Repository, mode: StatusMode) -> Result<Vec<StatusEntry>, GitError> {
    let threshold = mode.fast_from.unwrap_or(2048);
    let paths = if threshold == usize::MAX {
        None
    } else {
        crate::fast_status::candidates(repo, threshold)?
    };
    match paths {
        Some(p) if p.is_empty() => Ok(Vec::new()),
        Some(p) if p.len() <= 4096 => libgit2_status(repo, mode, Some(&p)),
        _ => libgit2_status(repo, mode, None),
    }
}

fn libgit2_status(
    repo: &git2::Repository,
    mode: StatusMode,
    only: Option<&[String]>,
) -> Result<Vec<StatusEntry>, GitError> {
    let mut opts = git2::StatusOptions::new();
    if let Some(paths) = only {
        opts.disable_pathspec_match(true);
        for p in paths {
            opts.pathspec(p.as_str());
        }
    }
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false)
        .exclude_submodules(true)
        .update_index(false)
        .renames_head_to_index(mode.renames)
        .renames_index_to_workdir(mode.renames);
    let statuses = repo
        .statuses(Some(&mut opts))
        .map_err(GitError::git(format!(
            "read the status of {}",
            repo.workdir().unwrap_or(repo.path()).display()
        )))?;
    let mut out = Vec::with_capacity(statuses.len());
    for entry in statuses.iter() {
        let s = entry.status();
        if s.is_ignored() || s.is_empty() {
            continue;
        }
        let h2i = entry.head_to_index();
        let i2w = entry.index_to_workdir();
        let old = h2i
            .as_ref()
            .and_then(|d| d.old_file().path())
            .or_else(|| i2w.as_ref().and_then(|d| d.old_file().path()));
        let new = i2w
            .as_ref()
            .and_then(|d| d.new_file().path())
            .or_else(|| h2i.as_ref().and_then(|d| d.new_file().path()));
        // paths are bytes: non-UTF-8 names keep their git-quoted form, never a lossy one
        let key = |p: &std::path::Path| crate::pathkey::key(p.as_os_str().as_encoded_bytes());
        let path = new
            .or(old)
            .map(key)
            .unwrap_or_else(|| crate::pathkey::key(entry.path_bytes()));
        let head_path = old.map(key).filter(|p| *p != path);
        let staged = s.intersects(
            git2::Status::INDEX_NEW
                | git2::Status::INDEX_MODIFIED
                | git2::Status::INDEX_DELETED
                | git2::Status::INDEX_RENAMED
                | git2::Status::INDEX_TYPECHANGE,
        );
        let unstaged = s.intersects(
            git2::Status::WT_NEW
                | git2::Status::WT_MODIFIED
                | git2::Status::WT_DELETED
                | git2::Status::WT_RENAMED
                | git2::Status::WT_TYPECHANGE,
        );
        let kind = if s.is_conflicted() {
            EntryKind::Unmerged
        } else if s.is_wt_new() && !staged {
            EntryKind::Untracked
        } else if s.is_wt_deleted() || (s.is_index_deleted() && !s.is_wt_new()) {
            EntryKind::Deleted
        } else if s.is_index_new() {
            EntryKind::Added
        } else {
            EntryKind::Modified
        };
        out.push(StatusEntry {
            path,
            head_path,
            kind,
            staged,
            unstaged,
        });
    }
    Ok(out)
}
