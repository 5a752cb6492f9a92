//! Plans linked to a task system.
//!
//! - [`model`]: tasks as baton sees them in any backend, and file-backend task ids
//!   (`T-YYYYMMDD-HHMMSS-<8 hex>-NNN`; legacy `<4 hex>` ids parse).
//! - [`store`]: the [`TaskStore`] trait and `ready` (open tasks with no open blocker).
//! - [`file`]: the built-in backend, one JSON file per task in `.baton/tasks/`.
//! - [`taskwarrior`]: Taskwarrior through `task import` / `task export` JSON.
//! - [`from_plan`]: one parent task per plan and one task per batch, dependencies from
//!   `depends_on`, checked in full before anything is written; links both ways.
//!
//! Backends get every path, program and environment variable they use from the caller: this
//! crate never reads the process environment.

mod errors;
pub mod file;
pub mod from_plan;
pub mod model;
pub mod store;
pub mod taskwarrior;

pub use errors::TaskError;
pub use model::{NewTask, Task, TaskRef, TaskStatus};
pub use store::{TaskStore, ready};
