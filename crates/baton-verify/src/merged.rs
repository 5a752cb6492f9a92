//! The merged result of a batch, built in memory: every agent's changes (committed and not)
//! laid onto the base file by file with git's three-way merge. Used by `verify --merged` to
//! test what the batch would be once integrated, without a commit, a ref or an object
//! written to the repository.

use std::collections::BTreeMap;

use baton_git::changes::FileChange;
use baton_git::merge::{MergeOutcome, Merger, Side, is_link};
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

/// Merge the agents' lines into `base` (the target), one agent after the other, as
/// `git merge` of each agent's branch would: each agent's own merge base with the target is
/// the ancestor of its merge, so what the target changed after the agent forked stays.
pub fn merge_lines(
    repo: &RepoPaths,
    base: git2::Oid,
    lines: &[AgentLine],
) -> Result<Merged, GitError> {
    let merger = Merger::open(repo)?;
    if lines
        .iter()
        .any(|l| matches!(l.files, AgentFiles::Declared(_)))
    {
        return Ok(Merged::NotApplicable);
    }
    let tree_of = |oid: git2::Oid| {
        merger
            .repo()
            .find_commit(oid)
            .and_then(|c| c.tree())
            .map_err(GitError::git(format!("read the tree of {oid}")))
    };
    let base_tree = tree_of(base)?;
    // Start from the agents' fork point and replay the target's own changes since then as
    // the first line, so a target that moved on is merged the way git merges it (renames
    // followed both ways), then each agent on top, its merge base as the ancestor.
    let start = lines.iter().find_map(|l| l.merge_base).unwrap_or(base);
    let start_tree = tree_of(start)?;
    let mut steps: Vec<(&str, BTreeMap<String, FileChange>, git2::Oid)> = Vec::new();
    let mut dir_renames: Vec<BTreeMap<String, String>> = Vec::new();
    if start != base {
        let target: BTreeMap<String, FileChange> =
            baton_git::changes::tree_changes(merger.repo(), Some(&start_tree), Some(&base_tree))?
                .into_iter()
                .map(|c| (c.key.clone(), c))
                .collect();
        dir_renames.push(baton_git::renames::dir_renames(
            merger.repo(),
            Some(&start_tree),
            &target,
        ));
        steps.push(("target", target, start));
    }
    for l in lines {
        if let AgentFiles::Line(changes) = &l.files {
            steps.push((
                l.spec.id.as_str(),
                changes.clone(),
                l.merge_base.unwrap_or(base),
            ));
            dir_renames.push(l.dir_renames.clone());
        }
    }
    // the result so far: every file, by path
    let mut files: BTreeMap<String, Side> = BTreeMap::new();
    for (path, oid, mode) in baton_git::changes::tree_files(merger.repo(), &start_tree)? {
        files.insert(path, Side { oid, mode });
    }
    // where an earlier step moved a path of the fork point (`None`: deleted it)
    let mut moved: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut conflicts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut writers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut trees: BTreeMap<git2::Oid, git2::Tree<'_>> = BTreeMap::new();
    for (id, changes, mb) in &steps {
        if !trees.contains_key(mb) {
            trees.insert(*mb, tree_of(*mb)?);
        }
        let ancestor_tree = &trees[mb];
        // removals first, then additions, so renames within one step cannot collide
        let mut additions: Vec<(String, Side)> = Vec::new();
        for change in changes.values() {
            let key = change.key.as_str();
            let ancestor = merger.side_in_tree(ancestor_tree, key);
            let prior = moved.get(key).cloned();
            let location = match &prior {
                Some(Some(to)) => to.clone(),
                _ => key.to_owned(),
            };
            let ours = files.get(&location).copied();
            let theirs = change
                .content
                .as_ref()
                .map(|c| merger.side(c))
                .transpose()?;
            let linkness = |s: Option<Side>| s.map(|s| is_link(s.mode));
            let renamed_before = matches!(&prior, Some(Some(to)) if to != key);
            let mut conflict = match &prior {
                // renamed here, deleted before (rename/delete)
                Some(None) => change.is_rename(),
                // renamed before to elsewhere: deleted, renamed elsewhere or retyped here
                Some(Some(to)) if to != key => {
                    theirs.is_none()
                        || (change.is_rename() && change.dest.as_deref() != Some(to.as_str()))
                        || (ancestor.is_some() && linkness(theirs) != linkness(ancestor))
                }
                _ => false,
            };
            // renamed here, its source retyped before: git keeps the retyped file in place
            if change.is_rename()
                && !renamed_before
                && ancestor.is_some()
                && ours.is_some()
                && linkness(ours) != linkness(ancestor)
            {
                conflict = true;
            }
            let dest = if change.is_rename() {
                change.dest.clone().unwrap_or(location.clone())
            } else {
                location.clone()
            };
            if !conflict {
                match merger.merge(key, ancestor, ours, theirs)? {
                    MergeOutcome::Clean(result) => {
                        files.remove(&location);
                        if let Some(side) = result {
                            additions.push((dest.clone(), side));
                        }
                        if change.is_rename() || result.is_none() {
                            moved.insert(key.to_owned(), result.map(|_| dest.clone()));
                        }
                    }
                    MergeOutcome::Conflict(_) => conflict = true,
                }
            }
            writers
                .entry(dest.clone())
                .or_default()
                .push((*id).to_owned());
            if conflict {
                conflicts
                    .entry(key.to_owned())
                    .or_default()
                    .push((*id).to_owned());
            }
        }
        for (path, side) in additions {
            if let Some(prev) = files.insert(path.clone(), side)
                && prev != side
                && !changes.contains_key(&path)
            {
                // two lines added different files at one path
                conflicts.entry(path).or_default().push((*id).to_owned());
            }
        }
    }
    // files one line added inside a directory another renamed: git reports their location
    let step_files: Vec<AgentFiles> = steps
        .iter()
        .map(|(_, c, _)| AgentFiles::Line(c.clone()))
        .collect();
    for p in crate::pairs::dir_rename_pairs(&step_files, &dir_renames) {
        conflicts
            .entry(p.path)
            .or_default()
            .extend([steps[p.a].0.to_owned(), steps[p.b].0.to_owned()]);
    }
    // a path that is a file and also a directory holding files (file/directory)
    for path in files.keys() {
        for (i, _) in path.match_indices('/') {
            let dir = &path[..i];
            if files.contains_key(dir) {
                let mut who = writers.get(dir).cloned().unwrap_or_default();
                who.extend(writers.get(path).cloned().unwrap_or_default());
                conflicts.entry(dir.to_owned()).or_default().extend(who);
            }
        }
    }
    if !conflicts.is_empty() {
        return Ok(Merged::Conflicts(
            conflicts
                .into_iter()
                .map(|(p, mut who)| {
                    for w in writers.get(&p).into_iter().flatten() {
                        who.push(w.clone());
                    }
                    who.sort();
                    who.dedup();
                    (p, who)
                })
                .collect(),
        ));
    }
    let mut index = git2::Index::new().map_err(GitError::git("create an index in memory"))?;
    for (path, side) in &files {
        index
            .add(&baton_git::merge::index_entry(path, *side))
            .map_err(GitError::git("add a merged file to the in-memory index"))?;
    }
    drop(trees);
    drop(start_tree);
    drop(base_tree);
    Ok(Merged::Clean { merger, index })
}
