//! The merged result of a batch, built in memory: every agent's changes (committed and not)
//! laid onto the base file by file with git's three-way merge. Used by `verify --merged` to
//! test what the batch would be once integrated, without a commit, a ref or an object
//! written to the repository.

use std::collections::BTreeMap;
use std::path::Path;

use baton_git::changes::FileChange;
use baton_git::merge::{MergeOutcome, Merger, Side};
use baton_git::{GitError, RepoPaths};

use crate::conflicts::AgentLine;
use crate::pairs::AgentFiles;

/// A batch merged in memory.
pub enum Merged {
    /// Everything merged; the index holds the result (its new blobs live in the merger).
    Clean { merger: Merger, index: git2::Index },
    /// These paths do not merge: `(path, agents involved)`.
    Conflicts(Vec<(String, Vec<String>)>),
    /// Agents that share one tree (`--results`) have no separate versions to merge.
    NotApplicable,
}

/// Merge the agents' lines onto `base`, in agent order.
pub fn merge_lines(
    repo: &RepoPaths,
    base: git2::Oid,
    lines: &[AgentLine],
) -> Result<Merged, GitError> {
    let merger = Merger::open(repo)?;
    let mut by_key: BTreeMap<&str, Vec<(&str, &FileChange)>> = BTreeMap::new();
    for l in lines {
        match &l.files {
            AgentFiles::Line(changes) => {
                for c in changes.values() {
                    by_key
                        .entry(c.key.as_str())
                        .or_default()
                        .push((l.spec.id.as_str(), c));
                }
            }
            AgentFiles::Declared(_) => return Ok(Merged::NotApplicable),
        }
    }
    let base_tree = merger
        .repo()
        .find_commit(base)
        .and_then(|c| c.tree())
        .map_err(GitError::git(format!("read the tree of {base}")))?;
    let mut index = git2::Index::new().map_err(GitError::git("create an index in memory"))?;
    index
        .read_tree(&base_tree)
        .map_err(GitError::git("read the base tree"))?;
    let mut conflicts = Vec::new();
    // (dest path, content) to add once every removal is done, so renames cannot collide
    let mut additions: Vec<(String, Side)> = Vec::new();
    for (key, changes) in &by_key {
        let ancestor = merger.side_in_tree(&base_tree, key);
        let mut current = ancestor;
        let mut dest: Option<String> = Some((*key).to_owned());
        let mut ok = true;
        for (_, change) in changes {
            let theirs = change
                .content
                .as_ref()
                .map(|c| merger.side(c))
                .transpose()?;
            if change.is_rename() {
                let new_dest = change.dest.clone();
                if dest.as_deref() != Some(*key) && dest != new_dest {
                    ok = false;
                    break;
                }
                dest = new_dest;
            }
            match merger.merge(key, ancestor, current, theirs)? {
                MergeOutcome::Clean(result) => current = result,
                MergeOutcome::Conflict(_) => {
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            conflicts.push((
                (*key).to_owned(),
                changes.iter().map(|(id, _)| (*id).to_owned()).collect(),
            ));
            continue;
        }
        let _ = index.remove_path(Path::new(key));
        if let (Some(side), Some(d)) = (current, dest) {
            additions.push((d, side));
        }
    }
    if !conflicts.is_empty() {
        return Ok(Merged::Conflicts(conflicts));
    }
    for (path, side) in additions {
        let entry = baton_git::merge::index_entry(&path, side);
        index
            .add(&entry)
            .map_err(GitError::git("add a merged file to the in-memory index"))?;
    }
    drop(base_tree);
    Ok(Merged::Clean { merger, index })
}
