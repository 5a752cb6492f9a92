//! One module per subcommand; `dispatch` only routes.

pub mod demo;
pub mod plan;
pub mod status;
pub mod worktree;

use crate::args::Command;
use crate::ctx::Ctx;
use crate::error::CliResult;

pub fn dispatch(ctx: &Ctx, command: Command) -> CliResult {
    match command {
        Command::Plan(c) => plan::run(ctx, c),
        Command::Status(a) => status::run(ctx, a),
        Command::Demo(a) => demo::run(ctx, a),
        Command::Worktree(c) => worktree::run(ctx, c),
    }
}
