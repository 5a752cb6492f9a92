//! The other steps of the loop driven by hand: `worktree create --batch` (start a batch on
//! the integration branch) and `verify --plan P --batch B` (gate one batch, record it).

use std::path::PathBuf;
use std::time::SystemTime;

use baton_metrics::{Event, MetricsLog};
use baton_plan::{
    AgentStart, BatchId, ExecutionTracker, Plan, PlanId, Status, store as plan_store,
};
use baton_run::integrate;

use crate::ctx::Ctx;
use crate::error::{CliError, CliResult};

/// A batch about to start by hand (`worktree create --batch`): checked before anything is
/// written (the plan is stored, the batch exists, its dependencies succeeded).
pub struct BatchStart {
    pub plan_id: PlanId,
    pub plan: Plan,
    pub batch: BatchId,
    pub agents: Vec<baton_plan::AgentId>,
}

pub fn batch_start(ctx: &Ctx, plan: &str, batch: &str) -> CliResult<BatchStart> {
    let (plan_id, stored, batch_id, exec) = load_batch(ctx, plan, batch)?;
    let b = stored
        .batch(&batch_id)
        .expect("load_batch checked the batch exists");
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
    let (plan_id, stored, batch_id, exec) = load_batch(ctx, plan, batch)?;
    let b = stored
        .batch(&batch_id)
        .expect("load_batch checked the batch exists");
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

/// `verify --plan P --batch B` records its verdict as a gate verdict on the batch (the
/// verification event in the metrics is written by `verify` itself).
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
    Ok(())
}

/// `worktree cleanup --plan P --batch B` records what it removed: the batch's
/// `cleaned_up_at` in the execution and a `worktree` metrics event per removed worktree. A
/// dry run, or a plan that never ran, records nothing.
pub fn record_cleanup(
    ctx: &Ctx,
    plan: &str,
    batch: &str,
    report: &baton_worktree::CleanupReport,
) -> CliResult<()> {
    if report.dry_run {
        return Ok(());
    }
    let (plan_id, stored, batch_id, exec) = load_batch(ctx, plan, batch)?;
    let Some(exec) = exec else {
        return Ok(());
    };
    let b = stored
        .batch(&batch_id)
        .expect("load_batch checked the batch exists");
    let removed: Vec<(String, String)> = b
        .agents
        .iter()
        .filter_map(|a| {
            let branch = exec
                .batch(&batch_id)
                .and_then(|s| s.agents.iter().find(|x| x.id == a.id))
                .and_then(|s| s.branch.clone())
                .unwrap_or_else(|| baton_plan::ids::agent_branch(&plan_id, &a.id));
            report
                .actions
                .iter()
                .any(|x| {
                    x.done
                        && x.kind == baton_worktree::ActionKind::Remove
                        && x.branch.as_deref() == Some(branch.as_str())
                })
                .then(|| (a.id.to_string(), branch))
        })
        .collect();
    if removed.is_empty() {
        return Ok(());
    }
    let dir = ctx.state_dir_for_writing()?;
    let tracker = ExecutionTracker::open(dir.execution(plan_id.as_str()), plan_id.clone(), stored)?;
    tracker.update(|e, now| e.record_cleanup(&batch_id, now))?;
    let metrics = MetricsLog::new(dir.metrics());
    let events: Vec<Event> = removed
        .iter()
        .filter_map(|(agent, branch)| {
            let mut e = Event::new("worktree", SystemTime::now()).ok()?;
            e.plan = Some(plan_id.to_string());
            e.batch = Some(batch_id.to_string());
            e.agent = Some(agent.clone());
            e.success = Some(true);
            e.details.insert("action".into(), "cleanup".into());
            e.details.insert("branch".into(), branch.clone());
            Some(e)
        })
        .collect();
    // metrics never fail the step
    let _ = metrics.append(&events);
    Ok(())
}

/// The stored plan `plan` (an id, a unique suffix or `latest`), its batch `batch` (checked to
/// exist) and the plan's execution, if it has one.
fn load_batch(
    ctx: &Ctx,
    plan: &str,
    batch: &str,
) -> CliResult<(PlanId, Plan, BatchId, Option<baton_plan::Execution>)> {
    let dir = ctx.state_dir()?;
    let plan_id = plan_store::resolve_plan_id(&dir, plan)?;
    let stored = plan_store::load_stored(&dir, &plan_id)?;
    let batch_id =
        BatchId::new(batch).map_err(|e| CliError::input(format!("--batch {batch:?}: {e}")))?;
    if stored.batch(&batch_id).is_none() {
        return Err(CliError::input(format!(
            "--batch {batch_id}: plan {plan_id} has no such batch"
        )));
    }
    let exec_path = dir.execution(plan_id.as_str());
    let exec = if exec_path.exists() {
        Some(baton_store::read_versioned(&exec_path)?)
    } else {
        None
    };
    Ok((plan_id, stored, batch_id, exec))
}
