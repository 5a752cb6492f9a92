//! The batch loop's promises at its edges: `--explain-cache` writes nothing; replanned
//! agents re-run one after another, each on top of the one before; a runner killed at any
//! step of integrating a batch resumes without repeating a finished step; every task backend
//! is closed when its batch succeeds; and the loop driven by hand records every step.

use std::collections::BTreeMap;
use std::path::Path;

use crate::batch_loop::Loop;
use serde_json::Value;

use crate::support::baton;

/// Every file under `dir` (relative path → bytes); empty when `dir` does not exist.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(read) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in read.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            if e.file_type().unwrap().is_dir() {
                out.insert(format!("{rel}/"), Vec::new());
                stack.push(p);
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Each agent writes its prompt into a file of its own.
const WRITER_SH: &str = r#"#!/bin/sh
printf '%s\n' "$2" > "$1.txt"
printf '{"summary": "%s wrote %s.txt"}' "$1" "$1" > "$BATON_RESULT_FILE"
"#;

const CACHED_PLAN: &str = r#"
schema_version = 1
title = "Explained"

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

[[batches]]
id = "B2"
depends_on = ["B1"]
[[batches.agents]]
id = "b"
task_type = "implement"
prompt = "after {outputs.a}"
"#;

#[test]
fn explain_cache_writes_nothing() {
    let l = Loop::new(CACHED_PLAN);
    l.repo.write("agent.sh", WRITER_SH);
    l.repo.commit_all("scripted agents");
    let state = l.repo.path().join(".baton");
    let refs = || {
        l.repo
            .git(&["for-each-ref", "--format=%(refname) %(objectname)"])
    };

    // before the plan ever ran: a miss, and no execution, lock, metrics line or branch
    let (before, refs_before) = (snapshot(&state), refs());
    let out = baton(&l.repo, &["run", &l.plan, "--explain-cache", "b", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(out["cache"], "miss", "{out}");
    assert_eq!(snapshot(&state), before, ".baton/ changed");
    assert_eq!(refs(), refs_before, "a ref changed");

    // after a run: a hit, still nothing written
    baton(&l.repo, &["run", &l.plan]).expect_code(0);
    let again = crate::tasks::store_plan(&l.repo, &CACHED_PLAN.replace("Explained", "Again"));
    std::fs::remove_file(l.repo.path().join("plan.toml")).unwrap();
    let (before, refs_before) = (snapshot(&state), refs());
    // a would be a hit; b misses, for its upstream has not run in this copy
    for (agent, verdict) in [("a", "hit"), ("b", "miss")] {
        let out = baton(
            &l.repo,
            &["run", &again, "--explain-cache", agent, "--json"],
        )
        .expect_code(0)
        .json();
        assert_eq!(out["cache"], verdict, "{agent}: {out}");
    }
    assert_eq!(snapshot(&state), before, ".baton/ changed");
    assert_eq!(refs(), refs_before, "a ref changed");

    // a plan file never stored, in a repository without .baton/: it stays absent
    let fresh = baton_tests::TestRepo::new();
    fresh.write("plan.toml", CACHED_PLAN);
    let out = baton(
        &fresh,
        &["run", "plan.toml", "--explain-cache", "a", "--json"],
    )
    .expect_code(0)
    .json();
    assert_eq!(out["cache"], "miss", "{out}");
    assert!(
        !fresh.path().join(".baton").exists(),
        "explaining made .baton/"
    );
    // bad input still says so, and writes nothing
    let bad = baton(&fresh, &["run", "plan.toml", "--explain-cache", "zz"]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(!fresh.path().join(".baton").exists());
}

/// The project's tests: count their runs (one line each in `$BATON_TEST_COUNT`) and pass.
const COUNTING_TEST_SH: &str = r#"#!/bin/sh
[ -n "$BATON_TEST_COUNT" ] && echo run >> "$BATON_TEST_COUNT"
echo "tests pass"
"#;

/// Two batches of writers of files of their own; the second depends on the first.
const TWO_WRITERS: &str = r#"
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
    let mut child = cmd.spawn().unwrap();
    let held = format!("B1 {hold}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while lines(steps).last() != Some(&held) {
        assert!(
            std::time::Instant::now() < deadline,
            "{hold}: never reached; steps: {:?}",
            lines(steps)
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "{hold}: baton exited before the step; steps: {:?}",
            lines(steps)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
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
    check_three_writers(&l);
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

fn three_writers() -> Loop {
    let l = Loop::new(THREE_WRITERS);
    l.repo.write("agent.sh", THREE_WRITERS_SH);
    l.repo.commit_all("scripted agents");
    l
}

/// The end of a run of [`THREE_WRITERS`]: the collision caught once, b and c re-run one
/// after another, c on b's new work, the branch moved once, every step recorded.
fn check_three_writers(l: &Loop) {
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

/// `baton` with extra environment.
fn baton_env(
    repo: &baton_tests::TestRepo,
    args: &[&str],
    env: &[(&str, &Path)],
) -> crate::support::Run {
    let mut cmd = repo.command(crate::support::BATON, repo.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.args(args).output().expect("run baton");
    crate::support::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A plan's tasks in Taskwarrior are closed when their batch succeeds. A backend that fails
/// (here: a TASKDATA that does not hold them) does not fail the batch; it is said, recorded,
/// and tried again by the next `baton run --resume`.
#[test]
fn taskwarrior_tasks_close_with_their_batch_and_a_failure_is_retried() {
    let test = "taskwarrior_tasks_close_with_their_batch_and_a_failure_is_retried";
    if !baton_tests::require_program(
        test,
        &["task", "--version"],
        "the loop closes tasks in the real Taskwarrior",
        "apt-get install taskwarrior",
    ) {
        return;
    }
    let l = Loop::new(TWO_WRITERS);
    l.repo.write("agent.sh", WRITER_SH);
    l.repo.commit_all("scripted agents");
    let tw = l.repo.scratch("taskwarrior");
    let (data, rc, elsewhere) = (tw.join("data"), tw.join("taskrc"), tw.join("empty"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(&rc, "").unwrap();
    let good = [("TASKDATA", data.as_path()), ("TASKRC", rc.as_path())];
    let made = baton_env(
        &l.repo,
        &[
            "task",
            "create-from-plan",
            &l.plan,
            "--backend",
            "taskwarrior",
            "--json",
        ],
        &good,
    )
    .expect_code(0)
    .json();
    assert_eq!(made["created"].as_array().unwrap().len(), 3, "{made}");
    let status_of = |batch: &str| -> String {
        let out = std::process::Command::new("task")
            .env("TASKDATA", &data)
            .env("TASKRC", &rc)
            .args([
                "rc.confirmation=off",
                "rc.verbose=nothing",
                "rc.json.array=on",
                "rc.uda.baton_batch.type=string",
                &format!("baton_batch:{batch}"),
                "export",
            ])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v[0]["status"].as_str().unwrap().to_owned()
    };
    assert_eq!(status_of("B1"), "pending");

    // the backend fails: the run still succeeds, says so, and records it
    let bad = [("TASKDATA", elsewhere.as_path()), ("TASKRC", rc.as_path())];
    let run = baton_env(&l.repo, &["run", &l.plan], &bad).expect_code(0);
    assert!(
        run.stderr.contains("task ")
            && run.stderr.contains("taskwarrior backend")
            && run.stderr.contains("--resume"),
        "{}",
        run.stderr
    );
    assert_eq!(status_of("B1"), "pending");
    for batch in ["B1", "B2"] {
        let open = &l.batch_state(batch)["integration"]["tasks_open"];
        assert_eq!(open.as_array().map(Vec::len), Some(1), "{batch}: {open}");
        assert_eq!(open[0]["backend"], "taskwarrior");
    }
    let metrics = std::fs::read_to_string(l.repo.path().join(".baton/metrics.jsonl")).unwrap();
    let failed = metrics
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "task" && e["success"] == false)
        .count();
    assert_eq!(failed, 2, "{metrics}");

    // the next run of the plan tries again, and the tasks are done
    let again = baton_env(&l.repo, &["run", &l.plan, "--resume"], &good).expect_code(0);
    assert!(
        !again.stderr.contains("not marked done"),
        "{}",
        again.stderr
    );
    assert_eq!(status_of("B1"), "completed");
    assert_eq!(status_of("B2"), "completed");
    for batch in ["B1", "B2"] {
        assert!(
            l.batch_state(batch)["integration"]
                .get("tasks_open")
                .is_none(),
            "{batch}"
        );
    }
}

/// The loop driven by hand, a step at a time: each step moves `baton status`, the metrics
/// and the plan's tasks as `baton run` would.
#[test]
fn every_step_by_hand_records_itself() {
    let l = Loop::new(TWO_WRITERS);
    baton(&l.repo, &["task", "create-from-plan", &l.plan]).expect_code(0);
    let status = || {
        baton(&l.repo, &["status", &l.plan, "--json"])
            .expect_code(0)
            .json()["execution"]
            .clone()
    };
    let batch = |exec: &Value, id: &str| -> Value {
        exec["batches"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["id"] == id)
            .unwrap()
            .clone()
    };
    let events = |kind: &str| -> Vec<Value> {
        std::fs::read_to_string(l.repo.path().join(".baton/metrics.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|x| serde_json::from_str::<Value>(x).unwrap())
            .filter(|e| e["event"] == kind)
            .collect()
    };
    let task_status = |id: &str| -> String {
        let list = baton(&l.repo, &["task", "list", "--plan", &l.plan, "--json"])
            .expect_code(0)
            .json();
        list["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["batch"] == id)
            .unwrap()["status"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    for (id, agents, files) in [
        ("B1", vec!["a", "b"], vec!["a.txt", "b.txt"]),
        ("B2", vec!["c"], vec!["c.txt"]),
    ] {
        // 1. the batch's worktrees, on the integration branch
        let made = baton(
            &l.repo,
            &[
                "worktree", "create", "--plan", &l.plan, "--batch", id, "--json",
            ],
        )
        .expect_code(0)
        .json();
        let exec = status();
        let b = batch(&exec, id);
        assert_eq!(b["status"], "running", "{id}: {b}");
        for a in b["agents"].as_array().unwrap() {
            assert_eq!(a["status"], "running", "{id}: {b}");
        }
        assert_eq!(task_status(id), "open");
        // the agents work (and leave it uncommitted)
        for (c, f) in made["created"].as_array().unwrap().iter().zip(&files) {
            baton_tests::write_file(Path::new(c["path"].as_str().unwrap()), f, "work\n");
        }

        // 2. the gate, by hand
        let gates_before = events("verification").len();
        baton(
            &l.repo,
            &["verify", "--plan", &l.plan, "--batch", id, "--json"],
        )
        .expect_code(0);
        let b = batch(&status(), id);
        assert_eq!(b["integration"]["gates"][0]["passed"], true, "{id}: {b}");
        assert_eq!(events("verification").len(), gates_before + 1, "{id}");

        // 3. commit, gate, merge, test, advance
        let completes = events("agent_complete").len();
        l.integrate(id, &[]).expect_code(0);
        let exec = status();
        let b = batch(&exec, id);
        assert_eq!(b["status"], "succeeded", "{id}: {b}");
        assert_eq!(b["integration"]["advanced"], true, "{id}: {b}");
        for a in b["agents"].as_array().unwrap() {
            assert_eq!(a["status"], "succeeded", "{id}: {b}");
        }
        assert_eq!(
            events("agent_complete").len(),
            completes + agents.len(),
            "{id}"
        );
        assert_eq!(task_status(id), "done", "{id}");
        let tree = l.repo.git(&["ls-tree", "--name-only", &l.integration()]);
        for f in &files {
            assert!(
                tree.lines().any(|x| x == *f),
                "{id}: {f} not integrated:\n{tree}"
            );
        }

        // 4. the batch's worktrees go, and that is recorded too
        let removed = events("worktree").len();
        baton(
            &l.repo,
            &["worktree", "cleanup", "--plan", &l.plan, "--batch", id],
        )
        .expect_code(0);
        for c in made["created"].as_array().unwrap() {
            assert!(
                !Path::new(c["path"].as_str().unwrap()).exists(),
                "{id}: {c}"
            );
        }
        let b = batch(&status(), id);
        assert!(b["cleaned_up_at"].is_string(), "{id}: {b}");
        let cleaned: Vec<String> = events("worktree")[removed..]
            .iter()
            .map(|e| e["agent"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(cleaned, agents, "{id}");
    }
    let exec = status();
    assert_eq!(exec["status"], "succeeded", "{exec}");
    // the metrics summary counts every agent by task type
    let summary = baton(&l.repo, &["metrics", "summary", "--json"])
        .expect_code(0)
        .json();
    let implement = &summary["task_types"]["implement"];
    assert_eq!(implement["succeeded"], 3, "{summary}");
    // each batch gated twice: by `verify --batch`, then by `batch integrate`
    assert_eq!(summary["gate"]["succeeded"], 4, "{summary}");
    assert_eq!(events("batch_complete").len(), 2);
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
