//! `baton task create-from-plan|link|list|ready`.

use clap::Subcommand;

use crate::ctx::Ctx;
use crate::error::CliResult;

#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// List tasks.
    List,
}

pub fn run(_ctx: &Ctx, _command: TaskCommand) -> CliResult {
    Ok(0)
}
