//! Ending attempts: verdicts recorded together (group commit), retries and the breaker,
//! stops (timeouts, Ctrl-C) and the deadlines the loop sleeps until.

use super::*;
use baton_plan::Leftovers;

/// What the supervisor reported, with what a stop of a stuck supervisor left alive.
fn leftovers(reported: Option<Leftovers>, leaked: Vec<u32>) -> Option<Leftovers> {
    if leaked.is_empty() {
        return reported;
    }
    let mut left = reported.unwrap_or_default();
    left.survived.extend(leaked);
    Some(left)
}

/// How often a run held back by the resource gate looks again.
const RESOURCE_RECHECK: Duration = Duration::from_secs(1);

impl Runner {
    pub(super) fn finished(
        &mut self,
        key: &AttemptKey,
        outcome: Outcome,
        reason: Option<KillReason>,
        observe: &mut dyn FnMut(&RunEvent),
    ) -> Result<(), RunError> {
        self.finished_many(vec![(key.clone(), outcome, reason)], observe)
    }

    /// Record the ends of several attempts in one persisted transition (group commit: a burst
    /// of agents ending costs one durable write, not one each).
    pub(super) fn finished_many(
        &mut self,
        ends: Vec<(AttemptKey, Outcome, Option<KillReason>)>,
        observe: &mut dyn FnMut(&RunEvent),
    ) -> Result<(), RunError> {
        let concluded: Vec<Concluded> = ends
            .into_iter()
            .filter_map(|(key, outcome, reason)| self.conclude(&key, outcome, reason))
            .collect();
        if concluded.is_empty() {
            return Ok(());
        }
        // recorded with the next write: the starts of the agents that take their slots
        let records: Vec<(AttemptKey, Status, AgentResult)> = concluded
            .iter()
            .map(|c| (c.key.clone(), c.status, c.result.clone()))
            .collect();
        self.defer(Box::new(move |e, now| {
            for (key, status, result) in &records {
                e.record_agent_result(&key.batch, &key.agent, *status, result.clone(), now)?;
            }
            Ok(())
        }))?;
        let plan = self.plan.clone();
        let breaker_before = self.breaker.state();
        let mut retries_at = Vec::new();
        for c in concluded {
            let key = &c.key;
            let now_ms = self.now_ms();
            let mut retry_in_ms = None;
            if c.status == Status::Succeeded {
                self.breaker.succeeded();
                self.not_before.remove(&key.agent);
            } else if let Some(class) = c.result.error_class {
                if let Some(trip) = self.breaker.failed(&key.agent, class, now_ms) {
                    observe(&RunEvent::BreakerOpen {
                        class: trip.class,
                        agents: trip.agents.clone(),
                        hint: trip.hint(),
                    });
                }
                let retries = sched::retries_of(&plan, &key.agent, self.cfg.default_retries);
                let state = self
                    .exec
                    .batch(&key.batch)
                    .and_then(|s| s.agents.iter().find(|a| a.id == key.agent));
                if class != ErrorClass::Interrupted
                    && state.is_some_and(|s| sched::phase(s, retries) == Phase::Wants)
                {
                    let delay = self.cfg.backoff.delay(
                        key.attempt,
                        backoff::seed(self.cfg.nonce, key.agent.as_str(), key.attempt),
                    );
                    let ms = delay.as_millis() as u64;
                    self.not_before.insert(key.agent.clone(), now_ms + ms);
                    retries_at.push((key.batch.clone(), key.agent.clone(), now_ms + ms));
                    retry_in_ms = Some(ms);
                }
            }
            if let Some(left) = &c.result.leftovers {
                observe(&RunEvent::Leak {
                    batch: key.batch.clone(),
                    agent: key.agent.clone(),
                    attempt: key.attempt,
                    swept: left.swept,
                    killed_after_grace: left.killed_after_grace,
                    pids: left.survived.clone(),
                });
            }
            observe(&RunEvent::AgentFinish {
                batch: key.batch.clone(),
                agent: key.agent.clone(),
                attempt: key.attempt,
                status: c.status,
                error_class: c.result.error_class,
                exit_code: c.result.exit_code,
                duration_ms: c.result.duration_ms,
                retry_in_ms,
                detail: c.detail,
            });
        }
        // persisted with the ends (the same write): a resumed run keeps the due times and
        // the breaker, instead of retrying at once or forgetting a rate limit's pause
        let breaker = self.breaker.state();
        if !retries_at.is_empty() || breaker != breaker_before {
            self.defer(Box::new(move |e, now| {
                for (b, a, due) in &retries_at {
                    e.set_retry_at(b, a, Some(clock::rfc3339(*due)), now)?;
                }
                e.breaker = breaker.clone();
                Ok(())
            }))?;
        }
        Ok(())
    }

    /// The verdict on an attempt that ended (its live entry is removed); `None` for a late
    /// event of an attempt that is not the current one.
    pub(super) fn conclude(
        &mut self,
        key: &AttemptKey,
        outcome: Outcome,
        reason: Option<KillReason>,
    ) -> Option<Concluded> {
        let live = self.live.remove(&key.agent)?;
        if live.key.attempt != key.attempt {
            self.live.insert(key.agent.clone(), live);
            return None;
        }
        let plan = self.plan.clone();
        let (_, agent) = plan.agent(&key.agent)?;
        let tail = attempt::log_tail(&live.log, 16 * 1024);
        let mut verdict = classify(
            &outcome,
            live.kill.or(reason),
            &plan.rate_limit_of(agent),
            &tail,
        );
        let duration_ms = live.started.elapsed().as_millis() as u64;
        let mut detail = match &outcome {
            Outcome::SpawnFailed(why) | Outcome::Lost(why) | Outcome::NotStarted(why) => {
                Some(why.clone())
            }
            _ => None,
        };
        let ctx = AgentContext {
            plan: self.plan_id.clone(),
            batch: key.batch.clone(),
            agent: key.agent.clone(),
            attempt: key.attempt,
            worktree: live.isolated.then(|| live.cwd.clone()),
            branch: live.branch.clone(),
            succeeded: verdict.status == Status::Succeeded,
        };
        // measured before the batch loop commits what the attempt left
        let files_changed = if live.isolated {
            self.workspaces.changed_files(&live.cwd)
        } else {
            Vec::new()
        };
        if let Err(e) = self.hooks.after_agent(&ctx) {
            verdict.status = Status::Failed;
            verdict.class.get_or_insert(ErrorClass::Other);
            detail = Some(format!("after the attempt: {e}"));
        }
        Some(Concluded {
            key: key.clone(),
            status: verdict.status,
            result: AgentResult {
                exit_code: verdict.exit_code,
                attempts: key.attempt,
                duration_ms,
                files_changed,
                summary: attempt::read_summary(&live.log.with_extension("result.json")),
                error_class: verdict.class,
                leftovers: leftovers(attempt::read_leftovers(&live.log), live.leaked),
            },
            detail,
        })
    }

    pub(super) fn interrupt(&mut self, observe: &mut dyn FnMut(&RunEvent)) {
        self.stop = self.stop.saturating_add(1);
        if self.stop == 1 {
            observe(&RunEvent::Stopping {
                running: self.live.len(),
            });
        } else if self.stop == 2 {
            observe(&RunEvent::Killing {
                running: self.live.len(),
            });
            let agents: Vec<AgentId> = self.live.keys().cloned().collect();
            for a in agents {
                self.kill(&a, KillReason::Interrupt, observe);
            }
        }
    }

    pub(super) fn kill(
        &mut self,
        agent: &AgentId,
        reason: KillReason,
        observe: &mut dyn FnMut(&RunEvent),
    ) {
        let Some(live) = self.live.get_mut(agent) else {
            return;
        };
        if live.kill.is_some() {
            return;
        }
        live.kill = Some(reason);
        let key = live.key.clone();
        // persisted before the stop is sent: a runner that dies meanwhile leaves a resumed one
        // the reason. Written alone (deferred transitions keep waiting for the next write, so
        // a failure here loses none of them); a failed write leaves the reason in memory only
        // and the stop goes ahead.
        let stop = |e: &mut Execution, now: &str| {
            e.stop_agent(&key.batch, &key.agent, reason.class(), now)
        };
        if self.tracker.update(stop).is_ok() {
            let now = baton_plan::ids::rfc3339_now(SystemTime::now());
            let _ = stop(&mut self.exec, &now);
        }
        let Some(live) = self.live.get(agent) else {
            return;
        };
        observe(&RunEvent::AgentKill {
            batch: live.key.batch.clone(),
            agent: agent.clone(),
            attempt: live.key.attempt,
            reason: match reason {
                KillReason::Timeout => "timeout",
                KillReason::Idle => "idle timeout",
                KillReason::FirstOutput => "no output before the first-output timeout",
                KillReason::Interrupt => "Ctrl-C",
            },
        });
        let Some(handle) = live.handle.clone() else {
            return;
        };
        let (executor, tx, grace, agent) = (
            self.executor.clone(),
            self.tx.clone(),
            self.cfg.grace,
            agent.clone(),
        );
        let _ = std::thread::Builder::new()
            .name(format!("kill-{agent}"))
            .stack_size(64 * 1024)
            .spawn(move || {
                let report = executor.kill(&handle, grace).map_err(|e| e.to_string());
                let _ = tx.send(Msg::KillDone(agent, report));
            });
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let mut all: Vec<Instant> = Vec::new();
        for l in self.live.values().filter(|l| l.kill.is_none()) {
            all.extend(l.wall);
            all.extend(l.first_output);
            all.extend(l.idle_check);
        }
        if self.stop == 0 {
            if let Some(ms) = self.last.next_due_ms() {
                all.push(self.instant_at(ms));
            }
            if let Some(ms) = self.breaker.reopens_at() {
                all.push(self.instant_at(ms));
            }
            // Free memory and load have no kernel event to wait on: while an agent waits for
            // them they are re-checked on this timer (and the limits file re-read). Any other
            // event — an attempt ending, Ctrl-C — still wakes the loop at once.
            if self
                .last
                .waits
                .iter()
                .any(|w| matches!(w, Wait::Busy { .. }))
            {
                all.push(Instant::now() + RESOURCE_RECHECK);
            }
        }
        all.into_iter().min()
    }

    pub(super) fn check_deadlines(&mut self, observe: &mut dyn FnMut(&RunEvent)) {
        let now = Instant::now();
        let mut kills = Vec::new();
        for (id, l) in self.live.iter_mut().filter(|(_, l)| l.kill.is_none()) {
            if l.wall.is_some_and(|t| t <= now) {
                kills.push((id.clone(), KillReason::Timeout));
                continue;
            }
            if l.first_output.is_some_and(|t| t <= now) {
                if attempt::has_output(&l.log) {
                    l.first_output = None;
                } else {
                    kills.push((id.clone(), KillReason::FirstOutput));
                    continue;
                }
            }
            if let (Some(t), Some(idle)) = (l.idle_check, l.idle)
                && t <= now
            {
                let last = attempt::last_activity(&l.log, l.isolated.then_some(l.cwd.as_path()));
                let left = attempt::idle_left(
                    last.max(Some(SystemTime::now() - now.duration_since(l.started))),
                    idle,
                    SystemTime::now(),
                );
                if left.is_zero() {
                    kills.push((id.clone(), KillReason::Idle));
                } else {
                    l.idle_check = Some(now + left);
                }
            }
        }
        for (id, reason) in kills {
            self.kill(&id, reason, observe);
        }
    }
}
