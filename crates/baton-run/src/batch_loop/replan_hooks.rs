//! A replan in the loop: after a failed gate the agents the findings name are re-run one
//! after another — the first on the integration tip with the kept agents' work merged, each
//! next one on the new work of the one before it — and the batch is gated once the last one
//! finished. Each restart is recorded (the execution's replans, the batch's integration
//! state, a `replan` metrics event) before its branch moves, and the branch is moved again
//! when an attempt starts if a crash came in between.

use baton_plan::{AgentId, BatchId, ErrorClass, GateVerdict};

use super::{LoopHooks, open};
use crate::hooks::AgentContext;
use crate::integrate::{self, IntegrateError, MergeResult};
use crate::replan::{self, Decision};

impl LoopHooks {
    /// After a failed gate: decide by the plan's policy and, for a replan, restart the first
    /// named agent on the integration tip with the others' work merged; the other named
    /// agents wait their turn ([`LoopHooks::next_replanned`]). Returns the decision, with
    /// only the agent to run now in `Decision::Rerun`.
    pub fn handle_failure(
        &self,
        batch: &BatchId,
        verdict: &GateVerdict,
    ) -> Result<Decision, IntegrateError> {
        let exec = self.tracker.load()?;
        let integration = exec.batch(batch).and_then(|b| b.integration.clone());
        let replans = integration.as_ref().map_or(0, |i| i.replans);
        let agents = self.gate_agents(batch)?;
        let ids: Vec<AgentId> = agents.iter().map(|a| a.id.clone()).collect();
        let decision = replan::decide(
            self.plan.on_gate_failure,
            self.plan.max_replans.unwrap_or(1),
            replans,
            verdict,
            &ids,
        );
        let Decision::Rerun(rerun) = &decision else {
            return Ok(decision);
        };
        let repo = open(&self.repo)?;
        let tip = integrate::integration_tip(&repo, &self.plan_id)?.ok_or_else(|| {
            IntegrateError::Git {
                action: "replan".into(),
                message: "the integration branch does not exist".into(),
            }
        })?;
        let mut kept = Vec::new();
        for a in agents.iter().filter(|a| !rerun.contains(&a.id)) {
            if let Some(oid) = branch_tip(&repo, &a.branch) {
                kept.push((a.id.clone(), oid));
            }
        }
        let base = match replan::rerun_base(&repo, &self.plan_id, batch, tip, &kept)? {
            MergeResult::Merged(oid) => oid,
            MergeResult::Conflicts(paths) => {
                return Ok(Decision::Stop {
                    why: format!(
                        "the agents that are kept do not merge with each other ({})",
                        paths
                            .iter()
                            .map(|(p, _)| p.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        };
        let n = replans + 1;
        // the work the gate rejected must not come back from the cache
        if let Some(cache) = &self.cache {
            for a in rerun {
                cache.forget_last(a.as_str());
            }
        }
        let first = rerun[0].clone();
        let mut state = integration.unwrap_or_default();
        state.replans = n;
        state.replan_base = Some(base.to_string());
        state.replanned = rerun.clone();
        state.replan_bases = [(first.clone(), base.to_string())].into();
        state.replan_queue = rerun[1..].to_vec();
        let then = if rerun.len() > 1 {
            format!(
                "; then, one after another, {}",
                names(&rerun[1..]).join(", ")
            )
        } else {
            String::new()
        };
        let reason = format!(
            "batch {batch} failed its gate; re-running {first} (1 of {}) with the findings, on the integration tip with the others' work merged{then}",
            rerun.len()
        );
        self.restart(batch, &first, state, &reason, base, 1, rerun.len())?;
        Ok(Decision::Rerun(vec![first]))
    }

    /// During a replan, once the agent re-run last has finished: restart the next agent in
    /// line on that agent's new work, and return it. `None` when no agent waits (the batch
    /// is to be gated).
    pub fn next_replanned(&self, batch: &BatchId) -> Result<Option<AgentId>, IntegrateError> {
        let exec = self.tracker.load()?;
        let Some(mut state) = exec.batch(batch).and_then(|b| b.integration.clone()) else {
            return Ok(None);
        };
        if state.advanced || state.replan_queue.is_empty() {
            return Ok(None);
        }
        let next = state.replan_queue.remove(0);
        let position = state.replanned.iter().position(|a| *a == next).unwrap_or(0);
        let before = position
            .checked_sub(1)
            .and_then(|i| state.replanned.get(i))
            .cloned()
            .ok_or_else(|| IntegrateError::Git {
                action: format!("replan agent {next}"),
                message: "the execution names no agent re-run before it".into(),
            })?;
        let agents = self.gate_agents(batch)?;
        let branch = |id: &AgentId| {
            agents
                .iter()
                .find(|a| &a.id == id)
                .map(|a| a.branch.clone())
        };
        let repo = open(&self.repo)?;
        let base = branch(&before)
            .and_then(|b| branch_tip(&repo, &b))
            .ok_or_else(|| IntegrateError::MissingBranch {
                agent: before.clone(),
                branch: branch(&before).unwrap_or_default(),
            })?;
        state.replan_bases.insert(next.clone(), base.to_string());
        let reason = format!(
            "batch {batch}: {before} finished its re-run; re-running {next} ({} of {}) on top of its new work",
            position + 1,
            state.replanned.len()
        );
        let total = state.replanned.len();
        self.restart(batch, &next, state, &reason, base, position + 1, total)?;
        Ok(Some(next))
    }

    /// Record a restart (the batch's state, the execution's replans, the agent reopened)
    /// in one write, then move the agent's branch and worktree to `base`.
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site per kind of restart"
    )]
    fn restart(
        &self,
        batch: &BatchId,
        agent: &AgentId,
        state: baton_plan::Integration,
        reason: &str,
        base: git2::Oid,
        position: usize,
        of: usize,
    ) -> Result<(), IntegrateError> {
        let n = state.replans;
        let plan = self.plan.clone();
        self.tracker.update(|e, now| {
            e.set_integration(batch, state, now)?;
            e.record_replan(&plan, reason, now);
            e.reopen_agent(batch, agent, ErrorClass::GateFailed, now)
        })?;
        self.event("replan", batch, |e| {
            e.agent = Some(agent.to_string());
            e.details.insert("replan".into(), n.to_string());
            e.details
                .insert("order".into(), format!("{position} of {of}"));
            e.details.insert("base".into(), base.to_string());
        });
        if let Some(hook) = &self.after_step {
            hook(batch, &format!("replan-{agent}"));
        }
        self.move_to_base(batch, agent, base, n)
    }

    fn move_to_base(
        &self,
        batch: &BatchId,
        agent: &AgentId,
        base: git2::Oid,
        n: u32,
    ) -> Result<(), IntegrateError> {
        let agents = self.gate_agents(batch)?;
        let Some(a) = agents.iter().find(|a| &a.id == agent) else {
            return Ok(());
        };
        let repo = open(&self.repo)?;
        if branch_tip(&repo, &a.branch) == Some(base) {
            return Ok(());
        }
        replan::restart_agent_at(
            &repo,
            &self.plan_id,
            agent,
            &a.branch,
            a.worktree.as_deref(),
            base,
            n,
        )
    }

    /// Before an attempt of an agent a replan sent back: if its branch does not contain the
    /// base the replan recorded for it (a crash came between the record and the move), move
    /// it there now.
    pub fn ensure_restarted(&self, ctx: &AgentContext) -> Result<(), IntegrateError> {
        if !self.tracker.path().exists() {
            return Ok(());
        }
        let exec = self.tracker.load()?;
        let Some(state) = exec.batch(&ctx.batch).and_then(|b| b.integration.as_ref()) else {
            return Ok(());
        };
        let Some(base) = state
            .replan_bases
            .get(&ctx.agent)
            .and_then(|b| git2::Oid::from_str(b).ok())
        else {
            return Ok(());
        };
        if state.advanced {
            return Ok(());
        }
        let repo = open(&self.repo)?;
        let Some(branch) = ctx.branch.as_deref() else {
            return Ok(());
        };
        let Some(tip) = branch_tip(&repo, branch) else {
            return Ok(());
        };
        let contains = tip == base || repo.graph_descendant_of(tip, base).unwrap_or(false);
        if contains {
            return Ok(());
        }
        self.move_to_base(&ctx.batch, &ctx.agent, base, state.replans)
    }
}

fn branch_tip(repo: &git2::Repository, branch: &str) -> Option<git2::Oid> {
    repo.find_reference(&format!("refs/heads/{branch}"))
        .ok()
        .and_then(|r| r.target())
}

fn names(ids: &[AgentId]) -> Vec<&str> {
    ids.iter().map(AgentId::as_str).collect()
}
