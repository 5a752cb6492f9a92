//! Agents and test shards as Slurm jobs.
//!
//! - [`client`]: `sbatch --parsable`, `squeue`, `sacct`, `scancel`, `sinfo` as argv, parsed.
//! - [`state`]: job states → [`baton_run::Outcome`] (pure).
//! - [`job`]: the fixed job script (it execs its argv; no shell string is ever built), job
//!   names, `sbatch` options from the `[executor]` settings (pure).
//! - [`executor`]: [`SlurmExecutor`], baton-run's [`baton_run::Executor`] on Slurm.
//! - [`array`]: array jobs (test shards) and waiting for them.
//! - [`fs`]: whether a directory is on a filesystem a cluster's nodes can share.

pub mod array;
pub mod client;
pub mod executor;
pub mod fs;
pub mod job;
pub mod state;

pub use client::{Slurm, SlurmError};
pub use executor::SlurmExecutor;
