//! The task store trait and what is computed the same way for every backend.

use std::collections::BTreeMap;
use std::time::SystemTime;

use baton_plan::PlanId;

use crate::{NewTask, Task, TaskError, TaskStatus};

/// A task system baton can create tasks in and read them back from.
pub trait TaskStore {
    /// `file`, `taskwarrior`, … (the `backend` of plan → task links).
    fn backend(&self) -> &'static str;
    /// Every task.
    fn list(&self) -> Result<Vec<Task>, TaskError>;
    /// Create `tasks` (blockers may point at each other by index) and return them with their
    /// ids, in the same order.
    fn create(&self, tasks: &[NewTask], now: SystemTime) -> Result<Vec<Task>, TaskError>;
    /// Set the task → plan link of one task and return the task.
    fn set_plan(&self, id: &str, plan: &PlanId) -> Result<Task, TaskError>;

    /// Mark one task done (or cancelled) and return it.
    fn set_status(&self, id: &str, status: TaskStatus) -> Result<Task, TaskError>;

    /// One task by id.
    fn get(&self, id: &str) -> Result<Task, TaskError> {
        self.list()?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or_else(|| TaskError::NotFound {
                backend: self.backend(),
                id: id.to_owned(),
            })
    }
}

/// Open tasks with no open blocker. A blocker that is not in `tasks` counts as open: a missing
/// dependency is never taken as satisfied.
pub fn ready(tasks: &[Task]) -> Vec<&Task> {
    let status: BTreeMap<&str, TaskStatus> =
        tasks.iter().map(|t| (t.id.as_str(), t.status)).collect();
    tasks
        .iter()
        .filter(|t| t.status == TaskStatus::Open)
        .filter(|t| {
            t.blocked_by.iter().all(|b| {
                matches!(
                    status.get(b.as_str()),
                    Some(TaskStatus::Done | TaskStatus::Cancelled)
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: &str, status: TaskStatus, blocked_by: &[&str]) -> Task {
        Task {
            schema_version: 1,
            id: id.into(),
            title: id.into(),
            status,
            blocked_by: blocked_by.iter().map(|s| s.to_string()).collect(),
            plan: None,
            batch: None,
            created_at: None,
        }
    }

    #[test]
    fn ready_needs_every_blocker_closed_and_known() {
        use TaskStatus::*;
        let tasks = vec![
            t("a", Done, &[]),
            t("b", Open, &["a"]),
            t("c", Open, &["b"]),
            t("d", Open, &["missing"]),
            t("e", Open, &["a", "x"]),
            t("x", Cancelled, &[]),
            t("f", Done, &["b"]),
        ];
        let ids: Vec<&str> = ready(&tasks).iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["b", "e"]);
    }
}
