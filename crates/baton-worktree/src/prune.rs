//! `prune`: remove the administrative entries of worktrees whose directory is gone, unless a
//! person's lock or a live owner holds them (git's rule, plus baton's owner check).

use std::path::PathBuf;

use serde::Serialize;

use crate::admin;
use crate::errors::Result;
use crate::process;
use crate::repo::Worktrees;

#[derive(Debug, Clone, Serialize)]
pub struct Pruned {
    pub name: String,
    pub path: PathBuf,
    pub branch: Option<String>,
    pub done: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PruneReport {
    pub dry_run: bool,
    pub pruned: Vec<Pruned>,
    /// Entries with a vanished directory that a lock holds.
    pub held: Vec<Pruned>,
}

pub fn prune(wt: &Worktrees, dry_run: bool) -> Result<PruneReport> {
    let mut report = PruneReport {
        dry_run,
        pruned: Vec::new(),
        held: Vec::new(),
    };
    for e in wt.entries()? {
        if e.path.join(".git").exists() {
            continue;
        }
        let held = match e.locked.as_deref() {
            None => false,
            Some(reason) => {
                process::parse_lock_reason(reason).is_none_or(|o| process::is_alive(&o))
            }
        };
        let mut item = Pruned {
            name: e.name.clone(),
            path: e.path.clone(),
            branch: e.branch().map(str::to_owned),
            done: false,
        };
        if held {
            report.held.push(item);
            continue;
        }
        if !dry_run {
            admin::remove_entry(&e.admin_dir)?;
            item.done = true;
        }
        report.pruned.push(item);
    }
    Ok(report)
}
