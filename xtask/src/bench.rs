//! `cargo xtask bench <what>`: benchmarks that print medians and ratios against the git CLI
//! measured in the same run. Targets live here, never in timed unit tests.

use std::process::ExitCode;

mod merged;
mod metrics;
mod run;
mod synth;
mod verify;
mod worktree;

/// The benchmarks there are, with what each measures.
const BENCHES: &[(&str, &str)] = &[
    (
        "merged",
        "verify --merged on an unchanged batch reuses its build: vs cargo test in the checkout",
    ),
    (
        "metrics",
        "summary of a 1,000,000-event log (time, peak RSS); append throughput, 4 writers",
    ),
    (
        "run",
        "baton run: 8 sleeping agents parallel vs sequential, 200 no-ops vs xargs -P 8, 16 worktrees vs git, peak RSS",
    ),
    (
        "verify",
        "git and conflicts checks on a 20k-file repo with 32 agent branches, vs git",
    ),
    (
        "worktree",
        "create / reuse / cleanup vs the git CLI, real-shaped 3k-file and synthetic 20k-file trees",
    ),
];

pub fn run(args: &[String]) -> ExitCode {
    let Some(what) = args.first() else {
        return usage();
    };
    match what.as_str() {
        "merged" => merged::run(&args[1..]),
        "metrics" => metrics::run(&args[1..]),
        "run" => run::run(&args[1..]),
        "verify" => verify::run(&args[1..]),
        "worktree" => worktree::run(&args[1..]),
        _ => {
            eprintln!("error: no benchmark named {what:?}");
            usage()
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: cargo xtask bench <what>");
    for (name, about) in BENCHES {
        eprintln!("  {name:<10} {about}");
    }
    ExitCode::from(2)
}
