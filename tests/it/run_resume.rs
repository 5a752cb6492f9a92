//! `baton run` when the runner dies or is stopped: SIGKILL mid-batch then `--resume`, and
//! Ctrl-C twice. The agents' own traces count how often each command started.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use baton_plan::{ErrorClass, Status};
use baton_tests::TestRepo;

use crate::run::{agent, execution, processes_with_env, trace, write_plan};
use crate::support::{BATON, baton};

pub fn spawn_run(repo: &TestRepo, args: &[&str]) -> Child {
    repo.command(BATON, repo.path())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start baton run")
}

/// Wait (bounded) until `n` start lines are in the trace.
pub fn wait_for_starts(tr: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while trace(tr).iter().filter(|(w, _, _)| w == "start").count() < n {
        assert!(
            Instant::now() < deadline,
            "agents did not start: {:?}",
            trace(tr)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn signal(child: &Child, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

#[test]
fn a_runner_killed_mid_batch_is_resumed_and_every_command_starts_exactly_once() {
    let repo = TestRepo::new();
    let tr = repo.scratch("t").join("trace");
    let t = tr.display();
    let gate = repo.scratch("t").join("go");
    let g = gate.display();
    // `quick` ends while no runner watches; `slow` is still running when the new runner comes
    // (bounded: a failed test leaves nothing running for long)
    let quick = format!("echo start $BATON_AGENT_ID $(date +%s%N) >> {t}; exit 7");
    let slow = format!(
        "echo start $BATON_AGENT_ID $(date +%s%N) >> {t}; i=0; while [ ! -e {g} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; echo end $BATON_AGENT_ID 0 >> {t}"
    );
    let next = format!("echo start $BATON_AGENT_ID $(date +%s%N) >> {t}");
    let id = "OP-20260101-000000-00000e01";
    let q = |s: &str| serde_json::to_string(s).unwrap();
    let plan = write_plan(
        &repo,
        id,
        &format!(
            r#"[defaults]
isolation = "none"
retries = 3
[[batches]]
id = "B1"
[[batches.agents]]
id = "quick"
task_type = "implement"
retries = 0
command = ["sh", "-c", {quick}, "{{agent_id}}"]
[[batches.agents]]
id = "slow1"
task_type = "implement"
command = ["sh", "-c", {slow}]
[[batches.agents]]
id = "slow2"
task_type = "implement"
command = ["sh", "-c", {slow}]
[[batches]]
id = "B2"
[[batches.agents]]
id = "other"
task_type = "test"
command = ["sh", "-c", {next}]
[[batches]]
id = "B3"
depends_on = ["B1"]
[[batches.agents]]
id = "after"
task_type = "test"
command = ["sh", "-c", {next}]
"#,
            quick = q(&quick),
            slow = q(&slow),
            next = q(&next),
        ),
    );
    let mut first = spawn_run(&repo, &["run", &plan, "--max-parallel", "3"]);
    wait_for_starts(&tr, 3);
    signal(&first, "-KILL");
    first.wait().unwrap();
    // the supervised agents outlive the runner
    let exec = execution(&repo, id);
    assert_eq!(agent(&exec, "slow1").status, Status::Running);
    // findable by a new runner: the handle in the execution, or (killed before the handles'
    // write) the pid file the supervisor claimed before it started the agent
    let pid_file = repo
        .path()
        .join(format!(".baton/executions/{id}/logs/slow1/1.pid.json"));
    assert!(agent(&exec, "slow1").handle.is_some() || pid_file.exists());
    assert!(
        !processes_with_env("BATON_AGENT_ID=slow1").is_empty(),
        "slow1 still runs without its runner"
    );
    // as if the runner had died before writing slow2's handle: only its pid file finds it
    let exec_path = repo.path().join(format!(".baton/executions/{id}.json"));
    let mut raw: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&exec_path).unwrap()).unwrap();
    for b in raw["batches"].as_array_mut().unwrap() {
        for a in b["agents"].as_array_mut().unwrap() {
            if a["id"] == "slow2" {
                let a = a.as_object_mut().unwrap();
                a.remove("handle");
                a.remove("process");
            }
        }
    }
    baton_store::write_json(&exec_path, &raw).unwrap();
    // `quick` has ended by now, with nobody watching; the slow ones finish once adopted
    let mut second = spawn_run(&repo, &["run", id, "--resume", "--max-parallel", "3"]);
    let mut seen = String::new();
    let mut lines = std::io::BufReader::new(second.stdout.take().unwrap()).lines();
    while seen.matches("adopted").count() < 2 {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("the resumed run ended before adopting: {seen}"))
            .unwrap();
        seen.push_str(&line);
        seen.push('\n');
    }
    std::fs::write(&gate, "").unwrap();
    for line in lines {
        seen.push_str(&line.unwrap());
        seen.push('\n');
    }
    let code = second.wait().unwrap().code();
    let resumed = crate::support::Run {
        code: code.unwrap_or(-1),
        stdout: seen,
        stderr: String::new(),
    };
    let exec = execution(&repo, id);
    let starts = |a: &str| {
        trace(&tr)
            .iter()
            .filter(|(w, x, _)| w == "start" && x == a)
            .count()
    };
    for a in ["quick", "slow1", "slow2", "other"] {
        assert_eq!(
            starts(a),
            1,
            "{a} started once overall: {:?}\n{}",
            trace(&tr),
            resumed.stdout
        );
    }
    // every exit status was recorded, including the one that ended with no runner watching
    let quick = agent(&exec, "quick");
    assert_eq!(quick.status, Status::Failed);
    assert_eq!(quick.result.as_ref().unwrap().exit_code, Some(7));
    for a in ["slow1", "slow2", "other"] {
        let st = agent(&exec, a);
        assert_eq!(st.status, Status::Succeeded, "{a}: {}", resumed.stdout);
        assert_eq!(st.result.as_ref().unwrap().exit_code, Some(0));
        // exactly one attempt ran (a supervisor claims `<n>.pid.json` before it starts the
        // command), and it is the one recorded. Under load the first runner may be killed
        // after recording an attempt as started and before spawning its supervisor: that
        // attempt never ran, the resumed runner finds it gone and starts the next one, so the
        // recorded number may be 2 while the command still started once.
        let logs = repo.path().join(format!(".baton/executions/{id}/logs/{a}"));
        let claimed: Vec<u32> = std::fs::read_dir(&logs)
            .unwrap()
            .filter_map(|e| {
                let e = e.unwrap();
                let name = e.file_name().into_string().unwrap();
                let n = name.strip_suffix(".pid.json")?.parse().ok()?;
                // a pid file the resumed runner claimed as `abandoned` ran nothing (the claim
                // is the file's first JSON value; the supervisor adds the end after it)
                let claim = baton_run::supervise::claim_of(&std::fs::read(e.path()).unwrap());
                matches!(claim, Some(baton_run::supervise::PidFile::Running { .. })).then_some(n)
            })
            .collect();
        assert_eq!(claimed, vec![st.attempt], "{a}: attempts that ran");
    }
    assert!(resumed.stdout.contains("adopted"), "{}", resumed.stdout);
    assert_eq!(starts("after"), 0, "B3 depends on the failed B1");
    assert_eq!(exec.status, Status::Failed);
    resumed.expect_code(1);
    // a finished execution is never run again
    let again = baton(&repo, &["run", id]).expect_code(1);
    assert!(
        again.stderr.contains("already finished"),
        "{}",
        again.stderr
    );
    assert_eq!(starts("quick"), 1);
}

#[test]
fn ctrl_c_twice_stops_the_agents_and_leaves_a_resumable_execution() {
    let repo = TestRepo::new();
    let tr = repo.scratch("t").join("trace");
    let t = tr.display();
    let gate = repo.scratch("t").join("go");
    let g = gate.display();
    let body = format!(
        "echo start $BATON_AGENT_ID $(date +%s%N) >> {t}; if [ -e {g} ]; then exit 0; fi; sleep 30"
    );
    let id = "OP-20260101-000000-00000e02";
    let plan = write_plan(
        &repo,
        id,
        &format!(
            r#"[defaults]
isolation = "none"
command = ["sh", "-c", {}]
[[batches]]
id = "B1"
[[batches.agents]]
id = "c1"
task_type = "implement"
[[batches.agents]]
id = "c2"
task_type = "implement"
[[batches]]
id = "B2"
depends_on = ["B1"]
[[batches.agents]]
id = "c3"
task_type = "implement"
"#,
            serde_json::to_string(&body).unwrap()
        ),
    );
    let child = spawn_run(&repo, &["run", &plan, "--grace", "200ms"]);
    wait_for_starts(&tr, 2);
    signal(&child, "-INT");
    std::thread::sleep(Duration::from_millis(100));
    signal(&child, "-INT");
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("baton run {id} --resume")),
        "{stderr}"
    );
    assert!(
        processes_with_env(&format!("BATON_PLAN_ID={id}")).is_empty(),
        "the agents were stopped"
    );
    let exec = execution(&repo, id);
    assert!(!exec.status.is_finished(), "resumable: {:?}", exec.status);
    assert_eq!(exec.runner, None, "no runner recorded once it stopped");
    for a in ["c1", "c2"] {
        let st = agent(&exec, a);
        assert_eq!(
            st.result.as_ref().unwrap().error_class,
            Some(ErrorClass::Interrupted)
        );
    }
    // resume: the interrupted agents run again, then the rest of the plan
    std::fs::write(&gate, "").unwrap();
    let resumed = baton(&repo, &["run", id, "--resume"]).expect_code(0);
    let exec = execution(&repo, id);
    assert_eq!(exec.status, Status::Succeeded, "{}", resumed.stdout);
    assert_eq!(agent(&exec, "c1").attempt, 2);
    assert_eq!(agent(&exec, "c3").attempt, 1);
}
