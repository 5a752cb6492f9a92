//! `cargo xtask bench <what>`: benchmarks that print medians and ratios against the git CLI
//! measured in the same run. Targets live here, never in timed unit tests.

use std::process::ExitCode;

#[expect(
    dead_code,
    reason = "used by the verify and worktree benchmarks as they land"
)]
mod synth;
mod worktree;

/// The benchmarks there are, with what each measures.
const BENCHES: &[(&str, &str)] = &[(
    "worktree",
    "create 8 / reuse 1 / cleanup 8 worktrees vs the git CLI on a ~20k-file repo",
)];

pub fn run(args: &[String]) -> ExitCode {
    let Some(what) = args.first() else {
        return usage();
    };
    match BENCHES.iter().find(|(name, _)| name == what) {
        Some(("worktree", _)) => worktree::run(&args[1..]),
        Some(_) => ExitCode::SUCCESS,
        None => {
            eprintln!("error: no benchmark named {what:?}");
            usage()
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: cargo xtask bench <what>");
    if BENCHES.is_empty() {
        eprintln!("no benchmarks are defined yet");
    }
    for (name, about) in BENCHES {
        eprintln!("  {name:<10} {about}");
    }
    ExitCode::from(2)
}
