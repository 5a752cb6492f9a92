//! What one line of work changed relative to a base commit: the committed changes (a tree
//! diff, renames followed) plus the uncommitted and untracked changes of its worktree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::GitError;
use crate::status::{EntryKind, StatusMode, status};

/// Where the changed version of a file lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Content {
    /// A blob in the object database, with its file mode.
    Blob { oid: git2::Oid, mode: u32 },
    /// A file in a working tree, not committed (absolute path).
    Workdir(PathBuf),
}

/// One changed file, keyed by its path in the base so that a rename and an edit of the same
/// file meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// The path in the base (for added files: the new path).
    pub key: String,
    /// Where the file is after the change; `None` when it was deleted.
    pub dest: Option<String>,
    /// The changed content; `None` when deleted.
    pub content: Option<Content>,
    /// The file did not exist in the base.
    pub added: bool,
    /// Some of the change is not committed.
    pub uncommitted: bool,
}

impl FileChange {
    pub fn is_rename(&self) -> bool {
        self.dest.as_deref().is_some_and(|d| d != self.key)
    }
    /// Every path this change writes: the key (unless added elsewhere) and the destination.
    pub fn touched(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.key.as_str()).chain(self.dest.as_deref().filter(|d| *d != self.key))
    }
}

/// The files changed between two trees, renames detected with git's default 50% similarity.
pub fn tree_changes(
    repo: &git2::Repository,
    from: Option<&git2::Tree<'_>>,
    to: Option<&git2::Tree<'_>>,
) -> Result<Vec<FileChange>, GitError> {
    let mut opts = git2::DiffOptions::new();
    opts.ignore_submodules(true).skip_binary_check(true);
    let mut diff = repo
        .diff_tree_to_tree(from, to, Some(&mut opts))
        .map_err(GitError::git("diff two trees"))?;
    let has_adds_and_deletes = {
        let mut adds = false;
        let mut dels = false;
        for d in diff.deltas() {
            match d.status() {
                git2::Delta::Added => adds = true,
                git2::Delta::Deleted => dels = true,
                _ => {}
            }
        }
        adds && dels
    };
    if has_adds_and_deletes {
        let mut find = git2::DiffFindOptions::new();
        find.renames(true);
        diff.find_similar(Some(&mut find))
            .map_err(GitError::git("detect renames"))?;
    }
    let mut out = Vec::with_capacity(diff.deltas().len());
    for d in diff.deltas() {
        let old = d.old_file();
        let new = d.new_file();
        let old_path = old.path().map(|p| p.to_string_lossy().into_owned());
        let new_path = new.path().map(|p| p.to_string_lossy().into_owned());
        let blob = || Content::Blob {
            oid: new.id(),
            mode: u32::from(new.mode()),
        };
        let change = match d.status() {
            git2::Delta::Added => FileChange {
                key: new_path.clone().unwrap_or_default(),
                dest: new_path,
                content: Some(blob()),
                added: true,
                uncommitted: false,
            },
            git2::Delta::Deleted => FileChange {
                key: old_path.unwrap_or_default(),
                dest: None,
                content: None,
                added: false,
                uncommitted: false,
            },
            git2::Delta::Unmodified | git2::Delta::Ignored | git2::Delta::Untracked => continue,
            _ => FileChange {
                key: old_path.or_else(|| new_path.clone()).unwrap_or_default(),
                dest: new_path,
                content: Some(blob()),
                added: false,
                uncommitted: false,
            },
        };
        out.push(change);
    }
    Ok(out)
}

/// The changes of one line of work: committed since `base` up to `tip`, then the uncommitted
/// and untracked changes of `worktree` (which must have `tip` checked out) laid over them.
/// Keyed by path in `base`.
pub fn line_changes(
    repo: &git2::Repository,
    base: Option<git2::Oid>,
    tip: Option<git2::Oid>,
    worktree: Option<&Path>,
) -> Result<BTreeMap<String, FileChange>, GitError> {
    let tree_of = |oid: Option<git2::Oid>| -> Result<Option<git2::Tree<'_>>, GitError> {
        oid.map(|o| {
            repo.find_commit(o)
                .and_then(|c| c.tree())
                .map_err(GitError::git(format!("read the tree of commit {o}")))
        })
        .transpose()
    };
    let base_tree = tree_of(base)?;
    let tip_tree = tree_of(tip)?;
    let mut changes = BTreeMap::new();
    if base != tip {
        for c in tree_changes(repo, base_tree.as_ref(), tip_tree.as_ref())? {
            changes.insert(c.key.clone(), c);
        }
    }
    let Some(dir) = worktree else {
        return Ok(changes);
    };
    let wt_repo = git2::Repository::open(dir).map_err(GitError::git(format!(
        "open the worktree at {}",
        dir.display()
    )))?;
    // tip path -> key in base, for files the commits renamed
    let renamed_to: BTreeMap<String, String> = changes
        .values()
        .filter(|c| c.is_rename())
        .filter_map(|c| c.dest.clone().map(|d| (d, c.key.clone())))
        .collect();
    let in_base = |p: &str| {
        base_tree
            .as_ref()
            .is_some_and(|t| t.get_path(Path::new(p)).is_ok())
    };
    let in_tip = |p: &str| {
        tip_tree
            .as_ref()
            .is_some_and(|t| t.get_path(Path::new(p)).is_ok())
    };
    for e in status(&wt_repo, StatusMode { renames: true })? {
        let tip_path = e.head_path.clone().unwrap_or_else(|| e.path.clone());
        let key = renamed_to
            .get(&tip_path)
            .cloned()
            .unwrap_or_else(|| tip_path.clone());
        let deleted = e.kind == EntryKind::Deleted;
        if deleted && !in_tip(&tip_path) {
            // added in the index, then deleted: nothing changed against HEAD
            continue;
        }
        let prior_added = changes.get(&key).is_some_and(|c: &FileChange| c.added);
        let existed_in_tip =
            e.kind != EntryKind::Untracked && e.kind != EntryKind::Added || e.head_path.is_some();
        let added = if changes.contains_key(&key) {
            prior_added
        } else {
            !existed_in_tip && !in_base(&key)
        };
        let change = FileChange {
            key: key.clone(),
            dest: (!deleted).then(|| e.path.clone()),
            content: (!deleted).then(|| Content::Workdir(dir.join(&e.path))),
            added,
            uncommitted: true,
        };
        if deleted && added {
            // added by the commits, deleted again in the worktree: no change at all
            changes.remove(&key);
            continue;
        }
        changes.insert(key, change);
    }
    Ok(changes)
}
