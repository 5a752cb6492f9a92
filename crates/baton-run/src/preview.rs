//! `baton run --dry-run`: the schedule without running anything — the levels of the batch
//! graph, what runs together, which agents are serialised by overlapping write scopes, and
//! each agent's rendered argv, directory and branch.

use std::path::{Path, PathBuf};

use baton_plan::model::Isolation;
use baton_plan::{AgentId, BatchId, BatchKind, Plan, PlanId};
use serde::Serialize;

use crate::attempt::{self, SpecInput};
use crate::sched::Overlaps;

#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    pub plan: PlanId,
    pub max_parallel: usize,
    /// Level k holds batches whose dependencies are all on earlier levels; batches of one
    /// level may run together.
    pub levels: Vec<Vec<BatchId>>,
    pub batches: Vec<BatchPreview>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BatchPreview {
    pub id: BatchId,
    pub kind: BatchKind,
    pub depends_on: Vec<BatchId>,
    pub agents: Vec<AgentPreview>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentPreview {
    pub id: AgentId,
    pub argv: Vec<String>,
    pub isolation: Isolation,
    pub cwd: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Agents whose write scopes overlap this one's: never run at the same time.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub serialised_with: Vec<AgentId>,
}

/// The schedule of a (validated) plan. `worktree_of` says where an isolated agent's worktree
/// and branch would be.
pub fn preview(
    plan: &Plan,
    plan_id: &PlanId,
    max_parallel: usize,
    repo_root: &Path,
    logs_dir: &Path,
    worktree_of: &dyn Fn(&AgentId) -> (PathBuf, String),
) -> Preview {
    let overlaps = Overlaps::of(plan);
    let batches = plan
        .batches
        .iter()
        .map(|b| BatchPreview {
            id: b.id.clone(),
            kind: b.kind,
            depends_on: b.depends_on.clone(),
            agents: b
                .agents
                .iter()
                .map(|a| {
                    let isolation = attempt::isolation_of(plan, a);
                    let (cwd, branch) = match isolation {
                        Isolation::Worktree => {
                            let (d, br) = worktree_of(&a.id);
                            (d, Some(br))
                        }
                        Isolation::None => (repo_root.to_path_buf(), None),
                    };
                    let (spec, _) = attempt::spec(&SpecInput {
                        plan,
                        plan_id,
                        batch: &b.id,
                        agent: a,
                        attempt: 1,
                        cwd: &cwd,
                        branch: branch.as_deref(),
                        logs_dir,
                    });
                    AgentPreview {
                        id: a.id.clone(),
                        argv: spec.argv,
                        isolation,
                        cwd,
                        branch,
                        serialised_with: overlaps.with(&a.id).cloned().collect(),
                    }
                })
                .collect(),
        })
        .collect();
    Preview {
        plan: plan_id.clone(),
        max_parallel,
        levels: baton_plan::dag::levels(&plan.batches).unwrap_or_default(),
        batches,
    }
}
