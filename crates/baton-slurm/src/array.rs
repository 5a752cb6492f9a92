//! Array jobs: one `sbatch --array=1-N` whose tasks run the same argv with `{array_task}`
//! replaced by each task's index (test shards), and waiting for all of them.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use baton_run::Outcome;

use crate::client::{Slurm, SlurmError, Submit};
use crate::job::{file_pattern, time_limit_minutes};
use crate::state::outcome;

/// One array job.
pub struct ArrayJob<'a> {
    pub name: &'a str,
    /// Tasks `1..=tasks`.
    pub tasks: u32,
    pub script: &'a Path,
    /// The argv of every task; `{array_task}` in an element becomes the task index.
    pub args: &'a [String],
    pub cwd: &'a Path,
    /// Output of task K goes to `log_dir/<prefix>-K.log`.
    pub log_dir: &'a Path,
    pub log_prefix: &'a str,
    pub timeout: Option<Duration>,
    /// Placement and resources (`--partition=…`, extra arguments).
    pub options: Vec<String>,
    pub env: &'a BTreeMap<String, String>,
}

/// Submit the array; returns its job id.
pub fn submit_array(slurm: &Slurm, job: &ArrayJob<'_>) -> Result<String, SlurmError> {
    let mut options = vec![
        format!("--job-name={}", job.name),
        format!("--array=1-{}", job.tasks),
        format!("--chdir={}", job.cwd.display()),
        format!(
            "--output={}/{}-%a.log",
            file_pattern(job.log_dir),
            job.log_prefix.replace('%', "%%")
        ),
        "--no-requeue".to_owned(),
        "--export=ALL".to_owned(),
    ];
    if let Some(t) = job.timeout {
        options.push(format!("--time={}", time_limit_minutes(t)));
    }
    options.extend(job.options.iter().cloned());
    slurm.submit(&Submit {
        script: job.script,
        args: job.args,
        options,
        env: job.env,
        cwd: job.cwd,
    })
}

/// Wait until every task of the array has ended; the outcome of each task by index.
/// `on_progress` hears how many tasks have ended after each poll.
pub fn wait_array(
    slurm: &Slurm,
    array_id: &str,
    tasks: u32,
    poll: Duration,
    mut on_progress: impl FnMut(u32),
) -> Result<BTreeMap<u32, Outcome>, SlurmError> {
    let ids = [array_id.to_owned()];
    let mut seen = 0;
    loop {
        let statuses = slurm.query(&ids)?;
        let mut ended = BTreeMap::new();
        let mut pending_whole_array = false;
        for s in &statuses {
            match (&s.array, outcome(s)) {
                (Some((_, task)), Some(o)) => {
                    ended.insert(*task, o);
                }
                // tasks not yet started show as one line, `ID_[1-3]`
                (None, None) => pending_whole_array = true,
                _ => {}
            }
        }
        let done = u32::try_from(ended.len()).unwrap_or(u32::MAX);
        if done != seen {
            seen = done;
            on_progress(done);
        }
        if done >= tasks && !pending_whole_array {
            return Ok(ended);
        }
        if statuses.is_empty() {
            // the controller forgot the array: ask accounting once, else it is lost
            let acct = slurm.accounting(&ids)?.unwrap_or_default();
            let mut out = BTreeMap::new();
            for task in 1..=tasks {
                let o = acct
                    .iter()
                    .find(|s| s.array.as_ref().is_some_and(|(_, t)| *t == task))
                    .and_then(outcome)
                    .unwrap_or_else(|| {
                        Outcome::Lost(format!("task {task} of job {array_id} vanished from Slurm"))
                    });
                out.insert(task, o);
            }
            return Ok(out);
        }
        std::thread::sleep(poll);
    }
}
