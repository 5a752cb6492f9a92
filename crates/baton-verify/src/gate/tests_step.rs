//! The gate's tests step: decide the runner and selection up front (so a bad filterset or
//! partition is an error before anything runs), then run it in the checkout or, merged, in a
//! scratch copy of the batch's merged result.

use std::path::{Path, PathBuf};
use std::time::Instant;

use baton_git::RepoPaths;
use baton_report::{Check, CheckStatus, Severity};
use guppy::graph::PackageGraph;

use super::{GateError, Progress, errored};
use crate::VerifyConfig;
use crate::conflicts::ConflictsOutcome;
use crate::errors::TestsError;
use crate::findings::finding;
use crate::merged::{Merged, merge_lines};
use crate::pairs::AgentFiles;
use crate::tests_check::{self, Affected, Runner, TestsPlan, affected_packages, rdeps_filter};

/// What the user asked of the tests check.
pub struct TestsRequest {
    pub full: bool,
    pub partition: Option<String>,
    pub affected: bool,
    pub merged: bool,
}

/// The tests step, validated and ready to run.
pub enum Prepared {
    Skip(String),
    Run {
        plan: TestsPlan,
        graph: Option<Box<PackageGraph>>,
        affected: bool,
        merged: bool,
    },
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
    let cargo: PathBuf = cargo.to_owned();
    let (key, command) = if req.full {
        ("full", &config.full)
    } else {
        ("quick", &config.quick)
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
        return Ok(Prepared::Run {
            plan: TestsPlan {
                runner: Runner::Command(argv.clone()),
                full: req.full,
                filter: None,
                partition: None,
                cargo,
            },
            graph: None,
            affected: false,
            merged: req.merged,
        });
    }
    if !repo.workdir.join("Cargo.toml").is_file() {
        return Ok(Prepared::Skip(
            "not a Cargo workspace and no [verify] quick/full command in .config/baton.toml"
                .to_owned(),
        ));
    }
    if !tests_check::nextest_available(&cargo) {
        if req.partition.is_some() || req.affected {
            return Err(TestsError::NoNextest.into());
        }
        return Ok(Prepared::Run {
            plan: TestsPlan {
                runner: Runner::CargoTest,
                full: req.full,
                filter: None,
                partition: None,
                cargo,
            },
            graph: None,
            affected: false,
            merged: req.merged,
        });
    }
    let graph = tests_check::load_graph(&cargo, &repo.workdir)?;
    let filter = (!req.full).then(|| config.smoke.clone());
    if let Some(f) = &filter {
        tests_check::validate_filterset(&graph, f).map_err(|e| TestsError::Config {
            key: "smoke".to_owned(),
            message: e.to_string(),
        })?;
    }
    Ok(Prepared::Run {
        plan: TestsPlan {
            runner: Runner::Nextest,
            full: req.full,
            filter,
            partition: req.partition,
            cargo,
        },
        graph: Some(Box::new(graph)),
        affected: req.affected,
        merged: req.merged,
    })
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

fn skipped(message: String, started: Instant) -> Check {
    let mut c = check(CheckStatus::Skip, started);
    c.message = Some(message);
    c
}

/// Run the tests step; problems while running become an `error` check, never a panic.
pub fn run(
    repo: &RepoPaths,
    prepared: Prepared,
    base: Option<git2::Oid>,
    outcome: Option<&ConflictsOutcome>,
    progress: &dyn Progress,
) -> Check {
    let started = Instant::now();
    let (mut plan, graph, affected, merged) = match prepared {
        Prepared::Skip(why) => return skipped(why, started),
        Prepared::Run {
            plan,
            graph,
            affected,
            merged,
        } => (plan, graph, affected, merged),
    };
    if affected {
        let changed = changed_files(repo, base, outcome);
        let selection = graph
            .as_deref()
            .map(|g| affected_packages(g, &repo.workdir, &changed));
        match selection {
            Some(Affected::Packages(pkgs)) => match rdeps_filter(&pkgs) {
                None => {
                    return skipped(
                        "--affected: the changes touch no package, so no test is affected"
                            .to_owned(),
                        started,
                    );
                }
                Some(rdeps) => {
                    plan.filter = Some(match plan.filter.take() {
                        Some(f) => format!("({f}) & ({rdeps})"),
                        None => rdeps,
                    });
                }
            },
            Some(Affected::All) | None => {}
        }
    }
    let scratch = match tempfile::Builder::new().prefix("baton-verify-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            return errored(
                "tests",
                format!("cannot create a scratch directory: {e}"),
                started,
            );
        }
    };
    let mut env: Vec<(String, String)> = Vec::new();
    let mut dir = repo.workdir.clone();
    // keeps the merged checkout (and its in-memory objects) alive while the tests run
    let _merged_dir;
    if merged {
        let Some(outcome) = outcome else {
            return skipped("--merged: no agents to merge".to_owned(), started);
        };
        let Some(base) = base else {
            return errored(
                "tests",
                "--merged: HEAD has no commit; pass --base".into(),
                started,
            );
        };
        match merge_lines(repo, base, &outcome.lines) {
            Err(e) => return errored("tests", e.to_string(), started),
            Ok(Merged::NotApplicable) => {
                return skipped(
                    "--merged: agents from --results share one tree; there is nothing to merge"
                        .to_owned(),
                    started,
                );
            }
            Ok(Merged::Conflicts(paths)) => {
                let mut c = check(CheckStatus::Fail, started);
                for (p, agents) in paths {
                    let mut f = finding(
                        "merge_conflict",
                        Severity::Error,
                        format!(
                            "{p}: the agents' changes do not merge ({}); the merged result cannot be tested",
                            agents.join(", ")
                        ),
                    );
                    f.path = Some(p);
                    f.agents = agents;
                    c.findings.push(f);
                }
                return c;
            }
            Ok(Merged::Clean { merger, index }) => {
                let target = scratch.path().join("merged");
                if let Err(e) = std::fs::create_dir_all(&target)
                    .map_err(|e| e.to_string())
                    .and_then(|()| {
                        baton_git::export::export_index(merger.repo(), &index, &target)
                            .map_err(|e| e.to_string())
                    })
                {
                    return errored("tests", format!("--merged: {e}"), started);
                }
                // a target dir of its own beside the user's, so dependencies build once and
                // the user's incremental state is left alone
                if matches!(plan.runner, Runner::Nextest | Runner::CargoTest) {
                    env.push((
                        "CARGO_TARGET_DIR".to_owned(),
                        repo.main_workdir()
                            .join("target")
                            .join("baton-merged")
                            .display()
                            .to_string(),
                    ));
                }
                dir = target;
                _merged_dir = merger;
            }
        }
    }
    progress.note(&format!("running tests in {}", dir.display()));
    let output = |line: &str| progress.output(line);
    match crate::tests_run::run_tests(&plan, &dir, &env, scratch.path(), &output) {
        Ok(mut summary) => {
            if merged {
                summary.dir = Some("(merged result, removed afterwards)".to_owned());
            }
            let status = if summary.failed > 0 || summary.exit_code.is_some_and(|c| c != 0) {
                CheckStatus::Fail
            } else {
                CheckStatus::Pass
            };
            let mut c = check(status, started);
            c.tests = Some(summary);
            c
        }
        Err(e) => errored("tests", e.to_string(), started),
    }
}

/// The files the batch changed: the agents' files, or (without agents) what this checkout
/// changed since `base`, committed or not.
fn changed_files(
    repo: &RepoPaths,
    base: Option<git2::Oid>,
    outcome: Option<&ConflictsOutcome>,
) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    if let Some(o) = outcome.filter(|o| !o.lines.is_empty()) {
        for l in &o.lines {
            match &l.files {
                AgentFiles::Line(m) => {
                    for c in m.values() {
                        out.extend(c.touched().map(str::to_owned));
                    }
                }
                AgentFiles::Declared(v) => out.extend(v.iter().cloned()),
            }
        }
        return out.into_iter().collect();
    }
    if let Ok(r) = repo.open() {
        let head = r.head().ok().and_then(|h| h.target());
        if let Ok(changes) =
            baton_git::changes::line_changes(&r, base, head, Some(Path::new(&repo.workdir)))
        {
            for c in changes.values() {
                out.extend(c.touched().map(str::to_owned));
            }
        }
    }
    out.into_iter().collect()
}
