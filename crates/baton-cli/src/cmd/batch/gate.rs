//! The batch loop's gate as the CLI provides it: the git and conflicts checks of `baton
//! verify` over a batch's agents, and the tests (the `[verify]` command, or cargo-nextest /
//! `cargo test` in Cargo workspaces) in a directory holding the merged tree.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use baton_git::RepoPaths;
use baton_plan::{BatchGate, GateCheck};
use baton_report::{Check, CheckStatus, VerifyReport};
use baton_run::integrate::{Gate, GateRequest};
use baton_verify::VerifyConfig;
use baton_verify::agents::AgentSpec;
use baton_verify::conflicts::check_conflicts;
use baton_verify::findings;
use baton_verify::git_check::{GitCheckOptions, check_git};
use baton_verify::tests_check::{self, Runner, TestsPlan};
use baton_verify::tests_run::Sink;

pub struct CliGate {
    pub repo: RepoPaths,
    pub config: VerifyConfig,
    /// The cargo program (from `$CARGO`, read by the CLI).
    pub cargo: PathBuf,
    /// Show the tests' output on stderr.
    pub show_output: bool,
}

fn ms(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn check(name: &str, status: CheckStatus, t: Instant) -> Check {
    Check {
        name: name.to_owned(),
        status,
        duration_ms: ms(t),
        findings: Vec::new(),
        tests: None,
        message: None,
        agents: Vec::new(),
    }
}

impl Gate for CliGate {
    fn check(&self, req: &GateRequest<'_>) -> Result<VerifyReport, String> {
        let mut checks = Vec::new();
        let strict = req.settings.strict;
        if req.settings.runs(GateCheck::Git) {
            let t = Instant::now();
            let opts = GitCheckOptions {
                now: SystemTime::now(),
                stale_lock_after: Duration::from_secs(self.config.stale_lock_secs),
                base: Some(req.base),
                full: false,
            };
            let found = check_git(&self.repo, &opts).map_err(|e| e.to_string())?;
            let mut c = check("git", findings::status_of(&found, strict), t);
            c.findings = found;
            checks.push(c);
        }
        if req.settings.runs(GateCheck::Conflicts) {
            let t = Instant::now();
            let repo = self.repo.open().map_err(|e| e.to_string())?;
            let specs: Vec<AgentSpec> = req
                .agents
                .iter()
                .map(|a| AgentSpec {
                    id: a.id.to_string(),
                    branch: Some(a.branch.clone()),
                    tip: repo
                        .find_reference(&format!("refs/heads/{}", a.branch))
                        .ok()
                        .and_then(|r| r.target()),
                    worktree: a.worktree.clone().filter(|p| p.is_dir()),
                    scope: (!a.scope.is_empty()).then(|| a.scope.clone()),
                    declared_files: None,
                })
                .collect();
            let outcome =
                check_conflicts(&self.repo, req.base, specs).map_err(|e| e.to_string())?;
            let mut c = check(
                "conflicts",
                findings::status_of(&outcome.findings, strict),
                t,
            );
            c.agents = outcome.agent_summaries();
            c.findings = outcome.findings;
            checks.push(c);
        }
        let mut report = VerifyReport {
            schema_version: VerifyReport::SCHEMA_VERSION,
            ok: true,
            mode: if req.settings.full { "full" } else { "quick" }.to_owned(),
            repo: self.repo.workdir.display().to_string(),
            head: Some(req.base.to_string()),
            base: Some(req.base.to_string()),
            duration_ms: 0,
            checks,
            strict,
            merged: false,
            tested: None,
            partition: None,
            shards: Vec::new(),
            totals: Default::default(),
        };
        baton_verify::report::finish(&mut report);
        Ok(report)
    }

    fn run_tests(&self, dir: &Path, settings: &BatchGate) -> Result<Check, String> {
        let t = Instant::now();
        let configured = if settings.full {
            &self.config.full
        } else {
            &self.config.quick
        };
        let runner = match configured {
            Some(argv) if !argv.is_empty() && !argv[0].is_empty() => Runner::Command(argv.clone()),
            Some(_) => return Err("[verify] quick/full in .config/baton.toml is empty".into()),
            None if dir.join("Cargo.toml").is_file() => {
                if tests_check::nextest_available(&self.cargo) {
                    Runner::Nextest
                } else {
                    Runner::CargoTest
                }
            }
            None => {
                let mut c = check("tests", CheckStatus::Skip, t);
                c.message = Some(
                    "not a Cargo workspace and no [verify] quick/full command in .config/baton.toml"
                        .to_owned(),
                );
                return Ok(c);
            }
        };
        let filter =
            (runner == Runner::Nextest && !settings.full).then(|| self.config.smoke.clone());
        let plan = TestsPlan {
            runner,
            full: settings.full,
            filter,
            partition: None,
            cargo: self.cargo.clone(),
            doctests: false,
            packages: Vec::new(),
            junit: self.config.junit.as_ref().map(PathBuf::from),
        };
        let show = self.show_output;
        let print = move |line: &str| {
            if show {
                eprintln!("{line}");
            }
        };
        let sink: Sink<'_> = &print;
        let scratch = tempfile::Builder::new()
            .prefix("baton-gate-")
            .tempdir()
            .map_err(|e| format!("cannot create a scratch directory: {e}"))?;
        // cargo builds of the merged tree share a target dir beside the user's
        let env: Vec<(String, String)> =
            if matches!(plan.runner, Runner::Nextest | Runner::CargoTest) {
                vec![(
                    "CARGO_TARGET_DIR".to_owned(),
                    self.repo
                        .main_workdir()
                        .join("target")
                        .join("baton-merged")
                        .display()
                        .to_string(),
                )]
            } else {
                Vec::new()
            };
        let run = baton_verify::tests_run::run_tests(&plan, dir, &env, scratch.path(), sink)
            .map_err(|e| e.to_string())?;
        let summary = run.summary;
        let failed = summary.failed > 0 || summary.exit_code.is_some_and(|c| c != 0);
        let mut c = check(
            "tests",
            if failed {
                CheckStatus::Fail
            } else {
                CheckStatus::Pass
            },
            t,
        );
        c.tests = Some(summary);
        c.findings = run.findings;
        Ok(c)
    }
}
