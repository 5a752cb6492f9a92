//! The local executor: each attempt runs under a supervisor process (see [`crate::supervise`])
//! in its own session and process group. The runner waits on the supervisor (as its parent,
//! or through a pidfd after a resume), never by polling, and reads the status file the
//! supervisor wrote beside the log.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::Sender;
use std::time::Duration;

use baton_plan::ProcessRef;
use rustix::event::{PollFd, PollFlags};
use rustix::process::{Pid, PidfdFlags, Signal};

use crate::executor::{
    Adoption, AttemptEvent, AttemptHandle, AttemptSpec, EventKind, ExecError, Executor, KillReport,
    Outcome,
};
use crate::procfs;
use crate::supervise::{CLAIMED_ELSEWHERE, PidFile, StatusFile, SuperviseArgs};

/// Runs attempts on this machine.
#[derive(Debug, Clone)]
pub struct LocalExecutor {
    /// The program that supervises (the baton binary) and the arguments that select the
    /// supervisor (`["__supervise"]`).
    pub supervisor: PathBuf,
    pub supervisor_args: Vec<OsString>,
    /// Time between SIGTERM and SIGKILL when an attempt is stopped.
    pub grace: Duration,
}

/// The files of an attempt, beside its log: `<n>.log`, `<n>.status.json`, `<n>.pid.json`.
pub fn status_path(log: &Path) -> PathBuf {
    log.with_extension("status.json")
}
pub fn pid_path(log: &Path) -> PathBuf {
    log.with_extension("pid.json")
}

/// How a finished attempt ended, from its status file.
pub fn read_outcome(log: &Path) -> Option<Outcome> {
    let status: StatusFile = baton_store::read_json(&status_path(log)).ok()?;
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
        if let Some(dir) = spec.log.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let args = SuperviseArgs {
            log: spec.log.clone(),
            status: status_path(&spec.log),
            pidfile: pid_path(&spec.log),
            grace: self.grace,
            argv: spec.argv.iter().map(OsString::from).collect(),
        };
        let mut child = Command::new(&self.supervisor)
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
        let (key, log) = (spec.key.clone(), spec.log.clone());
        std::thread::Builder::new()
            .name(format!("wait-{}", key.agent))
            .stack_size(64 * 1024)
            .spawn(move || {
                let ev = match child.wait() {
                    Ok(s) if s.code() == Some(CLAIMED_ELSEWHERE) => AttemptEvent {
                        key,
                        kind: EventKind::Finished(Outcome::Lost(
                            "another runner claimed this attempt".into(),
                        )),
                    },
                    _ => finished(&key, &log),
                };
                let _ = events.send(ev);
            })?;
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
        let (key, log) = (spec.key.clone(), spec.log.clone());
        std::thread::Builder::new()
            .name(format!("adopt-{}", key.agent))
            .stack_size(64 * 1024)
            .spawn(move || {
                wait_fd(&fd, None);
                let _ = events.send(finished(&key, &log));
            })?;
        Ok(Adoption::Running)
    }

    fn adopt_unrecorded(
        &self,
        spec: &AttemptSpec,
        events: Sender<AttemptEvent>,
    ) -> Result<Option<(AttemptHandle, Adoption)>, ExecError> {
        let path = pid_path(&spec.log);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        match baton_store::create_new_json(&path, &PidFile::Abandoned) {
            // claimed first: no supervisor will ever start this attempt
            Ok(()) => Ok(None),
            Err(baton_store::StoreError::AlreadyExists { .. }) => {
                match baton_store::read_json::<PidFile>(&path) {
                    Ok(PidFile::Running { pid, start_time }) => {
                        let handle = AttemptHandle::Local { pid, start_time };
                        let adoption = self.adopt(spec, &handle, events)?;
                        Ok(Some((handle, adoption)))
                    }
                    Ok(PidFile::Abandoned) => Ok(None),
                    Err(e) => Err(ExecError::Other(e.to_string())),
                }
            }
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
