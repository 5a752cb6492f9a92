//! The gate as one library call: [`run`] takes validated, plain-data [`GateOptions`] (what a
//! caller builds without clap: checks, mode, base, where the agents come from, strict, the
//! tests' tree, partition, report path) and returns the [`VerifyReport`]. `baton verify` and
//! the run loop both call it; they keep flag parsing and printing. Progress (notes, the test
//! command's output) goes through the [`Progress`] trait: this library never prints.
//!
//! Every input is validated before any check runs, so bad input is an `Err` with nothing
//! built or written.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use baton_git::RepoPaths;
use baton_report::{Check, CheckStatus, Severity, VerifyReport, exit};

use crate::VerifyConfig;
use crate::agents::AgentSpec;
use crate::conflicts::{ConflictsOutcome, check_conflicts};
use crate::findings;
use crate::git_check::{GitCheckOptions, check_git};
use crate::report;

mod affected;
mod error;
mod sources;
mod tested_tree;
mod tests_step;

pub use error::GateError;
pub use sources::{AgentSource, ListedAgent};

/// One of the gate's checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckKind {
    Git,
    Conflicts,
    Tests,
}

impl CheckKind {
    pub const ALL: [CheckKind; 3] = [CheckKind::Git, CheckKind::Conflicts, CheckKind::Tests];
}

/// Smoke selection or every test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Quick,
    Full,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Quick => "quick",
            Mode::Full => "full",
        }
    }
}

/// Which tree the tests step tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TestsTree {
    /// The agents' merged result when the gate has agents with lines of work of their own,
    /// else the checkout.
    #[default]
    Auto,
    /// The checkout as it is.
    InCheckout,
    /// The agents' work merged onto the base, in a scratch directory.
    Merged,
    /// This commit's tree (e.g. a run's integration candidate, the merge it already made),
    /// laid out in the scratch directory.
    Commit(git2::Oid),
}

/// Everything the gate needs, validated by [`run`] before any check runs. Build it with
/// [`GateOptions::new`] and set the fields you need (new fields get defaults, so callers keep
/// compiling as the gate grows).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GateOptions {
    pub repo: RepoPaths,
    /// The `[verify]` section of the repository's config.
    pub config: VerifyConfig,
    /// The checks to run (default: all).
    pub checks: Vec<CheckKind>,
    pub mode: Mode,
    /// The commit agents' changes are measured from (a rev; default: HEAD).
    pub base: Option<String>,
    /// Where the agents come from (default: the linked worktrees).
    pub agents: AgentSource,
    /// Warnings fail the gate too.
    pub strict: bool,
    pub tests_tree: TestsTree,
    /// Test the merged tree in this new (or empty) directory and keep it there.
    pub keep_merged: Option<PathBuf>,
    /// This repository's stable scratch directory for merged builds (default:
    /// `<git common dir>/baton/merged`); reused run after run so builds are incremental.
    pub scratch_dir: Option<PathBuf>,
    /// One shard of the tests: `hash:M/N` or `count:M/N`.
    pub partition: Option<String>,
    /// Test only the packages the agents' changes touch and their reverse dependencies.
    pub affected: bool,
    /// Also write the JSON report here (atomically).
    pub report: Option<PathBuf>,
    /// The cargo program (the CLI passes `$CARGO` when set).
    pub cargo: PathBuf,
}

impl GateOptions {
    pub fn new(repo: RepoPaths) -> Self {
        GateOptions {
            repo,
            config: VerifyConfig::default(),
            checks: CheckKind::ALL.to_vec(),
            mode: Mode::Quick,
            base: None,
            agents: AgentSource::Worktrees,
            strict: false,
            tests_tree: TestsTree::Auto,
            keep_merged: None,
            scratch_dir: None,
            partition: None,
            affected: false,
            report: None,
            cargo: PathBuf::from("cargo"),
        }
    }

    fn selected(&self, c: CheckKind) -> bool {
        self.checks.contains(&c)
    }
}

/// Where the gate reports progress; every method defaults to doing nothing.
pub trait Progress: Sync {
    /// A note for a person ("running tests in DIR").
    fn note(&self, _message: &str) {}
    /// One line of the test command's output (stdout or stderr).
    fn output(&self, _line: &str) {}
}

/// Progress that goes nowhere.
pub struct NoProgress;

impl Progress for NoProgress {}

/// Run the gate: validate every option, run the selected checks, assemble the report (and
/// write it to `opts.report`). A check that cannot run is an `error` check in the report,
/// not an `Err`; `Err` is bad input (nothing ran) or a report that cannot be written.
pub fn run(opts: &GateOptions, progress: &dyn Progress) -> Result<VerifyReport, GateError> {
    let started = Instant::now();
    let repo_paths = &opts.repo;
    let config = &opts.config;
    let repo = repo_paths.open()?;
    let head = repo.head().ok().and_then(|h| h.target());

    // --- validate every input before anything runs -------------------------------------
    let base = match &opts.base {
        Some(rev) => Some(baton_git::resolve_commit(&repo, rev).map_err(GateError::Base)?),
        // the target agents merge into: the main checkout's HEAD, not the HEAD of the worktree
        // the gate happens to run in (an agent's own commits would vanish from its changes)
        None => baton_git::worktrees::main_head(&repo)?,
    };
    if let Some(p) = &opts.partition {
        // validated whatever the checks: `report merge` relies on it
        crate::tests_check::parse_partition(p)?;
    }
    let tests = opts.selected(CheckKind::Tests);
    if tests && let TestsTree::Commit(commit) = opts.tests_tree {
        repo.find_commit(commit)
            .map_err(|e| GateError::TestsCommit {
                commit: commit.to_string(),
                reason: e.message().to_owned(),
            })?;
    }
    // the tests need the agents to test their merged result or to know what they changed
    let own_tree = matches!(
        opts.tests_tree,
        TestsTree::InCheckout | TestsTree::Commit(_)
    );
    let needs_agents =
        opts.selected(CheckKind::Conflicts) || (tests && (!own_tree || opts.affected));
    let (agents, not_started): (Vec<AgentSpec>, Vec<String>) = if needs_agents {
        sources::resolve(&repo, &opts.agents)?
    } else {
        (Vec::new(), Vec::new())
    };
    let tests_plan = if opts.selected(CheckKind::Tests) {
        Some(tests_step::prepare(
            repo_paths,
            config,
            &opts.cargo,
            tests_step::TestsRequest {
                full: opts.mode == Mode::Full,
                partition: opts.partition.clone(),
                affected: opts.affected,
                tree: opts.tests_tree,
                keep_merged: opts.keep_merged.clone(),
                scratch_dir: opts
                    .scratch_dir
                    .clone()
                    .unwrap_or_else(|| repo_paths.common_dir.join("baton").join("merged")),
            },
        )?)
    } else {
        None
    };

    // --- run the checks ------------------------------------------------------------------
    let mut checks = Vec::new();
    if opts.selected(CheckKind::Git) {
        let t = Instant::now();
        let git_opts = GitCheckOptions {
            now: SystemTime::now(),
            stale_lock_after: Duration::from_secs(config.stale_lock_secs),
            base,
            full: opts.mode == Mode::Full,
        };
        let check = match check_git(repo_paths, &git_opts) {
            Ok(found) => check_from("git", findings::status_of(&found, opts.strict), found, t),
            Err(e) => errored("git", e.to_string(), t),
        };
        checks.push(check);
    }
    let mut outcome: Option<ConflictsOutcome> = None;
    if needs_agents {
        let t = Instant::now();
        let check = if agents.is_empty() {
            let mut c = check_from("conflicts", CheckStatus::Skip, Vec::new(), t);
            c.message = Some(match opts.agents {
                AgentSource::Worktrees => {
                    "no agents to compare: the repository has no linked worktrees".to_owned()
                }
                _ => "no agents to compare".to_owned(),
            });
            c
        } else {
            match (
                base,
                check_conflicts(repo_paths, base.unwrap_or(git2::Oid::zero()), agents),
            ) {
                (None, _) => errored(
                    "conflicts",
                    "HEAD has no commit yet; pass --base REF".to_owned(),
                    t,
                ),
                (_, Ok(o)) => {
                    let mut found = o.findings.clone();
                    for id in &not_started {
                        found.push(findings::finding(
                            "agent_not_started",
                            Severity::Info,
                            format!("agent {id} has no branch yet; nothing to compare"),
                        ));
                    }
                    let mut c = check_from(
                        "conflicts",
                        findings::status_of(&found, opts.strict),
                        found,
                        t,
                    );
                    c.agents = o.agent_summaries();
                    outcome = Some(o);
                    c
                }
                (_, Err(e)) if e.is_bad_input() => return Err(e.into()),
                (_, Err(e)) => errored("conflicts", e.to_string(), t),
            }
        };
        if opts.selected(CheckKind::Conflicts) {
            checks.push(check);
        }
    }
    let mut tested = None;
    if let Some(plan) = tests_plan {
        let (check, tree) = tests_step::run(repo_paths, plan, base, outcome.as_ref(), progress);
        checks.push(check);
        tested = tree;
    }

    // --- report ----------------------------------------------------------------------------
    let mut rep = VerifyReport {
        schema_version: VerifyReport::SCHEMA_VERSION,
        ok: true,
        mode: opts.mode.as_str().to_owned(),
        repo: repo_paths.workdir.display().to_string(),
        head: head.map(|o| o.to_string()),
        base: base.map(|o| o.to_string()),
        duration_ms: ms(started),
        checks,
        strict: opts.strict,
        merged: tested.as_ref().is_some_and(|t| t.kind == "merged"),
        tested,
        partition: opts.partition.clone(),
        shards: Vec::new(),
        totals: Default::default(),
    };
    report::finish(&mut rep);
    if let Some(path) = &opts.report {
        let mut text = serde_json::to_vec_pretty(&rep).map_err(|e| GateError::Report {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        text.push(b'\n');
        baton_store::write_atomic(path, &text).map_err(|e| GateError::Report {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    }
    Ok(rep)
}

/// The exit code a report stands for: a check that could not run (git failing, a tool
/// missing) is an environment error even though the report was written; otherwise 0 when
/// the gate passed, 1 when it failed.
pub fn exit_code(rep: &VerifyReport) -> u8 {
    if rep.checks.iter().any(|c| c.status == CheckStatus::Error) {
        exit::ENVIRONMENT
    } else if rep.ok {
        exit::OK
    } else {
        exit::GATE_FAILED
    }
}

fn ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn check_from(
    name: &str,
    status: CheckStatus,
    found: Vec<baton_report::Finding>,
    started: Instant,
) -> Check {
    Check {
        name: name.to_owned(),
        status,
        duration_ms: ms(started),
        findings: found,
        tests: None,
        message: None,
        agents: Vec::new(),
    }
}

fn errored(name: &str, message: String, started: Instant) -> Check {
    let mut c = check_from(name, CheckStatus::Error, Vec::new(), started);
    c.message = Some(message);
    c
}
