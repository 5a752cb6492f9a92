//! What may happen now: pure decisions over the plan, the execution and the runner's state
//! (backoff due times and the breaker, persisted in the execution; the resource gate; Ctrl-C).
//!
//! [`decide`] is called after every event; the runner applies the steps it returns (each one a
//! persisted transition) and calls it again until it returns none, then waits for the next
//! event or the earliest due time.

use std::collections::{BTreeMap, BTreeSet};

use baton_plan::execution::{AgentState, BatchState};
use baton_plan::glob::globs_overlap;
use baton_plan::{AgentId, BatchId, BatchKind, ErrorClass, Execution, Plan, Status};
use serde::Serialize;

/// Pairs of agents whose write scopes overlap (some path matches a glob of each): they never
/// run at the same time. Computed once per plan.
#[derive(Debug, Clone, Default)]
pub struct Overlaps(BTreeMap<AgentId, BTreeSet<AgentId>>);

impl Overlaps {
    pub fn of(plan: &Plan) -> Self {
        let agents: Vec<_> = plan.agents().map(|(_, a)| a).collect();
        let mut map: BTreeMap<AgentId, BTreeSet<AgentId>> = BTreeMap::new();
        for (i, a) in agents.iter().enumerate() {
            for b in &agents[i + 1..] {
                let overlap = a
                    .scope
                    .files_write
                    .iter()
                    .any(|x| b.scope.files_write.iter().any(|y| globs_overlap(x, y)));
                if overlap {
                    map.entry(a.id.clone()).or_default().insert(b.id.clone());
                    map.entry(b.id.clone()).or_default().insert(a.id.clone());
                }
            }
        }
        Overlaps(map)
    }

    pub fn with(&self, agent: &AgentId) -> impl Iterator<Item = &AgentId> {
        self.0.get(agent).into_iter().flatten()
    }

    pub fn overlap(&self, a: &AgentId, b: &AgentId) -> bool {
        self.0.get(a).is_some_and(|s| s.contains(b))
    }
}

/// The runner's state that the execution file does not hold.
#[derive(Debug, Clone)]
pub struct Gate<'a> {
    /// Wall-clock milliseconds since the Unix epoch (due times are persisted in these).
    pub now_ms: u64,
    pub max_parallel: usize,
    /// Agents that may not start before this time (backoff after a failure).
    pub not_before: &'a BTreeMap<AgentId, u64>,
    /// Why nothing new may start (the first Ctrl-C, an open breaker); `None` when launching.
    pub stopped: Option<&'a str>,
    /// Why the machine is too busy for another agent (free memory, load); `None` when it is not.
    pub busy: Option<&'a str>,
    /// Retries of an agent when the plan says nothing.
    pub default_retries: u32,
}

/// One transition the runner should make now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Every dependency succeeded.
    StartBatch(BatchId),
    /// A dependency failed or was skipped: the batch can never run.
    SkipBatch(BatchId),
    /// Start the next attempt of an agent of a running batch.
    Launch { batch: BatchId, agent: AgentId },
    /// Every agent of the batch succeeded: run its gate.
    GateBatch(BatchId),
    /// An agent failed for good and nothing of the batch runs any more.
    FailBatch(BatchId),
}

/// Why an agent that wants to run does not start yet (shown to the user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Wait {
    /// Its write scope overlaps that of a running agent.
    Scope { agent: AgentId, with: AgentId },
    /// Backing off after a failure.
    Backoff { agent: AgentId, until_ms: u64 },
    /// Every slot is taken.
    Slots { agent: AgentId },
    /// Free memory or load is past its limit.
    Busy { agent: AgentId, why: String },
    /// Launching stopped (Ctrl-C, breaker).
    Stopped { agent: AgentId, why: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    pub steps: Vec<Step>,
    pub waits: Vec<Wait>,
}

impl Decision {
    /// The earliest backoff due time among the waits.
    pub fn next_due_ms(&self) -> Option<u64> {
        self.waits
            .iter()
            .filter_map(|w| match w {
                Wait::Backoff { until_ms, .. } => Some(*until_ms),
                _ => None,
            })
            .min()
    }
}

/// Where an agent is in its life, as far as scheduling goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Wants its first attempt, a retry, or a rerun the gate asked for.
    Wants,
    Running,
    Succeeded,
    /// Failed with no retry left: its batch fails.
    Exhausted,
}

/// Classes that are re-run on resume whatever the retry budget: the attempt was stopped by
/// the user or never started, the agent itself did not fail. `gate_failed` marks an agent
/// the gate sent back.
fn reruns_always(class: Option<ErrorClass>) -> bool {
    matches!(
        class,
        Some(ErrorClass::Interrupted | ErrorClass::GateFailed)
    )
}

/// Retries the agent's attempt count still allows.
pub fn phase(state: &AgentState, retries: u32) -> Phase {
    match state.status {
        Status::Pending => Phase::Wants,
        Status::Running => Phase::Running,
        Status::Succeeded => Phase::Succeeded,
        Status::Failed => {
            let class = state.result.as_ref().and_then(|r| r.error_class);
            if reruns_always(class) || state.attempt <= retries {
                Phase::Wants
            } else {
                Phase::Exhausted
            }
        }
        Status::Skipped | Status::Cancelled => Phase::Exhausted,
    }
}

/// The retries of an agent: its own, else the plan's default, else `fallback`.
pub fn retries_of(plan: &Plan, agent: &AgentId, fallback: u32) -> u32 {
    plan.agent(agent)
        .and_then(|(_, a)| a.retries)
        .or(plan.defaults.retries)
        .unwrap_or(fallback)
}

/// What may happen now.
pub fn decide(plan: &Plan, exec: &Execution, overlaps: &Overlaps, gate: &Gate) -> Decision {
    let mut out = Decision::default();
    let mut running: Vec<&AgentId> = exec
        .batches
        .iter()
        .flat_map(|b| &b.agents)
        .filter(|a| a.status == Status::Running)
        .map(|a| &a.id)
        .collect();

    for batch in &plan.batches {
        let Some(state) = exec.batch(&batch.id) else {
            continue;
        };
        match state.status {
            Status::Pending => {
                let deps: Vec<Status> = batch
                    .depends_on
                    .iter()
                    .map(|d| exec.batch(d).map_or(Status::Skipped, |s| s.status))
                    .collect();
                if deps
                    .iter()
                    .any(|s| s.is_finished() && *s != Status::Succeeded)
                {
                    out.steps.push(Step::SkipBatch(batch.id.clone()));
                } else if deps.iter().all(|s| *s == Status::Succeeded) && gate.stopped.is_none() {
                    out.steps.push(Step::StartBatch(batch.id.clone()));
                }
            }
            Status::Running => {
                decide_batch(plan, batch, state, overlaps, gate, &mut running, &mut out)
            }
            _ => {}
        }
    }
    out
}

fn decide_batch<'e>(
    plan: &Plan,
    batch: &baton_plan::Batch,
    state: &'e BatchState,
    overlaps: &Overlaps,
    gate: &Gate,
    running: &mut Vec<&'e AgentId>,
    out: &mut Decision,
) {
    let kind = batch.kind;
    // the batch's own agents, looked up once (not a search of the plan per agent per wake-up)
    let own: std::collections::HashMap<&AgentId, Option<u32>> =
        batch.agents.iter().map(|a| (&a.id, a.retries)).collect();
    let phases: Vec<(&AgentState, Phase)> = state
        .agents
        .iter()
        .map(|a| {
            let retries = match own.get(&a.id) {
                Some(r) => r.or(plan.defaults.retries).unwrap_or(gate.default_retries),
                None => retries_of(plan, &a.id, gate.default_retries),
            };
            (a, phase(a, retries))
        })
        .collect();
    let any_running = phases.iter().any(|(_, p)| *p == Phase::Running);
    if phases.iter().any(|(_, p)| *p == Phase::Exhausted) {
        if !any_running {
            out.steps.push(Step::FailBatch(state.id.clone()));
        }
        return;
    }
    if phases.iter().all(|(_, p)| *p == Phase::Succeeded) {
        out.steps.push(Step::GateBatch(state.id.clone()));
        return;
    }
    if kind == BatchKind::Sequential && any_running {
        return;
    }
    let wanting = phases.iter().filter(|(_, p)| *p == Phase::Wants);
    for (agent, _) in wanting {
        let id = &agent.id;
        let wait = if let Some(why) = gate.stopped {
            Some(Wait::Stopped {
                agent: id.clone(),
                why: why.to_owned(),
            })
        } else if let Some(&until_ms) = gate.not_before.get(id).filter(|&&t| t > gate.now_ms) {
            Some(Wait::Backoff {
                agent: id.clone(),
                until_ms,
            })
        } else if let Some(with) = running.iter().find(|r| overlaps.overlap(id, r)) {
            Some(Wait::Scope {
                agent: id.clone(),
                with: (*with).clone(),
            })
        } else if running.len() >= gate.max_parallel.max(1) {
            Some(Wait::Slots { agent: id.clone() })
        } else {
            gate.busy.map(|why| Wait::Busy {
                agent: id.clone(),
                why: why.to_owned(),
            })
        };
        match wait {
            Some(w) => out.waits.push(w),
            None => {
                running.push(id);
                out.steps.push(Step::Launch {
                    batch: state.id.clone(),
                    agent: id.clone(),
                });
            }
        }
        if kind == BatchKind::Sequential {
            // one at a time, in the order written: the first that wants to run is the next
            break;
        }
    }
}

#[cfg(test)]
#[path = "sched_tests.rs"]
mod tests;
