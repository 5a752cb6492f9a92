//! The runner: applies [`crate::sched::decide`]'s steps as persisted transitions, starts and
//! adopts attempts through the [`Executor`], and waits for the next event (an attempt
//! finished, Ctrl-C, a kill done) or the earliest deadline (a timeout, a backoff, the
//! breaker's pause) — it never polls.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant, SystemTime};

use baton_plan::model::Isolation;
use baton_plan::{
    AgentId, AgentResult, AgentStart, AttemptHandle, BatchId, ErrorClass, Execution,
    ExecutionTracker, Plan, PlanId, ProcessRef, Status, TrackError, TransitionError,
};

use crate::attempt::{self, SpecInput};
use crate::backoff::{self, Backoff};
use crate::breaker::Breaker;
use crate::classify::{KillReason, classify};
use crate::clock;
use crate::events::RunEvent;
use crate::executor::{
    Adoption, AttemptEvent, AttemptKey, EventKind, Executor, KillReport, Outcome,
};
use crate::hooks::{AgentContext, BatchContext, BatchHooks, GateDecision};
use crate::procfs;
use crate::resources::{self, Limits};
use crate::sched::{self, Decision, Gate, Overlaps, Phase, Step, Wait};

/// Settings of one run (the CLI fills them from flags and config).
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The main checkout: where `isolation = "none"` agents run.
    pub repo_root: PathBuf,
    /// `.baton/executions/<plan>/logs`.
    pub logs_dir: PathBuf,
    pub max_parallel: usize,
    /// Between SIGTERM and SIGKILL when an attempt is stopped.
    pub grace: Duration,
    pub backoff: Backoff,
    /// Distinct agents failing in a row with one environment-level class that stop launching.
    pub breaker_threshold: usize,
    pub rate_limit_cooldown: Duration,
    /// Gate failures that may send agents back for another attempt, per run.
    pub replan_budget: u32,
    /// Retries when neither the agent nor the plan's defaults say.
    pub default_retries: u32,
    /// Resource gate: no new agent below this much free memory (MiB) …
    pub min_free_memory_mb: Option<u64>,
    /// … or above this one-minute load.
    pub max_load: Option<f64>,
    /// A TOML file (`min_free_memory`, `max_load`) whose limits replace the two above,
    /// re-read at every check, so a waiting run can be let go by editing it.
    pub limits_file: Option<PathBuf>,
    /// Seeds the backoff jitter.
    pub nonce: u64,
    /// This process, recorded in the execution while it runs.
    pub runner: Option<ProcessRef>,
    /// The `PATH` agents inherit (a profile's `env` may override it), used to tell a missing
    /// command before starting it; `None` leaves that to the executor.
    pub search_path: Option<std::ffi::OsString>,
}

/// Where agents that run isolated get their worktree.
pub trait Workspaces {
    /// Make (or reuse) the worktree of an agent from `base`; returns its directory and branch.
    fn prepare(
        &self,
        plan: &PlanId,
        agent: &AgentId,
        base: Option<&str>,
    ) -> Result<(PathBuf, String), String>;
    /// The worktrees of several agents from one base, at once (one pool scan, checkouts in
    /// parallel); all or none.
    fn prepare_many(
        &self,
        plan: &PlanId,
        agents: &[AgentId],
        base: Option<&str>,
    ) -> Result<Vec<(PathBuf, String)>, String> {
        agents.iter().map(|a| self.prepare(plan, a, base)).collect()
    }
    /// The attempt in `dir` runs as `process` (a local supervisor): the worktree is locked to
    /// it, so no one reuses it while the agent lives, runner or not.
    fn attach(&self, _dir: &Path, _process: ProcessRef) -> Result<(), String> {
        Ok(())
    }
    /// Files an agent changed in its worktree (measured, not self-reported).
    fn changed_files(&self, _dir: &Path) -> Vec<String> {
        Vec::new()
    }
}

/// Runs everything in the shared checkout (no worktrees).
pub struct SharedCheckout;

impl Workspaces for SharedCheckout {
    fn prepare(
        &self,
        _: &PlanId,
        _: &AgentId,
        _: Option<&str>,
    ) -> Result<(PathBuf, String), String> {
        Err("worktrees are not available here; set isolation = \"none\"".into())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Track(#[from] TrackError),
    #[error("{0}")]
    Busy(String),
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub status: Status,
    /// Stopped before the end (Ctrl-C, an open breaker): `--resume` continues.
    pub interrupted: bool,
    /// What the breaker says to fix, if it stopped the run.
    pub breaker: Option<String>,
    pub execution: Execution,
}

/// Messages the runner waits for.
pub enum Msg {
    Attempt(AttemptEvent),
    Interrupt,
    KillDone(AgentId, Result<KillReport, String>),
}

/// Hands Ctrl-C to a running runner from another thread.
#[derive(Clone)]
pub struct Interrupter(Sender<Msg>);

impl Interrupter {
    pub fn interrupt(&self) {
        let _ = self.0.send(Msg::Interrupt);
    }
}

/// An attempt's end, decided and waiting to be recorded.
struct Concluded {
    key: AttemptKey,
    status: Status,
    result: AgentResult,
    detail: Option<String>,
}

struct Live {
    key: AttemptKey,
    handle: Option<AttemptHandle>,
    log: PathBuf,
    cwd: PathBuf,
    branch: Option<String>,
    isolated: bool,
    started: Instant,
    wall: Option<Instant>,
    first_output: Option<Instant>,
    idle: Option<Duration>,
    idle_check: Option<Instant>,
    kill: Option<KillReason>,
    /// Pids a stop left alive (the supervisor itself was stuck), for the attempt's record.
    leaked: Vec<u32>,
}

pub struct Runner {
    /// Shared, not copied: the loop borrows it while it changes the runner.
    plan: Arc<Plan>,
    plan_id: PlanId,
    tracker: ExecutionTracker,
    executor: Arc<dyn Executor>,
    hooks: Box<dyn BatchHooks>,
    workspaces: Box<dyn Workspaces>,
    cfg: RunConfig,
    overlaps: Overlaps,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
    events: Sender<AttemptEvent>,
    exec: Execution,
    live: BTreeMap<AgentId, Live>,
    not_before: BTreeMap<AgentId, u64>,
    breaker: Breaker,
    stop: u8,
    said: BTreeSet<String>,
    batch_started: BTreeMap<BatchId, Instant>,
    bases: BTreeMap<BatchId, Option<String>>,
    epoch: Instant,
    last: Decision,
    /// Transitions applied in memory, written with the next persisted one (group commit).
    pending: Vec<Pending>,
    /// Some of `pending` must be on disk before the runner waits (not only handles that the
    /// supervisors' pid files also record).
    must_flush: bool,
}

type Pending = Box<dyn Fn(&mut Execution, &str) -> Result<(), TransitionError>>;

/// Where an attempt runs: its directory and, in a worktree, its branch.
type Place = Result<(PathBuf, Option<String>), String>;

fn first_output_of(plan: &Plan, agent: &AgentId) -> Option<Duration> {
    let (_, a) = plan.agent(agent)?;
    a.first_output_timeout
        .or(plan.defaults.first_output_timeout)
        .map(|d| d.0)
}

fn idle_of(plan: &Plan, agent: &AgentId) -> Option<Duration> {
    let (_, a) = plan.agent(agent)?;
    a.idle_timeout.or(plan.defaults.idle_timeout).map(|d| d.0)
}

impl Runner {
    pub fn new(
        plan: Plan,
        plan_id: PlanId,
        tracker: ExecutionTracker,
        executor: Box<dyn Executor>,
        hooks: Box<dyn BatchHooks>,
        workspaces: Box<dyn Workspaces>,
        cfg: RunConfig,
    ) -> Result<Self, RunError> {
        let (tx, rx) = channel();
        let (events, attempt_rx) = channel::<AttemptEvent>();
        let forward = tx.clone();
        std::thread::Builder::new()
            .name("attempt-events".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                for ev in attempt_rx {
                    if forward.send(Msg::Attempt(ev)).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| RunError::Busy(format!("cannot start a thread: {e}")))?;
        let exec = tracker.load().map_err(TrackError::from)?;
        // what an earlier runner decided and persisted: backoff due times, the breaker
        let not_before = exec
            .batches
            .iter()
            .flat_map(|b| &b.agents)
            .filter_map(|a| Some((a.id.clone(), clock::parse_ms(a.retry_at.as_deref()?)?)))
            .collect();
        Ok(Runner {
            overlaps: Overlaps::of(&plan),
            breaker: Breaker::restore(
                cfg.breaker_threshold,
                cfg.rate_limit_cooldown.as_millis() as u64,
                exec.breaker.as_ref(),
            ),
            plan: Arc::new(plan),
            plan_id,
            tracker,
            executor: Arc::from(executor),
            hooks,
            workspaces,
            cfg,
            tx,
            rx,
            events,
            exec,
            live: BTreeMap::new(),
            not_before,
            stop: 0,
            said: BTreeSet::new(),
            batch_started: BTreeMap::new(),
            bases: BTreeMap::new(),
            epoch: Instant::now(),
            last: Decision::default(),
            pending: Vec::new(),
            must_flush: false,
        })
    }

    pub fn interrupter(&self) -> Interrupter {
        Interrupter(self.tx.clone())
    }

    /// Wall-clock milliseconds: due times are persisted and outlive this runner.
    fn now_ms(&self) -> u64 {
        clock::now_ms()
    }

    /// The instant of a wall-clock due time (now, if it has passed).
    fn instant_at(&self, ms: u64) -> Instant {
        Instant::now() + Duration::from_millis(ms.saturating_sub(self.now_ms()))
    }

    /// Persist `f` (after any deferred transitions) and take the state it leaves.
    fn update<T>(
        &mut self,
        f: impl FnOnce(&mut Execution, &str) -> Result<T, TransitionError>,
    ) -> Result<T, RunError> {
        let pending = std::mem::take(&mut self.pending);
        self.must_flush = false;
        let (exec, value) = self.tracker.update(|e, now| {
            for p in &pending {
                p(e, now)?;
            }
            f(e, now)
        })?;
        self.exec = exec;
        Ok(value)
    }

    /// Apply a transition now in memory; it is written with the next persisted transition,
    /// and in any case before the runner waits for anything.
    fn defer(&mut self, f: Pending) -> Result<(), RunError> {
        self.defer_recoverable(f)?;
        self.must_flush = true;
        Ok(())
    }

    /// Like [`Self::defer`], for a transition that a crash cannot lose because it can be
    /// found again on resume (a local attempt's handle: its supervisor's pid file says it):
    /// it waits for the next write that must happen anyway.
    fn defer_recoverable(&mut self, f: Pending) -> Result<(), RunError> {
        let now = baton_plan::ids::rfc3339_now(SystemTime::now());
        f(&mut self.exec, &now).map_err(|source| TrackError::Transition {
            path: self.tracker.path().to_path_buf(),
            source,
        })?;
        self.pending.push(f);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), RunError> {
        if self.must_flush {
            self.update(|_, _| Ok(()))?;
        }
        Ok(())
    }

    /// Run until every batch is finished, or launching stopped and nothing runs any more.
    pub fn run(mut self, observe: &mut dyn FnMut(&RunEvent)) -> Result<RunSummary, RunError> {
        let me = self.cfg.runner;
        let resumed = self.update(|e, _| {
            if let Some(other) = e.runner
                && Some(other) != me
                && procfs::is_alive(&other)
            {
                return Err(TransitionError::BadState {
                    what: format!("the execution (driven by baton run, pid {})", other.pid),
                    status: "running",
                    action: "running it from a second process",
                });
            }
            e.runner = me;
            Ok(e.batches.iter().any(|b| b.status != Status::Pending))
        })?;
        observe(&RunEvent::RunStart {
            plan: self.plan_id.clone(),
            executor: self.executor.kind(),
            max_parallel: self.cfg.max_parallel,
            resumed,
        });
        self.resume_batches();
        self.adopt_running(observe)?;
        loop {
            self.drive(observe)?;
            // nothing waits on a state that is not on disk
            self.flush()?;
            if self.live.is_empty() && !self.worth_waiting() {
                break;
            }
            let timeout = self
                .next_deadline()
                .map(|d| d.saturating_duration_since(Instant::now()));
            let msg = match timeout {
                Some(t) => match self.rx.recv_timeout(t) {
                    Ok(m) => Some(m),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                },
                None => match self.rx.recv() {
                    Ok(m) => Some(m),
                    Err(_) => break,
                },
            };
            // everything already queued is handled together: ends are recorded in one write
            let mut msgs: Vec<Msg> = msg.into_iter().collect();
            msgs.extend(self.rx.try_iter());
            let mut ends = Vec::new();
            for m in msgs {
                match m {
                    Msg::Attempt(AttemptEvent {
                        key,
                        kind: EventKind::Finished(outcome),
                    }) => ends.push((key, outcome, None)),
                    other => self.handle(other, observe),
                }
            }
            self.finished_many(ends, observe)?;
            self.check_deadlines(observe);
        }
        let exec = {
            self.update(|e, _| {
                e.runner = None;
                Ok(())
            })?;
            self.exec.clone()
        };
        let interrupted = !exec.status.is_finished();
        observe(&RunEvent::RunFinish {
            status: exec.status,
            interrupted,
            duration_ms: self.epoch.elapsed().as_millis() as u64,
        });
        Ok(RunSummary {
            status: exec.status,
            interrupted,
            breaker: self
                .breaker
                .trip()
                .filter(|_| self.breaker.is_open(self.now_ms()))
                .map(|t| t.hint()),
            execution: exec,
        })
    }

    fn handle(&mut self, msg: Msg, observe: &mut dyn FnMut(&RunEvent)) {
        match msg {
            Msg::Interrupt => self.interrupt(observe),
            // the supervisor itself was stuck and was killed outright, with what it held
            Msg::KillDone(agent, Ok(r)) if !r.leaked.is_empty() => {
                // every agent the runner stops is one of the plan's
                let Some((batch, attempt)) = self
                    .live
                    .get(&agent)
                    .map(|l| (l.key.batch.clone(), l.key.attempt))
                    .or_else(|| {
                        self.plan
                            .agent(&agent)
                            .map(|(b, _)| (b.id.clone(), self.attempt_of(&agent)))
                    })
                else {
                    return;
                };
                observe(&RunEvent::Leak {
                    batch: batch.clone(),
                    agent: agent.clone(),
                    attempt,
                    swept: 0,
                    killed_after_grace: 0,
                    pids: r.leaked.clone(),
                });
                // into the attempt's record: with its result if it has not ended yet, else
                // added to the result already recorded
                match self.live.get_mut(&agent) {
                    Some(l) if l.key.attempt == attempt => l.leaked.extend(&r.leaked),
                    _ => {
                        let left = baton_plan::Leftovers {
                            survived: r.leaked,
                            ..Default::default()
                        };
                        let _ = self.defer(Box::new(move |e, now| {
                            e.add_leftovers(&batch, &agent, &left, now)
                        }));
                    }
                }
            }
            // a failed kill leaves the attempt running: its Finished event still comes
            Msg::KillDone(..) | Msg::Attempt(_) => {}
        }
    }

    fn attempt_of(&self, agent: &AgentId) -> u32 {
        self.exec
            .batches
            .iter()
            .flat_map(|b| &b.agents)
            .find(|a| &a.id == agent)
            .map_or(0, |a| a.attempt)
    }

    /// With nothing running: is there something that a wait could unblock?
    fn worth_waiting(&self) -> bool {
        if self.stop > 0 {
            return false;
        }
        if self.breaker.is_open(self.now_ms()) {
            return self.breaker.reopens_at().is_some();
        }
        self.last
            .waits
            .iter()
            .any(|w| matches!(w, Wait::Backoff { .. } | Wait::Busy { .. }))
    }

    fn stopped_reason(&self) -> Option<String> {
        if self.stop > 0 {
            return Some("Ctrl-C: no new agent starts".into());
        }
        let now = self.now_ms();
        if self.breaker.is_open(now) {
            return self
                .breaker
                .trip()
                .map(|t| format!("breaker open: {}", t.hint()));
        }
        None
    }

    fn busy_reason(&self) -> Option<String> {
        let mut limits = Limits {
            min_free_memory: self.cfg.min_free_memory_mb,
            max_load: self.cfg.max_load,
        };
        if let Some(file) = &self.cfg.limits_file {
            match resources::read_limits(file) {
                Ok(l) => limits = limits.overridden_by(l),
                // held back until the file is fixed: a typo must not lift a limit
                Err(e) => return Some(format!("the limits file does not parse: {e}")),
            }
        }
        if limits == Limits::default() {
            return None;
        }
        limits.busy(procfs::available_memory_mb(), procfs::load_average())
    }

    /// Apply decisions until there are none.
    fn drive(&mut self, observe: &mut dyn FnMut(&RunEvent)) -> Result<(), RunError> {
        loop {
            let stopped = self.stopped_reason();
            let busy = self.busy_reason();
            let d = sched::decide(
                &self.plan,
                &self.exec,
                &self.overlaps,
                &Gate {
                    now_ms: self.now_ms(),
                    max_parallel: self.cfg.max_parallel,
                    not_before: &self.not_before,
                    stopped: stopped.as_deref(),
                    busy: busy.as_deref(),
                    default_retries: self.cfg.default_retries,
                },
            );
            for w in &d.waits {
                // said once per agent and kind of reason
                let key = match w {
                    Wait::Scope { agent, with } => format!("scope {agent} {with}"),
                    Wait::Backoff { agent, until_ms } => format!("backoff {agent} {until_ms}"),
                    Wait::Slots { agent } => format!("slots {agent}"),
                    Wait::Busy { agent, .. } => format!("busy {agent}"),
                    Wait::Stopped { agent, .. } => format!("stopped {agent}"),
                };
                if self.said.insert(key) && !matches!(w, Wait::Slots { .. }) {
                    observe(&RunEvent::AgentWaiting { wait: w.clone() });
                }
            }
            if d.steps.is_empty() {
                self.last = d;
                return Ok(());
            }
            let mut launches = Vec::new();
            for step in d.steps {
                match step {
                    Step::Launch { batch, agent } => launches.push((batch, agent)),
                    other => self.apply(other, observe)?,
                }
            }
            self.launch_many(launches, observe)?;
        }
    }
}

mod batches;
mod ends;
mod launch;

#[cfg(test)]
#[path = "runner_tests.rs"]
mod tests;
