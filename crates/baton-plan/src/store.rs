//! Storing plans as `.baton/plans/<plan-id>.json`.

use std::time::SystemTime;

use baton_store::{StateDir, StoreError};

use crate::ids::{PlanId, rfc3339_now};
use crate::model::Plan;

#[derive(Debug, thiserror::Error)]
pub enum PlanStoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("plan {0} is already stored; remove `id` from the file to store it as a new plan")]
    Exists(PlanId),
    #[error("no plan {id} in {}; `baton plan list` shows the stored plans", dir.display())]
    NotFound { id: String, dir: std::path::PathBuf },
    #[error("cannot generate a plan id: {0}")]
    Random(getrandom::Error),
    #[error(
        "the same plan is already stored as {0}; use that id, or `baton plan rm {0}` and store it again"
    )]
    Duplicate(PlanId),
    #[error("plan {id} has an execution that is {status}; wait for it to finish, or pass --force")]
    Running { id: PlanId, status: &'static str },
}

/// Store a (validated) plan. A plan without an id gets a fresh one; a clash with a plan stored
/// at the same second by another process just draws another id. Returns the stored plan.
///
/// A plan without an id whose content (everything but `id` and `created_at`) equals a stored
/// plan's is refused with [`PlanStoreError::Duplicate`] naming the stored id, so storing the
/// same file twice does not make two plans.
pub fn store_plan(dir: &StateDir, plan: Plan, now: SystemTime) -> Result<Plan, PlanStoreError> {
    if plan.id.is_none()
        && let Some(existing) = find_same(dir, &plan)?
    {
        return Err(PlanStoreError::Duplicate(existing));
    }
    store_copy(dir, plan, now)
}

/// Store a plan even when a stored plan has the same content: a deliberate new run of a plan
/// whose earlier run finished (`baton run FILE` again) gets a plan, and an execution, of its own.
pub fn store_copy(dir: &StateDir, mut plan: Plan, now: SystemTime) -> Result<Plan, PlanStoreError> {
    let explicit = plan.id.is_some();
    plan.created_at.get_or_insert_with(|| rfc3339_now(now));
    loop {
        let id = match &plan.id {
            Some(id) => id.clone(),
            None => PlanId::generate(now).map_err(PlanStoreError::Random)?,
        };
        let mut candidate = plan.clone();
        candidate.id = Some(id.clone());
        match baton_store::create_new_json(&dir.plan(id.as_str()), &candidate) {
            Ok(()) => return Ok(candidate),
            Err(StoreError::AlreadyExists { .. }) if explicit => {
                return Err(PlanStoreError::Exists(id));
            }
            Err(StoreError::AlreadyExists { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The stored plan with the same content as `plan` (ignoring `id` and `created_at`), if any.
/// Stored plans that do not read are skipped: they cannot be the same plan. Reads only.
pub fn find_same(dir: &StateDir, plan: &Plan) -> Result<Option<PlanId>, PlanStoreError> {
    let strip = |p: &Plan| Plan {
        id: None,
        created_at: None,
        ..p.clone()
    };
    let wanted = strip(plan);
    for id in list_ids(dir)? {
        if let Ok(stored) = load_stored(dir, &id)
            && strip(&stored) == wanted
        {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// What `remove_plan` removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub plan: std::path::PathBuf,
    /// The execution state file, when there was one.
    pub execution: Option<std::path::PathBuf>,
}

/// Remove a stored plan and its execution state. A plan whose execution is running (or
/// pending with an execution file) is refused unless `force`; worktrees, branches, logs and
/// metrics are left alone. The execution file goes first, under its lock, so a crash between
/// the two removals leaves a plan that was never run, not an orphaned execution.
pub fn remove_plan(dir: &StateDir, id: &PlanId, force: bool) -> Result<Removed, PlanStoreError> {
    let plan_path = dir.plan(id.as_str());
    if !plan_path.exists() {
        return Err(PlanStoreError::NotFound {
            id: id.to_string(),
            dir: dir.plans_dir(),
        });
    }
    let exec_path = dir.execution(id.as_str());
    let mut execution = None;
    if exec_path.exists() {
        let _guard = baton_store::lock_exclusive(&exec_path)?;
        if !force {
            // an execution that does not read is treated as running: refuse without --force
            let status = baton_store::read_versioned::<crate::Execution>(&exec_path)
                .map(|e| e.status)
                .unwrap_or(crate::Status::Running);
            if status == crate::Status::Running {
                return Err(PlanStoreError::Running {
                    id: id.clone(),
                    status: status.as_str(),
                });
            }
        }
        remove_file(&exec_path)?;
        remove_file(&baton_store::spare_path(&exec_path))?;
        execution = Some(exec_path);
    }
    remove_file(&plan_path)?;
    Ok(Removed {
        plan: plan_path,
        execution,
    })
}

fn remove_file(path: &std::path::Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::Io {
            action: "remove",
            path: path.to_owned(),
            source: e,
        }),
    }
}

/// Load a stored plan by id (a full id; see [`resolve_plan_id`] for prefixes).
pub fn load_stored(dir: &StateDir, id: &PlanId) -> Result<Plan, PlanStoreError> {
    let path = dir.plan(id.as_str());
    if !path.exists() {
        return Err(PlanStoreError::NotFound {
            id: id.to_string(),
            dir: dir.plans_dir(),
        });
    }
    Ok(baton_store::read_versioned(&path)?)
}

/// All stored plan ids, sorted (which is also by creation time).
pub fn list_ids(dir: &StateDir) -> Result<Vec<PlanId>, StoreError> {
    let plans = dir.plans_dir();
    let entries = match std::fs::read_dir(&plans) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(StoreError::Io {
                action: "list",
                path: plans,
                source: e,
            });
        }
    };
    let mut ids = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::Io {
            action: "list",
            path: plans.clone(),
            source: e,
        })?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
            continue;
        };
        if let Ok(id) = PlanId::new(stem) {
            ids.push(id);
        }
    }
    ids.sort();
    Ok(ids)
}

/// Turn what a user typed (a full id, a unique suffix of its random part, or `latest`) into a
/// stored plan id.
pub fn resolve_plan_id(dir: &StateDir, given: &str) -> Result<PlanId, PlanStoreError> {
    let ids = list_ids(dir)?;
    let not_found = || PlanStoreError::NotFound {
        id: given.to_owned(),
        dir: dir.plans_dir(),
    };
    if given == "latest" {
        return ids.last().cloned().ok_or_else(not_found);
    }
    if let Ok(id) = PlanId::new(given) {
        return if ids.contains(&id) {
            Ok(id)
        } else {
            Err(not_found())
        };
    }
    let matches: Vec<&PlanId> = ids
        .iter()
        .filter(|id| !given.is_empty() && id.as_str().ends_with(given))
        .collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        _ => Err(not_found()),
    }
}
