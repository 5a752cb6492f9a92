//! `baton run` failure handling beyond a plain non-zero exit: rate limits recognised by their
//! output, the breaker's pause and probe, and processes an agent leaves behind.

use baton_plan::{ErrorClass, Status};
use baton_tests::TestRepo;

use crate::run::{agent, execution, processes_with_env, write_plan};
use crate::support::baton;

#[test]
fn rate_limited_agents_pause_launching_then_succeed_on_their_retry() {
    let repo = TestRepo::new();
    let marks = repo.scratch("marks");
    let m = marks.display();
    // first attempt: the provider says no; any later attempt works
    let script = format!(
        "if [ -e {m}/$BATON_AGENT_ID ]; then echo done; exit 0; fi; touch {m}/$BATON_AGENT_ID; echo 'Error: Rate limit exceeded, try later'; exit 1"
    );
    let id = "OP-20260101-000000-00000a01";
    let mut body = format!(
        "[defaults]\nisolation = \"none\"\nretries = 2\ncommand = [\"sh\", \"-c\", {}]\n[defaults.rate_limit]\npatterns = [\"rate limit exceeded\"]\n[[batches]]\nid = \"B1\"\n",
        serde_json::to_string(&script).unwrap()
    );
    for i in 1..=3 {
        body.push_str(&format!(
            "[[batches.agents]]\nid = \"r{i}\"\ntask_type = \"research\"\n"
        ));
    }
    let plan = write_plan(&repo, id, &body);
    let run = baton(
        &repo,
        &[
            "run",
            &plan,
            "--max-parallel",
            "3",
            "--backoff",
            "100ms",
            "--backoff-cap",
            "300ms",
        ],
    )
    .expect_code(0);
    assert!(run.stdout.contains("breaker open"), "{}", run.stdout);
    assert!(run.stdout.contains("rate_limited"), "{}", run.stdout);
    let exec = execution(&repo, id);
    for a in ["r1", "r2", "r3"] {
        let st = agent(&exec, a);
        assert_eq!(st.status, Status::Succeeded, "{a}: {}", run.stdout);
        assert_eq!(st.attempt, 2, "{a}: one rate-limited attempt, then success");
    }
    let metrics = std::fs::read_to_string(repo.path().join(".baton/metrics.jsonl")).unwrap();
    assert_eq!(
        metrics.matches("\"error_class\":\"rate_limited\"").count(),
        3,
        "{metrics}"
    );
}

#[test]
fn processes_an_agent_leaves_behind_are_stopped_and_said_in_its_log() {
    let repo = TestRepo::new();
    let id = "OP-20260101-000000-00000a02";
    let plan = write_plan(
        &repo,
        id,
        r#"[defaults]
isolation = "none"
[[batches]]
id = "B1"
[[batches.agents]]
id = "messy"
task_type = "implement"
command = ["sh", "-c", "sleep 30 & setsid sleep 31 & echo done"]
"#,
    );
    baton(&repo, &["run", &plan, "--grace", "200ms"]).expect_code(0);
    assert!(processes_with_env(&format!("BATON_PLAN_ID={id}")).is_empty());
    let exec = execution(&repo, id);
    assert_eq!(
        agent(&exec, "messy").result.as_ref().unwrap().error_class,
        None::<ErrorClass>
    );
    let log = baton(&repo, &["logs", id, "messy"]).expect_code(0);
    assert!(log.stdout.starts_with("done\n"), "{}", log.stdout);
    assert!(
        log.stdout
            .contains("[baton] the agent exited leaving 2 process(es) running"),
        "{}",
        log.stdout
    );
}

/// Descendants that ignore SIGTERM are killed with SIGKILL after the grace period, and that
/// reaches the user four ways: the plain output, `--json`'s `leak` event, the attempt's
/// `result.leftovers` and an `agent_leak` metrics event. Nothing of the agents is left.
#[test]
fn processes_that_ignore_sigterm_are_killed_after_the_grace_and_reported() {
    let repo = TestRepo::new();
    let id = "OP-20260101-000000-00000a03";
    // `stubborn` times out holding a child that ignores SIGTERM (its `sleep` inherits that);
    // `leaver` exits leaving such a child behind (once the child ignores SIGTERM)
    let ready = repo.scratch("ready");
    let r = ready.display();
    let stubborn =
        format!("sh -c 'trap \"\" TERM; touch {r}/s; sleep 30' & echo spawned; sleep 30");
    let leaver = format!(
        "setsid sh -c 'trap \"\" TERM; touch {r}/l; sleep 31' & i=0; while [ ! -e {r}/l ] && [ $i -lt 200 ]; do sleep 0.01; i=$((i+1)); done; echo done"
    );
    let q = |s: &str| serde_json::to_string(s).unwrap();
    let plan = write_plan(
        &repo,
        id,
        &format!(
            r#"[defaults]
isolation = "none"
[[batches]]
id = "B1"
[[batches.agents]]
id = "stubborn"
task_type = "implement"
timeout = "1s"
command = ["sh", "-c", {}]
[[batches.agents]]
id = "leaver"
task_type = "implement"
command = ["sh", "-c", {}]
"#,
            q(&stubborn),
            q(&leaver)
        ),
    );
    // plain lines (stdout is not a terminal)
    let run = baton(&repo, &["run", &plan, "--grace", "300ms"]).expect_code(1);
    for a in ["stubborn", "leaver"] {
        assert!(
            processes_with_env(&format!("BATON_AGENT_ID={a}")).is_empty(),
            "{a} left a process alive"
        );
    }
    let line = |a: &str| {
        run.stdout
            .lines()
            .find(|l| l.contains(&format!("leak: {a} (attempt 1) left processes behind")))
            .unwrap_or_else(|| panic!("no leak line for {a}:\n{}", run.stdout))
            .to_owned()
    };
    assert!(
        line("stubborn").contains("ignored SIGTERM (killed with SIGKILL after the grace period)"),
        "{}",
        run.stdout
    );
    assert!(line("leaver").contains("still running when it exited"));
    let exec = execution(&repo, id);
    let left = |a: &str| agent(&exec, a).result.clone().unwrap().leftovers.unwrap();
    // the stubborn sh and its sleep; what the timed-out agent ran in the foreground went on
    // SIGTERM
    assert!(
        left("stubborn").killed_after_grace >= 1,
        "{:?}",
        left("stubborn")
    );
    assert!(left("stubborn").survived.is_empty());
    assert!(left("leaver").swept >= 1 && left("leaver").killed_after_grace >= 1);
    assert_eq!(
        agent(&exec, "leaver").status,
        Status::Succeeded,
        "leftovers are reported, they do not fail the agent"
    );
    let status = baton(&repo, &["status", id]).expect_code(0);
    assert!(
        status
            .stdout
            .lines()
            .any(|l| l.contains("stubborn") && l.contains("processes behind")),
        "{}",
        status.stdout
    );
    let metrics = std::fs::read_to_string(repo.path().join(".baton/metrics.jsonl")).unwrap();
    let leaks: Vec<serde_json::Value> = metrics
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|m| m["event"] == "agent_leak")
        .collect();
    assert_eq!(leaks.len(), 2, "{metrics}");
    assert!(
        leaks
            .iter()
            .all(|m| m["details"]["killed_after_grace"] != "0" && m["plan"] == id),
        "{leaks:?}"
    );
    // the same run again as JSON events: a `leak` event per agent
    std::fs::remove_dir_all(&ready).unwrap();
    std::fs::create_dir(&ready).unwrap();
    let id2 = "OP-20260101-000000-00000a04";
    let plan2 = write_plan(
        &repo,
        id2,
        &std::fs::read_to_string(&plan)
            .unwrap()
            .split_once("[defaults]")
            .map(|(_, rest)| format!("[defaults]{rest}"))
            .unwrap(),
    );
    let json = baton(&repo, &["run", &plan2, "--grace", "300ms", "--json"]).expect_code(1);
    let events: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let leak = events
        .iter()
        .find(|e| e["event"] == "leak" && e["agent"] == "stubborn")
        .unwrap_or_else(|| panic!("no leak event: {events:#?}"));
    assert_eq!(leak["attempt"], 1);
    assert!(leak["killed_after_grace"].as_u64().unwrap() >= 1, "{leak}");
    assert_eq!(leak["pids"], serde_json::json!([]));
    assert!(processes_with_env(&format!("BATON_PLAN_ID={id2}")).is_empty());
}
