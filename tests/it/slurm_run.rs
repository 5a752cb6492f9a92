//! `baton run --executor slurm`: a two-batch plan whose agents run as jobs ends with the same
//! execution results as with the local executor; a runner SIGKILLed while jobs are queued and
//! running is resumed, adopts them, and no attempt is submitted twice (the controller's job
//! list is the oracle).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use baton_plan::{PlanId, Status};
use baton_tests::TestRepo;

use crate::run::{agent, execution, trace, write_plan};
use crate::slurm_support::{cluster, jobs_named};
use crate::support::{BATON, Run};

/// A fresh plan id: job names carry it, and the controller remembers finished jobs.
fn fresh_id() -> String {
    PlanId::generate(std::time::SystemTime::now())
        .unwrap()
        .to_string()
}

fn baton_env(repo: &TestRepo, conf: Option<&PathBuf>, args: &[&str]) -> Command {
    let mut cmd = repo.command(BATON, repo.path());
    cmd.args(args);
    if let Some(c) = conf {
        cmd.env("SLURM_CONF", c);
    }
    cmd
}

fn baton(repo: &TestRepo, conf: Option<&PathBuf>, args: &[&str]) -> Run {
    let out = baton_env(repo, conf, args).output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn two_batches(tr: &Path) -> String {
    let t = tr.display();
    let q = |s: &str| serde_json::to_string(s).unwrap();
    let work = q(&format!(
        "echo start $BATON_AGENT_ID $(date +%s%N) >> {t}; echo \"$BATON_AGENT_ID\" > \"$BATON_AGENT_ID.txt\"; git add -A; git commit -qm \"$BATON_AGENT_ID\""
    ));
    let fail = q(&format!(
        "echo start $BATON_AGENT_ID $(date +%s%N) >> {t}; exit 3"
    ));
    format!(
        r#"[defaults]
retries = 0
[[batches]]
id = "B1"
[[batches.agents]]
id = "a1"
task_type = "implement"
scope = {{ files_write = ["a1.txt"] }}
command = ["sh", "-c", {work}]
[[batches.agents]]
id = "a2"
task_type = "implement"
scope = {{ files_write = ["a2.txt"] }}
command = ["sh", "-c", {work}]
[[batches]]
id = "B2"
depends_on = ["B1"]
[[batches.agents]]
id = "b1"
task_type = "test"
scope = {{ files_write = ["b1.txt"] }}
command = ["sh", "-c", {work}]
[[batches.agents]]
id = "b2"
task_type = "test"
command = ["sh", "-c", {fail}]
"#
    )
}

/// What an execution says of each agent, without times, pids or job ids.
fn results(repo: &TestRepo, id: &str) -> Vec<String> {
    let exec = execution(repo, id);
    let mut out = vec![format!("execution {:?}", exec.status)];
    for a in ["a1", "a2", "b1", "b2"] {
        let st = agent(&exec, a);
        let r = st.result.as_ref();
        out.push(format!(
            "{a}: {:?} attempt {} exit {:?} files {:?}",
            st.status,
            st.attempt,
            r.and_then(|r| r.exit_code),
            r.map(|r| r.files_changed.clone()).unwrap_or_default()
        ));
    }
    out
}

#[test]
fn a_two_batch_plan_on_slurm_ends_as_it_does_locally() {
    let Some(slurm) = cluster("slurm_run::same_results") else {
        return;
    };
    let mut outcomes = Vec::new();
    for executor in ["local", "slurm"] {
        let repo = TestRepo::new();
        // no test command: the batch gate may run no tests here
        repo.write(".config/baton.toml", "[verify]\nallow_no_tests = true\n");
        repo.commit_all("baton config: no tests in this repository");
        let tr = repo.scratch("t").join("trace");
        let id = fresh_id();
        let plan = write_plan(&repo, &id, &two_batches(&tr));
        let run = baton(
            &repo,
            slurm.conf.as_ref(),
            &["run", &plan, "--executor", executor],
        );
        assert_eq!(
            run.code, 1,
            "{executor}: b2 fails\n{}\n{}",
            run.stdout, run.stderr
        );
        let exec = execution(&repo, &id);
        if executor == "slurm" {
            // each attempt is a job, recorded next to the attempt
            for a in ["a1", "a2", "b1", "b2"] {
                let st = agent(&exec, a);
                let Some(baton_plan::AttemptHandle::Slurm { job_id }) = &st.handle else {
                    // a finished attempt may have dropped its handle; the job must exist anyway
                    let name = format!(
                        "baton.{id}.{}.{a}.1",
                        if a.starts_with('a') { "B1" } else { "B2" }
                    );
                    assert_eq!(jobs_named(&slurm, &name).len(), 1, "{name}");
                    continue;
                };
                assert!(!job_id.is_empty());
            }
        }
        // B2 ran after B1 in both
        let t = trace(&tr);
        let at = |a: &str| t.iter().find(|(_, x, _)| x == a).map(|x| x.2).unwrap();
        assert!(at("b1") > at("a1").max(at("a2")), "{t:?}");
        outcomes.push(results(&repo, &id));
    }
    assert_eq!(outcomes[0], outcomes[1]);
}

#[test]
fn a_killed_runner_is_resumed_and_adopts_its_queued_and_running_jobs() {
    let Some(slurm) = cluster("slurm_run::resume") else {
        return;
    };
    let repo = TestRepo::new();
    let tr = repo.scratch("t").join("trace");
    let t = tr.display();
    let gate = repo.scratch("t").join("go");
    let g = gate.display();
    let q = |s: &str| serde_json::to_string(s).unwrap();
    let slow = q(&format!(
        "echo start $BATON_AGENT_ID $(date +%s%N) >> {t}; while [ ! -e {g} ]; do sleep 0.1; done; echo end $BATON_AGENT_ID 0 >> {t}"
    ));
    let next = q(&format!("echo start $BATON_AGENT_ID $(date +%s%N) >> {t}"));
    let id = fresh_id();
    // `held` waits in the queue: its begin time is an hour away until the test moves it
    let plan = write_plan(
        &repo,
        &id,
        &format!(
            r#"[defaults]
isolation = "none"
retries = 2
[executor]
kind = "slurm"
poll_interval = "200ms"
[executor.agents.held]
sbatch_args = ["--begin=now+3600"]
[[batches]]
id = "B1"
[[batches.agents]]
id = "running"
task_type = "implement"
command = ["sh", "-c", {slow}]
[[batches.agents]]
id = "held"
task_type = "implement"
command = ["sh", "-c", {next}]
[[batches]]
id = "B2"
depends_on = ["B1"]
[[batches.agents]]
id = "after"
task_type = "test"
command = ["sh", "-c", {next}]
"#
        ),
    );
    let name = |batch: &str, a: &str| format!("baton.{id}.{batch}.{a}.1");
    let mut first = baton_env(&repo, slurm.conf.as_ref(), &["run", &plan])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let started = trace(&tr).iter().any(|(_, a, _)| a == "running");
        let held = slurm.find_by_name(&name("B1", "held")).unwrap();
        if started && held.first().is_some_and(|j| j.state == "PENDING") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "jobs never got queued and running: {held:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // SIGKILL: no cleanup of any kind
    first.kill().unwrap();
    first.wait().unwrap();
    let exec = execution(&repo, &id);
    assert_eq!(agent(&exec, "running").status, Status::Running);
    assert!(matches!(
        agent(&exec, "held").handle,
        Some(baton_plan::AttemptHandle::Slurm { .. })
    ));
    // release both while no runner watches: the held job may begin, the running one may end
    let held_id = jobs_named(&slurm, &name("B1", "held"));
    let moved = Command::new("scontrol")
        .args(["update", &format!("JobId={}", held_id[0]), "StartTime=now"])
        .envs(slurm.conf.iter().map(|c| ("SLURM_CONF", c)))
        .status()
        .unwrap();
    assert!(moved.success());
    std::fs::write(&gate, "").unwrap();
    let resumed = baton(&repo, slurm.conf.as_ref(), &["run", &id, "--resume"]);
    assert_eq!(resumed.code, 0, "{}\n{}", resumed.stdout, resumed.stderr);
    let exec = execution(&repo, &id);
    for a in ["running", "held", "after"] {
        let st = agent(&exec, a);
        assert_eq!((st.status, st.attempt), (Status::Succeeded, 1), "{a}");
    }
    // the oracle: one job per attempt, one start per agent
    for (batch, a) in [("B1", "running"), ("B1", "held"), ("B2", "after")] {
        assert_eq!(jobs_named(&slurm, &name(batch, a)).len(), 1, "{a}");
        let starts = trace(&tr)
            .iter()
            .filter(|(w, x, _)| w == "start" && x == a)
            .count();
        assert_eq!(starts, 1, "{a}: {:?}", trace(&tr));
    }
    assert_eq!(held_id, jobs_named(&slurm, &name("B1", "held")));
}

#[test]
fn bad_executor_settings_in_a_plan_exit_2_with_nothing_written() {
    let repo = TestRepo::new();
    let id = fresh_id();
    for (section, needle) in [
        ("[executor]\nkind = \"slurm\"\ncpus = 0\n", "executor.cpus"),
        (
            "[executor]\nkind = \"slurm\"\n[executor.agents.ghost]\ncpus = 1\n",
            "ghost",
        ),
        (
            "[executor]\nkind = \"slurm\"\nsbatch_args = [\"--time=5\"]\n",
            "--time",
        ),
    ] {
        let plan = write_plan(
            &repo,
            &id,
            &format!(
                "{section}[[batches]]\nid = \"B1\"\n[[batches.agents]]\nid = \"a\"\ntask_type = \"test\"\ncommand = [\"true\"]\n"
            ),
        );
        let run = baton(&repo, None, &["run", &plan]);
        assert_eq!(run.code, 2, "{section}: {}", run.stderr);
        assert!(run.stderr.contains(needle), "{section}: {}", run.stderr);
        assert!(!repo.path().join(".baton").exists(), "nothing written");
    }
    // settings Slurm itself refuses (a partition it does not have): exit 2 before any job
    let Some(slurm) = cluster("slurm_run::bad_partition") else {
        return;
    };
    let plan = write_plan(
        &repo,
        &id,
        "[executor]\nkind = \"slurm\"\npartition = \"no-such-partition\"\n[[batches]]\nid = \"B1\"\n[[batches.agents]]\nid = \"a\"\ntask_type = \"test\"\ncommand = [\"true\"]\n",
    );
    let run = baton(&repo, slurm.conf.as_ref(), &["run", &plan]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("partition"), "{}", run.stderr);
    assert!(jobs_named(&slurm, &format!("baton.{id}.B1.a.1")).is_empty());
}
