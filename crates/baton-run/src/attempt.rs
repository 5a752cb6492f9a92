//! One attempt of one agent: its rendered command and environment, its files beside the log,
//! and what the runner reads of it while and after it runs (output, activity, result file).

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use baton_plan::model::Isolation;
use baton_plan::validate::render_command;
use baton_plan::{Agent, BatchId, Plan, PlanId};

use crate::executor::{AttemptKey, AttemptSpec, Resources};

/// Where an attempt's files go: `<logs>/<agent>/<attempt>.log` and siblings.
pub fn log_path(logs_dir: &Path, agent: &str, attempt: u32) -> PathBuf {
    logs_dir.join(agent).join(format!("{attempt}.log"))
}

/// The whole decision for one attempt, before anything runs.
pub struct SpecInput<'a> {
    pub plan: &'a Plan,
    pub plan_id: &'a PlanId,
    pub batch: &'a BatchId,
    pub agent: &'a Agent,
    pub attempt: u32,
    pub cwd: &'a Path,
    pub branch: Option<&'a str>,
    pub logs_dir: &'a Path,
}

/// Is the agent isolated in its own worktree (the default) or in the shared checkout?
pub fn isolation_of(plan: &Plan, agent: &Agent) -> Isolation {
    agent
        .isolation
        .or(plan.defaults.isolation)
        .unwrap_or(Isolation::Worktree)
}

/// Render the attempt: the argv with placeholders filled element by element (never a shell
/// string), `BATON_*` and the profile's environment, the log path. Returns the spec and the
/// prompt text to write to `{prompt_file}` when the command uses it.
pub fn spec(input: &SpecInput) -> (AttemptSpec, Option<(PathBuf, String)>) {
    let SpecInput {
        plan,
        plan_id,
        batch,
        agent,
        attempt,
        cwd,
        branch,
        logs_dir,
    } = *input;
    let log = log_path(logs_dir, agent.id.as_str(), attempt);
    let result_file = log.with_extension("result.json");
    let prompt_file = log.with_extension("prompt.md");
    let command = plan.command_of(agent).unwrap_or_default();
    let wants_prompt_file = command.iter().any(|a| a.contains("{prompt_file}"));
    let path_str = |p: &Path| p.to_string_lossy().into_owned();
    let mut vars: BTreeMap<&str, String> = BTreeMap::new();
    vars.insert("prompt", agent.prompt.clone());
    vars.insert("prompt_file", path_str(&prompt_file));
    vars.insert("agent_id", agent.id.to_string());
    vars.insert("batch_id", batch.to_string());
    vars.insert("plan_id", plan_id.to_string());
    vars.insert("task_type", agent.task_type.as_str().to_owned());
    vars.insert("worktree", path_str(cwd));
    vars.insert("branch", branch.unwrap_or_default().to_owned());
    vars.insert("result_file", path_str(&result_file));
    vars.insert("attempt", attempt.to_string());
    let argv = render_command(command, &vars);

    let mut env: BTreeMap<String, String> = plan
        .profile_of(agent)
        .map(|p| p.env.clone())
        .unwrap_or_default();
    // tools that trust $PWD must not see the runner's directory
    env.insert("PWD".into(), path_str(cwd));
    env.insert("BATON_PLAN_ID".into(), plan_id.to_string());
    env.insert("BATON_BATCH_ID".into(), batch.to_string());
    env.insert("BATON_AGENT_ID".into(), agent.id.to_string());
    env.insert("BATON_ATTEMPT".into(), attempt.to_string());
    env.insert("BATON_WORKTREE".into(), path_str(cwd));
    env.insert("BATON_RESULT_FILE".into(), path_str(&result_file));
    let spec = AttemptSpec {
        plan: plan_id.clone(),
        key: AttemptKey {
            batch: batch.clone(),
            agent: agent.id.clone(),
            attempt,
        },
        argv,
        cwd: cwd.to_path_buf(),
        env,
        log,
        timeout: agent.timeout.or(plan.defaults.timeout).map(|d| d.0),
        resources: Resources::default(),
    };
    let prompt = wants_prompt_file.then(|| (prompt_file, agent.prompt.clone()));
    (spec, prompt)
}

/// Can `program` be started from `cwd`? A name with a `/` is a path (relative to `cwd`);
/// a bare name is looked up in `search_path` (the agent's `PATH`). `Err` says why not, the
/// way a shell would ("command not found"), so a missing binary fails before anything runs.
pub fn preflight(
    program: &str,
    cwd: &Path,
    search_path: Option<&std::ffi::OsStr>,
) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.is_empty() {
        return Err("the command is empty".into());
    }
    if program.contains('/') {
        let p = cwd.join(program);
        return if executable(&p) {
            Ok(())
        } else if p.exists() {
            Err(format!("{program}: not an executable file"))
        } else {
            Err(format!("{program}: command not found"))
        };
    }
    let Some(path) = search_path else {
        return Ok(()); // no PATH known: leave it to the executor
    };
    if std::env::split_paths(path).any(|dir| executable(&cwd.join(dir).join(program))) {
        Ok(())
    } else {
        Err(format!("{program}: command not found"))
    }
}

/// The last `max` bytes of a log (lossy UTF-8), for rate-limit patterns and the live view.
pub fn log_tail(log: &Path, max: u64) -> String {
    let Ok(mut f) = std::fs::File::open(log) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = f.take(max).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// The last non-empty line of output.
pub fn last_line(log: &Path) -> Option<String> {
    log_tail(log, 4096)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.chars().take(120).collect())
}

/// Has the attempt printed anything?
pub fn has_output(log: &Path) -> bool {
    std::fs::metadata(log).is_ok_and(|m| m.len() > 0)
}

/// The last sign of life: the log's modification time and, for an agent in its own worktree,
/// the newest file it touched there (`.git` and `target` are not looked into).
pub fn last_activity(log: &Path, worktree: Option<&Path>) -> Option<SystemTime> {
    let mut newest = std::fs::metadata(log).and_then(|m| m.modified()).ok();
    if let Some(dir) = worktree {
        let walk = walkdir::WalkDir::new(dir)
            .into_iter()
            .filter_entry(|e| e.file_name() != ".git" && e.file_name() != "target");
        for entry in walk.flatten() {
            if let Some(t) = entry.metadata().ok().and_then(|m| m.modified().ok()) {
                newest = Some(newest.map_or(t, |n| n.max(t)));
            }
        }
    }
    newest
}

/// The summary an agent wrote to its result file: the `summary` field of a JSON object, or
/// the text itself (first 2000 characters).
pub fn read_summary(result_file: &Path) -> Option<String> {
    let text = std::fs::read_to_string(result_file).ok()?;
    let summary = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(o)) => o.get("summary")?.as_str()?.to_owned(),
        _ => text.trim().to_owned(),
    };
    (!summary.is_empty()).then(|| summary.chars().take(2000).collect())
}

/// What the supervisor had to clean up after the attempt logged to `log`, from the end it
/// recorded beside it (`local::read_status`); `None` when nothing was left behind (or there is
/// no such record: another executor).
pub fn read_leftovers(log: &Path) -> Option<baton_plan::Leftovers> {
    let status = crate::local::read_status(log)?;
    let left = baton_plan::Leftovers {
        swept: status.swept as u32,
        killed_after_grace: status.killed_after_grace as u32,
        survived: status.leaked,
    };
    (!left.is_empty()).then_some(left)
}

/// Time left until `idle` has passed since `last` (zero when it has).
pub fn idle_left(last: Option<SystemTime>, idle: Duration, now: SystemTime) -> Duration {
    let since = last.map_or(Duration::MAX, |t| now.duration_since(t).unwrap_or_default());
    idle.saturating_sub(since)
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_plan::load::{Format, parse_plan};

    #[test]
    fn placeholders_fill_each_argv_element_and_env_names_the_attempt() {
        let plan = parse_plan(
            r#"schema_version = 1
title = "t"
[profiles.cheap]
command = ["model", "--prompt", "{prompt}", "--file={prompt_file}", "{agent_id}@{attempt}"]
env = { MODEL = "small" }
[profiles.strong]
command = ["big", "{prompt}"]
[routing]
research = "cheap"
[defaults]
profile = "strong"
[[batches]]
id = "B1"
[[batches.agents]]
id = "scan"
task_type = "research"
prompt = "a b; rm -rf / $(x)"
"#,
            Format::Toml,
            Path::new("p.toml"),
        )
        .unwrap();
        let (batch, agent) = plan.agents().next().unwrap();
        let id = PlanId::new("OP-20260101-000000-abcdef01").unwrap();
        let (spec, prompt) = spec(&SpecInput {
            plan: &plan,
            plan_id: &id,
            batch: &batch.id,
            agent,
            attempt: 2,
            cwd: Path::new("/wt/scan"),
            branch: Some("baton/x/scan"),
            logs_dir: Path::new("/logs"),
        });
        assert_eq!(
            spec.argv,
            [
                "model",
                "--prompt",
                "a b; rm -rf / $(x)",
                "--file=/logs/scan/2.prompt.md",
                "scan@2"
            ]
        );
        assert_eq!(prompt.unwrap().1, "a b; rm -rf / $(x)");
        assert_eq!(spec.env["BATON_AGENT_ID"], "scan");
        assert_eq!(spec.env["BATON_ATTEMPT"], "2");
        assert_eq!(spec.env["BATON_WORKTREE"], "/wt/scan");
        assert_eq!(spec.env["BATON_RESULT_FILE"], "/logs/scan/2.result.json");
        assert_eq!(spec.env["MODEL"], "small");
        assert_eq!(spec.log, Path::new("/logs/scan/2.log"));
    }

    #[test]
    fn idle_time_counts_from_the_last_activity() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let idle = Duration::from_secs(60);
        assert_eq!(
            idle_left(Some(now - Duration::from_secs(20)), idle, now),
            Duration::from_secs(40)
        );
        assert_eq!(
            idle_left(Some(now - Duration::from_secs(90)), idle, now),
            Duration::ZERO
        );
        assert_eq!(idle_left(None, idle, now), Duration::ZERO);
    }

    #[test]
    fn summaries_come_from_json_or_text() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        std::fs::write(&p, r#"{"summary": "did it", "outputs": {}}"#).unwrap();
        assert_eq!(read_summary(&p).as_deref(), Some("did it"));
        std::fs::write(&p, "  plain words\n").unwrap();
        assert_eq!(read_summary(&p).as_deref(), Some("plain words"));
        assert_eq!(read_summary(&dir.path().join("none")), None);
    }
}
