//! Errors of the git edge.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{} is not inside a git repository; run baton from a checkout or pass --repo DIR", path.display())]
    NotARepo { path: PathBuf },
    #[error("{} is a bare repository; baton needs a checkout", path.display())]
    Bare { path: PathBuf },
    #[error("unknown revision {rev:?}: no branch, tag or commit has that name")]
    UnknownRevision { rev: String },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An error one worker thread met, reported again by another that needed the same thing.
    #[error("{0}")]
    Again(String),
    #[error("git: cannot {action}: {}", source.message())]
    Git {
        action: String,
        #[source]
        source: git2::Error,
    },
}

impl GitError {
    pub fn git(action: impl Into<String>) -> impl FnOnce(git2::Error) -> GitError {
        let action = action.into();
        move |source| GitError::Git { action, source }
    }

    /// The error is about the caller's input (a name that does not exist), not the environment.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, GitError::UnknownRevision { .. })
    }
}
