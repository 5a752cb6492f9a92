//! The batch loop under `baton run`: scripted agents (real processes) leave their work
//! uncommitted, the loop commits it, gates each batch, catches a collision, replans the agent
//! with the findings, merges, tests the merged tree, and the dependent batch sees the merged
//! work and its upstream's outputs.

use crate::batch_loop::Loop;
use crate::support::baton;

/// Agent `a` rewrites line two of notes.txt; `b` does the same on its first attempt (the
/// collision) and, sent back with the findings, adds line four instead; `c` writes its
/// rendered prompt (upstream outputs and files) to c.txt. Nobody commits.
pub const AGENT_SH: &str = r#"#!/bin/sh
case "$1" in
a) printf 'one\nTWO by a\nthree\n' > notes.txt
   printf '{"summary": "a rewrote line two", "outputs": {"line": 2}}' > "$BATON_RESULT_FILE" ;;
b) if [ -n "$BATON_GATE_REPORT" ]; then
     [ -f "$BATON_GATE_REPORT" ] || exit 3
     printf '%s\n' "$2" > b-saw.txt
     printf 'one\nTWO by a\nthree\nfour by b\n' > notes.txt
   else
     printf 'one\ntwo by b\nthree\n' > notes.txt
   fi ;;
c) printf '%s\n' "$2" > c.txt ;;
esac
"#;

pub const PLAN: &str = r#"
schema_version = 1
title = "Loop under run"
on_gate_failure = "replan"
max_replans = 1

[profiles.script]
command = ["sh", "agent.sh", "{agent_id}", "{prompt}"]

[defaults]
profile = "script"

[[batches]]
id = "B1"
[[batches.agents]]
id = "a"
task_type = "implement"
prompt = "edit line two"
[[batches.agents]]
id = "b"
task_type = "implement"
prompt = "edit notes. {gate_findings}"

[[batches]]
id = "B2"
depends_on = ["B1"]
[[batches.agents]]
id = "c"
task_type = "implement"
prompt = "a said: {outputs.a}; b changed: {files.b}"
"#;

#[test]
fn run_gates_replans_merges_and_passes_results_forward() {
    let l = Loop::new(PLAN);
    l.repo.write("agent.sh", AGENT_SH);
    l.repo.commit_all("scripted agents");
    let main_before = l.rev("main");

    let run = baton(&l.repo, &["run", &l.plan, "--max-parallel", "2"]).expect_code(0);

    // the collision was caught, b was sent back with the findings in its prompt
    let exec = l.execution();
    assert_eq!(
        exec["replans"].as_array().unwrap().len(),
        1,
        "{exec}\n{}",
        run.stderr
    );
    let b1 = l.batch_state("B1");
    let gates = b1["integration"]["gates"].as_array().unwrap();
    assert_eq!(gates.len(), 2, "{b1}");
    assert_eq!(gates[0]["passed"], false);
    assert!(
        gates[0]["findings"]
            .to_string()
            .contains("notes.txt (a, b)"),
        "{b1}"
    );
    assert_eq!(gates[1]["passed"], true);
    let integration = l.integration();
    let saw = l.repo.git(&["show", &format!("{integration}:b-saw.txt")]);
    assert!(saw.contains("multi_writer notes.txt (a, b)"), "{saw}");
    // the replan kept a's work and added b's on top
    let notes = l.repo.git(&["show", &format!("{integration}:notes.txt")]);
    assert_eq!(notes, "one\nTWO by a\nthree\nfour by b");
    // B2 started from the integration branch and got its upstream's results
    let c = l.repo.git(&["show", &format!("{integration}:c.txt")]);
    assert!(c.contains("a said: a rewrote line two"), "{c}");
    assert!(c.contains("b changed:") && c.contains("notes.txt"), "{c}");
    // the agents' own branches hold their committed work; the user's branch did not move
    let msg = l.repo.git(&["log", "-1", "--format=%B", &l.branch("c")]);
    assert!(msg.contains("agent c") && msg.contains(&l.plan), "{msg}");
    assert_eq!(l.rev("main"), main_before);
    let metrics = std::fs::read_to_string(l.repo.path().join(".baton/metrics.jsonl")).unwrap();
    assert!(metrics.contains("\"replan\""), "{metrics}");

    // the same plan again: a's work comes from the cache, but b's first attempt (rejected by
    // the gate) is not replayed: b runs, the gate catches it again, its replan is a hit
    // (a title of its own: `plan new --from` refuses content that is already stored)
    let again = crate::tasks::store_plan(
        &l.repo,
        &PLAN.replace(
            "title = \"Loop under run\"",
            "title = \"Loop under run, again\"",
        ),
    );
    std::fs::remove_file(l.repo.path().join("plan.toml")).unwrap();
    let run = baton(&l.repo, &["run", &again]).expect_code(0);
    assert!(
        run.stdout.contains("a [cache hit] (attempt 1)"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("b [cache hit] (attempt 1)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("b [cache hit] (attempt 2)"),
        "{}",
        run.stdout
    );
    let notes = l
        .repo
        .git(&["show", &format!("baton/{again}/integration:notes.txt")]);
    assert_eq!(notes, "one\nTWO by a\nthree\nfour by b");
}

#[test]
fn run_with_land_fast_forwards_the_checked_out_branch() {
    let plan = PLAN.replace("edit notes. {gate_findings}", "add b");
    let l = Loop::new(&plan);
    // b writes its own file: no collision
    l.repo.write(
        "agent.sh",
        &AGENT_SH.replace(
            "printf 'one\\ntwo by b\\nthree\\n' > notes.txt",
            "printf 'b\\n' > b.txt",
        ),
    );
    l.repo.commit_all("scripted agents");
    baton(&l.repo, &["run", &l.plan, "--land", "main"]).expect_code(0);
    assert_eq!(l.rev("main"), l.rev(&l.integration()));
    // the checkout's files moved with the branch, and it is clean
    assert!(l.repo.path().join("c.txt").is_file());
    assert!(l.repo.path().join("b.txt").is_file());
    assert_eq!(l.repo.git(&["status", "--porcelain"]), "");
}
