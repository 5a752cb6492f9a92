//! Is a worktree's work already in the target branch? Merged (its head is reachable from the
//! target), squash-merged (not reachable, but merging it into the target changes nothing: a
//! real three-way merge of the trees, with git's recursive merge base), or unmerged.
//!
//! Look-alikes are not integration: an equal patch id, or an equal tree somewhere in the
//! target's history, says nothing about whether the target *now* holds the content (the same
//! line added at another place, a change differing only in whitespace, a change the target
//! later reverted). Only the merge result counts.

use git2::{MergeOptions, Oid, Repository};
use serde::Serialize;

use crate::errors::{Result, WorktreeError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeState {
    /// The head commit is reachable from the target.
    Merged,
    /// Not reachable, but the changes are in the target (squash or rebase merge).
    SquashMerged,
    /// The head has changes the target does not have.
    Unmerged,
}

impl MergeState {
    pub fn is_integrated(self) -> bool {
        matches!(self, MergeState::Merged | MergeState::SquashMerged)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            MergeState::Merged => "merged",
            MergeState::SquashMerged => "squash-merged",
            MergeState::Unmerged => "unmerged",
        }
    }
}

/// The verdict and, for squash merges, which check recognised it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integration {
    pub state: MergeState,
    pub detail: Option<String>,
}

/// Classify `head` against `target`.
pub fn classify(repo: &Repository, head: Oid, target: Oid) -> Result<Integration> {
    let git = |what: &str| WorktreeError::git(format!("{what} of {head} and {target}"));
    if head == target
        || repo
            .graph_descendant_of(target, head)
            .map_err(git("compare the history"))?
    {
        return Ok(Integration {
            state: MergeState::Merged,
            detail: None,
        });
    }
    let head_commit = repo.find_commit(head).map_err(git("read the commits"))?;
    let target_commit = repo.find_commit(target).map_err(git("read the commits"))?;
    let target_tree = target_commit.tree().map_err(git("read the target tree"))?;
    if head_commit.tree_id() == target_tree.id() {
        return Ok(squash("it has the target's tree"));
    }
    // What `git merge` would produce (recursive merge base for criss-cross histories, rename
    // detection, no whitespace leniency); integrated only if that is exactly the target's tree.
    let mut opts = MergeOptions::new();
    opts.fail_on_conflict(false);
    let merged = repo
        .merge_commits(&target_commit, &head_commit, Some(&opts))
        .map_err(git("merge"))?;
    if merged.has_conflicts() {
        return Ok(unmerged());
    }
    let diff = repo
        .diff_tree_to_index(Some(&target_tree), Some(&merged), None)
        .map_err(git("diff the merge"))?;
    if diff.deltas().len() == 0 {
        return Ok(squash("merging it into the target changes nothing"));
    }
    Ok(unmerged())
}

fn squash(detail: &str) -> Integration {
    Integration {
        state: MergeState::SquashMerged,
        detail: Some(detail.to_owned()),
    }
}

fn unmerged() -> Integration {
    Integration {
        state: MergeState::Unmerged,
        detail: None,
    }
}
