//! One thread that waits for every local attempt's supervisor to exit: a `poll` over their
//! pidfds plus an eventfd that wakes it when a new one is added. No thread per agent, no
//! polling loop.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Child;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender, channel};

use rustix::event::{EventfdFlags, PollFd, PollFlags};

use crate::executor::{AttemptEvent, AttemptKey};

/// A supervisor to wait for; `child` when this process started it (and must reap it).
pub struct Watch {
    pub fd: OwnedFd,
    pub child: Option<Child>,
    pub key: AttemptKey,
    pub log: PathBuf,
    pub events: Sender<AttemptEvent>,
}

pub struct Watcher {
    tx: Mutex<Sender<Watch>>,
    wake: std::sync::Arc<OwnedFd>,
}

impl Watcher {
    /// Start the waiting thread; `done` turns a finished watch into its event.
    pub fn start(done: fn(Watch)) -> std::io::Result<Self> {
        let wake = std::sync::Arc::new(rustix::event::eventfd(0, EventfdFlags::CLOEXEC)?);
        let (tx, rx) = channel();
        let thread_wake = wake.clone();
        std::thread::Builder::new()
            .name("supervisors".into())
            .stack_size(128 * 1024)
            .spawn(move || run(&thread_wake, &rx, done))?;
        Ok(Watcher {
            tx: Mutex::new(tx),
            wake,
        })
    }

    /// Hand a supervisor to the thread; gives it back if the thread is gone.
    pub fn add(&self, w: Watch) -> Result<(), Box<Watch>> {
        let sent = match self.tx.lock() {
            Ok(tx) => tx.send(w).map_err(|e| Box::new(e.0)),
            Err(_) => Err(Box::new(w)),
        };
        if sent.is_ok() {
            let _ = rustix::io::write(&*self.wake, &1u64.to_ne_bytes());
        }
        sent
    }
}

fn run(wake: &OwnedFd, rx: &Receiver<Watch>, done: fn(Watch)) {
    let mut watches: Vec<Watch> = Vec::new();
    loop {
        watches.extend(rx.try_iter());
        let (woke, ready) = {
            let mut fds: Vec<PollFd> = std::iter::once(PollFd::new(wake, PollFlags::IN))
                .chain(watches.iter().map(|w| PollFd::new(&w.fd, PollFlags::IN)))
                .collect();
            match rustix::event::poll(&mut fds, None) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => return,
            }
            let woke = !fds[0].revents().is_empty();
            let ready: Vec<bool> = fds[1..].iter().map(|f| !f.revents().is_empty()).collect();
            (woke, ready)
        };
        if woke {
            let mut buf = [0u8; 8];
            let _ = rustix::io::read(wake, &mut buf);
        }
        // from the back, so swap_remove only moves watches already looked at
        for i in (0..ready.len()).rev() {
            if ready[i] {
                done(watches.swap_remove(i));
            }
        }
    }
}
