//! Taskwarrior through its JSON interface: `task import` to create, `task export` to read,
//! `task <uuid> modify` to link.
//!
//! The plan id and batch id live in user-defined attributes (`baton_plan`, `baton_batch`),
//! declared on every command line with `rc.uda.*` overrides so no taskrc edit is needed;
//! blockers are Taskwarrior `depends` (UUIDs). The caller passes the program and the
//! environment (TASKDATA, TASKRC) explicitly.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::SystemTime;

use baton_plan::{BatchId, PlanId};
use serde::Deserialize;
use serde_json::json;

use crate::{NewTask, Task, TaskError, TaskRef, TaskStatus, TaskStore};

/// UDA holding the plan id.
pub const UDA_PLAN: &str = "baton_plan";
/// UDA holding the batch id.
pub const UDA_BATCH: &str = "baton_batch";

/// Settings given on every command line: no prompts, no hooks, JSON arrays, our UDAs.
const RC: &[&str] = &[
    "rc.confirmation=off",
    "rc.verbose=nothing",
    "rc.hooks=off",
    "rc.json.array=on",
    "rc.recurrence=off",
    "rc.uda.baton_plan.type=string",
    "rc.uda.baton_plan.label=Plan",
    "rc.uda.baton_batch.type=string",
    "rc.uda.baton_batch.label=Batch",
];

/// A Taskwarrior database reached through the `task` program.
#[derive(Debug, Clone)]
pub struct Taskwarrior {
    program: PathBuf,
    env: Vec<(OsString, OsString)>,
}

impl Taskwarrior {
    /// `program` (usually `task`), run with `env` added to the inherited environment
    /// (pass TASKDATA and TASKRC here).
    pub fn new(program: impl Into<PathBuf>, env: Vec<(OsString, OsString)>) -> Self {
        Taskwarrior {
            program: program.into(),
            env,
        }
    }

    fn name(&self) -> String {
        self.program.display().to_string()
    }

    fn run(
        &self,
        action: &'static str,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<Vec<u8>, TaskError> {
        let mut cmd = Command::new(&self.program);
        cmd.args(RC)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                TaskError::ToolMissing {
                    program: self.name(),
                }
            } else {
                TaskError::Spawn {
                    program: self.name(),
                    source,
                }
            }
        })?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // a write error shows up as the program's failure below
            let _ = pipe.write_all(input);
        }
        let out = child
            .wait_with_output()
            .map_err(|source| TaskError::Spawn {
                program: self.name(),
                source,
            })?;
        if !out.status.success() {
            return Err(TaskError::ToolFailed {
                program: self.name(),
                action,
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr)
                    .trim()
                    .replace('\n', "; "),
            });
        }
        Ok(out.stdout)
    }

    fn import(&self, tasks: &[serde_json::Value]) -> Result<(), TaskError> {
        let body = serde_json::to_vec(tasks).map_err(|e| TaskError::ToolOutput {
            program: self.name(),
            action: "import",
            reason: e.to_string(),
        })?;
        self.run("import", &["import", "-"], Some(&body))?;
        Ok(())
    }
}

/// What `task export` prints per task (the fields baton reads).
#[derive(Debug, Deserialize)]
struct Exported {
    uuid: String,
    #[serde(default)]
    description: String,
    status: String,
    #[serde(default)]
    entry: Option<String>,
    #[serde(default)]
    depends: Option<Depends>,
    #[serde(default)]
    baton_plan: Option<String>,
    #[serde(default)]
    baton_batch: Option<String>,
}

/// Taskwarrior 2.6 exports `depends` as an array; older versions as a comma-separated string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Depends {
    List(Vec<String>),
    Joined(String),
}

/// `20260101T000000Z` → `2026-01-01T00:00:00Z`.
fn tw_to_rfc3339(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    Some(format!(
        "{}-{}-{}T{}:{}:{}Z",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..15]
    ))
}

fn rfc3339_to_tw(now: SystemTime) -> String {
    let s = humantime_seconds(now);
    s.chars().filter(|c| *c != '-' && *c != ':').collect()
}

fn humantime_seconds(now: SystemTime) -> String {
    // `YYYY-MM-DDTHH:MM:SS.mmmZ` without the milliseconds
    let full = baton_plan::ids::rfc3339_now(now);
    match full.split_once('.') {
        Some((head, _)) => format!("{head}Z"),
        None => full,
    }
}

impl From<Exported> for Task {
    fn from(e: Exported) -> Task {
        let status = match e.status.as_str() {
            "completed" => TaskStatus::Done,
            "deleted" => TaskStatus::Cancelled,
            // pending, waiting, recurring
            _ => TaskStatus::Open,
        };
        let blocked_by = match e.depends {
            None => Vec::new(),
            Some(Depends::List(v)) => v,
            Some(Depends::Joined(s)) => s
                .split(',')
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect(),
        };
        Task {
            schema_version: Task::SCHEMA_VERSION,
            id: e.uuid,
            title: e.description,
            status,
            blocked_by,
            // an attribute someone edited into something that is not an id is no link
            plan: e.baton_plan.and_then(|p| PlanId::new(p).ok()),
            batch: e.baton_batch.and_then(|b| BatchId::new(b).ok()),
            created_at: e.entry.as_deref().and_then(tw_to_rfc3339),
        }
    }
}

/// A random (version 4) UUID.
fn uuid_v4() -> Result<String, TaskError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(TaskError::Random)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

impl TaskStore for Taskwarrior {
    fn backend(&self) -> &'static str {
        "taskwarrior"
    }

    fn list(&self) -> Result<Vec<Task>, TaskError> {
        let out = self.run("export", &["export"], None)?;
        let exported: Vec<Exported> =
            serde_json::from_slice(&out).map_err(|e| TaskError::ToolOutput {
                program: self.name(),
                action: "export",
                reason: e.to_string(),
            })?;
        Ok(exported.into_iter().map(Task::from).collect())
    }

    fn create(&self, new: &[NewTask], now: SystemTime) -> Result<Vec<Task>, TaskError> {
        let uuids = new
            .iter()
            .map(|_| uuid_v4())
            .collect::<Result<Vec<_>, _>>()?;
        let entry = rfc3339_to_tw(now);
        let mut tasks = Vec::with_capacity(new.len());
        let mut import = Vec::with_capacity(new.len());
        for (n, uuid) in new.iter().zip(&uuids) {
            let blocked_by: Vec<String> = n
                .blocked_by
                .iter()
                .map(|r| match r {
                    TaskRef::Existing(id) => id.clone(),
                    TaskRef::New(i) => uuids.get(*i).cloned().unwrap_or_default(),
                })
                .collect();
            let mut obj = json!({
                "uuid": uuid,
                "description": n.title,
                "status": "pending",
                "entry": entry,
            });
            if !blocked_by.is_empty() {
                obj["depends"] = json!(blocked_by);
            }
            if let Some(p) = &n.plan {
                obj[UDA_PLAN] = json!(p.as_str());
            }
            if let Some(b) = &n.batch {
                obj[UDA_BATCH] = json!(b.as_str());
            }
            import.push(obj);
            tasks.push(Task {
                schema_version: Task::SCHEMA_VERSION,
                id: uuid.clone(),
                title: n.title.clone(),
                status: TaskStatus::Open,
                blocked_by,
                plan: n.plan.clone(),
                batch: n.batch.clone(),
                created_at: tw_to_rfc3339(&entry),
            });
        }
        if !import.is_empty() {
            self.import(&import)?;
        }
        Ok(tasks)
    }

    fn set_plan(&self, id: &str, plan: &PlanId) -> Result<Task, TaskError> {
        let task = self.get(id)?;
        match &task.plan {
            Some(p) if p != plan => {
                return Err(TaskError::LinkedElsewhere {
                    task: id.to_owned(),
                    linked: p.clone(),
                    wanted: plan.clone(),
                });
            }
            Some(_) => return Ok(task),
            None => {}
        }
        // `get` found it, so `id` is a UUID Taskwarrior knows: a safe filter argument
        let attr = format!("{UDA_PLAN}:{plan}");
        self.run("modify", &[id, "modify", &attr], None)?;
        self.get(id)
    }

    fn set_status(&self, id: &str, status: TaskStatus) -> Result<Task, TaskError> {
        // `get` first: `id` must be a UUID Taskwarrior knows, never a filter expression
        let task = self.get(id)?;
        if task.status == status {
            return Ok(task);
        }
        match status {
            TaskStatus::Done => self.run("done", &[id, "done"], None)?,
            TaskStatus::Cancelled => self.run("delete", &[id, "delete"], None)?,
            TaskStatus::Open => self.run("modify", &[id, "modify", "status:pending"], None)?,
        };
        self.get(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_uuids() {
        assert_eq!(
            tw_to_rfc3339("20260101T102030Z").as_deref(),
            Some("2026-01-01T10:20:30Z")
        );
        assert_eq!(tw_to_rfc3339("2026-01-01"), None);
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_795_000_000_123);
        assert_eq!(rfc3339_to_tw(t), "20261118T110640Z");
        let u = uuid_v4().unwrap();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(u, uuid_v4().unwrap());
    }
}
