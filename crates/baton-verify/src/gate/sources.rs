//! Where the gate's agents come from, as plain data, and resolving them to [`AgentSpec`]s.

use std::path::PathBuf;

use baton_store::StateDir;

use crate::agents::{self, AgentSpec};
use crate::errors::AgentsError;
use crate::gate::GateError;

/// Where the agents of the conflicts check (and of the merged tests) come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AgentSource {
    /// The linked worktrees of the repository.
    #[default]
    Worktrees,
    /// The local branches matching a glob (`*` stays in one path segment).
    BranchGlob(String),
    /// Exactly these local branches, in this order (e.g. a batch's agents in plan order).
    Branches(Vec<String>),
    /// The agents of a stored plan (id, unique suffix or `latest`) in a state directory.
    Plan { state_dir: PathBuf, plan: String },
    /// Agents sharing one tree: a JSON file mapping agent id to the files it wrote.
    Results(PathBuf),
    /// Exactly these agents, in this order, each with its branch and declared write scope
    /// (a run's batch). An agent whose branch does not exist yet is noted, not an error.
    List(Vec<ListedAgent>),
}

/// One agent of [`AgentSource::List`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedAgent {
    pub id: String,
    /// A local branch (short name).
    pub branch: String,
    /// Declared write globs (`files_write`); empty for none.
    pub scope: Vec<String>,
    /// Where its own changes start (a commit or ref), when not at its merge base with the
    /// gate's base: an agent restarted on top of another agent's work.
    pub base: Option<String>,
}

/// The agents, and the ids of plan agents that have no branch yet.
pub(super) fn resolve(
    repo: &git2::Repository,
    source: &AgentSource,
) -> Result<(Vec<AgentSpec>, Vec<String>), GateError> {
    match source {
        AgentSource::Worktrees => Ok((agents::from_worktrees(repo)?, Vec::new())),
        AgentSource::BranchGlob(glob) => Ok((agents::from_branches(repo, glob)?, Vec::new())),
        AgentSource::Branches(names) => Ok((from_branch_list(repo, names)?, Vec::new())),
        AgentSource::List(list) => Ok(from_listed(repo, list)?),
        AgentSource::Results(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| AgentsError::BadResults {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            Ok((agents::from_results(path, &text)?, Vec::new()))
        }
        AgentSource::Plan { state_dir, plan } => {
            let dir = StateDir::new(state_dir.clone());
            let id = baton_plan::store::resolve_plan_id(&dir, plan)?;
            let plan = baton_plan::store::load_stored(&dir, &id)?;
            let exec_path = dir.execution(id.as_str());
            let execution: Option<baton_plan::Execution> = if exec_path.exists() {
                Some(baton_store::read_versioned(&exec_path)?)
            } else {
                None
            };
            Ok(agents::from_plan(repo, &id, &plan, execution.as_ref())?)
        }
    }
}

/// The listed agents; those whose branch does not exist are returned by id as not started.
fn from_listed(
    repo: &git2::Repository,
    list: &[ListedAgent],
) -> Result<(Vec<AgentSpec>, Vec<String>), AgentsError> {
    let worktrees = baton_git::worktrees::list_worktrees(repo)?;
    let mut out = Vec::new();
    let mut not_started = Vec::new();
    for a in list {
        let Ok(branch) = repo.find_branch(&a.branch, git2::BranchType::Local) else {
            not_started.push(a.id.clone());
            continue;
        };
        let base = a
            .base
            .as_deref()
            .map(|rev| {
                baton_git::resolve_commit(repo, rev).map_err(|e| AgentsError::BadBase {
                    agent: a.id.clone(),
                    rev: rev.to_owned(),
                    reason: e.to_string(),
                })
            })
            .transpose()?;
        out.push(AgentSpec {
            id: a.id.clone(),
            branch: Some(a.branch.clone()),
            tip: branch.get().target(),
            worktree: worktrees
                .iter()
                .find(|w| !w.is_main() && !w.prunable && w.head.branch() == Some(a.branch.as_str()))
                .map(|w| w.path.clone()),
            scope: (!a.scope.is_empty()).then(|| a.scope.clone()),
            declared_files: None,
            base,
        });
    }
    Ok((out, not_started))
}

/// Exactly the named local branches, each with its worktree when one has it checked out.
fn from_branch_list(
    repo: &git2::Repository,
    names: &[String],
) -> Result<Vec<AgentSpec>, AgentsError> {
    let worktrees = baton_git::worktrees::list_worktrees(repo)?;
    let mut out: Vec<AgentSpec> = Vec::new();
    for name in names {
        let Ok(branch) = repo.find_branch(name, git2::BranchType::Local) else {
            return Err(AgentsError::NoBranch { glob: name.clone() });
        };
        let id = agents::agent_id_of_branch(name);
        let id = if out.iter().any(|a| a.id == id) {
            name.clone()
        } else {
            id
        };
        out.push(AgentSpec {
            id,
            branch: Some(name.clone()),
            tip: branch.get().target(),
            worktree: worktrees
                .iter()
                .find(|w| !w.is_main() && !w.prunable && w.head.branch() == Some(name.as_str()))
                .map(|w| w.path.clone()),
            scope: None,
            declared_files: None,
            base: None,
        });
    }
    Ok(out)
}
