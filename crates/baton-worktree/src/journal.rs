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
use crate::process;
use crate::refs;
use crate::remove;
use crate::repo::Worktrees;
use crate::safety::{self, Presence};

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
    /// The admin dir name of a fresh worktree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<String>,
    /// The worktree being reused: its admin dir and path before the switch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused: Option<(PathBuf, PathBuf)>,
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
}

/// Roll back (or forward) every create whose process is gone. Takes the admin lock.
pub fn recover(wt: &Worktrees, dry_run: bool) -> Result<Vec<Debris>> {
    let jdir = dir(wt.common_dir());
    if !jdir.is_dir() {
        return Ok(Vec::new());
    }
    let _lock = admin_lock(wt.common_dir())?;
    let read = std::fs::read_dir(&jdir).map_err(WorktreeError::io("read", &jdir))?;
    let mut files: Vec<PathBuf> = read.flatten().map(|e| e.path()).collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.as_deref().is_some_and(|n| n.ends_with(".tmp")) {
            // a journal write cut short: the record it was replacing is complete or absent
            if !dry_run {
                let _ = std::fs::remove_file(&file);
            }
            continue;
        }
        let Ok(journal) = baton_store::read_json::<Journal>(&file) else {
            continue;
        };
        if process::is_alive(&journal.owner) {
            continue;
        }
        let steps = undo(wt, &journal, dry_run)?;
        if !dry_run {
            end(&file);
        }
        out.push(Debris {
            journal: file,
            steps,
        });
    }
    Ok(out)
}

fn undo(wt: &Worktrees, journal: &Journal, dry_run: bool) -> Result<Vec<String>> {
    let repo = wt.open()?;
    let mut steps = Vec::new();
    let dead_creator = process::lock_reason(&journal.owner);
    for item in &journal.items {
        let entries = wt.entries()?;
        let Ok(base) = Oid::from_str(&item.base_commit) else {
            continue;
        };
        // Complete: its metadata is written. Roll forward (drop the dead creator's lock).
        let complete = entries.iter().find(|e| {
            e.path == item.path && e.meta.is_some() && e.branch() == Some(item.branch.as_str())
        });
        if let Some(e) = complete {
            if e.locked.as_deref() == Some(dead_creator.as_str()) {
                steps.push(format!("unlock {} (complete)", e.path.display()));
                if !dry_run {
                    admin::set_lock(&e.admin_dir, None)?;
                }
            }
            continue;
        }
        // Incomplete: every admin dir that belongs to this item, and its directory.
        let mut admins: Vec<PathBuf> = Vec::new();
        if let Some(a) = &item.admin {
            admins.push(admin::worktrees_dir(wt.common_dir()).join(a));
        }
        if let Some((admin_dir, _)) = &item.reused {
            admins.push(admin_dir.clone());
        }
        for e in &entries {
            let old_path = item.reused.as_ref().map(|(_, p)| p);
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
        // (a concurrent, refused create wrote the same item) is not touched.
        admins.retain(|a| {
            std::fs::read_to_string(a.join("locked")).is_ok_and(|r| r.trim_end() == dead_creator)
        });
        let mut paths = vec![item.path.clone()];
        if let Some((_, p)) = &item.reused {
            paths.push(p.clone());
        }
        for p in &paths {
            for a in &admins {
                match safety::presence(p, a) {
                    Presence::Owned => {
                        steps.push(format!("remove {} (interrupted create)", p.display()));
                        if !dry_run {
                            remove::remove_tree(p)?;
                        }
                    }
                    Presence::Foreign(_) if is_empty_dir(p) && item.reused.is_none() => {
                        steps.push(format!("remove empty {}", p.display()));
                        if !dry_run {
                            remove::remove_tree(p)?;
                        }
                    }
                    _ => {}
                }
            }
        }
        for a in &admins {
            let entry_path = admin::read_entry(a).map(|e| e.path);
            let gone = entry_path
                .as_deref()
                .is_none_or(|p| safety::presence(p, a) == Presence::Missing);
            if a.exists() && gone {
                steps.push(format!("remove admin dir {}", a.display()));
                if !dry_run {
                    admin::remove_entry(a)?;
                }
            }
        }
        let checked_out = wt
            .entries()?
            .iter()
            .any(|e| e.branch() == Some(item.branch.as_str()));
        let at_base = repo
            .find_branch(&item.branch, git2::BranchType::Local)
            .ok()
            .and_then(|b| b.get().target())
            == Some(base);
        if at_base && !checked_out {
            steps.push(format!("delete branch {} (still at its base)", item.branch));
            if !dry_run {
                refs::delete_branch_if_at(&repo, &item.branch, base)?;
            }
        }
    }
    Ok(steps)
}

fn is_empty_dir(p: &Path) -> bool {
    std::fs::read_dir(p).is_ok_and(|mut r| r.next().is_none())
}
