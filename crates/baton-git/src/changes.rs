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
///
/// Subtrees with the same id on both sides are skipped without being read, so the cost is
/// proportional to what changed, not to the size of the tree (libgit2's own tree diff walks
/// every entry). Renames are then found by libgit2 among the added and deleted files only.
pub fn tree_changes(
    repo: &git2::Repository,
    from: Option<&git2::Tree<'_>>,
    to: Option<&git2::Tree<'_>>,
) -> Result<Vec<FileChange>, GitError> {
    let mut raw = Vec::new();
    walk_trees(repo, from, to, "", &mut raw)?;
    let adds: Vec<&str> = raw
        .iter()
        .filter(|d| d.old.is_none())
        .map(|d| d.path.as_str())
        .collect();
    let dels: Vec<&str> = raw
        .iter()
        .filter(|d| d.new.is_none())
        .map(|d| d.path.as_str())
        .collect();
    // old path -> new path
    let mut renames: BTreeMap<String, String> = BTreeMap::new();
    if !adds.is_empty() && !dels.is_empty() {
        let mut opts = git2::DiffOptions::new();
        opts.ignore_submodules(true).disable_pathspec_match(true);
        for p in adds.iter().chain(&dels) {
            opts.pathspec(*p);
        }
        let mut diff = repo
            .diff_tree_to_tree(from, to, Some(&mut opts))
            .map_err(GitError::git("diff two trees"))?;
        let mut find = git2::DiffFindOptions::new();
        find.renames(true);
        diff.find_similar(Some(&mut find))
            .map_err(GitError::git("detect renames"))?;
        for d in diff.deltas() {
            if d.status() == git2::Delta::Renamed
                && let (Some(o), Some(n)) = (d.old_file().path(), d.new_file().path())
            {
                renames.insert(
                    o.to_string_lossy().into_owned(),
                    n.to_string_lossy().into_owned(),
                );
            }
        }
    }
    let renamed_to: std::collections::BTreeSet<&str> =
        renames.values().map(String::as_str).collect();
    let new_of: BTreeMap<&str, (git2::Oid, u32)> = raw
        .iter()
        .filter_map(|d| d.new.map(|n| (d.path.as_str(), n)))
        .collect();
    let mut out = Vec::with_capacity(raw.len());
    for d in &raw {
        let change = match (d.old, d.new) {
            (None, Some(_)) if renamed_to.contains(d.path.as_str()) => continue,
            (None, Some((oid, mode))) => FileChange {
                key: d.path.clone(),
                dest: Some(d.path.clone()),
                content: Some(Content::Blob { oid, mode }),
                added: true,
                uncommitted: false,
            },
            (Some(_), None) => match renames.get(&d.path) {
                Some(to) => {
                    let Some(&(oid, mode)) = new_of.get(to.as_str()) else {
                        continue;
                    };
                    FileChange {
                        key: d.path.clone(),
                        dest: Some(to.clone()),
                        content: Some(Content::Blob { oid, mode }),
                        added: false,
                        uncommitted: false,
                    }
                }
                None => FileChange {
                    key: d.path.clone(),
                    dest: None,
                    content: None,
                    added: false,
                    uncommitted: false,
                },
            },
            (Some(_), Some((oid, mode))) => FileChange {
                key: d.path.clone(),
                dest: Some(d.path.clone()),
                content: Some(Content::Blob { oid, mode }),
                added: false,
                uncommitted: false,
            },
            (None, None) => continue,
        };
        out.push(change);
    }
    Ok(out)
}

/// One non-tree entry that differs between two trees: `(oid, mode)` on each side.
struct RawDelta {
    path: String,
    old: Option<(git2::Oid, u32)>,
    new: Option<(git2::Oid, u32)>,
}

fn is_tree(mode: i32) -> bool {
    mode == 0o040000
}

/// Merge-join two trees' entries (both sorted the git way), recursing only into subtrees
/// whose ids differ.
fn walk_trees(
    repo: &git2::Repository,
    old: Option<&git2::Tree<'_>>,
    new: Option<&git2::Tree<'_>>,
    prefix: &str,
    out: &mut Vec<RawDelta>,
) -> Result<(), GitError> {
    type Entry = (Vec<u8>, git2::Oid, i32);
    let entries = |t: Option<&git2::Tree<'_>>| -> Vec<Entry> {
        t.map(|t| {
            t.iter()
                .map(|e| (e.name_bytes().to_vec(), e.id(), e.filemode()))
                .collect()
        })
        .unwrap_or_default()
    };
    let (a, b) = (entries(old), entries(new));
    // git sorts tree entries as if directory names ended with '/'
    let key = |e: &Entry| {
        let mut k = e.0.clone();
        if is_tree(e.2) {
            k.push(b'/');
        }
        k
    };
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let ord = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.0 == y.0 => std::cmp::Ordering::Equal,
            (Some(x), Some(y)) => key(x).cmp(&key(y)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, _) => std::cmp::Ordering::Greater,
        };
        match ord {
            std::cmp::Ordering::Equal => {
                let (x, y) = (&a[i], &b[j]);
                if x.1 != y.1 || x.2 != y.2 {
                    side_by_side(repo, prefix, Some(x), Some(y), out)?;
                }
                i += 1;
                j += 1;
            }
            std::cmp::Ordering::Less => {
                side_by_side(repo, prefix, Some(&a[i]), None, out)?;
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                side_by_side(repo, prefix, None, Some(&b[j]), out)?;
                j += 1;
            }
        }
    }
    Ok(())
}

fn side_by_side(
    repo: &git2::Repository,
    prefix: &str,
    old: Option<&(Vec<u8>, git2::Oid, i32)>,
    new: Option<&(Vec<u8>, git2::Oid, i32)>,
    out: &mut Vec<RawDelta>,
) -> Result<(), GitError> {
    let name = old
        .or(new)
        .map(|e| String::from_utf8_lossy(&e.0).into_owned());
    let path = format!("{prefix}{}", name.unwrap_or_default());
    let tree = |e: Option<&(Vec<u8>, git2::Oid, i32)>| -> Result<Option<git2::Tree<'_>>, GitError> {
        match e {
            Some(e) if is_tree(e.2) => repo
                .find_tree(e.1)
                .map(Some)
                .map_err(GitError::git(format!("read tree {path}"))),
            _ => Ok(None),
        }
    };
    let blob = |e: Option<&(Vec<u8>, git2::Oid, i32)>| {
        e.filter(|e| !is_tree(e.2)).map(|e| (e.1, e.2 as u32))
    };
    let (ot, nt) = (tree(old)?, tree(new)?);
    if ot.is_some() || nt.is_some() {
        walk_trees(repo, ot.as_ref(), nt.as_ref(), &format!("{path}/"), out)?;
    }
    let (ob, nb) = (blob(old), blob(new));
    if ob.is_some() || nb.is_some() {
        out.push(RawDelta {
            path,
            old: ob,
            new: nb,
        });
    }
    Ok(())
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
    for e in status(
        &wt_repo,
        StatusMode {
            renames: true,
            fast_from: None,
        },
    )? {
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
