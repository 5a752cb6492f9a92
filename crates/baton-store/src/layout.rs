//! Where baton keeps its state: the `.baton/` directory at the repository root.

use std::path::{Path, PathBuf};

use crate::{StoreError, write_atomic};

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
