//! `create-from-plan` and `link`: tasks for a plan's batches, and links both ways.
//!
//! The plan is checked in full (duplicate batch ids, dependencies on batches that do not exist,
//! cycles) before the store is touched, so bad input writes nothing. Tasks are created in
//! topological order of the batches (plan order among batches that are ready together), so a
//! dependency written after its dependent still becomes a blocker; the plan's parent task comes
//! last, blocked by every batch task. Tasks the store already has for the plan (same backend,
//! plan and batch) are reused, so a re-run creates only what is missing.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use baton_plan::model::TaskLink;
use baton_plan::{BatchId, Plan, PlanId};
use baton_store::StateDir;
use serde::Serialize;

use crate::{NewTask, Task, TaskError, TaskRef, TaskStore};

/// What `create_from_plan` did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub plan: PlanId,
    pub backend: &'static str,
    /// Tasks made by this run, in creation order.
    pub created: Vec<Task>,
    /// Tasks of the plan that were there already.
    pub existing: Vec<Task>,
    /// The plan's links to this backend after the run.
    pub links: Vec<TaskLink>,
}

/// Batch indices in dependency order: every batch after the batches it depends on, plan order
/// among equals. Checks duplicates, missing dependencies and cycles first.
pub fn batch_order(plan: &Plan, id: &PlanId) -> Result<Vec<usize>, TaskError> {
    let mut index: BTreeMap<&BatchId, usize> = BTreeMap::new();
    for (i, b) in plan.batches.iter().enumerate() {
        if index.insert(&b.id, i).is_some() {
            return Err(TaskError::DuplicateBatch {
                plan: id.clone(),
                batch: b.id.clone(),
            });
        }
    }
    for b in &plan.batches {
        if let Some(missing) = b.depends_on.iter().find(|d| !index.contains_key(d)) {
            return Err(TaskError::MissingDependency {
                plan: id.clone(),
                batch: b.id.clone(),
                missing: missing.clone(),
            });
        }
    }
    if let Some(cycle) = baton_plan::dag::find_cycle(&plan.batches) {
        return Err(TaskError::Cycle {
            plan: id.clone(),
            cycle: cycle.iter().map(ToString::to_string).collect(),
        });
    }
    let n = plan.batches.len();
    let mut waiting: Vec<usize> = plan.batches.iter().map(|b| b.depends_on.len()).collect();
    let mut dependents = vec![Vec::new(); n];
    for (i, b) in plan.batches.iter().enumerate() {
        for d in &b.depends_on {
            dependents[index[d]].push(i);
        }
    }
    let mut ready: BTreeSet<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &k in &dependents[i] {
            waiting[k] -= 1;
            if waiting[k] == 0 {
                ready.insert(k);
            }
        }
    }
    // find_cycle found none, so every batch settled; a shortfall would be a bug in either
    if order.len() != n {
        return Err(TaskError::Cycle {
            plan: id.clone(),
            cycle: Vec::new(),
        });
    }
    Ok(order)
}

/// The tasks to create for `plan`, given the tasks the store has. Pure.
pub fn plan_tasks(plan: &Plan, existing: &[Task]) -> Result<(Vec<NewTask>, Vec<Task>), TaskError> {
    let id = plan.id.as_ref().ok_or(TaskError::PlanWithoutId)?;
    let order = batch_order(plan, id)?;
    let mine: Vec<&Task> = existing
        .iter()
        .filter(|t| t.plan.as_ref() == Some(id))
        .collect();
    // the first (smallest id) task per batch; `None` = the parent
    let mut have: BTreeMap<Option<&BatchId>, &Task> = BTreeMap::new();
    for t in &mine {
        let slot = have.entry(t.batch.as_ref()).or_insert(t);
        if t.id < slot.id {
            *slot = t;
        }
    }
    let mut new = Vec::new();
    let mut refs: BTreeMap<&BatchId, TaskRef> = BTreeMap::new();
    for &i in &order {
        let b = &plan.batches[i];
        if let Some(t) = have.get(&Some(&b.id)) {
            refs.insert(&b.id, TaskRef::Existing(t.id.clone()));
            continue;
        }
        let title = if b.name.is_empty() {
            format!("{}: batch {}", plan.title, b.id)
        } else {
            format!("{}: batch {} ({})", plan.title, b.id, b.name)
        };
        new.push(NewTask {
            title,
            plan: Some(id.clone()),
            batch: Some(b.id.clone()),
            // dependencies come earlier in `order`, so they are in `refs`
            blocked_by: b
                .depends_on
                .iter()
                .filter_map(|d| refs.get(d).cloned())
                .collect(),
        });
        refs.insert(&b.id, TaskRef::New(new.len() - 1));
    }
    if !have.contains_key(&None) {
        new.push(NewTask {
            title: plan.title.clone(),
            plan: Some(id.clone()),
            batch: None,
            blocked_by: order
                .iter()
                .filter_map(|&i| refs.get(&plan.batches[i].id).cloned())
                .collect(),
        });
    }
    let kept = mine.into_iter().cloned().collect();
    Ok((new, kept))
}

/// Add `tasks` as links of the stored plan `id` (deduplicated by backend and task id),
/// under the plan file's lock. Returns the plan's links to `backend`.
pub fn link_plan(
    state: &StateDir,
    id: &PlanId,
    backend: &'static str,
    tasks: &[&Task],
) -> Result<Vec<TaskLink>, TaskError> {
    let path = state.plan(id.as_str());
    let not_found = || TaskError::NotFound {
        backend: "plan",
        id: id.to_string(),
    };
    if !path.exists() {
        return Err(not_found());
    }
    let plan: Plan = baton_store::update_json(
        &path,
        // the plan exists (checked above); if it vanished meanwhile, refuse below
        || Plan {
            schema_version: 0,
            id: None,
            title: String::new(),
            goal: Default::default(),
            defaults: Default::default(),
            profiles: Default::default(),
            routing: Default::default(),
            batches: Vec::new(),
            tasks: Vec::new(),
            created_at: None,
        },
        |plan: &mut Plan| {
            if plan.id.is_none() {
                return Err(not_found());
            }
            for t in tasks {
                let known = plan
                    .tasks
                    .iter()
                    .any(|l| l.backend == backend && l.task_id == t.id);
                if !known {
                    plan.tasks.push(TaskLink {
                        backend: backend.to_owned(),
                        task_id: t.id.clone(),
                        batch: if t.plan.as_ref() == Some(id) {
                            t.batch.clone()
                        } else {
                            None
                        },
                    });
                }
            }
            Ok(())
        },
    )??;
    Ok(plan
        .tasks
        .into_iter()
        .filter(|l| l.backend == backend)
        .collect())
}

/// One parent task for the plan and one per batch (see the module docs), then the links.
/// `plan` is the stored plan `state` holds.
pub fn create_from_plan(
    store: &dyn TaskStore,
    state: &StateDir,
    plan: &Plan,
    now: SystemTime,
) -> Result<Outcome, TaskError> {
    let id = plan.id.clone().ok_or(TaskError::PlanWithoutId)?;
    // check the plan before anything, the lock file included, is written
    batch_order(plan, &id)?;
    // one create-from-plan per plan at a time, so concurrent runs do not both create
    let _guard = baton_store::lock_exclusive(&state.tasks_dir().join(format!("{id}.create")))?;
    let existing_all = store.list()?;
    let (new, existing) = plan_tasks(plan, &existing_all)?;
    let created = if new.is_empty() {
        Vec::new()
    } else {
        store.create(&new, now)?
    };
    let all: Vec<&Task> = existing.iter().chain(&created).collect();
    let links = link_plan(state, &id, store.backend(), &all)?;
    Ok(Outcome {
        plan: id,
        backend: store.backend(),
        created,
        existing,
        links,
    })
}

/// `task link PLAN TASK`: the task names the plan, the plan lists the task.
pub fn link_task(
    store: &dyn TaskStore,
    state: &StateDir,
    plan: &PlanId,
    task_id: &str,
) -> Result<(Task, Vec<TaskLink>), TaskError> {
    let task = store.set_plan(task_id, plan)?;
    let links = link_plan(state, plan, store.backend(), &[&task])?;
    Ok((task, links))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(deps: &[(&str, &[&str])]) -> Plan {
        let batches: Vec<serde_json::Value> = deps
            .iter()
            .map(|(id, d)| serde_json::json!({"id": id, "depends_on": d}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "schema_version": 1,
            "id": "OP-20260101-000000-0000000a",
            "title": "t",
            "batches": batches,
        }))
        .unwrap()
    }

    #[test]
    fn order_is_topological_with_plan_order_among_equals() {
        let p = plan(&[
            ("B1", &["B3"]),
            ("B2", &[]),
            ("B3", &[]),
            ("B4", &["B1", "B2"]),
        ]);
        let id = p.id.clone().unwrap();
        assert_eq!(batch_order(&p, &id).unwrap(), [1, 2, 0, 3]);
        let missing = plan(&[("B1", &["B7"])]);
        assert!(matches!(
            batch_order(&missing, &id),
            Err(TaskError::MissingDependency { .. })
        ));
        let cycle = plan(&[("B1", &["B2"]), ("B2", &["B1"])]);
        assert!(matches!(
            batch_order(&cycle, &id),
            Err(TaskError::Cycle { .. })
        ));
        let dup = plan(&[("B1", &[]), ("B1", &[])]);
        assert!(matches!(
            batch_order(&dup, &id),
            Err(TaskError::DuplicateBatch { .. })
        ));
    }

    #[test]
    fn existing_tasks_are_reused_and_only_the_missing_ones_planned() {
        let p = plan(&[("B1", &["B2"]), ("B2", &[])]);
        let (new, kept) = plan_tasks(&p, &[]).unwrap();
        assert_eq!((new.len(), kept.len()), (3, 0));
        assert_eq!(new[1].blocked_by, [TaskRef::New(0)]);
        assert_eq!(new[2].blocked_by, [TaskRef::New(0), TaskRef::New(1)]);
        // B2's task exists: B1 is blocked by it, the parent too
        let b2 = Task {
            schema_version: 1,
            id: "T-20260101-000000-0000000a-001".into(),
            title: "b2".into(),
            status: crate::TaskStatus::Done,
            blocked_by: vec![],
            plan: p.id.clone(),
            batch: Some(BatchId::new("B2").unwrap()),
            created_at: None,
        };
        let (new, kept) = plan_tasks(&p, std::slice::from_ref(&b2)).unwrap();
        assert_eq!(kept, std::slice::from_ref(&b2));
        assert_eq!(new.len(), 2);
        assert_eq!(new[0].blocked_by, [TaskRef::Existing(b2.id.clone())]);
        assert_eq!(
            new[1].blocked_by,
            [TaskRef::Existing(b2.id.clone()), TaskRef::New(0)]
        );
    }
}
