//! Executing a plan: which agent runs next (pure scheduling over the execution state), where an
//! attempt runs (the [`Executor`] seam: local process groups or Slurm jobs), and the points where
//! the batch loop plugs in ([`BatchHooks`]: commit an agent's work, gate and integrate a batch).
//!
//! Everything above the executor — scheduling, retries, the breaker, resume, the batch loop,
//! metrics — is the same whichever executor runs the attempts.

pub mod batch_loop;
pub mod commit;
pub mod executor;
pub mod hooks;
pub mod integrate;
pub mod replan;

pub use batch_loop::LoopHooks;
pub use executor::{
    Adoption, AttemptEvent, AttemptHandle, AttemptKey, AttemptSpec, EventKind, ExecError, Executor,
    KillReport, Outcome, Resources,
};
pub use hooks::{
    AgentContext, AgentVars, BatchContext, BatchHooks, GateDecision, HookError, NoHooks,
};
