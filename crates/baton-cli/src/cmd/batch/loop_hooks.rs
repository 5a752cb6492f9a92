//! The batch loop's hooks as the CLI builds them for a stored plan (for `baton run` and the
//! steps driven by hand): the gate, the metrics log, the task backends, and the test-only
//! step log of the crash tests. The CLI reads the environment here; the library never does.

use std::path::PathBuf;

use baton_metrics::MetricsLog;
use baton_plan::{BatchId, ExecutionTracker, Plan, PlanId};
use baton_run::LoopHooks;

use super::CliGate;
use crate::ctx::Ctx;
use crate::error::{CliError, CliResult};

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
        scratch_dir: super::super::verify::scratch_root(&repo_paths),
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
    hooks.after_step = test_step_hook();
    hooks.task_stores = super::super::task::all_stores(&state);
    Ok(hooks)
}

/// Test-only (the crash tests): `BATON_TEST_STEP_LOG=FILE` appends `<batch> <step>` to FILE
/// as each integration step (`gate`, `merge`, `tests`, `advance`, `tasks`; `replan-<agent>`
/// once a replan is recorded, before the agent's branch moves) is recorded, and
/// `BATON_TEST_HOLD_AFTER=STEP` then stops the process for good right after the first STEP,
/// for the test to SIGKILL it there. Unset, nothing happens.
fn test_step_hook() -> Option<Box<baton_run::integrate::StepHook>> {
    let log = PathBuf::from(std::env::var_os("BATON_TEST_STEP_LOG")?);
    let hold = std::env::var("BATON_TEST_HOLD_AFTER").ok();
    Some(Box::new(move |batch: &BatchId, step: &str| {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
        {
            let _ = writeln!(f, "{batch} {step}");
            let _ = f.sync_all();
        }
        if hold.as_deref() == Some(step) {
            loop {
                std::thread::park();
            }
        }
    }))
}
