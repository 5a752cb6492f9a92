//! Classes 9 and 10 of issue 8 and "nothing panics": wrong codes and messages, state that a
//! symlink (or a file) would send outside the repository, and every duration and time flag
//! of every command driven with extreme values.

use std::path::Path;

use baton_tests::{TestRepo, write_file};

use crate::support::{Run, baton};
use crate::worktree_support::*;

const PLAN: &str = "OP-20260101-000000-0000abcd";

/// Nothing panics: a Rust panic exits 101 and prints "panicked".
#[track_caller]
fn no_panic(run: &Run, what: &str) {
    assert!(
        run.code != 101 && !run.stderr.contains("panicked"),
        "{what} panicked (exit {}):\n{}",
        run.code,
        run.stderr
    );
    assert!(matches!(run.code, 0..=3), "{what}: exit {}", run.code);
}

#[test]
fn wrong_input_gets_exit_2_and_a_message_that_says_what_to_do() {
    let repo = TestRepo::new();
    // an unknown plan is bad input, not "nothing to do"
    let run = baton(&repo, &["worktree", "cleanup", "--plan", "no-such-plan"]).expect_code(2);
    assert!(run.stderr.contains("no-such-plan"), "{}", run.stderr);
    // an agent named twice is named as such, and nothing is written
    let run = baton(
        &repo,
        &[
            "worktree", "create", "--plan", PLAN, "--agent", "a1", "--agent", "a1",
        ],
    )
    .expect_code(2);
    assert!(run.stderr.contains("given twice"), "{}", run.stderr);
    assert_eq!(repo.git(&["for-each-ref", "refs/heads/baton/"]), "");
    assert!(!root(&repo).exists());
    // a repository without commits
    let empty = TestRepo::empty();
    for args in [
        &["worktree", "create", "x"][..],
        &["worktree", "list"][..],
        &["worktree", "cleanup"][..],
    ] {
        let run = baton(&empty, args).expect_code(2);
        assert!(
            run.stderr.contains("no commits yet"),
            "{args:?}: {}",
            run.stderr
        );
    }
}

#[test]
fn a_state_dir_that_is_a_file_or_a_symlink_is_refused_and_nothing_is_written_through_it() {
    let repo = TestRepo::new();
    let record = ["metrics", "record", "--event", "run_start"];
    // a file where the state dir should be
    repo.write(".baton", "not a directory\n");
    let run = baton(&repo, &record).expect_code(3);
    assert!(run.stderr.contains("not a directory"), "{}", run.stderr);
    std::fs::remove_file(repo.path().join(".baton")).unwrap();

    // a committed symlink to somewhere else
    let elsewhere = repo.scratch("elsewhere");
    std::os::unix::fs::symlink(&elsewhere, repo.path().join(".baton")).unwrap();
    repo.commit_all("a .baton symlink, committed by anyone");
    for args in [
        &record[..],
        &["metrics", "summary"][..],
        &["plan", "list"][..],
    ] {
        let run = baton(&repo, args).expect_code(3);
        assert!(run.stderr.contains("symlink"), "{args:?}: {}", run.stderr);
    }
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    std::fs::remove_file(repo.path().join(".baton")).unwrap();

    // metrics.jsonl as a symlink inside a real state dir
    let outside = repo.scratch("outside").join("metrics.jsonl");
    std::fs::create_dir_all(repo.path().join(".baton")).unwrap();
    std::os::unix::fs::symlink(&outside, repo.path().join(".baton/metrics.jsonl")).unwrap();
    let run = baton(&repo, &record).expect_code(3);
    assert!(run.stderr.contains("symlink"), "{}", run.stderr);
    assert!(!outside.exists(), "nothing is written through the link");
}

/// Values no duration or time flag may panic on.
const DURATIONS: &[&str] = &[
    "0s",
    "1ns",
    "21000d",
    "584542y",
    "584543y",
    "18446744073709551615s",
    "99999999999999999999999d",
    "-1s",
    "",
    "1e9d",
    "9999999999999999999999999999999999999ns",
];

const TIMES: &[&str] = &[
    "1970-01-01",
    "1970-01-01T00:00:00Z",
    "0000-01-01",
    "9999-12-31",
    "9999-12-31T23:59:59Z",
    "2026-02-30",
    "1969-12-31T23:59:59Z",
];

#[test]
fn every_duration_and_time_flag_takes_extreme_values_without_panicking() {
    let repo = TestRepo::new();
    create(&repo, "w");
    baton(
        &repo,
        &[
            "metrics",
            "record",
            "--event",
            "run_start",
            "--duration-ms",
            "1",
        ],
    )
    .expect_code(0);
    for v in DURATIONS {
        for flag in ["--older-than", "--min-age"] {
            let run = baton(&repo, &["worktree", "cleanup", "--dry-run", flag, v]);
            no_panic(&run, &format!("worktree cleanup {flag} {v:?}"));
        }
    }
    for v in DURATIONS.iter().chain(TIMES) {
        for sub in ["summary", "failures"] {
            let run = baton(&repo, &["metrics", sub, "--since", v]);
            no_panic(&run, &format!("metrics {sub} --since {v:?}"));
        }
    }
    for v in [
        "0",
        "18446744073709551615",
        "18446744073709551616",
        "-1",
        "1e30",
    ] {
        let run = baton(
            &repo,
            &[
                "metrics",
                "record",
                "--event",
                "agent_complete",
                "--duration-ms",
                v,
            ],
        );
        no_panic(&run, &format!("metrics record --duration-ms {v}"));
    }
    // and the summaries over what was recorded, extreme durations included
    for sub in ["summary", "failures"] {
        no_panic(&baton(&repo, &["metrics", sub]), sub);
    }
    // durations and times from files: the config's min_age, a hand-edited creation time
    for v in DURATIONS {
        write_file(
            repo.path(),
            ".config/baton.toml",
            &format!("[worktree]\nmin_age = {v:?}\n"),
        );
        no_panic(
            &baton(&repo, &["worktree", "cleanup", "--dry-run"]),
            &format!("[worktree] min_age = {v:?}"),
        );
    }
    std::fs::remove_file(repo.path().join(".config/baton.toml")).unwrap();
    let meta = repo.path().join(".git/worktrees/w/baton.json");
    for t in ["0", "18446744073709551615", "9999999999"] {
        edit_created_at(&meta, t);
        no_panic(
            &baton(&repo, &["worktree", "list"]),
            &format!("created_at {t}"),
        );
        no_panic(
            &baton(&repo, &["worktree", "cleanup", "--dry-run"]),
            &format!("cleanup, created_at {t}"),
        );
    }
}

fn edit_created_at(meta: &Path, value: &str) {
    let text = std::fs::read_to_string(meta).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["created_at"] = serde_json::from_str(value).unwrap();
    std::fs::write(meta, serde_json::to_string(&json).unwrap()).unwrap();
}

/// Class 10's neighbours: a link anywhere *below* a real state dir — committed by anyone, as
/// `.baton` itself could be — is never followed: not the directory of an attempt's log, not
/// the log file, not a directory baton makes deeper in. The agent is refused with the reason
/// and nothing lands outside.
#[test]
fn a_link_below_the_state_dir_is_never_followed_by_a_run() {
    let repo = TestRepo::new();
    let id = "OP-20260101-000000-0000d1e5";
    let plan = crate::run::write_plan(
        &repo,
        id,
        "[defaults]\nisolation = \"none\"\ncommand = [\"sh\", \"-c\", \"echo agent-output\"]\n\
         [[batches]]\nid = \"B1\"\n[[batches.agents]]\nid = \"a1\"\ntask_type = \"implement\"\n",
    );
    let outside = repo.scratch("outside");
    let victim = outside.join("victim");
    std::fs::write(&victim, "the user's file\n").unwrap();
    let logs = repo.path().join(format!(".baton/executions/{id}/logs"));

    // (1) the plan's logs directory is a link to elsewhere
    std::fs::create_dir_all(logs.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&outside, &logs).unwrap();
    repo.commit_all("a logs link, committed by anyone");
    let run = baton(&repo, &["run", &plan]);
    assert_ne!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(said.contains("symlink"), "says why: {said}");
    let exec = crate::run::execution(&repo, id);
    let a1 = crate::run::agent(&exec, "a1");
    assert_eq!(
        a1.result.as_ref().and_then(|r| r.error_class),
        Some(baton_plan::ErrorClass::SpawnFailed),
        "{said}"
    );
    let listed: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(listed, ["victim"], "nothing made through the link");
    std::fs::remove_dir_all(repo.path().join(".baton")).unwrap();

    // (2) a real logs directory whose log file is a link to the user's file
    std::fs::create_dir_all(logs.join("a1")).unwrap();
    std::os::unix::fs::symlink(&victim, logs.join("a1/1.log")).unwrap();
    let run = baton(&repo, &["run", &plan]);
    assert_ne!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(said.contains("1.log is a symlink"), "says why: {said}");
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "the user's file\n",
        "the agent's output never goes through the link"
    );
    std::fs::remove_dir_all(repo.path().join(".baton")).unwrap();

    // (3) the plan's execution directory itself is a link
    std::fs::create_dir_all(repo.path().join(".baton/executions")).unwrap();
    std::os::unix::fs::symlink(&outside, logs.parent().unwrap()).unwrap();
    let run = baton(&repo, &["run", &plan]);
    assert_ne!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let listed: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(listed, ["victim"], "nothing made through the link");
}
