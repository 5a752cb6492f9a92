//! The durable store under pressure: concurrent writers (processes), SIGKILL in the middle of
//! saves, and damaged files that must be reported, never reset.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use baton_plan::Execution;
use baton_tests::{TestRepo, write_file};

use crate::support::baton;

const STRESS: &str = env!("CARGO_BIN_EXE_baton-stress");

const PLAN: &str = r#"schema_version = 1
title = "stress"
[defaults]
command = ["true"]
[[batches]]
id = "B1"
[[batches.agents]]
id = "a"
task_type = "test"
"#;

/// Store a plan through the CLI; returns (plan id, stored plan path, execution path).
fn stored_plan(repo: &TestRepo) -> (String, PathBuf, PathBuf) {
    write_file(repo.path(), "p.toml", PLAN);
    let id = baton(repo, &["plan", "new", "--from", "p.toml"])
        .expect_code(0)
        .stdout
        .trim()
        .to_owned();
    let state = repo.path().join(".baton");
    let plan = state.join(format!("plans/{id}.json"));
    let exec = state.join(format!("executions/{id}.json"));
    (id, plan, exec)
}

fn read_exec(path: &Path) -> Execution {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("torn or bad file ({e}):\n{text}"))
}

#[test]
fn eight_processes_saving_200_times_lose_nothing() {
    let repo = TestRepo::new();
    let (_, plan, exec) = stored_plan(&repo);
    let children: Vec<_> = (0..8)
        .map(|w| {
            Command::new(STRESS)
                .args(["save", plan.to_str().unwrap(), exec.to_str().unwrap()])
                .arg(format!("w{w}"))
                .arg("200")
                .stderr(Stdio::piped())
                .spawn()
                .expect("start baton-stress")
        })
        .collect();
    // read while they write: every version a reader sees parses
    let mut reads = 0;
    let mut last_revision = 0;
    loop {
        if exec.exists() {
            let e = read_exec(&exec);
            assert!(e.revision >= last_revision, "revisions never go back");
            last_revision = e.revision;
            reads += 1;
        }
        if last_revision >= 1600 {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
        if reads > 200_000 {
            break;
        }
    }
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let e = read_exec(&exec);
    assert_eq!(
        e.replans.len(),
        1600,
        "every update made under the lock is kept"
    );
    assert_eq!(e.revision, 1600, "one revision per save");
    for w in 0..8 {
        let mine: Vec<u32> = e
            .replans
            .iter()
            .filter_map(|r| r.reason.strip_prefix(&format!("w{w}:")))
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(
            mine,
            (0..200).collect::<Vec<_>>(),
            "writer w{w}'s saves in order"
        );
    }
    assert!(reads > 0);
    // no temp files are left behind by writers that finished
    let leftovers: Vec<_> = std::fs::read_dir(exec.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn sigkill_in_the_middle_of_saves_leaves_the_last_complete_version() {
    let repo = TestRepo::new();
    let (_, plan, exec) = stored_plan(&repo);
    let mut seen_revisions = Vec::new();
    // fixed delays: deterministic enough, and they land at different points of a save
    for delay_ms in [40u64, 75, 110, 23, 160] {
        let mut child = Command::new(STRESS)
            .args(["churn", plan.to_str().unwrap(), exec.to_str().unwrap()])
            .stderr(Stdio::null())
            .spawn()
            .expect("start baton-stress");
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().expect("SIGKILL"); // Child::kill is SIGKILL on Unix
        child.wait().unwrap();
        let e = read_exec(&exec);
        // each save is complete: revision k+1 wrote replan k
        assert_eq!(e.revision as usize, e.replans.len());
        for (k, r) in e.replans.iter().enumerate() {
            assert!(
                r.reason.starts_with(&format!("{}:", k + 1)),
                "replan {k}: {}",
                &r.reason[..12]
            );
            assert_eq!(
                r.reason.len(),
                format!("{}:", k + 1).len() + 4096,
                "replan {k} is whole"
            );
        }
        seen_revisions.push(e.revision);
    }
    assert!(
        seen_revisions.windows(2).all(|w| w[0] <= w[1]),
        "every kill keeps what was saved before: {seen_revisions:?}"
    );
    assert!(
        *seen_revisions.last().unwrap() > 0,
        "the churn made progress"
    );
}

#[test]
fn a_damaged_execution_file_is_reported_not_overwritten() {
    let repo = TestRepo::new();
    let (id, plan, exec) = stored_plan(&repo);
    // make a real execution, then damage it two ways
    let out = Command::new(STRESS)
        .args([
            "save",
            plan.to_str().unwrap(),
            exec.to_str().unwrap(),
            "w",
            "3",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let good = std::fs::read_to_string(&exec).unwrap();
    for damaged in [good[..good.len() / 2].to_owned(), "garbage\n".to_owned()] {
        std::fs::write(&exec, &damaged).unwrap();
        let run = baton(&repo, &["status", &id]).expect_code(2);
        let line = run.stderr.lines().next().unwrap_or_default();
        assert!(
            line.contains(&format!("{}:", exec.display())),
            "names the file: {line}"
        );
        assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
        assert_eq!(
            std::fs::read_to_string(&exec).unwrap(),
            damaged,
            "left as it was"
        );
        // the tracker refuses to continue from it as well
        let out = Command::new(STRESS)
            .args([
                "save",
                plan.to_str().unwrap(),
                exec.to_str().unwrap(),
                "w",
                "1",
            ])
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert_eq!(
            std::fs::read_to_string(&exec).unwrap(),
            damaged,
            "still as it was"
        );
    }
}
