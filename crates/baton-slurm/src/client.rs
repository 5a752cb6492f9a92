//! Thin wrappers over Slurm's commands: `sbatch --parsable`, `squeue`, `sacct`, `scancel`,
//! `sinfo`. Every argument is an argv element; nothing goes through a shell. The commands find
//! the cluster the usual way (`/etc/slurm/slurm.conf`, or `SLURM_CONF` in the environment the
//! caller gives baton).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::state::{JobStatus, normalize_state};

#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    #[error(
        "`{program}` is not installed or not on PATH; install Slurm's client commands (Debian: `apt-get install slurm-client`)"
    )]
    Missing { program: String },
    #[error("`{program}` failed ({status}): {stderr}")]
    Failed {
        program: String,
        status: String,
        stderr: String,
    },
    /// Slurm refused the job as specified (a partition, account or option it does not accept).
    #[error("Slurm refuses the job settings: {0}")]
    Refused(String),
    #[error("cannot run `{program}`: {source}")]
    Io {
        program: String,
        source: std::io::Error,
    },
    #[error("unexpected output from `{program}`: {output:?}")]
    Parse { program: String, output: String },
}

/// What to submit: a fixed script, its arguments, `sbatch` options and the job's environment.
#[derive(Debug, Clone)]
pub struct Submit<'a> {
    pub script: &'a Path,
    pub args: &'a [String],
    /// `sbatch` options, each one argv element (`--time=5`, `--partition=debug`).
    pub options: Vec<String>,
    /// Set on `sbatch`'s own environment, which the job inherits (`--export=ALL`): values never
    /// appear on a command line.
    pub env: &'a BTreeMap<String, String>,
    pub cwd: &'a Path,
}

/// The Slurm client commands, from `bin_dir` or `PATH`.
#[derive(Debug, Clone, Default)]
pub struct Slurm {
    pub bin_dir: Option<PathBuf>,
    /// The cluster's `slurm.conf` when it is not where the commands look by default (passed as
    /// `SLURM_CONF` to each command and, through `sbatch`, to the jobs).
    pub conf: Option<PathBuf>,
}

const SQUEUE_FORMAT: &str = "JobID:|,ArrayJobID:|,ArrayTaskID:|,State:|,exit_code:|,Reason:|";

impl Slurm {
    fn command(&self, program: &str) -> Command {
        let path = match &self.bin_dir {
            Some(d) => d.join(program),
            None => PathBuf::from(program),
        };
        let mut c = Command::new(path);
        c.stdin(Stdio::null());
        if let Some(conf) = &self.conf {
            c.env("SLURM_CONF", conf);
        }
        c
    }

    fn run(&self, program: &str, cmd: &mut Command) -> Result<Output, SlurmError> {
        cmd.output().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                SlurmError::Missing {
                    program: program.to_owned(),
                }
            } else {
                SlurmError::Io {
                    program: program.to_owned(),
                    source: e,
                }
            }
        })
    }

    fn checked(&self, program: &str, cmd: &mut Command) -> Result<String, SlurmError> {
        let out = self.run(program, cmd)?;
        if !out.status.success() {
            return Err(SlurmError::Failed {
                program: program.to_owned(),
                status: out.status.to_string(),
                stderr: one_line(&out.stderr),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `sbatch --parsable`: the new job's id.
    pub fn submit(&self, s: &Submit<'_>) -> Result<String, SlurmError> {
        let mut cmd = self.command("sbatch");
        cmd.arg("--parsable")
            .args(&s.options)
            .arg(s.script)
            .args(s.args)
            .envs(s.env)
            .current_dir(s.cwd);
        let out = self.run("sbatch", &mut cmd)?;
        if !out.status.success() {
            return Err(SlurmError::Refused(one_line(&out.stderr)));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        // `<id>` or `<id>;<cluster>`
        let id = text.trim().split(';').next().unwrap_or("").to_owned();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SlurmError::Parse {
                program: "sbatch".into(),
                output: text.into_owned(),
            });
        }
        Ok(id)
    }

    /// `sbatch --test-only`: would Slurm take this job? Submits nothing.
    pub fn test_submit(&self, s: &Submit<'_>) -> Result<(), SlurmError> {
        let mut cmd = self.command("sbatch");
        cmd.arg("--test-only")
            .args(&s.options)
            .arg(s.script)
            .args(s.args)
            .current_dir(s.cwd);
        let out = self.run("sbatch", &mut cmd)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(SlurmError::Refused(one_line(&out.stderr)))
        }
    }

    /// The controller's view of these jobs (queued, running, or finished within its
    /// `MinJobAge`). Jobs it no longer knows are absent from the answer.
    pub fn query(&self, ids: &[String]) -> Result<Vec<JobStatus>, SlurmError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = self.command("squeue");
        cmd.args(["--noheader", "--states=all", "--jobs"])
            .arg(ids.join(","))
            .args(["--Format", SQUEUE_FORMAT]);
        let out = self.run("squeue", &mut cmd)?;
        if !out.status.success() {
            let err = one_line(&out.stderr);
            // every id unknown: squeue fails instead of printing nothing
            if err.contains("Invalid job id") {
                return Ok(Vec::new());
            }
            return Err(SlurmError::Failed {
                program: "squeue".into(),
                status: out.status.to_string(),
                stderr: err,
            });
        }
        Ok(parse_squeue(&String::from_utf8_lossy(&out.stdout)))
    }

    /// Jobs by name, in any state the controller still knows.
    pub fn find_by_name(&self, name: &str) -> Result<Vec<JobStatus>, SlurmError> {
        let mut cmd = self.command("squeue");
        cmd.args(["--noheader", "--states=all", "--name", name])
            .args(["--Format", SQUEUE_FORMAT]);
        let text = self.checked("squeue", &mut cmd)?;
        Ok(parse_squeue(&text))
    }

    /// The accounting database's view of these jobs; `None` when the cluster keeps no
    /// accounting (then a job the controller forgot is gone for good).
    pub fn accounting(&self, ids: &[String]) -> Result<Option<Vec<JobStatus>>, SlurmError> {
        if ids.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let mut cmd = self.command("sacct");
        cmd.args(["--noheader", "--parsable2", "--allocations", "--jobs"])
            .arg(ids.join(","))
            .args(["--format", "JobID,State,ExitCode,Reason"]);
        let out = match self.run("sacct", &mut cmd) {
            Ok(o) => o,
            Err(SlurmError::Missing { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let err = one_line(&out.stderr);
        if !out.status.success() || err.contains("accounting storage is disabled") {
            return Ok(None);
        }
        Ok(Some(parse_sacct(&String::from_utf8_lossy(&out.stdout))))
    }

    /// `scancel`, with a signal (`TERM`) to the batch script and all its steps, or plain (the
    /// job ends: SIGTERM, then SIGKILL after the cluster's `KillWait`).
    pub fn cancel(&self, id: &str, signal: Option<&str>) -> Result<(), SlurmError> {
        let mut cmd = self.command("scancel");
        if let Some(sig) = signal {
            cmd.args(["--full", "--signal", sig]);
        }
        cmd.arg(id);
        let out = self.run("scancel", &mut cmd)?;
        let err = one_line(&out.stderr);
        // a job that already ended is not an error for a kill
        if out.status.success()
            || err.contains("already completing or completed")
            || err.contains("Invalid job id")
        {
            Ok(())
        } else {
            Err(SlurmError::Failed {
                program: "scancel".into(),
                status: out.status.to_string(),
                stderr: err,
            })
        }
    }

    /// How many nodes the cluster has (`sinfo`).
    pub fn node_count(&self) -> Result<u32, SlurmError> {
        let mut cmd = self.command("sinfo");
        cmd.args(["--noheader", "--Node", "--format", "%N"]);
        let text = self.checked("sinfo", &mut cmd)?;
        let nodes: std::collections::BTreeSet<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        Ok(u32::try_from(nodes.len()).unwrap_or(u32::MAX))
    }

    /// Does a controller answer? (`sinfo` succeeds.)
    pub fn answers(&self) -> bool {
        let mut cmd = self.command("sinfo");
        cmd.arg("--noheader")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd.status().is_ok_and(|s| s.success())
    }
}

fn one_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines.join("; ")
}

fn parse_squeue(text: &str) -> Vec<JobStatus> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split('|').map(str::trim).collect();
            if f.len() < 6 || f[0].is_empty() {
                return None;
            }
            // ArrayTaskID is `N/A` for a job that is not an array task
            let array = f[2].parse::<u32>().ok().map(|t| (f[1].to_owned(), t));
            Some(JobStatus {
                job_id: f[0].to_owned(),
                array,
                state: normalize_state(f[3]),
                wait_status: f[4].parse().ok(),
                reason: f[5].to_owned(),
            })
        })
        .collect()
}

fn parse_sacct(text: &str) -> Vec<JobStatus> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split('|').collect();
            if f.len() < 4 {
                return None;
            }
            // `12_3` for an array task, `12` otherwise; ExitCode is `code:signal`
            let (job_id, array) = match f[0].split_once('_') {
                Some((a, t)) => (f[0].to_owned(), t.parse().ok().map(|t| (a.to_owned(), t))),
                None => (f[0].to_owned(), None),
            };
            let wait_status = f[2]
                .split_once(':')
                .and_then(|(c, s)| Some((c.parse::<i32>().ok()? << 8) | s.parse::<i32>().ok()?));
            Some(JobStatus {
                job_id,
                array,
                state: normalize_state(f[1]),
                wait_status,
                reason: f[3].to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines() {
        let jobs = parse_squeue("5|5|3|FAILED|768|NonZeroExitCode|\n9|9|N/A|RUNNING|0|None|\n");
        assert_eq!(jobs[0].array, Some(("5".into(), 3)));
        assert_eq!(jobs[0].wait_status, Some(768));
        assert_eq!(jobs[1].array, None);
        assert_eq!(jobs[1].state, "RUNNING");
    }

    #[test]
    fn sacct_lines() {
        let jobs = parse_sacct("12_3|CANCELLED by 0|0:15|None\n13|COMPLETED|2:0|None\n");
        assert_eq!(jobs[0].array, Some(("12".into(), 3)));
        assert_eq!(jobs[0].state, "CANCELLED");
        assert_eq!(jobs[1].wait_status, Some(2 << 8));
    }
}
