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
use crate::events::RunEvent;
use crate::executor::{
    Adoption, AttemptEvent, AttemptKey, EventKind, Executor, KillReport, Outcome,
};
use crate::hooks::{AgentContext, BatchContext, BatchHooks, GateDecision};
use crate::procfs;
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
}

pub struct Runner {
    plan: Plan,
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
    replans_used: u32,
    said: BTreeSet<String>,
    batch_started: BTreeMap<BatchId, Instant>,
    bases: BTreeMap<BatchId, Option<String>>,
    epoch: Instant,
    last: Decision,
}

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
        Ok(Runner {
            overlaps: Overlaps::of(&plan),
            breaker: Breaker::new(
                cfg.breaker_threshold,
                cfg.rate_limit_cooldown.as_millis() as u64,
            ),
            plan,
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
            not_before: BTreeMap::new(),
            stop: 0,
            replans_used: 0,
            said: BTreeSet::new(),
            batch_started: BTreeMap::new(),
            bases: BTreeMap::new(),
            epoch: Instant::now(),
            last: Decision::default(),
        })
    }

    pub fn interrupter(&self) -> Interrupter {
        Interrupter(self.tx.clone())
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn update<T>(
        &mut self,
        f: impl FnOnce(&mut Execution, &str) -> Result<T, TransitionError>,
    ) -> Result<T, RunError> {
        let (exec, value) = self.tracker.update(f)?;
        self.exec = exec;
        Ok(value)
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
        self.adopt_running(observe)?;
        loop {
            self.drive(observe)?;
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
            Msg::KillDone(agent, Ok(r)) if !r.leaked.is_empty() => observe(&RunEvent::Leak {
                agent,
                pids: r.leaked,
            }),
            // a failed kill leaves the attempt running: its Finished event still comes
            Msg::KillDone(..) | Msg::Attempt(_) => {}
        }
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
        if let (Some(min), Some(free)) =
            (self.cfg.min_free_memory_mb, procfs::available_memory_mb())
            && free < min
        {
            return Some(format!("{free} MiB free memory, below the {min} MiB limit"));
        }
        if let (Some(max), Some(load)) = (self.cfg.max_load, procfs::load_average())
            && load > max
        {
            return Some(format!("load {load:.1}, above the {max:.1} limit"));
        }
        None
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

    fn apply(&mut self, step: Step, observe: &mut dyn FnMut(&RunEvent)) -> Result<(), RunError> {
        match step {
            Step::StartBatch(b) => {
                let plan = self.plan.clone();
                self.update(|e, now| e.start_batch(&plan, &b, now))?;
                let base = self.hooks.base_for(&self.plan_id, &b).unwrap_or(None);
                self.bases.insert(b.clone(), base);
                self.batch_started.insert(b.clone(), Instant::now());
                observe(&RunEvent::BatchStart { batch: b });
            }
            Step::SkipBatch(b) => {
                self.update(|e, now| e.skip_batch(&b, now))?;
                observe(&RunEvent::BatchFinish {
                    batch: b,
                    status: Status::Skipped,
                    duration_ms: 0,
                });
            }
            Step::Launch { batch, agent } => self.launch_many(vec![(batch, agent)], observe)?,
            Step::GateBatch(b) => self.gate(&b, observe)?,
            Step::FailBatch(b) => self.complete(&b, Status::Failed, observe)?,
        }
        Ok(())
    }

    fn complete(
        &mut self,
        b: &BatchId,
        status: Status,
        observe: &mut dyn FnMut(&RunEvent),
    ) -> Result<(), RunError> {
        self.update(|e, now| e.complete_batch(b, status, now))?;
        let duration_ms = self
            .batch_started
            .get(b)
            .map_or(0, |t| t.elapsed().as_millis() as u64);
        observe(&RunEvent::BatchFinish {
            batch: b.clone(),
            status,
            duration_ms,
        });
        Ok(())
    }

    fn gate(&mut self, b: &BatchId, observe: &mut dyn FnMut(&RunEvent)) -> Result<(), RunError> {
        let agents = self
            .exec
            .batch(b)
            .map(|s| {
                s.agents
                    .iter()
                    .map(|a| (a.id.clone(), a.branch.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let ctx = BatchContext {
            plan: self.plan_id.clone(),
            batch: b.clone(),
            agents,
        };
        let decision = self
            .hooks
            .after_batch(&ctx)
            .unwrap_or_else(|e| GateDecision::Fail {
                report: None,
                findings: format!("the batch's gate could not run: {e}"),
                rerun: Vec::new(),
            });
        match decision {
            GateDecision::Pass => self.complete(b, Status::Succeeded, observe),
            GateDecision::Fail {
                findings, rerun, ..
            } => {
                let rerun: Vec<AgentId> = rerun
                    .into_iter()
                    .filter(|a| {
                        self.exec
                            .batch(b)
                            .is_some_and(|s| s.agents.iter().any(|x| &x.id == a))
                    })
                    .collect();
                observe(&RunEvent::GateFailed {
                    batch: b.clone(),
                    findings,
                    rerun: rerun.clone(),
                });
                if rerun.is_empty() || self.replans_used >= self.cfg.replan_budget {
                    return self.complete(b, Status::Failed, observe);
                }
                self.replans_used += 1;
                for a in &rerun {
                    self.update(|e, now| e.reopen_agent(b, a, ErrorClass::GateFailed, now))?;
                }
                Ok(())
            }
        }
    }

    /// Where an agent will run: its earlier worktree, a new one from the pool, or the shared
    /// checkout.
    fn place(
        &self,
        b: &BatchId,
        a: &AgentId,
        isolated: bool,
    ) -> Result<(PathBuf, Option<String>), String> {
        if !isolated {
            return Ok((self.cfg.repo_root.clone(), None));
        }
        let previous = self
            .exec
            .batch(b)
            .and_then(|s| s.agents.iter().find(|x| &x.id == a))
            .and_then(|s| Some((s.worktree.clone()?, s.branch.clone())))
            .filter(|(w, _)| w.is_dir());
        if let Some(p) = previous {
            return Ok(p);
        }
        let base = self.bases.get(b).cloned().flatten();
        self.workspaces
            .prepare(&self.plan_id, a, base.as_deref())
            .map(|(d, br)| (d, Some(br)))
    }

    /// Start the next attempt of several agents. Their starts are recorded in one write before
    /// anything is spawned, their handles in one write after, before anything waits on them.
    fn launch_many(
        &mut self,
        launches: Vec<(BatchId, AgentId)>,
        observe: &mut dyn FnMut(&RunEvent),
    ) -> Result<(), RunError> {
        if launches.is_empty() {
            return Ok(());
        }
        let plan = self.plan.clone();
        struct Prepared {
            b: BatchId,
            a: AgentId,
            isolated: bool,
            cwd: PathBuf,
            branch: Option<String>,
            error: Option<String>,
        }
        let mut prepared = Vec::new();
        for (b, a) in launches {
            let Some((_, agent)) = plan.agent(&a) else {
                continue;
            };
            let isolated = attempt::isolation_of(&plan, agent) == Isolation::Worktree;
            let (cwd, branch, error) = match self.place(&b, &a, isolated) {
                Ok((d, br)) => (d, br, None),
                Err(e) => (
                    self.cfg.repo_root.clone(),
                    None,
                    Some(format!("cannot prepare the worktree: {e}")),
                ),
            };
            prepared.push(Prepared {
                b,
                a,
                isolated,
                cwd,
                branch,
                error,
            });
        }
        let attempts = self.update(|e, now| {
            prepared
                .iter()
                .map(|p| {
                    let start = AgentStart {
                        process: None,
                        worktree: p.isolated.then(|| p.cwd.clone()),
                        branch: p.branch.clone(),
                    };
                    e.start_agent(&p.b, &p.a, start, now)
                })
                .collect::<Result<Vec<u32>, _>>()
        })?;
        let mut started = Vec::new();
        let mut failed = Vec::new();
        for (p, attempt) in prepared.into_iter().zip(attempts) {
            let Some((_, agent)) = plan.agent(&p.a) else {
                continue;
            };
            let (spec, prompt) = attempt::spec(&SpecInput {
                plan: &plan,
                plan_id: &self.plan_id,
                batch: &p.b,
                agent,
                attempt,
                cwd: &p.cwd,
                branch: p.branch.as_deref(),
                logs_dir: &self.cfg.logs_dir,
            });
            let now = Instant::now();
            let live = Live {
                key: spec.key.clone(),
                handle: None,
                log: spec.log.clone(),
                cwd: p.cwd.clone(),
                branch: p.branch.clone(),
                isolated: p.isolated,
                started: now,
                wall: spec.timeout.map(|t| now + t),
                first_output: first_output_of(&plan, &p.a).map(|t| now + t),
                idle: idle_of(&plan, &p.a),
                idle_check: idle_of(&plan, &p.a).map(|t| now + t),
                kill: None,
            };
            let result = match p.error {
                Some(e) => Err(e),
                None => self.start_one(&spec, prompt.as_ref()),
            };
            self.live.insert(p.a.clone(), live);
            match result {
                Ok(handle) => {
                    started.push((p.b, p.a, handle, spec.log, p.cwd, p.isolated, attempt))
                }
                Err(e) => failed.push((spec.key, Outcome::SpawnFailed(e), None)),
            }
        }
        if !started.is_empty() {
            // persisted before anything waits on the attempts
            self.update(|e, now| {
                for (b, a, handle, ..) in &started {
                    e.set_handle(b, a, handle.clone(), now)?;
                }
                Ok(())
            })?;
        }
        for (b, a, handle, log, cwd, isolated, attempt) in started {
            if let (true, AttemptHandle::Local { pid, start_time }) = (isolated, &handle)
                && let Err(e) = self.workspaces.attach(
                    &cwd,
                    ProcessRef {
                        pid: *pid,
                        start_time: *start_time,
                    },
                )
            {
                observe(&RunEvent::AgentWaiting {
                    wait: Wait::Busy {
                        agent: a.clone(),
                        why: format!("its worktree could not be locked to it: {e}"),
                    },
                });
            }
            if let Some(l) = self.live.get_mut(&a) {
                l.handle = Some(handle);
            }
            observe(&RunEvent::AgentStart {
                batch: b,
                agent: a,
                attempt,
                cwd,
                log,
            });
        }
        self.finished_many(failed, observe)
    }

    /// Check the command can start, write the prompt file, and hand the attempt to the
    /// executor.
    fn start_one(
        &self,
        spec: &crate::executor::AttemptSpec,
        prompt: Option<&(PathBuf, String)>,
    ) -> Result<AttemptHandle, String> {
        let search_path = spec
            .env
            .get("PATH")
            .map(std::ffi::OsString::from)
            .or_else(|| self.cfg.search_path.clone());
        match spec.argv.first() {
            Some(p) if self.executor.kind() == "local" => {
                attempt::preflight(p, &spec.cwd, search_path.as_deref())?;
            }
            Some(_) => {}
            None => return Err("the command is empty".to_owned()),
        }
        if let Some(dir) = spec.log.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        if let Some((path, text)) = prompt {
            baton_store::write_atomic(path, text.as_bytes()).map_err(|e| e.to_string())?;
        }
        self.executor
            .start(spec, self.events.clone())
            .map_err(|e| e.to_string())
    }

    /// After a crash: watch again what still runs, record what ended meanwhile.
    fn adopt_running(&mut self, observe: &mut dyn FnMut(&RunEvent)) -> Result<(), RunError> {
        let running: Vec<(BatchId, baton_plan::execution::AgentState)> = self
            .exec
            .batches
            .iter()
            .flat_map(|b| b.agents.iter().map(move |a| (b.id.clone(), a.clone())))
            .filter(|(_, a)| a.status == Status::Running)
            .collect();
        let plan = self.plan.clone();
        for (b, state) in running {
            let Some((_, agent)) = plan.agent(&state.id) else {
                continue;
            };
            let isolated = attempt::isolation_of(&plan, agent) == Isolation::Worktree;
            let cwd = state
                .worktree
                .clone()
                .unwrap_or_else(|| self.cfg.repo_root.clone());
            let (spec, _) = attempt::spec(&SpecInput {
                plan: &plan,
                plan_id: &self.plan_id,
                batch: &b,
                agent,
                attempt: state.attempt,
                cwd: &cwd,
                branch: state.branch.as_deref(),
                logs_dir: &self.cfg.logs_dir,
            });
            let found = match &state.handle {
                Some(h) => self
                    .executor
                    .adopt(&spec, h, self.events.clone())
                    .map(|a| Some((h.clone(), a))),
                None => self.executor.adopt_unrecorded(&spec, self.events.clone()),
            };
            let now = Instant::now();
            let live = Live {
                key: spec.key.clone(),
                handle: None,
                log: spec.log.clone(),
                cwd,
                branch: state.branch.clone(),
                isolated,
                started: now,
                wall: spec.timeout.map(|t| now + t),
                first_output: None,
                idle: idle_of(&plan, &state.id),
                idle_check: idle_of(&plan, &state.id).map(|t| now + t),
                kill: None,
            };
            let key = live.key.clone();
            self.live.insert(state.id.clone(), live);
            match found {
                Ok(Some((handle, adoption))) => {
                    if state.handle.is_none() {
                        self.update(|e, now| e.set_handle(&b, &state.id, handle.clone(), now))?;
                    }
                    if let Some(l) = self.live.get_mut(&state.id) {
                        l.handle = Some(handle);
                    }
                    match adoption {
                        Adoption::Running => observe(&RunEvent::AgentAdopted {
                            batch: b.clone(),
                            agent: state.id.clone(),
                            attempt: state.attempt,
                        }),
                        Adoption::Finished(outcome) => {
                            self.finished(&key, outcome, None, observe)?;
                        }
                    }
                }
                // it never started (the runner died between recording and starting it)
                Ok(None) => self.finished(
                    &key,
                    Outcome::Cancelled,
                    Some(KillReason::Interrupt),
                    observe,
                )?,
                Err(e) => self.finished(&key, Outcome::Lost(e.to_string()), None, observe)?,
            }
        }
        Ok(())
    }

    fn finished(
        &mut self,
        key: &AttemptKey,
        outcome: Outcome,
        reason: Option<KillReason>,
        observe: &mut dyn FnMut(&RunEvent),
    ) -> Result<(), RunError> {
        self.finished_many(vec![(key.clone(), outcome, reason)], observe)
    }

    /// Record the ends of several attempts in one persisted transition (group commit: a burst
    /// of agents ending costs one durable write, not one each).
    fn finished_many(
        &mut self,
        ends: Vec<(AttemptKey, Outcome, Option<KillReason>)>,
        observe: &mut dyn FnMut(&RunEvent),
    ) -> Result<(), RunError> {
        let concluded: Vec<Concluded> = ends
            .into_iter()
            .filter_map(|(key, outcome, reason)| self.conclude(&key, outcome, reason))
            .collect();
        if concluded.is_empty() {
            return Ok(());
        }
        self.update(|e, now| {
            for c in &concluded {
                e.record_agent_result(&c.key.batch, &c.key.agent, c.status, c.result.clone(), now)?;
            }
            Ok(())
        })?;
        let plan = self.plan.clone();
        for c in concluded {
            let key = &c.key;
            let now_ms = self.now_ms();
            let mut retry_in_ms = None;
            if c.status == Status::Succeeded {
                self.breaker.succeeded();
                self.not_before.remove(&key.agent);
            } else if let Some(class) = c.result.error_class {
                if let Some(trip) = self.breaker.failed(&key.agent, class, now_ms) {
                    observe(&RunEvent::BreakerOpen {
                        class: trip.class,
                        agents: trip.agents.clone(),
                        hint: trip.hint(),
                    });
                }
                let retries = sched::retries_of(&plan, &key.agent, self.cfg.default_retries);
                let state = self
                    .exec
                    .batch(&key.batch)
                    .and_then(|s| s.agents.iter().find(|a| a.id == key.agent));
                if class != ErrorClass::Interrupted
                    && state.is_some_and(|s| sched::phase(s, retries) == Phase::Wants)
                {
                    let delay = self.cfg.backoff.delay(
                        key.attempt,
                        backoff::seed(self.cfg.nonce, key.agent.as_str(), key.attempt),
                    );
                    let ms = delay.as_millis() as u64;
                    self.not_before.insert(key.agent.clone(), now_ms + ms);
                    retry_in_ms = Some(ms);
                }
            }
            observe(&RunEvent::AgentFinish {
                batch: key.batch.clone(),
                agent: key.agent.clone(),
                attempt: key.attempt,
                status: c.status,
                error_class: c.result.error_class,
                exit_code: c.result.exit_code,
                duration_ms: c.result.duration_ms,
                retry_in_ms,
                detail: c.detail,
            });
        }
        Ok(())
    }

    /// The verdict on an attempt that ended (its live entry is removed); `None` for a late
    /// event of an attempt that is not the current one.
    fn conclude(
        &mut self,
        key: &AttemptKey,
        outcome: Outcome,
        reason: Option<KillReason>,
    ) -> Option<Concluded> {
        let live = self.live.remove(&key.agent)?;
        if live.key.attempt != key.attempt {
            self.live.insert(key.agent.clone(), live);
            return None;
        }
        let plan = self.plan.clone();
        let (_, agent) = plan.agent(&key.agent)?;
        let tail = attempt::log_tail(&live.log, 16 * 1024);
        let mut verdict = classify(
            &outcome,
            live.kill.or(reason),
            &plan.rate_limit_of(agent),
            &tail,
        );
        let duration_ms = live.started.elapsed().as_millis() as u64;
        let mut detail = match &outcome {
            Outcome::SpawnFailed(why) | Outcome::Lost(why) => Some(why.clone()),
            _ => None,
        };
        let ctx = AgentContext {
            plan: self.plan_id.clone(),
            batch: key.batch.clone(),
            agent: key.agent.clone(),
            attempt: key.attempt,
            worktree: live.isolated.then(|| live.cwd.clone()),
            branch: live.branch.clone(),
            succeeded: verdict.status == Status::Succeeded,
        };
        if let Err(e) = self.hooks.after_agent(&ctx) {
            verdict.status = Status::Failed;
            verdict.class.get_or_insert(ErrorClass::Other);
            detail = Some(format!("after the attempt: {e}"));
        }
        let files_changed = if live.isolated {
            self.workspaces.changed_files(&live.cwd)
        } else {
            Vec::new()
        };
        Some(Concluded {
            key: key.clone(),
            status: verdict.status,
            result: AgentResult {
                exit_code: verdict.exit_code,
                attempts: key.attempt,
                duration_ms,
                files_changed,
                summary: attempt::read_summary(&live.log.with_extension("result.json")),
                error_class: verdict.class,
            },
            detail,
        })
    }

    fn interrupt(&mut self, observe: &mut dyn FnMut(&RunEvent)) {
        self.stop = self.stop.saturating_add(1);
        if self.stop == 1 {
            observe(&RunEvent::Stopping {
                running: self.live.len(),
            });
        } else if self.stop == 2 {
            observe(&RunEvent::Killing {
                running: self.live.len(),
            });
            let agents: Vec<AgentId> = self.live.keys().cloned().collect();
            for a in agents {
                self.kill(&a, KillReason::Interrupt, observe);
            }
        }
    }

    fn kill(&mut self, agent: &AgentId, reason: KillReason, observe: &mut dyn FnMut(&RunEvent)) {
        let Some(live) = self.live.get_mut(agent) else {
            return;
        };
        if live.kill.is_some() {
            return;
        }
        live.kill = Some(reason);
        observe(&RunEvent::AgentKill {
            batch: live.key.batch.clone(),
            agent: agent.clone(),
            attempt: live.key.attempt,
            reason: match reason {
                KillReason::Timeout => "timeout",
                KillReason::Idle => "idle timeout",
                KillReason::FirstOutput => "no output before the first-output timeout",
                KillReason::Interrupt => "Ctrl-C",
            },
        });
        let Some(handle) = live.handle.clone() else {
            return;
        };
        let (executor, tx, grace, agent) = (
            self.executor.clone(),
            self.tx.clone(),
            self.cfg.grace,
            agent.clone(),
        );
        let _ = std::thread::Builder::new()
            .name(format!("kill-{agent}"))
            .stack_size(64 * 1024)
            .spawn(move || {
                let report = executor.kill(&handle, grace).map_err(|e| e.to_string());
                let _ = tx.send(Msg::KillDone(agent, report));
            });
    }

    fn next_deadline(&self) -> Option<Instant> {
        let mut all: Vec<Instant> = Vec::new();
        for l in self.live.values().filter(|l| l.kill.is_none()) {
            all.extend(l.wall);
            all.extend(l.first_output);
            all.extend(l.idle_check);
        }
        if self.stop == 0 {
            if let Some(ms) = self.last.next_due_ms() {
                all.push(self.epoch + Duration::from_millis(ms));
            }
            if let Some(ms) = self.breaker.reopens_at() {
                all.push(self.epoch + Duration::from_millis(ms));
            }
            if self
                .last
                .waits
                .iter()
                .any(|w| matches!(w, Wait::Busy { .. }))
            {
                all.push(Instant::now() + Duration::from_secs(1));
            }
        }
        all.into_iter().min()
    }

    fn check_deadlines(&mut self, observe: &mut dyn FnMut(&RunEvent)) {
        let now = Instant::now();
        let mut kills = Vec::new();
        for (id, l) in self.live.iter_mut().filter(|(_, l)| l.kill.is_none()) {
            if l.wall.is_some_and(|t| t <= now) {
                kills.push((id.clone(), KillReason::Timeout));
                continue;
            }
            if l.first_output.is_some_and(|t| t <= now) {
                if attempt::has_output(&l.log) {
                    l.first_output = None;
                } else {
                    kills.push((id.clone(), KillReason::FirstOutput));
                    continue;
                }
            }
            if let (Some(t), Some(idle)) = (l.idle_check, l.idle)
                && t <= now
            {
                let last = attempt::last_activity(&l.log, l.isolated.then_some(l.cwd.as_path()));
                let left = attempt::idle_left(
                    last.max(Some(SystemTime::now() - now.duration_since(l.started))),
                    idle,
                    SystemTime::now(),
                );
                if left.is_zero() {
                    kills.push((id.clone(), KillReason::Idle));
                } else {
                    l.idle_check = Some(now + left);
                }
            }
        }
        for (id, reason) in kills {
            self.kill(&id, reason, observe);
        }
    }
}
