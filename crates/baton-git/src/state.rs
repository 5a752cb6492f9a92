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
    } else if has("REVERT_HEAD") {
        ops.push(Operation::Revert);
    } else if let Some(op) = sequencer_operation(git_dir) {
        // a multi-commit cherry-pick or revert stopped between picks (or after a conflict
        // was committed by hand): git status still says it is in progress
        ops.push(op);
    }
    if has("BISECT_LOG") || has("BISECT_START") {
        ops.push(Operation::Bisect);
    }
    ops
}

/// The operation a sequencer left active (`git cherry-pick A B C` or `git revert` of several
/// commits), read from its todo list the way `git status` does: by its first command.
fn sequencer_operation(git_dir: &Path) -> Option<Operation> {
    let todo = std::fs::read(git_dir.join("sequencer/todo")).ok()?;
    let first = todo
        .split(|b| *b == b'\n')
        .map(|l| l.trim_ascii())
        .find(|l| !l.is_empty() && !l.starts_with(b"#"))?;
    let word = first.split(|b| b.is_ascii_whitespace()).next()?;
    match word {
        b"pick" | b"p" => Some(Operation::CherryPick),
        b"revert" => Some(Operation::Revert),
        _ => None,
    }
}

/// A process that has a file open: its pid and command name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub command: String,
}

/// The processes that have `path` open, found through `/proc/<pid>/fd` (Linux; processes of
/// other users cannot be seen and are left out). Empty where `/proc` does not exist.
pub fn open_by(path: &Path) -> Vec<Holder> {
    let Ok(target) = std::fs::canonicalize(path) else {
        return Vec::new();
    };
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        let holds = fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l == target));
        if holds {
            let command = std::fs::read_to_string(p.path().join("comm"))
                .map(|c| c.trim_end().to_owned())
                .unwrap_or_default();
            out.push(Holder { pid, command });
        }
    }
    out
}

/// How old the worktree's `index.lock` is, when there is one.
pub fn index_lock_age(git_dir: &Path, now: SystemTime) -> Option<Duration> {
    let meta = std::fs::metadata(git_dir.join("index.lock")).ok()?;
    let modified = meta.modified().ok()?;
    Some(now.duration_since(modified).unwrap_or(Duration::ZERO))
}
