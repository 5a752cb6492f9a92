//! Spares: finished worktrees that cleanup keeps on disk (up to `[worktree] spares`, default
//! 8, and `spares_max_mib`, default 4 GiB, together) for the next create to turn into a new
//! agent's worktree, instead of deleting 20k files and writing 20k new ones.
//!
//! Why: on ext4 without a journal, a new inode skips every inode freed less than a minute ago
//! (six if its inode table block is still dirty), one lookup each, so a create right after a
//! cleanup can spend seconds of kernel time per worktree in the inode allocator (measured:
//! up to 20 s for 8 worktrees of 20k files). A spare frees and allocates nothing: its files
//! move (a rename), and only those that differ from the new base are rewritten.
//!
//! A spare is no longer a worktree: its git admin entry is removed and its branch deleted as
//! by any removal, so git, `list` and the gates never see it. It lives under
//! `<root>/.spares/` as `s-<id>/` with the checked-out files in `tree/` (no `.git`), the index
//! that describes them in `index`, and `spare.json` (its commit and disk use) written last.
//! Only a clean worktree (no uncommitted or untracked files, no hidden edits, no nested
//! repository) becomes a spare, and every ignored file except the build caches
//! `[worktree] reuse_keep` names is deleted first, so no `.env` or note of one plan reaches an
//! agent of another. Directories being made (`b-<pid>-<id>`) or taken (`c-<pid>-<id>`) whose
//! process is gone are debris that cleanup deletes.

use std::path::{Path, PathBuf};

use git2::Oid;
use serde::{Deserialize, Serialize};

use crate::admin;
use crate::errors::{Result, WorktreeError};

/// The directory under the worktree root that holds spares (a name no worktree can have).
pub const SPARES_DIR: &str = ".spares";

/// What `spare.json` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    head: String,
    bytes: u64,
}

/// One ready spare.
#[derive(Debug, Clone)]
pub struct Spare {
    pub dir: PathBuf,
    pub head: Oid,
    pub bytes: u64,
}

/// The spares on disk, as cleanup reports them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SpareUsage {
    /// Where they are.
    pub dir: PathBuf,
    /// Spares kept (ready for the next create).
    pub count: usize,
    /// Their disk use, in bytes (allocated blocks).
    pub bytes: u64,
    /// Spares deleted by this cleanup: beyond `[worktree] spares`, or debris of an interrupted
    /// spare.
    pub freed: usize,
}

pub fn spares_dir(root: &Path) -> PathBuf {
    root.join(SPARES_DIR)
}

/// The spares directory, unless something other than a plain directory (a symlink that would
/// lead baton's moves and deletions elsewhere) is in its place.
fn checked_dir(root: &Path) -> Option<PathBuf> {
    let dir = spares_dir(root);
    match std::fs::symlink_metadata(&dir) {
        Ok(m) if m.is_dir() => Some(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(dir),
        _ => None,
    }
}

/// Ready spares, oldest first (by when their record was written).
pub fn list(root: &Path) -> Vec<Spare> {
    let mut out = Vec::new();
    let Some(Ok(read)) = checked_dir(root).map(std::fs::read_dir) else {
        return Vec::new();
    };
    for e in read.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("s-") {
            continue;
        }
        let dir = e.path();
        let Some(rec) = std::fs::read(dir.join("spare.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Record>(&b).ok())
        else {
            continue;
        };
        let Ok(head) = Oid::from_str(&rec.head) else {
            continue;
        };
        let made = std::fs::metadata(dir.join("spare.json"))
            .and_then(|m| m.modified())
            .ok();
        out.push((
            made,
            Spare {
                dir,
                head,
                bytes: rec.bytes,
            },
        ));
    }
    out.sort_by(|a, b| (a.0, &a.1.dir).cmp(&(b.0, &b.1.dir)));
    out.into_iter().map(|(_, s)| s).collect()
}

/// Spares being made or taken by a process that is gone, and ready ones that lost a file.
fn debris(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Some(Ok(read)) = checked_dir(root).map(std::fs::read_dir) else {
        return out;
    };
    for e in read.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let owner = name
            .strip_prefix("b-")
            .or_else(|| name.strip_prefix("c-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        let dead = match owner {
            Some(pid) => crate::process::process_ref(pid).is_none(),
            None => name.starts_with("s-") && !e.path().join("spare.json").is_file(),
        };
        if dead {
            out.push(e.path());
        }
    }
    out
}

/// The ready spares [`trim`] deletes: beyond `keep`, then while they use more than
/// `max_bytes` together (oldest names first).
fn beyond(root: &Path, keep: usize, max_bytes: u64) -> Vec<Spare> {
    let ready = list(root);
    let mut n = ready.len().saturating_sub(keep);
    let mut total: u64 = ready.iter().skip(n).map(|s| s.bytes).sum();
    for s in &ready[n..] {
        if total <= max_bytes {
            break;
        }
        total -= s.bytes;
        n += 1;
    }
    ready.into_iter().take(n).collect()
}

/// Delete debris, then ready spares beyond `keep` or beyond `max_bytes` of disk together
/// (oldest names first). Returns how many went.
pub fn trim(root: &Path, keep: usize, max_bytes: u64) -> Result<usize> {
    let mut freed = 0;
    for d in debris(root) {
        crate::remove::remove_tree(&d)?;
        freed += 1;
    }
    for s in beyond(root, keep, max_bytes) {
        crate::remove::remove_tree(&s.dir)?;
        freed += 1;
    }
    if let Some(dir) = checked_dir(root)
        && std::fs::read_dir(&dir).is_ok_and(|mut r| r.next().is_none())
    {
        let _ = std::fs::remove_dir(dir);
    }
    Ok(freed)
}

/// How many spares [`trim`] would delete.
pub fn to_trim(root: &Path, keep: usize, max_bytes: u64) -> usize {
    debris(root).len() + beyond(root, keep, max_bytes).len()
}

/// What the spares on disk use now.
pub fn usage(root: &Path, freed: usize) -> SpareUsage {
    let ready = list(root);
    SpareUsage {
        dir: spares_dir(root),
        count: ready.len(),
        bytes: ready.iter().map(|s| s.bytes).sum(),
        freed,
    }
}

fn unique(name: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!(
        "{}-{nanos}{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Turn the clean worktree at `path` (proven the entry's, `head` checked out) into a spare:
/// delete its ignored files except `keep`, move its files and index under the spares
/// directory, and remove its admin entry. Its branch is the caller's to delete. A kill at any
/// point leaves either the worktree (its entry pruned later if the directory already moved) or
/// debris the next cleanup deletes.
pub fn keep(
    root: &Path,
    path: &Path,
    admin_dir: &Path,
    head: Oid,
    caches: &crate::setup::Includes,
) -> Result<()> {
    crate::reuse::scrub(path, caches)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "wt".to_owned());
    let id = unique(&name);
    let dir = checked_dir(root).ok_or_else(|| WorktreeError::NotOurs {
        path: spares_dir(root),
        why: "it is not a plain directory".into(),
    })?;
    let building = dir.join(format!("b-{id}"));
    std::fs::create_dir_all(&building).map_err(WorktreeError::io("create", &building))?;
    // before anything moves: where the worktree came from, so that a kill after its files
    // moved (its git entry then names a directory that is gone) is finished by the next
    // command that touches worktrees (`finish_moves`), not left for `--force`
    let origin = Origin {
        path: path.to_owned(),
        admin_dir: admin_dir.to_owned(),
    };
    let origin_json = serde_json::to_vec(&origin).map_err(|e| WorktreeError::BadConfig {
        field: "spare",
        message: e.to_string(),
    })?;
    baton_store::write_atomic(&building.join(ORIGIN), &origin_json)?;
    let tree = building.join("tree");
    std::fs::rename(path, &tree).map_err(WorktreeError::io("move", path))?;
    let dotgit = tree.join(".git");
    std::fs::remove_file(&dotgit).map_err(WorktreeError::io("remove", &dotgit))?;
    let index = admin_dir.join("index");
    std::fs::rename(&index, building.join("index")).map_err(WorktreeError::io("move", &index))?;
    admin::remove_entry(admin_dir)?;
    if let Some(parent) = admin_dir.parent() {
        let _ = std::fs::remove_dir(parent);
    }
    let rec = Record {
        head: head.to_string(),
        bytes: disk_use(&tree),
    };
    let json = serde_json::to_vec(&rec).map_err(|e| WorktreeError::BadConfig {
        field: "spare",
        message: e.to_string(),
    })?;
    baton_store::write_atomic(&building.join("spare.json"), &json)?;
    let ready = spares_dir(root).join(format!("s-{id}"));
    std::fs::rename(&building, &ready).map_err(WorktreeError::io("move", &building))
}

/// Where a spare being made came from (`b-*/origin.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Origin {
    path: PathBuf,
    admin_dir: PathBuf,
}

const ORIGIN: &str = "origin.json";

/// Finish what a cleanup killed while it moved a worktree into the spares left: the
/// worktree's files are in the spare being made (`b-*`, whose process is gone), and its git
/// entry still names the directory they left. The worktree was proven the entry's, clean and
/// integrated before it moved, so the entry goes, as the removal would have done (the spare
/// itself is debris that cleanup deletes). An entry whose directory is back, or that names
/// another directory, is left alone. Returns, per entry, the spare's record, the worktree's
/// path and what was done; a dry run changes nothing. The caller holds the admin lock.
pub fn finish_moves(root: &Path, dry_run: bool) -> Vec<(PathBuf, PathBuf, String)> {
    let mut steps = Vec::new();
    for d in debris(root) {
        let is_making = d
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("b-"));
        let Some(origin) = is_making
            .then(|| std::fs::read(d.join(ORIGIN)).ok())
            .flatten()
            .and_then(|b| serde_json::from_slice::<Origin>(&b).ok())
        else {
            continue;
        };
        let gitdir = std::fs::read_to_string(origin.admin_dir.join("gitdir")).unwrap_or_default();
        let names_it = std::path::Path::new(gitdir.trim()) == origin.path.join(".git");
        if !names_it || std::fs::symlink_metadata(&origin.path).is_ok() {
            continue;
        }
        steps.push((
            d.join(ORIGIN),
            origin.path.clone(),
            format!(
                "remove the git entry of {}: a cleanup was killed after moving it into the spares",
                origin.path.display()
            ),
        ));
        if !dry_run
            && crate::admin::remove_entry(&origin.admin_dir).is_ok()
            && let Some(parent) = origin.admin_dir.parent()
        {
            let _ = std::fs::remove_dir(parent);
        }
    }
    steps
}

/// Claim a ready spare for this process: one at `base` if there is one, else the first whose
/// commit the repository still has (`known`). Another process racing for the same spare loses
/// the rename and tries the next.
pub fn take(root: &Path, base: Oid, known: impl Fn(Oid) -> bool) -> Option<Spare> {
    let mut ready = list(root);
    ready.retain(|s| known(s.head));
    ready.sort_by_key(|s| s.head != base);
    for s in ready {
        let name = s.dir.file_name()?.to_string_lossy().into_owned();
        let id = name.strip_prefix("s-")?;
        let claimed = spares_dir(root).join(format!("c-{}-{id}", std::process::id()));
        if std::fs::rename(&s.dir, &claimed).is_ok() {
            return Some(Spare { dir: claimed, ..s });
        }
    }
    None
}

/// Make the claimed spare `s` the checkout of the new, empty worktree at `path` (admin dir
/// `admin_dir`, HEAD already naming `branch` at `base`): its files move in, its index becomes
/// the worktree's, and a checkout of `base` rewrites only the files that differ from the
/// spare's commit. Returns the number of files written.
pub fn apply(s: &Spare, path: &Path, admin_dir: &Path, branch: &str, base: Oid) -> Result<usize> {
    // The new directory holds only the `.git` file create wrote. The spare gets that file
    // first, the empty directory goes, and the spare's files move in with one rename (which
    // keeps every file's ctime, so the index's stat data stays right). At no moment is there
    // a directory at `path` that cannot prove itself this entry's: a kill leaves it complete,
    // or missing (the journal then drops the entry) with the spare left as debris.
    let dotgit = path.join(".git");
    let link = std::fs::read(&dotgit).map_err(WorktreeError::io("read", &dotgit))?;
    let tree = s.dir.join("tree");
    let spare_link = tree.join(".git");
    std::fs::write(&spare_link, &link).map_err(WorktreeError::io("write", &spare_link))?;
    std::fs::remove_file(&dotgit).map_err(WorktreeError::io("remove", &dotgit))?;
    if let Err(e) = std::fs::remove_dir(path) {
        // something else appeared in the new directory: it stays, with its link back
        let _ = std::fs::write(&dotgit, &link);
        return Err(WorktreeError::io("remove", path)(e));
    }
    std::fs::rename(&tree, path).map_err(WorktreeError::io("move", &tree))?;
    let index = s.dir.join("index");
    std::fs::rename(&index, admin_dir.join("index")).map_err(WorktreeError::io("move", &index))?;
    // the checkout compares against the spare's commit: HEAD detached there until it is done
    let head_file = admin_dir.join("HEAD");
    std::fs::write(&head_file, format!("{}\n", s.head))
        .map_err(WorktreeError::io("write", &head_file))?;
    let written = crate::reuse::checkout_branch(path, branch, base)?;
    crate::remove::remove_tree(&s.dir)?;
    if let Some(parent) = s.dir.parent() {
        // the last spare taken takes the directory along; fails harmlessly if not empty
        let _ = std::fs::remove_dir(parent);
    }
    Ok(written)
}

/// Allocated bytes of the files under `dir` (symlinks not followed).
fn disk_use(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0u64;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(read) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in read.flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            total += m.blocks() * 512;
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    total
}
