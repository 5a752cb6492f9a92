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

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use baton_plan::ProcessRef;
use rustix::process::{Pid, Signal, WaitOptions};
use serde::{Deserialize, Serialize};

use crate::procfs;

/// Exit code of a supervisor that found its pid file already claimed: it started nothing.
pub const CLAIMED_ELSEWHERE: i32 = 75;

/// The arguments of `__supervise`.
#[derive(Debug, Clone)]
pub struct SuperviseArgs {
    pub log: PathBuf,
    pub status: PathBuf,
    pub pidfile: PathBuf,
    pub grace: Duration,
    pub argv: Vec<OsString>,
}

impl SuperviseArgs {
    /// `--log L --status S --pidfile P --grace-ms N -- ARGV…`
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
            "--".into(),
        ];
        v.extend(self.argv.iter().cloned());
        v
    }

    pub fn parse(args: &[OsString]) -> Result<Self, String> {
        let mut it = args.iter();
        let (mut log, mut status, mut pidfile, mut grace) = (None, None, None, None);
        while let Some(a) = it.next() {
            let mut value = || it.next().cloned().ok_or(format!("{a:?} needs a value"));
            match a.to_str() {
                Some("--log") => log = Some(PathBuf::from(value()?)),
                Some("--status") => status = Some(PathBuf::from(value()?)),
                Some("--pidfile") => pidfile = Some(PathBuf::from(value()?)),
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

#[derive(Default)]
struct Shared {
    /// No child is left (the wait loop saw ECHILD).
    all_gone: bool,
}

type Sync = Arc<(Mutex<Shared>, Condvar)>;

/// Run the supervisor; returns the process exit code. Call it from `main` of the binary.
pub fn supervise(args: SuperviseArgs) -> i32 {
    let started = Instant::now();
    // Own session and process group; fails only if already a group leader, which is fine.
    let _ = rustix::process::setsid();
    let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));

    let me = procfs::process_ref(std::process::id()).unwrap_or(ProcessRef {
        pid: std::process::id(),
        start_time: 0,
    });
    let claim = PidFile::Running {
        pid: me.pid,
        start_time: me.start_time,
    };
    if let Some(dir) = args.pidfile.parent() {
        // fails below, with the claim, if it cannot be made
        let _ = std::fs::create_dir_all(dir);
    }
    match claim_file(&args.pidfile, &claim) {
        Ok(true) => {}
        Ok(false) => return CLAIMED_ELSEWHERE,
        Err(e) => {
            return finish(
                &args,
                StatusFile {
                    spawn_error: Some(format!("cannot claim the attempt: {e}")),
                    ..StatusFile::default()
                },
                started,
            );
        }
    }

    let sync: Sync = Arc::new((Mutex::new(Shared::default()), Condvar::new()));
    let cancelled = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let leaked: Arc<Mutex<(usize, Vec<u32>)>> = Arc::default();
    // SIGTERM / SIGINT / SIGHUP: stop the agent and everything it started.
    let mut stopper = None;
    if let Ok(mut signals) = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ]) {
        let (sync, cancelled, leaked, grace) =
            (sync.clone(), cancelled.clone(), leaked.clone(), args.grace);
        stopper = Some(std::thread::spawn(move || {
            if signals.forever().next().is_some() {
                cancelled.store(true, std::sync::atomic::Ordering::SeqCst);
                let (forced, left) = sweep(me.pid, grace, &sync);
                let mut l = leaked.lock().expect("not poisoned");
                l.0 += forced;
                l.1.extend(left);
            }
        }));
    }

    let log = match OpenOptions::new().create(true).append(true).open(&args.log) {
        Ok(f) => f,
        Err(e) => {
            return finish(
                &args,
                StatusFile {
                    spawn_error: Some(format!("cannot open {}: {e}", args.log.display())),
                    ..StatusFile::default()
                },
                started,
            );
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
            return finish(
                &args,
                StatusFile {
                    spawn_error: Some(why),
                    ..StatusFile::default()
                },
                started,
            );
        }
    };
    let agent = child.id();
    // The std handle is not used to wait: this process reaps every child (it is a subreaper),
    // the agent among them.
    drop(child);

    let mut status = StatusFile::default();
    let mut sweeper = None;
    loop {
        match rustix::process::wait(WaitOptions::empty()) {
            Ok(Some((pid, ws))) => {
                if pid.as_raw_nonzero().get() as u32 == agent {
                    status.exit_code = ws.exit_status();
                    status.signal = ws.terminating_signal();
                    if !cancelled.load(std::sync::atomic::Ordering::SeqCst) && has_children() {
                        // the agent is done; whatever it left running goes too (as a
                        // subreaper, everything left is a child of this process or below)
                        let left = procfs::descendants(me.pid);
                        status.swept = left.len();
                        if !left.is_empty() {
                            let (sync, grace) = (sync.clone(), args.grace);
                            sweeper = Some(std::thread::spawn(move || sweep(me.pid, grace, &sync)));
                        }
                    }
                }
            }
            Ok(None) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => break, // ECHILD: nothing is left
        }
    }
    {
        let (lock, cv) = &*sync;
        lock.lock().expect("not poisoned").all_gone = true;
        cv.notify_all();
    }
    if let Some(s) = sweeper
        && let Ok((forced, left)) = s.join()
    {
        status.killed_after_grace += forced;
        status.leaked.extend(left);
    }
    status.cancelled = cancelled.load(std::sync::atomic::Ordering::SeqCst);
    // a stop's sweep may still be counting what it had to SIGKILL: wait for its tally
    if status.cancelled
        && let Some(t) = stopper
    {
        let _ = t.join();
    }
    {
        let l = leaked.lock().expect("not poisoned");
        status.killed_after_grace += l.0;
        status.leaked.extend(l.1.iter());
    }
    note_in_log(&args.log, &status);
    finish(&args, status, started)
}

fn finish(args: &SuperviseArgs, mut status: StatusFile, started: Instant) -> i32 {
    status.schema_version = 1;
    status.duration_ms = started.elapsed().as_millis() as u64;
    // after its claim in the pid file when the claim is this process's (one file, so one
    // inode, per attempt); in the status file when there is no claim to add it to
    if append_end(&args.pidfile, &status).is_ok() {
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
pub(crate) fn append_end(pidfile: &std::path::Path, status: &StatusFile) -> std::io::Result<()> {
    use std::io::Write;
    let mine = PidFile::Running {
        pid: std::process::id(),
        start_time: procfs::process_ref(std::process::id()).map_or(0, |p| p.start_time),
    };
    let text = std::fs::read(pidfile)?;
    if claim_of(&text).as_ref() != Some(&mine) {
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

/// Does this process have a child left (running or not yet reaped)?
fn has_children() -> bool {
    // Ok(None): children, none exited yet; Ok(Some): an exited one; ECHILD: none at all
    rustix::process::waitid(
        rustix::process::WaitId::All,
        rustix::process::WaitIdOptions::EXITED
            | rustix::process::WaitIdOptions::NOHANG
            | rustix::process::WaitIdOptions::NOWAIT,
    )
    .is_ok()
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
    std::fs::write(&tmp, bytes)?;
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

/// Stop every descendant of `root`: SIGTERM to all, wait up to `grace` for them to be reaped,
/// then SIGKILL whatever is left until nothing is. Returns how many processes needed SIGKILL
/// and the pids that survived every SIGKILL.
fn sweep(root: u32, grace: Duration, sync: &Sync) -> (usize, Vec<u32>) {
    signal_all(root, Signal::TERM);
    let (lock, cv) = &**sync;
    let deadline = Instant::now() + grace;
    let mut guard = lock.lock().expect("not poisoned");
    while !guard.all_gone {
        let now = Instant::now();
        if now >= deadline || procfs::descendants(root).is_empty() {
            break;
        }
        // woken when the wait loop has reaped the last child
        guard = cv
            .wait_timeout(guard, (deadline - now).min(Duration::from_millis(50)))
            .expect("not poisoned")
            .0;
    }
    drop(guard);
    let mut forced = std::collections::BTreeSet::new();
    for _ in 0..100 {
        let left = procfs::descendants(root);
        if left.is_empty() {
            return (forced.len(), Vec::new());
        }
        for &p in &left {
            kill(p, Signal::KILL);
            forced.insert(p);
        }
        let guard = lock.lock().expect("not poisoned");
        if guard.all_gone {
            return (forced.len(), Vec::new());
        }
        let _ = cv
            .wait_timeout(guard, Duration::from_millis(20))
            .expect("not poisoned");
    }
    (forced.len(), procfs::descendants(root))
}

fn signal_all(root: u32, sig: Signal) {
    for p in procfs::descendants(root) {
        kill(p, sig);
    }
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
