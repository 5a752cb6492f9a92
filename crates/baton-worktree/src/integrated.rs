//! Is a worktree's work already in the target branch? Merged (its head is reachable from the
//! target), squash-merged (a commit on the target has the same tree, or the same patch, or
//! merging it into the target changes nothing), or unmerged.

use git2::{Oid, Repository};
use serde::Serialize;

use crate::errors::{Result, WorktreeError};

/// How far back along the target the squash checks look.
const MAX_TARGET_COMMITS: usize = 2000;

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
    let squash = |detail: String| {
        Ok(Integration {
            state: MergeState::SquashMerged,
            detail: Some(detail),
        })
    };
    let head_commit = repo.find_commit(head).map_err(git("read the commits"))?;
    let target_commit = repo.find_commit(target).map_err(git("read the commits"))?;
    let base = repo.merge_base(head, target).ok();
    let head_tree = head_commit.tree_id();

    // Same tree as a commit on the target since the fork point.
    let mut walk = repo.revwalk().map_err(git("walk the history"))?;
    walk.push(target).map_err(git("walk the history"))?;
    if let Some(b) = base {
        walk.hide(b).map_err(git("walk the history"))?;
    }
    let on_target: Vec<Oid> = walk
        .take(MAX_TARGET_COMMITS)
        .collect::<std::result::Result<_, _>>()
        .map_err(git("walk the history"))?;
    for &c in &on_target {
        let commit = repo.find_commit(c).map_err(git("read the commits"))?;
        if commit.tree_id() == head_tree {
            return squash(format!("same tree as {}", short(c)));
        }
    }

    // Merging the head into the target adds nothing: its content is already there.
    if let Some(b) = base {
        let base_tree = repo
            .find_commit(b)
            .and_then(|c| c.tree())
            .map_err(git("read the merge base"))?;
        let target_tree = target_commit.tree().map_err(git("read the target tree"))?;
        let head_tree = head_commit.tree().map_err(git("read the head tree"))?;
        let merged = repo
            .merge_trees(&base_tree, &target_tree, &head_tree, None)
            .map_err(git("merge"))?;
        if !merged.has_conflicts() {
            let diff = repo
                .diff_tree_to_index(Some(&target_tree), Some(&merged), None)
                .map_err(git("diff the merge"))?;
            if diff.deltas().len() == 0 {
                return squash("merging it into the target changes nothing".to_owned());
            }
        }

        // Same patch as one commit on the target.
        let ours = repo
            .diff_tree_to_tree(Some(&base_tree), Some(&head_tree), None)
            .and_then(|d| d.patchid(None))
            .map_err(git("compute the patch id"))?;
        for &c in &on_target {
            let commit = repo.find_commit(c).map_err(git("read the commits"))?;
            if commit.parent_count() != 1 {
                continue;
            }
            let parent_tree = commit
                .parent(0)
                .and_then(|p| p.tree())
                .map_err(git("read the commits"))?;
            let tree = commit.tree().map_err(git("read the commits"))?;
            let theirs = repo
                .diff_tree_to_tree(Some(&parent_tree), Some(&tree), None)
                .and_then(|d| d.patchid(None))
                .map_err(git("compute the patch id"))?;
            if theirs == ours {
                return squash(format!("same patch as {}", short(c)));
            }
        }
    }
    Ok(Integration {
        state: MergeState::Unmerged,
        detail: None,
    })
}

pub fn short(oid: Oid) -> String {
    oid.to_string()[..10].to_owned()
}
