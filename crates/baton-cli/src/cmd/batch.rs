//! `baton batch integrate PLAN BATCH`: one step of the batch loop driven by hand (by a
//! director agent or a CI job): commit what each agent left in its worktree, gate the batch,
//! merge the agents' branches in plan order onto `baton/<plan>/integration`, test the merged
//! tree in a scratch directory, and move the integration branch only if all of that passed.
//! Each step is recorded in the execution, so `baton status`, metrics and tasks move, and a
//! run interrupted anywhere continues where it stopped.

mod gate;

use std::path::PathBuf;
use std::time::SystemTime;

use baton_metrics::{Event, MetricsLog};
use baton_plan::{
    AgentResult, AgentStart, BatchId, ExecutionTracker, Plan, PlanId, Status, store as plan_store,
};
use baton_report::exit;
use baton_run::LoopHooks;
use baton_run::integrate::{self, IntegrateError, IntegrateOutcome};
use clap::{Args, Subcommand};
use serde::Serialize;

pub use self::gate::CliGate;
use crate::ctx::Ctx;
use crate::error::{CliError, CliResult};

#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// Commit, gate, merge, test and advance one batch into the plan's integration branch.
    Integrate(IntegrateArgs),
    /// After a failed gate, apply the plan's `on_gate_failure` policy: with `replan`, move the
    /// agents the findings name onto the integration branch with the others' work merged and
    /// mark them for another attempt (their old work is kept under refs/baton/). Prints the
    /// agents to re-run, with the findings their prompt gets as `{gate_findings}`.
    Replan(ReplanArgs),
}

#[derive(Debug, Args)]
pub struct ReplanArgs {
    /// A plan id, a unique suffix of one, or `latest`.
    plan: String,
    /// The batch whose gate failed.
    batch: String,
}

#[derive(Debug, Args)]
pub struct IntegrateArgs {
    /// A plan id, a unique suffix of one, or `latest`.
    plan: String,
    /// The batch to integrate (its dependencies must have succeeded).
    batch: String,
    /// Where the integration branch starts if it does not exist yet (default: HEAD).
    #[arg(long, value_name = "REV")]
    base: Option<String>,
    /// Afterwards, fast-forward BRANCH to the integration branch (refused unless it is a
    /// fast-forward). Without it, none of your branches or your checkout is touched.
    #[arg(long, value_name = "BRANCH")]
    land: Option<String>,
}

impl From<IntegrateError> for CliError {
    fn from(e: IntegrateError) -> Self {
        match e {
            IntegrateError::Track(t) => t.into(),
            IntegrateError::Store(s) => s.into(),
            IntegrateError::Land { .. } => CliError::gate(e.to_string()),
            e if e.is_bad_input() => CliError::input(e.to_string()),
            e => CliError::env(e.to_string()),
        }
    }
}

pub fn run(ctx: &Ctx, cmd: BatchCommand) -> CliResult {
    match cmd {
        BatchCommand::Integrate(a) => integrate_cmd(ctx, a),
        BatchCommand::Replan(a) => replan_cmd(ctx, a),
    }
}

#[derive(Serialize)]
struct IntegrateJson {
    plan: String,
    batch: String,
    integration_branch: String,
    /// `advanced`, `already_done` or `failed`.
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed_step: Option<String>,
    findings: Vec<String>,
    agents: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    landed: Option<String>,
}

/// The loop's hooks for a stored plan, as the CLI builds them (also for `baton run`).
pub fn loop_hooks(
    ctx: &Ctx,
    plan_id: &PlanId,
    plan: &Plan,
    base: Option<&str>,
) -> CliResult<LoopHooks> {
    let repo_paths = ctx.repo()?.clone();
    let state = ctx.state_dir_for_writing()?;
    let repo = repo_paths.open()?;
    let base = match base {
        Some(rev) => baton_git::resolve_commit(&repo, rev)
            .map_err(|e| CliError::input(format!("--base: {e}")))?,
        None => repo
            .head()
            .ok()
            .and_then(|h| h.target())
            .ok_or_else(|| CliError::input("HEAD has no commit yet; pass --base REV"))?,
    };
    let tracker = ExecutionTracker::open(
        state.execution(plan_id.as_str()),
        plan_id.clone(),
        plan.clone(),
    )?;
    let cargo = std::env::var_os("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("cargo"));
    let gate = CliGate {
        repo: repo_paths.clone(),
        config: ctx.config()?.verify.clone(),
        cargo,
        show_output: !ctx.json && !ctx.quiet,
    };
    let mut hooks = LoopHooks::new(
        repo_paths,
        state.clone(),
        plan_id.clone(),
        plan.clone(),
        tracker,
        Box::new(gate),
        base,
    )?;
    hooks.metrics = Some(MetricsLog::new(state.metrics()));
    Ok(hooks)
}

fn integrate_cmd(ctx: &Ctx, a: IntegrateArgs) -> CliResult {
    // --- validate everything before anything is written -----------------------------------
    let dir = ctx.state_dir()?;
    let plan_id = plan_store::resolve_plan_id(&dir, &a.plan)?;
    let plan = plan_store::load_stored(&dir, &plan_id)?;
    let batch_id = BatchId::new(a.batch.as_str())
        .map_err(|e| CliError::input(format!("batch {:?}: {e}", a.batch)))?;
    let Some(batch) = plan.batch(&batch_id) else {
        return Err(CliError::input(format!(
            "plan {plan_id} has no batch {batch_id}; `baton plan show {plan_id}` lists them"
        )));
    };
    if let Some(branch) = &a.land {
        let repo = ctx.repo()?.open()?;
        if repo.find_branch(branch, git2::BranchType::Local).is_err() {
            return Err(CliError::input(format!(
                "--land {branch}: no such local branch"
            )));
        }
    }
    let exec_path = dir.execution(plan_id.as_str());
    if exec_path.exists() {
        let exec: baton_plan::Execution = baton_store::read_versioned(&exec_path)?;
        for dep in &batch.depends_on {
            let status = exec.batch(dep).map_or(Status::Pending, |b| b.status);
            if status != Status::Succeeded {
                return Err(CliError::input(format!(
                    "batch {batch_id} depends on {dep}, which is {}; integrate {dep} first",
                    status.as_str()
                )));
            }
        }
    } else if let Some(dep) = batch.depends_on.first() {
        return Err(CliError::input(format!(
            "batch {batch_id} depends on {dep}, which has not run; integrate {dep} first"
        )));
    }

    let hooks = loop_hooks(ctx, &plan_id, &plan, a.base.as_deref())?;
    let repo = ctx.repo()?.open()?;

    // --- record the batch and its agents as the loop would ---------------------------------
    let exec = hooks.tracker.load()?;
    let state = exec
        .batch(&batch_id)
        .ok_or_else(|| CliError::input(format!("the execution has no batch {batch_id}")))?
        .clone();
    let already = state.status == Status::Succeeded;
    if state.status == Status::Pending {
        hooks.tracker.start_batch(&batch_id)?;
        event(&hooks, "batch_start", &batch_id, |_| {});
    } else if state.status != Status::Running && !already {
        return Err(CliError::input(format!(
            "batch {batch_id} is {}; nothing to integrate",
            state.status.as_str()
        )));
    }
    if !already {
        record_agents(&hooks, &repo, &plan_id, batch, &state)?;
    }

    // --- gate, merge, test, advance -----------------------------------------------------------
    let outcome = if already {
        IntegrateOutcome::AlreadyDone {
            tip: integrate::integration_tip(&repo, &plan_id)?
                .map(|o| o.to_string())
                .unwrap_or_default(),
        }
    } else {
        hooks.integrate(&batch_id)?
    };
    let branch = integrate::integration_branch(&plan_id);
    let mut out = IntegrateJson {
        plan: plan_id.to_string(),
        batch: batch_id.to_string(),
        integration_branch: branch.clone(),
        outcome: "advanced",
        from: None,
        to: None,
        failed_step: None,
        findings: Vec::new(),
        agents: Vec::new(),
        report: None,
        landed: None,
    };
    let code = match outcome {
        IntegrateOutcome::Advanced { from, to } => {
            if !ctx.json {
                ctx.say(format!(
                    "batch {batch_id} integrated: {branch} {} → {}",
                    &from[..10.min(from.len())],
                    &to[..10.min(to.len())]
                ));
            }
            out.from = Some(from);
            out.to = Some(to);
            finish_batch(ctx, &hooks, &plan, &batch_id)?;
            exit::OK
        }
        IntegrateOutcome::AlreadyDone { tip } => {
            out.outcome = "already_done";
            out.to = Some(tip);
            finish_batch(ctx, &hooks, &plan, &batch_id)?;
            exit::OK
        }
        IntegrateOutcome::Failed(v) => {
            out.outcome = "failed";
            if !ctx.json {
                ctx.say(format!(
                    "batch {batch_id} failed its gate at the {} step; {branch} did not move:",
                    v.failed_step.as_deref().unwrap_or("gate")
                ));
                for f in &v.findings {
                    ctx.say(format!("  {f}"));
                }
                if let Some(r) = &v.report {
                    ctx.say(format!("report: {}", r.display()));
                }
                ctx.say("fix the agents' branches and run this command again");
            }
            out.failed_step = v.failed_step.clone();
            out.findings = v.findings.clone();
            out.agents = v.agents.iter().map(ToString::to_string).collect();
            out.report = v.report.clone();
            exit::GATE_FAILED
        }
    };
    if code == exit::OK
        && let Some(target) = &a.land
    {
        let tip = integrate::integration_tip(&repo, &plan_id)?
            .ok_or_else(|| CliError::env("the integration branch vanished"))?;
        let moved = integrate::land(&repo, target, tip)?;
        if !ctx.json {
            ctx.say(if moved {
                format!("landed: {target} fast-forwarded to {branch}")
            } else {
                format!("{target} already points at {branch}")
            });
        }
        out.landed = Some(target.clone());
    }
    if ctx.json {
        ctx.print_json(&out)?;
    }
    Ok(code)
}

/// Start (if needed), commit and record each agent of the batch, as the runner would.
fn record_agents(
    hooks: &LoopHooks,
    repo: &git2::Repository,
    plan_id: &PlanId,
    batch: &baton_plan::Batch,
    state: &baton_plan::execution::BatchState,
) -> CliResult<()> {
    let batch_id = &batch.id;
    let worktrees = baton_git::worktrees::list_worktrees(repo)?;
    for agent in &batch.agents {
        let a_state = state.agents.iter().find(|s| s.id == agent.id);
        let branch = a_state
            .and_then(|s| s.branch.clone())
            .unwrap_or_else(|| baton_plan::ids::agent_branch(plan_id, &agent.id));
        if repo.find_branch(&branch, git2::BranchType::Local).is_err() {
            return Err(CliError::input(format!(
                "agent {}: branch {branch} does not exist; create its worktree with `baton worktree create --plan {plan_id} --batch {batch_id}` and let it work first",
                agent.id
            )));
        }
        let worktree = a_state
            .and_then(|s| s.worktree.clone())
            .filter(|p| p.is_dir())
            .or_else(|| {
                worktrees
                    .iter()
                    .find(|w| !w.is_main() && w.head.branch() == Some(branch.as_str()))
                    .map(|w| w.path.clone())
            });
        let status = a_state.map_or(Status::Pending, |s| s.status);
        let attempt = match status {
            Status::Pending | Status::Failed => {
                let (_, n) = hooks.tracker.start_agent(
                    batch_id,
                    &agent.id,
                    AgentStart {
                        process: None,
                        worktree: worktree.clone(),
                        branch: Some(branch.clone()),
                    },
                )?;
                n
            }
            _ => a_state.map_or(1, |s| s.attempt.max(1)),
        };
        if status == Status::Succeeded {
            continue;
        }
        let record = match &worktree {
            Some(wt) => Some(hooks.commit_agent(&agent.id, attempt, wt)?),
            None => None,
        };
        let result = AgentResult {
            exit_code: None,
            attempts: attempt,
            duration_ms: 0,
            files_changed: record.as_ref().map(|r| r.files.clone()).unwrap_or_default(),
            summary: record
                .as_ref()
                .and_then(|r| r.report.as_ref())
                .map(|r| r.summary.clone()),
            error_class: None,
        };
        hooks
            .tracker
            .record_agent_result(batch_id, &agent.id, Status::Succeeded, result)?;
    }

    Ok(())
}

/// The batch passed: mark it succeeded, record metrics, close its task.
fn finish_batch(ctx: &Ctx, hooks: &LoopHooks, plan: &Plan, batch: &BatchId) -> CliResult<()> {
    let exec = hooks.tracker.load()?;
    if exec
        .batch(batch)
        .is_some_and(|b| b.status == Status::Running)
    {
        hooks.tracker.complete_batch(batch, Status::Succeeded)?;
        event(hooks, "batch_complete", batch, |e| e.success = Some(true));
    }
    for link in plan
        .tasks
        .iter()
        .filter(|t| t.batch.as_ref() == Some(batch))
    {
        if link.backend != "file" {
            ctx.note(format!(
                "task {} is in the {} backend; mark it done with `baton task done {} --backend {}`",
                link.task_id, link.backend, link.task_id, link.backend
            ));
            continue;
        }
        use baton_tasks::TaskStore;
        let store = baton_tasks::file::FileStore::new(hooks.state.clone());
        match store.set_status(&link.task_id, baton_tasks::TaskStatus::Done) {
            Ok(_) => event(hooks, "task", batch, |e| {
                e.details.insert("task".into(), link.task_id.clone());
                e.details.insert("status".into(), "done".into());
            }),
            Err(e) => ctx.warn(format!("task {}: {e}", link.task_id)),
        }
    }
    Ok(())
}

fn event(hooks: &LoopHooks, kind: &str, batch: &BatchId, fill: impl FnOnce(&mut Event)) {
    let Some(log) = &hooks.metrics else { return };
    let Ok(mut e) = Event::new(kind, SystemTime::now()) else {
        return;
    };
    e.plan = Some(hooks.plan_id.to_string());
    e.batch = Some(batch.to_string());
    fill(&mut e);
    let _ = log.append(&[e]);
}

#[derive(Serialize)]
struct ReplanJson {
    plan: String,
    batch: String,
    /// `rerun` or `stop`.
    decision: &'static str,
    rerun: Vec<RerunJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    why: Option<String>,
    findings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<PathBuf>,
}

#[derive(Serialize)]
struct RerunJson {
    agent: String,
    branch: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    worktree: Option<PathBuf>,
    /// The text of `{gate_findings}` for its prompt.
    gate_findings: String,
}

fn replan_cmd(ctx: &Ctx, a: ReplanArgs) -> CliResult {
    let dir = ctx.state_dir()?;
    let plan_id = plan_store::resolve_plan_id(&dir, &a.plan)?;
    let plan = plan_store::load_stored(&dir, &plan_id)?;
    let batch_id = BatchId::new(a.batch.as_str())
        .map_err(|e| CliError::input(format!("batch {:?}: {e}", a.batch)))?;
    if plan.batch(&batch_id).is_none() {
        return Err(CliError::input(format!(
            "plan {plan_id} has no batch {batch_id}"
        )));
    }
    let exec_path = dir.execution(plan_id.as_str());
    if !exec_path.exists() {
        return Err(CliError::input(format!(
            "plan {plan_id} has not run; nothing to replan"
        )));
    }
    let exec: baton_plan::Execution = baton_store::read_versioned(&exec_path)?;
    let state = exec
        .batch(&batch_id)
        .ok_or_else(|| CliError::input(format!("the execution has no batch {batch_id}")))?;
    let verdict = state
        .integration
        .as_ref()
        .and_then(|i| i.gates.last())
        .filter(|v| !v.passed)
        .cloned()
        .ok_or_else(|| {
            CliError::input(format!(
                "batch {batch_id} has no failed gate to replan; run `baton batch integrate {plan_id} {batch_id}` first"
            ))
        })?;
    if state.status != Status::Running {
        return Err(CliError::input(format!(
            "batch {batch_id} is {}; only a running batch can be replanned",
            state.status.as_str()
        )));
    }
    let hooks = loop_hooks(ctx, &plan_id, &plan, None)?;
    let decision = hooks.handle_failure(&batch_id, &verdict)?;
    let mut out = ReplanJson {
        plan: plan_id.to_string(),
        batch: batch_id.to_string(),
        decision: "stop",
        rerun: Vec::new(),
        why: None,
        findings: verdict.findings.clone(),
        report: verdict.report.clone(),
    };
    match decision {
        baton_run::replan::Decision::Stop { why } => {
            if !ctx.json {
                ctx.say(format!("no replan for batch {batch_id}: {why}"));
            }
            out.why = Some(why);
        }
        baton_run::replan::Decision::Rerun(agents) => {
            out.decision = "rerun";
            let gate_agents = hooks.gate_agents(&batch_id)?;
            for agent in &agents {
                hooks
                    .tracker
                    .reopen_agent(&batch_id, agent, baton_plan::ErrorClass::GateFailed)?;
                let vars = hooks.vars_for(&batch_id, agent)?;
                let g = gate_agents.iter().find(|g| &g.id == agent);
                out.rerun.push(RerunJson {
                    agent: agent.to_string(),
                    branch: g.map(|g| g.branch.clone()).unwrap_or_default(),
                    worktree: g.and_then(|g| g.worktree.clone()),
                    gate_findings: vars
                        .placeholders
                        .get("gate_findings")
                        .cloned()
                        .unwrap_or_default(),
                });
                if !ctx.json {
                    ctx.say(format!(
                        "re-run agent {agent}: it now starts from the integration branch with the others' work merged"
                    ));
                }
            }
            if !ctx.json {
                for f in &verdict.findings {
                    ctx.say(format!("  {f}"));
                }
                ctx.say(format!(
                    "then run `baton batch integrate {plan_id} {batch_id}` again"
                ));
            }
        }
    }
    let code = if out.decision == "rerun" {
        exit::OK
    } else {
        exit::GATE_FAILED
    };
    if ctx.json {
        ctx.print_json(&out)?;
    }
    Ok(code)
}

/// A batch about to start by hand (`worktree create --batch`): checked before anything is
/// written (the plan is stored, the batch exists, its dependencies succeeded).
pub struct BatchStart {
    pub plan_id: PlanId,
    pub plan: Plan,
    pub batch: BatchId,
    pub agents: Vec<baton_plan::AgentId>,
}

pub fn batch_start(ctx: &Ctx, plan: &str, batch: &str) -> CliResult<BatchStart> {
    let dir = ctx.state_dir()?;
    let plan_id = plan_store::resolve_plan_id(&dir, plan)?;
    let stored = plan_store::load_stored(&dir, &plan_id)?;
    let batch_id =
        BatchId::new(batch).map_err(|e| CliError::input(format!("--batch {batch:?}: {e}")))?;
    let Some(b) = stored.batch(&batch_id) else {
        return Err(CliError::input(format!(
            "--batch {batch_id}: plan {plan_id} has no such batch"
        )));
    };
    let exec_path = dir.execution(plan_id.as_str());
    let exec: Option<baton_plan::Execution> = if exec_path.exists() {
        Some(baton_store::read_versioned(&exec_path)?)
    } else {
        None
    };
    for dep in &b.depends_on {
        let status = exec
            .as_ref()
            .and_then(|e| e.batch(dep))
            .map_or(Status::Pending, |s| s.status);
        if status != Status::Succeeded {
            return Err(CliError::input(format!(
                "--batch {batch_id} depends on {dep}, which is {}; integrate {dep} first (`baton batch integrate {plan_id} {dep}`)",
                status.as_str()
            )));
        }
    }
    let agents = b.agents.iter().map(|a| a.id.clone()).collect();
    Ok(BatchStart {
        plan_id,
        plan: stored,
        batch: batch_id,
        agents,
    })
}

impl BatchStart {
    /// The integration branch, created at `target` if the plan has none yet.
    pub fn integration_base(&self, repo: &git2::Repository, target: &str) -> CliResult<String> {
        let base = baton_git::resolve_commit(repo, target)?;
        integrate::ensure_integration_branch(repo, &self.plan_id, base)?;
        Ok(integrate::integration_branch(&self.plan_id))
    }

    /// Record the batch and its agents (`(agent, worktree, branch)`) as started.
    pub fn record(&self, ctx: &Ctx, made: &[(String, PathBuf, String)]) -> CliResult<()> {
        let dir = ctx.state_dir_for_writing()?;
        let tracker = ExecutionTracker::open(
            dir.execution(self.plan_id.as_str()),
            self.plan_id.clone(),
            self.plan.clone(),
        )?;
        let metrics = MetricsLog::new(dir.metrics());
        let emit = |kind: &str, agent: Option<&str>| {
            if let Ok(mut e) = Event::new(kind, SystemTime::now()) {
                e.plan = Some(self.plan_id.to_string());
                e.batch = Some(self.batch.to_string());
                e.agent = agent.map(str::to_owned);
                let _ = metrics.append(&[e]);
            }
        };
        let exec = tracker.load()?;
        if exec
            .batch(&self.batch)
            .is_some_and(|b| b.status == Status::Pending)
        {
            tracker.start_batch(&self.batch)?;
            emit("batch_start", None);
        }
        let exec = tracker.load()?;
        for (agent, path, branch) in made {
            let Ok(id) = baton_plan::AgentId::new(agent.as_str()) else {
                continue;
            };
            let status = exec
                .batch(&self.batch)
                .and_then(|b| b.agents.iter().find(|a| a.id == id))
                .map(|a| a.status);
            if matches!(status, Some(Status::Pending | Status::Failed)) {
                tracker.start_agent(
                    &self.batch,
                    &id,
                    AgentStart {
                        process: None,
                        worktree: Some(path.clone()),
                        branch: Some(branch.clone()),
                    },
                )?;
                emit("agent_start", Some(agent));
            }
        }
        Ok(())
    }
}

/// `verify --plan P --batch B`: the batch's agents' branches (plan order; the execution's, else
/// `baton/<plan>/<agent>`), and the integration branch as the base when it exists.
pub fn batch_branches(
    ctx: &Ctx,
    plan: &str,
    batch: &str,
) -> CliResult<(Vec<String>, Option<String>)> {
    let dir = ctx.state_dir()?;
    let plan_id = plan_store::resolve_plan_id(&dir, plan)?;
    let stored = plan_store::load_stored(&dir, &plan_id)?;
    let batch_id =
        BatchId::new(batch).map_err(|e| CliError::input(format!("--batch {batch:?}: {e}")))?;
    let Some(b) = stored.batch(&batch_id) else {
        return Err(CliError::input(format!(
            "--batch {batch_id}: plan {plan_id} has no such batch"
        )));
    };
    let exec_path = dir.execution(plan_id.as_str());
    let exec: Option<baton_plan::Execution> = if exec_path.exists() {
        Some(baton_store::read_versioned(&exec_path)?)
    } else {
        None
    };
    let branches = b
        .agents
        .iter()
        .map(|a| {
            exec.as_ref()
                .and_then(|e| e.batch(&batch_id))
                .and_then(|s| s.agents.iter().find(|x| x.id == a.id))
                .and_then(|s| s.branch.clone())
                .unwrap_or_else(|| baton_plan::ids::agent_branch(&plan_id, &a.id))
        })
        .collect();
    let repo = ctx.repo()?.open()?;
    let base = integrate::integration_tip(&repo, &plan_id)?
        .map(|_| integrate::integration_branch(&plan_id));
    Ok((branches, base))
}

/// `verify --plan P --batch B` records its verdict: a gate verdict on the batch (when the
/// execution has the batch) and a verification event in the metrics.
pub fn record_verify(
    ctx: &Ctx,
    plan: &str,
    batch: &str,
    rep: &baton_report::VerifyReport,
    report: Option<&std::path::Path>,
) -> CliResult<()> {
    let dir = ctx.state_dir_for_writing()?;
    let plan_id = plan_store::resolve_plan_id(&dir, plan)?;
    let stored = plan_store::load_stored(&dir, &plan_id)?;
    let batch_id =
        BatchId::new(batch).map_err(|e| CliError::input(format!("--batch {batch:?}: {e}")))?;
    let mut findings = Vec::new();
    let mut agents: Vec<baton_plan::AgentId> = Vec::new();
    for c in &rep.checks {
        for f in c.findings.iter().filter(|f| {
            f.severity == baton_report::Severity::Error
                || (rep.strict && f.severity == baton_report::Severity::Warning)
        }) {
            findings.push(integrate::finding_line(&c.name, f));
            for a in &f.agents {
                if let Ok(id) = baton_plan::AgentId::new(a.as_str())
                    && !agents.contains(&id)
                {
                    agents.push(id);
                }
            }
        }
    }
    let verdict = baton_plan::GateVerdict {
        at: baton_plan::ids::rfc3339_now(SystemTime::now()),
        passed: rep.ok,
        failed_step: (!rep.ok).then(|| "verify".to_owned()),
        findings,
        agents,
        report: report.map(std::path::Path::to_owned),
    };
    let tracker = ExecutionTracker::open(dir.execution(plan_id.as_str()), plan_id.clone(), stored)?;
    tracker.update(|e, now| {
        let mut state = e
            .batch(&batch_id)
            .and_then(|b| b.integration.clone())
            .unwrap_or_default();
        state.gates.push(verdict);
        e.set_integration(&batch_id, state, now)
    })?;
    let metrics = MetricsLog::new(dir.metrics());
    if let Ok(mut e) = Event::new("verification", SystemTime::now()) {
        e.plan = Some(plan_id.to_string());
        e.batch = Some(batch_id.to_string());
        e.success = Some(rep.ok);
        e.details.insert("step".into(), "verify".into());
        let _ = metrics.append(&[e]);
    }
    Ok(())
}
