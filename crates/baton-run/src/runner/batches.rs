//! Batch steps of the runner: start, skip, gate (the hooks' `after_batch`, reruns within
//! the replan budget) and complete.

use super::*;

impl Runner {
    pub(super) fn apply(
        &mut self,
        step: Step,
        observe: &mut dyn FnMut(&RunEvent),
    ) -> Result<(), RunError> {
        match step {
            Step::StartBatch(b) => {
                let plan = self.plan.clone();
                self.update(|e, now| e.start_batch(&plan, &b, now))?;
                let base = self.hooks.base_for(&self.plan_id, &b).unwrap_or(None);
                self.bases.insert(b.clone(), base);
                self.batch_started.insert(b.clone(), Instant::now());
                observe(&RunEvent::BatchStart { batch: b });
            }
            Step::SkipBatch(b) => {
                self.update(|e, now| e.skip_batch(&b, now))?;
                observe(&RunEvent::BatchFinish {
                    batch: b,
                    status: Status::Skipped,
                    duration_ms: 0,
                });
            }
            Step::Launch { batch, agent } => self.launch_many(vec![(batch, agent)], observe)?,
            Step::GateBatch(b) => self.gate(&b, observe)?,
            Step::FailBatch(b) => self.complete(&b, Status::Failed, observe)?,
        }
        Ok(())
    }

    pub(super) fn complete(
        &mut self,
        b: &BatchId,
        status: Status,
        observe: &mut dyn FnMut(&RunEvent),
    ) -> Result<(), RunError> {
        self.update(|e, now| e.complete_batch(b, status, now))?;
        let duration_ms = self
            .batch_started
            .get(b)
            .map_or(0, |t| t.elapsed().as_millis() as u64);
        observe(&RunEvent::BatchFinish {
            batch: b.clone(),
            status,
            duration_ms,
        });
        Ok(())
    }

    pub(super) fn gate(
        &mut self,
        b: &BatchId,
        observe: &mut dyn FnMut(&RunEvent),
    ) -> Result<(), RunError> {
        // the hooks read the execution from disk (and a replan writes it)
        self.flush()?;
        let agents = self
            .exec
            .batch(b)
            .map(|s| {
                s.agents
                    .iter()
                    .map(|a| (a.id.clone(), a.branch.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let ctx = BatchContext {
            plan: self.plan_id.clone(),
            batch: b.clone(),
            agents,
            replans_left: self.cfg.replan_budget.saturating_sub(self.exec.gate_reruns),
        };
        let decision = self
            .hooks
            .after_batch(&ctx)
            .unwrap_or_else(|e| GateDecision::Fail {
                report: None,
                findings: format!("the batch's gate could not run: {e}"),
                rerun: Vec::new(),
            });
        match decision {
            GateDecision::Pass => self.complete(b, Status::Succeeded, observe),
            GateDecision::Continue { rerun } => {
                let mut any = false;
                for a in &rerun {
                    if self
                        .exec
                        .batch(b)
                        .is_some_and(|s| s.agents.iter().any(|x| &x.id == a))
                    {
                        self.update(|e, now| e.reopen_agent(b, a, ErrorClass::GateFailed, now))?;
                        any = true;
                    }
                }
                if any {
                    Ok(())
                } else {
                    self.complete(b, Status::Failed, observe)
                }
            }
            GateDecision::Fail {
                findings, rerun, ..
            } => {
                let rerun: Vec<AgentId> = rerun
                    .into_iter()
                    .filter(|a| {
                        self.exec
                            .batch(b)
                            .is_some_and(|s| s.agents.iter().any(|x| &x.id == a))
                    })
                    .collect();
                observe(&RunEvent::GateFailed {
                    batch: b.clone(),
                    findings,
                    rerun: rerun.clone(),
                });
                // the budget is the run's, counted in the execution across resumes
                if rerun.is_empty() || self.exec.gate_reruns >= self.cfg.replan_budget {
                    return self.complete(b, Status::Failed, observe);
                }
                self.update(|e, now| {
                    e.gate_reruns += 1;
                    for a in &rerun {
                        e.reopen_agent(b, a, ErrorClass::GateFailed, now)?;
                    }
                    Ok(())
                })
            }
        }
    }

    /// After a resume: batches an earlier runner started keep their base (new worktrees of
    /// theirs start from it, not from HEAD) and their clock (durations count from their
    /// recorded start).
    pub(super) fn resume_batches(&mut self) {
        let running: Vec<(BatchId, Option<String>)> = self
            .exec
            .batches
            .iter()
            .filter(|b| b.status == Status::Running)
            .map(|b| (b.id.clone(), b.started_at.clone()))
            .collect();
        for (b, started_at) in running {
            if !self.bases.contains_key(&b) {
                let base = self.hooks.base_for(&self.plan_id, &b).unwrap_or(None);
                self.bases.insert(b.clone(), base);
            }
            let ran_ms = started_at
                .as_deref()
                .and_then(clock::parse_ms)
                .map_or(0, |t| self.now_ms().saturating_sub(t));
            let now = Instant::now();
            self.batch_started.insert(
                b,
                now.checked_sub(Duration::from_millis(ran_ms))
                    .unwrap_or(now),
            );
        }
    }
}
