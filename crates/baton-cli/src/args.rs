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

/// The heading global options are listed under in every command's `--help`.
const GLOBAL: &str = "Global options";

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print machine-readable JSON on stdout (and nothing else there).
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,
    /// Work on the repository at DIR instead of the one containing the current directory.
    #[arg(long, global = true, value_name = "DIR", help_heading = GLOBAL)]
    pub repo: Option<PathBuf>,
    /// When to colour output; NO_COLOR in the environment means never for `auto`.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN", help_heading = GLOBAL)]
    pub color: ColorChoice,
    /// Print less: only errors and the final result.
    #[arg(short, long, global = true, conflicts_with = "verbose", help_heading = GLOBAL)]
    pub quiet: bool,
    /// Print more detail (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = GLOBAL)]
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
    #[command(
        subcommand,
        after_help = "Examples:
  baton plan new --title \"Add a cache\" -o plan.toml   a skeleton that validates as written
  baton plan validate plan.toml                      every check; nothing is stored
  baton plan new --from plan.toml                    store it; prints the plan id
  baton plan show latest                             batches, agents, levels
  baton plan schema > plan.schema.json               JSON Schema for editors (docs/plan.md)"
    )]
    Plan(cmd::plan::PlanCommand),
    /// Execute a plan: agents in parallel in their own worktrees, supervised and resumable.
    Run(cmd::run::RunArgs),
    /// Show the output of an agent's attempt (`--follow` to keep watching).
    Logs(cmd::logs::LogsArgs),
    /// Show the progress of a plan's execution as a tree.
    #[command(after_help = "Examples:
  baton status                  the newest plan
  baton status 0000000a         a plan by a unique suffix of its id
  baton status latest --json    the execution as JSON (docs/json.md)")]
    Status(cmd::status::StatusArgs),
    /// Run one attempt of an agent under supervision (started by `baton run`).
    #[command(name = "__supervise", hide = true)]
    Supervise(cmd::run::SuperviseCli),
    /// Record metrics events and summarise them (success rates, durations, gate, speed-up).
    #[command(
        subcommand,
        after_help = "Examples:
  baton metrics record --event agent_complete --plan OP-… --agent a1 --duration-ms 5300 --success true
  baton metrics summary --since 7d
  baton metrics failures --plan latest"
    )]
    Metrics(cmd::metrics::MetricsCommand),
    /// Link plans to a task system: one task per batch, dependencies from the plan.
    #[command(
        subcommand,
        after_help = "Examples:
  baton task create-from-plan latest             one task per batch, blocked as depends_on says
  baton task ready                               tasks whose blockers are all done
  baton task done 001                            by a unique suffix of the task id
  baton task list --backend taskwarrior --json"
    )]
    Task(cmd::task::TaskCommand),
    /// The gate between batches: git state, files written by several agents, smoke or full tests.
    #[command(after_help = "Examples:
  baton verify                          git state and agents' conflicts, no tests
  baton verify --quick                  plus the smoke tests ([verify] smoke in .config/baton.toml)
  baton verify --full --merged          all tests on the agents' work merged together
  baton verify --plan latest --strict   the plan's agents; warnings fail the gate too
  baton verify --format github          annotations and a step summary in GitHub Actions
Exit 1 when the gate fails; the JSON report (--json, --report FILE) is docs/json.md's.")]
    Verify(cmd::verify::VerifyArgs),
    /// Work with verify reports (combine the reports of CI shards).
    #[command(subcommand)]
    Report(cmd::report::ReportCommand),
    /// Create, list, clean up and prune the worktrees agents work in.
    #[command(
        subcommand,
        after_help = "Examples:
  baton worktree create --plan latest       one worktree per agent, on baton/<plan>/<agent>
  baton worktree list                       branch, changes, merged state, commits ahead/behind
  baton worktree cleanup --dry-run          what would go, and why everything else stays
  baton worktree cleanup --plan 0000000a    only that plan's worktrees"
    )]
    Worktree(cmd::worktree::WorktreeCommand),
    /// Show the effective configuration (`.config/baton.toml` and defaults), or its JSON Schema.
    Config(cmd::config::ConfigArgs),
    /// Drive the batch loop by hand: integrate one batch (commit, gate, merge, test, advance).
    #[command(subcommand)]
    Batch(cmd::batch::BatchCommand),
    /// Show the whole flow on a throwaway repository with scripted agents.
    #[command(after_help = "Examples:
  baton demo                 run it in a temporary directory, removed afterwards
  baton demo --dir /tmp/d    keep the demo repository to look around")]
    Demo(cmd::demo::DemoArgs),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every command says what it does and every flag and argument has help text, in every
    /// subcommand at any depth.
    #[test]
    fn every_command_and_flag_has_help() {
        let cli = Cli::command();
        cli.clone().debug_assert();
        let mut missing = Vec::new();
        let mut stack = vec![(String::from("baton"), cli)];
        while let Some((path, cmd)) = stack.pop() {
            if path != "baton" && cmd.get_about().is_none() {
                missing.push(format!("{path}: no about"));
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() {
                    missing.push(format!("{path} {id}: no help"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_name() != "help" {
                    stack.push((format!("{path} {}", sub.get_name()), sub.clone()));
                }
            }
        }
        assert!(missing.is_empty(), "{missing:#?}");
    }
}
