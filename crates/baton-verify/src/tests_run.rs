//! Running the tests check: `cargo nextest run` with a private tool config that turns on
//! JUnit output (per-test results, with output), then the doctests with `cargo test --doc` in
//! full mode; `cargo test` (results from libtest's output); or a configured command (per-test
//! results from the JUnit it writes, else one check). Build errors come from cargo's JSON
//! messages. The child's output is forwarded line by line to a callback the caller chooses,
//! and its tail is kept for the report.

use std::path::{Path, PathBuf};

use baton_report::{Finding, Severity, TestFailure, TestsSummary};

use crate::errors::TestsError;
use crate::findings::finding;
use crate::tests_check::{Runner, TestsPlan};
use crate::tests_output::{Ran, cause_line, parse_libtest, spawn, tail_of, traceback_location};

pub use crate::tests_output::Sink;

/// The tests step's results: counts and failures, plus findings for what is not a test
/// failure (compile errors, a runner that could not start its tests).
#[derive(Debug, Default)]
pub struct TestsRun {
    pub summary: TestsSummary,
    pub findings: Vec<Finding>,
}

/// Run the planned tests in `dir` (a Cargo workspace root for the cargo runners) with extra
/// environment `env`. `scratch` is a private directory for the nextest tool config.
pub fn run_tests(
    plan: &TestsPlan,
    dir: &Path,
    env: &[(String, String)],
    scratch: &Path,
    sink: Sink<'_>,
) -> Result<TestsRun, TestsError> {
    let mut run = match &plan.runner {
        Runner::Nextest => {
            let mut run = run_nextest(plan, dir, env, scratch, sink)?;
            let first_shard = plan
                .partition
                .as_deref()
                .is_none_or(|p| p.split([':', '/']).nth(1) == Some("1"));
            if plan.doctests && first_shard && run.findings.is_empty() {
                let doc = run_cargo_test(plan, dir, env, sink, true)?;
                add_doctests(&mut run, doc);
            }
            run
        }
        Runner::CargoTest => run_cargo_test(plan, dir, env, sink, false)?,
        Runner::Command(argv) => run_command(argv, plan.junit.as_deref(), dir, env, sink)?,
    };
    run.summary.partition = plan.partition.clone();
    run.summary.dir = Some(dir.display().to_string());
    Ok(run)
}

fn add_doctests(into: &mut TestsRun, doc: TestsRun) {
    let s = &mut into.summary;
    s.passed += doc.summary.passed;
    s.failed += doc.summary.failed;
    s.skipped += doc.summary.skipped;
    for mut f in doc.summary.failures {
        f.suite.get_or_insert_with(|| "doctests".to_owned());
        s.failures.push(f);
    }
    for mut c in doc.summary.cases {
        c.suite.get_or_insert_with(|| "doctests".to_owned());
        s.cases.push(c);
    }
    s.command.push("&&".to_owned());
    s.command.extend(doc.summary.command);
    if doc.summary.exit_code.is_some_and(|c| c != 0) {
        s.exit_code = doc.summary.exit_code;
    }
    if let Some(t) = doc.summary.output_tail {
        s.output_tail = Some(tail_of(
            &format!("{}{t}", s.output_tail.take().unwrap_or_default()),
            crate::tests_output::TAIL_BYTES,
        ));
    }
    into.findings.extend(doc.findings);
}

/// A configured command: per-test results from the JUnit file it writes (`[verify] junit`),
/// else one check decided by its exit status, its cause read from its output.
fn run_command(
    argv: &[String],
    junit: Option<&Path>,
    dir: &Path,
    env: &[(String, String)],
    sink: Sink<'_>,
) -> Result<TestsRun, TestsError> {
    let junit = junit.map(|j| dir.join(j));
    if let Some(j) = &junit {
        // a report left by an earlier run must not pass for this one
        let _ = std::fs::remove_file(j);
    }
    let ran = spawn(argv, dir, env, sink, false, false)?;
    let mut summary = match &junit {
        Some(path) if path.is_file() => {
            let text = std::fs::read_to_string(path).map_err(|source| TestsError::Io {
                path: path.clone(),
                source,
            })?;
            crate::junit::parse(&text).map_err(|reason| TestsError::Junit {
                path: path.clone(),
                reason,
            })?
        }
        _ => TestsSummary {
            counted: false,
            ..TestsSummary::default()
        },
    };
    let mut findings = Vec::new();
    if ran.code != 0 && summary.failed == 0 {
        let cause = cause_line(&ran.tail).unwrap_or_default();
        if summary.counted || junit.is_none() {
            let place = traceback_location(&ran.tail, dir);
            summary.failures.push(TestFailure {
                name: argv.join(" "),
                message: Some(format!("exited with code {}: {cause}", ran.code)),
                file: place.as_ref().map(|(f, _)| f.clone()),
                line: place.map(|(_, l)| l),
                output: Some(ran.tail.clone()),
                ..TestFailure::default()
            });
        }
        if let Some(j) = junit.as_ref().filter(|j| !j.is_file()) {
            findings.push(finding(
                "junit_missing",
                Severity::Error,
                format!(
                    "{} exited with code {} and wrote no JUnit report at {}: {cause}",
                    argv.join(" "),
                    ran.code,
                    j.display()
                ),
            ));
        }
    } else if let Some(j) = junit.as_ref().filter(|j| !j.is_file()) {
        findings.push(finding(
            "junit_missing",
            Severity::Error,
            format!(
                "{} wrote no JUnit report at {} ([verify] junit in .config/baton.toml)",
                argv.join(" "),
                j.display()
            ),
        ));
    }
    summary.runner = Some("command".into());
    summary.command = argv.to_vec();
    summary.exit_code = Some(ran.code);
    summary.output_tail = Some(ran.tail);
    Ok(TestsRun { summary, findings })
}

/// Findings for a failed cargo build: one per compiler error, else one naming the exit code
/// and the last line of output.
fn build_findings(ran: &Ran, what: &str) -> Vec<Finding> {
    let mut out: Vec<Finding> = ran
        .diagnostics
        .iter()
        .map(|d| {
            let mut f = finding(
                "compile_error",
                Severity::Error,
                if d.rendered.is_empty() {
                    d.message.clone()
                } else {
                    d.rendered.clone()
                },
            );
            f.path = d.file.clone();
            f.line = d.line;
            f
        })
        .collect();
    if out.is_empty() {
        out.push(finding(
            "build_failed",
            Severity::Error,
            format!(
                "{what}: the build failed (exit code {}): {}",
                ran.code,
                cause_line(&ran.tail).unwrap_or_default()
            ),
        ));
    }
    out
}

const PROFILE: &str = "baton-verify";

/// nextest's documented exit codes.
const NEXTEST_TEST_RUN_FAILED: i32 = 100;
const NEXTEST_BUILD_FAILED: i32 = 101;
const NEXTEST_NO_TESTS_RUN: i32 = 4;

fn run_nextest(
    plan: &TestsPlan,
    dir: &Path,
    env: &[(String, String)],
    scratch: &Path,
    sink: Sink<'_>,
) -> Result<TestsRun, TestsError> {
    let tool = scratch.join("nextest-baton.toml");
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| TestsError::Io { path, source }
    };
    std::fs::write(
        &tool,
        format!(
            "[profile.{PROFILE}]\nfail-fast = false\n\n[profile.{PROFILE}.junit]\npath = \"junit.xml\"\nstore-success-output = true\nstore-failure-output = true\n"
        ),
    )
    .map_err(io(&tool))?;
    let candidates = junit_candidates(dir, env);
    for c in &candidates {
        let _ = std::fs::remove_file(c);
    }
    let mut argv: Vec<String> = vec![
        plan.cargo.display().to_string(),
        "nextest".into(),
        "run".into(),
        "--workspace".into(),
        "--tool-config-file".into(),
        format!("baton:{}", tool.display()),
        "--profile".into(),
        PROFILE.into(),
        "--no-fail-fast".into(),
        // zero tests is judged by the gate (a failure unless configured acceptable)
        "--no-tests=pass".into(),
        "--cargo-message-format".into(),
        "json".into(),
    ];
    if let Some(f) = &plan.filter {
        argv.push("-E".into());
        argv.push(f.clone());
    }
    if let Some(p) = &plan.partition {
        argv.push("--partition".into());
        argv.push(p.clone());
    }
    let ran = spawn(&argv, dir, env, sink, false, true)?;
    let junit = candidates.iter().find(|c| c.is_file());
    let mut run = TestsRun::default();
    if let Some(path) = junit {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        run.summary = crate::junit::parse(&text).map_err(|reason| TestsError::Junit {
            path: path.clone(),
            reason,
        })?;
    }
    if ran.code == NEXTEST_BUILD_FAILED || ran.build_failed {
        run.findings = build_findings(&ran, "cargo nextest run");
    } else if junit.is_none() && ran.code == 0 {
        return Err(TestsError::Junit {
            path: candidates.last().cloned().unwrap_or_default(),
            reason: "cargo nextest passed but wrote no JUnit report there".to_owned(),
        });
    } else if junit.is_none() && ran.code != NEXTEST_NO_TESTS_RUN {
        run.findings.push(finding(
            "runner_failed",
            Severity::Error,
            format!(
                "cargo nextest run exited with code {} before running tests: {}",
                ran.code,
                cause_line(&ran.tail).unwrap_or_default()
            ),
        ));
    } else if ran.code == NEXTEST_TEST_RUN_FAILED && run.summary.failed == 0 {
        run.findings.push(finding(
            "runner_failed",
            Severity::Error,
            format!(
                "cargo nextest run says tests failed (exit code {}) but its JUnit report lists none: {}",
                ran.code,
                cause_line(&ran.tail).unwrap_or_default()
            ),
        ));
    }
    run.summary.runner = Some("nextest".into());
    run.summary.command = argv;
    run.summary.filter = plan.filter.clone();
    run.summary.exit_code = Some(ran.code);
    run.summary.output_tail = Some(ran.tail);
    Ok(run)
}

/// Where nextest may write the JUnit report of our profile: its store (`target/nextest` under
/// the workspace root by default) or under a `CARGO_TARGET_DIR` we pass.
fn junit_candidates(dir: &Path, env: &[(String, String)]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    // a repository may move nextest's store (`[store] dir` in .config/nextest.toml)
    if let Ok(text) = std::fs::read_to_string(dir.join(".config/nextest.toml"))
        && let Ok(value) = text.parse::<toml::Table>()
        && let Some(store) = value
            .get("store")
            .and_then(|s| s.get("dir"))
            .and_then(|d| d.as_str())
    {
        out.push(dir.join(store).join(PROFILE).join("junit.xml"));
    }
    out.push(dir.join("target/nextest").join(PROFILE).join("junit.xml"));
    if let Some((_, t)) = env.iter().find(|(k, _)| k == "CARGO_TARGET_DIR") {
        out.push(Path::new(t).join("nextest").join(PROFILE).join("junit.xml"));
    }
    out
}

/// `cargo test` (the fallback without nextest, or `[verify] runner = "cargo-test"`), or with
/// `doc_only` the doctests after nextest. Per-test results come from libtest's output, build
/// errors from cargo's JSON messages.
fn run_cargo_test(
    plan: &TestsPlan,
    dir: &Path,
    env: &[(String, String)],
    sink: Sink<'_>,
    doc_only: bool,
) -> Result<TestsRun, TestsError> {
    let mut argv = vec![
        plan.cargo.display().to_string(),
        "test".into(),
        "--no-fail-fast".into(),
        "--message-format".into(),
        "json".into(),
    ];
    if plan.packages.is_empty() {
        argv.push("--workspace".into());
    }
    for p in &plan.packages {
        argv.push("-p".into());
        argv.push(p.clone());
    }
    if doc_only {
        argv.push("--doc".into());
    } else if !plan.full {
        argv.push("--lib".into());
        argv.push("--bins".into());
    }
    let ran = spawn(&argv, dir, env, sink, true, true)?;
    let mut summary = parse_libtest(&ran.stdout);
    let mut findings = Vec::new();
    if ran.build_failed || !ran.diagnostics.is_empty() {
        findings = build_findings(&ran, "cargo test");
    } else if ran.code != 0 && summary.failed == 0 {
        findings.push(finding(
            "runner_failed",
            Severity::Error,
            format!(
                "cargo test exited with code {} but no test failed: {}",
                ran.code,
                cause_line(&ran.tail).unwrap_or_default()
            ),
        ));
    }
    summary.runner = Some("cargo-test".into());
    summary.command = argv;
    summary.exit_code = Some(ran.code);
    summary.output_tail = Some(ran.tail);
    Ok(TestsRun { summary, findings })
}
