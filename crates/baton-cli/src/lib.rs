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
//! Messages and `--help` name the command the user typed: `cargo xtask` when the executable is
//! called `xtask`, else the executable's name; [`main_as`] sets it explicitly.
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
pub(crate) mod table;

use std::ffi::OsString;
use std::process::ExitCode;

pub use error::CliError;

/// Run baton with the process's arguments and return its exit code.
pub fn main() -> ExitCode {
    ExitCode::from(run(std::env::args_os()))
}

/// Like [`main`], with the name messages and `--help` use for the command (e.g. `"cargo xtask"`).
pub fn main_as(program: &str) -> ExitCode {
    ExitCode::from(run_as(program, std::env::args_os()))
}

/// Run baton with `args` (the first is the program name) and return the exit code.
pub fn run<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let program = args
        .first()
        .map_or_else(|| "baton".to_owned(), program_name);
    run_as(&program, args)
}

/// The command a user typed to start the executable at `argv0`: `cargo xtask` for an xtask
/// (cargo's alias runs `target/…/xtask`), else the file name without its extension.
fn program_name(argv0: &OsString) -> String {
    let stem = std::path::Path::new(argv0)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    match stem.as_str() {
        "" => "baton".to_owned(),
        "xtask" => "cargo xtask".to_owned(),
        _ => stem,
    }
}

/// The worked examples of every command's `--help` say `baton …`; show the command the user
/// typed instead.
fn with_program_in_examples(mut command: clap::Command, program: &str) -> clap::Command {
    if let Some(help) = command.get_after_help() {
        let text = help
            .to_string()
            .replace("\n  baton ", &format!("\n  {program} "));
        command = command.after_help(text);
    }
    let names: Vec<String> = command
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    for name in names {
        command = command.mut_subcommand(name, |sub| with_program_in_examples(sub, program));
    }
    command
}

/// Run baton with `args` (the first is ignored), naming the command `program` in messages.
pub fn run_as<I, T>(program: &str, args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    // the supervisor of every agent attempt starts here: skip building the whole CLI
    if args.get(1).is_some_and(|a| a == "__supervise") {
        return cmd::run::supervise_args(&args[2..]);
    }
    // the helper that forks those supervisors without an exec each (one per run; it must
    // start before any thread does)
    if args.get(1).is_some_and(|a| a == "__launch") {
        return u8::try_from(baton_run::launcher::serve())
            .unwrap_or(baton_report::exit::ENVIRONMENT);
    }
    // like git, trust the object store instead of re-hashing every object read (libgit2's
    // default): it was a tenth of a worktree checkout's CPU and most of a tree diff's. Objects
    // baton writes are still hashed; `git fsck` is what checks a store.
    baton_git::status::tune_for_reading();
    let command = <args::Cli as clap::CommandFactory>::command()
        .bin_name(program.to_owned())
        .display_name(program.to_owned());
    let command = if program == "baton" {
        command
    } else {
        with_program_in_examples(command, program)
    };
    let parsed = command
        .try_get_matches_from(args)
        .and_then(|m| <args::Cli as clap::FromArgMatches>::from_arg_matches(&m));
    let cli = match parsed {
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
    let ctx = ctx::Ctx::new(&cli.global, program);
    match cmd::dispatch(&ctx, cli.command) {
        Ok(code) => code,
        Err(err) => {
            ctx.print_error(&err);
            err.code
        }
    }
}
