//! Scheduling decisions on small plans written as TOML.

use std::collections::BTreeMap;
use std::path::Path;

use baton_plan::load::{Format, parse_plan};
use baton_plan::{AgentResult, AgentStart, ErrorClass, Execution, Plan, Status};

use super::*;

fn plan(toml: &str) -> Plan {
    let text =
        format!("schema_version = 1\ntitle = \"t\"\n[defaults]\ncommand = [\"true\"]\n{toml}");
    parse_plan(&text, Format::Toml, Path::new("plan.toml")).expect("plan parses")
}

fn b(s: &str) -> BatchId {
    BatchId::new(s).unwrap()
}
fn a(s: &str) -> AgentId {
    AgentId::new(s).unwrap()
}

struct Sim {
    plan: Plan,
    exec: Execution,
    overlaps: Overlaps,
    not_before: BTreeMap<AgentId, u64>,
    max_parallel: usize,
    stopped: Option<&'static str>,
}

impl Sim {
    fn new(toml: &str) -> Self {
        let plan = plan(toml);
        let exec = Execution::new(
            baton_plan::PlanId::new("OP-20260101-000000-abcdef01").unwrap(),
            &plan,
            "t0",
        );
        Sim {
            overlaps: Overlaps::of(&plan),
            plan,
            exec,
            not_before: BTreeMap::new(),
            max_parallel: 8,
            stopped: None,
        }
    }

    fn decide(&self, now_ms: u64) -> Decision {
        decide(
            &self.plan,
            &self.exec,
            &self.overlaps,
            &Gate {
                now_ms,
                max_parallel: self.max_parallel,
                not_before: &self.not_before,
                stopped: self.stopped,
                busy: None,
                default_retries: 0,
            },
        )
    }

    /// Apply every step the way the runner does (gates pass), returning the launches.
    fn step(&mut self, now_ms: u64) -> Vec<String> {
        let mut launched = Vec::new();
        loop {
            let d = self.decide(now_ms);
            if d.steps.is_empty() {
                return launched;
            }
            for s in d.steps {
                match s {
                    Step::StartBatch(id) => self.exec.start_batch(&self.plan, &id, "t").unwrap(),
                    Step::SkipBatch(id) => self.exec.skip_batch(&id, "t").unwrap(),
                    Step::GateBatch(id) => self
                        .exec
                        .complete_batch(&id, Status::Succeeded, "t")
                        .unwrap(),
                    Step::FailBatch(id) => {
                        self.exec.complete_batch(&id, Status::Failed, "t").unwrap()
                    }
                    Step::Launch { batch, agent } => {
                        self.exec
                            .start_agent(&batch, &agent, AgentStart::default(), "t")
                            .unwrap();
                        launched.push(agent.to_string());
                    }
                }
            }
        }
    }

    fn finish(&mut self, agent: &str, ok: bool) {
        let (batch, _) = self.plan.agent(&a(agent)).unwrap();
        let id = batch.id.clone();
        let result = AgentResult {
            error_class: (!ok).then_some(ErrorClass::ExitNonzero),
            ..Default::default()
        };
        let status = if ok {
            Status::Succeeded
        } else {
            Status::Failed
        };
        self.exec
            .record_agent_result(&id, &a(agent), status, result, "t")
            .unwrap();
    }

    fn batch_status(&self, id: &str) -> Status {
        self.exec.batch(&b(id)).unwrap().status
    }
}

const DAG: &str = r#"
[[batches]]
id = "B1"
[[batches.agents]]
id = "a1"
task_type = "research"
[[batches.agents]]
id = "a2"
task_type = "research"
[[batches]]
id = "B2"
depends_on = ["B1"]
[[batches.agents]]
id = "b1"
task_type = "implement"
[[batches]]
id = "B3"
depends_on = ["B2"]
[[batches.agents]]
id = "c1"
task_type = "test"
[[batches]]
id = "B4"
[[batches.agents]]
id = "d1"
task_type = "test"
"#;

#[test]
fn batches_start_after_their_dependencies_and_independent_ones_together() {
    let mut s = Sim::new(DAG);
    assert_eq!(s.step(0), ["a1", "a2", "d1"]);
    s.finish("a1", true);
    assert_eq!(s.step(0), Vec::<String>::new(), "B2 waits for a2");
    s.finish("a2", true);
    assert_eq!(s.step(0), ["b1"]);
    assert_eq!(s.batch_status("B1"), Status::Succeeded);
    s.finish("b1", true);
    s.finish("d1", true);
    assert_eq!(s.step(0), ["c1"]);
    s.finish("c1", true);
    s.step(0);
    assert_eq!(s.exec.status, Status::Succeeded);
}

#[test]
fn a_failed_agent_fails_its_batch_once_its_siblings_end_and_dependents_are_skipped() {
    let mut s = Sim::new(DAG);
    s.step(0);
    s.finish("a1", false);
    assert!(s.step(0).is_empty());
    assert_eq!(s.batch_status("B1"), Status::Running, "a2 still runs");
    s.finish("a2", true);
    s.step(0);
    assert_eq!(s.batch_status("B1"), Status::Failed);
    assert_eq!(s.batch_status("B2"), Status::Skipped);
    assert_eq!(s.batch_status("B3"), Status::Skipped);
    assert_eq!(
        s.batch_status("B4"),
        Status::Running,
        "independent batch goes on"
    );
}

#[test]
fn retries_wait_for_their_backoff_then_launch() {
    let mut s = Sim::new(&DAG.replace(
        "id = \"a1\"\ntask_type = \"research\"",
        "id = \"a1\"\ntask_type = \"research\"\nretries = 2",
    ));
    s.step(0);
    s.finish("a1", false);
    s.not_before.insert(a("a1"), 500);
    let d = s.decide(100);
    assert!(d.steps.is_empty());
    assert_eq!(d.next_due_ms(), Some(500));
    assert_eq!(s.step(500), ["a1"]);
    s.finish("a1", false);
    assert_eq!(s.step(1000), ["a1"], "second retry");
    s.finish("a1", false);
    s.finish("a2", true);
    assert!(s.step(5000).is_empty(), "no third retry");
    assert_eq!(s.batch_status("B1"), Status::Failed);
}

#[test]
fn overlapping_write_scopes_never_run_together() {
    let mut s = Sim::new(
        r#"
[[batches]]
id = "B1"
[[batches.agents]]
id = "x"
task_type = "implement"
scope = { files_write = ["src/**"] }
[[batches.agents]]
id = "y"
task_type = "implement"
scope = { files_write = ["src/cache/*.rs"] }
[[batches.agents]]
id = "z"
task_type = "implement"
scope = { files_write = ["docs/**"] }
"#,
    );
    assert_eq!(s.step(0), ["x", "z"]);
    let d = s.decide(0);
    assert_eq!(
        d.waits,
        [Wait::Scope {
            agent: a("y"),
            with: a("x")
        }]
    );
    s.finish("x", true);
    assert_eq!(s.step(0), ["y"]);
}

#[test]
fn slots_and_sequential_batches_limit_what_runs() {
    let mut s = Sim::new(
        r#"
[[batches]]
id = "B1"
kind = "sequential"
[[batches.agents]]
id = "s1"
task_type = "implement"
[[batches.agents]]
id = "s2"
task_type = "implement"
[[batches]]
id = "B2"
[[batches.agents]]
id = "p1"
task_type = "implement"
[[batches.agents]]
id = "p2"
task_type = "implement"
[[batches.agents]]
id = "p3"
task_type = "implement"
"#,
    );
    s.max_parallel = 3;
    assert_eq!(s.step(0), ["s1", "p1", "p2"]);
    assert!(s.decide(0).waits.contains(&Wait::Slots { agent: a("p3") }));
    s.finish("s1", true);
    assert_eq!(s.step(0), ["s2"], "the sequential batch's next agent");
    s.finish("p1", true);
    assert_eq!(s.step(0), ["p3"]);
}

#[test]
fn stopped_launching_starts_nothing_new_but_finishes_batches() {
    let mut s = Sim::new(DAG);
    s.max_parallel = 2;
    assert_eq!(s.step(0), ["a1", "a2"]);
    s.stopped = Some("Ctrl-C");
    s.finish("a1", true);
    s.finish("a2", true);
    assert!(s.step(0).is_empty());
    assert_eq!(
        s.batch_status("B1"),
        Status::Succeeded,
        "running work still lands"
    );
    assert_eq!(s.batch_status("B2"), Status::Pending, "no new batch starts");
    assert!(
        matches!(s.decide(0).waits[0], Wait::Stopped { .. }),
        "d1 is held"
    );
}

#[test]
fn interrupted_and_gate_reruns_run_again_whatever_the_retries() {
    let mut s = Sim::new(DAG);
    s.step(0);
    let result = AgentResult {
        error_class: Some(ErrorClass::Interrupted),
        ..Default::default()
    };
    s.exec
        .record_agent_result(&b("B1"), &a("a1"), Status::Failed, result, "t")
        .unwrap();
    assert_eq!(s.step(0), ["a1"]);
}
