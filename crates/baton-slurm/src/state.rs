//! Job states as Slurm reports them, and what each means for an attempt. Pure.

use baton_run::Outcome;

/// One job's status as `squeue`/`sacct` report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    /// The job's own id (for an array task, the task's job id).
    pub job_id: String,
    /// For an array task: the array's id and the task index.
    pub array: Option<(String, u32)>,
    /// `PENDING`, `RUNNING`, `COMPLETED`, `TIMEOUT`, … (a `+` or ` by N` suffix removed).
    pub state: String,
    /// The batch script's wait status (`exit_code` of squeue: code << 8 | signal), when known.
    pub wait_status: Option<i32>,
    pub reason: String,
}

impl JobStatus {
    /// Still queued, running or on its way out: a final status follows.
    pub fn is_active(&self) -> bool {
        outcome(self).is_none()
    }
}

/// The state word of `squeue`/`sacct`: `CANCELLED by 0` → `CANCELLED`, `COMPLETED+` →
/// `COMPLETED`.
pub fn normalize_state(raw: &str) -> String {
    raw.split_whitespace()
        .next()
        .unwrap_or("")
        .trim_end_matches('+')
        .to_ascii_uppercase()
}

/// How an attempt that ran as this job ended, or `None` while the job is not finished.
pub fn outcome(job: &JobStatus) -> Option<Outcome> {
    let from_wait = |w: Option<i32>| match w {
        Some(w) if w & 0x7f != 0 => Outcome::Signalled(w & 0x7f),
        Some(w) => Outcome::Exited((w >> 8) & 0xff),
        None => Outcome::Lost(format!(
            "job {} ended ({}) without an exit code",
            job.job_id, job.state
        )),
    };
    Some(match job.state.as_str() {
        "COMPLETED" => from_wait(job.wait_status.or(Some(0))),
        "FAILED" => match from_wait(job.wait_status) {
            // FAILED with 0 is a launch failure (a missing working directory, a bad script)
            Outcome::Exited(0) => Outcome::SpawnFailed(format!(
                "job {} failed before the agent ran ({})",
                job.job_id, job.reason
            )),
            o => o,
        },
        "TIMEOUT" | "DEADLINE" => Outcome::TimedOut,
        "CANCELLED" => Outcome::Cancelled,
        "OUT_OF_MEMORY" => Outcome::Signalled(9),
        "BOOT_FAIL" => Outcome::SpawnFailed(format!("job {}: the node failed to boot", job.job_id)),
        "NODE_FAIL" => Outcome::Lost(format!("job {}: its node failed", job.job_id)),
        "PREEMPTED" => Outcome::Lost(format!("job {} was preempted", job.job_id)),
        "REVOKED" | "SPECIAL_EXIT" => {
            Outcome::Lost(format!("job {} ended as {}", job.job_id, job.state))
        }
        // PENDING, RUNNING, CONFIGURING, COMPLETING, SUSPENDED, REQUEUED, RESIZING, STOPPED,
        // SIGNALING, STAGE_OUT, REQUEUE_HOLD, …: not over yet
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(state: &str, wait: Option<i32>) -> JobStatus {
        JobStatus {
            job_id: "7".into(),
            array: None,
            state: normalize_state(state),
            wait_status: wait,
            reason: "None".into(),
        }
    }

    #[test]
    fn states_map_to_outcomes() {
        assert_eq!(
            outcome(&job("COMPLETED", Some(0))),
            Some(Outcome::Exited(0))
        );
        assert_eq!(
            outcome(&job("FAILED", Some(3 << 8))),
            Some(Outcome::Exited(3))
        );
        assert_eq!(
            outcome(&job("FAILED", Some(9))),
            Some(Outcome::Signalled(9))
        );
        assert_eq!(outcome(&job("TIMEOUT", Some(15))), Some(Outcome::TimedOut));
        assert_eq!(
            outcome(&job("CANCELLED by 0", None)),
            Some(Outcome::Cancelled)
        );
        assert_eq!(outcome(&job("COMPLETED+", None)), Some(Outcome::Exited(0)));
        assert!(matches!(
            outcome(&job("NODE_FAIL", None)),
            Some(Outcome::Lost(_))
        ));
        assert!(matches!(
            outcome(&job("FAILED", Some(0))),
            Some(Outcome::SpawnFailed(_))
        ));
        assert!(matches!(
            outcome(&job("FAILED", None)),
            Some(Outcome::Lost(_))
        ));
        for active in [
            "PENDING",
            "RUNNING",
            "COMPLETING",
            "CONFIGURING",
            "SUSPENDED",
            "REQUEUED",
        ] {
            assert!(job(active, None).is_active(), "{active}");
        }
    }
}
