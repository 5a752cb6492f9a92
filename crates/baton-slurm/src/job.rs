//! What a job is made of: the fixed job script, the `sbatch` options baton derives from the
//! settings and the attempt, and the job name that identifies an attempt. Pure, except
//! [`ensure_script`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use baton_plan::executor::JobSettings;
use baton_run::{AttemptKey, Resources};

/// The one job script baton submits. It never parses its arguments as shell code: it replaces
/// the literal `{array_task}` in any argument with the array task's index (for test shards)
/// and execs the arguments as they are.
pub const JOB_SCRIPT: &str = r#"#!/bin/sh
# baton's Slurm job script: exec the argv given to sbatch, as given (no shell parsing of it).
# `{array_task}` inside an argument becomes $SLURM_ARRAY_TASK_ID (test shards).
n=$#
while [ "$n" -gt 0 ]; do
  a=$1
  shift
  while :; do
    case $a in
      *'{array_task}'*) a="${a%%\{array_task\}*}${SLURM_ARRAY_TASK_ID}${a#*\{array_task\}}" ;;
      *) break ;;
    esac
  done
  set -- "$@" "$a"
  n=$((n - 1))
done
exec "$@"
"#;

/// Write the job script into `dir` (atomically, once; rewritten if it differs). Returns its
/// path.
pub fn ensure_script(dir: &Path) -> std::io::Result<PathBuf> {
    let path = dir.join("baton-job.sh");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(JOB_SCRIPT) {
        baton_store::write_atomic(&path, JOB_SCRIPT.as_bytes())
            .map_err(|e| std::io::Error::other(e.to_string()))?;
    }
    Ok(path)
}

/// The job name of an attempt: unique per plan, batch, agent and attempt, so a runner that
/// lost a handle can still find the job instead of submitting a second one.
pub fn job_name(plan: &str, key: &AttemptKey) -> String {
    format!("baton.{plan}.{}.{}.{}", key.batch, key.agent, key.attempt)
}

/// A path as an `sbatch` file name pattern: `%` is Slurm's escape, so it is doubled.
pub fn file_pattern(path: &Path) -> String {
    path.to_string_lossy().replace('%', "%%")
}

/// Slurm time limits are whole minutes: round up, at least one.
pub fn time_limit_minutes(d: Duration) -> u64 {
    d.as_secs().div_ceil(60).max(1)
}

/// `sbatch` options for placement and resources: the settings, with the attempt's own
/// resource hints on top, then the extra arguments as given.
pub fn resource_options(job: &JobSettings, hints: &Resources) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(p) = &job.partition {
        out.push(format!("--partition={p}"));
    }
    if let Some(a) = &job.account {
        out.push(format!("--account={a}"));
    }
    if let Some(c) = hints.cpus.or(job.cpus) {
        out.push(format!("--cpus-per-task={c}"));
    }
    if let Some(m) = hints.memory_mb.or(job.memory.map(|m| m.mib)) {
        out.push(format!("--mem={m}M"));
    }
    out.extend(job.sbatch_args.iter().flatten().cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn script_execs_argv_verbatim_and_fills_the_array_task() {
        let dir = tempfile::tempdir().unwrap();
        let script = ensure_script(dir.path()).unwrap();
        let nasty = [
            "$(touch pwned)",
            "a b",
            "`x`;y",
            "*",
            "{array_task}/3",
            "-n",
        ];
        let out = Command::new("sh")
            .arg(&script)
            .arg("printf")
            .arg("[%s]")
            .args(nasty)
            .env("SLURM_ARRAY_TASK_ID", "2")
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "[$(touch pwned)][a b][`x`;y][*][2/3][-n]"
        );
        assert!(!dir.path().join("pwned").exists());
    }

    #[test]
    fn limits_and_patterns() {
        assert_eq!(time_limit_minutes(Duration::from_secs(1)), 1);
        assert_eq!(time_limit_minutes(Duration::from_secs(61)), 2);
        assert_eq!(file_pattern(Path::new("/a%b/log")), "/a%%b/log");
    }
}
