//! Starting attempts: where each runs (shared checkout, earlier worktree, or new worktrees
//! made together), the starts and handles persisted in one write each, and adopting what an
//! earlier runner started.

use super::*;

impl Runner {
    /// Where an agent will run: its earlier worktree, a new one from the pool, or the shared
    /// checkout.
    /// The worktree an agent already has from an earlier attempt, if it is still there.
    pub(super) fn previous_place(
        &self,
        b: &BatchId,
        a: &AgentId,
    ) -> Option<(PathBuf, Option<String>)> {
        self.exec
            .batch(b)
            .and_then(|s| s.agents.iter().find(|x| &x.id == a))
            .and_then(|s| Some((s.worktree.clone()?, s.branch.clone())))
            .filter(|(w, _)| w.is_dir())
    }

    /// Where each launch runs: the shared checkout, its earlier worktree, or a new one —
    /// new worktrees of one batch are made in one call.
    pub(super) fn place_all(&self, launches: &[(BatchId, AgentId, bool)]) -> Vec<Place> {
        let mut out: Vec<Option<Place>> = launches
            .iter()
            .map(|(b, a, isolated)| {
                if !*isolated {
                    Some(Ok((self.cfg.repo_root.clone(), None)))
                } else {
                    self.previous_place(b, a).map(Ok)
                }
            })
            .collect();
        let mut by_batch: BTreeMap<&BatchId, Vec<usize>> = BTreeMap::new();
        for (i, (b, _, _)) in launches.iter().enumerate() {
            if out[i].is_none() {
                by_batch.entry(b).or_default().push(i);
            }
        }
        for (b, idx) in by_batch {
            let agents: Vec<AgentId> = idx.iter().map(|&i| launches[i].1.clone()).collect();
            let base = self.bases.get(b).cloned().flatten();
            match self
                .workspaces
                .prepare_many(&self.plan_id, &agents, base.as_deref())
            {
                Ok(made) if made.len() == idx.len() => {
                    for (&i, (d, br)) in idx.iter().zip(made) {
                        out[i] = Some(Ok((d, Some(br))));
                    }
                }
                Ok(_) => {
                    for &i in &idx {
                        out[i] = Some(Err("the pool made fewer worktrees than asked".into()));
                    }
                }
                Err(e) => {
                    for &i in &idx {
                        out[i] = Some(Err(e.clone()));
                    }
                }
            }
        }
        out.into_iter()
            .map(|o| o.unwrap_or_else(|| Err("no place".into())))
            .collect()
    }

    /// Start the next attempt of several agents. Their starts are recorded in one write before
    /// anything is spawned, their handles in one write after, before anything waits on them.
    pub(super) fn launch_many(
        &mut self,
        launches: Vec<(BatchId, AgentId)>,
        observe: &mut dyn FnMut(&RunEvent),
    ) -> Result<(), RunError> {
        if launches.is_empty() {
            return Ok(());
        }
        let plan = self.plan.clone();
        struct Prepared {
            b: BatchId,
            a: AgentId,
            isolated: bool,
            cwd: PathBuf,
            branch: Option<String>,
            error: Option<String>,
        }
        let launches: Vec<(BatchId, AgentId, bool)> = launches
            .into_iter()
            .filter_map(|(b, a)| {
                let (_, agent) = plan.agent(&a)?;
                let isolated = attempt::isolation_of(&plan, agent) == Isolation::Worktree;
                Some((b, a, isolated))
            })
            .collect();
        let places = self.place_all(&launches);
        let mut prepared = Vec::new();
        for ((b, a, isolated), place) in launches.into_iter().zip(places) {
            let (cwd, branch, error) = match place {
                Ok((d, br)) => (d, br, None),
                Err(e) => (
                    self.cfg.repo_root.clone(),
                    None,
                    Some(format!("cannot prepare the worktree: {e}")),
                ),
            };
            prepared.push(Prepared {
                b,
                a,
                isolated,
                cwd,
                branch,
                error,
            });
        }
        // the batch loop's placeholders ({outputs.X}, {files.X}, {gate_findings}) and env,
        // read before the starts are recorded so the window until the handles are persisted
        // stays as short as it was. One that cannot be read fails the attempt: an agent never
        // runs with its inputs silently missing.
        let starts: Vec<(&BatchId, &AgentId)> = prepared.iter().map(|p| (&p.b, &p.a)).collect();
        let mut vars = self.hooks.agent_vars(&self.plan_id, &self.exec, &starts);
        vars.resize_with(prepared.len(), || {
            Err(crate::hooks::HookError(
                "the batch loop gave no inputs".into(),
            ))
        });
        let loop_vars: Vec<Option<crate::hooks::AgentVars>> = prepared
            .iter_mut()
            .zip(vars)
            .map(|(p, v)| match v {
                Ok(v) => Some(v),
                Err(e) => {
                    p.error
                        .get_or_insert(format!("cannot read the batch loop's inputs: {e}"));
                    None
                }
            })
            .collect();
        let attempts = self.update(|e, now| {
            prepared
                .iter()
                .map(|p| {
                    let start = AgentStart {
                        process: None,
                        worktree: p.isolated.then(|| p.cwd.clone()),
                        branch: p.branch.clone(),
                    };
                    e.start_agent(&p.b, &p.a, start, now)
                })
                .collect::<Result<Vec<u32>, _>>()
        })?;
        let mut started = Vec::new();
        let mut failed = Vec::new();
        for ((p, attempt), vars) in prepared.into_iter().zip(attempts).zip(loop_vars) {
            let Some((_, agent)) = plan.agent(&p.a) else {
                continue;
            };
            let (mut spec, mut prompt) = attempt::spec(&SpecInput {
                plan: &plan,
                plan_id: &self.plan_id,
                batch: &p.b,
                agent,
                attempt,
                cwd: &p.cwd,
                branch: p.branch.as_deref(),
                logs_dir: &self.cfg.logs_dir,
            });
            if let Some(vars) = &vars {
                crate::batch_loop::apply_vars(&mut spec, &mut prompt, vars);
            }
            let now = Instant::now();
            let live = Live {
                key: spec.key.clone(),
                handle: None,
                log: spec.log.clone(),
                cwd: p.cwd.clone(),
                branch: p.branch.clone(),
                isolated: p.isolated,
                started: now,
                wall: spec.timeout.map(|t| now + t),
                first_output: first_output_of(&plan, &p.a).map(|t| now + t),
                idle: idle_of(&plan, &p.a),
                idle_check: idle_of(&plan, &p.a).map(|t| now + t),
                kill: None,
                leaked: Vec::new(),
            };
            // the batch loop's output cache: an identical earlier success is applied to the
            // worktree's branch, and the attempt ends now as succeeded without running
            if p.error.is_none() && p.isolated {
                let ctx = AgentContext {
                    plan: self.plan_id.clone(),
                    batch: p.b.clone(),
                    agent: p.a.clone(),
                    attempt,
                    worktree: Some(p.cwd.clone()),
                    branch: p.branch.clone(),
                    succeeded: false,
                };
                match self.hooks.cached(&ctx) {
                    Ok(true) => {
                        observe(&RunEvent::CacheHit {
                            batch: p.b.clone(),
                            agent: p.a.clone(),
                            attempt,
                        });
                        self.live.insert(p.a.clone(), live);
                        failed.push((spec.key, Outcome::Exited(0), None));
                        continue;
                    }
                    Ok(false) => {}
                    // e.g. a replanned agent's branch could not be moved onto the work it
                    // must build on: running it anyway would start it from the wrong place
                    Err(e) => {
                        self.live.insert(p.a.clone(), live);
                        let why = format!("cannot prepare the attempt's worktree: {e}");
                        failed.push((spec.key, Outcome::SpawnFailed(why), None));
                        continue;
                    }
                }
            }
            let result = match p.error {
                Some(e) => Err(Outcome::SpawnFailed(e)),
                None => self.start_one(&spec, prompt.as_ref()),
            };
            self.live.insert(p.a.clone(), live);
            match result {
                Ok(handle) => {
                    started.push((p.b, p.a, handle, spec.log, p.cwd, p.isolated, attempt))
                }
                Err(outcome) => failed.push((spec.key, outcome, None)),
            }
        }
        if !started.is_empty() {
            let handles: Vec<(BatchId, AgentId, AttemptHandle)> = started
                .iter()
                .map(|(b, a, h, ..)| (b.clone(), a.clone(), h.clone()))
                .collect();
            let record: Pending = Box::new(move |e, now| {
                for (b, a, handle) in &handles {
                    e.set_handle(b, a, handle.clone(), now)?;
                }
                Ok(())
            });
            if self.executor.kind() == "local" {
                // a local supervisor claims its pid file before it starts the agent, so a
                // resumed runner finds it without the handle: written with the next write
                // (the next ends or starts), not one of its own per launch
                self.defer_recoverable(record)?;
            } else {
                // persisted before anything waits on the attempts
                self.update(|e, now| record(e, now))?;
            }
        }
        for (b, a, handle, log, cwd, isolated, attempt) in started {
            if let (true, AttemptHandle::Local { pid, start_time }) = (isolated, &handle)
                && let Err(e) = self.workspaces.attach(
                    &cwd,
                    ProcessRef {
                        pid: *pid,
                        start_time: *start_time,
                    },
                )
            {
                observe(&RunEvent::Warning {
                    agent: a.clone(),
                    message: format!("its worktree could not be locked to it: {e}"),
                });
            }
            if let Some(l) = self.live.get_mut(&a) {
                l.handle = Some(handle);
            }
            observe(&RunEvent::AgentStart {
                batch: b,
                agent: a,
                attempt,
                cwd,
                log,
            });
        }
        self.finished_many(failed, observe)
    }

    /// Check the command can start, write the prompt file, and hand the attempt to the
    /// executor.
    pub(super) fn start_one(
        &self,
        spec: &crate::executor::AttemptSpec,
        prompt: Option<&(PathBuf, String)>,
    ) -> Result<AttemptHandle, Outcome> {
        let search_path = spec
            .env
            .get("PATH")
            .map(std::ffi::OsString::from)
            .or_else(|| self.cfg.search_path.clone());
        match spec.argv.first() {
            Some(p) if self.executor.kind() == "local" => {
                attempt::preflight(p, &spec.cwd, search_path.as_deref())
                    .map_err(Outcome::SpawnFailed)?;
            }
            Some(_) => {}
            None => return Err(Outcome::SpawnFailed("the command is empty".to_owned())),
        }
        // the attempt's log is never reached through a link below the state dir (a committed
        // `.baton/executions/<plan>/logs -> elsewhere`, or a log file that is a link): refused
        // here, with the reason, before anything starts; a local supervisor checks again as it
        // makes the directory and opens the log, a Slurm job's log is opened by Slurm
        baton_store::check_no_links(&spec.log).map_err(|e| Outcome::SpawnFailed(e.to_string()))?;
        // a local supervisor makes its directory itself, off the runner's path
        if let Some(dir) = spec.log.parent()
            && (prompt.is_some() || self.executor.kind() != "local")
        {
            baton_store::create_dir_all(dir).map_err(|e| Outcome::SpawnFailed(e.to_string()))?;
        }
        if let Some((path, text)) = prompt {
            baton_store::write_atomic(path, text.as_bytes())
                .map_err(|e| Outcome::SpawnFailed(e.to_string()))?;
        }
        self.executor
            .start(spec, self.events.clone())
            .map_err(|e| match e {
                crate::executor::ExecError::NotStarted(why) => Outcome::NotStarted(why),
                e => Outcome::SpawnFailed(e.to_string()),
            })
    }

    /// After a crash: watch again what still runs, record what ended meanwhile.
    pub(super) fn adopt_running(
        &mut self,
        observe: &mut dyn FnMut(&RunEvent),
    ) -> Result<(), RunError> {
        let running: Vec<(BatchId, baton_plan::execution::AgentState)> = self
            .exec
            .batches
            .iter()
            .flat_map(|b| b.agents.iter().map(move |a| (b.id.clone(), a.clone())))
            .filter(|(_, a)| a.status == Status::Running)
            .collect();
        let plan = self.plan.clone();
        for (b, state) in running {
            let Some((_, agent)) = plan.agent(&state.id) else {
                continue;
            };
            let isolated = attempt::isolation_of(&plan, agent) == Isolation::Worktree;
            let cwd = state
                .worktree
                .clone()
                .unwrap_or_else(|| self.cfg.repo_root.clone());
            let (spec, _) = attempt::spec(&SpecInput {
                plan: &plan,
                plan_id: &self.plan_id,
                batch: &b,
                agent,
                attempt: state.attempt,
                cwd: &cwd,
                branch: state.branch.as_deref(),
                logs_dir: &self.cfg.logs_dir,
            });
            let found = match &state.handle {
                Some(h) => self
                    .executor
                    .adopt(&spec, h, self.events.clone())
                    .map(|a| Some((h.clone(), a))),
                None => self.executor.adopt_unrecorded(&spec, self.events.clone()),
            };
            // the attempt's clock started with it, not with this runner
            let ran_for = state
                .started_at
                .as_deref()
                .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .unwrap_or_default();
            let now = Instant::now();
            let started = now.checked_sub(ran_for).unwrap_or(now);
            let live = Live {
                key: spec.key.clone(),
                handle: None,
                log: spec.log.clone(),
                cwd,
                branch: state.branch.clone(),
                isolated,
                started,
                wall: spec.timeout.map(|t| started + t),
                // every deadline counts from the attempt's recorded start; idleness is checked
                // at once against the log's and the worktree's last activity
                first_output: first_output_of(&plan, &state.id).map(|t| started + t),
                idle: idle_of(&plan, &state.id),
                idle_check: idle_of(&plan, &state.id).map(|_| now),
                kill: None,
                leaked: Vec::new(),
            };
            let key = live.key.clone();
            self.live.insert(state.id.clone(), live);
            match found {
                Ok(Some((handle, adoption))) => {
                    if state.handle.is_none() {
                        self.update(|e, now| e.set_handle(&b, &state.id, handle.clone(), now))?;
                    }
                    if let Some(l) = self.live.get_mut(&state.id) {
                        l.handle = Some(handle);
                    }
                    match adoption {
                        Adoption::Running => {
                            observe(&RunEvent::AgentAdopted {
                                batch: b.clone(),
                                agent: state.id.clone(),
                                attempt: state.attempt,
                                log: spec.log.clone(),
                            });
                            // a stop the earlier runner began is finished
                            if let Some(reason) = state.stopping.and_then(KillReason::of_class) {
                                self.kill(&state.id, reason, observe);
                            }
                        }
                        Adoption::Finished(outcome) => {
                            let reason = state.stopping.and_then(KillReason::of_class);
                            self.finished(&key, outcome, reason, observe)?;
                        }
                    }
                }
                // it never started (the runner died between recording and starting it)
                Ok(None) => self.finished(
                    &key,
                    Outcome::Cancelled,
                    Some(KillReason::Interrupt),
                    observe,
                )?,
                Err(e) => self.finished(&key, Outcome::Lost(e.to_string()), None, observe)?,
            }
        }
        Ok(())
    }
}
