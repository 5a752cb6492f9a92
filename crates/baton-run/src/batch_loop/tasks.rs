//! A batch that succeeded closes its linked tasks, in whichever backend each is linked in
//! (`file`, `taskwarrior`). A backend that fails never fails the batch: the failure is a
//! `task` metrics event, the task is kept in the batch's `Integration.tasks_open` (with the
//! error, for the caller to show), and [`retry_open_tasks`] tries it again when the plan
//! runs again.

use std::collections::BTreeMap;
use std::time::SystemTime;

use baton_metrics::{Event, MetricsLog};
use baton_plan::{BatchId, ExecutionTracker, Plan, PlanId, Status, TaskRef};
use baton_store::StateDir;
use baton_tasks::{TaskStatus, TaskStore};

use super::LoopHooks;
use crate::integrate::IntegrateError;

/// Task backends by the name plans link tasks with.
pub type TaskStores = BTreeMap<String, Box<dyn TaskStore + Send + Sync>>;

/// The built-in backend alone.
pub(super) fn file_store(state: &StateDir) -> TaskStores {
    let mut stores: TaskStores = BTreeMap::new();
    stores.insert(
        "file".to_owned(),
        Box::new(baton_tasks::file::FileStore::new(state.clone())),
    );
    stores
}

/// What closing one task did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskOutcome {
    pub batch: BatchId,
    pub backend: String,
    pub task: String,
    /// `None` when the task is done.
    pub error: Option<String>,
}

/// Mark every task linked to `batch` done, record the ones a backend failed to close in the
/// batch's state (replacing the earlier list), and say what happened. Errors only when the
/// execution cannot be written.
pub fn close_batch_tasks(
    plan_id: &PlanId,
    plan: &Plan,
    batch: &BatchId,
    stores: &TaskStores,
    tracker: &ExecutionTracker,
    metrics: Option<&MetricsLog>,
) -> Result<Vec<TaskOutcome>, IntegrateError> {
    let mut out = Vec::new();
    for link in plan
        .tasks
        .iter()
        .filter(|t| t.batch.as_ref() == Some(batch))
    {
        let error = match stores.get(&link.backend) {
            None => Some(format!(
                "no task backend {:?} is configured here; mark it done with `baton task done {} --backend {}`",
                link.backend, link.task_id, link.backend
            )),
            Some(store) => store
                .set_status(&link.task_id, TaskStatus::Done)
                .err()
                .map(|e| e.to_string()),
        };
        if let Some(log) = metrics
            && let Ok(mut e) = Event::new("task", SystemTime::now())
        {
            e.plan = Some(plan_id.to_string());
            e.batch = Some(batch.to_string());
            e.success = Some(error.is_none());
            e.details.insert("task".into(), link.task_id.clone());
            e.details.insert("backend".into(), link.backend.clone());
            e.details.insert(
                "status".into(),
                if error.is_none() { "done" } else { "open" }.into(),
            );
            if let Some(err) = &error {
                e.details.insert("error".into(), err.clone());
            }
            // metrics never fail the loop
            let _ = log.append(&[e]);
        }
        out.push(TaskOutcome {
            batch: batch.clone(),
            backend: link.backend.clone(),
            task: link.task_id.clone(),
            error,
        });
    }
    let open: Vec<TaskRef> = out
        .iter()
        .filter_map(|o| {
            o.error.as_ref().map(|e| TaskRef {
                backend: o.backend.clone(),
                id: o.task.clone(),
                error: e.clone(),
            })
        })
        .collect();
    let exec = tracker.load()?;
    let state = exec.batch(batch).and_then(|b| b.integration.clone());
    let recorded = state
        .as_ref()
        .map(|s| s.tasks_open.clone())
        .unwrap_or_default();
    if recorded != open {
        let mut state = state.unwrap_or_default();
        state.tasks_open = open;
        tracker.update(|e, now| e.set_integration(batch, state, now))?;
    }
    Ok(out)
}

/// For every succeeded batch with tasks a backend failed to close: try again.
pub fn retry_open_tasks(
    plan_id: &PlanId,
    plan: &Plan,
    stores: &TaskStores,
    tracker: &ExecutionTracker,
    metrics: Option<&MetricsLog>,
) -> Result<Vec<TaskOutcome>, IntegrateError> {
    let exec = tracker.load()?;
    let mut out = Vec::new();
    for b in exec.batches.iter().filter(|b| {
        b.status == Status::Succeeded
            && b.integration
                .as_ref()
                .is_some_and(|i| !i.tasks_open.is_empty())
    }) {
        out.extend(close_batch_tasks(
            plan_id, plan, &b.id, stores, tracker, metrics,
        )?);
    }
    Ok(out)
}

impl LoopHooks {
    /// The batch passed: close its tasks in every backend (see [`close_batch_tasks`]).
    pub fn close_tasks(&self, batch: &BatchId) -> Result<Vec<TaskOutcome>, IntegrateError> {
        close_batch_tasks(
            &self.plan_id,
            &self.plan,
            batch,
            &self.task_stores,
            &self.tracker,
            self.metrics.as_ref(),
        )
    }
}
