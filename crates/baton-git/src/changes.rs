//! What one line of work changed relative to a base commit: the committed changes (a tree
//! diff, renames followed) plus the uncommitted and untracked changes of its worktree.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::GitError;
use crate::status::{StatusMode, status};

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

/// The files changed between two trees, renames detected the way git's merge does
/// ([`crate::renames`]).
///
/// Subtrees with the same id on both sides are skipped without being read, so the cost is
/// proportional to what changed, not to the size of the tree (libgit2's own tree diff walks
/// every entry).
pub fn tree_changes(
    repo: &git2::Repository,
    from: Option<&git2::Tree<'_>>,
    to: Option<&git2::Tree<'_>>,
) -> Result<Vec<FileChange>, GitError> {
    let mut raw = Vec::new();
    walk_trees(repo, from, to, b"", &mut raw)?;
    let net = raw
        .into_iter()
        .map(|d| NetChange {
            path: d.path,
            old: d.old,
            new: d
                .new
                .map(|(oid, mode)| (oid, mode, Content::Blob { oid, mode })),
            uncommitted: false,
        })
        .collect();
    Ok(pair_renames(repo, net, &HashMap::new()))
}

/// One path whose content differs between the base and the end of a line of work.
struct NetChange {
    path: String,
    /// In the base: `(blob, mode)`.
    old: Option<(git2::Oid, u32)>,
    /// At the end: `(blob id, mode, where the content lives)`.
    new: Option<(git2::Oid, u32, Content)>,
    uncommitted: bool,
}

/// Turn net per-path changes into [`FileChange`]s, pairing deleted and added files into
/// renames as git's merge would. `workdir` holds the content of uncommitted files by blob id.
fn pair_renames(
    repo: &git2::Repository,
    net: Vec<NetChange>,
    workdir: &HashMap<git2::Oid, Vec<u8>>,
) -> Vec<FileChange> {
    let srcs: Vec<(usize, crate::renames::Candidate<'_>)> = net
        .iter()
        .enumerate()
        .filter_map(|(i, c)| match (c.old, &c.new) {
            (Some((oid, mode)), None) => Some((
                i,
                crate::renames::Candidate {
                    path: &c.path,
                    oid,
                    mode,
                },
            )),
            _ => None,
        })
        .collect();
    let dsts: Vec<(usize, crate::renames::Candidate<'_>)> = net
        .iter()
        .enumerate()
        .filter_map(|(i, c)| match (c.old, &c.new) {
            (None, Some((oid, mode, _))) => Some((
                i,
                crate::renames::Candidate {
                    path: &c.path,
                    oid: *oid,
                    mode: *mode,
                },
            )),
            _ => None,
        })
        .collect();
    let mut renamed: HashMap<usize, usize> = HashMap::new(); // src net index -> dst net index
    if !srcs.is_empty() && !dsts.is_empty() {
        let s: Vec<_> = srcs.iter().map(|(_, c)| c.clone()).collect();
        let d: Vec<_> = dsts.iter().map(|(_, c)| c.clone()).collect();
        let found = crate::renames::find_renames(&s, &d, |oid| {
            workdir
                .get(&oid)
                .cloned()
                .or_else(|| repo.find_blob(oid).ok().map(|b| b.content().to_vec()))
        });
        for (i, j) in found {
            renamed.insert(srcs[i].0, dsts[j].0);
        }
    }
    let is_dst: std::collections::HashSet<usize> = renamed.values().copied().collect();
    let mut out = Vec::with_capacity(net.len());
    for (i, c) in net.iter().enumerate() {
        if is_dst.contains(&i) {
            continue;
        }
        let change = match (c.old, &c.new) {
            (_, Some((_, _, content))) => FileChange {
                key: c.path.clone(),
                dest: Some(c.path.clone()),
                content: Some(content.clone()),
                added: c.old.is_none(),
                uncommitted: c.uncommitted,
            },
            (Some(_), None) => match renamed.get(&i) {
                Some(&j) => {
                    let to = &net[j];
                    FileChange {
                        key: c.path.clone(),
                        dest: Some(to.path.clone()),
                        content: to.new.as_ref().map(|n| n.2.clone()),
                        added: false,
                        uncommitted: c.uncommitted || to.uncommitted,
                    }
                }
                None => FileChange {
                    key: c.path.clone(),
                    dest: None,
                    content: None,
                    added: false,
                    uncommitted: c.uncommitted,
                },
            },
            (None, None) => continue,
        };
        out.push(change);
    }
    out
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
    prefix: &[u8],
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
    prefix: &[u8],
    old: Option<&(Vec<u8>, git2::Oid, i32)>,
    new: Option<&(Vec<u8>, git2::Oid, i32)>,
    out: &mut Vec<RawDelta>,
) -> Result<(), GitError> {
    let mut raw = prefix.to_vec();
    raw.extend(old.or(new).map(|e| e.0.as_slice()).unwrap_or_default());
    let path = crate::pathkey::key(&raw);
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
        raw.push(b'/');
        walk_trees(repo, ot.as_ref(), nt.as_ref(), &raw, out)?;
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
/// and untracked changes of `worktree` (which must have `tip` checked out) laid over them, as
/// one net change from `base`, so renames are found as git would find them once everything
/// is committed. Keyed by path in `base`.
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
    let mut raw = Vec::new();
    if base != tip {
        walk_trees(repo, base_tree.as_ref(), tip_tree.as_ref(), b"", &mut raw)?;
    }
    let mut net: BTreeMap<String, NetChange> = raw
        .into_iter()
        .map(|d| {
            (
                d.path.clone(),
                NetChange {
                    path: d.path,
                    old: d.old,
                    new: d
                        .new
                        .map(|(oid, mode)| (oid, mode, Content::Blob { oid, mode })),
                    uncommitted: false,
                },
            )
        })
        .collect();
    let mut workdir_content: HashMap<git2::Oid, Vec<u8>> = HashMap::new();
    if let Some(dir) = worktree {
        let wt_repo = git2::Repository::open(dir).map_err(GitError::git(format!(
            "open the worktree at {}",
            dir.display()
        )))?;
        let blob_in = |t: Option<&git2::Tree<'_>>, p: &str| -> Option<(git2::Oid, u32)> {
            let e = t?.get_path(&crate::pathkey::key_path(p)).ok()?;
            (e.kind() == Some(git2::ObjectType::Blob)).then(|| (e.id(), e.filemode() as u32))
        };
        for e in status(
            &wt_repo,
            StatusMode {
                renames: false,
                fast_from: None,
            },
        )? {
            let path = e.path;
            let file = dir.join(crate::pathkey::key_path(&path));
            let new = match std::fs::symlink_metadata(&file) {
                Ok(meta) if !meta.is_dir() => {
                    let (bytes, mode) = if meta.file_type().is_symlink() {
                        let target = std::fs::read_link(&file).map_err(|err| GitError::Io {
                            path: file.clone(),
                            source: err,
                        })?;
                        (target.as_os_str().as_encoded_bytes().to_vec(), 0o120000)
                    } else {
                        let bytes = std::fs::read(&file).map_err(|err| GitError::Io {
                            path: file.clone(),
                            source: err,
                        })?;
                        (bytes, crate::merge::file_mode(&meta))
                    };
                    let oid = git2::Oid::hash_object(git2::ObjectType::Blob, &bytes)
                        .map_err(GitError::git("hash content"))?;
                    workdir_content.insert(oid, bytes);
                    Some((oid, mode, Content::Workdir(file)))
                }
                _ => None,
            };
            let entry = net.entry(path.clone()).or_insert_with(|| {
                // untouched by the commits: the base has what the tip has
                NetChange {
                    path: path.clone(),
                    old: blob_in(base_tree.as_ref(), &path),
                    new: None,
                    uncommitted: true,
                }
            });
            entry.new = new;
            entry.uncommitted = true;
        }
        // a change undone in the worktree is no change at all
        net.retain(|_, c| c.old.map(|o| (o.0, o.1)) != c.new.as_ref().map(|n| (n.0, n.1)));
    }
    let changes = pair_renames(repo, net.into_values().collect(), &workdir_content);
    Ok(changes.into_iter().map(|c| (c.key.clone(), c)).collect())
}

/// Every non-tree entry of `tree` as `(path key, blob or commit id, mode)`, in git's order.
/// Names are bytes: a name that is not UTF-8 keeps its git-quoted key (libgit2's tree walk
/// gives up on such names).
pub fn tree_files(
    repo: &git2::Repository,
    tree: &git2::Tree<'_>,
) -> Result<Vec<(String, git2::Oid, u32)>, GitError> {
    fn walk(
        repo: &git2::Repository,
        tree: &git2::Tree<'_>,
        prefix: &mut Vec<u8>,
        out: &mut Vec<(String, git2::Oid, u32)>,
    ) -> Result<(), GitError> {
        for e in tree.iter() {
            let len = prefix.len();
            prefix.extend_from_slice(e.name_bytes());
            if is_tree(e.filemode()) {
                let sub = repo.find_tree(e.id()).map_err(GitError::git(format!(
                    "read tree {}",
                    crate::pathkey::key(prefix)
                )))?;
                prefix.push(b'/');
                walk(repo, &sub, prefix, out)?;
            } else {
                out.push((crate::pathkey::key(prefix), e.id(), e.filemode() as u32));
            }
            prefix.truncate(len);
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(repo, tree, &mut Vec::new(), &mut out)?;
    Ok(out)
}
