//! The baton command line.
//!
//! The CLI lives in a library so any Rust repository can embed it in its own xtask:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     baton_cli::main()
//! }
//! ```
//!
//! This crate does all terminal I/O, reads the environment and the config file, and maps
//! every error to an exit code (see `baton_report::exit`). The libraries below it never print.

mod args;
mod cmd;
mod config;
mod ctx;
mod error;
mod progress;
mod style;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

pub use error::CliError;

/// Run baton with the process's arguments and return its exit code.
pub fn main() -> ExitCode {
    ExitCode::from(run(std::env::args_os()))
}

/// Run baton with `args` (the first is the program name) and return the exit code.
pub fn run<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    // the supervisor of every agent attempt starts here: skip building the whole CLI
    if args.get(1).is_some_and(|a| a == "__supervise") {
        return cmd::run::supervise_args(&args[2..]);
    }
    let cli = match args::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            // help and --version go to stdout with 0; usage errors to stderr with 2
            let _ = err.print();
            return if err.use_stderr() {
                baton_report::exit::BAD_INPUT
            } else {
                baton_report::exit::OK
            };
        }
    };
    let ctx = ctx::Ctx::new(&cli.global);
    match cmd::dispatch(&ctx, cli.command) {
        Ok(code) => code,
        Err(err) => {
            ctx.print_error(&err);
            err.code
        }
    }
}
