//! `baton verify`: the gate between batches. Gathers inputs (flags, config, environment)
//! into `baton_verify::gate::GateOptions`, runs the gate (which validates everything before
//! any check runs), and prints the report in the requested format.

use std::path::PathBuf;

use baton_verify::gate::{self, AgentSource, CheckKind, GateOptions, Mode, Progress, TestsTree};
use baton_verify::render;
use clap::{Args, ValueEnum};

use crate::ctx::Ctx;
use crate::error::{CliError, CliResult};

mod human;
pub(crate) mod shards;

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
    /// Run the tests on the agents' work merged in memory, in a scratch directory outside the
    /// checkout (the default when the gate has agents with branches).
    #[arg(long, conflicts_with = "in_checkout")]
    merged: bool,
    /// Run the tests in the checkout as it is, even when the gate has agents.
    #[arg(long)]
    in_checkout: bool,
    /// Test the merged result in DIR (new or empty) and keep it there to look at.
    #[arg(long, value_name = "DIR", conflicts_with = "in_checkout")]
    keep_merged: Option<PathBuf>,
    /// The commit agents' changes are measured from and merged into (default: the main
    /// checkout's HEAD, wherever verify runs from).
    #[arg(long, value_name = "REF")]
    base: Option<String>,
    /// Agents are the local branches matching GLOB (`*` stays in one path segment).
    #[arg(long, value_name = "GLOB", conflicts_with_all = ["plan", "results"])]
    branches: Option<String>,
    /// Agents are those of a stored plan (id, unique suffix, or `latest`).
    #[arg(long, value_name = "ID", conflicts_with = "results")]
    plan: Option<String>,
    /// Only this batch of --plan: its agents' branches, measured from the plan's integration
    /// branch (unless --base); the verdict is recorded in the execution and the metrics.
    #[arg(long, value_name = "BATCH", requires = "plan")]
    batch: Option<String>,
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

/// The gate's progress on the terminal: notes and the test command's output on stderr
/// (also under `--json`, whose stdout stays the report; nothing under `-q`).
struct TerminalProgress {
    quiet: bool,
}

impl Progress for TerminalProgress {
    fn note(&self, message: &str) {
        if !self.quiet {
            use std::io::Write;
            let _ = writeln!(std::io::stderr().lock(), "{message}");
        }
    }
    fn output(&self, line: &str) {
        if !self.quiet {
            use std::io::Write;
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
    }
}

pub fn run(ctx: &Ctx, args: VerifyArgs) -> CliResult {
    // verify only reads objects: like git (and unlike libgit2's default), trust the object
    // store instead of re-hashing every object read, which is most of a tree diff's cost
    baton_git::status::tune_for_reading();
    let format = match (args.format, ctx.json) {
        (Some(f), true) if f != Format::Json => {
            return Err(CliError::input(format!(
                "--json and --format {} contradict each other; pass one of them",
                f.to_possible_value()
                    .map(|v| v.get_name().to_owned())
                    .unwrap_or_default()
            )));
        }
        (Some(f), _) => f,
        (None, true) => Format::Json,
        (None, false) => Format::Human,
    };
    let sharding = shards::validate(
        ctx,
        args.shards,
        args.executor,
        &[
            ("--partition", args.partition.is_some()),
            ("--merged", args.merged || args.keep_merged.is_some()),
            ("--affected", args.affected),
        ],
    )?;
    let opts = options(ctx, &args)?;
    let progress = TerminalProgress { quiet: ctx.quiet };
    let rep = match &sharding {
        Some(s) => shards::gate(ctx, &opts, &progress, s)?,
        None => gate::run(&opts, &progress)?,
    };
    record_verification(ctx, &args, &rep);
    if let (Some(plan), Some(batch)) = (&args.plan, &args.batch) {
        super::batch::record_verify(ctx, plan, batch, &rep, args.report.as_deref())?;
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
    Ok(gate::exit_code(&rep))
}

/// The gate's options from the flags, the config and the environment.
fn options(ctx: &Ctx, args: &VerifyArgs) -> CliResult<GateOptions> {
    let mut opts = GateOptions::new(ctx.repo()?.clone());
    opts.config = ctx.config()?.verify.clone();
    if !args.checks.is_empty() {
        opts.checks = CheckKind::ALL
            .into_iter()
            .filter(|k| {
                args.checks.contains(&match k {
                    CheckKind::Git => CheckName::Git,
                    CheckKind::Conflicts => CheckName::Conflicts,
                    CheckKind::Tests => CheckName::Tests,
                })
            })
            .collect();
    }
    opts.mode = if args.full { Mode::Full } else { Mode::Quick };
    opts.base = args.base.clone();
    opts.agents = match (&args.branches, &args.plan, &args.results) {
        (Some(g), _, _) => AgentSource::BranchGlob(g.clone()),
        (_, Some(p), _) => AgentSource::Plan {
            state_dir: ctx.state_dir()?.root().to_owned(),
            plan: p.clone(),
        },
        (_, _, Some(f)) => AgentSource::Results(f.clone()),
        _ => AgentSource::Worktrees,
    };
    if let (Some(plan), Some(batch)) = (&args.plan, &args.batch) {
        let (branches, base) = super::batch::batch_branches(ctx, plan, batch)?;
        opts.agents = AgentSource::Branches(branches);
        if opts.base.is_none() {
            opts.base = base;
        }
    }
    opts.strict = args.strict;
    opts.tests_tree = if args.merged || args.keep_merged.is_some() {
        TestsTree::Merged
    } else if args.in_checkout {
        TestsTree::InCheckout
    } else {
        TestsTree::Auto
    };
    opts.keep_merged = args.keep_merged.clone();
    opts.scratch_dir = Some(scratch_root(&opts.repo));
    opts.partition = args.partition.clone();
    opts.affected = args.affected;
    opts.report = args.report.clone();
    // the CLI may read the environment: cargo tells its children where it is
    opts.cargo = std::env::var_os("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("cargo"));
    Ok(opts)
}

/// Where `--merged` builds live, one stable directory per repository outside it:
/// `$BATON_CACHE_DIR`, else `$XDG_CACHE_HOME/baton`, else `~/.cache/baton`, then
/// `merged-<hash of the repository's git dir>`.
pub(crate) fn scratch_root(repo: &baton_git::RepoPaths) -> PathBuf {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let cache = env("BATON_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|p| p.join("baton")))
        .or_else(|| env("HOME").map(|p| p.join(".cache").join("baton")))
        .unwrap_or_else(|| repo.common_dir.join("baton"));
    let key = std::fs::canonicalize(&repo.common_dir).unwrap_or_else(|_| repo.common_dir.clone());
    // FNV-1a: stable across runs and builds, unlike std's hasher
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.as_os_str().as_encoded_bytes() {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    cache.join(format!("merged-{h:016x}"))
}

/// Append a `verification` event (checks, verdict, duration, counts) to the metrics log, so
/// `metrics summary` reflects manual use too. Only where baton keeps state already: verify
/// itself never creates `.baton/` (nor edits `.git/info/exclude` to hide it). A log that
/// cannot be written is a warning: the gate's verdict stands.
fn record_verification(ctx: &Ctx, args: &VerifyArgs, rep: &baton_report::VerifyReport) {
    let result = (|| -> CliResult<()> {
        let dir = ctx.state_dir()?;
        if !dir.root().is_dir() {
            if ctx.verbose > 0 {
                ctx.note(format!(
                    "not recorded in the metrics log: {} does not exist yet",
                    dir.root().display()
                ));
            }
            return Ok(());
        }
        let mut e = baton_metrics::Event::new("verification", std::time::SystemTime::now())
            .map_err(|e| CliError::env(e.to_string()))?;
        e.duration_ms = Some(rep.duration_ms);
        e.success = Some(rep.ok);
        e.plan = args
            .plan
            .as_deref()
            .filter(|p| baton_plan::PlanId::new(*p).is_ok())
            .map(str::to_owned);
        let verdict = match gate::exit_code(rep) {
            0 => "passed",
            1 => "failed",
            _ => "error",
        };
        let checks: Vec<String> = rep
            .checks
            .iter()
            .map(|c| format!("{}:{}", c.name, render::status_word(c.status)))
            .collect();
        let mut d = |k: &str, v: String| {
            e.details.insert(k.to_owned(), v);
        };
        d("verdict", verdict.to_owned());
        d("checks", checks.join(","));
        d("mode", rep.mode.clone());
        d("errors", rep.totals.errors.to_string());
        d("warnings", rep.totals.warnings.to_string());
        if let Some(t) = rep.checks.iter().find_map(|c| c.tests.as_ref()) {
            d("tests_passed", t.passed.to_string());
            d("tests_failed", t.failed.to_string());
            d("tests_skipped", t.skipped.to_string());
        }
        if let Some(t) = &rep.tested {
            d("tested", t.kind.clone());
        }
        baton_metrics::MetricsLog::new(dir.metrics())
            .append(&[e])
            .map_err(|e| CliError::env(e.to_string()))
    })();
    if let Err(e) = result {
        ctx.warn(format!(
            "could not record the verification in the metrics log: {e}"
        ));
    }
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
