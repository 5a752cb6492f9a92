//! The launcher (`baton __launch`) that forks supervisors: a supervisor it forked stays
//! unreaped until the next request, so the runner can always open its pidfd, and the attempt
//! it runs ends as if `baton __supervise` had run it; a launcher killed during a run costs the
//! attempt it was asked for nothing but a new start.

use std::time::{Duration, Instant};

use baton_run::launcher::Launcher;
use baton_run::supervise::SuperviseArgs;

use crate::support::BATON;

fn args(dir: &std::path::Path, n: u32, argv: &[&str]) -> SuperviseArgs {
    let log = dir.join(format!("{n}.log"));
    SuperviseArgs {
        status: baton_run::local::status_path(&log),
        pidfile: baton_run::local::pid_path(&log),
        log,
        grace: Duration::from_millis(500),
        state_root: Some(dir.to_owned()),
        argv: argv.iter().map(Into::into).collect(),
    }
}

/// The state letter of `/proc/<pid>/stat`, if the process (or its zombie) exists.
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

#[test]
fn a_forked_supervisor_is_reaped_only_after_the_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut launcher = Launcher::start(BATON.as_ref(), &["__launch".into()]).unwrap();
    let env = [("BATON_AGENT_ID", "first")];
    let first = launcher
        .spawn(
            dir.path(),
            env.into_iter(),
            &args(dir.path(), 1, &["sh", "-c", "echo $BATON_AGENT_ID; exit 4"]),
        )
        .unwrap();
    // it runs its agent and exits; the launcher leaves it a zombie, so the pid stays its own
    let log = dir.path().join("1.log");
    let deadline = Instant::now() + Duration::from_secs(20);
    while state(first) != Some('Z') {
        assert!(
            Instant::now() < deadline,
            "supervisor {first}: {:?}",
            state(first)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        baton_run::local::read_outcome(&log),
        Some(baton_run::Outcome::Exited(4))
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "first\n",
        "its environment and log"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(state(first), Some('Z'), "reaped before the next request");

    // the next request reaps it
    let second = launcher
        .spawn(
            dir.path(),
            std::iter::empty(),
            &args(dir.path(), 2, &["true"]),
        )
        .unwrap();
    assert_ne!(second, first);
    assert_eq!(state(first), None, "reaped once the next request came");
    drop(launcher);
}

#[test]
fn a_bad_request_is_refused_and_the_launcher_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut launcher = Launcher::start(BATON.as_ref(), &["__launch".into()]).unwrap();
    let missing = dir.path().join("missing");
    let err = launcher
        .spawn(
            &missing,
            std::iter::empty(),
            &args(dir.path(), 1, &["true"]),
        )
        .unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
    assert!(!baton_run::local::pid_path(&dir.path().join("1.log")).exists());
    launcher
        .spawn(
            dir.path(),
            std::iter::empty(),
            &args(dir.path(), 2, &["true"]),
        )
        .unwrap();
}

/// The ppid of `pid`, from `/proc/<pid>/stat`.
fn ppid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The launcher of the runner `runner`, once it runs.
fn launcher_of(runner: u32) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        (ppid(pid) == Some(runner) && cmdline.windows(8).any(|w| w == b"__launch")).then_some(pid)
    })
}

/// A launcher that dies during a run (killed here while the first of two sequential agents
/// sleeps) costs the next attempt nothing: the runner claims the attempt it could not hand
/// over as never started, records it as interrupted — not `spawn_failed`, which counts
/// against `retries = 0` and the breaker — and starts a new attempt at once without the
/// launcher. The run succeeds and each agent's command ran exactly once.
#[test]
fn a_launcher_killed_mid_run_costs_the_next_attempt_nothing() {
    use crate::run::{agent, execution, write_plan};
    let repo = baton_tests::TestRepo::new();
    let id = "OP-20260101-000000-00000e01";
    let trace = repo.scratch("trace").join("ran");
    let body = format!(
        "[defaults]\nisolation = \"none\"\nretries = 0\n\
         command = [\"sh\", \"-c\", \"echo $BATON_AGENT_ID >> {}; sleep 1\"]\n\
         [[batches]]\nid = \"B1\"\nkind = \"sequential\"\n\
         [[batches.agents]]\nid = \"a1\"\ntask_type = \"implement\"\n\
         [[batches.agents]]\nid = \"a2\"\ntask_type = \"implement\"\n",
        trace.display()
    );
    let plan = write_plan(&repo, id, &body);
    let child = repo
        .command(BATON, repo.path())
        .args(["run", &plan])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn baton run");
    let deadline = Instant::now() + Duration::from_secs(20);
    let launcher = loop {
        if let Some(l) = launcher_of(child.id()) {
            break l;
        }
        assert!(Instant::now() < deadline, "no launcher appeared");
        std::thread::sleep(Duration::from_millis(10));
    };
    // a1 has started (through the launcher) and sleeps; a2 comes next
    let a1_started = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&trace).is_ok_and(|t| t.contains("a1")) {
        assert!(Instant::now() < a1_started, "a1 never ran");
        std::thread::sleep(Duration::from_millis(10));
    }
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &launcher.to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let out = child.wait_with_output().expect("wait for baton run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&trace).unwrap(),
        "a1\na2\n",
        "each command ran once"
    );
    let exec = execution(&repo, id);
    let a2 = agent(&exec, "a2");
    assert_eq!(a2.status, baton_plan::Status::Succeeded);
    assert_eq!(
        a2.attempt, 2,
        "the attempt the launcher took down, then a new one"
    );
    let metrics = std::fs::read_to_string(repo.path().join(".baton/metrics.jsonl")).unwrap();
    let ends: Vec<serde_json::Value> = metrics
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|e: &serde_json::Value| e["event"] == "agent_complete" && e["agent"] == "a2")
        .collect();
    assert_eq!(ends.len(), 2, "{ends:?}");
    assert_eq!(ends[0]["error_class"], "interrupted", "{ends:?}");
    assert_eq!(ends[1]["success"], true, "{ends:?}");
}
