//! Per-worktree git state that `git status` only hints at: an operation left half done
//! (merge, rebase, cherry-pick, revert, bisect) and a leftover `index.lock`.

use std::path::Path;
use std::time::{Duration, SystemTime};

/// A multi-step git operation in progress in one worktree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Merge,
    Rebase,
    /// `git am` (a mailbox being applied).
    ApplyMailbox,
    CherryPick,
    Revert,
    Bisect,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Merge => "merge",
            Operation::Rebase => "rebase",
            Operation::ApplyMailbox => "am",
            Operation::CherryPick => "cherry-pick",
            Operation::Revert => "revert",
            Operation::Bisect => "bisect",
        }
    }
    /// The git command that finishes or abandons it.
    pub fn resolve_hint(self) -> &'static str {
        match self {
            Operation::Merge => "finish it with `git commit` or run `git merge --abort`",
            Operation::Rebase => "run `git rebase --continue` or `git rebase --abort`",
            Operation::ApplyMailbox => "run `git am --continue` or `git am --abort`",
            Operation::CherryPick => {
                "run `git cherry-pick --continue` or `git cherry-pick --abort`"
            }
            Operation::Revert => "run `git revert --continue` or `git revert --abort`",
            Operation::Bisect => "run `git bisect reset` when done",
        }
    }
}

/// The operations in progress in the worktree whose git directory is `git_dir`, by the marker
/// files git leaves there (the same ones `git status` reads). Several can be in progress at
/// once (a bisect during which a cherry-pick stopped).
pub fn operations_in_progress(git_dir: &Path) -> Vec<Operation> {
    let has = |name: &str| git_dir.join(name).exists();
    let mut ops = Vec::new();
    if has("rebase-merge") {
        ops.push(Operation::Rebase);
    } else if has("rebase-apply") {
        if has("rebase-apply/applying") {
            ops.push(Operation::ApplyMailbox);
        } else {
            ops.push(Operation::Rebase);
        }
    }
    if has("MERGE_HEAD") {
        ops.push(Operation::Merge);
    }
    if has("CHERRY_PICK_HEAD") {
        ops.push(Operation::CherryPick);
    }
    if has("REVERT_HEAD") {
        ops.push(Operation::Revert);
    }
    if has("BISECT_LOG") || has("BISECT_START") {
        ops.push(Operation::Bisect);
    }
    ops
}

/// How old the worktree's `index.lock` is, when there is one.
pub fn index_lock_age(git_dir: &Path, now: SystemTime) -> Option<Duration> {
    let meta = std::fs::metadata(git_dir.join("index.lock")).ok()?;
    let modified = meta.modified().ok()?;
    Some(now.duration_since(modified).unwrap_or(Duration::ZERO))
}
