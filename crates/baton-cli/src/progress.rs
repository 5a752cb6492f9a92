//! Progress on long work: a spinner on stderr that follows a counter the library advances.
//! Shown only when stderr is a terminal and not `--quiet`; never on stdout.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::ctx::Ctx;

/// A counter to hand to a library, and the spinner that shows it until dropped.
pub struct Counter {
    pub count: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Counter {
    /// `label` reads before the count: "checking out" → "checking out: 1234 files".
    pub fn new(ctx: &Ctx, label: &'static str, unit: &'static str) -> Counter {
        let count = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let thread = (!ctx.quiet && std::io::stderr().is_terminal()).then(|| {
            let (count, done) = (Arc::clone(&count), Arc::clone(&done));
            std::thread::spawn(move || {
                let bar = ProgressBar::new_spinner();
                // the template is a constant known to be valid
                if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                    bar.set_style(style);
                }
                while !done.load(Ordering::Relaxed) {
                    bar.set_message(format!("{label}: {} {unit}", count.load(Ordering::Relaxed)));
                    bar.tick();
                    std::thread::sleep(Duration::from_millis(100));
                }
                bar.finish_and_clear();
            })
        });
        Counter {
            count,
            done,
            thread,
        }
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
