//! The runner end to end inside the library: real child processes through a small executor
//! that runs them directly (the supervisor is the CLI binary's, tested end to end in
//! `tests/it/run*.rs`), a real execution file, and gate hooks that send agents back.

use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc::Sender;
use std::time::Duration;

use baton_plan::load::{Format, parse_plan};
use baton_plan::{ExecutionTracker, PlanId, Status};

use super::*;
use crate::executor::{AttemptSpec, ExecError, KillReport};
use crate::hooks::HookError;

/// Runs argv directly and reports its exit code; enough to drive the runner.
struct Direct;

impl Executor for Direct {
    fn kind(&self) -> &'static str {
        "direct"
    }
    fn start(
        &self,
        spec: &AttemptSpec,
        events: Sender<AttemptEvent>,
    ) -> Result<AttemptHandle, ExecError> {
        let mut child = std::process::Command::new(&spec.argv[0])
            .args(&spec.argv[1..])
            .current_dir(&spec.cwd)
            .envs(&spec.env)
            .spawn()?;
        let pid = child.id();
        let key = spec.key.clone();
        std::thread::spawn(move || {
            let code = child.wait().ok().and_then(|s| s.code()).unwrap_or(-1);
            let _ = events.send(AttemptEvent {
                key,
                kind: EventKind::Finished(Outcome::Exited(code)),
            });
        });
        Ok(AttemptHandle::Local { pid, start_time: 0 })
    }
    fn adopt(
        &self,
        _: &AttemptSpec,
        _: &AttemptHandle,
        _: Sender<AttemptEvent>,
    ) -> Result<Adoption, ExecError> {
        Ok(Adoption::Finished(Outcome::Lost("not adoptable".into())))
    }
    fn kill(&self, _: &AttemptHandle, _: Duration) -> Result<KillReport, ExecError> {
        Ok(KillReport::default())
    }
}

/// Fails the gate of B1 `fails` times, asking for `rerun` each time, then passes.
struct Gate {
    fails: Mutex<u32>,
    rerun: Vec<AgentId>,
    after_agent: Mutex<Vec<(String, u32, bool)>>,
}

impl BatchHooks for Gate {
    fn after_agent(&self, ctx: &AgentContext) -> Result<(), HookError> {
        self.after_agent
            .lock()
            .unwrap()
            .push((ctx.agent.to_string(), ctx.attempt, ctx.succeeded));
        Ok(())
    }
    fn after_batch(&self, ctx: &BatchContext) -> Result<GateDecision, HookError> {
        let mut fails = self.fails.lock().unwrap();
        if ctx.batch.as_str() == "B1" && *fails > 0 {
            *fails -= 1;
            return Ok(GateDecision::Fail {
                report: None,
                findings: "a conflict".into(),
                rerun: self.rerun.clone(),
            });
        }
        Ok(GateDecision::Pass)
    }
}

fn run_with(gate_fails: u32, budget: u32) -> (Execution, Vec<RunEvent>, Vec<(String, u32, bool)>) {
    run_after(gate_fails, budget, 0)
}

/// `run_with`, on an execution whose earlier runners already spent `used` of the budget.
fn run_after(
    gate_fails: u32,
    budget: u32,
    used: u32,
) -> (Execution, Vec<RunEvent>, Vec<(String, u32, bool)>) {
    let dir = tempfile::tempdir().unwrap();
    let plan = parse_plan(
        r#"schema_version = 1
title = "t"
[defaults]
isolation = "none"
command = ["true"]
[[batches]]
id = "B1"
[[batches.agents]]
id = "a"
task_type = "implement"
[[batches.agents]]
id = "b"
task_type = "implement"
[[batches]]
id = "B2"
depends_on = ["B1"]
[[batches.agents]]
id = "c"
task_type = "test"
"#,
        Format::Toml,
        Path::new("p.toml"),
    )
    .unwrap();
    let id = PlanId::new("OP-20260101-000000-abcdef01").unwrap();
    let tracker =
        ExecutionTracker::open(dir.path().join("e.json"), id.clone(), plan.clone()).unwrap();
    if used > 0 {
        tracker
            .update(|e, _| {
                e.gate_reruns = used;
                Ok(())
            })
            .unwrap();
    }
    let hooks = std::sync::Arc::new(Gate {
        fails: Mutex::new(gate_fails),
        rerun: vec![AgentId::new("a").unwrap()],
        after_agent: Mutex::new(Vec::new()),
    });
    struct Shared(std::sync::Arc<Gate>);
    impl BatchHooks for Shared {
        fn after_agent(&self, ctx: &AgentContext) -> Result<(), HookError> {
            self.0.after_agent(ctx)
        }
        fn after_batch(&self, ctx: &BatchContext) -> Result<GateDecision, HookError> {
            self.0.after_batch(ctx)
        }
    }
    let cfg = RunConfig {
        repo_root: dir.path().to_path_buf(),
        logs_dir: dir.path().join("logs"),
        max_parallel: 4,
        grace: Duration::from_millis(100),
        backoff: Backoff::default(),
        breaker_threshold: 2,
        rate_limit_cooldown: Duration::from_secs(1),
        replan_budget: budget,
        default_retries: 0,
        min_free_memory_mb: None,
        max_load: None,
        limits_file: None,
        nonce: 1,
        runner: None,
        search_path: None,
    };
    let runner = Runner::new(
        plan,
        id,
        tracker,
        Box::new(Direct),
        Box::new(Shared(hooks.clone())),
        Box::new(SharedCheckout),
        cfg,
    )
    .unwrap();
    let mut events = Vec::new();
    let summary = runner.run(&mut |e| events.push(e.clone())).unwrap();
    let calls = hooks.after_agent.lock().unwrap().clone();
    (summary.execution, events, calls)
}

fn attempt_of(exec: &Execution, agent: &str) -> u32 {
    exec.batches
        .iter()
        .flat_map(|b| &b.agents)
        .find(|a| a.id.as_str() == agent)
        .unwrap()
        .attempt
}

#[test]
fn a_failed_gate_sends_the_named_agents_back_then_the_plan_goes_on() {
    let (exec, events, calls) = run_with(1, 2);
    assert_eq!(exec.status, Status::Succeeded, "{events:?}");
    assert_eq!(
        attempt_of(&exec, "a"),
        2,
        "a ran again after the gate failed"
    );
    assert_eq!(attempt_of(&exec, "b"), 1, "b was not sent back");
    assert_eq!(attempt_of(&exec, "c"), 1);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, RunEvent::GateFailed { rerun, .. } if rerun.len() == 1))
    );
    // after_agent saw every attempt, the rerun included
    let a_calls: Vec<_> = calls.iter().filter(|(a, _, _)| a == "a").collect();
    assert_eq!(a_calls.len(), 2);
    assert!(a_calls.iter().all(|(_, _, ok)| *ok));
}

#[test]
fn past_the_replan_budget_the_batch_fails_and_its_dependents_are_skipped() {
    let (exec, _, _) = run_with(5, 1);
    assert_eq!(exec.status, Status::Failed);
    assert_eq!(attempt_of(&exec, "a"), 2, "one replan, then no more");
    assert_eq!(exec.batches[0].status, Status::Failed);
    assert_eq!(exec.batches[1].status, Status::Skipped);
    assert_eq!(attempt_of(&exec, "c"), 0);
}

#[test]
fn the_replan_budget_counts_what_earlier_runners_spent() {
    let (exec, _, _) = run_after(1, 2, 1);
    assert_eq!(exec.status, Status::Succeeded);
    assert_eq!(exec.gate_reruns, 2, "one more rerun, counted");
    let (exec, _, _) = run_after(1, 2, 2);
    assert_eq!(exec.status, Status::Failed, "the budget was spent before");
    assert_eq!(attempt_of(&exec, "a"), 1);
}
