//! The batch loop's promises at its edges: `--explain-cache` writes nothing; every task
//! backend is closed when its batch succeeds, and a failing one is retried; the loop driven
//! by hand records every step in the execution, the metrics and the tasks.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::batch_loop::Loop;
use crate::batch_loop_resume::TWO_WRITERS;
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
pub const WRITER_SH: &str = r#"#!/bin/sh
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
    // the same plan given as a file: its stored twin (not run yet) is the one explained and
    // previewed, as `baton run plan.toml` would run it
    l.repo
        .write("plan.toml", &CACHED_PLAN.replace("Explained", "Again"));
    let out = baton(
        &l.repo,
        &["run", "plan.toml", "--explain-cache", "a", "--json"],
    )
    .expect_code(0)
    .json();
    assert_eq!(out["cache"], "hit", "{out}");
    let dry = baton(&l.repo, &["run", "plan.toml", "--dry-run"]).expect_code(0);
    assert!(dry.stdout.contains(&again), "{}", dry.stdout);
    std::fs::remove_file(l.repo.path().join("plan.toml")).unwrap();
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
    // bad input still says so, and writes nothing; nor does its neighbour, --dry-run
    let bad = baton(&fresh, &["run", "plan.toml", "--explain-cache", "zz"]);
    assert_eq!(bad.code, 2, "{bad:?}");
    let refs_before = fresh.git(&["for-each-ref"]);
    baton(&fresh, &["run", "plan.toml", "--dry-run"]).expect_code(0);
    assert!(!fresh.path().join(".baton").exists());
    assert_eq!(fresh.git(&["for-each-ref"]), refs_before);
    assert_eq!(
        fresh
            .git(&["worktree", "list", "--porcelain"])
            .lines()
            .filter(|l| l.starts_with("worktree "))
            .count(),
        1
    );
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

/// The neighbours of `--explain-cache`: commands that only look change nothing in `.baton/`
/// nor any ref (`verify --batch` is a step of the loop: it records its verdict).
#[test]
fn looking_commands_write_nothing() {
    let l = Loop::new(CACHED_PLAN);
    l.repo.write("agent.sh", WRITER_SH);
    l.repo.commit_all("scripted agents");
    baton(&l.repo, &["task", "create-from-plan", &l.plan]).expect_code(0);
    baton(&l.repo, &["run", &l.plan]).expect_code(0);
    let state = l.repo.path().join(".baton");
    let refs = || {
        l.repo
            .git(&["for-each-ref", "--format=%(refname) %(objectname)"])
    };
    let (before, refs_before) = (snapshot(&state), refs());
    for args in [
        vec!["status", &l.plan, "--json"],
        vec!["status", &l.plan],
        vec!["plan", "show", &l.plan],
        vec!["plan", "list", "--json"],
        vec!["logs", &l.plan, "a"],
        vec!["metrics", "summary", "--json"],
        vec!["task", "list", "--json"],
        vec!["task", "ready"],
        vec!["worktree", "list", "--json"],
        vec!["run", &l.plan, "--dry-run"],
        vec!["run", &l.plan, "--explain-cache", "b"],
    ] {
        let out = baton(&l.repo, &args);
        assert!(out.code == 0 || out.code == 1, "{args:?}: {out:?}");
        assert!(snapshot(&state) == before, "{args:?} changed .baton/");
        assert_eq!(refs(), refs_before, "{args:?} changed a ref");
    }
}

/// `b` fails its first attempt (so the runner waits in its backoff) and records each start.
const INPUTS_SH: &str = r#"#!/bin/sh
echo "$1 $BATON_ATTEMPT $2" >> "@STARTS@"
if [ "$1" = b ] && [ "$BATON_ATTEMPT" -lt 2 ]; then exit 1; fi
printf '%s\n' "$2" > "$1.txt"
printf '{"summary": "%s wrote %s.txt"}' "$1" "$1" > "$BATON_RESULT_FILE"
"#;

const INPUTS_PLAN: &str = r#"
schema_version = 1
title = "Inputs"

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
retries = 1
prompt = "after {outputs.a}"
"#;

/// An agent whose upstream outputs cannot be read never runs with its placeholders left
/// empty: its attempt fails as `spawn_failed`, saying why. The upstream record is spoiled
/// while the runner is down (killed inside `b`'s backoff), so the resumed run's retry meets it.
#[test]
fn an_attempt_whose_upstream_outputs_cannot_be_read_fails_instead_of_running() {
    use crate::run_durable::Events;
    use crate::run_resume::{signal, spawn_run};
    let l = Loop::new(INPUTS_PLAN);
    let starts = l.repo.scratch("s").join("starts");
    l.repo.write(
        "agent.sh",
        &INPUTS_SH.replace("@STARTS@", starts.to_str().unwrap()),
    );
    l.repo.commit_all("scripted agents");
    let run = |args: &[&str]| spawn_run(&l.repo, args);
    let mut first = run(&[
        "run",
        &l.plan,
        "--json",
        "--backoff",
        "6s",
        "--backoff-cap",
        "6s",
    ]);
    let mut events = Events::of(&mut first);
    let failed = events.until(|v| v["event"] == "agent_finish" && v["agent"] == "b");
    assert!(failed["retry_in_ms"].as_u64().is_some(), "{failed}");
    // the due time is on disk before the runner waits for it
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while crate::run::agent(&crate::run::execution(&l.repo, &l.plan), "b")
        .retry_at
        .is_none()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no retry_at persisted"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    signal(&first, "-KILL");
    first.wait().unwrap();
    let record = l
        .repo
        .path()
        .join(format!(".baton/executions/{}/results/a.json", l.plan));
    assert!(record.is_file(), "{} exists", record.display());
    std::fs::write(&record, "{ not json").unwrap();

    let mut second = run(&["run", &l.plan, "--resume", "--json"]);
    let mut events = Events::of(&mut second);
    let finish =
        events.until(|v| v["event"] == "agent_finish" && v["agent"] == "b" && v["attempt"] == 2);
    events.rest();
    assert_eq!(second.wait().unwrap().code(), Some(1), "{:#?}", events.seen);
    assert_eq!(finish["error_class"], "spawn_failed", "{finish}");
    assert!(
        finish["detail"]
            .as_str()
            .is_some_and(|d| d.contains("cannot read the batch loop's inputs")),
        "{finish}"
    );
    // b's command ran once (its failed first attempt), never with `{outputs.a}` unfilled
    let lines = std::fs::read_to_string(&starts).unwrap();
    let b_starts: Vec<&str> = lines.lines().filter(|l| l.starts_with("b ")).collect();
    assert_eq!(b_starts, ["b 1 after a wrote a.txt"], "{lines}");
}
