//! Why the gate could not run: bad input (nothing ran) or a report that cannot be written.

use std::path::PathBuf;

use baton_git::GitError;

use crate::errors::{AgentsError, TestsError};

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("--base: {0}")]
    Base(GitError),
    #[error(transparent)]
    Agents(#[from] AgentsError),
    #[error(transparent)]
    Plan(#[from] baton_plan::store::PlanStoreError),
    #[error(transparent)]
    Store(#[from] baton_store::StoreError),
    #[error(transparent)]
    Tests(#[from] TestsError),
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("the commit to test, {commit}, cannot be read: {reason}")]
    TestsCommit { commit: String, reason: String },
    #[error("cannot write the report {}: {reason}", path.display())]
    Report { path: PathBuf, reason: String },
}

impl GateError {
    /// The caller's input is at fault (exit 2), not the environment (exit 3).
    pub fn is_bad_input(&self) -> bool {
        use baton_plan::store::PlanStoreError as P;
        match self {
            GateError::Base(_) => true,
            GateError::Agents(e) => e.is_bad_input(),
            GateError::Plan(P::Store(s)) | GateError::Store(s) => s.is_bad_content(),
            GateError::Plan(P::Exists(_) | P::NotFound { .. }) => true,
            GateError::Plan(_) => false,
            GateError::Tests(e) => e.is_bad_input(),
            GateError::Git(e) => e.is_bad_input(),
            GateError::TestsCommit { .. } => true,
            GateError::Report { .. } => false,
        }
    }
}
