//! Execution state transitions: what is allowed, what is refused, and what a refusal leaves.

use std::path::Path;

use baton_plan::load::{Format, parse_plan};
use baton_plan::{
    AgentId, AgentResult, AgentStart, BatchId, ErrorClass, Execution, ExecutionTracker, Plan,
    PlanId, Status, TrackError, TransitionError,
};

fn plan() -> Plan {
    parse_plan(
        r#"schema_version = 1
title = "t"
[defaults]
command = ["true"]
[[batches]]
id = "B1"
[[batches.agents]]
id = "a"
task_type = "research"
[[batches.agents]]
id = "b"
task_type = "research"
[[batches]]
id = "B2"
depends_on = ["B1"]
[[batches.agents]]
id = "c"
task_type = "implement"
"#,
        Format::Toml,
        Path::new("p.toml"),
    )
    .unwrap()
}

fn b(s: &str) -> BatchId {
    BatchId::new(s).unwrap()
}
fn a(s: &str) -> AgentId {
    AgentId::new(s).unwrap()
}
fn id() -> PlanId {
    PlanId::new("OP-20260101-000000-00000001").unwrap()
}
fn ok_result(attempts: u32) -> AgentResult {
    AgentResult {
        exit_code: Some(0),
        attempts,
        duration_ms: 5,
        ..AgentResult::default()
    }
}

#[test]
fn a_batch_waits_for_its_dependencies() {
    let plan = plan();
    let mut e = Execution::new(id(), &plan, "t0");
    let err = e.start_batch(&plan, &b("B2"), "t1").unwrap_err();
    assert_eq!(
        err.to_string(),
        "batch B2 cannot start: dependency B1 is pending, not succeeded"
    );
    assert_eq!(e.ready_batches(&plan), vec![&b("B1")]);
    e.start_batch(&plan, &b("B1"), "t1").unwrap();
    assert!(e.ready_batches(&plan).is_empty());
}

#[test]
fn retry_then_complete_skips_unstarted_agents() {
    let plan = plan();
    let mut e = Execution::new(id(), &plan, "t0");
    e.start_batch(&plan, &b("B1"), "t1").unwrap();
    assert_eq!(
        e.start_agent(&b("B1"), &a("a"), AgentStart::default(), "t2"),
        Ok(1)
    );
    let failed = AgentResult {
        exit_code: Some(1),
        attempts: 1,
        error_class: Some(ErrorClass::ExitNonzero),
        ..AgentResult::default()
    };
    e.record_agent_result(&b("B1"), &a("a"), Status::Failed, failed, "t3")
        .unwrap();
    // a retry is a new attempt of the same agent
    assert_eq!(
        e.start_agent(&b("B1"), &a("a"), AgentStart::default(), "t4"),
        Ok(2)
    );
    // completing while an agent runs is refused
    assert!(matches!(
        e.complete_batch(&b("B1"), Status::Succeeded, "t5"),
        Err(TransitionError::BadState { .. })
    ));
    e.record_agent_result(&b("B1"), &a("a"), Status::Succeeded, ok_result(2), "t5")
        .unwrap();
    e.complete_batch(&b("B1"), Status::Failed, "t6").unwrap();
    let b1 = e.batch(&b("B1")).unwrap();
    assert_eq!(b1.agents[1].status, Status::Skipped, "b never started");
    assert_eq!(e.status, Status::Running, "B2 is still pending");
    // B2 can never start now: its dependency failed
    e.skip_batch(&b("B2"), "t7").unwrap();
    assert_eq!(e.status, Status::Failed);
    assert_eq!(e.finished_at.as_deref(), Some("t7"));
}

#[test]
fn results_only_for_running_agents() {
    let plan = plan();
    let mut e = Execution::new(id(), &plan, "t0");
    e.start_batch(&plan, &b("B1"), "t1").unwrap();
    let err = e
        .record_agent_result(&b("B1"), &a("b"), Status::Succeeded, ok_result(1), "t2")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "agent b is pending; recording a result is not possible now"
    );
    assert!(matches!(
        e.start_agent(&b("B1"), &a("zz"), AgentStart::default(), "t2"),
        Err(TransitionError::UnknownAgent { .. })
    ));
}

#[test]
fn replan_appends_and_keeps_history() {
    let plan = plan();
    let mut e = Execution::new(id(), &plan, "t0");
    e.start_batch(&plan, &b("B1"), "t1").unwrap();
    let mut next = plan.clone();
    next.batches.retain(|x| x.id.as_str() == "B1");
    let mut extra = plan.batches[1].clone();
    extra.id = b("B3");
    extra.agents[0].id = a("d");
    next.batches.push(extra);
    let changed = e.record_replan(&next, "split the work", "t2");
    assert_eq!(changed, vec![b("B2"), b("B3")]);
    let ids: Vec<&str> = e.batches.iter().map(|x| x.id.as_str()).collect();
    assert_eq!(ids, ["B1", "B3"]);
    assert_eq!(e.replans.len(), 1);
    assert_eq!(e.replans[0].reason, "split the work");
}

#[test]
fn tracker_persists_every_transition_and_refusals_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exec.json");
    let plan = plan();
    let tracker = ExecutionTracker::open(&path, id(), plan).unwrap();
    assert_eq!(tracker.load().unwrap().revision, 0);
    tracker.start_batch(&b("B1")).unwrap();
    let before = std::fs::read(&path).unwrap();
    let err = tracker.start_batch(&b("B2")).unwrap_err();
    assert!(matches!(err, TrackError::Transition { .. }));
    assert!(
        err.to_string()
            .starts_with(&format!("{}: batch B2 cannot start", path.display()))
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "a refused transition writes nothing"
    );
    let (exec, attempt) = tracker
        .start_agent(&b("B1"), &a("a"), AgentStart::default())
        .unwrap();
    assert_eq!(attempt, 1);
    assert_eq!(exec.revision, 2);
    // a second tracker (another process, say) sees and continues the same state
    let other = ExecutionTracker::open(&path, id(), self::plan()).unwrap();
    let e = other
        .record_agent_result(&b("B1"), &a("a"), Status::Succeeded, ok_result(1))
        .unwrap();
    assert_eq!(
        e.revision, 3,
        "opening an existing execution does not rewrite it"
    );
    assert_eq!(tracker.load().unwrap(), e);
}

#[test]
fn a_gate_failure_reopens_a_finished_agent_for_another_attempt() {
    let plan = plan();
    let mut e = Execution::new(id(), &plan, "t0");
    e.start_batch(&plan, &b("B1"), "t1").unwrap();
    // not finished yet: nothing to reopen
    assert!(
        e.reopen_agent(&b("B1"), &a("a"), ErrorClass::GateFailed, "t2")
            .is_err()
    );
    e.start_agent(&b("B1"), &a("a"), AgentStart::default(), "t2")
        .unwrap();
    e.record_agent_result(&b("B1"), &a("a"), Status::Succeeded, ok_result(1), "t3")
        .unwrap();
    // a succeeded agent cannot simply start again ...
    assert!(
        e.start_agent(&b("B1"), &a("a"), AgentStart::default(), "t4")
            .is_err()
    );
    // ... but the gate can send it back
    e.reopen_agent(&b("B1"), &a("a"), ErrorClass::GateFailed, "t4")
        .unwrap();
    let agent = &e.batch(&b("B1")).unwrap().agents[0];
    assert_eq!(agent.status, Status::Failed);
    assert_eq!(
        agent.result.as_ref().unwrap().error_class,
        Some(ErrorClass::GateFailed)
    );
    assert_eq!(
        e.start_agent(&b("B1"), &a("a"), AgentStart::default(), "t5"),
        Ok(2)
    );
}

/// What the runner decides about an attempt (a retry's due time, a stop under way) lives as
/// long as that attempt and no longer, and an execution written before these fields existed
/// still reads.
#[test]
fn retry_times_and_stops_belong_to_one_attempt_and_old_files_still_read() {
    let plan = plan();
    let mut e = Execution::new(id(), &plan, "t0");
    e.start_batch(&plan, &b("B1"), "t1").unwrap();
    e.start_agent(&b("B1"), &a("a"), AgentStart::default(), "t2")
        .unwrap();
    // a running agent has no retry to schedule
    assert!(matches!(
        e.set_retry_at(&b("B1"), &a("a"), Some("t9".into()), "t3"),
        Err(TransitionError::BadState { .. })
    ));
    e.stop_agent(&b("B1"), &a("a"), ErrorClass::Timeout, "t3")
        .unwrap();
    let failed = AgentResult {
        attempts: 1,
        error_class: Some(ErrorClass::Timeout),
        ..AgentResult::default()
    };
    e.record_agent_result(&b("B1"), &a("a"), Status::Failed, failed, "t4")
        .unwrap();
    let state = |e: &Execution| e.batch(&b("B1")).unwrap().agents[0].clone();
    assert_eq!(state(&e).stopping, None, "the stop ended with the attempt");
    e.set_retry_at(&b("B1"), &a("a"), Some("t9".into()), "t5")
        .unwrap();
    assert_eq!(state(&e).retry_at.as_deref(), Some("t9"));
    e.start_agent(&b("B1"), &a("a"), AgentStart::default(), "t9")
        .unwrap();
    assert_eq!(state(&e).retry_at, None, "the retry started");
    // leftovers found after a result was recorded join it; before there is one, refused
    assert!(matches!(
        e.add_leftovers(&b("B1"), &a("b"), &Default::default(), "t9"),
        Err(TransitionError::BadState { .. })
    ));
    let late = baton_plan::Leftovers {
        survived: vec![42],
        ..Default::default()
    };
    e.add_leftovers(&b("B1"), &a("a"), &late, "t9").unwrap();
    e.add_leftovers(&b("B1"), &a("a"), &late, "t9").unwrap();
    let result = state(&e).result.unwrap();
    assert_eq!(result.leftovers.unwrap().survived, [42, 42]);
    assert!(matches!(
        e.stop_agent(&b("B1"), &a("b"), ErrorClass::Timeout, "t9"),
        Err(TransitionError::BadState { .. })
    ));
    // unset, the new fields are left out, so the file reads as one written before them
    // (every new field must have a default for this to read)
    let old = serde_json::to_value(Execution::new(id(), &plan, "t0")).unwrap();
    for key in ["breaker", "gate_reruns"] {
        assert!(old.get(key).is_none(), "{key} written while unset");
    }
    for key in ["retry_at", "stopping"] {
        assert!(old["batches"][0]["agents"][0].get(key).is_none(), "{key}");
    }
    let back: Execution = serde_json::from_value(old).unwrap();
    assert_eq!(back, Execution::new(id(), &plan, "t0"));
}
