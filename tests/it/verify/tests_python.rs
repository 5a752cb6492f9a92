//! The tests step on a non-Rust (Python) repository with configured commands: the failure's
//! cause (an exception, an import error) in the JSON report, per-test counts from the JUnit
//! file a command writes (`[verify] junit`), the `verification` event in the metrics log, and
//! `report merge` refusing a repeated or missing shard.

use baton_tests::{TestRepo, require_program};

use super::{check_of, verify_json};
use crate::support::baton;

fn python(test: &str) -> bool {
    require_program(
        test,
        &["python3", "--version"],
        "the Python repository's tests run python3",
        "apt-get install python3",
    )
}

/// A Python package with unittest tests, run by a configured command.
fn python_repo(test_body: &str) -> TestRepo {
    let repo = TestRepo::new();
    repo.write("calc/__init__.py", "def div(a, b):\n    return a / b\n");
    repo.write(
        "tests/test_calc.py",
        &format!("import unittest\nimport calc\n\n\nclass T(unittest.TestCase):\n{test_body}\n"),
    );
    repo.write("tests/__init__.py", "");
    repo.write(
        ".config/baton.toml",
        "[verify]\nquick = [\"python3\", \"-B\", \"-m\", \"unittest\", \"discover\", \"-s\", \"tests\", \"-t\", \".\"]\n",
    );
    repo.commit_all("python package");
    repo
}

#[test]
fn a_python_exception_and_an_import_error_reach_the_report() {
    if !python("a_python_exception_and_an_import_error_reach_the_report") {
        return;
    }
    let repo =
        python_repo("    def test_div(self):\n        self.assertEqual(calc.div(1, 0), 0)\n");
    let (run, report) = verify_json(&repo, &["--check", "tests"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let t = &check_of(&report, "tests")["tests"];
    assert_eq!(t["counted"], false, "{t:#}");
    let message = t["failures"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("ZeroDivisionError: division by zero"),
        "{message}"
    );
    // where it was raised, from the traceback, relative to the tested tree
    let f = &t["failures"][0];
    assert_eq!(
        (f["file"].as_str(), f["line"].as_u64()),
        (Some("calc/__init__.py"), Some(2)),
        "{f:#}"
    );
    assert!(
        t["output_tail"].as_str().unwrap().contains("Traceback"),
        "{t:#}"
    );
    // the command's output also went to stderr, even under --json
    assert!(run.stderr.contains("ZeroDivisionError"), "{}", run.stderr);
    assert_eq!(report["totals"]["errors"], 1);

    repo.write("calc/__init__.py", "import nope\n");
    let (run, report) = verify_json(&repo, &["--check", "tests"]);
    assert_eq!(run.code, 1);
    let message = check_of(&report, "tests")["tests"]["failures"][0]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("ModuleNotFoundError: No module named 'nope'"),
        "{message}"
    );
}

#[test]
fn junit_from_a_configured_command_counts_every_test() {
    if !python("junit_from_a_configured_command_counts_every_test") {
        return;
    }
    let repo = TestRepo::new();
    // a runner that writes JUnit, as pytest --junitxml does
    repo.write(
        "run_tests.py",
        r#"import sys
cases = [("test_ok", None), ("test_also_ok", None), ("test_bad", "AssertionError: 1 != 2")]
with open("build/junit.xml", "w") as f:
    f.write('<testsuites><testsuite name="py">')
    for name, err in cases:
        f.write(f'<testcase classname="tests.py" name="{name}">')
        if err:
            f.write(f'<failure message="{err}">{err}</failure>')
        f.write('</testcase>')
    f.write('</testsuite></testsuites>')
sys.exit(1)
"#,
    );
    repo.write("build/.keep", "");
    repo.write(
        ".config/baton.toml",
        "[verify]\nquick = [\"python3\", \"run_tests.py\"]\njunit = \"build/junit.xml\"\n",
    );
    repo.write(".gitignore", "/build/junit.xml\n");
    repo.commit_all("junit runner");
    let (run, report) = verify_json(&repo, &["--check", "tests"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let t = &check_of(&report, "tests")["tests"];
    assert_eq!(
        (
            t["passed"].as_u64(),
            t["failed"].as_u64(),
            t["counted"].as_bool()
        ),
        (Some(2), Some(1), Some(true)),
        "{t:#}"
    );
    assert_eq!(t["failures"][0]["name"], "test_bad");
    assert_eq!(t["failures"][0]["message"], "AssertionError: 1 != 2");
    assert_eq!(report["totals"]["errors"], 1);
    // a command that writes no JUnit where configured: an error naming the file
    repo.write(
        ".config/baton.toml",
        "[verify]\nquick = [\"true\"]\njunit = \"build/junit.xml\"\n",
    );
    let (run, report) = verify_json(&repo, &["--check", "tests"]);
    assert_eq!(run.code, 1);
    let f = &check_of(&report, "tests")["findings"][0];
    assert_eq!(f["code"], "junit_missing");
    assert!(
        f["message"].as_str().unwrap().contains("build/junit.xml"),
        "{f:#}"
    );
    // a JUnit path outside the repository is bad input: nothing runs, nothing is removed
    let outside = repo.scratch("outside").join("junit.xml");
    std::fs::write(&outside, "keep").unwrap();
    repo.write(
        ".config/baton.toml",
        "[verify]\nquick = [\"true\"]\njunit = \"../outside/junit.xml\"\n",
    );
    let run = baton(&repo, &["verify", "--check", "tests"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("[verify] junit"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
}

#[test]
fn every_verify_is_recorded_in_the_metrics_log() {
    let repo = TestRepo::new();
    repo.write(".config/baton.toml", "[verify]\nquick = [\"true\"]\n");
    repo.commit_all("config");
    // baton keeps state here already (verify never creates .baton itself)
    baton(
        &repo,
        &["metrics", "record", "--event", "task", "--success", "true"],
    )
    .expect_code(0);
    let (run, _) = verify_json(&repo, &["--check", "tests"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    repo.write(".config/baton.toml", "[verify]\nquick = [\"false\"]\n");
    let (run, _) = verify_json(&repo, &["--check", "tests"]);
    assert_eq!(run.code, 1);
    let summary = baton(&repo, &["metrics", "summary", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(
        (
            summary["gate"]["count"].as_u64(),
            summary["gate"]["succeeded"].as_u64(),
            summary["gate"]["failed"].as_u64()
        ),
        (Some(2), Some(1), Some(1)),
        "{summary:#}"
    );
    let log = std::fs::read_to_string(repo.path().join(".baton/metrics.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "verification");
    assert_eq!(last["details"]["verdict"], "failed");
    assert_eq!(last["details"]["checks"], "tests:fail");
    assert!(last["duration_ms"].is_u64());
}

#[test]
fn report_merge_refuses_repeated_and_missing_shards() {
    let repo = TestRepo::new();
    let dir = repo.scratch("shards");
    let shard = |m: u32| {
        let path = dir.join(format!("{m}.json"));
        let part = format!("hash:{m}/3");
        let args = [
            "verify",
            "--check",
            "git",
            "--partition",
            &part,
            "--report",
            path.to_str().unwrap(),
        ];
        baton(&repo, &args).expect_code(0);
        path.to_str().unwrap().to_owned()
    };
    let (one, two, three) = (shard(1), shard(2), shard(3));
    let merge = |paths: &[&str]| {
        let mut args = vec!["report", "merge"];
        args.extend_from_slice(paths);
        baton(&repo, &args)
    };
    let twice = merge(&[&one, &two, &two, &three]);
    assert_eq!(twice.code, 2, "{}", twice.stderr);
    assert!(
        twice.stderr.contains("hash:2/3 is given twice"),
        "{}",
        twice.stderr
    );
    let missing = merge(&[&one, &three]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("missing hash:2/3"),
        "{}",
        missing.stderr
    );
    // a shard's partition is checked whatever the checks, since merging relies on it
    baton(
        &repo,
        &["verify", "--check", "git", "--partition", "hash:0/3"],
    )
    .expect_code(2);
    let whole = merge(&[&three, &one, &two, "--json"]).expect_code(0).json();
    assert_eq!(
        whole["shards"],
        serde_json::json!(["hash:1/3", "hash:2/3", "hash:3/3"])
    );
}
