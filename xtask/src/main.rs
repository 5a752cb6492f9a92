//! `cargo xtask <command>`: every baton command (this repository dogfoods baton) plus tasks
//! that only make sense here.
//!
//! - `cargo xtask demo`, `cargo xtask verify --quick`, … — the baton CLI, embedded.
//! - `cargo xtask bench <what>` — benchmarks against the git CLI (see `bench.rs`).
//! - `cargo xtask slurm up|status|down` — a single-node Slurm cluster here (see `slurm.rs`).
//!
//! Tidy checks are tests (`cargo test -p xtask`), so `cargo test --workspace` is the whole gate.

mod bench;
mod slurm;
#[cfg(test)]
mod tidy;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("bench") => bench::run(&args[1..]),
        Some("slurm") => slurm::run(&args[1..]),
        _ => baton_cli::main_as("cargo xtask"),
    }
}

/// The repository root (the parent of this crate's directory).
pub fn project_root() -> PathBuf {
    let dir = env!("CARGO_MANIFEST_DIR");
    PathBuf::from(dir)
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(dir))
}
