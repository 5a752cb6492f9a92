//! The tests check: configured commands, cargo-nextest with the smoke filterset (validated
//! before anything runs), shards, and `--merged` in a scratch copy of the merged batch.

use std::path::PathBuf;

use baton_tests::{TestRepo, write_file};

use super::{add_worktree, check_of, verify_json};
use crate::support::Run;

/// Run baton with the toolchain reachable: the isolated HOME hides `~/.cargo` and `~/.rustup`.
pub(super) fn baton_with_cargo(repo: &TestRepo, args: &[&str]) -> Run {
    let home = PathBuf::from(std::env::var_os("HOME").expect("HOME is set"));
    let cargo_home = std::env::var_os("CARGO_HOME").map_or(home.join(".cargo"), PathBuf::from);
    let rustup_home = std::env::var_os("RUSTUP_HOME").map_or(home.join(".rustup"), PathBuf::from);
    let out = repo
        .command(crate::support::BATON, repo.path())
        .args(args)
        .env("CARGO_HOME", cargo_home)
        .env("RUSTUP_HOME", rustup_home)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub(super) fn nextest_installed() -> bool {
    std::process::Command::new(std::env::var_os("CARGO").unwrap_or("cargo".into()))
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A one-crate workspace with a passing and a failing unit test and a passing integration
/// test.
pub(super) fn tiny_crate(repo: &TestRepo, smoke: Option<&str>) {
    repo.write(
        "Cargo.toml",
        "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    );
    repo.write(
        "src/lib.rs",
        "pub fn two() -> u32 { 2 }\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn ok_unit() { assert_eq!(super::two(), 2); }\n    #[test]\n    fn bad_unit() { assert_eq!(super::two(), 3, \"two is not three\"); }\n}\n",
    );
    repo.write(
        "tests/int.rs",
        "#[test]\nfn ok_integration() { assert_eq!(tiny::two(), 2); }\n",
    );
    repo.write(".gitignore", "/target\n");
    if let Some(expr) = smoke {
        repo.write(
            ".config/baton.toml",
            &format!("[verify]\nsmoke = {expr:?}\n"),
        );
    }
    repo.commit_all("tiny crate");
}

pub(super) fn tests_summary(run: &Run) -> serde_json::Value {
    let report = run.json();
    check_of(&report, "tests")["tests"].clone()
}

#[test]
fn configured_commands_decide_by_exit_status() {
    let repo = TestRepo::new();
    repo.write(
        ".config/baton.toml",
        "[verify]\nquick = [\"printf\", \"x%sy\", \"marker-from-child\"]\nfull = [\"sh\", \"-c\", \"exit 3\"]\n",
    );
    repo.commit_all("config");
    let (run, report) = verify_json(&repo, &["--check", "tests"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let t = &check_of(&report, "tests")["tests"];
    // a command without [verify] junit is one check, not a count of tests
    assert_eq!(
        (
            t["passed"].as_u64(),
            t["counted"].as_bool(),
            t["exit_code"].as_i64()
        ),
        (Some(0), Some(false), Some(0))
    );
    // the command's output never reaches stdout in --json mode: it goes to stderr, and its
    // tail into the report
    assert!(!run.stdout.lines().any(|l| l == "xmarker-from-childy"));
    assert!(run.stderr.contains("xmarker-from-childy"), "{}", run.stderr);
    assert_eq!(t["output_tail"], "xmarker-from-childy\n");
    let (run, report) = verify_json(&repo, &["--check", "tests", "--full"]);
    assert_eq!(run.code, 1);
    let t = &check_of(&report, "tests")["tests"];
    assert_eq!(t["exit_code"], 3);
    assert_eq!(t["failures"][0]["name"], "sh -c exit 3");
    assert!(
        t["failures"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("exited with code 3"),
        "{t:#}"
    );
    assert_eq!(report["mode"], "full");
    // one failed command is one error in the totals
    assert_eq!(report["totals"]["errors"], 1);
}

#[test]
fn no_test_command_fails_unless_configured_acceptable() {
    let repo = TestRepo::new();
    let (run, report) = verify_json(&repo, &["--check", "tests", "--strict"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let c = check_of(&report, "tests");
    assert_eq!(c["status"], "fail");
    assert_eq!(c["findings"][0]["code"], "no_tests");
    let message = c["findings"][0]["message"].as_str().unwrap();
    assert!(message.contains("allow_no_tests"), "{message}");
    assert_eq!(report["totals"]["errors"], 1);
    // only [verify] quick configured: --full says exactly that
    repo.write(".config/baton.toml", "[verify]\nquick = [\"true\"]\n");
    let (run, report) = verify_json(&repo, &["--check", "tests", "--full"]);
    assert_eq!(run.code, 1);
    let message = check_of(&report, "tests")["findings"][0]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("[verify] full is not set") && message.contains("only quick is"),
        "{message}"
    );
    // the switch makes it a skip that says why
    repo.write(
        ".config/baton.toml",
        "[verify]\nquick = [\"true\"]\nallow_no_tests = true\n",
    );
    let (run, report) = verify_json(&repo, &["--check", "tests", "--full"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let c = check_of(&report, "tests");
    assert_eq!(c["status"], "skip");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("allow_no_tests = true"),
        "{c:#}"
    );
}

#[test]
fn rust_workspace_runs_the_smoke_selection_then_everything() {
    let repo = TestRepo::new();
    tiny_crate(&repo, None);
    let quick = baton_with_cargo(&repo, &["verify", "--check", "tests", "--json"]);
    assert_eq!(quick.code, 1, "{}", quick.stderr);
    let t = tests_summary(&quick);
    let names: Vec<&str> = t["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    if nextest_installed() {
        assert_eq!(t["runner"], "nextest");
        assert_eq!(t["filter"], "kind(lib) | kind(bin) | kind(proc-macro)");
        // unit tests only: the integration test is not in the smoke selection
        assert_eq!(
            (t["passed"].as_u64(), t["failed"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(names, ["tests::bad_unit"]);
        let full = baton_with_cargo(&repo, &["verify", "--check", "tests", "--full", "--json"]);
        let t = tests_summary(&full);
        assert_eq!(
            (t["passed"].as_u64(), t["failed"].as_u64()),
            (Some(2), Some(1))
        );
    } else {
        assert_eq!(t["runner"], "cargo-test");
        assert_eq!(names, ["tests::bad_unit"]);
    }
}

#[test]
fn invalid_filterset_is_exit_2_before_anything_builds() {
    if !nextest_installed() {
        return; // validation is nextest's; without nextest there is no filterset to check
    }
    let repo = TestRepo::new();
    tiny_crate(&repo, Some("kind(lib) | test(foo"));
    let run = baton_with_cargo(&repo, &["verify", "--check", "tests"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("expected close parenthesis"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        !repo.path().join("target/debug").exists(),
        "nothing may build"
    );
    // an unknown package is nextest's error too
    repo.write(
        ".config/baton.toml",
        "[verify]\nsmoke = \"package(nope)\"\n",
    );
    let run = baton_with_cargo(&repo, &["verify", "--check", "tests"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("didn't match any packages"),
        "{}",
        run.stderr
    );
}

#[test]
fn partitions_pass_through_and_shard_reports_merge() {
    if !nextest_installed() {
        return;
    }
    let repo = TestRepo::new();
    tiny_crate(&repo, None);
    let dir = repo.scratch("shards");
    let mut paths = Vec::new();
    for m in 1..=2 {
        let path = dir.join(format!("{m}.json"));
        let run = baton_with_cargo(
            &repo,
            &[
                "verify",
                "--check",
                "tests",
                "--full",
                "--partition",
                &format!("hash:{m}/2"),
                "--report",
                path.to_str().unwrap(),
                "--json",
            ],
        );
        assert!(run.code <= 1, "{}", run.stderr);
        assert_eq!(tests_summary(&run)["partition"], format!("hash:{m}/2"));
        paths.push(path);
    }
    let merged = baton_with_cargo(
        &repo,
        &[
            "report",
            "merge",
            paths[0].to_str().unwrap(),
            paths[1].to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(merged.code, 1, "{}", merged.stderr);
    let t = tests_summary(&merged);
    assert_eq!(
        (t["passed"].as_u64(), t["failed"].as_u64()),
        (Some(2), Some(1))
    );
}

#[test]
fn merged_runs_the_tests_on_the_batch_merged_in_memory() {
    let repo = TestRepo::new();
    // the test passes only when both agents' files are present
    repo.write(
        ".config/baton.toml",
        "[verify]\nquick = [\"sh\", \"-c\", \"test -f a.txt && test -f b.txt && ! test -e .git\"]\n",
    );
    repo.commit_all("config");
    let a = add_worktree(&repo, "a", "a");
    let b = add_worktree(&repo, "b", "b");
    write_file(&a, "a.txt", "from a\n");
    repo.commit_all_in(&a, "a");
    write_file(&b, "b.txt", "from b, not committed\n");
    let before = super::snapshot(&repo.path().join(".git"));
    let (run, report) = verify_json(&repo, &["--check", "tests", "--merged"]);
    assert_eq!(run.code, 0, "{}\n{report:#}", run.stderr);
    assert_eq!(report["merged"], true);
    assert_eq!(super::snapshot(&repo.path().join(".git")), before);
    assert!(
        !repo.path().join("a.txt").exists(),
        "the user's checkout is untouched"
    );
    // the report names the tree it tested: git's id of the merged tree
    let tested = &report["tested"];
    assert_eq!(tested["kind"], "merged");
    assert_eq!(tested["agents"], serde_json::json!(["a", "b"]));
    assert_eq!(tested["uncommitted"], true);
    let merged_dir = PathBuf::from(tested["dir"].as_str().unwrap());
    assert!(!merged_dir.starts_with(repo.path()), "{merged_dir:?}");
    let tree = tested["tree"].as_str().unwrap();
    let expected = {
        // git as the oracle: the same files committed give the same tree id
        let check = TestRepo::new();
        for rel in [".config/baton.toml", "a.txt", "b.txt"] {
            check.write(rel, &std::fs::read_to_string(merged_dir.join(rel)).unwrap());
        }
        check.commit_all("merged");
        check.git(&["rev-parse", "HEAD^{tree}"])
    };
    assert_eq!(tree, expected);
    // with agents, the merged result is the default; --in-checkout tests the checkout, which
    // has none of their work, and says so
    let (run, report) = verify_json(&repo, &["--check", "tests"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(report["tested"]["kind"], "merged");
    let (run, report) = verify_json(&repo, &["--check", "tests", "--in-checkout"]);
    assert_eq!(run.code, 1);
    assert_eq!(report["tested"]["kind"], "checkout");
    assert_eq!(report["tested"]["commit"], repo.git(&["rev-parse", "HEAD"]));
    // conflicting agents: the merged result cannot be built, the check fails
    write_file(&a, "b.txt", "a's version\n");
    let (run, report) = verify_json(&repo, &["--check", "tests", "--merged"]);
    assert_eq!(run.code, 1);
    let f = &check_of(&report, "tests")["findings"][0];
    assert_eq!(
        (f["code"].as_str(), f["path"].as_str()),
        (Some("merge_conflict"), Some("b.txt"))
    );
}

#[test]
fn agents_sharing_one_tree_are_tested_in_it() {
    let repo = TestRepo::new();
    repo.write(
        ".config/baton.toml",
        "[verify]\nquick = [\"sh\", \"-c\", \"test -f shared.txt\"]\n",
    );
    repo.commit_all("config");
    // two agents wrote into the main checkout; their results file says what each wrote
    repo.write("shared.txt", "both agents' work\n");
    let results = repo.scratch("in").join("results.json");
    std::fs::write(&results, r#"{"a": ["shared.txt"], "b": ["other.txt"]}"#).unwrap();
    let args = [
        "--check",
        "tests",
        "--merged",
        "--results",
        results.to_str().unwrap(),
    ];
    let (run, report) = verify_json(&repo, &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // the checkout is their merged result, and the report says it was tested, uncommitted
    // changes included
    assert_eq!(report["tested"]["kind"], "checkout");
    assert_eq!(report["tested"]["uncommitted"], true);
    assert!(run.stderr.contains("share one tree"), "{}", run.stderr);
}
