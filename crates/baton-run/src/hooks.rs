//! Where the batch loop (commit each agent's work, gate the batch, merge it into the plan's
//! integration branch, test the merged result) plugs into the runner. The runner calls these at
//! fixed points; [`NoHooks`] is the loop-less runner.

use std::collections::BTreeMap;
use std::path::PathBuf;

use baton_plan::{AgentId, BatchId, Execution, PlanId};

/// An agent attempt that just ended.
#[derive(Debug, Clone)]
pub struct AgentContext {
    pub plan: PlanId,
    pub batch: BatchId,
    pub agent: AgentId,
    pub attempt: u32,
    /// `None` for `isolation = "none"`.
    pub worktree: Option<PathBuf>,
    pub branch: Option<String>,
    pub succeeded: bool,
}

/// A batch whose agents have all finished.
#[derive(Debug, Clone)]
pub struct BatchContext {
    pub plan: PlanId,
    pub batch: BatchId,
    /// The batch's agents, in plan order, with their branches where they have one.
    pub agents: Vec<(AgentId, Option<String>)>,
    /// How many more gate failures this run may still send agents back for
    /// (`--replan-budget`); at 0 a failed gate fails the batch.
    pub replans_left: u32,
}

/// What the gate decided for a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum GateDecision {
    /// The batch succeeded (and, in the batch loop, was integrated).
    Pass,
    /// The batch failed its gate. `rerun` names the agents to run again (a replan); empty
    /// means the batch fails.
    Fail {
        report: Option<PathBuf>,
        findings: String,
        rerun: Vec<AgentId>,
    },
    /// Not gated yet: a replan re-runs its agents one after another, and these run next (the
    /// replan was counted when the gate failed).
    Continue { rerun: Vec<AgentId> },
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HookError(pub String);

/// What the batch loop adds to an attempt about to start: placeholders for its prompt and
/// command (`outputs.<agent>`, `files.<agent>`, `gate_findings`) and environment
/// (`BATON_GATE_REPORT`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentVars {
    pub placeholders: BTreeMap<String, String>,
    pub env: BTreeMap<String, String>,
}

pub trait BatchHooks: Send + Sync {
    /// The branch or commit a batch's agents start from (the integration branch in the loop).
    fn base_for(&self, _plan: &PlanId, _batch: &BatchId) -> Result<Option<String>, HookError> {
        Ok(None)
    }
    /// Attempts of `starts` (batch, agent) are about to start, `exec` being the runner's
    /// current state: for each, the results of upstream agents and, after a failed gate, the
    /// findings it must address.
    fn agent_vars(
        &self,
        _plan: &PlanId,
        _exec: &Execution,
        starts: &[(&BatchId, &AgentId)],
    ) -> Vec<Result<AgentVars, HookError>> {
        starts.iter().map(|_| Ok(AgentVars::default())).collect()
    }
    /// An attempt is about to start in its prepared worktree: `true` when the output cache
    /// applied an earlier identical success to its branch, so the runner records the attempt
    /// as succeeded without running it.
    fn cached(&self, _ctx: &AgentContext) -> Result<bool, HookError> {
        Ok(false)
    }
    /// An attempt ended: commit what it left in its worktree, read its result file.
    fn after_agent(&self, _ctx: &AgentContext) -> Result<(), HookError> {
        Ok(())
    }
    /// Every agent of the batch finished successfully: gate it (and integrate it).
    fn after_batch(&self, _ctx: &BatchContext) -> Result<GateDecision, HookError> {
        Ok(GateDecision::Pass)
    }
}

/// The runner without a batch loop: every batch whose agents succeeded succeeds.
pub struct NoHooks;

impl BatchHooks for NoHooks {}
