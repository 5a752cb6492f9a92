//! `baton batch integrate PLAN BATCH`: one step of the batch loop driven by hand (by a
//! director agent or a CI job): commit what each agent left in its worktree, gate the batch,
//! merge the agents' branches in plan order onto `baton/<plan>/integration`, test the merged
//! tree in a scratch directory, and move the integration branch only if all of that passed.
//! Each step is recorded in the execution, so `baton status`, metrics and tasks move, and a
//! run interrupted anywhere continues where it stopped.

mod by_hand;
mod gate;
mod loop_hooks;
mod replan;

pub use self::by_hand::{batch_branches, batch_start, record_cleanup, record_verify};

use std::path::PathBuf;
use std::time::SystemTime;

use baton_metrics::Event;
use baton_plan::{AgentResult, AgentStart, BatchId, PlanId, Status, store as plan_store};
use baton_report::exit;
use baton_run::LoopHooks;
use baton_run::integrate::{self, IntegrateError, IntegrateOutcome};
use clap::{Args, Subcommand};
use serde::Serialize;

pub use self::gate::CliGate;
pub use self::loop_hooks::loop_hooks;
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
        BatchCommand::Replan(a) => replan::replan_cmd(ctx, a),
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

    // --- a replan re-runs its agents one after another: the next one, if any, first --------
    if !already && let Some(next) = hooks.next_replanned(&batch_id)? {
        let g = hooks.gate_agents(&batch_id)?;
        let g = g.iter().find(|a| a.id == next);
        if ctx.json {
            ctx.print_json(&serde_json::json!({
                "plan": plan_id.to_string(),
                "batch": batch_id.to_string(),
                "integration_branch": integrate::integration_branch(&plan_id),
                "outcome": "rerun_next",
                "rerun": next.to_string(),
                "branch": g.map(|g| g.branch.clone()),
                "worktree": g.and_then(|g| g.worktree.clone()),
            }))?;
        } else {
            ctx.say(format!(
                "batch {batch_id} is being replanned: re-run agent {next} next (its branch now holds the work of the agent re-run before it), then run `baton batch integrate {plan_id} {batch_id}` again"
            ));
        }
        return Ok(exit::OK);
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
            finish_batch(ctx, &hooks, &batch_id)?;
            exit::OK
        }
        IntegrateOutcome::AlreadyDone { tip } => {
            out.outcome = "already_done";
            out.to = Some(tip);
            finish_batch(ctx, &hooks, &batch_id)?;
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
                event(hooks, "agent_start", batch_id, |e| {
                    e.agent = Some(agent.id.to_string());
                    e.task_type = Some(agent.task_type.as_str().to_owned());
                    e.details.insert("attempt".into(), n.to_string());
                });
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
            leftovers: None,
        };
        let files = result.files_changed.len();
        hooks
            .tracker
            .record_agent_result(batch_id, &agent.id, Status::Succeeded, result)?;
        // as the runner does: metrics count the agent's attempt by task type
        event(hooks, "agent_complete", batch_id, |e| {
            e.agent = Some(agent.id.to_string());
            e.task_type = Some(agent.task_type.as_str().to_owned());
            e.success = Some(true);
            e.details.insert("attempt".into(), attempt.to_string());
            e.details.insert("files_changed".into(), files.to_string());
        });
    }

    Ok(())
}

/// The batch passed: mark it succeeded, record metrics, close its task.
fn finish_batch(ctx: &Ctx, hooks: &LoopHooks, batch: &BatchId) -> CliResult<()> {
    let exec = hooks.tracker.load()?;
    if exec
        .batch(batch)
        .is_some_and(|b| b.status == Status::Running)
    {
        hooks.tracker.complete_batch(batch, Status::Succeeded)?;
        event(hooks, "batch_complete", batch, |e| e.success = Some(true));
    }
    // a backend that fails does not fail the batch: it is said, recorded, tried again later
    let outcomes = hooks.close_tasks(batch)?;
    super::task::warn_open(ctx, &hooks.plan_id, &outcomes);
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
