//! The plan model of baton.
//!
//! - [`model`]: plans, batches, agents and scopes as authored (TOML/JSON) and stored (JSON).
//! - [`ids`]: plan, batch and agent ids; agent and batch ids are safe path/branch components.
//! - [`load`]: reading plan files with file:line:column errors.
//! - [`validate`]: pure checks (cycles, missing/duplicate ids, overlapping write scopes, …).
//! - [`dag`]: levels of the batch graph and which batches may run together.
//! - [`glob`]: scope globs: matching and overlap.
//! - [`execution`], [`ExecutionTracker`]: the live state of a run, persisted after every
//!   transition.
//! - [`schema`]: the JSON Schema of a plan, generated from the model's types.
//! - [`store`]: storing plans under `.baton/plans/`.
//! - [`executor`]: the `[executor]` settings (local or Slurm) of a plan or the config.

pub mod dag;
pub mod duration;
pub mod execution;
pub mod executor;
pub mod glob;
pub mod ids;
pub mod load;
pub mod model;
pub mod schema;
pub mod status;
pub mod store;
mod tracker;
pub mod validate;

pub use execution::{
    AgentStart, AttemptHandle, BreakerState, BreakerTrip, Execution, GatePassed, GateVerdict,
    Integration, ProcessRef, TaskRef, TransitionError,
};
pub use ids::{AgentId, BatchId, IdError, PlanId};
pub use load::{LoadError, load_plan};
pub use model::{
    Agent, Batch, BatchGate, BatchKind, GateCheck, GateFailurePolicy, Plan, RateLimit, Scope,
    TaskType,
};
pub use status::{AgentResult, ErrorClass, Leftovers, Status};
pub use tracker::{ExecutionTracker, TrackError};
pub use validate::{Diagnostic, Severity, Validation, validate};
