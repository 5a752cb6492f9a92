//! The built-in backend: one JSON file per task, `.baton/tasks/<task-id>.json`.
//!
//! Files are created with `create_new` semantics (complete before their name appears) and
//! rewritten atomically under their lock, so concurrent baton processes never tear or lose a
//! task. A task file that does not parse is an error naming it, never skipped or reset.

use std::time::SystemTime;

use baton_plan::PlanId;
use baton_store::StateDir;

use crate::model::{id_prefix, is_task_id};
use crate::{NewTask, Task, TaskError, TaskRef, TaskStatus, TaskStore};

/// Tasks in a state directory's `tasks/`.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: StateDir,
}

impl FileStore {
    pub fn new(dir: StateDir) -> Self {
        FileStore { dir }
    }
}

impl TaskStore for FileStore {
    fn backend(&self) -> &'static str {
        "file"
    }

    fn list(&self) -> Result<Vec<Task>, TaskError> {
        let tasks_dir = self.dir.tasks_dir();
        let entries = match std::fs::read_dir(&tasks_dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(TaskError::List {
                    path: tasks_dir,
                    source,
                });
            }
        };
        let mut tasks = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| TaskError::List {
                path: tasks_dir.clone(),
                source,
            })?;
            let name = entry.file_name();
            // lock files and hidden temp files are not tasks
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if id.starts_with('.') {
                continue;
            }
            let path = entry.path();
            if !is_task_id(id) {
                return Err(TaskError::BadTaskFile {
                    path,
                    reason: "the name is not a task id (T-YYYYMMDD-HHMMSS-xxxxxxxx-NNN)".into(),
                });
            }
            let task: Task = baton_store::read_versioned(&path)?;
            if task.id != id {
                return Err(TaskError::BadTaskFile {
                    path,
                    reason: format!("it holds task {:?}", task.id),
                });
            }
            tasks.push(task);
        }
        tasks.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(tasks)
    }

    fn create(&self, new: &[NewTask], now: SystemTime) -> Result<Vec<Task>, TaskError> {
        let prefix = id_prefix(now).map_err(TaskError::Random)?;
        let ids: Vec<String> = (1..=new.len())
            .map(|n| format!("{prefix}-{n:03}"))
            .collect();
        let created_at = baton_plan::ids::rfc3339_now(now);
        let tasks: Vec<Task> = new
            .iter()
            .zip(&ids)
            .map(|(n, id)| Task {
                schema_version: Task::SCHEMA_VERSION,
                id: id.clone(),
                title: n.title.clone(),
                status: TaskStatus::Open,
                blocked_by: n
                    .blocked_by
                    .iter()
                    .map(|r| match r {
                        TaskRef::Existing(id) => id.clone(),
                        // callers pass indices into `new`; an index past the end is their bug,
                        // kept visible as a blocker that does not exist (so never ready)
                        TaskRef::New(i) => {
                            ids.get(*i).cloned().unwrap_or_else(|| format!("new-{i}"))
                        }
                    })
                    .collect(),
                plan: n.plan.clone(),
                batch: n.batch.clone(),
                created_at: Some(created_at.clone()),
            })
            .collect();
        for t in &tasks {
            baton_store::create_new_json(&self.dir.task(&t.id), t)?;
        }
        Ok(tasks)
    }

    fn set_plan(&self, id: &str, plan: &PlanId) -> Result<Task, TaskError> {
        self.update(id, |t| match &t.plan {
            Some(p) if p != plan => Err(TaskError::LinkedElsewhere {
                task: id.to_owned(),
                linked: p.clone(),
                wanted: plan.clone(),
            }),
            _ => {
                t.plan = Some(plan.clone());
                Ok(())
            }
        })
    }

    fn set_status(&self, id: &str, status: TaskStatus) -> Result<Task, TaskError> {
        self.update(id, |t| {
            t.status = status;
            Ok(())
        })
    }
}

impl FileStore {
    /// Read-modify-write one task file under its lock; an unknown id is `NotFound`.
    fn update(
        &self,
        id: &str,
        f: impl FnOnce(&mut Task) -> Result<(), TaskError>,
    ) -> Result<Task, TaskError> {
        let not_found = || TaskError::NotFound {
            backend: "file",
            id: id.to_owned(),
        };
        // a valid id cannot name a path outside tasks/
        if !is_task_id(id) {
            return Err(not_found());
        }
        let path = self.dir.task(id);
        if !path.exists() {
            return Err(not_found());
        }
        baton_store::update_json(
            &path,
            // the file exists (checked above); a concurrent delete makes this an error below
            || Task {
                schema_version: 0,
                id: String::new(),
                title: String::new(),
                status: TaskStatus::Open,
                blocked_by: Vec::new(),
                plan: None,
                batch: None,
                created_at: None,
            },
            |t: &mut Task| {
                if t.schema_version == 0 {
                    return Err(not_found());
                }
                f(t)
            },
        )?
    }
}
