//! `cargo xtask bench <what>`: benchmarks that print medians and ratios against the git CLI
//! measured in the same run. Targets live here, never in timed unit tests.

use std::process::ExitCode;

mod metrics;
mod synth;
mod verify;

/// The benchmarks there are, with what each measures.
const BENCHES: &[(&str, &str)] = &[
    (
        "metrics",
        "summary of a 1,000,000-event log (time, peak RSS); append throughput, 4 writers",
    ),
    (
        "verify",
        "git and conflicts checks on a 20k-file repo with 32 agent branches, vs git",
    ),
];

pub fn run(args: &[String]) -> ExitCode {
    let Some(what) = args.first() else {
        return usage();
    };
    match BENCHES.iter().find(|(name, _)| name == what) {
        Some(_) if what == "metrics" => metrics::run(&args[1..]),
        Some(_) if what == "verify" => verify::run(&args[1..]),
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
