//! `baton demo` end to end: the whole flow on its throwaway repository, every step checked.

use baton_tests::TestRepo;

use crate::support::baton_in;

#[test]
fn demo_runs_the_whole_flow_and_keeps_its_repo_only_when_asked() {
    let repo = TestRepo::new();
    let dir = repo.scratch("demo-out").join("kept");
    let run = baton_in(
        &repo,
        repo.path(),
        &["--json", "demo", "--dir", dir.to_str().unwrap()],
    )
    .expect_code(0);
    let out = run.json();
    assert_eq!(out["ok"], true);
    assert_eq!(out["kept"], true);
    let steps = out["steps"].as_array().unwrap();
    let exit_of = |prefix: &[&str]| -> Vec<i64> {
        steps
            .iter()
            .filter(|s| {
                let cmd: Vec<&str> = s["command"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap())
                    .collect();
                cmd.starts_with(prefix)
            })
            .map(|s| s["exit_code"].as_i64().unwrap())
            .collect()
    };
    // the good plan passes, the two bad ones are rejected with exit 2
    assert_eq!(exit_of(&["baton", "plan", "validate"]), [0, 2, 2]);
    // baton run: the first run (collision caught, replanned, merged tests pass) and the re-run
    // (from the cache, landed on main) both succeed
    assert_eq!(exit_of(&["baton", "run"]), [0, 0]);
    // the tests fail in the checkout before landing and pass after
    assert_eq!(exit_of(&["baton", "verify"]), [1, 0]);
    assert_eq!(exit_of(&["baton", "worktree", "cleanup"]), [0]);
    // main was fast-forwarded to the re-run's integration branch, built from the cache
    let log = repo.git_in(&dir, &["log", "--format=%B", "main"]);
    assert!(log.contains("from the output cache"), "{log}");
    assert!(log.contains("greeter"), "{log}");
    // cleanup removed the merged agents' branches; the unmerged experiment and the two
    // integration branches stay
    let branches = repo.git_in(&dir, &["branch", "--format=%(refname:short)"]);
    let branches: Vec<&str> = branches.lines().collect();
    assert_eq!(branches.len(), 4, "{branches:?}");
    assert!(branches.contains(&"experiment") && branches.contains(&"main"));
    assert_eq!(
        branches
            .iter()
            .filter(|b| b.ends_with("/integration"))
            .count(),
        2,
        "{branches:?}"
    );
    // the picture of the run was written
    let reports = std::fs::read_dir(dir.join(".baton/executions"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("report.html").is_file())
        .count();
    assert_eq!(reports, 1);
    // nothing of the demo leaked into the repository it was started from
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}
