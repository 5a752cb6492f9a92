//! The conflicts check's agent sources and the findings beside multi-writer files: agents
//! from `--branches`, `--results` and `--plan` (with write scopes), writes into the main
//! checkout, conflict markers an agent committed, and no agents at all.

use baton_tests::{TestRepo, write_file};
use serde_json::Value;

use super::conflicts::{Batch, TEN};
use super::{add_worktree, check_of, verify_json};
use crate::support::baton;

#[test]
fn branches_glob_selects_agents_without_worktrees() {
    let repo = TestRepo::new();
    repo.write("f.txt", TEN);
    repo.commit_all("base");
    for (branch, line) in [("team/x", "X"), ("team/y", "Y"), ("solo", "S")] {
        repo.git(&["checkout", "-q", "-b", branch, "main"]);
        repo.write("f.txt", &TEN.replace("l3", line));
        repo.commit_all(branch);
    }
    repo.git(&["checkout", "-q", "main"]);
    let (run, report) = verify_json(&repo, &["--check", "conflicts", "--branches", "team/*"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let f = &check_of(&report, "conflicts")["findings"][0];
    assert_eq!(f["agents"], serde_json::json!(["team/x", "team/y"]));
    assert_eq!(f["overlap"], "conflict");
    // bad globs and globs matching nothing are bad input, one line
    for (glob, needle) in [
        ("team/[", "not a valid glob"),
        ("nobody/*", "no local branch matches"),
    ] {
        let run = baton(
            &repo,
            &["verify", "--check", "conflicts", "--branches", glob],
        );
        assert_eq!(run.code, 2, "{glob}: {}", run.stderr);
        assert!(run.stderr.contains(needle), "{}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1);
    }
}

#[test]
fn results_file_agents_share_one_tree() {
    let repo = TestRepo::new();
    let results = repo.scratch("in").join("results.json");
    std::fs::write(
        &results,
        r#"{"a": ["src/x.rs", "README.md"], "b": ["./src/x.rs"], "c": ["docs.md"]}"#,
    )
    .unwrap();
    let (run, report) = verify_json(
        &repo,
        &[
            "--check",
            "conflicts",
            "--results",
            results.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let found = check_of(&report, "conflicts")["findings"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["path"], "src/x.rs");
    assert_eq!(found[0]["agents"], serde_json::json!(["a", "b"]));
    for bad in [r#"["a"]"#, r#"{"a": ["../etc/passwd"]}"#, "{not json"] {
        std::fs::write(&results, bad).unwrap();
        let run = baton(
            &repo,
            &[
                "verify",
                "--check",
                "conflicts",
                "--results",
                results.to_str().unwrap(),
            ],
        );
        assert_eq!(run.code, 2, "{bad}: {}", run.stderr);
        assert!(run.stderr.contains("results.json"), "{}", run.stderr);
    }
}

#[test]
fn writes_into_the_main_checkout_are_reported() {
    let b = Batch::new(&["a", "b"]);
    b.edit_line("a", 2, "A");
    b.repo.write("f.txt", &TEN.replace("l5", "main"));
    b.repo.write("loose.txt", "x\n");
    let (run, report) = verify_json(&b.repo, &["--check", "conflicts"]);
    assert_eq!(run.code, 1);
    let found: Vec<(String, String)> = check_of(&report, "conflicts")["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_owned(),
                f["severity"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("main_checkout_write".to_owned(), "error".to_owned()),
            ("main_checkout_write".to_owned(), "warning".to_owned())
        ]
    );
}

#[test]
fn plan_agents_are_checked_against_their_write_scope() {
    let repo = TestRepo::new();
    repo.write("src/a/lib.rs", "a\n");
    repo.write("src/b/lib.rs", "b\n");
    repo.commit_all("base");
    let plan = repo.scratch("plans").join("plan.toml");
    std::fs::write(
        &plan,
        r#"schema_version = 1
title = "scoped"
[goal]
summary = "s"
[defaults]
command = ["true"]
[[batches]]
id = "B1"
name = "one"
kind = "parallel"
[[batches.agents]]
id = "alpha"
task_type = "implement"
prompt = "p"
scope = { files_write = ["src/a/**"] }
[[batches.agents]]
id = "beta"
task_type = "implement"
prompt = "p"
scope = { files_write = ["src/b/**"] }
"#,
    )
    .unwrap();
    let stored = baton(
        &repo,
        &["plan", "new", "--from", plan.to_str().unwrap(), "--json"],
    )
    .expect_code(0);
    let id = stored.json()["id"].as_str().unwrap().to_owned();
    let alpha = add_worktree(&repo, "alpha", &format!("baton/{id}/alpha"));
    write_file(&alpha, "src/a/lib.rs", "alpha\n");
    write_file(&alpha, "src/b/lib.rs", "alpha was here\n");
    repo.commit_all_in(&alpha, "alpha");
    let (run, report) = verify_json(&repo, &["--check", "conflicts", "--plan", &id]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let check = check_of(&report, "conflicts");
    let found = check["findings"].as_array().unwrap();
    let violations: Vec<&Value> = found
        .iter()
        .filter(|f| f["code"] == "scope_violation")
        .collect();
    assert_eq!(violations.len(), 1, "{found:#?}");
    assert_eq!(violations[0]["path"], "src/b/lib.rs");
    assert_eq!(violations[0]["agents"], serde_json::json!(["alpha"]));
    // beta has no branch yet: listed as not started, not an error
    assert!(
        found
            .iter()
            .any(|f| f["code"] == "agent_not_started" && f["severity"] == "info")
    );
    let run = baton(
        &repo,
        &[
            "verify",
            "--check",
            "conflicts",
            "--plan",
            "OP-20990101-000000-deadbeef",
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[test]
fn no_worktrees_means_the_check_is_skipped() {
    let repo = TestRepo::new();
    let (run, report) = verify_json(&repo, &["--check", "conflicts"]);
    assert_eq!(run.code, 0);
    assert_eq!(check_of(&report, "conflicts")["status"], "skip");
}

#[test]
fn markers_committed_by_an_agent_are_errors() {
    let b = Batch::new(&["a"]);
    write_file(
        b.dir("a"),
        "f.txt",
        "l1\n<<<<<<< HEAD\nx\n=======\ny\n>>>>>>> other\n",
    );
    b.commit("a");
    let (code, report, _) = b.verify();
    assert_eq!(code, 1);
    let f = &check_of(&report, "conflicts")["findings"][0];
    assert_eq!(f["code"], "conflict_markers");
    assert_eq!(
        (f["path"].as_str(), f["line"].as_u64()),
        (Some("f.txt"), Some(2))
    );
    assert_eq!(f["agents"], serde_json::json!(["a"]));
}
