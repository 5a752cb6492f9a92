//! The local executor: each attempt runs under a supervisor process (see [`crate::supervise`])
//! in its own session and process group. The runner waits on the supervisor (as its parent,
//! or through a pidfd after a resume), never by polling, and reads the status file the
//! supervisor wrote beside the log.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::Sender;
use std::time::Duration;

use baton_plan::ProcessRef;
use rustix::event::{PollFd, PollFlags};
use rustix::process::{Pid, PidfdFlags, Signal};

use crate::executor::{
    Adoption, AttemptEvent, AttemptHandle, AttemptSpec, EventKind, ExecError, Executor, KillReport,
    Outcome,
};
use crate::launcher::Launcher;
use crate::procfs;
use crate::supervise::{CLAIMED_ELSEWHERE, PidFile, StatusFile, SuperviseArgs, claim_of};
use crate::watch::{Watch, Watcher};

/// Runs attempts on this machine.
pub struct LocalExecutor {
    /// The program that supervises (the baton binary) and the arguments that select the
    /// supervisor (`["__supervise"]`).
    pub supervisor: PathBuf,
    pub supervisor_args: Vec<OsString>,
    /// Time between SIGTERM and SIGKILL when an attempt is stopped.
    pub grace: Duration,
    /// Waits for every supervisor on one thread (`None`: a thread per attempt).
    watcher: Option<Watcher>,
    /// Forks supervisors without an exec each (see [`crate::launcher`]): `launcher_args`
    /// select it (`["__launch"]`, empty: none); started at the first attempt, dropped (and
    /// not tried again) if it fails.
    launcher_args: Vec<OsString>,
    launcher: Mutex<LauncherState>,
}

enum LauncherState {
    NotStarted,
    Running(Launcher),
    Failed,
}

/// What asking the launcher for a supervisor did.
enum Launched {
    /// No launcher (none configured, or it failed before): exec the supervisor instead.
    NoLauncher,
    Started(u32, OwnedFd),
    /// The attempt did not start (a supervisor forked for it was stopped).
    Failed(String),
    /// The launcher broke during the request: a supervisor may or may not have been forked.
    Unknown(String),
}

impl LocalExecutor {
    pub fn new(supervisor: PathBuf, supervisor_args: Vec<OsString>, grace: Duration) -> Self {
        LocalExecutor {
            supervisor,
            supervisor_args,
            grace,
            watcher: Watcher::start(on_exit).ok(),
            launcher_args: Vec::new(),
            launcher: Mutex::new(LauncherState::NotStarted),
        }
    }

    /// Start supervisors through a launcher, `supervisor launcher_args…` (`["__launch"]`),
    /// instead of an exec of `supervisor` per attempt. Falls back to the exec if it fails.
    pub fn with_launcher(mut self, launcher_args: Vec<OsString>) -> Self {
        self.launcher_args = launcher_args;
        self
    }

    /// Start the supervisor of `spec` through the launcher.
    fn launch(&self, spec: &AttemptSpec, args: &SuperviseArgs) -> Launched {
        if self.launcher_args.is_empty() {
            return Launched::NoLauncher;
        }
        let Ok(mut state) = self.launcher.lock() else {
            return Launched::NoLauncher;
        };
        if matches!(*state, LauncherState::NotStarted) {
            // no pidfds (a kernel before 5.3): nothing could wait on a supervisor that is not
            // this process's child, so no launcher
            let pidfds =
                rustix::process::pidfd_open(rustix::process::getpid(), PidfdFlags::empty());
            *state = match pidfds.map(|_| Launcher::start(&self.supervisor, &self.launcher_args)) {
                Ok(Ok(l)) => LauncherState::Running(l),
                _ => LauncherState::Failed,
            };
        }
        let LauncherState::Running(launcher) = &mut *state else {
            return Launched::NoLauncher;
        };
        let env = spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let launched = launcher.spawn(&spec.cwd, env, args);
        let result = match launched {
            // opened before the next request, after which the launcher may reap it
            Ok(pid) => {
                match self::pid(pid).map(|p| rustix::process::pidfd_open(p, PidfdFlags::empty())) {
                    Ok(Ok(fd)) => return Launched::Started(pid, fd),
                    Ok(Err(e)) => {
                        // not reaped (that waits for the next request, and none follows), so
                        // the pid is still this supervisor: it stops the agent and all it started
                        if e != rustix::io::Errno::SRCH
                            && let Ok(p) = self::pid(pid)
                        {
                            let _ = rustix::process::kill_process(p, Signal::TERM);
                        }
                        Launched::Failed(format!("cannot watch the supervisor {pid}: {e}"))
                    }
                    Err(e) => Launched::Failed(e.to_string()),
                }
            }
            Err(e) => Launched::Unknown(format!("the launcher failed: {e}")),
        };
        // a broken launcher is not asked again; later attempts are exec'd as before
        *state = LauncherState::Failed;
        result
    }

    /// Wait for the supervisor behind `fd` on the watcher thread, or on a thread of its own.
    fn watch(&self, w: Watch) -> std::io::Result<()> {
        let w = match &self.watcher {
            Some(watcher) => match watcher.add(w) {
                Ok(()) => return Ok(()),
                Err(w) => *w,
            },
            None => w,
        };
        std::thread::Builder::new()
            .name(format!("wait-{}", w.key.agent))
            .stack_size(64 * 1024)
            .spawn(move || {
                wait_fd(&w.fd, None);
                on_exit(w);
            })
            .map(drop)
    }
}

/// A supervisor exited: reap it if it is ours, and report how the attempt ended.
fn on_exit(mut w: Watch) {
    let claimed_elsewhere = w
        .child
        .take()
        .and_then(|mut c| c.wait().ok())
        .is_some_and(|s| s.code() == Some(CLAIMED_ELSEWHERE));
    let ev = if claimed_elsewhere {
        AttemptEvent {
            key: w.key,
            kind: EventKind::Finished(Outcome::Lost("another runner claimed this attempt".into())),
        }
    } else {
        finished(&w.key, &w.log)
    };
    let _ = w.events.send(ev);
}

/// The files of an attempt, beside its log: `<n>.log`, `<n>.status.json`, `<n>.pid.json`.
pub fn status_path(log: &Path) -> PathBuf {
    log.with_extension("status.json")
}
pub fn pid_path(log: &Path) -> PathBuf {
    log.with_extension("pid.json")
}

/// How the supervisor recorded the attempt's end: in its pid file, after its claim, or in
/// its status file (a supervisor that could not claim). `None` while it runs, or if it died
/// before writing it.
pub fn read_status(log: &Path) -> Option<StatusFile> {
    std::fs::read(pid_path(log))
        .ok()
        .and_then(|text| crate::supervise::end_of(&text))
        .or_else(|| baton_store::read_json(&status_path(log)).ok())
}

/// How a finished attempt ended, from [`read_status`].
pub fn read_outcome(log: &Path) -> Option<Outcome> {
    let status = read_status(log)?;
    Some(if let Some(why) = status.spawn_error {
        Outcome::SpawnFailed(why)
    } else if status.cancelled {
        Outcome::Cancelled
    } else if let Some(code) = status.exit_code {
        Outcome::Exited(code)
    } else if let Some(sig) = status.signal {
        Outcome::Signalled(sig)
    } else {
        Outcome::Lost("the supervisor recorded no exit status".into())
    })
}

/// Who claimed an attempt, from its pid file; `None` when nobody ever will start it.
///
/// The supervisor creates the file and then writes it (see `supervise::claim_file`), so it may
/// be read empty or partial. Then its claimer, if alive, still holds it open: that process is
/// the supervisor (its identity taken now, as the file would have said). If nobody holds it
/// and it is still incomplete, the claimer died before writing it, so before it started the
/// agent — and the file, existing, stops any other supervisor from starting it.
fn read_claim(path: &Path) -> Option<PidFile> {
    let read = || std::fs::read(path).ok().and_then(|t| claim_of(&t));
    if let Some(claim) = read() {
        return Some(claim);
    }
    let holder = procfs::holder_of(path);
    // written meanwhile (the writer closes the file only after writing it)
    if let Some(claim) = read() {
        return Some(claim);
    }
    holder.map(|p| PidFile::Running {
        pid: p.pid,
        start_time: p.start_time,
    })
}

fn pid(p: u32) -> Result<Pid, ExecError> {
    Pid::from_raw(p as i32).ok_or_else(|| ExecError::Other(format!("bad pid {p}")))
}

/// A pidfd for the recorded process, if it is still that process.
fn open_verified(pid_: u32, start_time: u64) -> Option<OwnedFd> {
    let fd = rustix::process::pidfd_open(pid(pid_).ok()?, PidfdFlags::empty()).ok()?;
    // checked after opening: the fd now pins this process, so a match cannot go stale
    procfs::is_alive(&ProcessRef {
        pid: pid_,
        start_time,
    })
    .then_some(fd)
}

/// Block until the process behind `fd` exits (or `timeout` passes); true if it exited.
fn wait_fd(fd: &OwnedFd, timeout: Option<Duration>) -> bool {
    let ts = timeout.map(|d| rustix::time::Timespec {
        tv_sec: d.as_secs() as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    });
    loop {
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        match rustix::event::poll(&mut fds, ts.as_ref()) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return false,
        }
    }
}

fn finished(key: &crate::executor::AttemptKey, log: &Path) -> AttemptEvent {
    AttemptEvent {
        key: key.clone(),
        kind: EventKind::Finished(
            read_outcome(log)
                .unwrap_or_else(|| Outcome::Lost("the supervisor left no status file".into())),
        ),
    }
}

impl Executor for LocalExecutor {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn start(
        &self,
        spec: &AttemptSpec,
        events: Sender<AttemptEvent>,
    ) -> Result<AttemptHandle, ExecError> {
        // the supervisor makes the log's directory (a directory costs an inode: in the
        // supervisors, side by side, not in the runner, one after another)
        let args = SuperviseArgs {
            log: spec.log.clone(),
            status: status_path(&spec.log),
            pidfile: pid_path(&spec.log),
            grace: self.grace,
            state_root: baton_store::root_of(&spec.log),
            argv: spec.argv.iter().map(OsString::from).collect(),
        };
        match self.launch(spec, &args) {
            Launched::NoLauncher => {}
            Launched::Started(pid, fd) => {
                let start_time = procfs::process_ref(pid).map_or(0, |p| p.start_time);
                self.watch(Watch {
                    fd,
                    child: None,
                    key: spec.key.clone(),
                    log: spec.log.clone(),
                    events,
                })?;
                return Ok(AttemptHandle::Local { pid, start_time });
            }
            Launched::Failed(why) => return Err(ExecError::Other(why)),
            Launched::Unknown(why) => {
                // as a resumed runner would: the pid file says whether a supervisor claimed
                // the attempt (then it is watched), or it is claimed now so none ever starts
                return match self.adopt_unrecorded(spec, events.clone())? {
                    Some((handle, Adoption::Running)) => Ok(handle),
                    Some((handle, Adoption::Finished(outcome))) => {
                        let _ = events.send(AttemptEvent {
                            key: spec.key.clone(),
                            kind: EventKind::Finished(outcome),
                        });
                        Ok(handle)
                    }
                    // claimed now as never started: nothing ran, nothing will
                    None => Err(ExecError::NotStarted(why)),
                };
            }
        }
        let child = Command::new(&self.supervisor)
            .args(&self.supervisor_args)
            .args(args.to_args())
            .current_dir(&spec.cwd)
            .envs(&spec.env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                ExecError::Other(format!(
                    "cannot start the supervisor {} in {}: {e}",
                    self.supervisor.display(),
                    spec.cwd.display()
                ))
            })?;
        let pid = child.id();
        let start_time = procfs::process_ref(pid).map_or(0, |p| p.start_time);
        // our own child: not reaped yet, so its pidfd is valid even if it already exited
        match rustix::process::pidfd_open(self::pid(pid)?, PidfdFlags::empty()) {
            Ok(fd) => self.watch(Watch {
                fd,
                child: Some(child),
                key: spec.key.clone(),
                log: spec.log.clone(),
                events,
            })?,
            Err(_) => {
                // no pidfd (an old kernel): wait on the child from a thread of its own
                let (key, log) = (spec.key.clone(), spec.log.clone());
                let mut child = child;
                std::thread::Builder::new()
                    .name(format!("wait-{}", key.agent))
                    .stack_size(64 * 1024)
                    .spawn(move || {
                        let claimed = child
                            .wait()
                            .is_ok_and(|s| s.code() == Some(CLAIMED_ELSEWHERE));
                        let ev = if claimed {
                            AttemptEvent {
                                key,
                                kind: EventKind::Finished(Outcome::Lost(
                                    "another runner claimed this attempt".into(),
                                )),
                            }
                        } else {
                            finished(&key, &log)
                        };
                        let _ = events.send(ev);
                    })?;
            }
        }
        Ok(AttemptHandle::Local { pid, start_time })
    }

    fn adopt(
        &self,
        spec: &AttemptSpec,
        handle: &AttemptHandle,
        events: Sender<AttemptEvent>,
    ) -> Result<Adoption, ExecError> {
        let AttemptHandle::Local { pid, start_time } = *handle else {
            return Err(ExecError::Config(format!(
                "the local executor cannot adopt {handle:?}"
            )));
        };
        let Some(fd) = open_verified(pid, start_time) else {
            return Ok(Adoption::Finished(read_outcome(&spec.log).unwrap_or_else(
                || Outcome::Lost(format!("process {pid} is gone and left no status")),
            )));
        };
        self.watch(Watch {
            fd,
            child: None,
            key: spec.key.clone(),
            log: spec.log.clone(),
            events,
        })?;
        Ok(Adoption::Running)
    }

    fn adopt_unrecorded(
        &self,
        spec: &AttemptSpec,
        events: Sender<AttemptEvent>,
    ) -> Result<Option<(AttemptHandle, Adoption)>, ExecError> {
        let path = pid_path(&spec.log);
        match baton_store::create_new_json(&path, &PidFile::Abandoned) {
            // claimed first: no supervisor will ever start this attempt
            Ok(()) => Ok(None),
            Err(baton_store::StoreError::AlreadyExists { .. }) => match read_claim(&path) {
                Some(PidFile::Running { pid, start_time }) => {
                    let handle = AttemptHandle::Local { pid, start_time };
                    let adoption = self.adopt(spec, &handle, events)?;
                    Ok(Some((handle, adoption)))
                }
                Some(PidFile::Abandoned) | None => Ok(None),
            },
            Err(e) => Err(ExecError::Other(e.to_string())),
        }
    }

    fn kill(&self, handle: &AttemptHandle, grace: Duration) -> Result<KillReport, ExecError> {
        let AttemptHandle::Local { pid, start_time } = *handle else {
            return Err(ExecError::Config(format!(
                "the local executor cannot stop {handle:?}"
            )));
        };
        let Some(fd) = open_verified(pid, start_time) else {
            return Ok(KillReport::default()); // already gone: nothing to stop
        };
        // The supervisor stops the agent and every descendant itself, SIGKILL after `grace`.
        let _ = rustix::process::pidfd_send_signal(&fd, Signal::TERM);
        if wait_fd(&fd, Some(grace + Duration::from_secs(5))) {
            return Ok(KillReport::default());
        }
        // The supervisor itself is stuck: kill it and its process group outright.
        let leaked = procfs::descendants(pid);
        let _ = rustix::process::pidfd_send_signal(&fd, Signal::KILL);
        for &p in &leaked {
            if let Ok(p) = self::pid(p) {
                let _ = rustix::process::kill_process(p, Signal::KILL);
            }
        }
        wait_fd(&fd, Some(Duration::from_secs(1)));
        Ok(KillReport {
            leaked: leaked
                .into_iter()
                .filter(|&p| procfs::process_ref(p).is_some())
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_read_while_being_written_finds_its_live_claimer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.pid.json");
        // created, not yet written: its claimer holds it open
        std::fs::write(&path, b"").unwrap();
        let mut claimer = Command::new("sleep")
            .arg("5")
            .stdin(std::fs::File::open(&path).unwrap())
            .spawn()
            .unwrap();
        let claim = read_claim(&path);
        claimer.kill().unwrap();
        claimer.wait().unwrap();
        let Some(PidFile::Running { pid, start_time }) = claim else {
            panic!("the claimer is not found: {claim:?}");
        };
        assert_eq!(pid, claimer.id());
        assert!(start_time > 0);
        // the claimer died before writing it: nobody started the attempt, nobody will
        assert_eq!(read_claim(&path), None);
        std::fs::write(&path, b"{\"state\": \"runn").unwrap();
        assert_eq!(read_claim(&path), None, "a partial claim with no holder");
        std::fs::write(&path, b"{\"state\": \"abandoned\"}\n").unwrap();
        assert_eq!(read_claim(&path), Some(PidFile::Abandoned));
    }

    #[test]
    fn a_launcher_that_breaks_mid_request_leaves_the_attempt_claimed_and_never_started() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a").join("1.log");
        let spec = AttemptSpec {
            plan: baton_plan::PlanId::new("OP-20260101-000000-0000000a").unwrap(),
            key: crate::executor::AttemptKey {
                batch: baton_plan::BatchId::new("B1").unwrap(),
                agent: baton_plan::AgentId::new("a").unwrap(),
                attempt: 1,
            },
            argv: vec!["true".into()],
            cwd: dir.path().to_path_buf(),
            env: Default::default(),
            log: log.clone(),
            timeout: None,
            resources: Default::default(),
        };
        // a "launcher" that exits at once: the request gets no answer
        let exec = LocalExecutor::new("true".into(), Vec::new(), Duration::from_millis(100))
            .with_launcher(vec!["__launch".into()]);
        let (tx, _rx) = std::sync::mpsc::channel();
        let err = exec.start(&spec, tx).unwrap_err();
        assert!(err.to_string().contains("the launcher failed"), "{err}");
        // whatever the launcher did before it broke, no supervisor may start this attempt now
        assert_eq!(read_claim(&pid_path(&log)), Some(PidFile::Abandoned));
        assert!(matches!(
            *exec.launcher.lock().unwrap(),
            LauncherState::Failed
        ));
    }

    #[test]
    fn a_supervisor_claims_once() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("1.log");
        let args = SuperviseArgs {
            log: log.clone(),
            status: status_path(&log),
            pidfile: pid_path(&log),
            grace: Duration::from_millis(100),
            state_root: None,
            argv: vec!["true".into()],
        };
        let claim = PidFile::Running {
            pid: 1,
            start_time: 2,
        };
        assert!(crate::supervise::claim_file(&args.pidfile, &claim).unwrap());
        assert!(!crate::supervise::claim_file(&args.pidfile, &PidFile::Abandoned).unwrap());
        assert_eq!(read_claim(&args.pidfile), Some(claim));
        // no temp file is left beside it
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("1.pid.json")]);
    }

    #[test]
    fn an_attempt_s_end_follows_its_claim_and_only_its_own_claimer_adds_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("1.log");
        let me = procfs::process_ref(std::process::id()).unwrap();
        let end = StatusFile {
            schema_version: 1,
            exit_code: Some(3),
            duration_ms: 5,
            ..StatusFile::default()
        };
        // someone else's claim: no end is added to it
        let other = PidFile::Running {
            pid: me.pid,
            start_time: me.start_time + 1,
        };
        assert!(crate::supervise::claim_file(&pid_path(&log), &other).unwrap());
        assert!(crate::supervise::append_end(&pid_path(&log), &end).is_err());
        assert_eq!(read_outcome(&log), None, "not ended");
        // a supervisor that could not add it wrote the status file instead
        baton_store::write_json(&status_path(&log), &end).unwrap();
        assert_eq!(read_outcome(&log), Some(Outcome::Exited(3)));
        std::fs::remove_file(status_path(&log)).unwrap();
        std::fs::remove_file(pid_path(&log)).unwrap();

        let mine = PidFile::Running {
            pid: me.pid,
            start_time: me.start_time,
        };
        assert!(crate::supervise::claim_file(&pid_path(&log), &mine).unwrap());
        crate::supervise::append_end(&pid_path(&log), &end).unwrap();
        assert_eq!(read_outcome(&log), Some(Outcome::Exited(3)));
        assert_eq!(read_claim(&pid_path(&log)), Some(mine));
        assert!(!status_path(&log).exists(), "no second file for the end");
        // an end cut short reads as no end (a lost attempt), never as another outcome
        let text = std::fs::read(pid_path(&log)).unwrap();
        let cut = &text[..text.len() - 5];
        assert_eq!(crate::supervise::end_of(cut), None);
        assert!(claim_of(cut).is_some());
    }
}
