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
