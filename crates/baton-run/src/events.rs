//! What the runner tells whoever watches: one event per transition, serialisable as one JSON
//! line (`baton run --json`), rendered as lines or a live view by the CLI, and turned into
//! metrics events there.

use std::path::PathBuf;

use baton_plan::{AgentId, BatchId, ErrorClass, PlanId, Status};
use serde::Serialize;

use crate::sched::Wait;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    RunStart {
        plan: PlanId,
        executor: &'static str,
        max_parallel: usize,
        /// An interrupted execution was picked up.
        resumed: bool,
    },
    BatchStart {
        batch: BatchId,
    },
    AgentStart {
        batch: BatchId,
        agent: AgentId,
        attempt: u32,
        cwd: PathBuf,
        log: PathBuf,
    },
    /// The output cache had this attempt's result: it is not run.
    CacheHit {
        batch: BatchId,
        agent: AgentId,
        attempt: u32,
    },
    /// A resumed runner found the attempt still running and watches it again.
    AgentAdopted {
        batch: BatchId,
        agent: AgentId,
        attempt: u32,
        log: PathBuf,
    },
    /// The agent wants to run but does not start yet (said once per reason).
    AgentWaiting {
        #[serde(flatten)]
        wait: Wait,
    },
    /// The runner is stopping an attempt (a timeout, Ctrl-C).
    AgentKill {
        batch: BatchId,
        agent: AgentId,
        attempt: u32,
        reason: &'static str,
    },
    AgentFinish {
        batch: BatchId,
        agent: AgentId,
        attempt: u32,
        status: Status,
        #[serde(skip_serializing_if = "Option::is_none")]
        error_class: Option<ErrorClass>,
        #[serde(skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        duration_ms: u64,
        /// A retry follows after this many milliseconds.
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_in_ms: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// The attempt left processes behind (never silently): still running when the agent
    /// exited (`swept`, stopped by its supervisor), ignoring SIGTERM (`killed_after_grace`),
    /// or alive after every SIGKILL (`pids`, leaked).
    Leak {
        batch: BatchId,
        agent: AgentId,
        attempt: u32,
        swept: u32,
        killed_after_grace: u32,
        pids: Vec<u32>,
    },
    /// Something about an agent the user should know that changes nothing in the run.
    Warning {
        agent: AgentId,
        message: String,
    },
    BreakerOpen {
        class: ErrorClass,
        agents: Vec<AgentId>,
        hint: String,
    },
    GateFailed {
        batch: BatchId,
        findings: String,
        rerun: Vec<AgentId>,
    },
    BatchFinish {
        batch: BatchId,
        status: Status,
        duration_ms: u64,
    },
    /// First Ctrl-C: nothing new starts; running agents finish.
    Stopping {
        running: usize,
    },
    /// Second Ctrl-C: running agents are stopped.
    Killing {
        running: usize,
    },
    RunFinish {
        status: Status,
        /// Stopped before the end (Ctrl-C, breaker); `baton run --resume` continues.
        interrupted: bool,
        duration_ms: u64,
    },
}
