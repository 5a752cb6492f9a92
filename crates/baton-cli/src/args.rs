//! Command-line arguments (clap derive). Each subcommand's arguments live beside its code in
//! `cmd/`; this file holds the top level and the global flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::cmd;

/// Make parallel AI coding agents safe on one git repository: plan batches of agents, give each
/// its own worktree, and gate every batch on real git state, real conflicts and real tests.
#[derive(Debug, Parser)]
#[command(
    name = "baton",
    version,
    propagate_version = true,
    max_term_width = 100,
    after_help = "Exit codes: 0 success, 1 the gate failed, 2 bad input or usage, 3 environment or internal error."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print machine-readable JSON on stdout (and nothing else there).
    #[arg(long, global = true)]
    pub json: bool,
    /// Work on the repository at DIR instead of the one containing the current directory.
    #[arg(long, global = true, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// When to colour output; NO_COLOR in the environment means never for `auto`.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
    /// Print less: only errors and the final result.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more detail (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Author and check plans: batches of agents with dependencies.
    #[command(subcommand)]
    Plan(cmd::plan::PlanCommand),
    /// Execute a plan: agents in parallel in their own worktrees, supervised and resumable.
    Run(cmd::run::RunArgs),
    /// Show the output of an agent's attempt (`--follow` to keep watching).
    Logs(cmd::logs::LogsArgs),
    /// Show the progress of a plan's execution as a tree.
    Status(cmd::status::StatusArgs),
    /// Run one attempt of an agent under supervision (started by `baton run`).
    #[command(name = "__supervise", hide = true)]
    Supervise(cmd::run::SuperviseCli),
    /// Record metrics events and summarise them (success rates, durations, gate, speed-up).
    #[command(subcommand)]
    Metrics(cmd::metrics::MetricsCommand),
    /// Link plans to a task system: one task per batch, dependencies from the plan.
    #[command(subcommand)]
    Task(cmd::task::TaskCommand),
    /// The gate between batches: git state, files written by several agents, smoke or full tests.
    Verify(cmd::verify::VerifyArgs),
    /// Work with verify reports (combine the reports of CI shards).
    #[command(subcommand)]
    Report(cmd::report::ReportCommand),
    /// Create, list, clean up and prune the worktrees agents work in.
    #[command(subcommand)]
    Worktree(cmd::worktree::WorktreeCommand),
    /// Show the whole flow on a throwaway repository with scripted agents.
    Demo(cmd::demo::DemoArgs),
}
