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
        if !text_merges_agree(repo, &head_commit, &target_commit, &target_tree)
            .map_err(git("merge the files again"))?
        {
            return Ok(unmerged());
        }
        return Ok(squash("merging it into the target changes nothing"));
    }
    Ok(unmerged())
}

/// libgit2 merges file contents with Myers; git's merge diffs with histogram, which can place
/// hunks elsewhere and conflict where Myers is clean. Before a branch is called integrated
/// (and cleanup deletes it), every regular file it and the target both hold, differently, is
/// merged again with git's own text merge: integrated only if that too gives the target's
/// bytes. Only ever turns "integrated" into "not integrated", never the other way.
fn text_merges_agree(
    repo: &Repository,
    head: &git2::Commit<'_>,
    target: &git2::Commit<'_>,
    target_tree: &git2::Tree<'_>,
) -> std::result::Result<bool, git2::Error> {
    let base_tree = match repo.merge_base(head.id(), target.id()) {
        Ok(base) => Some(repo.find_commit(base)?.tree()?),
        Err(e) if e.code() == git2::ErrorCode::NotFound => None,
        Err(e) => return Err(e),
    };
    let head_tree = head.tree()?;
    let diff = repo.diff_tree_to_tree(Some(target_tree), Some(&head_tree), None)?;
    let regular =
        |m: git2::FileMode| matches!(m, git2::FileMode::Blob | git2::FileMode::BlobExecutable);
    for delta in diff.deltas() {
        let (ours, theirs) = (delta.old_file(), delta.new_file());
        if delta.status() != git2::Delta::Modified
            || !regular(ours.mode())
            || !regular(theirs.mode())
        {
            continue;
        }
        let Some(path) = theirs.path() else { continue };
        let base = match &base_tree {
            Some(t) => match t.get_path(path) {
                Ok(entry) => Some(entry.id()),
                Err(e) if e.code() == git2::ErrorCode::NotFound => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        if base == Some(theirs.id()) {
            // the branch did not touch it: the merge keeps the target's version
            continue;
        }
        let read = |id: git2::Oid| repo.find_blob(id).map(|b| b.content().to_vec());
        let base_bytes = match base {
            Some(id) => read(id)?,
            None => Vec::new(),
        };
        let target_bytes = read(ours.id())?;
        let merged = baton_git::text_merge::merge(&base_bytes, &target_bytes, &read(theirs.id())?);
        match merged {
            Some(baton_git::text_merge::TextMerge::Clean(bytes)) if bytes == target_bytes => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
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
