//! End-to-end tests: the real baton binary on real git repositories in temp dirs.

mod support;
mod worktree_cleanup;
mod worktree_create;
mod worktree_setup;
mod worktree_support;
