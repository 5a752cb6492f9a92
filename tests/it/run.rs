//! `baton run` end to end: scripted shell agents, the real binary, the execution file and the
//! agents' own traces as the oracle.

use std::path::Path;

use baton_plan::Execution;
use baton_tests::TestRepo;

use crate::support::baton;

/// A plan file with a fixed id, agents sharing the checkout unless `isolation` says otherwise.
pub fn write_plan(repo: &TestRepo, id: &str, body: &str) -> String {
    let text = format!("schema_version = 1\nid = \"{id}\"\ntitle = \"run test\"\n{body}");
    let name = format!("{id}.toml");
    std::fs::write(repo.scratch("plans").join(&name), text).unwrap();
    repo.scratch("plans")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

pub fn execution(repo: &TestRepo, id: &str) -> Execution {
    baton_store::read_json(
        &repo
            .path()
            .join(".baton/executions")
            .join(format!("{id}.json")),
    )
    .expect("execution file")
}

pub fn agent<'e>(exec: &'e Execution, id: &str) -> &'e baton_plan::execution::AgentState {
    exec.batches
        .iter()
        .flat_map(|b| &b.agents)
        .find(|a| a.id.as_str() == id)
        .unwrap_or_else(|| panic!("no agent {id}"))
}

/// Lines `<what> <agent> <nanoseconds>` the agents appended to `trace`.
pub fn trace(path: &Path) -> Vec<(String, String, u128)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let mut f = l.split_whitespace();
            (
                f.next().unwrap().to_owned(),
                f.next().unwrap().to_owned(),
                f.next().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

/// A command (argv) that records its start and end in `trace` around `body`.
pub fn traced(trace: &Path, body: &str) -> String {
    let t = trace.display();
    let script = format!(
        "echo start $BATON_AGENT_ID $(date +%s%N) >> {t}; ( {body} ); rc=$?; echo end $BATON_AGENT_ID $(date +%s%N) >> {t}; exit $rc"
    );
    format!(
        "[\"sh\", \"-c\", {}]",
        serde_json::to_string(&script).unwrap()
    )
}

fn interval(tr: &[(String, String, u128)], agent: &str) -> (u128, u128) {
    let at = |what: &str| {
        tr.iter()
            .find(|(w, a, _)| w == what && a == agent)
            .unwrap_or_else(|| panic!("no {what} of {agent} in {tr:?}"))
            .2
    };
    (at("start"), at("end"))
}

/// Processes (other than zombies) whose environment contains `needle`, e.g.
/// `BATON_PLAN_ID=<id>`.
pub fn processes_with_env(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if env.split(|&b| b == 0).any(|kv| kv == needle.as_bytes()) {
            let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')
                        .map(|(_, r)| r.trim_start().starts_with('Z'))
                })
                .unwrap_or(false);
            if !zombie {
                found.push(pid);
            }
        }
    }
    found
}

#[test]
fn a_three_batch_dag_completes_in_order_with_independent_agents_together() {
    let repo = TestRepo::new();
    let tr = repo.scratch("t").join("trace");
    let cmd = traced(&tr, "sleep 0.4");
    let id = "OP-20260101-000000-00000d01";
    let plan = write_plan(
        &repo,
        id,
        &format!(
            r#"[defaults]
isolation = "none"
command = {cmd}
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
kind = "sequential"
[[batches.agents]]
id = "c1"
task_type = "test"
[[batches.agents]]
id = "c2"
task_type = "test"
"#
        ),
    );
    // the schedule first: nothing runs, nothing is written
    let dry = baton(&repo, &["run", &plan, "--dry-run", "--max-parallel", "4"]).expect_code(0);
    assert!(
        dry.stdout.contains("levels: [B1] -> [B2] -> [B3]"),
        "{}",
        dry.stdout
    );
    assert!(dry.stdout.contains("sequential"), "{}", dry.stdout);
    assert!(
        !repo.path().join(".baton").exists(),
        "a dry run writes nothing"
    );
    assert!(!tr.exists(), "a dry run runs nothing");

    let run = baton(&repo, &["run", &plan, "--max-parallel", "4"]).expect_code(0);
    let t = trace(&tr);
    let (a1, a2, b1, c1, c2) = (
        interval(&t, "a1"),
        interval(&t, "a2"),
        interval(&t, "b1"),
        interval(&t, "c1"),
        interval(&t, "c2"),
    );
    assert!(
        a1.0 < a2.1 && a2.0 < a1.1,
        "B1's agents ran together: {t:?}"
    );
    assert!(b1.0 >= a1.1.max(a2.1), "B2 after B1: {t:?}");
    assert!(c1.0 >= b1.1 && c2.0 >= b1.1, "B3 after B2: {t:?}");
    assert!(c2.0 >= c1.1, "a sequential batch runs one at a time: {t:?}");
    let exec = execution(&repo, id);
    assert_eq!(exec.status, baton_plan::Status::Succeeded, "{}", run.stdout);
    for a in ["a1", "a2", "b1", "c1", "c2"] {
        let st = agent(&exec, a);
        assert_eq!(st.attempt, 1);
        assert_eq!(st.result.as_ref().unwrap().exit_code, Some(0));
        let log = repo
            .path()
            .join(format!(".baton/executions/{id}/logs/{a}/1.log"));
        assert!(log.exists(), "{} missing", log.display());
    }
    // the metrics log has the transitions
    let metrics = std::fs::read_to_string(repo.path().join(".baton/metrics.jsonl")).unwrap();
    assert_eq!(metrics.matches("\"agent_complete\"").count(), 5);
    assert_eq!(metrics.matches("\"batch_complete\"").count(), 3);
    // and the checkout is still clean: .baton is excluded
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}

#[test]
fn agents_with_overlapping_write_scopes_never_overlap_in_time() {
    let repo = TestRepo::new();
    let tr = repo.scratch("t").join("trace");
    let cmd = traced(&tr, "sleep 0.3");
    let id = "OP-20260101-000000-00000d02";
    let plan = write_plan(
        &repo,
        id,
        &format!(
            r#"[defaults]
isolation = "none"
command = {cmd}
[[batches]]
id = "B1"
[[batches.agents]]
id = "wide"
task_type = "implement"
scope = {{ files_write = ["src/**"] }}
[[batches.agents]]
id = "narrow"
task_type = "implement"
scope = {{ files_write = ["src/cache/*.rs"] }}
[[batches.agents]]
id = "docs"
task_type = "implement"
scope = {{ files_write = ["docs/**"] }}
"#
        ),
    );
    let run = baton(&repo, &["run", &plan, "--max-parallel", "8"]).expect_code(0);
    assert!(
        run.stdout.contains("write scopes overlap"),
        "the output says why one waits: {}",
        run.stdout
    );
    let t = trace(&tr);
    let (w, n, d) = (
        interval(&t, "wide"),
        interval(&t, "narrow"),
        interval(&t, "docs"),
    );
    assert!(
        w.1 <= n.0 || n.1 <= w.0,
        "overlapping scopes overlapped: {t:?}"
    );
    assert!(
        d.0 < w.1.max(n.1) && w.0.min(n.0) < d.1,
        "the unrelated agent ran alongside: {t:?}"
    );
}

#[test]
fn a_failing_agent_is_retried_with_backoff_then_fails_its_batch() {
    let repo = TestRepo::new();
    let tr = repo.scratch("t").join("trace");
    let cmd = traced(&tr, "echo trying; exit 3");
    let id = "OP-20260101-000000-00000d03";
    let plan = write_plan(
        &repo,
        id,
        &format!(
            r#"[defaults]
isolation = "none"
[[batches]]
id = "B1"
[[batches.agents]]
id = "flaky"
task_type = "implement"
retries = 2
command = {cmd}
[[batches.agents]]
id = "fine"
task_type = "implement"
command = ["true"]
[[batches]]
id = "B2"
depends_on = ["B1"]
[[batches.agents]]
id = "later"
task_type = "test"
command = {cmd}
"#
        ),
    );
    let run = baton(
        &repo,
        &["run", &plan, "--backoff", "200ms", "--backoff-cap", "2s"],
    )
    .expect_code(1);
    let t = trace(&tr);
    let starts: Vec<u128> = t
        .iter()
        .filter(|(w, a, _)| w == "start" && a == "flaky")
        .map(|x| x.2)
        .collect();
    let ends: Vec<u128> = t
        .iter()
        .filter(|(w, a, _)| w == "end" && a == "flaky")
        .map(|x| x.2)
        .collect();
    assert_eq!(starts.len(), 3, "one attempt and two retries: {t:?}");
    // equal jitter: the first retry waits at least half of 200 ms, the second half of 400 ms
    let gap = |i: usize| (starts[i + 1] - ends[i]) / 1_000_000;
    assert!(gap(0) >= 100, "first backoff {} ms", gap(0));
    assert!(gap(1) >= 200, "second backoff {} ms", gap(1));
    assert!(run.stdout.contains("retry in"), "{}", run.stdout);
    let exec = execution(&repo, id);
    let flaky = agent(&exec, "flaky");
    assert_eq!(flaky.attempt, 3);
    assert_eq!(flaky.status, baton_plan::Status::Failed);
    let r = flaky.result.as_ref().unwrap();
    assert_eq!(r.exit_code, Some(3));
    assert_eq!(r.error_class, Some(baton_plan::ErrorClass::ExitNonzero));
    assert_eq!(
        exec.batch(&"B1".parse().unwrap()).unwrap().status,
        baton_plan::Status::Failed
    );
    assert_eq!(
        exec.batch(&"B2".parse().unwrap()).unwrap().status,
        baton_plan::Status::Skipped
    );
    assert!(
        !t.iter().any(|(_, a, _)| a == "later"),
        "a skipped batch runs nothing"
    );
    for n in 1..=3 {
        let log = repo
            .path()
            .join(format!(".baton/executions/{id}/logs/flaky/{n}.log"));
        assert_eq!(std::fs::read_to_string(log).unwrap(), "trying\n");
    }
    // logs shows the latest attempt
    let logs = baton(&repo, &["logs", id, "flaky"]).expect_code(0);
    assert_eq!(logs.stdout, "trying\n");
}

#[test]
fn a_missing_binary_trips_the_breaker_and_the_rest_is_not_launched() {
    let repo = TestRepo::new();
    let id = "OP-20260101-000000-00000d04";
    let mut body = String::from(
        "[defaults]\nisolation = \"none\"\nretries = 2\ncommand = [\"baton-no-such-agent-cli\", \"{prompt}\"]\n[[batches]]\nid = \"B1\"\n",
    );
    for i in 1..=5 {
        body.push_str(&format!(
            "[[batches.agents]]\nid = \"m{i}\"\ntask_type = \"implement\"\nprompt = \"p\"\n"
        ));
    }
    let plan = write_plan(&repo, id, &body);
    // retries are allowed, but a missing binary is not worth retrying across agents
    let run = baton(
        &repo,
        &["run", &plan, "--max-parallel", "1", "--backoff", "500ms"],
    )
    .expect_code(1);
    assert!(run.stdout.contains("breaker open"), "{}", run.stdout);
    assert!(
        run.stderr.contains("command not found") && run.stderr.contains("resume"),
        "says what to fix: {}",
        run.stderr
    );
    let exec = execution(&repo, id);
    let started: Vec<&str> = exec.batches[0]
        .agents
        .iter()
        .filter(|a| a.attempt > 0)
        .map(|a| a.id.as_str())
        .collect();
    assert_eq!(started, ["m1", "m2"], "the breaker opened on the repeat");
    assert!(
        exec.batches[0].agents[..2].iter().all(|a| a.attempt == 1),
        "and nothing was retried"
    );
    for a in &exec.batches[0].agents[..2] {
        assert_eq!(
            a.result.as_ref().unwrap().error_class,
            Some(baton_plan::ErrorClass::SpawnFailed)
        );
    }
    assert!(
        !exec.status.is_finished(),
        "the execution stays resumable once the command is fixed"
    );
}

#[test]
fn a_hung_agent_is_killed_with_every_descendant() {
    let repo = TestRepo::new();
    let id = "OP-20260101-000000-00000d05";
    // a grandchild, a setsid child that ignores SIGTERM, and a double-forked orphan
    let script = "sleep 30 & \
        setsid sh -c 'trap \"\" TERM; sleep 30; sleep 30' & \
        (sh -c 'trap \"\" TERM; sleep 30' &) ; \
        echo spawned; sleep 30";
    let plan = write_plan(
        &repo,
        id,
        &format!(
            r#"[defaults]
isolation = "none"
[[batches]]
id = "B1"
[[batches.agents]]
id = "hung"
task_type = "implement"
timeout = "1s"
command = ["sh", "-c", {}]
"#,
            serde_json::to_string(script).unwrap()
        ),
    );
    let run = baton(&repo, &["run", &plan, "--grace", "300ms"]).expect_code(1);
    let needle = format!("BATON_PLAN_ID={id}");
    let left = processes_with_env(&needle);
    assert!(
        left.is_empty(),
        "processes of the agent survived: {left:?}\n{}",
        run.stdout
    );
    let exec = execution(&repo, id);
    let hung = agent(&exec, "hung");
    assert_eq!(
        hung.result.as_ref().unwrap().error_class,
        Some(baton_plan::ErrorClass::Timeout),
        "{}",
        run.stdout
    );
    let log = std::fs::read_to_string(
        repo.path()
            .join(format!(".baton/executions/{id}/logs/hung/1.log")),
    )
    .unwrap();
    // the agent's own output, then what its supervisor had to do: the two children that
    // ignore SIGTERM (and their sleeps, which inherit that) needed SIGKILL
    let (own, notes) = log.split_once('\n').unwrap();
    assert_eq!(own, "spawned");
    assert!(
        notes.starts_with("[baton] ")
            && notes
                .contains("ignored SIGTERM and were killed with SIGKILL after the grace period"),
        "{log}"
    );
    assert!(
        hung.result
            .as_ref()
            .unwrap()
            .leftovers
            .as_ref()
            .unwrap()
            .killed_after_grace
            >= 2,
        "{:?}",
        hung.result
    );
    assert!(
        run.stdout.contains("leak: hung (attempt 1)"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_bad_plan_is_rejected_before_anything_starts() {
    let repo = TestRepo::new();
    let tr = repo.scratch("t").join("trace");
    let cmd = traced(&tr, "true");
    let plan = write_plan(
        &repo,
        "OP-20260101-000000-00000d06",
        &format!(
            r#"[defaults]
isolation = "none"
command = {cmd}
[[batches]]
id = "B1"
depends_on = ["B2"]
[[batches.agents]]
id = "a"
task_type = "research"
[[batches]]
id = "B2"
depends_on = ["B1"]
[[batches.agents]]
id = "b"
task_type = "research"
command = ["x", "{{nonsense}}"]
"#
        ),
    );
    let run = baton(&repo, &["run", &plan]).expect_code(2);
    assert!(run.stderr.contains("cycle"), "{}", run.stderr);
    assert!(run.stderr.contains("{nonsense}"), "{}", run.stderr);
    assert!(run.stderr.contains(&plan), "names the file: {}", run.stderr);
    assert!(!repo.path().join(".baton").exists(), "nothing on disk");
    assert!(!tr.exists(), "nothing ran");
    // unknown ids are bad input too
    baton(&repo, &["run", "OP-20260101-000000-0000dead"]).expect_code(2);
}
