//! Interrupted creates, rolled back: before `create` writes a branch or an admin dir it records
//! what it is about to make in `<common dir>/baton-journal/<pid>-<start>.json`, and removes the
//! record when every worktree is complete. A record whose process is gone (SIGKILL, power
//! loss) is debris: the next command that touches worktrees ([`recover`], under the admin
//! lock) rolls each item forward when it is complete (its `baton.json` was written) and back
//! otherwise — the half-checked-out directory (only once proven to be this entry's), its admin
//! dir, and its branch (only while it still points at its base: no commit can be lost). A
//! reused worktree caught mid-switch was clean and integrated when it was taken, so it is
//! removed; its new branch goes the same way.

use std::path::{Path, PathBuf};

use baton_plan::ProcessRef;
use git2::Oid;
use serde::{Deserialize, Serialize};

use crate::admin;
use crate::errors::{Result, WorktreeError};
use crate::lock::admin_lock;
use crate::place;
use crate::process;
use crate::refs;
use crate::remove;
use crate::repo::Worktrees;
use crate::safety::{self, Presence};

pub mod removal;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Journal {
    pub schema_version: u32,
    pub owner: ProcessRef,
    pub items: Vec<Item>,
}

/// One worktree being made.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub branch: String,
    pub base_commit: String,
    pub path: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The admin dir name of a fresh worktree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<String>,
    /// The worktree being reused, as it was before the switch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused: Option<Reused>,
}

/// A reused worktree before the switch: where it was, and its old branch, which the switch
/// deletes (it was integrated) when `delete_branch`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reused {
    pub admin_dir: PathBuf,
    pub path: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    pub head: String,
    pub delete_branch: bool,
}

pub fn dir(common_dir: &Path) -> PathBuf {
    common_dir.join("baton-journal")
}

fn file_of(common_dir: &Path, owner: &ProcessRef) -> PathBuf {
    dir(common_dir).join(format!("{}-{}.json", owner.pid, owner.start_time))
}

/// Record what is about to be made. Call under the admin lock, before the first write.
pub fn begin(common_dir: &Path, owner: ProcessRef, items: Vec<Item>) -> Result<PathBuf> {
    let path = file_of(common_dir, &owner);
    baton_store::write_json(
        &path,
        &Journal {
            schema_version: 1,
            owner,
            items,
        },
    )?;
    Ok(path)
}

/// The create finished (or was rolled back): forget the record.
pub fn end(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// What [`recover`] found (and, unless a dry run, undid).
#[derive(Debug, Clone, Serialize)]
pub struct Debris {
    /// The journal file of the interrupted create.
    pub journal: PathBuf,
    /// One line per thing rolled back or forward.
    pub steps: Vec<String>,
    /// Worktree paths of the items rolled back (a reused one's old path too): a dry run
    /// leaves them out of its decisions, as the real run will not find them.
    pub rolled_back: Vec<PathBuf>,
}

/// Roll back (or forward) every create whose process is gone. Takes the admin lock.
pub fn recover(wt: &Worktrees, dry_run: bool) -> Result<Vec<Debris>> {
    let jdir = dir(wt.common_dir());
    let spares = crate::spare::spares_dir(&wt.root).is_dir();
    let trash = wt.common_dir().join(crate::admin::TRASH_DIR).is_dir();
    if !jdir.is_dir() && !spares && !trash {
        return Ok(Vec::new());
    }
    let _lock = admin_lock(wt.common_dir())?;
    let mut out = Vec::new();
    if trash {
        // removed entries a killed process had not finished deleting: out of git's sight
        // already, so only their bytes are left
        crate::admin::empty_trash(wt.common_dir(), dry_run);
    }
    // first, so that the branches of a cleanup killed while it made spares are no longer
    // held by the entries it had moved away, and its record below can delete them
    let mut moved = Vec::new();
    if spares {
        for (record, path, step) in crate::spare::finish_moves(&wt.root, dry_run) {
            moved.push(path.clone());
            out.push(Debris {
                journal: record,
                steps: vec![step],
                rolled_back: vec![path],
            });
        }
    }
    if !jdir.is_dir() {
        return Ok(out);
    }
    let read = std::fs::read_dir(&jdir).map_err(WorktreeError::io("read", &jdir))?;
    let mut files: Vec<PathBuf> = read.flatten().map(|e| e.path()).collect();
    files.sort();
    for file in files {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.as_deref().is_some_and(|n| n.ends_with(".tmp")) {
            // a journal write cut short: the record it was replacing is complete or absent
            if !dry_run {
                let _ = std::fs::remove_file(&file);
            }
            continue;
        }
        if name
            .as_deref()
            .is_some_and(|n| n.starts_with(removal::PREFIX))
        {
            let Ok(r) = baton_store::read_json::<removal::Removal>(&file) else {
                continue;
            };
            if process::is_alive(&r.owner) {
                continue;
            }
            let steps = match removal::finish(wt, &r, &moved, dry_run) {
                Ok(steps) => {
                    if !dry_run {
                        end(&file);
                    }
                    steps
                }
                Err(e) => vec![format!("could not finish an interrupted cleanup: {e}")],
            };
            out.push(Debris {
                journal: file,
                steps,
                rolled_back: Vec::new(),
            });
            continue;
        }
        let Ok(journal) = baton_store::read_json::<Journal>(&file) else {
            continue;
        };
        if process::is_alive(&journal.owner) {
            continue;
        }
        // A step that fails keeps the record, so the next command tries again and cleanup
        // keeps showing it; it never stops the command that found it.
        let rolled_back = journal
            .items
            .iter()
            .filter(|i| !is_complete(wt, i))
            .flat_map(|i| {
                std::iter::once(i.path.clone()).chain(i.reused.iter().map(|r| r.path.clone()))
            })
            .collect();
        let steps = match undo(wt, &journal, dry_run) {
            Ok(steps) => {
                if !dry_run {
                    end(&file);
                }
                steps
            }
            Err(e) => vec![format!("could not finish rolling back: {e}")],
        };
        out.push(Debris {
            journal: file,
            steps,
            rolled_back,
        });
    }
    Ok(out)
}

/// Is `item` complete: its own metadata written (a reused worktree carries its donor's
/// until then)?
fn is_complete(wt: &Worktrees, item: &Item) -> bool {
    wt.entries()
        .map(|entries| complete_entry(&entries, item).is_some())
        .unwrap_or(false)
}

fn complete_entry<'e>(entries: &'e [admin::Entry], item: &Item) -> Option<&'e admin::Entry> {
    entries.iter().find(|e| {
        e.path == item.path
            && e.branch() == Some(item.branch.as_str())
            && e.meta.as_ref().is_some_and(|m| {
                m.base_commit == item.base_commit && m.plan == item.plan && m.agent == item.agent
            })
    })
}

fn undo(wt: &Worktrees, journal: &Journal, dry_run: bool) -> Result<Vec<String>> {
    let repo = wt.open()?;
    let mut steps = Vec::new();
    let dead_creator = process::lock_reason(&journal.owner);
    for item in &journal.items {
        let Ok(base) = Oid::from_str(&item.base_commit) else {
            continue;
        };
        let entries = wt.entries()?;
        // Complete: roll forward (drop the dead creator's lock). Otherwise back.
        let complete = complete_entry(&entries, item);
        if let Some(e) = complete {
            if e.locked.as_deref() == Some(dead_creator.as_str()) {
                steps.push(format!("unlock {} (complete)", e.path.display()));
                if !dry_run {
                    admin::set_lock(&e.admin_dir, None)?;
                }
            }
        } else {
            let undo = Undo {
                wt,
                repo: &repo,
                item,
                base,
                dead_creator: &dead_creator,
                dry_run,
            };
            undo.roll_back(&entries, &mut steps)?;
        }
        remove_placement_debris(wt, item, dry_run, &mut steps);
        finish_old_branch(wt, &repo, item, dry_run, &mut steps)?;
    }
    Ok(steps)
}

struct Undo<'a> {
    wt: &'a Worktrees,
    repo: &'a git2::Repository,
    item: &'a Item,
    base: Oid,
    dead_creator: &'a str,
    dry_run: bool,
}

impl Undo<'_> {
    /// Remove what an incomplete item made: its directory (proven its own), admin dirs the
    /// dead creator still holds, stale ref locks, and its branch while at its base.
    fn roll_back(&self, entries: &[admin::Entry], steps: &mut Vec<String>) -> Result<()> {
        let (wt, item, dry_run) = (self.wt, self.item, self.dry_run);
        let mut admins: Vec<PathBuf> = Vec::new();
        if let Some(a) = &item.admin {
            admins.push(admin::worktrees_dir(wt.common_dir()).join(a));
        }
        if let Some(r) = &item.reused {
            admins.push(r.admin_dir.clone());
        }
        let old_path = item.reused.as_ref().map(|r| &r.path);
        // Any admin dir of this item's path or branch that the dead creator still locks.
        for e in entries {
            if (e.path == item.path || e.branch() == Some(item.branch.as_str()))
                && e.locked.as_deref() == Some(self.dead_creator)
                && !admins.contains(&e.admin_dir)
            {
                admins.push(e.admin_dir.clone());
            }
        }
        for e in entries {
            if (e.path == item.path || Some(&e.path) == old_path) && !admins.contains(&e.admin_dir)
            {
                admins.push(e.admin_dir.clone());
            }
        }
        // An admin dir cut short before its first file: empty, nobody's.
        for a in &admins {
            if is_empty_dir(a) {
                steps.push(format!("remove empty admin dir {}", a.display()));
                if !dry_run {
                    let _ = std::fs::remove_dir(a);
                }
            }
        }
        // Only what the dead creator still holds: a live create of the same path or branch
        // (a concurrent, refused create wrote the same item) is not touched. The admin dir
        // named in the record was free when the record was written under the lock, so one
        // whose `locked` file is missing or empty was cut short while being written: ours too.
        let own_admin = item
            .admin
            .as_ref()
            .map(|a| admin::worktrees_dir(wt.common_dir()).join(a));
        admins.retain(|a| match std::fs::read_to_string(a.join("locked")) {
            Ok(r) if r.trim_end() == self.dead_creator => true,
            Ok(r) if r.trim().is_empty() => Some(a) == own_admin.as_ref(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(a) == own_admin.as_ref(),
            _ => false,
        });
        let mut paths = vec![item.path.clone()];
        if let Some(p) = old_path {
            paths.push(p.clone());
        }
        // What this rollback removes (or, in a dry run, would): later steps see it gone.
        let mut gone_paths: Vec<PathBuf> = Vec::new();
        let mut gone_admins: Vec<PathBuf> = Vec::new();
        for p in &paths {
            for a in &admins {
                if gone_paths.contains(p) {
                    continue;
                }
                let owned = match safety::presence(p, a) {
                    Presence::Owned => true,
                    // made but its `.git` cut short: nothing in it but a prefix of ours
                    Presence::Foreign(_) => item.reused.is_none() && only_partial_dotgit(p, a),
                    _ => false,
                };
                if owned {
                    steps.push(format!("remove {} (interrupted create)", p.display()));
                    gone_paths.push(p.clone());
                    if !dry_run {
                        remove::remove_tree(p)?;
                    }
                }
            }
        }
        // A reused worktree caught between renames: its `.git` still names the admin dir it
        // had (now renamed), while the renamed admin dir, which the dead creator locks, names
        // its old or its new path.
        if let Some(r) = &item.reused {
            let old_admin_ours = !r.admin_dir.exists() || admins.contains(&r.admin_dir);
            for p in &paths {
                if gone_paths.contains(p) {
                    continue;
                }
                let Some(t) = safety::dotgit_target(p) else {
                    continue;
                };
                let claimed = admins
                    .iter()
                    .any(|a| admin::read_entry(a).is_some_and(|e| paths.contains(&e.path)));
                if t == r.admin_dir && old_admin_ours && claimed {
                    steps.push(format!("remove {} (interrupted reuse)", p.display()));
                    gone_paths.push(p.clone());
                    if !dry_run {
                        remove::remove_tree(p)?;
                    }
                }
            }
        }
        for a in &admins {
            // gone: its directory is missing, or (for the dir this record named) its `gitdir`
            // does not yet name the path it was written for (a write cut short)
            let entry_path = admin::read_entry(a).map(|e| e.path);
            let gone = entry_path.as_deref().is_none_or(|p| {
                gone_paths.iter().any(|g| g == p)
                    || safety::presence(p, a) == Presence::Missing
                    || (Some(a) == own_admin.as_ref() && p != item.path)
            });
            if a.exists() && gone {
                steps.push(format!("remove admin dir {}", a.display()));
                gone_admins.push(a.clone());
                if !dry_run {
                    admin::remove_entry(a)?;
                }
            }
        }
        // A ref write cut short leaves git's `<ref>.lock`: ours, since the branch is this
        // item's and its writer is dead (we hold the admin lock); it would block every later
        // write of that branch.
        let old_branch = item.reused.as_ref().and_then(|r| r.branch.as_deref());
        for b in std::iter::once(item.branch.as_str()).chain(old_branch) {
            remove_stale_ref_lock(wt, b, dry_run, steps);
        }
        let checked_out = wt
            .entries()?
            .iter()
            .filter(|e| !gone_admins.contains(&e.admin_dir))
            .any(|e| e.branch() == Some(item.branch.as_str()));
        let at_base = self
            .repo
            .find_branch(&item.branch, git2::BranchType::Local)
            .ok()
            .and_then(|b| b.get().target())
            == Some(self.base);
        if at_base && !checked_out {
            steps.push(format!("delete branch {} (still at its base)", item.branch));
            if !dry_run {
                refs::delete_branch_if_at(self.repo, &item.branch, self.base)?;
            }
        }
        Ok(())
    }
}

/// The reused worktree's old branch was integrated and was being deleted: finish that once
/// nothing has it checked out, and only while it is where it was.
fn finish_old_branch(
    wt: &Worktrees,
    repo: &git2::Repository,
    item: &Item,
    dry_run: bool,
    steps: &mut Vec<String>,
) -> Result<()> {
    if let Some(r) = &item.reused
        && r.delete_branch
        && let (Some(old), Ok(head)) = (&r.branch, Oid::from_str(&r.head))
    {
        let held = wt
            .entries()?
            .iter()
            .any(|e| e.branch() == Some(old.as_str()));
        let still = repo
            .find_branch(old, git2::BranchType::Local)
            .ok()
            .and_then(|b| b.get().target())
            == Some(head);
        if still && !held {
            steps.push(format!(
                "delete branch {old} (integrated, its worktree was reused)"
            ));
            if !dry_run {
                refs::delete_branch_if_at(repo, old, head)?;
            }
        }
    }
    Ok(())
}

/// `p` holds nothing, or nothing but a `.git` file whose text is a prefix of the one `create`
/// writes for admin dir `admin` (a write cut short).
fn only_partial_dotgit(p: &Path, admin: &Path) -> bool {
    place::is_debris(p, &admin::dotgit_text(admin))
}

/// The directories a create killed while placing `item`'s worktree had made under temporary
/// names, and the stages its checkout was creating files through ([`place`]): each holds a
/// `.git` file naming this item's admin dir (or a prefix of one), a stage also numbered files.
fn remove_placement_debris(wt: &Worktrees, item: &Item, dry_run: bool, steps: &mut Vec<String>) {
    let (Some(name), Some(parent)) = (&item.admin, item.path.parent()) else {
        return;
    };
    let text = admin::dotgit_text(&admin::worktrees_dir(wt.common_dir()).join(name));
    for k in 0..place::TRIES {
        let d = parent.join(place::temp_name(name, k));
        if place::is_debris(&d, &text) {
            steps.push(format!("remove {} (interrupted create)", d.display()));
            if !dry_run {
                place::remove_debris(&d, &text);
            }
        }
    }
    let Some(dir_name) = item.path.file_name() else {
        return;
    };
    for k in 0..place::STAGES {
        let d = parent.join(place::stage_name(&dir_name.to_string_lossy(), k));
        if place::is_stage(&d, &text) {
            steps.push(format!("remove {} (interrupted checkout)", d.display()));
            if !dry_run {
                place::remove_stage(&d, &text);
            }
        }
    }
}

/// Remove git's `refs/heads/<branch>.lock` left by a dead writer of `branch`: only for a
/// branch that dead process was writing, under the admin lock (a live git would hold it).
fn remove_stale_ref_lock(wt: &Worktrees, branch: &str, dry_run: bool, steps: &mut Vec<String>) {
    let lock = wt.common_dir().join(format!("refs/heads/{branch}.lock"));
    if lock.is_file() {
        steps.push(format!("remove stale {}", lock.display()));
        if !dry_run {
            let _ = std::fs::remove_file(&lock);
        }
    }
}

fn is_empty_dir(p: &Path) -> bool {
    std::fs::read_dir(p).is_ok_and(|mut r| r.next().is_none())
}
