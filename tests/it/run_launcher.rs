//! The launcher (`baton __launch`) that forks supervisors: a supervisor it forked stays
//! unreaped until the next request, so the runner can always open its pidfd, and the attempt
//! it runs ends as if `baton __supervise` had run it.

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
