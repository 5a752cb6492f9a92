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
}

/// The status of the worktree `repo` was opened on.
pub fn status(repo: &git2::Repository, mode: StatusMode) -> Result<Vec<StatusEntry>, GitError> {
    let mut opts = git2::StatusOptions::new();
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
        let path = new
            .or(old)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| String::from_utf8_lossy(entry.path_bytes()).into_owned());
        let head_path = old
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|p| *p != path);
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
