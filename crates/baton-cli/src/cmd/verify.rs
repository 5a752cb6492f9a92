//! `baton verify`: the gate between batches. Gathers inputs (flags, config, environment),
//! validates all of them before anything runs, runs the selected checks from `baton-verify`,
//! and writes the report in the requested formats.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use baton_report::{Check, CheckStatus, Severity, VerifyReport, exit};
use baton_verify::agents::{self, AgentSpec};
use baton_verify::conflicts::{ConflictsOutcome, check_conflicts};
use baton_verify::git_check::{GitCheckOptions, check_git};
use baton_verify::{findings, render, report};
use clap::{Args, ValueEnum};

use crate::ctx::Ctx;
use crate::error::{CliError, CliResult};

mod human;
pub(crate) mod shards;
mod test_step;

pub(super) use human::print_human;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Run the smoke selection of tests (the default).
    #[arg(long, conflicts_with = "full")]
    quick: bool,
    /// Run every test.
    #[arg(long)]
    full: bool,
    /// Run only these checks (repeat or separate with commas; default: all).
    #[arg(
        long = "check",
        value_enum,
        value_delimiter = ',',
        value_name = "CHECK"
    )]
    checks: Vec<CheckName>,
    /// Merge all agents' branches in memory and run the tests on the result, in a scratch
    /// directory outside the checkout.
    #[arg(long)]
    merged: bool,
    /// The commit agents' changes are measured from (default: HEAD).
    #[arg(long, value_name = "REF")]
    base: Option<String>,
    /// Agents are the local branches matching GLOB (`*` stays in one path segment).
    #[arg(long, value_name = "GLOB", conflicts_with_all = ["plan", "results"])]
    branches: Option<String>,
    /// Agents are those of a stored plan (id, unique suffix, or `latest`).
    #[arg(long, value_name = "ID", conflicts_with = "results")]
    plan: Option<String>,
    /// Agents share one tree; FILE is a JSON object mapping agent id to the files it wrote.
    #[arg(long, value_name = "FILE")]
    results: Option<PathBuf>,
    /// Warnings fail the gate too.
    #[arg(long)]
    strict: bool,
    /// Also write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Output format on stdout (`--json` is `--format json`).
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<Format>,
    /// Run one shard of the tests: `hash:M/N` (passed to nextest).
    #[arg(long, value_name = "hash:M/N")]
    partition: Option<String>,
    /// Test only the packages the agents' changes touch and their reverse dependencies.
    #[arg(long)]
    affected: bool,
    /// Run the tests as N shards (nextest partitions `hash:K/N`) and merge their reports.
    #[arg(long, value_name = "N")]
    shards: Option<u32>,
    /// Where the shards run: local processes, or one Slurm array job (default: `[executor]
    /// kind` of .config/baton.toml).
    #[arg(long, value_enum, value_name = "KIND")]
    executor: Option<shards::ExecutorArg>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CheckName {
    Git,
    Conflicts,
    Tests,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Human,
    Json,
    Github,
    Junit,
}

/// Where the agents of the conflicts check come from.
enum AgentSource {
    Worktrees,
    Branches(String),
    Plan(String),
    Results(PathBuf),
}

pub fn run(ctx: &Ctx, args: VerifyArgs) -> CliResult {
    let started = Instant::now();
    // verify only reads objects: like git (and unlike libgit2's default), trust the object
    // store instead of re-hashing every object read, which is most of a tree diff's cost
    baton_git::status::tune_for_reading();
    let format = match (args.format, ctx.json) {
        (Some(f), _) => f,
        (None, true) => Format::Json,
        (None, false) => Format::Human,
    };
    let selected = |c: CheckName| args.checks.is_empty() || args.checks.contains(&c);
    let repo_paths = ctx.repo()?.clone();
    let config = ctx.config()?.verify.clone();
    let repo = repo_paths.open()?;
    let head = repo.head().ok().and_then(|h| h.target());

    // --- validate every input before anything runs -------------------------------------
    let base = match &args.base {
        Some(rev) => Some(
            baton_git::resolve_commit(&repo, rev)
                .map_err(|e| CliError::input(format!("--base: {e}")))?,
        ),
        None => head,
    };
    let source = match (&args.branches, &args.plan, &args.results) {
        (Some(g), _, _) => AgentSource::Branches(g.clone()),
        (_, Some(p), _) => AgentSource::Plan(p.clone()),
        (_, _, Some(f)) => AgentSource::Results(f.clone()),
        _ => AgentSource::Worktrees,
    };
    let needs_agents = selected(CheckName::Conflicts) || args.merged;
    let (agents, not_started) = if needs_agents {
        resolve_agents(ctx, &repo, &source)?
    } else {
        (Vec::new(), Vec::new())
    };
    let sharding = shards::validate(
        ctx,
        args.shards,
        args.executor,
        &[
            ("--partition", args.partition.is_some()),
            ("--merged", args.merged),
            ("--affected", args.affected),
        ],
    )?;
    let tests_plan = if selected(CheckName::Tests) {
        Some(test_step::prepare(
            ctx,
            &repo_paths,
            &config,
            test_step::TestsRequest {
                full: args.full,
                // sharding needs nextest's partitions: validate as the first shard
                partition: args
                    .partition
                    .clone()
                    .or_else(|| sharding.as_ref().map(|s| format!("hash:1/{}", s.shards))),
                affected: args.affected,
                merged: args.merged,
            },
        )?)
    } else {
        None
    };

    // --- run the checks ------------------------------------------------------------------
    let mut checks = Vec::new();
    if selected(CheckName::Git) {
        let t = Instant::now();
        let opts = GitCheckOptions {
            now: SystemTime::now(),
            stale_lock_after: Duration::from_secs(config.stale_lock_secs),
        };
        let check = match check_git(&repo_paths, &opts) {
            Ok(found) => check_from("git", findings::status_of(&found, args.strict), found, t),
            Err(e) => errored("git", e.to_string(), t),
        };
        checks.push(check);
    }
    let mut outcome: Option<ConflictsOutcome> = None;
    if needs_agents {
        let t = Instant::now();
        let check = if agents.is_empty() {
            let mut c = check_from("conflicts", CheckStatus::Skip, Vec::new(), t);
            c.message = Some(match source {
                AgentSource::Worktrees => {
                    "no agents to compare: the repository has no linked worktrees".to_owned()
                }
                _ => "no agents to compare".to_owned(),
            });
            c
        } else {
            match (
                base,
                check_conflicts(&repo_paths, base.unwrap_or(git2::Oid::zero()), agents),
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
                        findings::status_of(&found, args.strict),
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
        if selected(CheckName::Conflicts) {
            checks.push(check);
        }
    }
    if let Some(plan) = tests_plan {
        checks.push(match &sharding {
            Some(s) if matches!(plan, test_step::Prepared::Run { .. }) => {
                shards::run(ctx, &repo_paths, args.full, s)?
            }
            _ => test_step::run(ctx, &repo_paths, plan, base, outcome.as_ref()),
        });
    }

    // --- report ----------------------------------------------------------------------------
    let mut rep = VerifyReport {
        schema_version: VerifyReport::SCHEMA_VERSION,
        ok: true,
        mode: if args.full { "full" } else { "quick" }.to_owned(),
        repo: repo_paths.workdir.display().to_string(),
        head: head.map(|o| o.to_string()),
        base: base.map(|o| o.to_string()),
        duration_ms: ms(started),
        checks,
        strict: args.strict,
        merged: args.merged,
        totals: Default::default(),
    };
    report::finish(&mut rep);
    if let Some(path) = &args.report {
        write_report(path, &rep)?;
    }
    match format {
        Format::Json => ctx.print_json(&rep)?,
        Format::Human => print_human(ctx, &rep),
        Format::Github => {
            print!("{}", render::github_annotations(&rep));
            print_human(ctx, &rep);
            if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty())
            {
                append(&PathBuf::from(summary), &render::markdown_summary(&rep))?;
            }
        }
        Format::Junit => print!("{}", render::junit(&rep)),
    }
    // a check that could not run (git failing, a tool missing) is an environment error, even
    // though the report was written
    let errored = rep.checks.iter().any(|c| c.status == CheckStatus::Error);
    Ok(if errored {
        exit::ENVIRONMENT
    } else if rep.ok {
        exit::OK
    } else {
        exit::GATE_FAILED
    })
}

fn resolve_agents(
    ctx: &Ctx,
    repo: &git2::Repository,
    source: &AgentSource,
) -> CliResult<(Vec<AgentSpec>, Vec<String>)> {
    let input = CliError::from;
    match source {
        AgentSource::Worktrees => Ok((agents::from_worktrees(repo)?, Vec::new())),
        AgentSource::Branches(glob) => Ok((
            agents::from_branches(repo, glob).map_err(input)?,
            Vec::new(),
        )),
        AgentSource::Results(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::input(format!("results file {}: {e}", path.display())))?;
            Ok((
                agents::from_results(path, &text).map_err(input)?,
                Vec::new(),
            ))
        }
        AgentSource::Plan(given) => {
            let dir = ctx.state_dir()?;
            let id = baton_plan::store::resolve_plan_id(&dir, given)?;
            let plan = baton_plan::store::load_stored(&dir, &id)?;
            let exec_path = dir.execution(id.as_str());
            let execution: Option<baton_plan::Execution> = if exec_path.exists() {
                Some(baton_store::read_versioned(&exec_path)?)
            } else {
                None
            };
            let (specs, missing) = agents::from_plan(repo, &id, &plan, execution.as_ref())?;
            Ok((specs, missing))
        }
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

pub(super) fn errored(name: &str, message: String, started: Instant) -> Check {
    let mut c = check_from(name, CheckStatus::Error, Vec::new(), started);
    c.message = Some(message);
    c
}

fn write_report(path: &std::path::Path, rep: &VerifyReport) -> CliResult<()> {
    let mut text = serde_json::to_vec_pretty(rep)
        .map_err(|e| CliError::env(format!("cannot serialize the report: {e}")))?;
    text.push(b'\n');
    baton_store::write_atomic(path, &text)?;
    Ok(())
}

fn append(path: &std::path::Path, text: &str) -> CliResult<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| CliError::env(format!("cannot write {}: {e}", path.display())))?;
    f.write_all(text.as_bytes())
        .map_err(|e| CliError::env(format!("cannot write {}: {e}", path.display())))
}
