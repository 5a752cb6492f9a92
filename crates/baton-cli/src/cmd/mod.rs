//! One module per subcommand; `dispatch` only routes.

pub mod demo;
pub mod logs;
pub mod metrics;
pub mod plan;
pub mod report;
pub mod run;
pub mod status;
pub mod task;
pub mod verify;
pub mod worktree;

use crate::args::Command;
use crate::ctx::Ctx;
use crate::error::CliResult;

pub fn dispatch(ctx: &Ctx, command: Command) -> CliResult {
    match command {
        Command::Plan(c) => plan::run(ctx, c),
        Command::Run(a) => run::run(ctx, a),
        Command::Logs(a) => logs::run(ctx, a),
        Command::Supervise(a) => run::supervise(a),
        Command::Status(a) => status::run(ctx, a),
        Command::Demo(a) => demo::run(ctx, a),
        Command::Metrics(c) => metrics::run(ctx, c),
        Command::Task(c) => task::run(ctx, c),
        Command::Verify(a) => verify::run(ctx, a),
        Command::Report(c) => report::run(ctx, c),
        Command::Worktree(c) => worktree::run(ctx, c),
    }
}
