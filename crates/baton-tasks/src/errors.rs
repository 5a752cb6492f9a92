//! Errors of the task stores and of `create-from-plan`.

use std::path::PathBuf;

use baton_plan::{BatchId, PlanId};

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error(transparent)]
    Store(#[from] baton_store::StoreError),
    /// A batch depends on a batch the plan does not have.
    #[error(
        "plan {plan}: batch {batch} depends on {missing}, which the plan does not have; nothing was written"
    )]
    MissingDependency {
        plan: PlanId,
        batch: BatchId,
        missing: BatchId,
    },
    #[error("plan {plan}: batch dependencies form a cycle ({}); nothing was written", cycle.join(" -> "))]
    Cycle { plan: PlanId, cycle: Vec<String> },
    #[error("plan {plan}: batch id {batch} is used twice; nothing was written")]
    DuplicateBatch { plan: PlanId, batch: BatchId },
    #[error("the plan has no id; store it with `baton plan new --from FILE` first")]
    PlanWithoutId,
    #[error("no task {id} in the {backend} task store; `baton task list` shows the tasks")]
    NotFound { backend: &'static str, id: String },
    #[error("task {task} is linked to plan {linked} already, not {wanted}")]
    LinkedElsewhere {
        task: String,
        linked: PlanId,
        wanted: PlanId,
    },
    #[error("{}: not a task file of this baton: {reason}", path.display())]
    BadTaskFile { path: PathBuf, reason: String },
    #[error("cannot list {}: {source}", path.display())]
    List {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "`{program}` was not found; install Taskwarrior (Debian: apt-get install taskwarrior) or choose another --backend"
    )]
    ToolMissing { program: String },
    #[error("cannot run `{program}`: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{program} {action}` failed ({status}): {stderr}")]
    ToolFailed {
        program: String,
        action: &'static str,
        status: String,
        stderr: String,
    },
    #[error("`{program} {action}` printed output baton cannot read: {reason}")]
    ToolOutput {
        program: String,
        action: &'static str,
        reason: String,
    },
    #[error("cannot generate a task id: {0}")]
    Random(getrandom::Error),
}

impl TaskError {
    /// True for bad input (exit 2): a bad plan, an unknown id, a damaged task file.
    pub fn is_bad_input(&self) -> bool {
        match self {
            TaskError::Store(s) => s.is_bad_content(),
            TaskError::MissingDependency { .. }
            | TaskError::Cycle { .. }
            | TaskError::DuplicateBatch { .. }
            | TaskError::PlanWithoutId
            | TaskError::NotFound { .. }
            | TaskError::LinkedElsewhere { .. }
            | TaskError::BadTaskFile { .. } => true,
            TaskError::List { .. }
            | TaskError::ToolMissing { .. }
            | TaskError::Spawn { .. }
            | TaskError::ToolFailed { .. }
            | TaskError::ToolOutput { .. }
            | TaskError::Random(_) => false,
        }
    }
}
