//! The gate's tests step: decide the runner and selection up front (so a bad filterset,
//! partition or `--keep-merged` directory is an error before anything runs), then run it in
//! the checkout or on the agents' merged result, and judge it: a failed test, a build error,
//! zero tests run or no test command at all fail the step (the last two unless
//! `[verify] allow_no_tests`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use baton_git::RepoPaths;
use baton_report::{Check, CheckStatus, Severity, TestedTree};
use guppy::graph::PackageGraph;

use super::affected::{changed_files, reverse_dependents};
use super::tested_tree::{MergedTree, checkout_tree, prepare_commit, prepare_merged};
use super::{GateError, Progress, TestsTree, errored};
use crate::VerifyConfig;
use crate::config::RunnerChoice;
use crate::conflicts::ConflictsOutcome;
use crate::errors::TestsError;
use crate::findings::finding;
use crate::pairs::AgentFiles;
use crate::scratch::Scratch;
use crate::tests_check::{self, Affected, Runner, TestsPlan, affected_packages, rdeps_filter};

/// What the caller asked of the tests check.
pub struct TestsRequest {
    pub full: bool,
    pub partition: Option<String>,
    pub affected: bool,
    pub tree: TestsTree,
    pub keep_merged: Option<PathBuf>,
    pub scratch_dir: PathBuf,
}

/// The tests step, validated and ready to run.
pub enum Prepared {
    /// Nothing to run: why, and whether that is acceptable (`allow_no_tests`).
    Nothing {
        why: String,
        allowed: bool,
    },
    Run(Box<Ready>),
}

pub struct Ready {
    plan: TestsPlan,
    graph: Option<PackageGraph>,
    affected: bool,
    tree: TestsTree,
    keep_merged: Option<PathBuf>,
    scratch_dir: PathBuf,
    allow_no_tests: bool,
    max_target_bytes: u64,
}

pub fn prepare(
    repo: &RepoPaths,
    config: &VerifyConfig,
    cargo: &Path,
    req: TestsRequest,
) -> Result<Prepared, GateError> {
    if let Some(p) = &req.partition {
        tests_check::parse_partition(p)?;
    }
    if let Some(dir) = &req.keep_merged {
        let empty = match std::fs::read_dir(dir) {
            Ok(mut entries) => entries.next().is_none(),
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        };
        if !empty {
            return Err(TestsError::KeepMergedNotEmpty { dir: dir.clone() }.into());
        }
        if req.tree == TestsTree::InCheckout {
            return Err(TestsError::KeepMergedInCheckout.into());
        }
    }
    let cargo: PathBuf = cargo.to_owned();
    let (key, command, other) = if req.full {
        ("full", &config.full, &config.quick)
    } else {
        ("quick", &config.quick, &config.full)
    };
    let base = TestsPlan {
        runner: Runner::CargoTest,
        full: req.full,
        filter: None,
        partition: None,
        cargo: cargo.clone(),
        doctests: false,
        packages: Vec::new(),
        junit: None,
    };
    let ready = |plan: TestsPlan, graph: Option<PackageGraph>, affected: bool| {
        Prepared::Run(Box::new(Ready {
            plan,
            graph,
            affected,
            tree: req.tree,
            keep_merged: req.keep_merged.clone(),
            scratch_dir: req.scratch_dir.clone(),
            allow_no_tests: config.allow_no_tests,
            max_target_bytes: config.merged_target_max_mb.saturating_mul(1024 * 1024),
        }))
    };
    if let Some(argv) = command {
        if argv.is_empty() || argv[0].is_empty() {
            return Err(TestsError::EmptyCommand {
                key: key.to_owned(),
            }
            .into());
        }
        if req.partition.is_some() || req.affected {
            return Err(TestsError::PlainCommand {
                key: key.to_owned(),
            }
            .into());
        }
        if let Some(j) = &config.junit {
            let p = Path::new(j);
            if j.is_empty()
                || p.is_absolute()
                || p.components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                return Err(TestsError::Config {
                    key: "junit".to_owned(),
                    message: format!(
                        "{j:?} must be a relative path inside the repository (the file the test command writes)"
                    ),
                }
                .into());
            }
        }
        let plan = TestsPlan {
            runner: Runner::Command(argv.clone()),
            junit: config.junit.as_ref().map(PathBuf::from),
            ..base
        };
        return Ok(ready(plan, None, false));
    }
    if !repo.workdir.join("Cargo.toml").is_file() {
        let why = if other.is_some() {
            let other_key = if req.full { "quick" } else { "full" };
            format!(
                "[verify] {key} is not set in .config/baton.toml (only {other_key} is), so --{key} has no test command"
            )
        } else {
            "not a Cargo workspace and no [verify] quick/full command in .config/baton.toml, so no test command".to_owned()
        };
        return Ok(Prepared::Nothing {
            why,
            allowed: config.allow_no_tests,
        });
    }
    let nextest = match config.runner {
        Some(RunnerChoice::CargoTest) => false,
        Some(RunnerChoice::Nextest) => {
            if !tests_check::nextest_available(&cargo) {
                return Err(TestsError::NoNextestConfigured.into());
            }
            true
        }
        None => tests_check::nextest_available(&cargo),
    };
    if !nextest {
        if req.partition.is_some() {
            return Err(TestsError::NoNextest.into());
        }
        // --affected works with cargo test too: `-p` for each affected package
        let graph = if req.affected {
            Some(tests_check::load_graph(&cargo, &repo.workdir)?)
        } else {
            None
        };
        return Ok(ready(base, graph, req.affected));
    }
    let graph = tests_check::load_graph(&cargo, &repo.workdir)?;
    let filter = (!req.full).then(|| config.smoke.clone());
    if let Some(f) = &filter {
        tests_check::validate_filterset(&graph, f).map_err(|e| TestsError::Config {
            key: "smoke".to_owned(),
            message: e.to_string(),
        })?;
    }
    let has_lib = graph.workspace().iter().any(|p| {
        p.build_targets()
            .any(|t| t.id() == guppy::graph::BuildTargetId::Library)
    });
    let plan = TestsPlan {
        runner: Runner::Nextest,
        filter,
        partition: req.partition.clone(),
        doctests: req.full && has_lib,
        ..base
    };
    Ok(ready(plan, Some(graph), req.affected))
}

fn ms(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn check(status: CheckStatus, started: Instant) -> Check {
    Check {
        name: "tests".to_owned(),
        status,
        duration_ms: ms(started),
        findings: Vec::new(),
        tests: None,
        message: None,
        agents: Vec::new(),
    }
}

/// No tests to run: a failure with a `no_tests` finding, or a skip when that is acceptable.
fn nothing(why: String, allowed: bool, started: Instant) -> Check {
    if allowed {
        let mut c = check(CheckStatus::Skip, started);
        c.message = Some(format!("{why} ([verify] allow_no_tests = true)"));
        return c;
    }
    let mut c = check(CheckStatus::Fail, started);
    c.findings.push(finding(
        "no_tests",
        Severity::Error,
        format!(
            "{why}; nothing was tested. If that is fine, set [verify] allow_no_tests = true in .config/baton.toml"
        ),
    ));
    c.message = Some(why);
    c
}

/// Run the tests step; problems while running become an `error` check, never a panic.
/// Returns the check and the tree that was tested.
pub fn run(
    repo: &RepoPaths,
    prepared: Prepared,
    base: Option<git2::Oid>,
    outcome: Option<&ConflictsOutcome>,
    progress: &dyn Progress,
) -> (Check, Option<TestedTree>) {
    let started = Instant::now();
    let ready = match prepared {
        Prepared::Nothing { why, allowed } => return (nothing(why, allowed, started), None),
        Prepared::Run(r) => *r,
    };
    let Ready {
        mut plan,
        graph,
        affected,
        tree,
        keep_merged,
        scratch_dir,
        allow_no_tests,
        max_target_bytes,
    } = ready;
    if affected {
        let changed = changed_files(repo, base, outcome);
        let selection = graph
            .as_ref()
            .map(|g| affected_packages(g, &repo.workdir, &changed));
        match selection {
            Some(Affected::Packages(pkgs)) if pkgs.is_empty() => {
                let mut c = check(CheckStatus::Skip, started);
                c.message = Some(
                    "--affected: the changes touch no package, so no test is affected".to_owned(),
                );
                return (c, None);
            }
            Some(Affected::Packages(pkgs)) => {
                if plan.runner == Runner::Nextest
                    && let Some(rdeps) = rdeps_filter(&pkgs)
                {
                    plan.filter = Some(match plan.filter.take() {
                        Some(f) => format!("({f}) & ({rdeps})"),
                        None => rdeps,
                    });
                }
                if let Some(g) = &graph {
                    plan.packages = reverse_dependents(g, &pkgs);
                    // `cargo test --doc -p X` needs X to have a library
                    plan.doctests &= g.workspace().iter().any(|p| {
                        plan.packages.iter().any(|n| n == p.name())
                            && p.build_targets()
                                .any(|t| t.id() == guppy::graph::BuildTargetId::Library)
                    });
                }
            }
            Some(Affected::All) | None => {}
        }
    }
    let nextest_scratch = match tempfile::Builder::new().prefix("baton-verify-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            return (
                errored(
                    "tests",
                    format!("cannot create a scratch directory: {e}"),
                    started,
                ),
                None,
            );
        }
    };
    // the tree to test: merged when asked, or by default when the gate has agents with
    // branches of their own
    let has_lines = outcome.is_some_and(|o| {
        !o.lines.is_empty()
            && o.lines
                .iter()
                .all(|l| matches!(l.files, AgentFiles::Line(_)))
    });
    let merged = match tree {
        TestsTree::Merged => true,
        TestsTree::Auto => has_lines,
        TestsTree::InCheckout | TestsTree::Commit(_) => false,
    };
    let mut env: Vec<(String, String)> = Vec::new();
    let mut dir = repo.workdir.clone();
    let mut tested = checkout_tree(repo);
    // holds the scratch directory's lock while the tests run
    let mut held: Option<Scratch> = None;
    let prepared = if let TestsTree::Commit(commit) = tree {
        Some(prepare_commit(
            repo,
            commit,
            &plan,
            &scratch_dir,
            keep_merged.as_deref(),
        ))
    } else if merged {
        let Some(outcome) = outcome.filter(|o| !o.lines.is_empty()) else {
            return (
                nothing(
                    "--merged: there are no agents to merge".to_owned(),
                    allow_no_tests,
                    started,
                ),
                None,
            );
        };
        let Some(base) = base else {
            return (
                errored(
                    "tests",
                    "--merged: HEAD has no commit; pass --base".into(),
                    started,
                ),
                None,
            );
        };
        Some(prepare_merged(
            repo,
            base,
            outcome,
            &plan,
            &scratch_dir,
            keep_merged.as_deref(),
        ))
    } else {
        None
    };
    match prepared {
        None => {}
        Some(Ok(MergedTree::Ready {
            dir: d,
            env: e,
            tested: t,
            scratch,
        })) => {
            dir = d;
            env = e;
            tested = *t;
            held = Some(scratch);
        }
        Some(Ok(MergedTree::NotApplicable)) => {
            // agents from --results share the checkout: it already holds all their work
            progress.note(
                "--merged: the agents from --results share one tree, so the checkout is their merged result",
            );
        }
        Some(Ok(MergedTree::Conflicts(c))) => {
            let mut chk = check(CheckStatus::Fail, started);
            chk.findings = c;
            return (chk, None);
        }
        Some(Err(message)) => return (errored("tests", message, started), None),
    }
    progress.note(&format!("running tests in {}", dir.display()));
    let output = |line: &str| progress.output(line);
    let result = crate::tests_run::run_tests(&plan, &dir, &env, nextest_scratch.path(), &output);
    if let Some(s) = &held
        && s.bound_target(max_target_bytes)
    {
        progress.note(&format!(
            "emptied the merged build directory {}: it had grown past [verify] merged_target_max_mb",
            s.target().display()
        ));
    }
    let mut run = match result {
        Ok(run) => run,
        Err(e) => return (errored("tests", e.to_string(), started), Some(tested)),
    };
    let s = &run.summary;
    let ran = s.passed + s.failed;
    if run.findings.is_empty() && s.counted && ran == 0 {
        let what = match (&s.runner, &s.filter) {
            (Some(r), Some(f)) => format!("0 tests ran (runner {r}, filter {f:?})"),
            (Some(r), None) => format!("0 tests ran (runner {r})"),
            _ => "0 tests ran".to_owned(),
        };
        if plan.partition.is_some() && !allow_no_tests {
            // one shard may be empty; `report merge` judges the whole
            run.findings.push(finding(
                "no_tests",
                Severity::Warning,
                format!("{what} in this shard"),
            ));
        } else if !allow_no_tests {
            run.findings.push(finding(
                "no_tests",
                Severity::Error,
                format!(
                    "{what}; nothing was tested. If that is fine, set [verify] allow_no_tests = true in .config/baton.toml"
                ),
            ));
        }
    }
    // any failed test or failing exit status fails the step, whatever else was parsed
    let status = if s.failed > 0
        || !s.failures.is_empty()
        || s.exit_code.is_some_and(|c| c != 0)
        || run.findings.iter().any(|f| f.severity == Severity::Error)
    {
        CheckStatus::Fail
    } else if run.findings.iter().any(|f| f.severity == Severity::Warning) {
        CheckStatus::Warn
    } else {
        CheckStatus::Pass
    };
    let mut c = check(status, started);
    c.findings = std::mem::take(&mut run.findings);
    c.tests = Some(run.summary);
    (c, Some(tested))
}
