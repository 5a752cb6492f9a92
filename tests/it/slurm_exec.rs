//! The Slurm executor against a real cluster: exit codes and logs, time limits, kill, and a
//! runner that dies and is replaced (adoption without a second submission).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use baton_plan::executor::ExecutorSettings;
use baton_plan::{AgentId, BatchId, PlanId};
use baton_run::{
    Adoption, AttemptEvent, AttemptHandle, AttemptKey, AttemptSpec, EventKind, ExecError, Executor,
    Outcome,
};
use baton_slurm::{Slurm, SlurmExecutor};

use crate::slurm_support::{cluster, jobs_named, slow_enabled};

fn settings(extra: &str) -> ExecutorSettings {
    toml::from_str(&format!(
        "kind = \"slurm\"\npoll_interval = \"200ms\"\n{extra}"
    ))
    .unwrap()
}

fn executor(slurm: &Slurm, dir: &Path, extra: &str) -> SlurmExecutor {
    SlurmExecutor::new(slurm.clone(), settings(extra), &dir.join("scratch")).unwrap()
}

fn plan_id() -> PlanId {
    // a fresh id per test run: job names are unique per plan, and the controller remembers
    // finished jobs for an hour
    PlanId::generate(std::time::SystemTime::now()).unwrap()
}

fn spec(plan: &PlanId, dir: &Path, agent: &str, argv: &[&str]) -> AttemptSpec {
    let cwd = dir.join("wt").join(agent);
    std::fs::create_dir_all(&cwd).unwrap();
    let mut env = BTreeMap::new();
    env.insert("BATON_AGENT_ID".to_owned(), agent.to_owned());
    AttemptSpec {
        plan: plan.clone(),
        key: AttemptKey {
            batch: BatchId::new("B1").unwrap(),
            agent: AgentId::new(agent).unwrap(),
            attempt: 1,
        },
        argv: argv.iter().map(|s| (*s).to_owned()).collect(),
        cwd,
        env,
        log: dir.join("logs").join(agent).join("1.log"),
        timeout: Some(Duration::from_secs(600)),
        resources: Default::default(),
    }
}

/// The attempt's `Finished` outcome (activity events skipped), within `limit`.
fn finished(rx: &Receiver<AttemptEvent>, limit: Duration) -> Outcome {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(AttemptEvent {
                kind: EventKind::Finished(o),
                ..
            }) => return o,
            Ok(_) => {}
            Err(e) => panic!("no Finished event within {limit:?}: {e}"),
        }
    }
}

fn job_id(h: &AttemptHandle) -> &str {
    match h {
        AttemptHandle::Slurm { job_id } => job_id,
        other => panic!("not a Slurm handle: {other:?}"),
    }
}

#[test]
fn an_attempt_runs_as_a_job_in_its_worktree_with_argv_verbatim() {
    let Some(slurm) = cluster("slurm_exec::argv") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let ex = executor(&slurm, tmp.path(), "");
    let plan = plan_id();
    // a prompt with shell syntax must arrive as one untouched argument
    let prompt = "$(touch pwned); echo `id` > x *";
    let s = spec(
        &plan,
        tmp.path(),
        "echoer",
        &[
            "sh",
            "-c",
            "printf '%s|%s|%s\\n' \"$1\" \"$BATON_AGENT_ID\" \"$(pwd)\"; exit 3",
            "sh",
            prompt,
        ],
    );
    let (tx, rx) = channel();
    let handle = ex.start(&s, tx).unwrap();
    assert_eq!(finished(&rx, Duration::from_secs(60)), Outcome::Exited(3));
    let log = std::fs::read_to_string(&s.log).unwrap();
    assert_eq!(log, format!("{prompt}|echoer|{}\n", s.cwd.display()));
    assert!(!s.cwd.join("pwned").exists());
    let name = baton_slurm::job::job_name(plan.as_str(), &s.key);
    assert_eq!(jobs_named(&slurm, &name), [job_id(&handle)]);
}

#[test]
fn kill_cancels_a_running_job() {
    let Some(slurm) = cluster("slurm_exec::kill") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let ex = executor(&slurm, tmp.path(), "");
    let plan = plan_id();
    let s = spec(
        &plan,
        tmp.path(),
        "sleeper",
        &["sh", "-c", "echo started; exec sleep 600"],
    );
    let (tx, rx) = channel();
    let handle = ex.start(&s, tx).unwrap();
    // wait until it runs (its first output), then kill
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&s.log)
        .unwrap_or_default()
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the job never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    ex.kill(&handle, Duration::from_secs(2)).unwrap();
    assert_eq!(finished(&rx, Duration::from_secs(30)), Outcome::Cancelled);
    let state = slurm.query(&[job_id(&handle).to_owned()]).unwrap();
    assert_eq!(state[0].state, "CANCELLED");
}

#[test]
fn a_new_runner_adopts_queued_and_running_jobs_and_never_submits_twice() {
    let Some(slurm) = cluster("slurm_exec::adopt") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let plan = plan_id();
    // one job runs until the test releases it; one waits in the queue (its begin time is an
    // hour away until the test moves it); one finishes before the new runner comes
    let release = tmp.path().join("release");
    let wait = format!(
        "echo up; while [ ! -e '{}' ]; do sleep 0.1; done; exit 4",
        release.display()
    );
    let running = spec(&plan, tmp.path(), "running", &["sh", "-c", &wait]);
    let queued = spec(&plan, tmp.path(), "queued", &["sh", "-c", "exit 5"]);
    let done = spec(&plan, tmp.path(), "done", &["sh", "-c", "exit 6"]);
    let mut handles = Vec::new();
    {
        let first = executor(
            &slurm,
            tmp.path(),
            "[agents.queued]\nsbatch_args = [\"--begin=now+3600\"]",
        );
        for s in [&running, &queued, &done] {
            let (tx, _rx) = channel();
            handles.push(first.start(s, tx).unwrap());
        }
        let ids: Vec<String> = handles.iter().map(|h| job_id(h).to_owned()).collect();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let st = slurm.query(&ids).unwrap();
            let state = |i: usize| {
                st.iter()
                    .find(|j| j.job_id == ids[i])
                    .map(|j| j.state.clone())
            };
            if state(0).as_deref() == Some("RUNNING")
                && state(1).as_deref() == Some("PENDING")
                && state(2).as_deref() == Some("FAILED")
            {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "jobs never reached running/pending/done: {st:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // the runner dies here: its executor is dropped, its jobs are left alone
    }
    let second = executor(&slurm, tmp.path(), "");
    let (tx, rx) = channel();
    // a handle lost in a crash: the job is found by its attempt's name
    let found = second.adopt_unrecorded(&running, tx.clone()).unwrap();
    assert_eq!(found, Some((handles[0].clone(), Adoption::Running)));
    let never = spec(&plan, tmp.path(), "never", &["true"]);
    assert_eq!(second.adopt_unrecorded(&never, tx.clone()).unwrap(), None);
    assert_eq!(
        second.adopt(&running, &handles[0], tx.clone()).unwrap(),
        Adoption::Running
    );
    assert_eq!(
        second.adopt(&queued, &handles[1], tx.clone()).unwrap(),
        Adoption::Running
    );
    assert_eq!(
        second.adopt(&done, &handles[2], tx.clone()).unwrap(),
        Adoption::Finished(Outcome::Exited(6))
    );
    // starting an attempt that already has a job (a handle lost in a crash) takes that job
    let again = second.start(&queued, tx).unwrap();
    assert_eq!(again, handles[1]);
    // let both go: the queued job may begin now, the running one may end
    let moved = std::process::Command::new("scontrol")
        .args([
            "update",
            &format!("JobId={}", job_id(&handles[1])),
            "StartTime=now",
        ])
        .envs(slurm.conf.iter().map(|c| ("SLURM_CONF", c)))
        .status()
        .unwrap();
    assert!(moved.success());
    std::fs::write(&release, "").unwrap();
    let mut outcomes = BTreeMap::new();
    while outcomes.len() < 2 {
        if let AttemptEvent {
            key,
            kind: EventKind::Finished(o),
        } = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("a Finished event")
        {
            assert!(
                outcomes.insert(key.agent.to_string(), o).is_none(),
                "two Finished events for one attempt"
            );
        }
    }
    assert_eq!(outcomes["running"], Outcome::Exited(4));
    assert_eq!(outcomes["queued"], Outcome::Exited(5));
    // the oracle: the controller knows exactly one job per attempt
    for (s, h) in [&running, &queued, &done].iter().zip(&handles) {
        let name = baton_slurm::job::job_name(plan.as_str(), &s.key);
        assert_eq!(jobs_named(&slurm, &name), [job_id(h)], "{name}");
    }
}

#[test]
fn bad_settings_are_refused_before_anything_is_submitted() {
    let Some(slurm) = cluster("slurm_exec::bad_settings") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let ex = executor(&slurm, tmp.path(), "partition = \"no-such-partition\"");
    let err = ex.preflight(["a"], tmp.path()).unwrap_err();
    assert!(matches!(err, ExecError::Config(_)), "{err:?}");
    assert!(err.to_string().contains("partition"), "{err}");
    let bad = SlurmExecutor::new(slurm.clone(), settings("cpus = 0"), &tmp.path().join("s"));
    assert!(matches!(bad, Err(ExecError::Config(_))));
}

#[test]
fn a_job_over_its_time_limit_is_a_timeout() {
    let Some(slurm) = cluster("slurm_exec::timeout") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let ex = executor(&slurm, tmp.path(), "");
    let plan = plan_id();
    let mut s = spec(&plan, tmp.path(), "overrun", &["sleep", "600"]);
    // Slurm limits are whole minutes: 1 s becomes one minute
    s.timeout = Some(Duration::from_secs(1));
    let (tx, rx) = channel();
    let handle = ex.start(&s, tx).unwrap();
    let out = std::process::Command::new("scontrol")
        .args(["-o", "show", "job", job_id(&handle)])
        .envs(slurm.conf.iter().map(|c| ("SLURM_CONF", c)))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("TimeLimit=00:01:00"));
    if !slow_enabled("slurm_exec::timeout (waiting out the limit)") {
        ex.kill(&handle, Duration::ZERO).unwrap();
        return;
    }
    assert_eq!(finished(&rx, Duration::from_secs(180)), Outcome::TimedOut);
}
