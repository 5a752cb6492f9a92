//! Following an attempt's log as it grows (`baton logs --follow`), woken by inotify on the
//! log's directory, until the supervisor records how the attempt ended.

use std::io::{Read, Seek, SeekFrom};
use std::mem::MaybeUninit;
use std::path::Path;

use rustix::fs::inotify::{self, CreateFlags, WatchFlags};

/// Hand every byte of `log` to `sink`, then each new byte as it is written, until the attempt
/// has ended. Returns when the attempt's end is recorded and the log is drained, or the sink fails
/// (a closed pipe).
pub fn follow(
    log: &Path,
    sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = log.parent().unwrap_or(Path::new("."));
    let fd = inotify::init(CreateFlags::CLOEXEC)?;
    // watch before the first read so no write is missed in between
    inotify::add_watch(
        &fd,
        dir,
        WatchFlags::MODIFY | WatchFlags::CREATE | WatchFlags::MOVED_TO,
    )?;

    let mut file = std::fs::File::open(log)?;
    let mut pos = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    let mut events = [MaybeUninit::<u8>::uninit(); 4096];
    loop {
        // the supervisor adds the end to the pid file (or writes the status file)
        let done = crate::local::read_outcome(log).is_some();
        file.seek(SeekFrom::Start(pos))?;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            pos += n as u64;
            sink(&buf[..n])?;
        }
        if done {
            return Ok(());
        }
        // block until something in the directory changes
        let mut reader = inotify::Reader::new(&fd, &mut events);
        reader.next()?;
    }
}

/// Wakes when something in a directory is written or renamed into it (an execution file being
/// replaced atomically), for `baton status --watch`.
pub struct DirWatch {
    fd: std::os::fd::OwnedFd,
}

impl DirWatch {
    pub fn new(dir: &Path) -> std::io::Result<Self> {
        let fd = inotify::init(CreateFlags::CLOEXEC)?;
        inotify::add_watch(
            &fd,
            dir,
            WatchFlags::MODIFY | WatchFlags::CREATE | WatchFlags::MOVED_TO,
        )?;
        Ok(DirWatch { fd })
    }

    /// Block until the next change.
    pub fn wait(&self) -> std::io::Result<()> {
        let mut events = [MaybeUninit::<u8>::uninit(); 4096];
        let mut reader = inotify::Reader::new(&self.fd, &mut events);
        reader.next().map(drop).map_err(std::io::Error::from)
    }
}
