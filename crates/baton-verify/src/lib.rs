//! The checks of `baton verify`, the gate between batches of agents.
//!
//! - [`git_check`]: git state of the main checkout and every linked worktree.
//! - [`agents`], [`pairs`], [`conflicts`]: who the agents are, which pairs wrote the same
//!   file, and how a three-way merge of each such file goes (in memory).
//! - [`markers`]: leftover conflict markers (pure).
//! - [`findings`]: building findings and a check's status from them.
//! - [`gate`]: the whole gate as one call, used by `baton verify` and the run loop.
//!
//! Libraries never print or read the environment: the CLI gathers inputs and renders output.

pub mod agents;
pub mod config;
pub mod conflicts;
mod errors;
pub mod findings;
pub mod gate;
pub mod git_check;
pub mod junit;
pub mod markers;
pub mod merged;
pub mod pairs;
pub mod render;
pub mod report;
pub mod scratch;
pub mod tests_check;
pub mod tests_output;
pub mod tests_run;
mod writes;

pub use config::VerifyConfig;
pub use errors::{AgentsError, MergeReportsError, TestsError};
