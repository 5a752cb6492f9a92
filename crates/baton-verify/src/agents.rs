//! Who the agents of a batch are, for the conflicts check: linked worktrees (default),
//! branches matching a glob, a stored plan's agents, or a results file for agents that share
//! one tree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use baton_git::GitError;
use baton_git::worktrees::{WorktreeInfo, list_worktrees};
use baton_plan::{Execution, Plan, PlanId};

use crate::errors::AgentsError;

/// One agent whose changes the conflicts check compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSpec {
    pub id: String,
    /// Its branch, when it has one.
    pub branch: Option<String>,
    /// The commit its line of work ends at (the branch tip or worktree HEAD).
    pub tip: Option<git2::Oid>,
    /// Its worktree, whose uncommitted and untracked changes count too.
    pub worktree: Option<PathBuf>,
    /// Its declared `files_write` globs, when it declared any.
    pub scope: Option<Vec<String>>,
    /// Files it reported writing in a shared tree (`--results`), instead of a line of work.
    pub declared_files: Option<Vec<String>>,
    /// Where its own changes start, when not at its merge base with the gate's base: an
    /// agent restarted on top of another agent's work is measured from there, so that work
    /// is not counted as its own.
    pub base: Option<git2::Oid>,
}

impl AgentSpec {
    fn of_line(id: String, branch: Option<String>, tip: Option<git2::Oid>) -> Self {
        AgentSpec {
            id,
            branch,
            tip,
            worktree: None,
            scope: None,
            declared_files: None,
            base: None,
        }
    }
}

/// The agent id a branch stands for: `baton/<plan>/<agent>` gives `<agent>`, any other
/// branch its own name.
pub fn agent_id_of_branch(branch: &str) -> String {
    let parts: Vec<&str> = branch.split('/').collect();
    match parts.as_slice() {
        ["baton", plan, agent] if PlanId::new(*plan).is_ok() => (*agent).to_owned(),
        _ => branch.to_owned(),
    }
}

/// The linked worktrees of the repository that still exist, as agents.
pub fn from_worktrees(repo: &git2::Repository) -> Result<Vec<AgentSpec>, GitError> {
    let mut out = Vec::new();
    for wt in list_worktrees(repo)? {
        if wt.is_main() || wt.prunable || !wt.path.is_dir() {
            continue;
        }
        let id = match wt.head.branch() {
            Some(b) => agent_id_of_branch(b),
            None => wt.name.clone().unwrap_or_default(),
        };
        let mut a = AgentSpec::of_line(id, wt.head.branch().map(str::to_owned), wt.head.oid());
        a.worktree = Some(wt.path.clone());
        out.push(a);
    }
    dedup_ids(&mut out);
    Ok(out)
}

/// Local branches matching `glob` (scope-glob syntax: `*` stays within one `/` segment, `**`
/// crosses them), each with its worktree if one has it checked out. The branch checked out in
/// the main checkout is the integration target, not an agent, and is left out.
pub fn from_branches(repo: &git2::Repository, glob: &str) -> Result<Vec<AgentSpec>, AgentsError> {
    let matcher = baton_plan::glob::compile(glob)
        .map_err(|e| AgentsError::BadGlob {
            glob: glob.to_owned(),
            reason: e.kind().to_string(),
        })?
        .compile_matcher();
    let worktrees = list_worktrees(repo)?;
    let main_branch = worktrees
        .iter()
        .find(|w| w.is_main())
        .and_then(|w| w.head.branch().map(str::to_owned));
    let branches = baton_git::branches_matching(repo, |name| matcher.is_match(name))?;
    let mut out = Vec::new();
    for (name, oid) in branches {
        if main_branch.as_deref() == Some(name.as_str()) {
            continue;
        }
        let mut a = AgentSpec::of_line(agent_id_of_branch(&name), Some(name.clone()), Some(oid));
        a.worktree = worktree_of(&worktrees, &name);
        out.push(a);
    }
    if out.is_empty() {
        return Err(AgentsError::NoBranch {
            glob: glob.to_owned(),
        });
    }
    dedup_ids(&mut out);
    Ok(out)
}

/// The agents of a stored plan that have a branch: the branch its execution recorded, else
/// `baton/<plan>/<agent>`. Agents without a branch yet (not started, or sharing the main
/// tree) are returned in the second list.
pub fn from_plan(
    repo: &git2::Repository,
    plan_id: &PlanId,
    plan: &Plan,
    execution: Option<&Execution>,
) -> Result<(Vec<AgentSpec>, Vec<String>), GitError> {
    let worktrees = list_worktrees(repo)?;
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for (batch, agent) in plan.agents() {
        let state = execution
            .and_then(|e| e.batch(&batch.id))
            .and_then(|b| b.agents.iter().find(|a| a.id == agent.id));
        let branch = state
            .and_then(|s| s.branch.clone())
            .unwrap_or_else(|| baton_plan::ids::agent_branch(plan_id, &agent.id));
        let Ok(reference) = repo.find_branch(&branch, git2::BranchType::Local) else {
            missing.push(agent.id.to_string());
            continue;
        };
        let mut a = AgentSpec::of_line(
            agent.id.to_string(),
            Some(branch.clone()),
            reference.get().target(),
        );
        a.worktree = state
            .and_then(|s| s.worktree.clone())
            .filter(|p| p.is_dir())
            .or_else(|| worktree_of(&worktrees, &branch));
        if !agent.scope.files_write.is_empty() {
            a.scope = Some(agent.scope.files_write.clone());
        }
        out.push(a);
    }
    Ok((out, missing))
}

/// Agents from a results file: a JSON object mapping agent id to the list of files it wrote
/// (all in one shared tree).
pub fn from_results(path: &Path, text: &str) -> Result<Vec<AgentSpec>, AgentsError> {
    let bad = |reason: String| AgentsError::BadResults {
        path: path.to_owned(),
        reason,
    };
    let map: BTreeMap<String, Vec<String>> = serde_json::from_str(text).map_err(|e| {
        bad(format!(
            "{e}; expected a JSON object mapping agent id to a list of file paths"
        ))
    })?;
    let mut out = Vec::new();
    for (id, mut files) in map {
        if id.is_empty() {
            return Err(bad("an agent id is empty".to_owned()));
        }
        for f in &mut files {
            let norm = f.trim_start_matches("./").to_owned();
            if norm.is_empty() || norm.starts_with('/') || norm.split('/').any(|c| c == "..") {
                return Err(bad(format!(
                    "agent {id}: {f:?} is not a path inside the repository"
                )));
            }
            *f = norm;
        }
        files.sort();
        files.dedup();
        let mut a = AgentSpec::of_line(id, None, None);
        a.declared_files = Some(files);
        out.push(a);
    }
    Ok(out)
}

fn worktree_of(worktrees: &[WorktreeInfo], branch: &str) -> Option<PathBuf> {
    worktrees
        .iter()
        .find(|w| !w.is_main() && !w.prunable && w.head.branch() == Some(branch))
        .map(|w| w.path.clone())
}

/// Two branches may map to one agent id (`baton/P1/a` and `baton/P2/a`): fall back to the
/// branch names so ids stay unique.
fn dedup_ids(agents: &mut [AgentSpec]) {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for a in agents.iter() {
        *counts.entry(a.id.clone()).or_default() += 1;
    }
    for a in agents.iter_mut() {
        if counts[&a.id] > 1
            && let Some(b) = &a.branch
        {
            a.id = b.clone();
        }
    }
}
