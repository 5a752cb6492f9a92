//! The tests step on a real small Rust workspace whose tests are all integration tests and a
//! doctest: zero tests is a failure, `--full` runs the doctests, failures carry the assertion
//! message and file:line (JSON, GitHub, JUnit), a compile error carries the compiler's
//! diagnostic, `runner = "cargo-test"` keeps per-test results, and the `--merged` build reuses
//! its scratch directory and the checkout's lock file. Each test builds one tiny crate and
//! keeps its target directory between its steps.

use baton_tests::{TestRepo, write_file};
use serde_json::Value;

use super::add_worktree;
use super::tests_step::{baton_with_cargo, nextest_installed, tests_summary};
use crate::support::Run;

const LIB: &str = "/// The answer.\n///\n/// ```\n/// assert_eq!(core_x::answer(), 42);\n/// ```\npub fn answer() -> u32 {\n    42\n}\n";
const INT: &str = "#[test]\nfn answer_is_42() {\n    assert_eq!(core_x::answer(), 42);\n}\n\n#[test]\nfn answer_is_43() {\n    let wanted = 43;\n    assert_eq!(core_x::answer(), wanted, \"the answer drifted\");\n}\n";

/// A workspace of one library, `core_x`, with no unit tests: two integration tests (one
/// fails) and a doctest.
fn workspace(repo: &TestRepo) {
    repo.write(
        "Cargo.toml",
        "[workspace]\nmembers = [\"core\"]\nresolver = \"2\"\n",
    );
    repo.write(
        "core/Cargo.toml",
        "[package]\nname = \"core_x\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    );
    repo.write("core/src/lib.rs", LIB);
    repo.write("core/tests/int.rs", INT);
    repo.write(".gitignore", "/target\n");
    repo.commit_all("workspace");
}

fn json(run: &Run) -> Value {
    run.json()
}

fn failure<'a>(t: &'a Value, name: &str) -> &'a Value {
    t["failures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"].as_str().is_some_and(|n| n.contains(name)))
        .unwrap_or_else(|| panic!("no failure named {name} in {t:#}"))
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> u64 {
    text.lines().position(|l| l.contains(needle)).unwrap() as u64 + 1
}

#[test]
fn integration_only_workspace_zero_tests_doctests_and_failure_causes() {
    if !nextest_installed() {
        return;
    }
    let repo = TestRepo::new();
    workspace(&repo);

    // the smoke selection (unit tests) selects nothing here: that is a failure, not a pass
    let quick = baton_with_cargo(&repo, &["verify", "--check", "tests", "--json"]);
    assert_eq!(quick.code, 1, "{}", quick.stderr);
    let report = json(&quick);
    let check = super::check_of(&report, "tests");
    assert_eq!(check["findings"][0]["code"], "no_tests");
    let message = check["findings"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("0 tests ran") && message.contains("allow_no_tests"),
        "{message}"
    );

    // --full: the integration tests and the doctest; the failure carries its cause
    let full = baton_with_cargo(&repo, &["verify", "--check", "tests", "--full", "--json"]);
    assert_eq!(full.code, 1, "{}", full.stderr);
    let report = json(&full);
    let t = tests_summary(&full);
    assert_eq!(
        (t["passed"].as_u64(), t["failed"].as_u64()),
        (Some(2), Some(1)),
        "{t:#}"
    );
    assert_eq!(report["totals"]["errors"], 1);
    let f = failure(&t, "answer_is_43");
    let msg = f["message"].as_str().unwrap();
    assert!(
        msg.contains("assertion `left == right` failed: the answer drifted")
            && msg.contains("left: 42"),
        "{msg}"
    );
    assert!(
        f["file"].as_str().unwrap().ends_with("tests/int.rs"),
        "{f:#}"
    );
    assert_eq!(f["line"].as_u64(), Some(line_of(INT, "drifted")));
    let doctest = t["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["suite"] == "doctests")
        .unwrap_or_else(|| panic!("no doctest ran: {t:#}"));
    assert_eq!(doctest["outcome"], "passed");
    assert!(
        full.stderr.contains("answer_is_43"),
        "output goes to stderr"
    );

    // the same run for CI: GitHub annotations at the file and line, JUnit with every test
    let gh = baton_with_cargo(
        &repo,
        &["verify", "--check", "tests", "--full", "--format", "github"],
    );
    let annotation = gh
        .stdout
        .lines()
        .find(|l| l.contains("answer_is_43"))
        .unwrap_or_else(|| panic!("{}", gh.stdout));
    assert!(
        annotation.starts_with("::error file=core/tests/int.rs,line=")
            || annotation.contains("tests/int.rs,line="),
        "{annotation}"
    );
    assert!(annotation.contains(&format!("line={}", line_of(INT, "drifted"))));
    let junit = baton_with_cargo(
        &repo,
        &["verify", "--check", "tests", "--full", "--format", "junit"],
    );
    for name in ["answer_is_42", "answer_is_43", "answer (line 3)"] {
        assert!(junit.stdout.contains(name), "{name}: {}", junit.stdout);
    }
    assert!(junit.stdout.contains("<system-out>"), "{}", junit.stdout);
    assert_eq!(
        junit.stdout.matches("<failure ").count(),
        1,
        "{}",
        junit.stdout
    );

    // a broken doctest fails --full
    repo.write("core/src/lib.rs", &LIB.replace("), 42);", "), 41);"));
    let broken = baton_with_cargo(&repo, &["verify", "--check", "tests", "--full", "--json"]);
    assert_eq!(broken.code, 1);
    let t = tests_summary(&broken);
    let f = failure(&t, "answer (line 3)");
    assert_eq!(f["suite"], "doctests", "{f:#}");

    // a compile error: the compiler's diagnostic, at its file and line, not a test failure
    repo.write(
        "core/src/lib.rs",
        "pub fn answer() -> u32 {\n    \"forty-two\"\n}\n",
    );
    let build = baton_with_cargo(&repo, &["verify", "--check", "tests", "--full", "--json"]);
    assert_eq!(build.code, 1, "{}", build.stderr);
    let report = json(&build);
    let check = super::check_of(&report, "tests");
    let diag = check["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "compile_error")
        .unwrap_or_else(|| panic!("{check:#}"));
    assert_eq!(diag["path"], "core/src/lib.rs");
    assert_eq!(diag["line"], 2);
    assert!(
        diag["message"]
            .as_str()
            .unwrap()
            .contains("mismatched types"),
        "{diag:#}"
    );
    assert_eq!(check["tests"]["failed"], 0);
    assert!(report["totals"]["errors"].as_u64().unwrap() >= 1);
}

#[test]
fn cargo_test_runner_keeps_per_test_results() {
    let repo = TestRepo::new();
    workspace(&repo);
    repo.write(".config/baton.toml", "[verify]\nrunner = \"cargo-test\"\n");
    let run = baton_with_cargo(&repo, &["verify", "--check", "tests", "--full", "--json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let t = tests_summary(&run);
    assert_eq!(t["runner"], "cargo-test");
    // two integration tests and the doctest, each listed
    assert_eq!(
        (t["passed"].as_u64(), t["failed"].as_u64()),
        (Some(2), Some(1)),
        "{t:#}"
    );
    assert_eq!(t["cases"].as_array().unwrap().len(), 3, "{t:#}");
    let f = failure(&t, "answer_is_43");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("the answer drifted"),
        "{f:#}"
    );
    assert_eq!(f["line"].as_u64(), Some(line_of(INT, "drifted")));
}

#[test]
fn merged_build_reuses_its_scratch_and_the_checkout_lock_file() {
    let repo = TestRepo::new();
    repo.write(
        "Cargo.toml",
        "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    );
    repo.write(
        "src/lib.rs",
        "pub fn two() -> u32 { 2 }\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn two() { assert_eq!(super::two(), 2); }\n}\n",
    );
    repo.write(".gitignore", "/target\n/Cargo.lock\n");
    repo.commit_all("tiny");
    // the user's untracked lock file, in the older format cargo keeps as it is (a lock cargo
    // generated itself would say version = 4)
    let lock = "# This file is automatically @generated by Cargo.\n# It is not intended for manual editing.\nversion = 3\n\n[[package]]\nname = \"tiny\"\nversion = \"0.1.0\"\n";
    repo.write("Cargo.lock", lock);
    let a = add_worktree(&repo, "a", "a");
    write_file(&a, "src/extra.rs", "pub const X: u32 = 1;\n");
    repo.commit_all_in(&a, "extra");
    let args = ["verify", "--check", "tests", "--full", "--json"];
    let first = baton_with_cargo(&repo, &args);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let report = first.json();
    assert_eq!(report["tested"]["kind"], "merged");
    let dir = std::path::PathBuf::from(report["tested"]["dir"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(dir.join("Cargo.lock")).unwrap(),
        lock
    );
    assert!(dir.join("src/extra.rs").is_file());
    assert!(first.stderr.contains("Compiling tiny"), "{}", first.stderr);
    // the second run on the unchanged batch builds nothing, in the same place
    let second = baton_with_cargo(&repo, &args);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(second.json()["tested"]["dir"], report["tested"]["dir"]);
    assert!(
        !second.stderr.contains("Compiling tiny"),
        "the merged build was redone:\n{}",
        second.stderr
    );
    // --keep-merged: the merged tree stays in a directory of the user's choice
    let keep = repo.scratch("kept");
    let kept = baton_with_cargo(
        &repo,
        &[
            "verify",
            "--check",
            "tests",
            "--keep-merged",
            keep.join("m").to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(kept.code, 0, "{}", kept.stderr);
    assert_eq!(kept.json()["tested"]["kept"], true);
    assert!(keep.join("m/src/extra.rs").is_file());
    // a non-empty directory is refused before anything runs
    let again = baton_with_cargo(
        &repo,
        &[
            "verify",
            "--check",
            "tests",
            "--keep-merged",
            keep.join("m").to_str().unwrap(),
        ],
    );
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(again.stderr.contains("not empty"), "{}", again.stderr);
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}
