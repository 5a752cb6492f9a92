//! A replan re-runs the agents the findings name one after another: the first on the
//! integration tip with the kept agents' work merged, each next one on the new work of the
//! one before it (under `baton run`, and by hand with `batch replan` / `batch integrate`).

use serde_json::Value;

use crate::batch_loop::Loop;
use crate::support::baton;

/// Three agents rewrite line two of notes.txt (the collision). Sent back with the findings,
/// `b` appends line four and writes b.txt; `c` keeps a copy of notes.txt as it found it,
/// then appends line five. Nobody commits.
const THREE_WRITERS_SH: &str = r#"#!/bin/sh
case "$1" in
a) printf 'one\nTWO by a\nthree\n' > notes.txt ;;
b) if [ -n "$BATON_GATE_REPORT" ]; then
     printf 'four by b\n' >> notes.txt; echo b > b.txt
   else
     printf 'one\ntwo by b\nthree\n' > notes.txt
   fi ;;
c) if [ -n "$BATON_GATE_REPORT" ]; then
     cp notes.txt c-saw.txt; printf 'five by c\n' >> notes.txt
   else
     printf 'one\ntwo by c\nthree\n' > notes.txt
   fi ;;
esac
"#;

/// `c` may not write b.txt: counted as c's, b's work would be a scope violation.
const THREE_WRITERS: &str = r#"
schema_version = 1
title = "Three writers"
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
scope = { files_write = ["notes.txt"] }
[[batches.agents]]
id = "b"
task_type = "implement"
prompt = "edit notes. {gate_findings}"
scope = { files_write = ["notes.txt", "b.txt"] }
[[batches.agents]]
id = "c"
task_type = "implement"
prompt = "edit notes. {gate_findings}"
scope = { files_write = ["notes.txt", "c-saw.txt"] }
"#;

#[test]
fn replanned_agents_rerun_one_after_another_each_on_the_work_before_it() {
    let l = three_writers();
    let run = baton(&l.repo, &["run", &l.plan, "--max-parallel", "3"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stderr, l.execution());
    // the output says who runs again now, and who after
    assert!(run.stdout.contains("running again: b"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("then, one after another, each on the new work of the one before: c"),
        "{}",
        run.stdout
    );
    check_three_writers(&l);
}

pub fn three_writers() -> Loop {
    let l = Loop::new(THREE_WRITERS);
    l.repo.write("agent.sh", THREE_WRITERS_SH);
    l.repo.commit_all("scripted agents");
    l
}

/// The end of a run of [`THREE_WRITERS`]: the collision caught once, b and c re-run one
/// after another, c on b's new work, the branch moved once, every step recorded.
pub fn check_three_writers(l: &Loop) {
    let exec = l.execution();

    // the gate caught the collision once, then passed
    let b1 = l.batch_state("B1");
    let gates = b1["integration"]["gates"].as_array().unwrap();
    assert_eq!(gates.len(), 2, "{b1}");
    assert_eq!(gates[0]["passed"], false);
    assert_eq!(
        gates[0]["agents"],
        serde_json::json!(["a", "b", "c"]),
        "{b1}"
    );
    assert_eq!(gates[1]["passed"], true, "{b1}");
    // a kept its work; b re-ran on it; c re-ran on b's new work and saw it
    let integration = l.integration();
    let show = |f: &str| l.repo.git(&["show", &format!("{integration}:{f}")]);
    assert_eq!(show("c-saw.txt"), "one\nTWO by a\nthree\nfour by b");
    assert_eq!(
        show("notes.txt"),
        "one\nTWO by a\nthree\nfour by b\nfive by c"
    );
    assert_eq!(show("b.txt"), "b");
    // c's branch starts on b's: one line of work, not two to merge
    let b_tip = l.rev(&l.branch("b"));
    let c_parent = l.rev(&format!("{}^", l.branch("c")));
    assert_eq!(c_parent, b_tip, "c did not start on b's new work");
    // the gate measured c from where it restarted: b.txt is not counted as c's
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(gates[1]["report"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let conflicts = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "conflicts")
        .unwrap();
    let c_files = &conflicts["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "c")
        .unwrap()["files"];
    assert_eq!(
        c_files,
        &serde_json::json!(["c-saw.txt", "notes.txt"]),
        "{report}"
    );
    // the integration branch moved once; each re-run is recorded, in order
    let reflog = l
        .repo
        .git(&["reflog", "show", "--format=%gs", &integration]);
    assert_eq!(
        reflog.lines().count(),
        2,
        "created, advanced once:\n{reflog}"
    );
    let replans: Vec<String> = exec["replans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(replans.len(), 2, "{replans:?}");
    assert!(replans[0].contains("re-running b (1 of 2)"), "{replans:?}");
    assert!(replans[1].contains("re-running c (2 of 2)"), "{replans:?}");
    let metrics = std::fs::read_to_string(l.repo.path().join(".baton/metrics.jsonl")).unwrap();
    let replanned: Vec<Value> = metrics
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "replan")
        .collect();
    let who: Vec<&str> = replanned
        .iter()
        .map(|e| e["agent"].as_str().unwrap())
        .collect();
    assert_eq!(who, ["b", "c"], "{replanned:?}");
    // each agent sent back ran exactly twice; a once
    for (agent, attempts) in [("a", 1), ("b", 2), ("c", 2)] {
        let state = b1["agents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == agent)
            .unwrap();
        assert_eq!(state["attempt"], attempts, "{agent}: {state}");
    }
}

/// The same replan driven by hand: `batch replan` sends b back first, `batch integrate`
/// then moves c onto b's new work, and the last `batch integrate` gates and advances.
#[test]
fn a_replan_by_hand_reruns_one_agent_after_another() {
    let l = Loop::new(THREE_WRITERS);
    let made = baton(
        &l.repo,
        &[
            "worktree", "create", "--plan", &l.plan, "--batch", "B1", "--json",
        ],
    )
    .expect_code(0)
    .json();
    let wt = |agent: &str| -> std::path::PathBuf {
        made["created"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| std::path::PathBuf::from(c["path"].as_str().unwrap()))
            .find(|p| p.ends_with(agent))
            .unwrap()
    };
    for agent in ["a", "b", "c"] {
        let line = if agent == "a" {
            "TWO by a".to_owned()
        } else {
            format!("two by {agent}")
        };
        baton_tests::write_file(&wt(agent), "notes.txt", &format!("one\n{line}\nthree\n"));
    }
    let failed = l.integrate("B1", &[]).expect_code(1).json();
    assert_eq!(
        failed["agents"],
        serde_json::json!(["a", "b", "c"]),
        "{failed}"
    );

    let replan = baton(&l.repo, &["batch", "replan", &l.plan, "B1", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(replan["rerun"][0]["agent"], "b", "{replan}");
    assert_eq!(replan["rerun"].as_array().unwrap().len(), 1, "{replan}");
    assert_eq!(replan["then"], serde_json::json!(["c"]), "{replan}");
    // asking again in the middle of the replan is refused, and changes nothing
    let exec_before = l.execution();
    let again = baton(&l.repo, &["batch", "replan", &l.plan, "B1"]);
    assert_eq!(again.code, 2, "{again:?}");
    assert!(
        again.stderr.contains("being replanned already (c"),
        "{}",
        again.stderr
    );
    assert_eq!(l.execution(), exec_before);
    let notes = |agent: &str| std::fs::read_to_string(wt(agent).join("notes.txt")).unwrap();
    assert_eq!(notes("b"), "one\nTWO by a\nthree\n");

    // b redoes its part; integrating moves c onto it instead of gating
    baton_tests::write_file(&wt("b"), "notes.txt", "one\nTWO by a\nthree\nfour by b\n");
    let next = l.integrate("B1", &[]).expect_code(0).json();
    assert_eq!(next["outcome"], "rerun_next", "{next}");
    assert_eq!(next["rerun"], "c", "{next}");
    assert_eq!(
        notes("c"),
        "one\nTWO by a\nthree\nfour by b\n",
        "c does not see b's work"
    );
    assert_eq!(
        l.rev(&l.integration()),
        l.rev("main"),
        "moved before the gate"
    );

    baton_tests::write_file(
        &wt("c"),
        "notes.txt",
        "one\nTWO by a\nthree\nfour by b\nfive by c\n",
    );
    let done = l.integrate("B1", &[]).expect_code(0).json();
    assert_eq!(done["outcome"], "advanced", "{done}");
    let integration = l.integration();
    assert_eq!(
        l.repo.git(&["show", &format!("{integration}:notes.txt")]),
        "one\nTWO by a\nthree\nfour by b\nfive by c"
    );
    let b1 = l.batch_state("B1");
    assert_eq!(b1["status"], "succeeded", "{b1}");
    assert_eq!(l.execution()["replans"].as_array().unwrap().len(), 2);
}

/// A run whose `--replan-budget` is used up fails the batch and leaves everything as the gate
/// found it: no replan recorded, no branch moved.
#[test]
fn no_replan_budget_fails_the_batch_without_moving_anything() {
    let l = three_writers();
    let run = baton(&l.repo, &["run", &l.plan, "--replan-budget", "0"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("--replan-budget is used up"),
        "{}",
        run.stdout
    );
    let exec = l.execution();
    assert!(
        exec["replans"].as_array().is_none_or(Vec::is_empty),
        "{exec}"
    );
    let b1 = l.batch_state("B1");
    assert!(b1["integration"].get("replan_queue").is_none(), "{b1}");
    for agent in ["b", "c"] {
        let notes = l
            .repo
            .git(&["show", &format!("{}:notes.txt", l.branch(agent))]);
        assert_eq!(
            notes,
            format!("one\ntwo by {agent}\nthree"),
            "{agent} was moved"
        );
    }
    assert_eq!(l.rev(&l.integration()), l.rev("main"));
}
