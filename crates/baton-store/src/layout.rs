//! Where baton keeps its state: the `.baton/` directory at the repository root.

use std::path::{Path, PathBuf};

use crate::{StoreError, write_atomic};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlinked_state_dir_or_metrics_file_is_refused_and_a_file_is_not_a_dir() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let work = tmp.path().join("work");
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir_all(&work).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        assert!(
            StateDir::open(&work, Path::new(".baton")).is_ok(),
            "absent is fine"
        );
        std::os::unix::fs::symlink(&elsewhere, work.join(".baton")).unwrap();
        assert!(matches!(
            StateDir::open(&work, Path::new(".baton")),
            Err(StoreError::Symlink { .. })
        ));
        // a symlinked parent of a nested state dir
        assert!(matches!(
            StateDir::open(&work, Path::new(".baton/state")),
            Err(StoreError::Symlink { .. })
        ));
        std::fs::remove_file(work.join(".baton")).unwrap();
        std::fs::create_dir(work.join(".baton")).unwrap();
        std::os::unix::fs::symlink(elsewhere.join("m"), work.join(".baton/metrics.jsonl")).unwrap();
        assert!(matches!(
            StateDir::open(&work, Path::new(".baton")),
            Err(StoreError::Symlink { .. })
        ));
        std::fs::write(work.join("file"), "x").unwrap();
        assert!(matches!(
            StateDir::open(&work, Path::new("file")),
            Err(StoreError::NotADirectory { .. })
        ));
    }
}

/// The layout of a state directory (default `<repo>/.baton`).
///
/// ```text
/// plans/<plan-id>.json
/// executions/<plan-id>.json
/// executions/<plan-id>/logs/<agent-id>/<attempt>.log
/// metrics.jsonl
/// tasks/<task-id>.json
/// ```
///
/// Ids passed in are already validated slugs (see `baton-plan`), so none of these paths can
/// leave the state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StateDir { root: root.into() }
    }

    /// The state directory `rel` of the checkout at `workdir`, refused when any part of it
    /// inside the checkout — the directory itself, a parent, or `metrics.jsonl`, `plans/`,
    /// `executions/`, `tasks/` in it — is a symlink (a committed `.baton -> /elsewhere` would
    /// make baton write wherever it points), or is not a directory. It need not exist yet.
    pub fn open(workdir: &Path, rel: &Path) -> Result<Self, StoreError> {
        let root = workdir.join(rel);
        let mut at = workdir.to_owned();
        let inside = root.strip_prefix(workdir).unwrap_or(rel).to_owned();
        for part in inside.components() {
            at.push(part);
            if !check_not_symlink(&at, true)? {
                break;
            }
        }
        let dir = StateDir { root };
        for inner in [
            dir.metrics(),
            dir.plans_dir(),
            dir.executions_dir(),
            dir.tasks_dir(),
        ] {
            check_not_symlink(&inner, false)?;
        }
        // and every write below it walks down real directories only
        crate::confine::confine_to(&dir.root);
        Ok(dir)
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn plans_dir(&self) -> PathBuf {
        self.root.join("plans")
    }
    pub fn plan(&self, plan_id: &str) -> PathBuf {
        self.plans_dir().join(format!("{plan_id}.json"))
    }
    pub fn executions_dir(&self) -> PathBuf {
        self.root.join("executions")
    }
    pub fn execution(&self, plan_id: &str) -> PathBuf {
        self.executions_dir().join(format!("{plan_id}.json"))
    }
    pub fn agent_log(&self, plan_id: &str, agent_id: &str, attempt: u32) -> PathBuf {
        self.executions_dir()
            .join(plan_id)
            .join("logs")
            .join(agent_id)
            .join(format!("{attempt}.log"))
    }
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }
    pub fn tasks_dir(&self) -> PathBuf {
        self.root.join("tasks")
    }
    pub fn task(&self, task_id: &str) -> PathBuf {
        self.tasks_dir().join(format!("{task_id}.json"))
    }
}

/// Refuse a symlink at `path` (and, when `dir`, anything that is not a directory). Returns
/// whether `path` exists.
fn check_not_symlink(path: &Path, dir: bool) -> Result<bool, StoreError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(StoreError::Symlink {
            path: path.to_owned(),
        }),
        Ok(m) if dir && !m.is_dir() => Err(StoreError::NotADirectory {
            path: path.to_owned(),
        }),
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StoreError::io("read", path, e)),
    }
}

/// Make sure `pattern` is a line of git's `info/exclude` file at `exclude_file`, so baton's
/// state never shows up as untracked in the user's checkout. Returns whether a line was added.
pub fn ensure_excluded(exclude_file: &Path, pattern: &str) -> Result<bool, StoreError> {
    // No sidecar lock here: a `*.lock` file inside `.git/` would look like one of git's own.
    let current = match std::fs::read_to_string(exclude_file) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(StoreError::io("read", exclude_file, e)),
    };
    if current.lines().any(|l| l.trim() == pattern) {
        return Ok(false);
    }
    let mut next = current;
    if !next.is_empty() && !next.ends_with('\n') {
        next.push('\n');
    }
    next.push_str(pattern);
    next.push('\n');
    write_atomic(exclude_file, next.as_bytes())?;
    Ok(true)
}
