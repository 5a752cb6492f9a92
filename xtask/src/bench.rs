//! `cargo xtask bench <what>`: benchmarks that print medians and ratios against the git CLI
//! measured in the same run. Targets live here, never in timed unit tests.

use std::process::ExitCode;

mod merged;
mod metrics;
mod run;
mod synth;
mod verify;
mod worktree;

/// The benchmarks there are, with what each measures and its options.
const BENCHES: &[(&str, &str, &str)] = &[
    (
        "merged",
        "verify --merged on an unchanged batch reuses its build: vs cargo test in the checkout",
        "[--samples N]",
    ),
    (
        "metrics",
        "summary of a 1,000,000-event log (time, peak RSS); append throughput, 4 writers",
        "",
    ),
    (
        "run",
        "baton run: 8 sleeping agents parallel vs sequential, 200 no-ops vs xargs -P 8, 16 worktrees vs git, peak RSS",
        "[--samples N] [--skip-sleep] [--files N] [--only overhead]",
    ),
    (
        "verify",
        "git and conflicts checks on a 20k-file repo with 32 agent branches, vs git",
        "[--worktrees N] [--keep]",
    ),
    (
        "worktree",
        "create / reuse / cleanup vs the git CLI, real-shaped 3k-file and synthetic 20k-file trees",
        "[--samples N] [--tree real|synthetic|both] [--only create|reuse|cleanup] [--git-spread]",
    ),
];

pub fn run(args: &[String]) -> ExitCode {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        let what = args.first().filter(|a| !a.starts_with('-'));
        println!("{}", help(what.map(String::as_str)));
        return ExitCode::SUCCESS;
    }
    let Some(what) = args.first() else {
        return usage();
    };
    if cfg!(debug_assertions) && std::env::var_os("BATON_BENCH_DEBUG").is_none() {
        return in_release(args);
    }
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

/// Figures of a debug build are not baton's (the runner alone is several times slower): build
/// the release binary and run the benchmark with it. `BATON_BENCH_DEBUG=1` measures this
/// build anyway.
fn in_release(args: &[String]) -> ExitCode {
    use std::os::unix::process::CommandExt;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("bench: building the release binary (benchmarks measure what users run) ...");
    let built = std::process::Command::new(cargo)
        .args(["build", "--release", "--quiet", "-p", "xtask"])
        .current_dir(&root)
        .status();
    if !built.is_ok_and(|s| s.success()) {
        eprintln!(
            "error: cargo build --release -p xtask failed; BATON_BENCH_DEBUG=1 measures this debug build instead"
        );
        return ExitCode::from(2);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let err = std::process::Command::new(target.join("release").join("xtask"))
        .arg("bench")
        .args(args)
        .exec();
    eprintln!("error: cannot run the release build: {err}");
    ExitCode::from(2)
}

fn usage() -> ExitCode {
    eprintln!("{}", help(None));
    ExitCode::from(2)
}

/// Usage of one benchmark, or of all of them.
fn help(what: Option<&str>) -> String {
    let mut out = String::from(
        "Benchmarks: medians and ratios against git (or the shell) measured in the same run.\n\n",
    );
    let selected: Vec<_> = BENCHES
        .iter()
        .filter(|(name, _, _)| what.is_none_or(|w| w == *name))
        .collect();
    let selected = if selected.is_empty() {
        BENCHES.iter().collect()
    } else {
        selected
    };
    out.push_str("Usage: cargo xtask bench <what> [options]\n\n");
    for (name, about, options) in selected {
        out.push_str(&format!("  {name:<10} {about}\n"));
        if !options.is_empty() {
            out.push_str(&format!("  {:<10} options: {options}\n", ""));
        }
    }
    out.push_str("\nA debug build (cargo xtask) builds the release binary first and runs the benchmark with it\n(BATON_BENCH_DEBUG=1 measures the debug build).");
    out
}
