//! The git edge of baton. Everything that reads or writes a repository goes through here,
//! on git2 (libgit2, vendored), so baton needs no git binary at run time.
//!
//! A `git2::Repository` is `Send` but not `Sync`: code that works in parallel opens one
//! repository per thread with [`RepoPaths::open`].

mod errors;
mod paths;

pub use errors::GitError;
pub use paths::RepoPaths;
