//! `prune`: remove the administrative entries of worktrees whose directory is gone, unless a
//! person's lock or a live owner holds them (git's rule, plus baton's owner check). Gone means
//! missing: a directory that cannot be read is kept. A detached head that nothing else holds
//! gets a recovery ref first, so no commit becomes unreachable.

use std::path::PathBuf;

use serde::Serialize;

use crate::admin::{self, Entry, Head};
use crate::errors::Result;
use crate::lock::admin_lock;
use crate::process;
use crate::refs;
use crate::repo::Worktrees;
use crate::safety::{self, Presence};

/// Is `h` the head (or behind the head) of another entry or the main checkout?
fn held_elsewhere(repo: &git2::Repository, entries: &[Entry], me: &Entry, h: git2::Oid) -> bool {
    let main = repo.head().ok().and_then(|r| r.target());
    let others = entries
        .iter()
        .filter(|o| o.admin_dir != me.admin_dir)
        .filter_map(|o| match &o.head {
            Head::Detached(d) => Some(*d),
            Head::Branch(r) => repo.refname_to_id(r).ok(),
            Head::Unknown => None,
        });
    main.into_iter()
        .chain(others)
        .any(|o| o == h || repo.graph_descendant_of(o, h).unwrap_or(false))
}

#[derive(Debug, Clone, Serialize)]
pub struct Pruned {
    pub name: String,
    pub path: PathBuf,
    pub branch: Option<String>,
    /// The ref written to keep its detached head reachable.
    pub recovered_ref: Option<String>,
    /// Why it is kept, when it is.
    pub reason: Option<String>,
    pub done: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PruneReport {
    pub dry_run: bool,
    pub pruned: Vec<Pruned>,
    /// Entries with a vanished directory that a lock holds.
    pub held: Vec<Pruned>,
    /// Entries whose directory cannot be read: not missing, so kept (with why).
    pub unreadable: Vec<Pruned>,
}

pub fn prune(wt: &Worktrees, dry_run: bool) -> Result<PruneReport> {
    let mut report = PruneReport {
        dry_run,
        pruned: Vec::new(),
        held: Vec::new(),
        unreadable: Vec::new(),
    };
    let repo = wt.open()?;
    let entries = wt.entries()?;
    for e in &entries {
        match safety::presence(&e.path, &e.admin_dir) {
            Presence::Missing => {}
            Presence::Unreadable(why) => {
                let item = Pruned {
                    name: e.name.clone(),
                    path: e.path.clone(),
                    branch: e.branch().map(str::to_owned),
                    recovered_ref: None,
                    reason: Some(why),
                    done: false,
                };
                report.unreadable.push(item);
                continue;
            }
            Presence::Owned | Presence::Foreign(_) => continue,
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
            recovered_ref: None,
            reason: None,
            done: false,
        };
        if held {
            report.held.push(item);
            continue;
        }
        if let Head::Detached(h) = e.head
            && !refs::reachable_from_refs(&repo, h, &[])?
            && !held_elsewhere(&repo, &entries, e, h)
        {
            item.recovered_ref = Some(crate::cleanup::recovery_ref(&e.name, h));
        }
        if !dry_run {
            let _lock = admin_lock(wt.common_dir())?;
            if let (Some(r), Head::Detached(h)) = (&item.recovered_ref, &e.head) {
                repo.reference(r, *h, true, "baton: keep the head of a pruned worktree")
                    .map_err(crate::WorktreeError::git(format!("write {r}")))?;
            }
            admin::remove_entry(&e.admin_dir)?;
            item.done = true;
        }
        report.pruned.push(item);
    }
    Ok(report)
}
