//! The executor seam: where one attempt of one agent runs.
//!
//! The runner decides *what* runs and *when*; an [`Executor`] decides *where*: `local` runs the
//! attempt as a process group on this machine, `slurm` submits it as a job. The runner records
//! the [`AttemptHandle`] an executor returns in the execution before it waits on anything, so a
//! runner that died can find the attempt again ([`Executor::adopt`]) and never starts a second
//! one for it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::time::Duration;

use baton_plan::{AgentId, BatchId, PlanId};

/// Which attempt an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttemptKey {
    pub batch: BatchId,
    pub agent: AgentId,
    /// 1 for the first attempt.
    pub attempt: u32,
}

/// One attempt, fully decided: argv is rendered (placeholders filled per element, never a shell
/// string), the directory exists, the log path is chosen.
#[derive(Debug, Clone)]
pub struct AttemptSpec {
    pub plan: PlanId,
    pub key: AttemptKey,
    pub argv: Vec<String>,
    /// The agent's worktree, or the main checkout for `isolation = "none"`.
    pub cwd: PathBuf,
    /// `BATON_PLAN_ID`, `BATON_BATCH_ID`, `BATON_AGENT_ID`, `BATON_ATTEMPT`, `BATON_WORKTREE`,
    /// `BATON_RESULT_FILE` and the profile's environment. Values are never logged.
    pub env: BTreeMap<String, String>,
    /// stdout and stderr of the attempt, together.
    pub log: PathBuf,
    /// Wall-clock limit; an executor that can enforce it natively (a Slurm time limit) does.
    pub timeout: Option<Duration>,
    pub resources: Resources,
}

/// Hints for executors that allocate resources (cluster executors); `local` ignores them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpus: Option<u32>,
    pub memory_mb: Option<u64>,
}

/// Where an attempt runs; lives in `baton_plan` because the execution persists it.
pub use baton_plan::AttemptHandle;

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The agent exited with this code (0 is success).
    Exited(i32),
    /// Killed by a signal baton did not send.
    Signalled(i32),
    /// The executor's wall-clock limit ended it (a Slurm `TIMEOUT`, a local deadline).
    TimedOut,
    /// baton stopped it (idle timeout, Ctrl-C, a breaker): the runner knows which.
    Cancelled,
    /// It never started: the command is missing, the job was refused.
    SpawnFailed(String),
    /// It never started through no fault of the agent, and nothing will start it under this
    /// attempt number (the launcher broke while asked for it; the runner claimed the attempt
    /// so no late supervisor runs it): a new attempt starts at once, as after an interruption,
    /// whatever the retries.
    NotStarted(String),
    /// It is gone and its status cannot be known (a process that vanished while no runner
    /// watched and left no status behind).
    Lost(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// The attempt printed something or touched its worktree: it is not idle.
    Activity,
    Finished(Outcome),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptEvent {
    pub key: AttemptKey,
    pub kind: EventKind,
}

/// What a resumed runner finds of an attempt an earlier runner started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adoption {
    /// Still queued or running; a `Finished` event follows on the channel.
    Running,
    /// It ended while no runner watched; this is how.
    Finished(Outcome),
}

/// What a kill left behind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KillReport {
    /// Descendants that were still alive after SIGKILL (pids); empty when nothing leaked.
    pub leaked: Vec<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("bad executor settings: {0}")]
    Config(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
    /// See [`Outcome::NotStarted`].
    #[error("{0}")]
    NotStarted(String),
}

/// Where attempts run. Implementations send [`AttemptEvent`]s for every attempt they started or
/// adopted, and a `Finished` event exactly once per attempt.
pub trait Executor: Send + Sync {
    /// `local`, `slurm`: shown in output and recorded in metrics.
    fn kind(&self) -> &'static str;

    /// Start an attempt. Returns once it is started (or submitted) with its handle; the runner
    /// persists the handle before anything else.
    fn start(
        &self,
        spec: &AttemptSpec,
        events: Sender<AttemptEvent>,
    ) -> Result<AttemptHandle, ExecError>;

    /// Reattach to an attempt an earlier runner started (after a crash). Never starts anything.
    fn adopt(
        &self,
        spec: &AttemptSpec,
        handle: &AttemptHandle,
        events: Sender<AttemptEvent>,
    ) -> Result<Adoption, ExecError>;

    /// Find an attempt whose start the runner recorded (the agent is `running`) but whose
    /// handle it did not get to persist before it died. Returns `None` when the attempt
    /// provably never started *and never will* (an executor that cannot tell keeps the
    /// default, and the runner treats the attempt as never started).
    fn adopt_unrecorded(
        &self,
        _spec: &AttemptSpec,
        _events: Sender<AttemptEvent>,
    ) -> Result<Option<(AttemptHandle, Adoption)>, ExecError> {
        Ok(None)
    }

    /// Stop an attempt and everything it started; returns when nothing of it is left, or
    /// reports what leaked. `grace` is the time between the polite and the forced stop.
    fn kill(&self, handle: &AttemptHandle, grace: Duration) -> Result<KillReport, ExecError>;
}
