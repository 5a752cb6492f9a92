//! The demo's scripted director: runs agents in their worktrees as child processes (argv, no
//! shell string), records every step in the execution state and the metrics log, and merges
//! batches into the main branch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime};

use baton_metrics::{Event, MetricsLog};
use baton_plan::{
    AgentResult, AgentStart, BatchId, ErrorClass, ExecutionTracker, Plan, PlanId, Status,
};

use crate::error::{CliError, CliResult};

/// Where one agent works.
#[derive(Debug, Clone)]
pub struct Seat {
    pub worktree: PathBuf,
    pub branch: String,
    pub base: String,
}

pub struct Director {
    pub plan: Plan,
    pub plan_id: PlanId,
    pub tracker: ExecutionTracker,
    pub metrics: MetricsLog,
    pub say: Box<dyn Fn(String)>,
}

fn env_err(what: &str) -> impl FnOnce(String) -> CliError + '_ {
    move |e| CliError::env(format!("demo: {what}: {e}"))
}

impl Director {
    fn event(&self, kind: &str, batch: &BatchId, fill: impl FnOnce(&mut Event)) -> CliResult<()> {
        let mut event =
            Event::new(kind, SystemTime::now()).map_err(|e| env_err("metrics")(e.to_string()))?;
        event.plan = Some(self.plan_id.to_string());
        event.batch = Some(batch.to_string());
        fill(&mut event);
        self.metrics
            .append(&[event])
            .map_err(|e| env_err("metrics")(e.to_string()))
    }

    pub fn start_batch(&self, batch: &BatchId) -> CliResult<Instant> {
        self.tracker.start_batch(batch)?;
        self.event("batch_start", batch, |_| {})?;
        Ok(Instant::now())
    }

    pub fn complete_batch(&self, batch: &BatchId, started: Instant, ok: bool) -> CliResult<()> {
        let status = if ok {
            Status::Succeeded
        } else {
            Status::Failed
        };
        self.tracker.complete_batch(batch, status)?;
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.event("batch_complete", batch, |e| {
            e.duration_ms = Some(ms);
            e.success = Some(ok);
        })
    }

    /// The gate after a batch: a verification event.
    pub fn record_gate(&self, batch: &BatchId, passed: bool) -> CliResult<()> {
        self.event("verification", batch, |e| e.success = Some(passed))
    }

    /// The gate sent an agent back.
    pub fn reopen(&self, batch: &BatchId, agent: &str) -> CliResult<()> {
        let agent = agent
            .parse()
            .map_err(|e: baton_plan::IdError| env_err("agent")(e.to_string()))?;
        self.tracker
            .reopen_agent(batch, &agent, ErrorClass::GateFailed)?;
        Ok(())
    }

    /// Run one attempt of an agent in its worktree; returns whether it succeeded.
    pub fn run_agent(&self, batch: &BatchId, agent_id: &str, seat: &Seat) -> CliResult<bool> {
        let (_, agent) = self
            .plan
            .agents()
            .find(|(_, a)| a.id.as_str() == agent_id)
            .ok_or_else(|| CliError::env(format!("demo: the plan has no agent {agent_id}")))?;
        let command = self
            .plan
            .command_of(agent)
            .ok_or_else(|| CliError::env(format!("demo: agent {agent_id} has no command")))?;
        let (_, attempt) = self.tracker.start_agent(
            batch,
            &agent.id,
            AgentStart {
                process: None,
                worktree: Some(seat.worktree.clone()),
                branch: Some(seat.branch.clone()),
            },
        )?;
        let vars: BTreeMap<&str, String> = [
            ("agent_id", agent.id.to_string()),
            ("batch_id", batch.to_string()),
            ("plan_id", self.plan_id.to_string()),
            ("prompt", agent.prompt.clone()),
            ("task_type", agent.task_type.as_str().to_owned()),
            ("worktree", seat.worktree.display().to_string()),
            ("branch", seat.branch.clone()),
        ]
        .into_iter()
        .collect();
        let argv = baton_plan::validate::render_command(command, &vars);
        let started = Instant::now();
        let out = Command::new(&argv[0])
            .args(&argv[1..])
            .current_dir(&seat.worktree)
            .env("BATON_PLAN_ID", self.plan_id.as_str())
            .env("BATON_BATCH_ID", batch.as_str())
            .env("BATON_AGENT_ID", agent.id.as_str())
            .env("BATON_ATTEMPT", attempt.to_string())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| env_err("start agent")(format!("{}: {e}", argv[0])))?;
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let ok = out.status.success();
        let files_changed = changed_files(&seat.worktree, &seat.base)?;
        let error_class = (!ok).then_some(ErrorClass::ExitNonzero);
        let result = AgentResult {
            exit_code: out.status.code(),
            attempts: attempt,
            duration_ms,
            files_changed: files_changed.clone(),
            summary: Some(String::from_utf8_lossy(&out.stdout).trim().to_owned()),
            error_class,
        };
        let status = if ok {
            Status::Succeeded
        } else {
            Status::Failed
        };
        self.tracker
            .record_agent_result(batch, &agent.id, status, result)?;
        self.event("agent_complete", batch, |e| {
            e.agent = Some(agent.id.to_string());
            e.task_type = Some(agent.task_type.as_str().to_owned());
            e.duration_ms = Some(duration_ms);
            e.success = Some(ok);
            e.error_class = (!ok).then(|| "exit_nonzero".to_owned());
        })?;
        let note = if ok {
            format!("changed {}", files_changed.join(", "))
        } else {
            // the last line that says something; none when the agent printed nothing
            let stderr = String::from_utf8_lossy(&out.stderr);
            match stderr.lines().rev().map(str::trim).find(|l| !l.is_empty()) {
                Some(last) => format!("failed ({}): {last}", out.status),
                None => format!("failed ({}, no output)", out.status),
            }
        };
        (self.say)(format!("  agent {agent_id} attempt {attempt}: {note}"));
        Ok(ok)
    }
}

/// Files an agent changed, measured from git (base commit → its worktree's HEAD), not taken
/// from what the agent says.
fn changed_files(worktree: &Path, base: &str) -> CliResult<Vec<String>> {
    let fail = |e: git2::Error| CliError::env(format!("demo: measure changes: {}", e.message()));
    let repo = git2::Repository::open(worktree).map_err(fail)?;
    let base = repo
        .revparse_single(base)
        .and_then(|o| o.peel_to_tree())
        .map_err(fail)?;
    let head = repo.head().and_then(|h| h.peel_to_tree()).map_err(fail)?;
    let diff = repo
        .diff_tree_to_tree(Some(&base), Some(&head), None)
        .map_err(fail)?;
    Ok(diff
        .deltas()
        .filter_map(|d| d.new_file().path().or(d.old_file().path()))
        .map(|p| p.display().to_string())
        .collect())
}
