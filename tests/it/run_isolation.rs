//! `baton run` with worktrees (the default isolation), liveness timeouts, `baton logs
//! --follow` and `baton status`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use baton_plan::{ErrorClass, Status};
use baton_tests::TestRepo;

use crate::run::{agent, execution, processes_with_env, write_plan};
use crate::support::{BATON, baton};

#[test]
fn agents_work_in_their_own_worktrees_on_their_own_branches() {
    let repo = TestRepo::new();
    // no test command here: the batch gate's tests step has nothing to run, which this
    // repository declares fine (otherwise the gate fails the batch, as `baton verify` does)
    repo.write(".config/baton.toml", "[verify]\nallow_no_tests = true\n");
    repo.commit_all("baton config: no tests in this repository");
    let id = "OP-20260101-000000-00000f01";
    let script = "set -e; echo \"$BATON_AGENT_ID\" > \"$BATON_AGENT_ID.txt\"; \
        printf '{\"summary\": \"wrote %s\"}' \"$BATON_AGENT_ID\" > \"$BATON_RESULT_FILE\"; \
        test \"$(pwd -P)\" = \"$BATON_WORKTREE\" && test \"$PWD\" = \"$BATON_WORKTREE\" || { echo \"in $(pwd -P), not $BATON_WORKTREE\"; exit 1; }";
    let plan = write_plan(
        &repo,
        id,
        &format!(
            r#"[defaults]
command = ["sh", "-c", {}]
[[batches]]
id = "B1"
[[batches.agents]]
id = "w1"
task_type = "implement"
scope = {{ files_write = ["w1.txt"] }}
[[batches.agents]]
id = "w2"
task_type = "implement"
scope = {{ files_write = ["w2.txt"] }}
"#,
            serde_json::to_string(script).unwrap()
        ),
    );
    let dry = baton(&repo, &["run", &plan, "--dry-run"]).expect_code(0);
    assert!(
        dry.stdout.contains(&format!("on baton/{id}/w1")),
        "{}",
        dry.stdout
    );
    let run = baton(&repo, &["run", &plan]);
    let log = |a: &str| {
        std::fs::read_to_string(
            repo.path()
                .join(format!(".baton/executions/{id}/logs/{a}/1.log")),
        )
        .unwrap_or_default()
    };
    assert_eq!(
        run.code,
        0,
        "{}\n{}\nw1: {}",
        run.stdout,
        run.stderr,
        log("w1")
    );
    let exec = execution(&repo, id);
    for a in ["w1", "w2"] {
        let st = agent(&exec, a);
        let wt = st.worktree.as_ref().expect("a worktree");
        assert_ne!(wt, repo.path(), "{}", run.stdout);
        assert_eq!(
            std::fs::read_to_string(wt.join(format!("{a}.txt"))).unwrap(),
            format!("{a}\n")
        );
        assert_eq!(
            st.branch.as_deref(),
            Some(format!("baton/{id}/{a}").as_str())
        );
        assert_eq!(
            repo.git_in(wt, &["rev-parse", "--abbrev-ref", "HEAD"]),
            format!("baton/{id}/{a}")
        );
        let r = st.result.as_ref().unwrap();
        assert_eq!(r.files_changed, [format!("{a}.txt")], "measured from git");
        assert_eq!(r.summary.as_deref(), Some(format!("wrote {a}").as_str()));
    }
    // the main checkout is untouched
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    assert!(!repo.path().join("w1.txt").exists());

    let status = baton(&repo, &["status", id, "--json"])
        .expect_code(0)
        .json();
    assert_eq!(status["execution"]["status"], "succeeded");
    let text = baton(&repo, &["status", id]).expect_code(0);
    assert!(text.stdout.contains("succeeded"), "{}", text.stdout);
}

#[test]
fn idle_and_silent_agents_are_stopped_with_their_class() {
    let repo = TestRepo::new();
    let id = "OP-20260101-000000-00000f02";
    let plan = write_plan(
        &repo,
        id,
        r#"[defaults]
isolation = "none"
[[batches]]
id = "B1"
[[batches.agents]]
id = "idler"
task_type = "implement"
idle_timeout = "500ms"
command = ["sh", "-c", "echo working; sleep 30"]
[[batches.agents]]
id = "silent"
task_type = "implement"
first_output_timeout = "400ms"
command = ["sh", "-c", "sleep 30"]
[[batches.agents]]
id = "chatty"
task_type = "implement"
idle_timeout = "1s"
first_output_timeout = "2s"
command = ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do echo $i; sleep 0.2; done"]
"#,
    );
    let started = Instant::now();
    let run = baton(&repo, &["run", &plan, "--grace", "200ms"]).expect_code(1);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the hung agents were stopped"
    );
    let exec = execution(&repo, id);
    let class = |a: &str| agent(&exec, a).result.as_ref().unwrap().error_class;
    assert_eq!(
        class("idler"),
        Some(ErrorClass::IdleTimeout),
        "{}",
        run.stdout
    );
    assert_eq!(
        class("silent"),
        Some(ErrorClass::FirstOutputTimeout),
        "{}",
        run.stdout
    );
    assert_eq!(
        agent(&exec, "chatty").status,
        Status::Succeeded,
        "output keeps an agent alive: {}",
        run.stdout
    );
    assert!(processes_with_env(&format!("BATON_PLAN_ID={id}")).is_empty());
}

#[test]
fn logs_follow_prints_the_output_as_it_comes_until_the_attempt_ends() {
    let repo = TestRepo::new();
    let id = "OP-20260101-000000-00000f03";
    let plan = write_plan(
        &repo,
        id,
        r#"[defaults]
isolation = "none"
[[batches]]
id = "B1"
[[batches.agents]]
id = "talker"
task_type = "research"
command = ["sh", "-c", "echo one; sleep 0.3; echo two; sleep 0.3; echo three"]
"#,
    );
    let mut run = repo
        .command(BATON, repo.path())
        .args(["run", &plan])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let log = repo
        .path()
        .join(format!(".baton/executions/{id}/logs/talker/1.log"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !log.exists() {
        assert!(Instant::now() < deadline, "the agent never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let follow = baton(&repo, &["logs", id, "talker", "--follow"]).expect_code(0);
    assert_eq!(follow.stdout, "one\ntwo\nthree\n");
    assert!(run.wait().unwrap().success());
    // unknown agents are bad input
    baton(&repo, &["logs", id, "nobody"]).expect_code(2);
}

#[test]
fn status_watch_follows_the_execution_until_it_ends() {
    let repo = TestRepo::new();
    let id = "OP-20260101-000000-00000f04";
    let plan = write_plan(
        &repo,
        id,
        r#"[defaults]
isolation = "none"
command = ["sleep", "0.3"]
[[batches]]
id = "B1"
[[batches.agents]]
id = "s1"
task_type = "research"
[[batches]]
id = "B2"
depends_on = ["B1"]
[[batches.agents]]
id = "s2"
task_type = "research"
"#,
    );
    let mut run = repo
        .command(BATON, repo.path())
        .args(["run", &plan])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let exec = repo.path().join(format!(".baton/executions/{id}.json"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !exec.exists() {
        assert!(Instant::now() < deadline, "the run never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let watch = baton(&repo, &["status", id, "--watch", "--json"]).expect_code(0);
    assert!(run.wait().unwrap().success());
    let docs: Vec<serde_json::Value> = watch
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON document per line"))
        .collect();
    assert!(docs.len() >= 2, "redrawn at changes: {}", watch.stdout);
    let revisions: Vec<u64> = docs
        .iter()
        .filter_map(|d| d["execution"]["revision"].as_u64())
        .collect();
    assert!(revisions.windows(2).all(|w| w[0] < w[1]), "{revisions:?}");
    assert_eq!(docs.last().unwrap()["execution"]["status"], "succeeded");
}
