//! Execution state: the live state of one run of a plan, and its transitions.
//!
//! Transitions are pure methods on [`Execution`] that refuse impossible moves (starting a batch
//! whose dependencies have not succeeded, recording a result for an agent that is not running).
//! [`crate::ExecutionTracker`] applies them under the file lock and persists after each one.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, BatchId, PlanId};
use crate::model::Plan;
use crate::status::{AgentResult, Status};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Execution {
    pub schema_version: u32,
    pub plan_id: PlanId,
    pub status: Status,
    pub started_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Bumped by every persisted transition; lets readers and tests see that no update was lost.
    pub revision: u64,
    /// In plan order.
    pub batches: Vec<BatchState>,
    #[serde(default)]
    pub replans: Vec<Replan>,
    /// The `baton run` process driving this execution while it runs; a resumed run checks it
    /// is gone (pid + start time) before taking over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<ProcessRef>,
    /// The circuit breaker's state (failures in a row, an open trip and its cooldown), so a
    /// resumed run neither forgets a rate limit's pause nor restarts the count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker: Option<BreakerState>,
    /// Failed gates that sent agents back for another attempt, counted against the run's
    /// `--replan-budget` across resumes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub gate_reruns: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The circuit breaker as persisted: the streak of distinct agents failing in a row with one
/// environment-level class, how often it tripped, and the open trip if launching is stopped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerState {
    /// The class of the current streak and the distinct agents in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<crate::status::ErrorClass>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<AgentId>,
    /// Trips since the last success (each rate-limit pause doubles the one before).
    #[serde(default)]
    pub trips: u32,
    /// Launching is stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<BreakerTrip>,
}

/// An open breaker: which class and agents tripped it, and when (RFC 3339) launching may try
/// again — none for a missing command, which waits for a fix and `--resume`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerTrip {
    pub class: crate::status::ErrorClass,
    pub agents: Vec<AgentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

impl baton_store::Versioned for Execution {
    const SCHEMA_VERSION: u32 = Execution::SCHEMA_VERSION;
    fn schema_version(&self) -> u32 {
        self.schema_version
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchState {
    pub id: BatchId,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// In plan order.
    pub agents: Vec<AgentState>,
    /// The batch loop's progress on this batch (gate, merge, merged tests, advance), so a
    /// resumed run continues after the last finished step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration: Option<Integration>,
    /// When `baton worktree cleanup --batch` last removed worktrees of this batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleaned_up_at: Option<String>,
}

/// One batch's way into the plan's integration branch. Steps are recorded as they finish; a
/// step is never repeated once recorded for the same `base`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Integration {
    /// `baton/<plan>/integration`.
    pub branch: String,
    /// The integration tip the batch is being integrated onto (the compare-and-swap's old
    /// value).
    pub base: String,
    /// The commit merging the agents' branches onto `base`, once made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<String>,
    /// Whether the tests passed on `merged`, once they ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tested: Option<bool>,
    /// The integration branch points at `merged`.
    #[serde(default)]
    pub advanced: bool,
    /// Every gate verdict of the batch, oldest first (a replan adds one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateVerdict>,
    /// How many times the batch was sent back after a failed gate.
    #[serde(default)]
    pub replans: u32,
    /// After a replan: where the agents sent back restarted (the tip with the others' work
    /// merged); the next gate measures their changes from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replan_base: Option<String>,
    /// After a replan: the agents sent back, the only ones the next gate compares.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replanned: Vec<AgentId>,
    /// After a replan: where each agent sent back restarted. The first starts from
    /// `replan_base`; each next one from the new work of the one before it, so it sees that
    /// work, and the gate measures its changes from here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub replan_bases: BTreeMap<AgentId, String>,
    /// After a replan: the agents sent back that have not restarted yet, in order; each
    /// restarts when the one before it finished.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replan_queue: Vec<AgentId>,
    /// The gate's checks before the merge passed on `base` for these agent tips; a resumed
    /// run goes straight to the merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gated: Option<GatePassed>,
    /// Tasks of the batch that a task backend failed to mark done; retried when the plan
    /// runs again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks_open: Vec<TaskRef>,
}

/// The gate's checks before the merge passed (see [`Integration::gated`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatePassed {
    /// The report of those checks (the batch's report is completed in place).
    pub report: PathBuf,
    /// The agents' branch tips that were gated.
    pub tips: BTreeMap<AgentId, String>,
}

/// A task of a backend (see [`Integration::tasks_open`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskRef {
    pub backend: String,
    pub id: String,
    /// Why the backend did not mark it done.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// What one gate of a batch decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateVerdict {
    pub at: String,
    pub passed: bool,
    /// The step that failed: `gate`, `merge` or `tests`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<String>,
    /// One line per error finding.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<String>,
    /// Agents the findings name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<AgentId>,
    /// The full verify report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentState {
    pub id: AgentId,
    pub status: Status,
    /// 0 before the first attempt.
    pub attempt: u32,
    /// The live process, so a resumed run can tell whether it still runs: the pid alone may
    /// have been reused, the pair (pid, start time) is unique.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessRef>,
    /// Where the running attempt runs (a local process group, a Slurm job), persisted before
    /// the runner waits on it so a resumed runner adopts it instead of starting another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<AttemptHandle>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worktree: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<AgentResult>,
    /// After a failed attempt with retries left: the next one starts no earlier than this
    /// (RFC 3339), so a resumed run keeps the backoff instead of retrying at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<String>,
    /// The runner is stopping the running attempt, for this class (a timeout, Ctrl-C):
    /// persisted before the stop is sent, so a resumed runner finishes it and records it as
    /// what it was, not as an interruption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopping: Option<crate::status::ErrorClass>,
}

/// A process identity that survives pid reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessRef {
    pub pid: u32,
    /// Start time in clock ticks since boot (Linux `/proc/<pid>/stat` field 22).
    pub start_time: u64,
}

/// Where an attempt runs, as persisted in the execution next to the attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AttemptHandle {
    /// A process group led by `pid`; `start_time` (clock ticks since boot, `/proc/<pid>/stat`
    /// field 22) makes the identity survive pid reuse.
    Local { pid: u32, start_time: u64 },
    /// A Slurm job.
    Slurm { job_id: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replan {
    pub at: String,
    pub reason: String,
    /// Batches added, removed or changed by the replan.
    #[serde(default)]
    pub batches: Vec<BatchId>,
}

/// Where an agent runs, recorded when it starts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentStart {
    pub process: Option<ProcessRef>,
    pub worktree: Option<PathBuf>,
    pub branch: Option<String>,
}

/// A transition that the current state does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("batch {0} is not part of this execution")]
    UnknownBatch(BatchId),
    #[error("agent {agent} is not part of batch {batch}")]
    UnknownAgent { batch: BatchId, agent: AgentId },
    #[error("batch {batch} cannot start: dependency {dependency} is {status}, not succeeded")]
    DependencyNotDone {
        batch: BatchId,
        dependency: BatchId,
        status: &'static str,
    },
    #[error("{what} is {status}; {action} is not possible now")]
    BadState {
        what: String,
        status: &'static str,
        action: &'static str,
    },
}

impl Execution {
    pub const SCHEMA_VERSION: u32 = 1;

    /// A fresh execution of `plan`: everything pending. `now` is an RFC 3339 time.
    pub fn new(plan_id: PlanId, plan: &Plan, now: &str) -> Self {
        Execution {
            schema_version: Self::SCHEMA_VERSION,
            plan_id,
            status: Status::Pending,
            started_at: now.to_owned(),
            updated_at: now.to_owned(),
            finished_at: None,
            revision: 0,
            batches: plan
                .batches
                .iter()
                .map(|b| BatchState {
                    id: b.id.clone(),
                    status: Status::Pending,
                    started_at: None,
                    finished_at: None,
                    cleaned_up_at: None,
                    agents: b
                        .agents
                        .iter()
                        .map(|a| AgentState {
                            id: a.id.clone(),
                            status: Status::Pending,
                            attempt: 0,
                            process: None,
                            handle: None,
                            worktree: None,
                            branch: None,
                            started_at: None,
                            finished_at: None,
                            result: None,
                            retry_at: None,
                            stopping: None,
                        })
                        .collect(),
                    integration: None,
                })
                .collect(),
            replans: Vec::new(),
            runner: None,
            breaker: None,
            gate_reruns: 0,
        }
    }

    pub fn batch(&self, id: &BatchId) -> Option<&BatchState> {
        self.batches.iter().find(|b| &b.id == id)
    }

    fn batch_mut(&mut self, id: &BatchId) -> Result<&mut BatchState, TransitionError> {
        self.batches
            .iter_mut()
            .find(|b| &b.id == id)
            .ok_or_else(|| TransitionError::UnknownBatch(id.clone()))
    }

    fn agent_mut(
        &mut self,
        batch: &BatchId,
        agent: &AgentId,
    ) -> Result<&mut AgentState, TransitionError> {
        self.batch_mut(batch)?
            .agents
            .iter_mut()
            .find(|a| &a.id == agent)
            .ok_or_else(|| TransitionError::UnknownAgent {
                batch: batch.clone(),
                agent: agent.clone(),
            })
    }

    /// Batches whose dependencies have all succeeded and that have not started.
    pub fn ready_batches<'p>(&self, plan: &'p Plan) -> Vec<&'p BatchId> {
        plan.batches
            .iter()
            .filter(|b| {
                self.batch(&b.id)
                    .is_some_and(|s| s.status == Status::Pending)
            })
            .filter(|b| {
                b.depends_on
                    .iter()
                    .all(|d| self.batch(d).is_some_and(|s| s.status == Status::Succeeded))
            })
            .map(|b| &b.id)
            .collect()
    }

    fn touch(&mut self, now: &str) {
        self.updated_at = now.to_owned();
    }

    pub fn start_batch(
        &mut self,
        plan: &Plan,
        batch: &BatchId,
        now: &str,
    ) -> Result<(), TransitionError> {
        let deps = plan
            .batch(batch)
            .ok_or_else(|| TransitionError::UnknownBatch(batch.clone()))?
            .depends_on
            .clone();
        for dep in deps {
            let status = self
                .batch(&dep)
                .ok_or_else(|| TransitionError::UnknownBatch(dep.clone()))?
                .status;
            if status != Status::Succeeded {
                return Err(TransitionError::DependencyNotDone {
                    batch: batch.clone(),
                    dependency: dep,
                    status: status.as_str(),
                });
            }
        }
        let state = self.batch_mut(batch)?;
        if state.status != Status::Pending {
            return Err(TransitionError::BadState {
                what: format!("batch {batch}"),
                status: state.status.as_str(),
                action: "starting it",
            });
        }
        state.status = Status::Running;
        state.started_at = Some(now.to_owned());
        self.status = Status::Running;
        self.touch(now);
        Ok(())
    }

    /// An attempt of an agent starts (the first, or a retry after a failure).
    pub fn start_agent(
        &mut self,
        batch: &BatchId,
        agent: &AgentId,
        start: AgentStart,
        now: &str,
    ) -> Result<u32, TransitionError> {
        let batch_status = self.batch_mut(batch)?.status;
        if batch_status != Status::Running {
            return Err(TransitionError::BadState {
                what: format!("batch {batch}"),
                status: batch_status.as_str(),
                action: "starting an agent in it",
            });
        }
        let state = self.agent_mut(batch, agent)?;
        if !matches!(state.status, Status::Pending | Status::Failed) {
            return Err(TransitionError::BadState {
                what: format!("agent {agent}"),
                status: state.status.as_str(),
                action: "starting it",
            });
        }
        state.status = Status::Running;
        state.attempt += 1;
        state.process = start.process;
        state.handle = None;
        state.worktree = start.worktree;
        state.branch = start.branch;
        state.started_at = Some(now.to_owned());
        state.finished_at = None;
        state.retry_at = None;
        state.stopping = None;
        let attempt = state.attempt;
        self.touch(now);
        Ok(attempt)
    }

    /// The running attempt of an agent was started (or found again) here; persisted before
    /// anything waits on it.
    pub fn set_handle(
        &mut self,
        batch: &BatchId,
        agent: &AgentId,
        handle: AttemptHandle,
        now: &str,
    ) -> Result<(), TransitionError> {
        let state = self.agent_mut(batch, agent)?;
        if state.status != Status::Running {
            return Err(TransitionError::BadState {
                what: format!("agent {agent}"),
                status: state.status.as_str(),
                action: "recording where it runs",
            });
        }
        if let AttemptHandle::Local { pid, start_time } = handle {
            state.process = Some(ProcessRef { pid, start_time });
        }
        state.handle = Some(handle);
        self.touch(now);
        Ok(())
    }

    /// A failed agent retries no earlier than `at` (RFC 3339; `None` clears it).
    pub fn set_retry_at(
        &mut self,
        batch: &BatchId,
        agent: &AgentId,
        at: Option<String>,
        now: &str,
    ) -> Result<(), TransitionError> {
        let state = self.agent_mut(batch, agent)?;
        if at.is_some() && state.status != Status::Failed {
            return Err(TransitionError::BadState {
                what: format!("agent {agent}"),
                status: state.status.as_str(),
                action: "scheduling a retry",
            });
        }
        state.retry_at = at;
        self.touch(now);
        Ok(())
    }

    /// The runner is stopping the running attempt of `agent`, for `class`.
    pub fn stop_agent(
        &mut self,
        batch: &BatchId,
        agent: &AgentId,
        class: crate::status::ErrorClass,
        now: &str,
    ) -> Result<(), TransitionError> {
        let state = self.agent_mut(batch, agent)?;
        if state.status != Status::Running {
            return Err(TransitionError::BadState {
                what: format!("agent {agent}"),
                status: state.status.as_str(),
                action: "stopping it",
            });
        }
        state.stopping = Some(class);
        self.touch(now);
        Ok(())
    }

    /// Processes an ended attempt left alive, found after its result was recorded (a stop of
    /// a stuck supervisor): added to the result's `leftovers`.
    pub fn add_leftovers(
        &mut self,
        batch: &BatchId,
        agent: &AgentId,
        left: &crate::status::Leftovers,
        now: &str,
    ) -> Result<(), TransitionError> {
        let state = self.agent_mut(batch, agent)?;
        let Some(result) = state.result.as_mut() else {
            return Err(TransitionError::BadState {
                what: format!("agent {agent}"),
                status: state.status.as_str(),
                action: "adding leftovers to a result it does not have",
            });
        };
        let mine = result.leftovers.get_or_insert_with(Default::default);
        mine.swept += left.swept;
        mine.killed_after_grace += left.killed_after_grace;
        mine.survived.extend(&left.survived);
        self.touch(now);
        Ok(())
    }

    /// The attempt that is running ended; `status` is `Succeeded` or `Failed`.
    pub fn record_agent_result(
        &mut self,
        batch: &BatchId,
        agent: &AgentId,
        status: Status,
        result: AgentResult,
        now: &str,
    ) -> Result<(), TransitionError> {
        let state = self.agent_mut(batch, agent)?;
        if state.status != Status::Running {
            return Err(TransitionError::BadState {
                what: format!("agent {agent}"),
                status: state.status.as_str(),
                action: "recording a result",
            });
        }
        if !status.is_finished() {
            return Err(TransitionError::BadState {
                what: format!("result for agent {agent}"),
                status: status.as_str(),
                action: "recording a result that is not final",
            });
        }
        state.status = status;
        state.process = None;
        state.handle = None;
        state.stopping = None;
        state.finished_at = Some(now.to_owned());
        state.result = Some(result);
        self.touch(now);
        Ok(())
    }

    /// A finished agent of a running batch must run again: its batch's gate found a problem
    /// in its work (a conflict, a scope violation, a failing test). The agent becomes failed
    /// with `class`, so `start_agent` can begin its next attempt; its last result is kept.
    pub fn reopen_agent(
        &mut self,
        batch: &BatchId,
        agent: &AgentId,
        class: crate::status::ErrorClass,
        now: &str,
    ) -> Result<(), TransitionError> {
        let batch_status = self.batch_mut(batch)?.status;
        if batch_status != Status::Running {
            return Err(TransitionError::BadState {
                what: format!("batch {batch}"),
                status: batch_status.as_str(),
                action: "reopening one of its agents",
            });
        }
        let state = self.agent_mut(batch, agent)?;
        if !matches!(state.status, Status::Succeeded | Status::Failed) {
            return Err(TransitionError::BadState {
                what: format!("agent {agent}"),
                status: state.status.as_str(),
                action: "reopening it",
            });
        }
        state.status = Status::Failed;
        state
            .result
            .get_or_insert_with(AgentResult::default)
            .error_class = Some(class);
        self.touch(now);
        Ok(())
    }

    /// The batch is done (after its gate). Agents still pending are marked skipped. When every
    /// batch is finished the execution is too: succeeded if all batches succeeded.
    pub fn complete_batch(
        &mut self,
        batch: &BatchId,
        status: Status,
        now: &str,
    ) -> Result<(), TransitionError> {
        let state = self.batch_mut(batch)?;
        if state.status != Status::Running {
            return Err(TransitionError::BadState {
                what: format!("batch {batch}"),
                status: state.status.as_str(),
                action: "completing it",
            });
        }
        if let Some(running) = state.agents.iter().find(|a| a.status == Status::Running) {
            return Err(TransitionError::BadState {
                what: format!("agent {}", running.id),
                status: "running",
                action: "completing its batch",
            });
        }
        for a in &mut state.agents {
            if a.status == Status::Pending {
                a.status = Status::Skipped;
            }
        }
        state.status = status;
        state.finished_at = Some(now.to_owned());
        if self.batches.iter().all(|b| b.status.is_finished()) {
            self.status = if self.batches.iter().all(|b| b.status == Status::Succeeded) {
                Status::Succeeded
            } else {
                Status::Failed
            };
            self.finished_at = Some(now.to_owned());
        }
        self.touch(now);
        Ok(())
    }

    /// A batch that can no longer run because a dependency failed.
    pub fn skip_batch(&mut self, batch: &BatchId, now: &str) -> Result<(), TransitionError> {
        let state = self.batch_mut(batch)?;
        if state.status != Status::Pending {
            return Err(TransitionError::BadState {
                what: format!("batch {batch}"),
                status: state.status.as_str(),
                action: "skipping it",
            });
        }
        state.status = Status::Running;
        self.complete_batch(batch, Status::Skipped, now)
    }

    /// The plan was changed while running. `plan` is the new plan: batches it adds are
    /// appended as pending, batches it drops are kept if they already started (history is
    /// never rewritten) and removed otherwise.
    pub fn record_replan(&mut self, plan: &Plan, reason: &str, now: &str) -> Vec<BatchId> {
        let fresh = Execution::new(self.plan_id.clone(), plan, now);
        let mut changed = Vec::new();
        self.batches.retain(|b| {
            let keep = b.status != Status::Pending || plan.batch(&b.id).is_some();
            if !keep {
                changed.push(b.id.clone());
            }
            keep
        });
        for b in fresh.batches {
            match self.batches.iter_mut().find(|s| s.id == b.id) {
                None => {
                    changed.push(b.id.clone());
                    self.batches.push(b);
                }
                Some(existing)
                    if existing.status == Status::Pending && existing.agents != b.agents =>
                {
                    changed.push(b.id.clone());
                    *existing = b;
                }
                Some(_) => {}
            }
        }
        self.replans.push(Replan {
            at: now.to_owned(),
            reason: reason.to_owned(),
            batches: changed.clone(),
        });
        if self.status.is_finished() && self.batches.iter().any(|b| b.status == Status::Pending) {
            self.status = Status::Running;
            self.finished_at = None;
        }
        self.touch(now);
        changed
    }

    /// Record the batch loop's progress on a batch (any status: a finished batch keeps its
    /// history; `--resume` reads it).
    pub fn set_integration(
        &mut self,
        batch: &BatchId,
        integration: Integration,
        now: &str,
    ) -> Result<(), TransitionError> {
        self.batch_mut(batch)?.integration = Some(integration);
        self.touch(now);
        Ok(())
    }

    /// Worktrees of `batch` were removed (`baton worktree cleanup --batch`).
    pub fn record_cleanup(&mut self, batch: &BatchId, now: &str) -> Result<(), TransitionError> {
        self.batch_mut(batch)?.cleaned_up_at = Some(now.to_owned());
        self.touch(now);
        Ok(())
    }

    /// Counts of agents per status, for progress displays and `baton status`.
    pub fn agent_counts(&self) -> BTreeMap<Status, usize> {
        let mut counts = BTreeMap::new();
        for a in self.batches.iter().flat_map(|b| &b.agents) {
            *counts.entry(a.status).or_insert(0) += 1;
        }
        counts
    }
}
