//! [`SlurmExecutor`]: each attempt is one Slurm job, submitted with `sbatch` in the agent's
//! worktree, with the attempt's timeout as its time limit and its log as the job's output.
//!
//! One watcher thread asks the controller about every watched job in a single `squeue` call per
//! poll interval (Slurm has no event stream a client can subscribe to), reports log growth as
//! [`EventKind::Activity`] (baton's idle check) and each job's end exactly once. Dropping the
//! executor stops the watcher and leaves the jobs alone: a later runner adopts them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use baton_plan::executor::ExecutorSettings;
use baton_run::{
    Adoption, AttemptEvent, AttemptHandle, AttemptKey, AttemptSpec, EventKind, ExecError, Executor,
    KillReport, Outcome,
};

use crate::client::{Slurm, SlurmError, Submit};
use crate::job::{self, file_pattern, job_name, resource_options, time_limit_minutes};
use crate::state::{JobStatus, outcome};

impl From<SlurmError> for ExecError {
    fn from(e: SlurmError) -> ExecError {
        match e {
            SlurmError::Refused(_) => ExecError::Config(e.to_string()),
            e => ExecError::Other(e.to_string()),
        }
    }
}

struct Watched {
    key: AttemptKey,
    log: PathBuf,
    log_len: u64,
    events: Sender<AttemptEvent>,
    /// Polls in which squeue did not list the job (it may be between the controller's tables).
    missing: u32,
}

struct Inner {
    slurm: Slurm,
    poll: Duration,
    jobs: Mutex<BTreeMap<String, Watched>>,
    wake: Condvar,
    stop: AtomicBool,
    /// Jobs baton cancelled: however Slurm records their end (CANCELLED, or FAILED by the
    /// SIGTERM baton sent), the attempt was stopped by baton.
    killed: Mutex<std::collections::BTreeSet<String>>,
}

impl Inner {
    fn jobs(&self) -> MutexGuard<'_, BTreeMap<String, Watched>> {
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Runs attempts as Slurm jobs. See the module documentation.
pub struct SlurmExecutor {
    inner: Arc<Inner>,
    settings: ExecutorSettings,
    script: PathBuf,
    watcher: Option<JoinHandle<()>>,
}

impl SlurmExecutor {
    /// `scratch` is a directory of baton's (e.g. `.baton/slurm/`) where the fixed job script is
    /// written.
    pub fn new(
        slurm: Slurm,
        settings: ExecutorSettings,
        scratch: &Path,
    ) -> Result<SlurmExecutor, ExecError> {
        if let Some((subject, message)) = settings.problems(None).into_iter().next() {
            return Err(ExecError::Config(format!("{subject}: {message}")));
        }
        let script = job::ensure_script(scratch)?;
        let poll = settings
            .poll_interval
            .map_or(Duration::from_secs(1), |d| d.0);
        let inner = Arc::new(Inner {
            slurm,
            poll,
            jobs: Mutex::new(BTreeMap::new()),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            killed: Mutex::new(Default::default()),
        });
        let for_thread = Arc::clone(&inner);
        let watcher = std::thread::Builder::new()
            .name("baton-slurm-watch".into())
            .spawn(move || watch(&for_thread))?;
        Ok(SlurmExecutor {
            inner,
            settings,
            script,
            watcher: Some(watcher),
        })
    }

    pub fn slurm(&self) -> &Slurm {
        &self.inner.slurm
    }

    /// Would Slurm take jobs for these agents as configured? (`sbatch --test-only` per agent,
    /// nothing submitted.) Bad settings are [`ExecError::Config`].
    pub fn preflight<'a>(
        &self,
        agents: impl IntoIterator<Item = &'a str>,
        cwd: &Path,
    ) -> Result<(), ExecError> {
        let mut seen = Vec::new();
        for agent in agents {
            let options = resource_options(&self.settings.job_for(agent), &Default::default());
            if seen.contains(&options) {
                continue;
            }
            let env = BTreeMap::new();
            let submit = Submit {
                script: &self.script,
                args: &["true".to_owned()],
                options: options.clone(),
                env: &env,
                cwd,
            };
            self.inner
                .slurm
                .test_submit(&submit)
                .map_err(|e| ExecError::Config(format!("agent {agent}: {e}")))?;
            seen.push(options);
        }
        Ok(())
    }

    fn options(&self, spec: &AttemptSpec, name: &str) -> Vec<String> {
        let mut o = vec![
            format!("--job-name={name}"),
            format!("--chdir={}", spec.cwd.display()),
            format!("--output={}", file_pattern(&spec.log)),
            "--open-mode=append".to_owned(),
            // a node failure must not run the agent a second time behind baton's back
            "--no-requeue".to_owned(),
            "--export=ALL".to_owned(),
        ];
        if let Some(t) = spec.timeout {
            o.push(format!("--time={}", time_limit_minutes(t)));
        }
        o.extend(resource_options(
            &self.settings.job_for(spec.key.agent.as_str()),
            &spec.resources,
        ));
        o
    }

    fn watch_job(&self, job_id: &str, spec: &AttemptSpec, events: Sender<AttemptEvent>) {
        let log_len = std::fs::metadata(&spec.log).map_or(0, |m| m.len());
        self.inner.jobs().insert(
            job_id.to_owned(),
            Watched {
                key: spec.key.clone(),
                log: spec.log.clone(),
                log_len,
                events,
                missing: 0,
            },
        );
        self.inner.wake.notify_all();
    }
}

impl Drop for SlurmExecutor {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        self.inner.wake.notify_all();
        if let Some(w) = self.watcher.take() {
            let _ = w.join();
        }
    }
}

impl Executor for SlurmExecutor {
    fn kind(&self) -> &'static str {
        "slurm"
    }

    fn start(
        &self,
        spec: &AttemptSpec,
        events: Sender<AttemptEvent>,
    ) -> Result<AttemptHandle, ExecError> {
        if spec.argv.is_empty() {
            return Err(ExecError::Config(format!(
                "agent {}: the command is empty",
                spec.key.agent
            )));
        }
        let name = job_name(spec.plan.as_str(), &spec.key);
        // a runner that died between sbatch and persisting the handle left the job behind:
        // take that one, while it is queued or running, instead of submitting the attempt twice
        let existing = self.inner.slurm.find_by_name(&name)?;
        let job_id = match existing.into_iter().find(JobStatus::is_active) {
            Some(j) => j.job_id,
            None => {
                if let Some(dir) = spec.log.parent() {
                    baton_store::create_dir_all(dir)
                        .map_err(|e| std::io::Error::other(e.to_string()))?;
                }
                let submit = Submit {
                    script: &self.script,
                    args: &spec.argv,
                    options: self.options(spec, &name),
                    env: &spec.env,
                    cwd: &spec.cwd,
                };
                self.inner.slurm.submit(&submit)?
            }
        };
        self.watch_job(&job_id, spec, events);
        Ok(AttemptHandle::Slurm { job_id })
    }

    fn adopt(
        &self,
        spec: &AttemptSpec,
        handle: &AttemptHandle,
        events: Sender<AttemptEvent>,
    ) -> Result<Adoption, ExecError> {
        let AttemptHandle::Slurm { job_id } = handle else {
            return Err(ExecError::Config(format!(
                "agent {}: attempt {} was started by another executor ({handle:?}); resume it with that executor",
                spec.key.agent, spec.key.attempt
            )));
        };
        let ids = [job_id.clone()];
        let status = match self.inner.slurm.query(&ids)?.into_iter().next() {
            Some(s) => Some(s),
            None => self
                .inner
                .slurm
                .accounting(&ids)?
                .and_then(|v| v.into_iter().next()),
        };
        match status {
            Some(s) => match outcome(&s) {
                Some(o) => Ok(Adoption::Finished(o)),
                None => {
                    self.watch_job(job_id, spec, events);
                    Ok(Adoption::Running)
                }
            },
            None => Ok(Adoption::Finished(Outcome::Lost(format!(
                "job {job_id} is no longer known to Slurm and the cluster keeps no accounting; its exit status cannot be known"
            )))),
        }
    }

    fn adopt_unrecorded(
        &self,
        spec: &AttemptSpec,
        events: Sender<AttemptEvent>,
    ) -> Result<Option<(AttemptHandle, Adoption)>, ExecError> {
        // the job name identifies the attempt: a job submitted just before the runner died
        // is found by it, and adopted like one whose handle was recorded
        let name = job_name(spec.plan.as_str(), &spec.key);
        let mut jobs = self.inner.slurm.find_by_name(&name)?;
        // an active job first, should a finished one carry the same name
        jobs.sort_by_key(|j| !j.is_active());
        let Some(job) = jobs.into_iter().next() else {
            return Ok(None);
        };
        let handle = AttemptHandle::Slurm {
            job_id: job.job_id.clone(),
        };
        let adoption = match outcome(&job) {
            Some(o) => Adoption::Finished(o),
            None => {
                self.watch_job(&job.job_id, spec, events);
                Adoption::Running
            }
        };
        Ok(Some((handle, adoption)))
    }

    fn kill(&self, handle: &AttemptHandle, grace: Duration) -> Result<KillReport, ExecError> {
        let AttemptHandle::Slurm { job_id } = handle else {
            return Err(ExecError::Config(format!("{handle:?} is not a Slurm job")));
        };
        let slurm = &self.inner.slurm;
        self.inner
            .killed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(job_id.clone());
        let ids = [job_id.clone()];
        let active = |s: &Slurm| -> Result<bool, ExecError> {
            Ok(s.query(&ids)?.iter().any(JobStatus::is_active))
        };
        // scancel is the polite and the forced stop in one: Slurm sends SIGTERM to every
        // process of the job, and SIGKILL after the cluster's KillWait; the job ends CANCELLED
        slurm.cancel(job_id, None)?;
        // scancel returns at once; the job is over when the controller says so (its KillWait
        // bounds this)
        let deadline = Instant::now() + grace + Duration::from_secs(120);
        while active(slurm)? {
            if Instant::now() > deadline {
                return Err(ExecError::Other(format!(
                    "job {job_id} is still active after scancel"
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(KillReport::default())
    }
}

/// The watcher thread: poll, report, sleep until the interval passes or a job is added.
fn watch(inner: &Inner) {
    let mut jobs = inner.jobs();
    while !inner.stop.load(Ordering::SeqCst) {
        if !jobs.is_empty() {
            let ids: Vec<String> = jobs.keys().cloned().collect();
            drop(jobs);
            let answer = inner.slurm.query(&ids);
            jobs = inner.jobs();
            if let Ok(statuses) = answer {
                report(inner, &mut jobs, &statuses);
            }
            // a failing squeue (a busy controller) is retried at the next poll
        }
        let (guard, _) = inner
            .wake
            .wait_timeout(jobs, inner.poll)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        jobs = guard;
    }
}

fn report(inner: &Inner, jobs: &mut BTreeMap<String, Watched>, statuses: &[JobStatus]) {
    let mut done = Vec::new();
    for (id, w) in jobs.iter_mut() {
        let len = std::fs::metadata(&w.log).map_or(0, |m| m.len());
        if len != w.log_len {
            w.log_len = len;
            let _ = w.events.send(AttemptEvent {
                key: w.key.clone(),
                kind: EventKind::Activity,
            });
        }
        let status = statuses.iter().find(|s| &s.job_id == id);
        let finished = match status {
            Some(s) => outcome(s),
            None => {
                w.missing += 1;
                // gone from the controller: accounting may know how it ended
                (w.missing >= 3).then(|| {
                    let acct = inner
                        .slurm
                        .accounting(std::slice::from_ref(id))
                        .ok()
                        .flatten();
                    acct.and_then(|v| v.into_iter().next())
                        .and_then(|s| outcome(&s))
                        .unwrap_or_else(|| Outcome::Lost(format!("job {id} vanished from Slurm")))
                })
            }
        };
        if let Some(mut o) = finished {
            let killed = inner
                .killed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(id);
            if killed {
                o = Outcome::Cancelled;
            }
            let _ = w.events.send(AttemptEvent {
                key: w.key.clone(),
                kind: EventKind::Finished(o),
            });
            done.push(id.clone());
        }
    }
    for id in done {
        jobs.remove(&id);
    }
}
