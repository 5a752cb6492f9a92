//! `baton batch replan PLAN BATCH`: after a failed gate, the plan's policy by hand.

use std::path::PathBuf;

use baton_plan::{BatchId, Status, store as plan_store};
use baton_report::exit;
use serde::Serialize;

use crate::ctx::Ctx;
use crate::error::{CliError, CliResult};

use super::{ReplanArgs, loop_hooks};

#[derive(Serialize)]
struct ReplanJson {
    plan: String,
    batch: String,
    /// `rerun` or `stop`.
    decision: &'static str,
    rerun: Vec<RerunJson>,
    /// Agents re-run after it, one after another, each on the new work of the one before
    /// (`baton batch integrate` moves the next one there once the one before has finished).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    then: Vec<String>,
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

pub(super) fn replan_cmd(ctx: &Ctx, a: ReplanArgs) -> CliResult {
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
    if let Some(waiting) = state
        .integration
        .as_ref()
        .filter(|i| !i.replan_queue.is_empty())
        .map(|i| &i.replan_queue)
    {
        return Err(CliError::input(format!(
            "batch {batch_id} is being replanned already ({} still to re-run, one after another); run `baton batch integrate {plan_id} {batch_id}` once the agent re-running now has finished",
            waiting
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
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
        then: Vec::new(),
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
            out.then = hooks
                .tracker
                .load()?
                .batch(&batch_id)
                .and_then(|b| b.integration.as_ref())
                .map(|i| i.replan_queue.iter().map(ToString::to_string).collect())
                .unwrap_or_default();
            if !ctx.json {
                if !out.then.is_empty() {
                    ctx.say(format!(
                        "then, one after another, {}: each starts on the new work of the one before (`baton batch integrate` moves it there)",
                        out.then.join(", ")
                    ));
                }
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
