//! End-to-end tests: the real baton binary on real git repositories in temp dirs.

mod demo;
mod metrics;
mod metrics_summary;
mod plan;
mod run;
mod run_isolation;
mod run_resume;
mod slurm_exec;
mod slurm_run;
mod slurm_shards;
mod slurm_support;
mod store;
mod support;
mod tasks;
mod tasks_taskwarrior;
mod verify;
mod worktree_cleanup;
mod worktree_create;
mod worktree_setup;
mod worktree_support;
