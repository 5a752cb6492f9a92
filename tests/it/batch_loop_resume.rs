//! A runner killed at any step of integrating a batch — after the gate's verdict, the
//! merge, the merged tests, the advance, the task closed, or a replan recorded but not yet
//! applied — resumes without repeating a finished step and ends as if never killed.

use std::path::Path;

use serde_json::Value;

use crate::batch_loop::Loop;
use crate::batch_loop_gaps::WRITER_SH;
use crate::batch_loop_replan::{check_three_writers, three_writers};
use crate::support::baton;

/// The project's tests: count their runs (one line each in `$BATON_TEST_COUNT`) and pass.
const COUNTING_TEST_SH: &str = r#"#!/bin/sh
[ -n "$BATON_TEST_COUNT" ] && echo run >> "$BATON_TEST_COUNT"
echo "tests pass"
"#;

/// Two batches of writers of files of their own; the second depends on the first.
pub const TWO_WRITERS: &str = r#"
schema_version = 1
title = "Crash points"

[profiles.script]
command = ["sh", "agent.sh", "{agent_id}", "{prompt}"]

[defaults]
profile = "script"

[[batches]]
id = "B1"
[[batches.agents]]
id = "a"
task_type = "implement"
prompt = "part a"
[[batches.agents]]
id = "b"
task_type = "implement"
prompt = "part b"

[[batches]]
id = "B2"
depends_on = ["B1"]
[[batches.agents]]
id = "c"
task_type = "implement"
prompt = "after {outputs.a}"
"#;

/// `baton run PLAN` until it holds right after step `hold` of B1 (`BATON_TEST_HOLD_AFTER`),
/// then SIGKILL it there.
fn run_until_held(l: &Loop, hold: &str, steps: &Path, env: &[(&str, &Path)]) {
    let mut cmd = l.repo.command(crate::support::BATON, l.repo.path());
    cmd.args(["run", &l.plan])
        .env("BATON_TEST_STEP_LOG", steps)
        .env("BATON_TEST_HOLD_AFTER", hold)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    // killed however this ends: a held runner never outlives the test
    let mut child = Killed(cmd.spawn().unwrap());
    let held = format!("B1 {hold}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while lines(steps).last() != Some(&held) {
        assert!(
            std::time::Instant::now() < deadline,
            "{hold}: never reached; steps: {:?}",
            lines(steps)
        );
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "{hold}: baton exited before the step; steps: {:?}",
            lines(steps)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(child); // SIGKILL
}

/// A child SIGKILLed and reaped when dropped.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The runner SIGKILLed right after each step of integrating B1 (the gate's verdict, the
/// merge, the merged tests, the advance, the task closed) resumes and finishes: no step is
/// run twice, the integration branch moved exactly once per batch, the batch's task is done.
#[test]
fn killed_after_any_integration_step_resumes_without_repeating_it() {
    for hold in ["gate", "merge", "tests", "advance", "tasks"] {
        let l = Loop::new(TWO_WRITERS);
        l.repo.write("agent.sh", WRITER_SH);
        l.repo.write("test.sh", COUNTING_TEST_SH);
        l.repo.commit_all("scripted agents, counting tests");
        baton(&l.repo, &["task", "create-from-plan", &l.plan]).expect_code(0);
        let scratch = l.repo.scratch(&format!("crash-{hold}"));
        let (steps, count) = (scratch.join("steps"), scratch.join("count"));
        run_until_held(&l, hold, &steps, &[("BATON_TEST_COUNT", &count)]);
        let advanced = matches!(hold, "advance" | "tasks");
        assert_eq!(
            l.rev(&l.integration()) != l.rev("main"),
            advanced,
            "{hold}: the integration branch moved before the tests passed, or did not after"
        );

        let resumed = l
            .repo
            .command(crate::support::BATON, l.repo.path())
            .args(["run", &l.plan, "--resume"])
            .env("BATON_TEST_STEP_LOG", &steps)
            .env("BATON_TEST_COUNT", &count)
            .output()
            .unwrap();
        assert_eq!(
            resumed.status.code(),
            Some(0),
            "{hold}: {}",
            String::from_utf8_lossy(&resumed.stderr)
        );
        let steps = lines(&steps);
        for step in ["gate", "merge", "tests", "advance", "tasks"] {
            for batch in ["B1", "B2"] {
                let n = steps
                    .iter()
                    .filter(|s| **s == format!("{batch} {step}"))
                    .count();
                // closing a task is idempotent, and is retried when the batch is resumed
                let want = if step == "tasks" && batch == "B1" && hold == "tasks" {
                    2
                } else {
                    1
                };
                assert_eq!(n, want, "{hold}: {batch} {step} ran {n} times: {steps:?}");
            }
        }
        assert_eq!(
            lines(&count).len(),
            2,
            "{hold}: the merged tests ran once per batch"
        );
        let reflog = l
            .repo
            .git(&["reflog", "show", "--format=%gs", &l.integration()]);
        assert_eq!(
            reflog.lines().count(),
            3,
            "{hold}: created once, advanced once per batch:\n{reflog}"
        );
        let tree = l.repo.git(&["ls-tree", "--name-only", &l.integration()]);
        for f in ["a.txt", "b.txt", "c.txt"] {
            assert!(tree.lines().any(|l| l == f), "{hold}: {f} missing:\n{tree}");
        }
        let tasks = baton(&l.repo, &["task", "list", "--plan", &l.plan, "--json"])
            .expect_code(0)
            .json();
        let open: Vec<&Value> = tasks["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["batch"].is_string() && t["status"] != "done")
            .collect();
        assert!(open.is_empty(), "{hold}: batch tasks left open: {open:?}");
    }
}

/// Killed right after a replan is recorded and before the agent's branch moved (for the
/// first agent sent back, then for the second), the run resumes and ends as if never killed.
#[test]
fn killed_between_a_replan_and_moving_the_agent_resumes_on_the_right_base() {
    for hold in ["replan-b", "replan-c"] {
        let l = three_writers();
        let steps = l.repo.scratch(hold).join("steps");
        run_until_held(&l, hold, &steps, &[]);
        let resumed = baton(&l.repo, &["run", &l.plan, "--resume"]);
        assert_eq!(
            resumed.code,
            0,
            "{hold}: {}\n{}",
            resumed.stderr,
            l.execution()
        );
        check_three_writers(&l);
    }
}
