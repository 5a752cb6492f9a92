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
    // the gate: fails on the conflict, passes after the retry; tests fail in the main
    // checkout and pass on the merged result
    assert_eq!(exit_of(&["baton", "verify"]), [1, 0, 1, 0]);
    assert_eq!(exit_of(&["baton", "worktree", "cleanup"]), [0]);
    // the kept repository holds the merged work and the unmerged experiment's branch
    let log = repo.git_in(&dir, &["log", "--format=%s", "main"]);
    assert!(log.contains("Merge greeter (batch B2)"), "{log}");
    let branches = repo.git_in(&dir, &["branch", "--format=%(refname:short)"]);
    assert_eq!(branches.lines().collect::<Vec<_>>(), ["experiment", "main"]);
    // nothing of the demo leaked into the repository it was started from
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}
