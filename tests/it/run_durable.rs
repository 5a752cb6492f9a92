//! `baton run` keeps what it decided across a crash: a backoff's due time and the attempt
//! count survive a SIGKILLed runner, and an adopted attempt keeps every deadline (wall clock,
//! idle, first output) counted from its real start.

use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout};
use std::time::{Duration, Instant};

use baton_plan::{ErrorClass, Status};
use baton_tests::TestRepo;

use crate::run::{agent, execution, processes_with_env, trace, write_plan};
use crate::run_resume::{signal, spawn_run};

/// `--json` events of a running `baton run`, read as they come.
pub struct Events {
    pub lines: Lines<BufReader<ChildStdout>>,
    pub seen: Vec<serde_json::Value>,
}

impl Events {
    pub fn of(child: &mut Child) -> Self {
        Events {
            lines: BufReader::new(child.stdout.take().expect("piped stdout")).lines(),
            seen: Vec::new(),
        }
    }

    /// Read until an event matches `want`; returns it. Panics (with what was seen) if the
    /// run ends first.
    pub fn until(&mut self, want: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        loop {
            let Some(line) = self.lines.next() else {
                panic!("the run ended first; events: {:#?}", self.seen);
            };
            let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
            self.seen.push(v.clone());
            if want(&v) {
                return v;
            }
        }
    }

    pub fn rest(&mut self) {
        for line in self.lines.by_ref() {
            self.seen
                .push(serde_json::from_str(&line.unwrap()).unwrap());
        }
    }
}

pub fn is(event: &'static str) -> impl Fn(&serde_json::Value) -> bool {
    move |v| v["event"] == event
}

fn rfc3339_ms(t: &str) -> u128 {
    u128::from(baton_run::clock::parse_ms(t).expect("an RFC 3339 time"))
}

#[test]
fn a_backoff_survives_a_killed_runner_and_the_retry_keeps_its_due_time_and_number() {
    let repo = TestRepo::new();
    let tr = repo.scratch("t").join("trace");
    let t = tr.display();
    let id = "OP-20260101-000000-00000f01";
    // the first attempt fails, the second succeeds
    let script =
        format!("echo start a$BATON_ATTEMPT $(date +%s%N) >> {t}; [ \"$BATON_ATTEMPT\" -ge 2 ]");
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
command = ["sh", "-c", {}]
"#,
            serde_json::to_string(&script).unwrap()
        ),
    );
    // a 4 s backoff (2–4 s with jitter): long enough to kill the runner inside it
    let mut first = spawn_run(
        &repo,
        &[
            "run",
            &plan,
            "--json",
            "--backoff",
            "4s",
            "--backoff-cap",
            "4s",
        ],
    );
    let mut events = Events::of(&mut first);
    let finish = events.until(is("agent_finish"));
    assert!(finish["retry_in_ms"].as_u64().is_some(), "{finish}");
    // the due time is on disk before the runner waits for it (the event comes just before
    // the write)
    let deadline = Instant::now() + Duration::from_secs(10);
    let exec = loop {
        let exec = execution(&repo, id);
        if agent(&exec, "flaky").retry_at.is_some() || Instant::now() > deadline {
            break exec;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let flaky = agent(&exec, "flaky");
    assert_eq!((flaky.status, flaky.attempt), (Status::Failed, 1));
    let due = rfc3339_ms(flaky.retry_at.as_deref().expect("retry_at persisted"));
    signal(&first, "-KILL");
    first.wait().unwrap();
    assert_eq!(
        trace(&tr).len(),
        1,
        "no retry before the kill: {:?}",
        trace(&tr)
    );
    // from another terminal: when the retry is due
    let status = crate::support::baton(&repo, &["status", id]).expect_code(0);
    let row = status
        .stdout
        .lines()
        .find(|l| l.contains("flaky"))
        .unwrap_or_else(|| panic!("{}", status.stdout));
    let due_text = flaky.retry_at.as_deref().unwrap();
    assert!(
        row.contains(&format!("retry at {} UTC", &due_text[11..19])),
        "{row}"
    );
    let mut second = spawn_run(&repo, &["run", id, "--resume", "--json"]);
    let mut events = Events::of(&mut second);
    events.until(is("run_start"));
    let waiting = events.until(is("agent_waiting"));
    assert_eq!(waiting["reason"], "backoff", "{waiting}");
    assert_eq!(u128::from(waiting["until_ms"].as_u64().unwrap()), due);
    events.rest();
    assert_eq!(second.wait().unwrap().code(), Some(0), "{:#?}", events.seen);
    let starts = trace(&tr);
    assert_eq!(
        starts
            .iter()
            .map(|(_, a, _)| a.as_str())
            .collect::<Vec<_>>(),
        ["a1", "a2"],
        "one retry, numbered 2"
    );
    let retried_ms = starts[1].2 / 1_000_000;
    assert!(
        retried_ms >= due,
        "the retry started {} ms before its persisted due time",
        due - retried_ms
    );
    let exec = execution(&repo, id);
    let flaky = agent(&exec, "flaky");
    assert_eq!(flaky.status, Status::Succeeded);
    assert_eq!(flaky.attempt, 2);
    assert_eq!(flaky.result.as_ref().unwrap().attempts, 2);
    assert_eq!(flaky.retry_at, None, "cleared when the retry started");
}

#[test]
fn an_adopted_attempt_keeps_its_timeouts_counted_from_its_real_start() {
    let repo = TestRepo::new();
    let id = "OP-20260101-000000-00000f02";
    let q = |s: &str| serde_json::to_string(s).unwrap();
    // bounded: a failed test leaves nothing running for long
    let silent = "sleep 20 & setsid sh -c 'sleep 21' & sleep 22";
    let idle = "echo hello; sleep 20 & sleep 22";
    let busy = "i=0; while [ $i -lt 200 ]; do echo tick $i; sleep 0.1; i=$((i+1)); done";
    let plan = write_plan(
        &repo,
        id,
        &format!(
            r#"[defaults]
isolation = "none"
[[batches]]
id = "B1"
[[batches.agents]]
id = "silent"
task_type = "implement"
first_output_timeout = "3s"
command = ["sh", "-c", {}]
[[batches.agents]]
id = "idle"
task_type = "implement"
idle_timeout = "3s"
command = ["sh", "-c", {}]
[[batches.agents]]
id = "busy"
task_type = "implement"
timeout = "3s"
command = ["sh", "-c", {}]
"#,
            q(silent),
            q(idle),
            q(busy)
        ),
    );
    let mut first = spawn_run(&repo, &["run", &plan, "--json", "--grace", "300ms"]);
    let mut events = Events::of(&mut first);
    for _ in 0..3 {
        events.until(is("agent_start"));
    }
    // the handles are persisted before anything waits on the attempts
    let started = Instant::now();
    signal(&first, "-KILL");
    first.wait().unwrap();
    // every deadline passes while no runner watches
    std::thread::sleep(Duration::from_millis(3500).saturating_sub(started.elapsed()));
    assert!(
        !processes_with_env("BATON_AGENT_ID=silent").is_empty(),
        "the agents outlive their runner"
    );
    let resumed_at = Instant::now();
    let mut second = spawn_run(
        &repo,
        &["run", id, "--resume", "--json", "--grace", "300ms"],
    );
    let mut events = Events::of(&mut second);
    let mut kills = Vec::new();
    for _ in 0..3 {
        let k = events.until(is("agent_kill"));
        kills.push((
            k["agent"].as_str().unwrap().to_owned(),
            resumed_at.elapsed(),
        ));
    }
    events.rest();
    assert_eq!(second.wait().unwrap().code(), Some(1), "{:#?}", events.seen);
    // counted from the adoption, each kill would come 3 s after the resume
    for (a, after) in &kills {
        assert!(
            *after < Duration::from_millis(2500),
            "{a} was stopped {after:?} after the resume, not at once: {:#?}",
            events.seen
        );
    }
    let exec = execution(&repo, id);
    for (a, class) in [
        ("silent", ErrorClass::FirstOutputTimeout),
        ("idle", ErrorClass::IdleTimeout),
        ("busy", ErrorClass::Timeout),
    ] {
        let st = agent(&exec, a);
        assert_eq!(st.attempt, 1, "{a} was adopted, not started again");
        assert_eq!(
            st.result.as_ref().unwrap().error_class,
            Some(class),
            "{a}: {:#?}",
            events.seen
        );
    }
    let left = processes_with_env(&format!("BATON_PLAN_ID={id}"));
    assert!(
        left.is_empty(),
        "processes of the agents survived: {left:?}"
    );
}

/// The runner began stopping a timed-out attempt and died; the stop completed with no runner
/// watching. The resumed runner records it as the timeout it was — not as an interruption,
/// which would start the agent again.
#[test]
fn a_stop_begun_by_a_killed_runner_is_recorded_as_what_it_was() {
    let repo = TestRepo::new();
    let id = "OP-20260101-000000-00000f03";
    let tr = repo.scratch("t").join("trace");
    // the child ignores SIGTERM, so the stop takes the whole grace period
    let script = format!(
        "echo start $BATON_AGENT_ID $(date +%s%N) >> {}; sh -c 'trap \"\" TERM; sleep 20' & sleep 20",
        tr.display()
    );
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
            serde_json::to_string(&script).unwrap()
        ),
    );
    let mut first = spawn_run(&repo, &["run", &plan, "--json", "--grace", "1500ms"]);
    let mut events = Events::of(&mut first);
    events.until(is("agent_kill"));
    signal(&first, "-KILL");
    first.wait().unwrap();
    assert_eq!(
        agent(&execution(&repo, id), "hung").stopping,
        Some(ErrorClass::Timeout),
        "the stop's reason is on disk before the stop is sent"
    );
    // the supervisor finishes the stop alone. The runner may have died between persisting the
    // reason and sending the stop (the event comes in between); then the test sends it, as
    // the runner would have
    let gone = |within: Duration| {
        let deadline = Instant::now() + within;
        while !processes_with_env(&format!("BATON_PLAN_ID={id}")).is_empty() {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    };
    if !gone(Duration::from_secs(4)) {
        // a local attempt's handle rides the runner's next write, so the supervisor is found
        // as a resumed runner finds it: through the attempt's pid file
        let pidfile = repo
            .path()
            .join(format!(".baton/executions/{id}/logs/hung/1.pid.json"));
        let Some(baton_run::supervise::PidFile::Running { pid, .. }) =
            baton_run::supervise::claim_of(&std::fs::read(&pidfile).unwrap())
        else {
            panic!("no claim in {}", pidfile.display());
        };
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(gone(Duration::from_secs(10)), "the stop never completed");
    }
    let resumed = crate::support::baton(&repo, &["run", id, "--resume"]);
    resumed.expect_code(1);
    let exec = execution(&repo, id);
    let hung = agent(&exec, "hung");
    assert_eq!(hung.status, Status::Failed);
    assert_eq!(hung.attempt, 1, "not started again");
    assert_eq!(
        hung.result.as_ref().unwrap().error_class,
        Some(ErrorClass::Timeout)
    );
    assert_eq!(hung.stopping, None);
    assert_eq!(trace(&tr).len(), 1, "{:?}", trace(&tr));
}

/// A rate limit's pause is persisted with the breaker: a runner killed during it leaves a
/// resumed one that starts nothing before the pause ends.
#[test]
fn a_rate_limit_pause_survives_a_killed_runner() {
    let repo = TestRepo::new();
    let marks = repo.scratch("marks");
    let m = marks.display();
    let tr = repo.scratch("t").join("trace");
    let t = tr.display();
    // first attempt: the provider says no; any later attempt works
    let script = format!(
        "echo start $BATON_AGENT_ID $(date +%s%N) >> {t}; if [ -e {m}/$BATON_AGENT_ID ]; then exit 0; fi; touch {m}/$BATON_AGENT_ID; echo 'Error: Rate limit exceeded'; exit 1"
    );
    let id = "OP-20260101-000000-00000f04";
    let mut body = format!(
        "[defaults]\nisolation = \"none\"\nretries = 1\ncommand = [\"sh\", \"-c\", {}]\n[defaults.rate_limit]\npatterns = [\"rate limit exceeded\"]\n[[batches]]\nid = \"B1\"\n",
        serde_json::to_string(&script).unwrap()
    );
    for i in 1..=3 {
        body.push_str(&format!(
            "[[batches.agents]]\nid = \"r{i}\"\ntask_type = \"research\"\n"
        ));
    }
    let plan = write_plan(&repo, id, &body);
    // all three are rate-limited at once; the pause is the backoff cap (4 s)
    let args = [
        "--json",
        "--max-parallel",
        "3",
        "--backoff",
        "100ms",
        "--backoff-cap",
        "4s",
    ];
    let mut first = spawn_run(&repo, &[&["run", plan.as_str()][..], &args].concat());
    let mut events = Events::of(&mut first);
    events.until(is("breaker_open"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let until = loop {
        let exec = execution(&repo, id);
        if let Some(u) = exec.breaker.and_then(|b| b.open).and_then(|o| o.until) {
            break rfc3339_ms(&u);
        }
        assert!(Instant::now() < deadline, "the breaker was not persisted");
        std::thread::sleep(Duration::from_millis(10));
    };
    signal(&first, "-KILL");
    first.wait().unwrap();
    let status = crate::support::baton(&repo, &["status", id]).expect_code(0);
    assert!(
        status
            .stdout
            .contains("launching stopped: 2 agents failed with rate_limited, paused until"),
        "{}",
        status.stdout
    );
    let before = trace(&tr).len();
    assert_eq!(before, 3, "only the first attempts ran: {:?}", trace(&tr));
    let mut second = spawn_run(&repo, &[&["run", id, "--resume"][..], &args].concat());
    let mut events = Events::of(&mut second);
    let w = events.until(|e| e["event"] == "agent_waiting" && e["reason"] == "stopped");
    assert!(w["why"].as_str().unwrap().contains("breaker open"), "{w}");
    events.rest();
    assert_eq!(second.wait().unwrap().code(), Some(0), "{:#?}", events.seen);
    let later = &trace(&tr)[before..];
    assert_eq!(later.len(), 3, "one retry each: {later:?}");
    for (_, a, ns) in later {
        assert!(
            ns / 1_000_000 >= until,
            "{a} started {} ms before the persisted end of the pause",
            until - ns / 1_000_000
        );
    }
}

/// A batch that started before the crash keeps its base: an agent of it launched by the
/// resumed runner gets a worktree from the integration branch (with the earlier batches'
/// work), not from HEAD.
#[test]
fn an_agent_launched_after_a_resume_starts_from_its_batch_base() {
    let repo = TestRepo::new();
    repo.write(".config/baton.toml", "[verify]\nallow_no_tests = true\n");
    repo.commit_all("baton config: no tests in this repository");
    let id = "OP-20260101-000000-00000f05";
    let go = repo.scratch("t").join("go");
    let g = go.display();
    let q = |s: &str| serde_json::to_string(s).unwrap();
    let hold = format!(
        "i=0; while [ ! -e {g} ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; echo b1 > b1.txt"
    );
    let plan = write_plan(
        &repo,
        id,
        &format!(
            r#"[[batches]]
id = "B1"
[[batches.agents]]
id = "first"
task_type = "implement"
scope = {{ files_write = ["first.txt"] }}
command = ["sh", "-c", "echo first > first.txt"]
[[batches]]
id = "B2"
depends_on = ["B1"]
[[batches.agents]]
id = "b1"
task_type = "implement"
scope = {{ files_write = ["b1.txt"] }}
command = ["sh", "-c", {}]
[[batches.agents]]
id = "b2"
task_type = "implement"
scope = {{ files_write = ["b2.txt"] }}
command = ["sh", "-c", {}]
"#,
            q(&hold),
            q(
                "test -e first.txt || { echo 'first.txt is missing: not started from B1 work'; exit 1; }; echo b2 > b2.txt"
            )
        ),
    );
    let mut first = spawn_run(&repo, &["run", &plan, "--json", "--max-parallel", "1"]);
    let mut events = Events::of(&mut first);
    events.until(|e| e["event"] == "agent_start" && e["agent"] == "b1");
    signal(&first, "-KILL");
    first.wait().unwrap();
    let mut second = spawn_run(
        &repo,
        &["run", id, "--resume", "--json", "--max-parallel", "1"],
    );
    let mut events = Events::of(&mut second);
    events.until(is("agent_adopted"));
    std::fs::write(&go, "").unwrap();
    events.rest();
    let code = second.wait().unwrap().code();
    let exec = execution(&repo, id);
    let b2 = agent(&exec, "b2");
    let log = std::fs::read_to_string(
        repo.path()
            .join(format!(".baton/executions/{id}/logs/b2/{}.log", b2.attempt)),
    )
    .unwrap_or_default();
    assert_eq!(b2.status, Status::Succeeded, "{log}\n{:#?}", events.seen);
    assert_eq!(code, Some(0), "{:#?}", events.seen);
    // git as the oracle: b2's branch descends from the commit that brought first.txt
    let b2_branch = b2.branch.clone().unwrap();
    let first_branch = agent(&exec, "first").branch.clone().unwrap();
    repo.git(&["merge-base", "--is-ancestor", &first_branch, &b2_branch]);
}
