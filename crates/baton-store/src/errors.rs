//! Errors of the store: each names the file at fault.

use std::path::PathBuf;

/// What went wrong with a file baton keeps.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The operating system refused a read, write, rename, sync or lock.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file exists but is not valid JSON for what it should hold.
    #[error(
        "{}:{line}:{column}: {message}; the file was left as it is",
        path.display()
    )]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// The file was written by a version of baton this build does not understand.
    #[error("{}: schema_version {found} is not supported (this baton understands {expected})", path.display())]
    SchemaVersion {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    /// Part of the state directory is a symlink: baton never follows one out of the repo.
    #[error(
        "{} is a symlink; baton keeps its state only in real directories inside the repository (remove the link, or set [state] dir)",
        path.display()
    )]
    Symlink { path: PathBuf },
    /// The state directory (or a parent of it) is a file.
    #[error(
        "{} is not a directory; move it away or set [state] dir in .config/baton.toml",
        path.display()
    )]
    NotADirectory { path: PathBuf },
    /// `create_new_json` found the file already there.
    #[error("{} already exists", path.display())]
    AlreadyExists { path: PathBuf },
    /// A value could not be turned into JSON (a bug in the caller's types).
    #[error("cannot serialize {}: {source}", path.display())]
    Serialize {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl StoreError {
    pub(crate) fn io(action: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        StoreError::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }

    /// True when the file is there but its content is bad (bad input, exit 2), as opposed to
    /// the environment failing (exit 3).
    pub fn is_bad_content(&self) -> bool {
        matches!(
            self,
            StoreError::Parse { .. } | StoreError::SchemaVersion { .. }
        )
    }
}
