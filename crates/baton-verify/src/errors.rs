//! Errors of the verify checks, one type per operation. Messages name the glob, file or
//! branch at fault and what to do.

use std::path::PathBuf;

use baton_git::GitError;

/// Finding the agents of the conflicts check.
#[derive(Debug, thiserror::Error)]
pub enum AgentsError {
    #[error("--branches {glob:?} is not a valid glob: {reason}")]
    BadGlob { glob: String, reason: String },
    #[error("no local branch matches --branches {glob:?}; list them with `git branch --list`")]
    NoBranch { glob: String },
    #[error("results file {}: {reason}", path.display())]
    BadResults { path: PathBuf, reason: String },
    #[error("agent {agent}: files_write glob {glob:?} is invalid: {reason}")]
    BadScope {
        agent: String,
        glob: String,
        reason: String,
    },
    #[error("agent {agent}: its base {rev:?} is not a commit: {reason}")]
    BadBase {
        agent: String,
        rev: String,
        reason: String,
    },
    #[error(transparent)]
    Git(#[from] GitError),
}

impl AgentsError {
    /// The user's input is at fault (exit 2), not the environment (exit 3).
    pub fn is_bad_input(&self) -> bool {
        match self {
            AgentsError::Git(g) => g.is_bad_input(),
            _ => true,
        }
    }
}

/// Running the tests check.
#[derive(Debug, thiserror::Error)]
pub enum TestsError {
    #[error("invalid filterset {expr:?}: {message}")]
    BadFilterset { expr: String, message: String },
    #[error("invalid --partition {value:?}: expected hash:M/N or count:M/N with 1 <= M <= N")]
    BadPartition { value: String },
    #[error(
        "{what}: no test command is configured for this repository (not a Cargo workspace); set [verify] quick/full in .config/baton.toml"
    )]
    NoCommand { what: String },
    #[error("[verify] {key} in .config/baton.toml is an empty command")]
    EmptyCommand { key: String },
    #[error("[verify] {key} in .config/baton.toml: {message}")]
    Config { key: String, message: String },
    #[error("--partition and --affected need cargo-nextest; [verify] {key} is a plain command")]
    PlainCommand { key: String },
    #[error(
        "--partition and --affected need cargo-nextest, which is not installed (cargo install cargo-nextest)"
    )]
    NoNextest,
    #[error(
        "[verify] runner = \"nextest\" in .config/baton.toml, but cargo-nextest is not installed (cargo install cargo-nextest)"
    )]
    NoNextestConfigured,
    #[error(
        "--keep-merged {}: the directory is not empty; name a new or empty directory",
        dir.display()
    )]
    KeepMergedNotEmpty { dir: PathBuf },
    #[error("--keep-merged keeps the merged tree, but --in-checkout tests the checkout; drop one")]
    KeepMergedInCheckout,
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the package graph (`cargo metadata` in {}): {message}", dir.display())]
    Metadata { dir: PathBuf, message: String },
    #[error("cannot use {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("JUnit report {}: {reason}", path.display())]
    Junit { path: PathBuf, reason: String },
    #[error(transparent)]
    Git(#[from] GitError),
}

impl TestsError {
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            TestsError::BadFilterset { .. }
                | TestsError::BadPartition { .. }
                | TestsError::NoCommand { .. }
                | TestsError::EmptyCommand { .. }
                | TestsError::Config { .. }
                | TestsError::PlainCommand { .. }
                | TestsError::KeepMergedNotEmpty { .. }
                | TestsError::KeepMergedInCheckout
        )
    }
}

/// Combining shard reports (`baton report merge`).
#[derive(Debug, thiserror::Error)]
pub enum MergeReportsError {
    #[error("report {}: {reason}", path.display())]
    Bad { path: PathBuf, reason: String },
    #[error("no reports given; pass the JSON reports of the shards")]
    Empty,
    #[error(
        "shard {partition} is given twice ({} and {}); pass each shard's report once",
        first.display(),
        second.display()
    )]
    Duplicate {
        partition: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error(
        "the shards do not cover the whole run: missing {}; pass the reports of all {total} shards",
        missing.join(", ")
    )]
    Incomplete { missing: Vec<String>, total: u32 },
}
