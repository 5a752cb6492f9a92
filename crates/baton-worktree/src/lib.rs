//! Worktrees for agents, on git2: create many at once (ref and admin writes serialised,
//! checkouts in parallel), lock each to its owner process (pid + start time), list their
//! state (dirty, ahead/behind, merged / squash-merged / unmerged, owner alive, prunable),
//! reuse finished ones, and clean up without ever losing work that is not integrated.
//!
//! Libraries never print: every operation returns a report the CLI renders. A
//! `git2::Repository` is not `Sync`; [`Worktrees`] holds paths and each thread opens its own.
//!
//! The git CLI is never run. The admin files of linked worktrees are written directly (see
//! [`admin`]) because libgit2's `git_worktree_add` checks out inside the call, with no way to
//! write the entry under a lock and check out outside it.

pub mod admin;
mod checkout;
mod cleanup;
mod config;
mod create;
pub mod decide;
mod errors;
mod inspect;
mod integrated;
pub mod journal;
mod lock;
mod owner;
mod place;
pub mod process;
mod prune;
mod refs;
mod remove;
mod repo;
mod reuse;
pub mod safety;
mod setup;
mod spare;

pub use cleanup::{Action, ActionKind, CleanupOptions, CleanupReport, Kept, cleanup};
pub use config::WorktreeConfig;
pub use create::{CreateOptions, CreateRequest, Created, create};
pub use errors::WorktreeError;
pub use inspect::{Dirty, Listing, WorktreeInfo, list};
pub use integrated::{Integration, MergeState, classify};
pub use owner::{release, set_owner};
pub use prune::{PruneReport, Pruned, prune};
pub use repo::{Target, Worktrees, check_name};
pub use setup::INCLUDE_FILE;
pub use spare::SpareUsage;
