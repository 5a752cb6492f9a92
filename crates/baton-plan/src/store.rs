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
}

/// Store a (validated) plan. A plan without an id gets a fresh one; a clash with a plan stored
/// at the same second by another process just draws another id. Returns the stored plan.
pub fn store_plan(dir: &StateDir, mut plan: Plan, now: SystemTime) -> Result<Plan, PlanStoreError> {
    plan.created_at.get_or_insert_with(|| rfc3339_now(now));
    let explicit = plan.id.is_some();
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
