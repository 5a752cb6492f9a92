//! The supervisor: a small process (the baton binary, hidden subcommand `__supervise`) that
//! runs one attempt of one agent and outlives the runner.
//!
//! It starts its own session (so the agent's process group is its own and a closed terminal
//! does not reach it), makes itself a child subreaper (so descendants that `setsid` or
//! double-fork stay its descendants), claims the attempt's pid file (exactly once: a resumed
//! runner that claimed it first means "do not start"), runs the agent with stdout and stderr
//! to the log, and writes the exit status atomically beside the log. On SIGTERM it stops the
//! agent and every descendant (SIGTERM, then SIGKILL after the grace period); after the agent
//! exits on its own it sweeps whatever the agent left running. A runner that died loses
//! nothing: the status file says how the attempt ended.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use baton_plan::ProcessRef;
use rustix::process::{Pid, Signal, WaitOptions};
use serde::{Deserialize, Serialize};

use crate::procfs;

/// Exit code of a supervisor that found its pid file already claimed: it started nothing.
pub const CLAIMED_ELSEWHERE: i32 = 75;

/// Exit code of a supervisor whose attempt directory is reached through a symlink (or a file)
/// below the state directory: it wrote nothing and started nothing.
pub const NOT_CONFINED: i32 = 77;

/// The arguments of `__supervise`.
#[derive(Debug, Clone)]
pub struct SuperviseArgs {
    pub log: PathBuf,
    pub status: PathBuf,
    pub pidfile: PathBuf,
    pub grace: Duration,
    /// The state directory the files above are in: the supervisor makes and opens them only
    /// through real directories below it (see `baton_store::confine_to`).
    pub state_root: Option<PathBuf>,
    pub argv: Vec<OsString>,
}

impl SuperviseArgs {
    /// `--log L --status S --pidfile P --grace-ms N [--state-root R] -- ARGV…`
    pub fn to_args(&self) -> Vec<OsString> {
        let mut v: Vec<OsString> = vec![
            "--log".into(),
            self.log.clone().into(),
            "--status".into(),
            self.status.clone().into(),
            "--pidfile".into(),
            self.pidfile.clone().into(),
            "--grace-ms".into(),
            self.grace.as_millis().to_string().into(),
        ];
        if let Some(root) = &self.state_root {
            v.extend(["--state-root".into(), root.clone().into()]);
        }
        v.push("--".into());
        v.extend(self.argv.iter().cloned());
        v
    }

    pub fn parse(args: &[OsString]) -> Result<Self, String> {
        let mut it = args.iter();
        let (mut log, mut status, mut pidfile, mut grace) = (None, None, None, None);
        let mut state_root = None;
        while let Some(a) = it.next() {
            let mut value = || it.next().cloned().ok_or(format!("{a:?} needs a value"));
            match a.to_str() {
                Some("--log") => log = Some(PathBuf::from(value()?)),
                Some("--status") => status = Some(PathBuf::from(value()?)),
                Some("--pidfile") => pidfile = Some(PathBuf::from(value()?)),
                Some("--state-root") => state_root = Some(PathBuf::from(value()?)),
                Some("--grace-ms") => {
                    let v = value()?;
                    grace = Some(Duration::from_millis(
                        v.to_str()
                            .and_then(|s| s.parse().ok())
                            .ok_or(format!("--grace-ms {v:?} is not a number"))?,
                    ));
                }
                Some("--") => break,
                _ => return Err(format!("unknown argument {a:?}")),
            }
        }
        let argv: Vec<OsString> = it.cloned().collect();
        if argv.is_empty() {
            return Err("no command after --".into());
        }
        Ok(SuperviseArgs {
            log: log.ok_or("--log is required")?,
            status: status.ok_or("--status is required")?,
            pidfile: pidfile.ok_or("--pidfile is required")?,
            grace: grace.unwrap_or(Duration::from_secs(10)),
            state_root,
            argv,
        })
    }
}

/// The pid file: who runs the attempt, or that a resumed runner declared it never started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case", deny_unknown_fields)]
pub enum PidFile {
    Running {
        pid: u32,
        start_time: u64,
    },
    /// Claimed by a runner that found no supervisor: the attempt never started.
    Abandoned,
}

/// How the attempt ended, written atomically by the supervisor before it exits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusFile {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spawn_error: Option<String>,
    /// The supervisor was told to stop the attempt.
    #[serde(default)]
    pub cancelled: bool,
    /// Processes the agent left behind, killed by the sweep after it exited.
    #[serde(default)]
    pub swept: usize,
    /// Processes that ignored SIGTERM and were killed with SIGKILL after the grace period.
    #[serde(default)]
    pub killed_after_grace: usize,
    /// Processes still alive after every SIGKILL (should never happen; reported, not hidden).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leaked: Vec<u32>,
    pub duration_ms: u64,
}

/// Run the supervisor; returns the process exit code. Call it from `main` of the binary.
///
/// One thread: SIGCHLD and the stop signals (SIGTERM, SIGINT, SIGHUP) wake a `poll` through
/// a socket their handlers write to, and every wake-up reaps what exited and moves the stop
/// along. (A thread for the signals cost more than the rest of a no-op agent's supervision.)
pub fn supervise(args: SuperviseArgs) -> i32 {
    let started = Instant::now();
    // Own session and process group; fails only if already a group leader, which is fine.
    let _ = rustix::process::setsid();
    let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
    // before the claim: a stop that comes before the agent starts is seen, not fatal
    let signals = Signals::register();

    let me = procfs::process_ref(std::process::id()).unwrap_or(ProcessRef {
        pid: std::process::id(),
        start_time: 0,
    });
    let claim = PidFile::Running {
        pid: me.pid,
        start_time: me.start_time,
    };
    if let Some(root) = &args.state_root {
        baton_store::confine_to(root);
    }
    if let Some(dir) = args.pidfile.parent() {
        match baton_store::create_dir_all(dir) {
            Ok(()) => {}
            // a link (or a file) on the way: nothing may be written there, not even the
            // status; the runner checked the same path before it launched and says why
            Err(
                baton_store::StoreError::Symlink { .. }
                | baton_store::StoreError::NotADirectory { .. },
            ) => return NOT_CONFINED,
            // fails below, with the claim
            Err(_) => {}
        }
    }
    let failed = |why: String| StatusFile {
        spawn_error: Some(why),
        ..StatusFile::default()
    };
    match claim_file(&args.pidfile, &claim) {
        Ok(true) => {}
        Ok(false) => return CLAIMED_ELSEWHERE,
        Err(e) => {
            let end = failed(format!("cannot claim the attempt: {e}"));
            return finish(&args, &claim, end, started);
        }
    }
    let signals = match signals {
        Ok(s) => s,
        Err(e) => {
            let end = failed(format!("cannot watch for signals: {e}"));
            return finish(&args, &claim, end, started);
        }
    };
    if signals.stop_requested() {
        // stopped before it started: nothing ran
        let end = StatusFile {
            cancelled: true,
            ..StatusFile::default()
        };
        return finish(&args, &claim, end, started);
    }

    let log = match OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&args.log)
    {
        Ok(f) => f,
        Err(e) => {
            let end = failed(format!("cannot open {}: {e}", args.log.display()));
            return finish(&args, &claim, end, started);
        }
    };
    let spawned = log.try_clone().and_then(|out| {
        Command::new(&args.argv[0])
            .args(&args.argv[1..])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(log)
            .spawn()
    });
    let child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let program = args.argv[0].to_string_lossy();
            let why = if e.kind() == std::io::ErrorKind::NotFound {
                format!("{program}: command not found")
            } else {
                format!("{program}: {e}")
            };
            return finish(&args, &claim, failed(why), started);
        }
    };
    let agent = child.id();
    // The std handle is not used to wait: this process reaps every child (it is a subreaper),
    // the agent among them.
    drop(child);

    let mut status = StatusFile::default();
    let mut sweep: Option<Sweep> = None;
    let mut agent_done = false;
    loop {
        // reap whatever exited; `false` once no child is left at all
        let children_left = loop {
            match rustix::process::wait(WaitOptions::NOHANG) {
                Ok(Some((pid, ws))) => {
                    if pid.as_raw_nonzero().get() as u32 == agent {
                        status.exit_code = ws.exit_status();
                        status.signal = ws.terminating_signal();
                        agent_done = true;
                    }
                }
                Ok(None) => break true,
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => break false, // ECHILD: nothing is left
            }
        };
        if !children_left {
            break;
        }
        if signals.stop_requested() && !status.cancelled {
            status.cancelled = true;
            // a sweep of leftovers already under way serves the stop as well
            if sweep.is_none() {
                sweep = Some(Sweep::start(me.pid, args.grace));
            }
        }
        if agent_done && sweep.is_none() {
            // the agent is done; whatever it left running goes too (as a subreaper,
            // everything left is a child of this process or below)
            status.swept = procfs::descendants(me.pid).len();
            sweep = Some(Sweep::start(me.pid, args.grace));
        }
        let timeout = sweep.as_mut().and_then(|s| s.step(me.pid));
        signals.wait(timeout);
    }
    if let Some(s) = sweep {
        status.killed_after_grace += s.forced.len();
        status.leaked.extend(s.leaked);
    }
    note_in_log(&args.log, &status);
    finish(&args, &claim, status, started)
}

/// The stop signals' flag, and the socket that every watched signal wakes.
struct Signals {
    stop: Arc<AtomicBool>,
    wake: std::os::unix::net::UnixStream,
}

impl Signals {
    fn register() -> std::io::Result<Self> {
        use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGTERM};
        let (wake, write) = std::os::unix::net::UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        for sig in [SIGTERM, SIGINT, SIGHUP] {
            signal_hook::flag::register(sig, stop.clone())?;
        }
        for sig in [SIGTERM, SIGINT, SIGHUP, SIGCHLD] {
            signal_hook::low_level::pipe::register(sig, write.try_clone()?)?;
        }
        Ok(Signals { stop, wake })
    }

    fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Sleep until a watched signal came (or came since the last wake-up), or `timeout`.
    fn wait(&self, timeout: Option<Duration>) {
        use std::io::Read;
        let ts = timeout.map(|d| rustix::time::Timespec {
            tv_sec: d.as_secs() as i64,
            tv_nsec: i64::from(d.subsec_nanos()),
        });
        let mut fds = [rustix::event::PollFd::new(
            &self.wake,
            rustix::event::PollFlags::IN,
        )];
        // EINTR is a wake-up like any other
        let _ = rustix::event::poll(&mut fds, ts.as_ref());
        let mut buf = [0u8; 64];
        while matches!((&self.wake).read(&mut buf), Ok(n) if n > 0) {}
    }
}

/// Stopping every descendant: SIGTERM to all, up to the grace period for them to go, then
/// SIGKILL to whatever is left every 20 ms until nothing is (after 100 rounds the pids left
/// are reported as leaked, never hidden).
struct Sweep {
    deadline: Instant,
    killing: bool,
    rounds: u32,
    forced: BTreeSet<u32>,
    leaked: Vec<u32>,
}

impl Sweep {
    fn start(root: u32, grace: Duration) -> Self {
        for p in procfs::descendants(root) {
            kill(p, Signal::TERM);
        }
        Sweep {
            deadline: Instant::now() + grace,
            killing: false,
            rounds: 0,
            forced: BTreeSet::new(),
            leaked: Vec::new(),
        }
    }

    /// Move the sweep on; returns how long to sleep at most before the next step (`None`:
    /// nothing is left to do but reap).
    fn step(&mut self, root: u32) -> Option<Duration> {
        if !self.leaked.is_empty() {
            return None;
        }
        let now = Instant::now();
        if !self.killing {
            if now < self.deadline && !procfs::descendants(root).is_empty() {
                // woken by SIGCHLD as they go; looked at again at least every 50 ms
                return Some((self.deadline - now).min(Duration::from_millis(50)));
            }
            self.killing = true;
        }
        let left = procfs::descendants(root);
        if left.is_empty() {
            // only zombies are left: their SIGCHLD wakes the reaping
            return Some(Duration::from_millis(20));
        }
        if self.rounds >= 100 {
            self.leaked = left;
            return None;
        }
        self.rounds += 1;
        for &p in &left {
            kill(p, Signal::KILL);
            self.forced.insert(p);
        }
        Some(Duration::from_millis(20))
    }
}

fn finish(args: &SuperviseArgs, claim: &PidFile, mut status: StatusFile, started: Instant) -> i32 {
    status.schema_version = 1;
    status.duration_ms = started.elapsed().as_millis() as u64;
    // after its claim in the pid file when the claim is this process's (one file, so one
    // inode, per attempt); in the status file when there is no claim to add it to
    if append_end_as(&args.pidfile, claim, &status).is_ok() {
        return 0;
    }
    match write_replace(&args.status, &status) {
        Ok(()) => 0,
        Err(_) => 3,
    }
}

/// Add how the attempt ended to the pid file after this process's claim, as one line written
/// with one `write` (a reader after this process exited sees all of it, or, if it died while
/// writing, no valid end: a lost attempt).
#[cfg(test)]
pub(crate) fn append_end(pidfile: &std::path::Path, status: &StatusFile) -> std::io::Result<()> {
    let mine = PidFile::Running {
        pid: std::process::id(),
        start_time: procfs::process_ref(std::process::id()).map_or(0, |p| p.start_time),
    };
    append_end_as(pidfile, &mine, status)
}

/// [`append_end`] for the claimer `mine`.
fn append_end_as(
    pidfile: &std::path::Path,
    mine: &PidFile,
    status: &StatusFile,
) -> std::io::Result<()> {
    use std::io::Write;
    let text = std::fs::read(pidfile)?;
    if claim_of(&text).as_ref() != Some(mine) {
        return Err(std::io::Error::other("the pid file holds another claim"));
    }
    let mut line = serde_json::to_vec(status).map_err(std::io::Error::other)?;
    line.push(b'\n');
    OpenOptions::new()
        .append(true)
        .open(pidfile)?
        .write_all(&line)
}

/// The claim at the start of a pid file's text, if it is whole.
pub fn claim_of(text: &[u8]) -> Option<PidFile> {
    serde_json::Deserializer::from_slice(text)
        .into_iter::<PidFile>()
        .next()?
        .ok()
}

/// How the attempt ended, from the line after the claim in a pid file's text, if it is whole.
pub fn end_of(text: &[u8]) -> Option<StatusFile> {
    let mut values = serde_json::Deserializer::from_slice(text).into_iter::<serde_json::Value>();
    values.next()?.ok()?;
    serde_json::from_value(values.next()?.ok()?).ok()
}

/// Say in the agent's log what the supervisor had to clean up, so `baton logs` shows it.
fn note_in_log(log: &std::path::Path, status: &StatusFile) {
    use std::io::Write;
    let mut notes = Vec::new();
    if status.swept > 0 {
        notes.push(format!(
            "[baton] the agent exited leaving {} process(es) running; they were stopped",
            status.swept
        ));
    }
    if status.killed_after_grace > 0 {
        notes.push(format!(
            "[baton] {} process(es) ignored SIGTERM and were killed with SIGKILL after the grace period",
            status.killed_after_grace
        ));
    }
    if !status.leaked.is_empty() {
        notes.push(format!(
            "[baton] LEAK: processes {:?} survived SIGKILL",
            status.leaked
        ));
    }
    if notes.is_empty() {
        return;
    }
    if let Ok(mut f) = OpenOptions::new().append(true).open(log) {
        for n in notes {
            let _ = writeln!(f, "{n}");
        }
    }
}

/// A temp file beside `path` with `value` as JSON.
///
/// The supervisor's files are written whole and renamed or linked into place, so no reader
/// sees a partial file, but not fsynced: they must survive the runner, not a power cut (after
/// one, the agent is gone too and a missing status reads as a lost attempt, retried per
/// policy). This keeps an agent's start and end off the disk's flush path.
fn temp_with<T: Serialize>(path: &std::path::Path, value: &T) -> std::io::Result<PathBuf> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    // never written through a link at the temp name (a stale file of a process with our pid
    // is replaced, as `write` would; a link is left and the write refused)
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    std::io::Write::write_all(&mut file, &bytes)?;
    Ok(tmp)
}

fn write_replace<T: Serialize>(path: &std::path::Path, value: &T) -> std::io::Result<()> {
    let tmp = temp_with(path, value)?;
    std::fs::rename(&tmp, path)
}

/// Create `path` with `value` unless it exists: `Ok(false)` when someone claimed it first.
///
/// Created in place (`O_EXCL`) and written with one `write` while the file is held open, not
/// through a temp file: a file costs an inode, and on a busy file system the inode is most
/// of an agent's start. A reader that finds the file empty or partial knows the claimer is
/// between those two calls, or died there before starting anything: it finds a live claimer
/// by the open file ([`crate::procfs::holder_of`]), see `local::read_claim`.
pub(crate) fn claim_file<T: Serialize>(path: &std::path::Path, value: &T) -> std::io::Result<bool> {
    use std::io::Write;
    let mut bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    let mut file = match OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(e),
    };
    file.write_all(&bytes)?;
    Ok(true)
}

fn kill(pid: u32, sig: Signal) {
    if let Some(p) = Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(p, sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_round_trip() {
        let a = SuperviseArgs {
            log: "/l/1.log".into(),
            status: "/l/1.status.json".into(),
            pidfile: "/l/1.pid.json".into(),
            grace: Duration::from_millis(250),
            state_root: None,
            argv: vec!["sh".into(), "-c".into(), "echo --log".into()],
        };
        let b = SuperviseArgs::parse(&a.to_args()).unwrap();
        assert_eq!(b.log, a.log);
        assert_eq!(b.grace, a.grace);
        assert_eq!(b.argv, a.argv);
        assert!(SuperviseArgs::parse(&["--log".into()]).is_err());
        assert!(SuperviseArgs::parse(&["--bogus".into(), "x".into()]).is_err());
    }
}
