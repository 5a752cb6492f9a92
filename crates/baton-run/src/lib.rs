//! Executing a plan: which agent runs next (pure scheduling over the execution state), where an
//! attempt runs (the [`Executor`] seam: local process groups or Slurm jobs), and the points where
//! the batch loop plugs in ([`BatchHooks`]: commit an agent's work, gate and integrate a batch).
//!
//! Everything above the executor — scheduling, retries, the breaker, resume, the batch loop,
//! metrics — is the same whichever executor runs the attempts.
//!
//! - [`sched`]: what may start now (dependencies, slots, overlapping write scopes, sequential
//!   batches, backoff due times, the breaker, the resource gate) — pure.
//! - [`backoff`], [`breaker`], [`classify`]: retry delays, the circuit breaker, failure
//!   classes — pure.
//! - [`attempt`]: rendering one attempt (argv, env, files beside the log) and reading its
//!   output and activity.
//! - [`runner`]: the event loop that applies decisions as persisted transitions.
//! - [`local`], [`supervise`]: the local executor and the supervisor process it starts.
//! - [`preview`]: the `--dry-run` schedule.

pub mod attempt;
pub mod backoff;
pub mod batch_loop;
pub mod breaker;
pub mod cache;
pub mod classify;
pub mod clock;
pub mod commit;
pub mod events;
pub mod executor;
pub mod follow;
pub mod hooks;
pub mod integrate;
pub mod launcher;
pub mod local;
pub mod preview;
pub mod procfs;
pub mod replan;
pub mod resources;
pub mod runner;
pub mod sched;
pub mod supervise;
pub mod timeline;
pub mod watch;

pub use batch_loop::LoopHooks;
pub use events::RunEvent;
pub use executor::{
    Adoption, AttemptEvent, AttemptHandle, AttemptKey, AttemptSpec, EventKind, ExecError, Executor,
    KillReport, Outcome, Resources,
};
pub use hooks::{
    AgentContext, AgentVars, BatchContext, BatchHooks, GateDecision, HookError, NoHooks,
};
pub use local::LocalExecutor;
pub use runner::{
    Interrupter, RunConfig, RunError, RunSummary, Runner, SharedCheckout, Workspaces,
};
