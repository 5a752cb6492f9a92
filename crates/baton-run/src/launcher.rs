//! The launcher: one helper process per runner (`baton __launch`) that starts supervisors by
//! `fork` alone, so an agent's start costs no exec of the baton binary (loading, relocating
//! and initialising a large binary is most of a no-op agent's cost).
//!
//! The launcher is exec'd once and stays single-threaded, so a fork of it is a plain process
//! that may run any code: the child moves to the attempt's directory, takes its environment,
//! lets go of the launcher's pipes and runs [`crate::supervise::supervise`], exactly as
//! `baton __supervise` would. Requests come on its stdin, one at a time; the answer is the
//! supervisor's pid. A child is reaped only after the runner asked for the next one, by which
//! time the runner holds its pidfd, so a reaped pid is never looked up. When the runner goes
//! (the pipe closes) the launcher exits; supervisors keep running, adopted by init or a
//! subreaper, like the ones the runner started itself.
#![expect(
    unsafe_code,
    reason = "fork(2) of a single-threaded process, and its child's dup2/setenv before any thread"
)]

use std::ffi::OsString;
use std::io::{BufReader, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use crate::supervise::{SuperviseArgs, supervise};

/// Items in one message: a count, then each item's length and bytes (little-endian u32s).
fn write_items(w: &mut impl Write, items: &[&[u8]]) -> std::io::Result<()> {
    let mut buf = Vec::new();
    buf.extend_from_slice(&(items.len() as u32).to_le_bytes());
    for it in items {
        buf.extend_from_slice(&(it.len() as u32).to_le_bytes());
        buf.extend_from_slice(it);
    }
    w.write_all(&buf)?;
    w.flush()
}

fn read_u32(r: &mut impl Read) -> std::io::Result<usize> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b) as usize)
}

fn read_items(r: &mut impl Read) -> std::io::Result<Vec<Vec<u8>>> {
    let n = read_u32(r)?;
    if n > 1 << 16 {
        return Err(std::io::Error::other(format!("{n} items in one request")));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let len = read_u32(r)?;
        if len > 1 << 26 {
            return Err(std::io::Error::other(format!("an item of {len} bytes")));
        }
        let mut b = vec![0u8; len];
        r.read_exact(&mut b)?;
        out.push(b);
    }
    Ok(out)
}

/// The runner's end of a launcher.
pub struct Launcher {
    child: Child,
    to: Option<ChildStdin>,
    from: BufReader<ChildStdout>,
}

impl Launcher {
    /// Start `program args…` (the baton binary with `__launch`).
    pub fn start(program: &Path, args: &[OsString]) -> std::io::Result<Self> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let to = child.stdin.take();
        let from = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("the launcher has no stdout"))?;
        Ok(Launcher {
            child,
            to,
            from: BufReader::new(from),
        })
    }

    /// Start a supervisor with `args` in `cwd`, with `env` added to the launcher's (this
    /// process's) environment; returns its pid. The caller must open its pidfd before the next
    /// call (the launcher may reap it from then on).
    pub fn spawn<'a>(
        &mut self,
        cwd: &Path,
        env: impl Iterator<Item = (&'a str, &'a str)>,
        args: &SuperviseArgs,
    ) -> std::io::Result<u32> {
        let env: Vec<(&str, &str)> = env.collect();
        let count = env.len().to_string();
        let sargs = args.to_args();
        let mut items: Vec<&[u8]> = vec![cwd.as_os_str().as_bytes(), count.as_bytes()];
        for (k, v) in &env {
            items.push(k.as_bytes());
            items.push(v.as_bytes());
        }
        items.extend(sargs.iter().map(|a| a.as_bytes()));
        let to = self
            .to
            .as_mut()
            .ok_or_else(|| std::io::Error::other("the launcher is closed"))?;
        write_items(to, &items)?;
        let reply = read_items(&mut self.from)?;
        match reply.as_slice() {
            [ok, pid] if ok == b"ok" => std::str::from_utf8(pid)
                .ok()
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| std::io::Error::other("the launcher sent a bad pid")),
            [err, why] if err == b"err" => Err(std::io::Error::other(
                String::from_utf8_lossy(why).into_owned(),
            )),
            _ => Err(std::io::Error::other("the launcher sent a bad answer")),
        }
    }
}

impl Drop for Launcher {
    fn drop(&mut self) {
        // end of input: it exits (its supervisors keep running)
        drop(self.to.take());
        let _ = self.child.wait();
    }
}

struct Request {
    cwd: PathBuf,
    env: Vec<(OsString, OsString)>,
    args: SuperviseArgs,
}

fn parse_request(items: Vec<Vec<u8>>) -> Result<Request, String> {
    let mut it = items.into_iter();
    let cwd = PathBuf::from(OsString::from_vec(it.next().ok_or("no directory")?));
    let count: usize = it
        .next()
        .and_then(|c| String::from_utf8(c).ok())
        .and_then(|c| c.parse().ok())
        .ok_or("no environment count")?;
    let mut env = Vec::with_capacity(count);
    for _ in 0..count {
        let k = OsString::from_vec(it.next().ok_or("environment cut short")?);
        let v = OsString::from_vec(it.next().ok_or("environment cut short")?);
        if k.is_empty() || k.as_bytes().contains(&b'=') || k.as_bytes().contains(&0) {
            return Err(format!("bad environment name {k:?}"));
        }
        if v.as_bytes().contains(&0) {
            return Err(format!("a NUL in the value of {k:?}"));
        }
        env.push((k, v));
    }
    let rest: Vec<OsString> = it.map(OsString::from_vec).collect();
    let args = SuperviseArgs::parse(&rest)?;
    Ok(Request { cwd, env, args })
}

/// The launcher's side (`baton __launch`): serve requests on stdin until it closes. Returns
/// the exit code. Must be called in a process with no other thread.
pub fn serve() -> i32 {
    // Ctrl-C at the terminal reaches the runner's process group, this process included: the
    // runner decides what stops, and it closes the pipe when it is done
    let _ = signal_hook::flag::register(signal_hook::consts::SIGINT, Default::default());
    let mut input = std::io::stdin().lock();
    let mut output = std::io::stdout().lock();
    loop {
        let Ok(items) = read_items(&mut input) else {
            return 0;
        };
        // only now, with the next request in hand: the runner opened the pidfd of every child
        // forked so far before it asked, so none of them is reaped before that
        while let Ok(Some(_)) = rustix::process::wait(rustix::process::WaitOptions::NOHANG) {}
        let reply = parse_request(items).and_then(|req| {
            if !req.cwd.is_dir() {
                return Err(format!(
                    "cannot run in {}: not a directory",
                    req.cwd.display()
                ));
            }
            fork_supervisor(req).map_err(|e| format!("cannot start a supervisor: {e}"))
        });
        let sent = match reply {
            Ok(pid) => write_items(&mut output, &[b"ok", pid.to_string().as_bytes()]),
            Err(why) => write_items(&mut output, &[b"err", why.as_bytes()]),
        };
        if sent.is_err() {
            return 0;
        }
    }
}

fn fork_supervisor(req: Request) -> std::io::Result<u32> {
    // SAFETY: this process has one thread (see `serve`), so the child inherits no lock held by
    // another thread and may run ordinary code.
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()),
        0 => {
            let code = child(req);
            // SAFETY: ends this process without the exit-time work of the launcher it copied
            // (its stdout, locked by `serve`, is not this process's to flush)
            unsafe { libc::_exit(code) }
        }
        pid => Ok(pid as u32),
    }
}

/// In the forked child: become what `baton __supervise` would be, then supervise.
fn child(req: Request) -> i32 {
    // the launcher's pipes are not the supervisor's: the runner must see them close with the
    // launcher, and the supervisor's own stdio is /dev/null as when it is exec'd
    let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    else {
        return 3;
    };
    {
        use std::os::fd::AsRawFd;
        for target in 0..3 {
            // SAFETY: dup2 onto the standard descriptors of this single-threaded process
            if unsafe { libc::dup2(null.as_raw_fd(), target) } < 0 {
                return 3;
            }
        }
    }
    drop(null);
    if std::env::set_current_dir(&req.cwd).is_err() {
        return 3;
    }
    for (k, v) in &req.env {
        // SAFETY: no other thread exists in this process yet (the child of a single-threaded
        // fork), so nothing reads the environment concurrently
        unsafe { std::env::set_var(k, v) };
    }
    supervise(req.args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_bad_ones_are_refused() {
        let args = SuperviseArgs {
            log: "/l/1.log".into(),
            status: "/l/1.status.json".into(),
            pidfile: "/l/1.pid.json".into(),
            grace: std::time::Duration::from_millis(300),
            state_root: Some("/l".into()),
            argv: vec!["sh".into(), "-c".into(), "echo hi".into()],
        };
        let sargs = args.to_args();
        let mut items: Vec<&[u8]> = vec![b"/work", b"1", b"A", b"b=c"];
        items.extend(sargs.iter().map(|a| a.as_bytes()));
        let mut wire = Vec::new();
        write_items(&mut wire, &items).unwrap();
        let req = parse_request(read_items(&mut wire.as_slice()).unwrap()).unwrap();
        assert_eq!(req.cwd, PathBuf::from("/work"));
        assert_eq!(req.env, vec![(OsString::from("A"), OsString::from("b=c"))]);
        assert_eq!(req.args.argv, args.argv);
        assert_eq!(req.args.grace, args.grace);
        assert_eq!(req.args.state_root, args.state_root);

        let bad = |items: Vec<&[u8]>| {
            let items: Vec<Vec<u8>> = items.into_iter().map(<[u8]>::to_vec).collect();
            parse_request(items).err()
        };
        assert!(
            bad(vec![b"/w", b"1", b"A=B", b"c"]).is_some(),
            "= in a name"
        );
        assert!(bad(vec![b"/w", b"2", b"A", b"c"]).is_some(), "cut short");
        assert!(bad(vec![b"/w", b"x"]).is_some(), "no count");
        assert!(bad(vec![b"/w", b"0"]).is_some(), "no supervisor arguments");
        // a message cut short is an error, not a hang or a panic
        assert!(read_items(&mut &wire[..wire.len() - 1]).is_err());
        assert!(read_items(&mut &[255u8, 255, 255, 255][..]).is_err());
    }
}
