//! Merging a batch's branches, in plan order, onto the integration tip: commits like
//! `git merge --no-ff` (the tree is git's merge), nothing but objects written.

use std::path::Path;

use baton_plan::{AgentId, BatchId, PlanId};

use super::{IntegrateError, git, integration_branch};

/// What merging the agents' branches gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeResult {
    /// The commit holding every agent's work on top of the base.
    Merged(git2::Oid),
    /// Files that do not merge, each with the agents whose changes meet there.
    Conflicts(Vec<(String, Vec<String>)>),
}

/// Merge each agent's branch, in the order given, onto `base`: one merge commit per agent
/// (first parent the previous result), as `git merge --no-ff` would, or a fast-forward when
/// the result is an ancestor of the agent's tip; an agent with nothing new is skipped.
/// Objects are written to the repository, no reference is moved.
pub fn merge_in_order(
    repo: &git2::Repository,
    base: git2::Oid,
    agents: &[(AgentId, git2::Oid)],
    plan: &PlanId,
    batch: &BatchId,
) -> Result<MergeResult, IntegrateError> {
    let sig = crate::commit::signature(repo);
    let mut current = base;
    let mut merged_so_far: Vec<(AgentId, git2::Oid)> = Vec::new();
    for (agent, tip) in agents {
        let tip = *tip;
        if current == tip
            || repo
                .graph_descendant_of(current, tip)
                .map_err(git("walk"))?
        {
            continue;
        }
        if repo
            .graph_descendant_of(tip, current)
            .map_err(git("walk"))?
        {
            current = tip;
            merged_so_far.push((agent.clone(), tip));
            continue;
        }
        let ours = repo.find_commit(current).map_err(git("read commit"))?;
        let theirs = repo.find_commit(tip).map_err(git("read commit"))?;
        let mut index = repo
            .merge_commits(&ours, &theirs, None)
            .map_err(git(format!("merge {agent}")))?;
        if index.has_conflicts() {
            let mut paths: Vec<String> = index
                .conflicts()
                .map_err(git("read conflicts"))?
                .filter_map(Result::ok)
                .filter_map(|c| {
                    c.our
                        .or(c.their)
                        .or(c.ancestor)
                        .map(|e| String::from_utf8_lossy(&e.path).into_owned())
                })
                .collect();
            paths.sort();
            paths.dedup();
            let mut out = Vec::new();
            for p in paths {
                let mut who = Vec::new();
                for (other, other_tip) in &merged_so_far {
                    if touched(repo, base, *other_tip, &p)? {
                        who.push(other.to_string());
                    }
                }
                if who.is_empty() {
                    // the conflict is with the base itself (it moved under the agent)
                    who.push(integration_branch(plan));
                }
                who.push(agent.to_string());
                out.push((p, who));
            }
            return Ok(MergeResult::Conflicts(out));
        }
        let tree_id = index
            .write_tree_to(repo)
            .map_err(git(format!("write the merge of {agent}")))?;
        let tree = repo.find_tree(tree_id).map_err(git("read tree"))?;
        let message = format!(
            "baton: merge {agent} into the integration branch\n\nplan {plan}, batch {batch}, agent {agent}\n"
        );
        current = repo
            .commit(None, &sig, &sig, &message, &tree, &[&ours, &theirs])
            .map_err(git(format!("commit the merge of {agent}")))?;
        merged_so_far.push((agent.clone(), tip));
    }
    Ok(MergeResult::Merged(current))
}

/// Did the line of work from `base` to `tip` change `path`?
fn touched(
    repo: &git2::Repository,
    base: git2::Oid,
    tip: git2::Oid,
    path: &str,
) -> Result<bool, IntegrateError> {
    let mb = repo.merge_base(base, tip).unwrap_or(base);
    let entry = |oid: git2::Oid| -> Result<Option<git2::Oid>, IntegrateError> {
        let tree = repo
            .find_commit(oid)
            .and_then(|c| c.tree())
            .map_err(git("read tree"))?;
        Ok(tree.get_path(Path::new(path)).ok().map(|e| e.id()))
    };
    Ok(entry(mb)? != entry(tip)?)
}
