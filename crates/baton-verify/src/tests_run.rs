//! Running the tests check: `cargo nextest run` with a private tool config that turns on
//! JUnit output (per-test results), `cargo test` (results from libtest's output), or a
//! configured command (its exit status). The child's output is forwarded line by line to a
//! callback the caller chooses.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use baton_report::{TestFailure, TestsSummary};

use crate::errors::TestsError;
use crate::tests_check::{Runner, TestsPlan};

/// Where the child's output goes, line by line (the CLI picks stderr, a log, or nothing).
pub type Sink<'a> = &'a (dyn Fn(&str) + Sync);

/// Run the planned tests in `dir` (a Cargo workspace root for the cargo runners) with extra
/// environment `env`. `scratch` is a private directory for the nextest tool config.
pub fn run_tests(
    plan: &TestsPlan,
    dir: &Path,
    env: &[(String, String)],
    scratch: &Path,
    sink: Sink<'_>,
) -> Result<TestsSummary, TestsError> {
    let mut summary = match &plan.runner {
        Runner::Nextest => run_nextest(plan, dir, env, scratch, sink)?,
        Runner::CargoTest => run_cargo_test(plan, dir, env, sink)?,
        Runner::Command(argv) => {
            let (code, _) = spawn(argv, dir, env, sink)?;
            let mut s = TestsSummary {
                command: argv.clone(),
                exit_code: Some(code),
                ..TestsSummary::default()
            };
            if code == 0 {
                s.passed = 1;
            } else {
                s.failed = 1;
                s.failures.push(TestFailure {
                    name: argv.join(" "),
                    suite: None,
                    message: Some(format!("exited with code {code}")),
                });
            }
            s
        }
    };
    summary.partition = plan.partition.clone();
    summary.dir = Some(dir.display().to_string());
    Ok(summary)
}

const PROFILE: &str = "baton-verify";

fn run_nextest(
    plan: &TestsPlan,
    dir: &Path,
    env: &[(String, String)],
    scratch: &Path,
    sink: Sink<'_>,
) -> Result<TestsSummary, TestsError> {
    let tool = scratch.join("nextest-baton.toml");
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| TestsError::Io { path, source }
    };
    std::fs::write(
        &tool,
        format!("[profile.{PROFILE}]\nfail-fast = false\n\n[profile.{PROFILE}.junit]\npath = \"junit.xml\"\n"),
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
        "--no-tests=warn".into(),
    ];
    if let Some(f) = &plan.filter {
        argv.push("-E".into());
        argv.push(f.clone());
    }
    if let Some(p) = &plan.partition {
        argv.push("--partition".into());
        argv.push(p.clone());
    }
    let (code, _) = spawn(&argv, dir, env, sink)?;
    let junit = candidates.iter().find(|c| c.is_file());
    let mut summary = match junit {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(io(path))?;
            crate::junit::parse(&text).map_err(|reason| TestsError::Junit {
                path: path.clone(),
                reason,
            })?
        }
        None => TestsSummary::default(),
    };
    if junit.is_none() && code == 0 {
        return Err(TestsError::Junit {
            path: candidates.last().cloned().unwrap_or_default(),
            reason: "cargo nextest passed but wrote no JUnit report there".to_owned(),
        });
    }
    if junit.is_none() && code != 0 {
        summary.failed = summary.failed.max(1);
        summary.failures.push(TestFailure {
            name: "cargo nextest run".into(),
            suite: None,
            message: Some(format!(
                "exited with code {code} before running tests (a build error?)"
            )),
        });
    }
    summary.runner = Some("nextest".into());
    summary.command = argv;
    summary.filter = plan.filter.clone();
    summary.exit_code = Some(code);
    Ok(summary)
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

fn run_cargo_test(
    plan: &TestsPlan,
    dir: &Path,
    env: &[(String, String)],
    sink: Sink<'_>,
) -> Result<TestsSummary, TestsError> {
    let mut argv = vec![
        plan.cargo.display().to_string(),
        "test".into(),
        "--workspace".into(),
        "--no-fail-fast".into(),
    ];
    if !plan.full {
        argv.push("--lib".into());
        argv.push("--bins".into());
    }
    let (code, stdout) = spawn(&argv, dir, env, sink)?;
    let mut summary = parse_libtest(&stdout);
    if code != 0 && summary.failed == 0 {
        summary.failed = 1;
        summary.failures.push(TestFailure {
            name: "cargo test".into(),
            suite: None,
            message: Some(format!("exited with code {code} (a build error?)")),
        });
    }
    summary.runner = Some("cargo-test".into());
    summary.command = argv;
    summary.exit_code = Some(code);
    Ok(summary)
}

/// Counts and failed test names from libtest's human output.
pub fn parse_libtest(stdout: &str) -> TestsSummary {
    let mut s = TestsSummary::default();
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("test result: ") {
            for part in rest.split(';') {
                let mut words = part.split_whitespace().rev();
                let (Some(what), Some(n)) = (words.next(), words.next()) else {
                    continue;
                };
                let Ok(n) = n.parse::<u64>() else { continue };
                match what {
                    "passed" => s.passed += n,
                    "failed" => s.failed += n,
                    "ignored" => s.skipped += n,
                    _ => {}
                }
            }
        } else if let Some(name) = line
            .strip_prefix("test ")
            .and_then(|l| l.strip_suffix(" ... FAILED"))
        {
            s.failures.push(TestFailure {
                name: name.to_owned(),
                suite: None,
                message: None,
            });
        }
    }
    s
}

/// Run `argv` in `dir`; forward its output to `sink` line by line; return the exit code and
/// the captured stdout.
fn spawn(
    argv: &[String],
    dir: &Path,
    env: &[(String, String)],
    sink: Sink<'_>,
) -> Result<(i32, String), TestsError> {
    let (program, args) = argv.split_first().ok_or_else(|| TestsError::EmptyCommand {
        key: "test command".into(),
    })?;
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| TestsError::Spawn {
            program: program.clone(),
            source,
        })?;
    let (stdout, status) = std::thread::scope(|scope| {
        let forward = |stream: Box<dyn Read + Send>, keep: bool| {
            scope.spawn(move || {
                let mut kept = String::new();
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    sink(&line);
                    if keep {
                        kept.push_str(&line);
                        kept.push('\n');
                    }
                }
                kept
            })
        };
        let out = child.stdout.take().map(|s| forward(Box::new(s), true));
        let err = child.stderr.take().map(|s| forward(Box::new(s), false));
        let status = child.wait();
        let stdout = out.and_then(|h| h.join().ok()).unwrap_or_default();
        let _ = err.map(|h| h.join());
        (stdout, status)
    });
    let status = status.map_err(|source| TestsError::Spawn {
        program: program.clone(),
        source,
    })?;
    Ok((status.code().unwrap_or(-1), stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtest_output() {
        let out = "running 2 tests\ntest a::b ... ok\ntest a::c ... FAILED\n\ntest result: FAILED. 1 passed; 1 failed; 3 ignored; 0 measured; 0 filtered out\n\ntest result: ok. 4 passed; 0 failed; 0 ignored; 0 measured\n";
        let s = parse_libtest(out);
        assert_eq!((s.passed, s.failed, s.skipped), (5, 1, 3));
        assert_eq!(s.failures[0].name, "a::c");
    }
}
