//! Statuses and results shared by plans and executions.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The life of a batch or an agent.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[default]
    Pending,
    Running,
    Succeeded,
    Failed,
    /// Not run because something it depends on failed or was cancelled.
    Skipped,
    Cancelled,
}

impl Status {
    pub fn is_pending(&self) -> bool {
        *self == Status::Pending
    }
    /// Succeeded, failed, skipped or cancelled: no further transition is expected.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            Status::Succeeded | Status::Failed | Status::Skipped | Status::Cancelled
        )
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::Cancelled => "cancelled",
        }
    }
}

/// Why an agent failed, for metrics and retries.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Ran past its timeout and was killed.
    Timeout,
    /// Printed nothing for longer than its idle timeout and was killed.
    IdleTimeout,
    /// Exited with a non-zero code.
    ExitNonzero,
    /// Killed by a signal it did not ask for.
    Killed,
    /// Could not be started (command missing, permission).
    SpawnFailed,
    /// Changed files outside its declared write scope.
    ScopeViolation,
    /// The gate after its batch failed.
    GateFailed,
    /// baton itself died while the agent ran; found on resume.
    Orphaned,
    /// Printed nothing within its first-output timeout and was killed.
    FirstOutputTimeout,
    /// Its provider rate-limited it (a configured exit code or output pattern).
    RateLimited,
    /// Stopped by the user (Ctrl-C twice); a resumed run starts it again.
    Interrupted,
    Other,
}

/// What became of one agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub attempts: u32,
    pub duration_ms: u64,
    /// Measured from git, not only self-reported.
    #[serde(default)]
    pub files_changed: Vec<String>,
    /// From the agent's result file, if it wrote one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_class: Option<ErrorClass>,
    /// Processes of the attempt that outlived the agent or ignored its stop; absent when
    /// there were none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leftovers: Option<Leftovers>,
}

/// What the supervisor had to clean up after an attempt: never silent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Leftovers {
    /// Still running when the agent exited on its own; stopped by the supervisor.
    #[serde(default)]
    pub swept: u32,
    /// Survived SIGTERM and were killed with SIGKILL after the grace period.
    #[serde(default)]
    pub killed_after_grace: u32,
    /// Still alive after every SIGKILL (pids): leaked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub survived: Vec<u32>,
}

impl Leftovers {
    /// Nothing was left behind.
    pub fn is_empty(&self) -> bool {
        self.swept == 0 && self.killed_after_grace == 0 && self.survived.is_empty()
    }
}
