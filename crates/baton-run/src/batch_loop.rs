//! [`LoopHooks`]: the batch loop plugged into the runner. Batches start from the plan's
//! integration branch; when an attempt ends its work is committed and its result file kept;
//! when a batch ends it is gated and integrated ([`crate::integrate`]), and a failed gate is
//! handled by the plan's policy ([`crate::replan`]). Later agents get upstream results as
//! placeholders.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use baton_git::RepoPaths;
use baton_metrics::{Event, MetricsLog};
use baton_plan::{AgentId, BatchId, ExecutionTracker, Plan, PlanId};
use baton_store::StateDir;

use crate::cache::{Cache, CacheInputs};
use crate::commit::{self, AgentRecord};
use crate::hooks::{AgentContext, AgentVars, BatchContext, BatchHooks, GateDecision, HookError};
use crate::integrate::{
    self, Gate, GateAgent, IntegrateError, IntegrateOutcome, Integrator, StepHook,
};
use crate::replan::{self, Decision};

mod cache_hooks;
mod replan_hooks;
mod tasks;
pub use cache_hooks::cache_inputs_of;
pub use tasks::{TaskOutcome, TaskStores, close_batch_tasks, retry_open_tasks};

/// The batch loop. Holds no open repository (git2's are not `Sync`): each call opens one.
pub struct LoopHooks {
    pub repo: RepoPaths,
    pub state: StateDir,
    pub plan_id: PlanId,
    pub plan: Plan,
    pub tracker: ExecutionTracker,
    pub gate: Box<dyn Gate>,
    pub metrics: Option<MetricsLog>,
    /// The output cache; `None` with `--no-cache`.
    pub cache: Option<Cache>,
    /// Shared with the caller, which reads it after the run ("N of M from cache").
    pub cache_stats: Arc<CacheStats>,
    /// Told each integration step once it is recorded (see [`Integrator::after_step`]).
    pub after_step: Option<Box<StepHook>>,
    /// The task backends by name (`file`, `taskwarrior`): a batch that succeeds closes its
    /// linked tasks in them. The built-in `file` store unless the caller sets more.
    pub task_stores: TaskStores,
    /// Inputs of attempts looked up and not (yet) finished, to store on success; and the
    /// attempts a hit was applied to.
    pending: Mutex<BTreeMap<(AgentId, u32), (CacheInputs, bool)>>,
}

/// How the output cache did in one run.
#[derive(Debug, Default)]
pub struct CacheStats {
    pub lookups: AtomicUsize,
    pub hits: AtomicUsize,
}

fn hook<E: std::fmt::Display>(e: E) -> HookError {
    HookError(e.to_string())
}

impl LoopHooks {
    /// The loop for one plan; creates the integration branch at `base` if it does not exist.
    pub fn new(
        repo: RepoPaths,
        state: StateDir,
        plan_id: PlanId,
        plan: Plan,
        tracker: ExecutionTracker,
        gate: Box<dyn Gate>,
        base: git2::Oid,
    ) -> Result<Self, IntegrateError> {
        let r = open(&repo)?;
        integrate::ensure_integration_branch(&r, &plan_id, base)?;
        Ok(LoopHooks {
            task_stores: tasks::file_store(&state),
            repo,
            state,
            plan_id,
            plan,
            tracker,
            gate,
            metrics: None,
            cache: None,
            cache_stats: Arc::new(CacheStats::default()),
            after_step: None,
            pending: Mutex::new(BTreeMap::new()),
        })
    }

    /// Commit what an attempt left in its worktree, read its result file, and keep both for
    /// later agents.
    pub fn commit_agent(
        &self,
        agent: &AgentId,
        attempt: u32,
        worktree: &std::path::Path,
    ) -> Result<AgentRecord, IntegrateError> {
        let result_path = commit::result_file(&self.state, &self.plan_id, agent, attempt);
        let report = commit::read_result_file(&result_path).map_err(|e| IntegrateError::Git {
            action: format!("read the result of agent {agent}"),
            message: e.to_string(),
        })?;
        let message = commit::commit_message(
            &self.plan_id,
            agent,
            attempt,
            report.as_ref().map(|r| r.summary.as_str()),
        );
        let committed =
            commit::commit_work(worktree, &message).map_err(|e| IntegrateError::Git {
                action: format!("commit the work of agent {agent}"),
                message: e.to_string(),
            })?;
        let repo = open(&self.repo)?;
        let tip = integrate::integration_tip(&repo, &self.plan_id)?;
        let from = match tip {
            Some(t) => repo.merge_base(t, committed.head).unwrap_or(t),
            None => committed.head,
        };
        let files = commit::changed_files(&repo, from, committed.head).map_err(|e| {
            IntegrateError::Git {
                action: format!("measure the changes of agent {agent}"),
                message: e.message().to_owned(),
            }
        })?;
        let record = AgentRecord {
            schema_version: AgentRecord::SCHEMA_VERSION,
            attempt,
            commit: committed.head.to_string(),
            files,
            report,
        };
        record.save(&self.state, &self.plan_id, agent)?;
        Ok(record)
    }

    /// The batch's agents as the gate sees them: plan order, the branch and worktree the
    /// execution recorded (else `baton/<plan>/<agent>`), declared write scopes.
    pub fn gate_agents(&self, batch: &BatchId) -> Result<Vec<GateAgent>, IntegrateError> {
        let exec = self.tracker.load()?;
        let Some(plan_batch) = self.plan.batch(batch) else {
            return Ok(Vec::new());
        };
        let state = exec.batch(batch);
        Ok(plan_batch
            .agents
            .iter()
            // agents sharing the main checkout have no branch to merge
            .filter(|a| {
                baton_run_isolation(&self.plan, a) == baton_plan::model::Isolation::Worktree
            })
            .map(|a| {
                let s = state.and_then(|b| b.agents.iter().find(|x| x.id == a.id));
                GateAgent {
                    id: a.id.clone(),
                    branch: s
                        .and_then(|s| s.branch.clone())
                        .unwrap_or_else(|| baton_plan::ids::agent_branch(&self.plan_id, &a.id)),
                    worktree: s.and_then(|s| s.worktree.clone()),
                    scope: a.scope.files_write.clone(),
                    base: None,
                }
            })
            .collect())
    }

    /// Gate and integrate one batch (no policy: the caller decides what a failure means).
    pub fn integrate(&self, batch: &BatchId) -> Result<IntegrateOutcome, IntegrateError> {
        let repo = open(&self.repo)?;
        let agents = self.gate_agents(batch)?;
        if agents.is_empty() {
            // nothing to integrate: every agent shares the main checkout
            return Ok(IntegrateOutcome::AlreadyDone {
                tip: integrate::integration_tip(&repo, &self.plan_id)?
                    .map(|o| o.to_string())
                    .unwrap_or_default(),
            });
        }
        let settings = self
            .plan
            .batch(batch)
            .map(|b| b.gate.clone())
            .unwrap_or_default();
        let dir = self.state.executions_dir().join(self.plan_id.as_str());
        let integrator = Integrator {
            repo: &repo,
            plan_id: &self.plan_id,
            tracker: &self.tracker,
            gate: self.gate.as_ref(),
            reports_dir: dir.join("gates"),
            after_step: self.after_step.as_deref(),
        };
        let outcome = integrator.integrate(batch, &agents, &settings)?;
        if let IntegrateOutcome::Advanced { .. } | IntegrateOutcome::Failed(_) = &outcome {
            let ok = matches!(outcome, IntegrateOutcome::Advanced { .. });
            self.event("verification", batch, |e| {
                e.success = Some(ok);
                e.details.insert("step".into(), "batch_gate".into());
            });
        }
        Ok(outcome)
    }

    /// Placeholders and environment for an attempt of `agent`.
    pub fn vars_for(&self, batch: &BatchId, agent: &AgentId) -> Result<AgentVars, IntegrateError> {
        let exec = self.tracker.load()?;
        vars_of(
            &self.state,
            &self.plan_id,
            &self.plan,
            Some(&exec),
            batch,
            agent,
        )
    }

    fn event(&self, kind: &str, batch: &BatchId, fill: impl FnOnce(&mut Event)) {
        let Some(log) = &self.metrics else { return };
        let Ok(mut e) = Event::new(kind, SystemTime::now()) else {
            return;
        };
        e.plan = Some(self.plan_id.to_string());
        e.batch = Some(batch.to_string());
        fill(&mut e);
        // metrics never fail the loop; a missing line is visible in `metrics summary`
        let _ = log.append(&[e]);
    }

    /// Where gate reports of this plan are kept.
    pub fn reports_dir(&self) -> PathBuf {
        self.state
            .executions_dir()
            .join(self.plan_id.as_str())
            .join("gates")
    }
}

/// Placeholders and environment for an attempt of `agent`, from the plan's state on disk
/// (`exec` is `None` before the plan's first run): upstream results, and the findings of the
/// last failed gate for an agent a replan sent back. Reads only.
pub fn vars_of(
    state: &StateDir,
    plan_id: &PlanId,
    plan: &Plan,
    exec: Option<&baton_plan::Execution>,
    batch: &BatchId,
    agent: &AgentId,
) -> Result<AgentVars, IntegrateError> {
    let upstream = upstream_vars(state, plan_id, plan)?;
    Ok(vars_with(&upstream, exec, batch, agent))
}

/// `{outputs.X}` and `{files.X}` of every agent of the plan with a recorded result.
fn upstream_vars(
    state: &StateDir,
    plan_id: &PlanId,
    plan: &Plan,
) -> Result<BTreeMap<String, String>, IntegrateError> {
    let mut vars = BTreeMap::new();
    // one listing of the results, not a lookup per agent of the plan
    let recorded = AgentRecord::recorded(state, plan_id);
    for (_, a) in plan.agents() {
        if !recorded.contains(a.id.as_str()) {
            continue;
        }
        if let Some(record) = AgentRecord::load(state, plan_id, &a.id)? {
            let summary = record
                .report
                .as_ref()
                .map(|r| r.summary.clone())
                .unwrap_or_default();
            vars.insert(format!("outputs.{}", a.id), summary);
            vars.insert(format!("files.{}", a.id), record.files.join("\n"));
        }
    }
    Ok(vars)
}

/// The upstream placeholders plus what is `agent`'s own: the findings of the last failed gate
/// when a replan sent it back.
fn vars_with(
    upstream: &BTreeMap<String, String>,
    exec: Option<&baton_plan::Execution>,
    batch: &BatchId,
    agent: &AgentId,
) -> AgentVars {
    let mut vars = AgentVars {
        placeholders: upstream.clone(),
        ..AgentVars::default()
    };
    let integration = exec
        .and_then(|e| e.batch(batch))
        .and_then(|b| b.integration.as_ref());
    // the findings reach only the agents a replan sent back
    let last = integration
        .filter(|i| i.replans > 0)
        .and_then(|i| i.gates.last())
        .filter(|v| !v.passed && v.agents.contains(agent));
    vars.placeholders.insert(
        "gate_findings".into(),
        last.map(replan::findings_text).unwrap_or_default(),
    );
    if let Some(report) = last.and_then(|v| v.report.as_ref()) {
        vars.env
            .insert("BATON_GATE_REPORT".into(), report.display().to_string());
    }
    vars
}

fn baton_run_isolation(plan: &Plan, agent: &baton_plan::Agent) -> baton_plan::model::Isolation {
    crate::attempt::isolation_of(plan, agent)
}

fn open(paths: &RepoPaths) -> Result<git2::Repository, IntegrateError> {
    paths.open().map_err(|e| IntegrateError::Git {
        action: "open the repository".into(),
        message: e.to_string(),
    })
}

impl BatchHooks for LoopHooks {
    fn base_for(&self, _plan: &PlanId, _batch: &BatchId) -> Result<Option<String>, HookError> {
        Ok(Some(integrate::integration_branch(&self.plan_id)))
    }

    fn agent_vars(
        &self,
        _plan: &PlanId,
        exec: &baton_plan::Execution,
        starts: &[(&BatchId, &AgentId)],
    ) -> Vec<Result<AgentVars, HookError>> {
        // the upstream results are read once for every attempt starting now
        match upstream_vars(&self.state, &self.plan_id, &self.plan) {
            Ok(upstream) => starts
                .iter()
                .map(|(b, a)| Ok(vars_with(&upstream, Some(exec), b, a)))
                .collect(),
            Err(e) => {
                let why = e.to_string();
                starts.iter().map(|_| Err(HookError(why.clone()))).collect()
            }
        }
    }

    fn cached(&self, ctx: &AgentContext) -> Result<bool, HookError> {
        // an agent a replan sent back starts where the replan put it, even after a crash
        // between recording the replan and moving its branch
        self.ensure_restarted(ctx).map_err(hook)?;
        self.try_cache(ctx).map_err(hook)
    }

    fn after_agent(&self, ctx: &AgentContext) -> Result<(), HookError> {
        let Some(worktree) = &ctx.worktree else {
            return Ok(());
        };
        let from_cache = self
            .pending
            .lock()
            .ok()
            .and_then(|p| {
                p.get(&(ctx.agent.clone(), ctx.attempt))
                    .map(|(_, hit)| *hit)
            })
            .unwrap_or(false);
        if from_cache {
            // its commit and record were made from the cache; nothing new to commit or store
            if let Ok(mut p) = self.pending.lock() {
                p.remove(&(ctx.agent.clone(), ctx.attempt));
            }
            return Ok(());
        }
        let record = self
            .commit_agent(&ctx.agent, ctx.attempt, worktree)
            .map_err(hook)?;
        if ctx.succeeded {
            // a cache that cannot be written never fails the agent
            let _ = self.store_in_cache(ctx, &record);
        } else if let Ok(mut p) = self.pending.lock() {
            p.remove(&(ctx.agent.clone(), ctx.attempt));
        }
        Ok(())
    }

    fn after_batch(&self, ctx: &BatchContext) -> Result<GateDecision, HookError> {
        // a replan re-runs its agents one after another: the next starts on the work of the
        // one before it, and the batch is gated once the last finished
        if let Some(next) = self.next_replanned(&ctx.batch).map_err(hook)? {
            return Ok(GateDecision::Continue { rerun: vec![next] });
        }
        match self.integrate(&ctx.batch).map_err(hook)? {
            IntegrateOutcome::Advanced { .. } | IntegrateOutcome::AlreadyDone { .. } => {
                // a task backend that fails never fails the batch (see `tasks.rs`)
                let _ = self.close_tasks(&ctx.batch);
                if let Some(hook) = &self.after_step {
                    hook(&ctx.batch, "tasks");
                }
                Ok(GateDecision::Pass)
            }
            IntegrateOutcome::Failed(verdict) => {
                // nothing is moved or recorded for a replan the run may not make
                let decision = if ctx.replans_left == 0 {
                    Decision::Stop {
                        why: "this run's --replan-budget is used up".to_owned(),
                    }
                } else {
                    self.handle_failure(&ctx.batch, &verdict).map_err(hook)?
                };
                let mut findings = verdict.findings.join("\n");
                let rerun = match decision {
                    Decision::Rerun(agents) => {
                        let waiting = self
                            .tracker
                            .load()
                            .ok()
                            .and_then(|e| e.batch(&ctx.batch).and_then(|b| b.integration.clone()))
                            .map(|i| i.replan_queue)
                            .unwrap_or_default();
                        if !waiting.is_empty() {
                            findings.push_str(&format!(
                                "\nthen, one after another, each on the new work of the one before: {}",
                                waiting
                                    .iter()
                                    .map(AgentId::as_str)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ));
                        }
                        agents
                    }
                    Decision::Stop { why } => {
                        findings.push_str(&format!("\nno replan: {why}"));
                        Vec::new()
                    }
                };
                Ok(GateDecision::Fail {
                    report: verdict.report.clone(),
                    findings,
                    rerun,
                })
            }
        }
    }
}

/// Fill the loop's placeholders in a rendered attempt: every argv element (the `{prompt}`
/// filled in by the first pass may itself use `{outputs.X}`), the prompt file's text, and
/// the loop's environment. Still element by element, never a shell string.
pub fn apply_vars(
    spec: &mut crate::executor::AttemptSpec,
    prompt: &mut Option<(PathBuf, String)>,
    vars: &AgentVars,
) {
    if vars.placeholders.is_empty() && vars.env.is_empty() {
        return;
    }
    let refs: BTreeMap<&str, String> = vars
        .placeholders
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    spec.argv = baton_plan::validate::render_command(&spec.argv, &refs);
    if let Some((_, text)) = prompt.as_mut() {
        *text = baton_plan::validate::render_command(std::slice::from_ref(text), &refs)
            .pop()
            .unwrap_or_default();
    }
    for (k, v) in &vars.env {
        spec.env.insert(k.clone(), v.clone());
    }
}
