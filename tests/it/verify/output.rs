//! Output of `baton verify`: `--report FILE`, `--format github` (annotations and the step
//! summary), `--format junit`, and `baton report merge`.

use baton_tests::TestRepo;

use super::verify_json;
use crate::support::{Run, baton};

/// A repository whose main checkout has an unresolved-looking file and an untracked one.
fn failing_repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.write("README.md", "ok\n<<<<<<< HEAD\na\n=======\nb\n>>>>>>> x\n");
    repo
}

fn run_with_env(repo: &TestRepo, args: &[&str], env: &[(&str, &std::path::Path)]) -> Run {
    let mut cmd = repo.command(crate::support::BATON, repo.path());
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn report_file_holds_the_same_json_as_stdout() {
    let repo = failing_repo();
    let file = repo.scratch("out").join("report.json");
    let (run, report) = verify_json(
        &repo,
        &["--check", "git", "--report", file.to_str().unwrap()],
    );
    assert_eq!(run.code, 1);
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(written, report);
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["totals"]["errors"], 1);
    // the stored report parses as the published type
    let typed: baton_report::VerifyReport = serde_json::from_value(written).unwrap();
    assert!(!typed.ok);
}

#[test]
fn github_format_annotates_and_writes_the_step_summary() {
    let repo = failing_repo();
    let summary = repo.scratch("gh").join("summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let run = run_with_env(
        &repo,
        &[
            "verify", "--check", "git", "--format", "github", "--color", "never",
        ],
        &[("GITHUB_STEP_SUMMARY", &summary)],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let first = run.stdout.lines().next().unwrap();
    assert!(
        first.starts_with("::error file=README.md,line=2,title=baton git%3A conflict_markers::"),
        "{}",
        run.stdout
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.starts_with("earlier step\n## baton verify (quick) FAILED"),
        "{md}"
    );
    assert!(
        md.contains("| error | git | `conflict_markers` | `README.md` |"),
        "{md}"
    );
}

#[test]
fn junit_format_is_xml_with_one_failure_per_error() {
    let repo = failing_repo();
    let run = baton(&repo, &["verify", "--check", "git", "--format", "junit"]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.starts_with("<?xml"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("<testsuite name=\"git\" tests=\"2\" failures=\"1\""),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("name=\"conflict_markers README.md\""),
        "{}",
        run.stdout
    );
    assert!(run.stdout.trim_end().ends_with("</testsuites>"));
}

#[test]
fn report_merge_combines_shards_and_rejects_garbage() {
    let repo = TestRepo::new();
    let dir = repo.scratch("shards");
    let (a, b) = (dir.join("a.json"), dir.join("b.json"));
    let run = baton(
        &repo,
        &[
            "verify",
            "--check",
            "git",
            "--partition",
            "hash:1/2",
            "--report",
            a.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(run.code, 0);
    repo.write("untracked.txt", "x\n");
    let run = baton(
        &repo,
        &[
            "verify",
            "--check",
            "git",
            "--partition",
            "hash:2/2",
            "--report",
            b.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(run.code, 0);
    let merged = baton(
        &repo,
        &[
            "report",
            "merge",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--json",
        ],
    )
    .expect_code(0)
    .json();
    assert_eq!(merged["checks"][0]["status"], "warn");
    assert_eq!(merged["totals"]["warnings"], 1);
    std::fs::write(&b, "{\"not\": \"a report\"}").unwrap();
    let run = baton(
        &repo,
        &["report", "merge", a.to_str().unwrap(), b.to_str().unwrap()],
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("b.json"), "{}", run.stderr);
}

#[test]
fn check_selection_and_usage_errors() {
    let repo = TestRepo::new();
    let (run, report) = verify_json(&repo, &["--check", "git,conflicts"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let names: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["git", "conflicts"]);
    repo.write(
        ".config/baton.toml",
        "[verify]\nsmoke = \"kind(lib)\"\nbogus = 1\n",
    );
    let run = baton(&repo, &["verify", "--check", "git"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("baton.toml:3:1"), "{}", run.stderr);
    std::fs::remove_file(repo.path().join(".config/baton.toml")).unwrap();
    for bad in [
        vec!["verify", "--check", "lint"],
        vec!["verify", "--quick", "--full"],
        vec!["verify", "--branches", "x", "--plan", "y"],
        vec!["verify", "--partition", "hash:3/2", "--check", "tests"],
    ] {
        let run = baton(&repo, &bad);
        assert_eq!(run.code, 2, "{bad:?}: {}", run.stderr);
    }
}
