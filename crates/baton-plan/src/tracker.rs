//! Persisting an execution after every transition.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use baton_store::StoreError;

use crate::execution::{AgentStart, Execution, TransitionError};
use crate::ids::{AgentId, BatchId, PlanId, rfc3339_now};
use crate::model::Plan;
use crate::status::{AgentResult, Status};

/// Why a tracked transition did not happen.
#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{}: {source}", path.display())]
    Transition {
        path: PathBuf,
        #[source]
        source: TransitionError,
    },
}

/// Applies transitions to the execution file of one plan.
///
/// Each call takes the file's lock, reads the current state from disk (another process may have
/// moved it on), applies the transition, bumps `revision` and writes atomically before
/// releasing the lock. A refused transition writes nothing.
///
/// A tracker remembers what it wrote last (shared by its clones): when the file still holds
/// exactly those bytes, the next update starts from that value instead of parsing the file
/// again. A runner updates a large execution hundreds of times; parsing it each time was most
/// of its cost.
#[derive(Debug, Clone)]
pub struct ExecutionTracker {
    path: PathBuf,
    plan: Plan,
    plan_id: PlanId,
    last: Arc<Mutex<baton_store::Written<Execution>>>,
}

impl ExecutionTracker {
    /// Track the execution stored at `path`, creating it (all pending) on first use. An
    /// existing file is read (so a damaged one is reported now) but not rewritten.
    pub fn open(path: impl Into<PathBuf>, plan_id: PlanId, plan: Plan) -> Result<Self, TrackError> {
        let tracker = ExecutionTracker {
            path: path.into(),
            plan,
            plan_id,
            last: Arc::default(),
        };
        if tracker.path.exists() {
            tracker.load()?;
        } else {
            // Under the lock: if another process created it meanwhile, theirs is kept as is.
            let now = rfc3339_now(SystemTime::now());
            baton_store::update_json(
                &tracker.path,
                || Execution::new(tracker.plan_id.clone(), &tracker.plan, &now),
                |_| Ok::<(), std::convert::Infallible>(()),
            )?
            .unwrap_or_else(|never| match never {});
        }
        Ok(tracker)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current state on disk.
    pub fn load(&self) -> Result<Execution, StoreError> {
        baton_store::read_versioned(&self.path)
    }

    /// Apply `f` under the lock and persist. `f` gets the plan, the state and the time.
    pub fn update<T>(
        &self,
        f: impl FnOnce(&mut Execution, &str) -> Result<T, TransitionError>,
    ) -> Result<(Execution, T), TrackError> {
        let now = rfc3339_now(SystemTime::now());
        let mut out = None;
        // a poisoned cache is only a cache: start again from the file
        let mut last = self.last.lock().unwrap_or_else(|p| {
            let mut g = p.into_inner();
            *g = None;
            g
        });
        let result = baton_store::update_json_cached(
            &self.path,
            &mut last,
            || Execution::new(self.plan_id.clone(), &self.plan, &now),
            |exec: &mut Execution| {
                let value = f(exec, &now)?;
                exec.revision += 1;
                out = Some(value);
                Ok::<(), TransitionError>(())
            },
        )?;
        match result {
            Ok(exec) => Ok((exec, out.expect("set when f succeeded"))),
            Err(source) => Err(TrackError::Transition {
                path: self.path.clone(),
                source,
            }),
        }
    }

    pub fn start_batch(&self, batch: &BatchId) -> Result<Execution, TrackError> {
        let plan = &self.plan;
        self.update(|e, now| e.start_batch(plan, batch, now))
            .map(|r| r.0)
    }

    /// Returns the new state and the attempt number.
    pub fn start_agent(
        &self,
        batch: &BatchId,
        agent: &AgentId,
        start: AgentStart,
    ) -> Result<(Execution, u32), TrackError> {
        self.update(|e, now| e.start_agent(batch, agent, start, now))
    }

    /// Record where the running attempt of an agent runs.
    pub fn set_handle(
        &self,
        batch: &BatchId,
        agent: &AgentId,
        handle: crate::execution::AttemptHandle,
    ) -> Result<Execution, TrackError> {
        self.update(|e, now| e.set_handle(batch, agent, handle, now))
            .map(|r| r.0)
    }

    pub fn record_agent_result(
        &self,
        batch: &BatchId,
        agent: &AgentId,
        status: Status,
        result: AgentResult,
    ) -> Result<Execution, TrackError> {
        self.update(|e, now| e.record_agent_result(batch, agent, status, result, now))
            .map(|r| r.0)
    }

    /// Send a finished agent back for another attempt after its batch's gate failed.
    pub fn reopen_agent(
        &self,
        batch: &BatchId,
        agent: &AgentId,
        class: crate::status::ErrorClass,
    ) -> Result<Execution, TrackError> {
        self.update(|e, now| e.reopen_agent(batch, agent, class, now))
            .map(|r| r.0)
    }

    pub fn complete_batch(&self, batch: &BatchId, status: Status) -> Result<Execution, TrackError> {
        self.update(|e, now| e.complete_batch(batch, status, now))
            .map(|r| r.0)
    }

    /// Record a replan; the tracker follows the new plan from now on.
    pub fn record_replan(&mut self, plan: Plan, reason: &str) -> Result<Execution, TrackError> {
        let (exec, _) = self.update(|e, now| Ok(e.record_replan(&plan, reason, now)))?;
        self.plan = plan;
        Ok(exec)
    }
}
