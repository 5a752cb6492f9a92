//! git's administrative files of linked worktrees, read and written directly: each linked
//! worktree has `<common>/worktrees/<name>/` with `gitdir` (the worktree's `.git` file path),
//! `commondir`, `HEAD`, its `index`, an optional `locked` file (the lock reason), and, for the
//! worktrees baton makes, `baton.json` (base, plan, agent, creation time). The worktree itself
//! has a `.git` file `gitdir: <admin dir>`. This is the layout `git worktree add` writes, so
//! the git CLI and libgit2 see baton's worktrees as their own.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::errors::{Result, WorktreeError};

/// What baton records about a worktree it made, in `<admin dir>/baton.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    pub schema_version: u32,
    /// The base as the user gave it (branch, tag or commit).
    pub base: String,
    /// The commit the base resolved to.
    pub base_commit: String,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// A worktree's HEAD as its admin dir records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// On a branch (full ref name, `refs/heads/...`).
    Branch(String),
    /// Detached at a commit.
    Detached(git2::Oid),
    /// Missing or unreadable HEAD file.
    Unknown,
}

/// One linked worktree's administrative entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The admin dir's name (`git worktree` commands accept it).
    pub name: String,
    pub admin_dir: PathBuf,
    /// The worktree directory (it may have been deleted by hand).
    pub path: PathBuf,
    pub head: Head,
    /// The lock reason (empty string for a lock without reason), if locked.
    pub locked: Option<String>,
    pub meta: Option<Meta>,
}

impl Entry {
    /// The short branch name, if on a branch.
    pub fn branch(&self) -> Option<&str> {
        match &self.head {
            Head::Branch(r) => Some(r.strip_prefix("refs/heads/").unwrap_or(r)),
            _ => None,
        }
    }
}

pub fn worktrees_dir(common_dir: &Path) -> PathBuf {
    common_dir.join("worktrees")
}

/// Every linked worktree's entry, sorted by name.
pub fn entries(common_dir: &Path) -> Result<Vec<Entry>> {
    let dir = worktrees_dir(common_dir);
    let read = match std::fs::read_dir(&dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(WorktreeError::io("read", &dir)(e)),
    };
    let mut out = Vec::new();
    for item in read {
        let item = item.map_err(WorktreeError::io("read", &dir))?;
        let admin_dir = item.path();
        if !admin_dir.is_dir() {
            continue;
        }
        if let Some(e) = read_entry(&admin_dir) {
            out.push(e);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The entry of one admin dir; `None` if it has no `gitdir` file (not a worktree entry).
pub fn read_entry(admin_dir: &Path) -> Option<Entry> {
    let name = admin_dir.file_name()?.to_string_lossy().into_owned();
    let gitdir = std::fs::read_to_string(admin_dir.join("gitdir")).ok()?;
    let gitdir = gitdir.trim_end_matches(['\n', '\r']);
    if gitdir.is_empty() {
        // a `gitdir` write cut short: not (yet) an entry
        return None;
    }
    let gitdir = PathBuf::from(gitdir);
    let gitdir = if gitdir.is_relative() {
        admin_dir.join(gitdir)
    } else {
        gitdir
    };
    let path = gitdir.parent().map(Path::to_owned).unwrap_or(gitdir);
    let head = match std::fs::read_to_string(admin_dir.join("HEAD")) {
        Ok(text) => parse_head(&text),
        Err(_) => Head::Unknown,
    };
    let locked = std::fs::read_to_string(admin_dir.join("locked"))
        .ok()
        .map(|r| r.trim_end().to_owned());
    let meta = std::fs::read(admin_dir.join("baton.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    Some(Entry {
        name,
        admin_dir: admin_dir.to_owned(),
        path,
        head,
        locked,
        meta,
    })
}

fn parse_head(text: &str) -> Head {
    let text = text.trim();
    if let Some(r) = text.strip_prefix("ref:") {
        Head::Branch(r.trim().to_owned())
    } else {
        git2::Oid::from_str(text).map_or(Head::Unknown, Head::Detached)
    }
}

/// A free admin dir name for a worktree whose directory is called `base`: `base`, `base1`,
/// `base2`… as `git worktree add` does. Call under the admin lock.
pub fn free_name(common_dir: &Path, base: &str, taken: &[String]) -> String {
    let dir = worktrees_dir(common_dir);
    let mut n = 0usize;
    loop {
        let candidate = if n == 0 {
            base.to_owned()
        } else {
            format!("{base}{n}")
        };
        if !dir.join(&candidate).exists() && !taken.contains(&candidate) {
            return candidate;
        }
        n += 1;
    }
}

/// Write the admin dir `name` for a worktree at `path` on `branch_ref` (a full ref name), and
/// the worktree's `.git` file. The entry is locked with `lock_reason` from the first moment,
/// so no other process sees it unlocked before it is complete. Call under the admin lock.
pub fn write_entry(
    common_dir: &Path,
    name: &str,
    path: &Path,
    branch_ref: &str,
    lock_reason: &str,
    placer: &mut crate::place::Placer,
) -> Result<PathBuf> {
    let admin = worktrees_dir(common_dir).join(name);
    std::fs::create_dir_all(worktrees_dir(common_dir))
        .map_err(WorktreeError::io("create", worktrees_dir(common_dir)))?;
    std::fs::create_dir(&admin).map_err(WorktreeError::io("create", &admin))?;
    let result = (|| {
        let write = |file: &str, text: String| {
            let p = admin.join(file);
            std::fs::write(&p, text).map_err(WorktreeError::io("write", p))
        };
        write("locked", format!("{lock_reason}\n"))?;
        write("commondir", "../..\n".to_owned())?;
        write("HEAD", format!("ref: {branch_ref}\n"))?;
        write("gitdir", format!("{}\n", path.join(".git").display()))?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(WorktreeError::io("create", parent))?;
        }
        // The directory must be new: a path another create (or anyone) made meanwhile is
        // theirs, and is never written into or deleted.
        placer.make(path, name, &dotgit_text(&admin)).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                WorktreeError::PathExists {
                    path: path.to_owned(),
                }
            } else {
                WorktreeError::io("create", path)(e)
            }
        })
    })();
    if let Err(e) = result {
        // the same one-rename removal as any other: never seen half deleted
        let _ = remove_entry(&admin);
        return Err(e);
    }
    Ok(admin)
}

/// The text of the `.git` file of a worktree whose admin dir is `admin`.
pub fn dotgit_text(admin: &Path) -> String {
    format!("gitdir: {}\n", admin.display())
}

/// Lock the entry with `reason`, or unlock it (`None`).
pub fn set_lock(admin_dir: &Path, reason: Option<&str>) -> Result<()> {
    let p = admin_dir.join("locked");
    match reason {
        Some(r) => baton_store::write_atomic(&p, format!("{r}\n").as_bytes())?,
        None => match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(WorktreeError::io("remove", p)(e)),
        },
    }
    Ok(())
}

/// Record baton's metadata beside git's files.
pub fn write_meta(admin_dir: &Path, meta: &Meta) -> Result<()> {
    baton_store::write_json(&admin_dir.join("baton.json"), meta)?;
    Ok(())
}

/// Where removed admin dirs go to be deleted: `<common dir>/baton-trash/`, outside
/// `worktrees/`, so neither git nor libgit2 ever sees one half deleted.
pub const TRASH_DIR: &str = "baton-trash";

/// Remove an admin dir and everything in it (what `git worktree prune` does for one entry).
///
/// The entry leaves `worktrees/` in one rename, then is deleted: a kill in between leaves it
/// whole or gone, never half deleted (an admin dir that lost its `gitdir` but kept its
/// `HEAD` made libgit2 refuse to delete any branch until someone removed it by hand).
/// What a killed process left in the trash goes with [`empty_trash`].
pub fn remove_entry(admin_dir: &Path) -> Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let trash = admin_dir
        .parent()
        .and_then(Path::parent)
        .map(|common| common.join(TRASH_DIR));
    let moved = trash.and_then(|t| {
        std::fs::create_dir_all(&t).ok()?;
        let name = admin_dir.file_name()?.to_string_lossy().into_owned();
        let to = t.join(format!(
            "{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        match std::fs::rename(admin_dir, &to) {
            Ok(()) => Some(Ok(to)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(Err(e)),
            Err(_) => None,
        }
    });
    let target = match moved {
        Some(Ok(to)) => to,
        Some(Err(_)) => return Ok(()), // already gone
        None => admin_dir.to_owned(),  // no trash here: deleted where it is
    };
    match std::fs::remove_dir_all(&target) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(WorktreeError::io("remove", &target)(e)),
    }
}

/// Delete what processes that are gone left in the trash (`<pid>-<n>-<name>`). Returns how
/// many entries went; a dry run deletes nothing.
pub fn empty_trash(common_dir: &Path, dry_run: bool) -> usize {
    let dir = common_dir.join(TRASH_DIR);
    let Ok(read) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut gone = 0;
    for e in read.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if crate::process::process_ref(pid).is_some() {
            continue;
        }
        gone += 1;
        if !dry_run {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    if !dry_run {
        let _ = std::fs::remove_dir(&dir);
    }
    gone
}
