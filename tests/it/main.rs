//! End-to-end tests: the real baton binary on real git repositories in temp dirs.

mod demo;
mod metrics;
mod metrics_summary;
mod plan;
mod run;
mod run_isolation;
mod run_resume;
mod store;
mod support;
mod tasks;
mod tasks_taskwarrior;
mod verify;
mod worktree_checkout;
mod worktree_cleanup;
mod worktree_create;
mod worktree_setup;
mod worktree_support;
