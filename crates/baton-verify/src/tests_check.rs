//! The tests check: which tests to run (smoke or all, a shard, only affected packages), how
//! (cargo-nextest, `cargo test`, or a configured command), and what the results were.
//!
//! Filtersets are validated with nextest's own parser (`nextest-filtering`, against the
//! workspace's package graph) before anything runs, so a typo is exit 2, not a long build.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use baton_report::{TestFailure, TestsSummary};
use guppy::graph::PackageGraph;
use nextest_filtering::{Filterset, FiltersetKind, KnownGroups, ParseContext};

use crate::errors::TestsError;

/// How the tests are run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runner {
    /// `cargo nextest run` with a filterset; per-test results from its JUnit report.
    Nextest,
    /// `cargo test` (nextest is not installed); results parsed from libtest's output.
    CargoTest,
    /// A configured command; only its exit status counts.
    Command(Vec<String>),
}

/// Everything decided before the tests run.
#[derive(Debug, Clone)]
pub struct TestsPlan {
    pub runner: Runner,
    pub full: bool,
    /// The nextest filterset (validated).
    pub filter: Option<String>,
    /// `hash:M/N` or `count:M/N` (validated).
    pub partition: Option<String>,
    /// The cargo program.
    pub cargo: PathBuf,
}

/// Check a `--partition` value: `hash:M/N` or `count:M/N` with 1 <= M <= N.
pub fn parse_partition(value: &str) -> Result<(), TestsError> {
    let bad = || TestsError::BadPartition {
        value: value.to_owned(),
    };
    let (kind, rest) = value.split_once(':').ok_or_else(bad)?;
    let (m, n) = rest.split_once('/').ok_or_else(bad)?;
    let (m, n): (u32, u32) = (m.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
    if !matches!(kind, "hash" | "count") || m == 0 || m > n {
        return Err(bad());
    }
    Ok(())
}

/// Is `cargo nextest` installed?
pub fn nextest_available(cargo: &Path) -> bool {
    Command::new(cargo)
        .args(["nextest", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The package graph of the Cargo workspace at `dir` (runs `cargo metadata`).
pub fn load_graph(cargo: &Path, dir: &Path) -> Result<PackageGraph, TestsError> {
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| TestsError::Spawn {
            program: format!("{} metadata", cargo.display()),
            source,
        })?;
    if !out.status.success() {
        return Err(TestsError::Metadata {
            dir: dir.to_owned(),
            message: last_line(&String::from_utf8_lossy(&out.stderr)),
        });
    }
    PackageGraph::from_json(String::from_utf8_lossy(&out.stdout)).map_err(|e| {
        TestsError::Metadata {
            dir: dir.to_owned(),
            message: e.to_string(),
        }
    })
}

/// Validate a filterset with nextest's parser against the workspace's packages. The error
/// carries nextest's own messages (`expected close parenthesis`, `operator didn't match any
/// packages`) with the part of the expression at fault.
pub fn validate_filterset(graph: &PackageGraph, expr: &str) -> Result<(), TestsError> {
    let cx = ParseContext::new(graph);
    Filterset::parse(
        expr.to_owned(),
        &cx,
        FiltersetKind::Test,
        &KnownGroups::Unavailable,
    )
    .map(|_| ())
    .map_err(|errs| TestsError::BadFilterset {
        expr: expr.to_owned(),
        message: errs
            .errors
            .iter()
            .map(|e| describe(expr, e))
            .collect::<Vec<_>>()
            .join("; "),
    })
}

fn describe(expr: &str, e: &nextest_filtering::errors::ParseSingleError) -> String {
    use miette::Diagnostic;
    let mut s = e.to_string();
    if let Some(labels) = e.labels() {
        for l in labels {
            let start = l.offset().min(expr.len());
            let end = (start + l.len()).min(expr.len());
            let part = expr.get(start..end).unwrap_or_default();
            let label = l.label().unwrap_or_default();
            s.push_str(&format!(
                " at column {}{}{}",
                start + 1,
                if part.is_empty() {
                    String::new()
                } else {
                    format!(" ({part:?})")
                },
                if label.is_empty() {
                    String::new()
                } else {
                    format!(": {label}")
                }
            ));
        }
    }
    s
}

/// Which workspace packages changed files belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Affected {
    /// A change outside every package (the root manifest, the lockfile, the toolchain):
    /// everything is affected.
    All,
    /// These packages (by name), whose reverse dependencies are affected too.
    Packages(Vec<String>),
}

/// Map changed paths (relative to the workspace root) to packages.
pub fn affected_packages(graph: &PackageGraph, root: &Path, changed: &[String]) -> Affected {
    let members: Vec<(PathBuf, String)> = graph
        .workspace()
        .iter()
        .filter_map(|p| {
            let dir = p.manifest_path().parent()?;
            Some((PathBuf::from(dir.as_str()), p.name().to_owned()))
        })
        .collect();
    let mut names = std::collections::BTreeSet::new();
    for rel in changed {
        let abs = root.join(rel);
        let owner = members
            .iter()
            .filter(|(dir, _)| abs.starts_with(dir) && dir.as_path() != root)
            .max_by_key(|(dir, _)| dir.components().count());
        match owner {
            Some((_, name)) => {
                names.insert(name.clone());
            }
            None if touches_whole_workspace(rel) => return Affected::All,
            None => {
                // the root package, if the workspace root is one
                if let Some((_, name)) = members.iter().find(|(dir, _)| dir.as_path() == root) {
                    names.insert(name.clone());
                }
            }
        }
    }
    Affected::Packages(names.into_iter().collect())
}

fn touches_whole_workspace(rel: &str) -> bool {
    matches!(
        rel,
        "Cargo.toml" | "Cargo.lock" | "rust-toolchain" | "rust-toolchain.toml"
    ) || rel.starts_with(".cargo/")
        || rel.starts_with(".config/")
}

/// The filterset selecting the tests of `packages` and of everything depending on them.
pub fn rdeps_filter(packages: &[String]) -> Option<String> {
    (!packages.is_empty()).then(|| {
        packages
            .iter()
            .map(|p| format!("rdeps(={p})"))
            .collect::<Vec<_>>()
            .join(" | ")
    })
}

/// Where the child's output goes (the CLI picks stderr, a log, or nothing).
pub type Sink = Arc<Mutex<Box<dyn Write + Send>>>;

/// Run the planned tests in `dir` (a Cargo workspace root for the cargo runners) with extra
/// environment `env`. `scratch` is a private directory for the nextest tool config.
pub fn run_tests(
    plan: &TestsPlan,
    dir: &Path,
    env: &[(String, String)],
    scratch: &Path,
    sink: Sink,
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
    sink: Sink,
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
    let mut out = vec![dir.join("target/nextest").join(PROFILE).join("junit.xml")];
    if let Some((_, t)) = env.iter().find(|(k, _)| k == "CARGO_TARGET_DIR") {
        out.push(Path::new(t).join("nextest").join(PROFILE).join("junit.xml"));
    }
    out
}

fn run_cargo_test(
    plan: &TestsPlan,
    dir: &Path,
    env: &[(String, String)],
    sink: Sink,
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
    sink: Sink,
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
    let forward = |stream: Box<dyn Read + Send>, keep: bool, sink: Sink| {
        std::thread::spawn(move || {
            let mut kept = String::new();
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut w) = sink.lock() {
                    let _ = writeln!(w, "{line}");
                }
                if keep {
                    kept.push_str(&line);
                    kept.push('\n');
                }
            }
            kept
        })
    };
    let out = child
        .stdout
        .take()
        .map(|s| forward(Box::new(s), true, sink.clone()));
    let err = child
        .stderr
        .take()
        .map(|s| forward(Box::new(s), false, sink));
    let status = child.wait().map_err(|source| TestsError::Spawn {
        program: program.clone(),
        source,
    })?;
    let stdout = out.and_then(|h| h.join().ok()).unwrap_or_default();
    let _ = err.map(|h| h.join());
    Ok((status.code().unwrap_or(-1), stdout))
}

fn last_line(s: &str) -> String {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("failed")
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions() {
        assert!(parse_partition("hash:1/2").is_ok());
        assert!(parse_partition("count:3/3").is_ok());
        for bad in [
            "hash:0/2",
            "hash:3/2",
            "hash:1",
            "slice:1/2",
            "1/2",
            "hash:a/b",
        ] {
            assert!(parse_partition(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn libtest_output() {
        let out = "running 2 tests\ntest a::b ... ok\ntest a::c ... FAILED\n\ntest result: FAILED. 1 passed; 1 failed; 3 ignored; 0 measured; 0 filtered out\n\ntest result: ok. 4 passed; 0 failed; 0 ignored; 0 measured\n";
        let s = parse_libtest(out);
        assert_eq!((s.passed, s.failed, s.skipped), (5, 1, 3));
        assert_eq!(s.failures[0].name, "a::c");
    }

    #[test]
    fn filterset_syntax_errors_use_nextest_messages() {
        let graph = PackageGraph::from_json(
            r#"{"packages":[],"workspace_members":[],"workspace_root":"/w","target_directory":"/w/target","version":1,"resolve":null}"#,
        )
        .unwrap();
        validate_filterset(&graph, "test(foo) | kind(lib)").unwrap();
        let err = validate_filterset(&graph, "test(foo")
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected close parenthesis"), "{err}");
        let err = validate_filterset(&graph, "package(nope)")
            .unwrap_err()
            .to_string();
        assert!(err.contains("operator didn't match any packages"), "{err}");
        assert_eq!(
            rdeps_filter(&["a".into(), "b".into()]).unwrap(),
            "rdeps(=a) | rdeps(=b)"
        );
    }
}
