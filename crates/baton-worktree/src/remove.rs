//! Removing worktree directories fast: the directory is first renamed aside (so it disappears
//! at once and a crash leaves a plainly named leftover, not a half-deleted worktree), its admin
//! dir is removed (what `git worktree remove` does after deleting the files), and the files are
//! then deleted with a parallel walk.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::admin;
use crate::errors::{Result, WorktreeError};
use crate::safety::{self, Presence};

/// Suffix of directories being deleted.
pub const TRASH_SUFFIX: &str = ".baton-removing";

/// Remove the worktree at `path` whose admin dir is `admin_dir`, after proving that `path`
/// is still that entry's worktree (its `.git` points back to `admin_dir`): a directory an
/// agent turned into a repository of its own, or a path a newer worktree reuses, is refused.
pub fn remove_worktree(path: &Path, admin_dir: &Path) -> Result<()> {
    match safety::presence(path, admin_dir) {
        Presence::Owned | Presence::Missing => {}
        Presence::Unreadable(why) | Presence::Foreign(why) => {
            return Err(WorktreeError::NotOurs {
                path: path.to_owned(),
                why,
            });
        }
    }
    let trash = trash_path(path);
    let doomed = match std::fs::rename(path, &trash) {
        Ok(()) => trash,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            admin::remove_entry(admin_dir)?;
            return Ok(());
        }
        // another filesystem or a busy directory: delete in place
        Err(_) => path.to_owned(),
    };
    admin::remove_entry(admin_dir)?;
    if let Some(parent) = admin_dir.parent() {
        // like git, drop `worktrees/` when the last entry goes; fails harmlessly if not empty
        let _ = std::fs::remove_dir(parent);
    }
    remove_tree(&doomed)
}

/// Leftovers of removals that were interrupted (`.<name>.<pid>.baton-removing` in the root
/// or one level below it) whose process is gone.
pub fn leftovers(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let scan = |dir: &Path, out: &mut Vec<PathBuf>, subdirs: &mut Vec<PathBuf>| {
        let Ok(read) = std::fs::read_dir(dir) else {
            return;
        };
        for e in read.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            if let Some(pid) = trash_pid(&name) {
                if crate::process::process_ref(pid).is_none() {
                    out.push(e.path());
                }
            } else if is_dir && !name.starts_with('.') {
                subdirs.push(e.path());
            }
        }
    };
    let mut level1 = Vec::new();
    scan(root, &mut out, &mut level1);
    for d in level1 {
        scan(&d, &mut out, &mut Vec::new());
    }
    out.sort();
    out
}

/// The pid in a trash name `.<name>.<pid>.baton-removing`.
fn trash_pid(name: &str) -> Option<u32> {
    let stem = name.strip_prefix('.')?.strip_suffix(TRASH_SUFFIX)?;
    stem.rsplit('.').next()?.parse().ok()
}

fn trash_path(path: &Path) -> PathBuf {
    trash_path_of(path, std::process::id())
}

/// Where the process `pid` renames `path` aside while it deletes it.
pub(crate) fn trash_path_of(path: &Path, pid: u32) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{pid}{TRASH_SUFFIX}"))
}

/// Delete a directory tree. The top levels are split among threads; below
/// [`PARALLEL_DEPTH`] each subtree goes to the standard library's `remove_dir_all`, which
/// works on directory descriptors (`unlinkat`) rather than full paths. Symlinks are removed,
/// never followed.
pub fn remove_tree(path: &Path) -> Result<()> {
    remove_at(path, 0)
}

const PARALLEL_DEPTH: usize = 3;

fn remove_at(path: &Path, depth: usize) -> Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(WorktreeError::io("read", path)(e)),
    };
    if !meta.is_dir() {
        return gone_ok(std::fs::remove_file(path), path);
    }
    if depth >= PARALLEL_DEPTH {
        return gone_ok(std::fs::remove_dir_all(path), path);
    }
    let entries: Vec<(PathBuf, bool)> = std::fs::read_dir(path)
        .map_err(WorktreeError::io("read", path))?
        .filter_map(|e| e.ok())
        .map(|e| {
            let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
            (e.path(), is_dir)
        })
        .collect();
    entries.par_iter().try_for_each(|(p, is_dir)| {
        if *is_dir {
            remove_at(p, depth + 1)
        } else {
            gone_ok(std::fs::remove_file(p), p)
        }
    })?;
    gone_ok(std::fs::remove_dir(path), path)
}

fn gone_ok(r: std::io::Result<()>, path: &Path) -> Result<()> {
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(WorktreeError::io("remove", path)(e)),
    }
}
