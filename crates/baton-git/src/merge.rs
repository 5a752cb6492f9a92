//! Predicting how a three-way merge of one file goes, in memory.
//!
//! Content comes from the object database (blobs) or from working trees (files not yet
//! committed). Uncommitted content is hashed into an in-memory object backend (libgit2's
//! mempack) added in front of the repository's own, so it can be read like any blob, and
//! nothing is ever written to the repository on disk. An object that already exists is never
//! rewritten (libgit2 would "freshen" it by touching its file). Text content is merged as
//! git's merge does it ([`crate::text_merge`]: histogram diffs), not with libgit2's Myers.

use std::path::Path;
use std::sync::Arc;

use crate::GitError;
use crate::changes::Content;
use crate::text_merge::{HunkCache, TextMerge};

/// Why a merge of one file conflicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConflictKind {
    /// Both sides edited overlapping or adjacent lines.
    Content,
    /// One side deleted the file, the other changed it.
    ModifyDelete,
    /// Both sides added a file at the same path with different content.
    AddAdd,
    /// Both sides renamed the file, to different paths.
    RenameRename,
    /// One side renamed the file, the other deleted it.
    RenameDelete,
    /// The sides changed the file's type or mode differently (file vs symlink, exec bit).
    Mode,
    /// Binary content changed differently on both sides.
    Binary,
    /// One side has a file where the other has a directory.
    FileDirectory,
}

impl ConflictKind {
    pub fn describe(self) -> &'static str {
        match self {
            ConflictKind::Content => "edits to the same or adjacent lines",
            ConflictKind::ModifyDelete => "one deleted the file, the other changed it",
            ConflictKind::AddAdd => "both added it with different content",
            ConflictKind::RenameRename => "both renamed it, to different paths",
            ConflictKind::RenameDelete => "one renamed the file, the other deleted it",
            ConflictKind::Mode => "they changed its type or mode differently",
            ConflictKind::Binary => "binary content changed on both sides",
            ConflictKind::FileDirectory => "a file on one side, a directory on the other",
        }
    }
}

/// How a three-way merge of one file goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeOutcome {
    /// It merges; the result (`None`: the file is deleted).
    Clean(Option<Side>),
    Conflict(ConflictKind),
}

/// One side of a file merge: a blob and its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Side {
    pub oid: git2::Oid,
    pub mode: u32,
}

/// Merges files of one repository in memory. One per thread: it holds a `Repository`.
pub struct Merger {
    repo: git2::Repository,
    hunks: Option<Arc<HunkCache>>,
}

impl Merger {
    /// Open `paths`' repository with an in-memory object backend in front of the disk.
    pub fn open(paths: &crate::RepoPaths) -> Result<Self, GitError> {
        let repo = paths.open()?;
        Self::new(repo)
    }

    /// Take over an open repository (it must not be used to write objects elsewhere).
    pub fn new(repo: git2::Repository) -> Result<Self, GitError> {
        {
            // `repo.odb()` hands out the repository's own object database, so the backend
            // stays in place for as long as the repository lives.
            let odb = repo
                .odb()
                .map_err(GitError::git("open the object database"))?;
            // Priority far above the loose (1) and pack (2) backends: writes land in memory.
            odb.add_new_mempack_backend(1000)
                .map_err(GitError::git("add an in-memory object backend"))?;
        }
        Ok(Merger { repo, hunks: None })
    }

    /// Share each side's diff against the base between mergers (and so between pairs): a
    /// verdict whose sides changed lines far apart then needs no merge at all.
    pub fn with_hunk_cache(mut self, cache: Arc<HunkCache>) -> Self {
        self.hunks = Some(cache);
        self
    }

    pub fn repo(&self) -> &git2::Repository {
        &self.repo
    }

    /// The object id of some content, stored in memory if the repository lacks it.
    pub fn side(&self, content: &Content) -> Result<Side, GitError> {
        match content {
            Content::Blob { oid, mode } => Ok(Side {
                oid: *oid,
                mode: *mode,
            }),
            Content::Workdir(path) => self.side_of_file(path),
        }
    }

    fn side_of_file(&self, path: &Path) -> Result<Side, GitError> {
        let io = |e: std::io::Error| GitError::Io {
            path: path.to_owned(),
            source: e,
        };
        let meta = std::fs::symlink_metadata(path).map_err(io)?;
        let (bytes, mode) = if meta.file_type().is_symlink() {
            let target = std::fs::read_link(path).map_err(io)?;
            (target.as_os_str().as_encoded_bytes().to_vec(), 0o120000)
        } else {
            let bytes = std::fs::read(path).map_err(io)?;
            (bytes, file_mode(&meta))
        };
        Ok(Side {
            oid: self.store(&bytes)?,
            mode,
        })
    }

    /// Hash `bytes` as a blob; write it (to memory) only if no backend has it yet.
    pub fn store(&self, bytes: &[u8]) -> Result<git2::Oid, GitError> {
        let oid = git2::Oid::hash_object(git2::ObjectType::Blob, bytes)
            .map_err(GitError::git("hash content"))?;
        let odb = self
            .repo
            .odb()
            .map_err(GitError::git("open the object database"))?;
        if odb.exists(oid) {
            return Ok(oid);
        }
        self.repo
            .blob(bytes)
            .map_err(GitError::git("store content in memory"))
    }

    /// The blob at `path` in `tree`, if any.
    pub fn side_in_tree(&self, tree: &git2::Tree<'_>, path: &str) -> Option<Side> {
        let entry = tree.get_path(&crate::pathkey::key_path(path)).ok()?;
        (entry.kind() == Some(git2::ObjectType::Blob)).then(|| Side {
            oid: entry.id(),
            mode: entry.filemode() as u32,
        })
    }

    /// Would a three-way merge of one file conflict? `None` sides mean "absent" (deleted, or
    /// not in the ancestor).
    pub fn merge(
        &self,
        path: &str,
        ancestor: Option<Side>,
        ours: Option<Side>,
        theirs: Option<Side>,
    ) -> Result<MergeOutcome, GitError> {
        self.merge_as(path, ancestor, ours, theirs, true)
    }

    /// Like [`Merger::merge`], for the verdict only: a clean text merge's result is not
    /// hashed or stored (its side in `Clean` is then `ours`, not the merged content).
    pub fn verdict(
        &self,
        path: &str,
        ancestor: Option<Side>,
        ours: Option<Side>,
        theirs: Option<Side>,
    ) -> Result<MergeOutcome, GitError> {
        self.merge_as(path, ancestor, ours, theirs, false)
    }

    fn merge_as(
        &self,
        path: &str,
        ancestor: Option<Side>,
        ours: Option<Side>,
        theirs: Option<Side>,
        keep_result: bool,
    ) -> Result<MergeOutcome, GitError> {
        if ours == theirs || theirs == ancestor {
            return Ok(MergeOutcome::Clean(ours));
        }
        if ours == ancestor {
            return Ok(MergeOutcome::Clean(theirs));
        }
        let (Some(o), Some(t)) = (ours, theirs) else {
            // one side deleted, the other changed
            return Ok(MergeOutcome::Conflict(ConflictKind::ModifyDelete));
        };
        let base_mode = ancestor.map(|a| a.mode);
        let mode = if o.mode == t.mode {
            o.mode
        } else if is_link(o.mode) != is_link(t.mode) {
            return Ok(MergeOutcome::Conflict(ConflictKind::Mode));
        } else if base_mode == Some(o.mode) {
            t.mode
        } else if base_mode == Some(t.mode) {
            o.mode
        } else {
            return Ok(MergeOutcome::Conflict(ConflictKind::Mode));
        };
        if o.oid == t.oid {
            return Ok(MergeOutcome::Clean(Some(Side { oid: o.oid, mode })));
        }
        let add_add = ancestor.is_none();
        if o.mode == 0o160000
            && t.mode == 0o160000
            && let Some(ahead) = self.submodule_fast_forward(path, ancestor, o.oid, t.oid)
        {
            return Ok(MergeOutcome::Clean(Some(Side {
                oid: ahead,
                mode: 0o160000,
            })));
        }
        if is_link(o.mode) || o.mode == 0o160000 || t.mode == 0o160000 {
            return Ok(MergeOutcome::Conflict(if add_add {
                ConflictKind::AddAdd
            } else {
                ConflictKind::Content
            }));
        }
        let base = ancestor.filter(|a| !is_link(a.mode) && a.mode != 0o160000);
        let blob = |oid: git2::Oid| {
            self.repo
                .find_blob(oid)
                .map_err(GitError::git(format!("read {path}")))
        };
        if !keep_result && let (Some(cache), Some(b)) = (&self.hunks, base) {
            let diff = |side: git2::Oid| -> Result<_, GitError> {
                let mut failed = None;
                let bytes =
                    |oid| cache.blob(oid, || blob(oid).map(|b| Arc::<[u8]>::from(b.content())));
                let d = cache.get(b.oid, side, || match (bytes(b.oid), bytes(side)) {
                    (Ok(bb), Ok(sb)) => crate::text_merge::side_diff(&bb, sb),
                    (Err(e), _) | (_, Err(e)) => {
                        failed = Some(e);
                        None
                    }
                });
                match failed {
                    Some(e) => Err(e),
                    None => Ok(d),
                }
            };
            if let (Some(da), Some(dt)) = (diff(o.oid)?, diff(t.oid)?)
                && let Some(clean) = crate::text_merge::merges_cleanly(&da, &dt)
            {
                return Ok(if clean {
                    MergeOutcome::Clean(Some(Side { oid: o.oid, mode }))
                } else {
                    MergeOutcome::Conflict(ConflictKind::Content)
                });
            }
        }
        let (ours_blob, theirs_blob) = (blob(o.oid)?, blob(t.oid)?);
        let base_blob = base.map(|b| blob(b.oid)).transpose()?;
        let base_bytes = base_blob.as_ref().map_or(&[][..], |b| b.content());
        let merged =
            crate::text_merge::merge(base_bytes, ours_blob.content(), theirs_blob.content())
                .ok_or_else(|| {
                    GitError::Again(format!("merge {path}: xdiff failed (out of memory?)"))
                })?;
        match merged {
            TextMerge::Clean(merged) => {
                let oid = if keep_result {
                    self.store(&merged)?
                } else {
                    o.oid
                };
                Ok(MergeOutcome::Clean(Some(Side { oid, mode })))
            }
            TextMerge::Conflict | TextMerge::Binary if add_add => {
                Ok(MergeOutcome::Conflict(ConflictKind::AddAdd))
            }
            TextMerge::Binary => Ok(MergeOutcome::Conflict(ConflictKind::Binary)),
            TextMerge::Conflict => Ok(MergeOutcome::Conflict(ConflictKind::Content)),
        }
    }

    /// git's submodule merge: when one side's commit contains the other's and both contain
    /// the ancestor's, the pointer fast-forwards to the later one. The commits are looked up
    /// in the submodule's own repository; without it (not initialised), no verdict.
    fn submodule_fast_forward(
        &self,
        path: &str,
        ancestor: Option<Side>,
        ours: git2::Oid,
        theirs: git2::Oid,
    ) -> Option<git2::Oid> {
        let sub = self.repo.find_submodule(path).ok()?.open().ok()?;
        let contains = |later: git2::Oid, earlier: git2::Oid| {
            later == earlier || sub.graph_descendant_of(later, earlier).unwrap_or(false)
        };
        if let Some(a) = ancestor.filter(|a| a.mode == 0o160000)
            && !(contains(ours, a.oid) && contains(theirs, a.oid))
        {
            return None;
        }
        if contains(theirs, ours) {
            Some(theirs)
        } else if contains(ours, theirs) {
            Some(ours)
        } else {
            None
        }
    }
}

/// The mode is a symbolic link's.
pub fn is_link(mode: u32) -> bool {
    mode & 0o170000 == 0o120000
}

/// An index entry for `path` with `side`'s blob and mode, and no stat data (for in-memory
/// indexes only).
pub fn index_entry(path: &str, side: Side) -> git2::IndexEntry {
    git2::IndexEntry {
        ctime: git2::IndexTime::new(0, 0),
        mtime: git2::IndexTime::new(0, 0),
        dev: 0,
        ino: 0,
        mode: side.mode,
        uid: 0,
        gid: 0,
        file_size: 0,
        id: side.oid,
        flags: 0,
        flags_extended: 0,
        path: crate::pathkey::key_bytes(path).into_owned(),
    }
}

#[cfg(unix)]
pub(crate) fn file_mode(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    if meta.permissions().mode() & 0o111 != 0 {
        0o100755
    } else {
        0o100644
    }
}

#[cfg(not(unix))]
pub(crate) fn file_mode(_meta: &std::fs::Metadata) -> u32 {
    0o100644
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_tests::TestRepo;

    fn objects(repo: &TestRepo) -> Vec<(std::path::PathBuf, u64, std::time::SystemTime)> {
        let mut out = Vec::new();
        let mut stack = vec![repo.path().join(".git/objects")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let m = e.metadata().unwrap();
                if m.is_dir() {
                    stack.push(e.path());
                } else {
                    out.push((e.path(), m.len(), m.modified().unwrap()));
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn merges_in_memory_without_touching_the_object_store() {
        let repo = TestRepo::new();
        repo.write("f.txt", "1\n2\n3\n4\n5\n6\n7\n8\n");
        repo.commit_all("base");
        let before = objects(&repo);
        let merger = Merger::open(&crate::RepoPaths::discover(repo.path()).unwrap()).unwrap();
        let side = |text: &str| {
            Some(Side {
                oid: merger.store(text.as_bytes()).unwrap(),
                mode: 0o100644,
            })
        };
        // an existing object is found, not rewritten (libgit2 would touch its file)
        let base = side("1\n2\n3\n4\n5\n6\n7\n8\n");
        let ours = side("one\n2\n3\n4\n5\n6\n7\n8\n");
        let theirs = side("1\n2\n3\n4\n5\n6\n7\neight\n");
        let MergeOutcome::Clean(Some(merged)) = merger.merge("f.txt", base, ours, theirs).unwrap()
        else {
            panic!("disjoint edits merge");
        };
        let content = merger
            .repo()
            .find_blob(merged.oid)
            .unwrap()
            .content()
            .to_vec();
        assert_eq!(content, b"one\n2\n3\n4\n5\n6\n7\neight\n");
        let adjacent = side("1\nTWO\n3\n4\n5\n6\n7\n8\n");
        let next = side("1\n2\nTHREE\n4\n5\n6\n7\n8\n");
        assert_eq!(
            merger.merge("f.txt", base, adjacent, next).unwrap(),
            MergeOutcome::Conflict(ConflictKind::Content)
        );
        assert_eq!(
            merger.merge("f.txt", base, None, ours).unwrap(),
            MergeOutcome::Conflict(ConflictKind::ModifyDelete)
        );
        assert_eq!(
            merger.merge("f.txt", None, ours, theirs).unwrap(),
            MergeOutcome::Conflict(ConflictKind::AddAdd)
        );
        drop(merger);
        assert_eq!(objects(&repo), before, "the object store changed");
        let out = repo.git_output(repo.path(), &["cat-file", "-e", &merged.oid.to_string()]);
        assert!(
            !out.status.success(),
            "the merged blob must exist only in memory"
        );
    }
}
