//! Errors of the git edge.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{} is not inside a git repository; run baton from a checkout or pass --repo DIR", path.display())]
    NotARepo { path: PathBuf },
    #[error("{} is a bare repository; baton needs a checkout", path.display())]
    Bare { path: PathBuf },
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
}
