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
/// (nothing under `--json` or `-q`, so stdout stays the report).
struct TerminalProgress {
    json: bool,
    quiet: bool,
}

impl Progress for TerminalProgress {
    fn note(&self, message: &str) {
        if !self.json && !self.quiet {
            use std::io::Write;
            let _ = writeln!(std::io::stderr().lock(), "{message}");
        }
    }
    fn output(&self, line: &str) {
        if !self.json && !self.quiet {
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
        (Some(f), _) => f,
        (None, true) => Format::Json,
        (None, false) => Format::Human,
    };
    let opts = options(ctx, &args)?;
    let progress = TerminalProgress {
        json: ctx.json,
        quiet: ctx.quiet,
    };
    let rep = gate::run(&opts, &progress)?;
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
    opts.tests_tree = if args.merged {
        TestsTree::Merged
    } else {
        TestsTree::InCheckout
    };
    opts.partition = args.partition.clone();
    opts.affected = args.affected;
    opts.report = args.report.clone();
    // the CLI may read the environment: cargo tells its children where it is
    opts.cargo = std::env::var_os("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("cargo"));
    Ok(opts)
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
