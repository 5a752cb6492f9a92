//! Tasks as baton sees them, whatever the backend.

use std::time::SystemTime;

use baton_plan::{BatchId, PlanId};
use serde::{Deserialize, Serialize};

/// Open until done or cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Open,
    Done,
    Cancelled,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Open => "open",
            TaskStatus::Done => "done",
            TaskStatus::Cancelled => "cancelled",
        }
    }
}

/// A task. In the file backend this is also the file's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    pub schema_version: u32,
    /// The backend's id: `T-…` for files, a UUID for Taskwarrior.
    pub id: String,
    pub title: String,
    pub status: TaskStatus,
    /// Tasks that must be done first (ids in the same backend).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked_by: Vec<String>,
    /// The plan this task belongs to (task → plan link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanId>,
    /// The batch it stands for; `None` for a plan's parent task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchId>,
    /// RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

impl Task {
    pub const SCHEMA_VERSION: u32 = 1;
}

impl baton_store::Versioned for Task {
    const SCHEMA_VERSION: u32 = Task::SCHEMA_VERSION;
    fn schema_version(&self) -> u32 {
        self.schema_version
    }
}

/// A blocker of a task about to be created: a task that exists, or one created in the same call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskRef {
    Existing(String),
    /// Index into the slice passed to `TaskStore::create`.
    New(usize),
}

/// A task to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    pub title: String,
    pub plan: Option<PlanId>,
    pub batch: Option<BatchId>,
    pub blocked_by: Vec<TaskRef>,
}

/// A file-backend task id: `T-YYYYMMDD-HHMMSS-<8 hex>-NNN` (3 or more digits). Ids made by one
/// `create` share the time and random part and number the tasks, so they sort in creation
/// order and two people creating tasks on two branches do not collide when the branches merge.
pub fn is_task_id(s: &str) -> bool {
    let Some((head, seq)) = s.rsplit_once('-') else {
        return false;
    };
    seq.len() >= 3
        && seq.bytes().all(|b| b.is_ascii_digit())
        && baton_plan::ids::parse_stamped(head, "T-", &[8, 4]).is_some()
}

/// The shared part of the ids of one `create`: `T-YYYYMMDD-HHMMSS-<8 hex>`.
pub fn id_prefix(now: SystemTime) -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes)?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("T-{}-{hex}", baton_plan::ids::utc_stamp(now)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids() {
        for ok in [
            "T-20261121-070145-0a1b2c3d-001",
            "T-20240101-000000-beef-012",
            "T-20261121-070145-0a1b2c3d-1000",
        ] {
            assert!(is_task_id(ok), "{ok}");
        }
        for bad in [
            "T-20261121-070145-0a1b2c3d",
            "T-20261121-070145-0a1b2c3d-01",
            "T-20261121-070145-0A1B2C3D-001",
            "X-20261121-070145-0a1b2c3d-001",
            "T-20261121-070145-0a1b2c3d-001/..",
            "../T-20261121-070145-0a1b2c3d-001",
        ] {
            assert!(!is_task_id(bad), "{bad}");
        }
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_000_000);
        let p = id_prefix(t).unwrap();
        assert!(is_task_id(&format!("{p}-001")), "{p}");
        assert!(p.starts_with("T-20261118-110640-"));
    }
}
