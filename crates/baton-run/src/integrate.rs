//! Integrating one batch into the plan's integration branch `baton/<plan>/integration`:
//! gate the agents' work, merge their branches in plan order onto the integration tip, run
//! the tests on that merged tree in a scratch directory, and only then move the integration
//! branch — by compare-and-swap on the tip the batch started from.
//!
//! Every finished step is recorded in the execution ([`baton_plan::Integration`]) before the
//! next begins, so a run that died anywhere resumes after the last finished step: the merge
//! commit is never made twice, and the branch moves exactly once. Nothing here touches the
//! user's branches or checkout; [`land`] does, by fast-forward only, when asked.

use std::collections::BTreeMap;
use std::path::PathBuf;

mod fail;
mod land;
mod merge;
mod verdict;

use fail::gated_agents;
pub use land::land;
pub use merge::{MergeResult, merge_in_order};
pub use verdict::finding_line;
use verdict::{
    baton_report_ok, baton_verify_finish, merge_check, ms, passed_verdict, write_report,
};

use baton_plan::{
    AgentId, BatchGate, BatchId, ExecutionTracker, GateCheck, GatePassed, GateVerdict, Integration,
    PlanId,
};
use baton_report::{Check, CheckStatus, VerifyReport};

/// The plan's integration branch (short name).
pub fn integration_branch(plan: &PlanId) -> String {
    format!("baton/{plan}/integration")
}

fn full_ref(branch: &str) -> String {
    format!("refs/heads/{branch}")
}

/// One agent of the batch being integrated.
#[derive(Debug, Clone)]
pub struct GateAgent {
    pub id: AgentId,
    pub branch: String,
    pub worktree: Option<PathBuf>,
    /// Declared `files_write` globs.
    pub scope: Vec<String>,
    /// Where its own changes start, when not at its merge base with the gate's base (after a
    /// replan, an agent restarted on top of the one re-run before it).
    pub base: Option<git2::Oid>,
}

/// What the gate is asked to check before anything is merged.
#[derive(Debug)]
pub struct GateRequest<'a> {
    pub plan: &'a PlanId,
    pub batch: &'a BatchId,
    /// The integration tip the agents' changes are measured from.
    pub base: git2::Oid,
    pub agents: &'a [GateAgent],
    pub settings: &'a BatchGate,
}

/// The gate's checks, as the CLI provides them (both through `baton_verify::gate::run`, the
/// call `baton verify` makes). The integration step asks for the git and conflicts checks
/// first and the tests later, on the merge commit it made.
pub trait Gate: Send + Sync {
    /// The git and conflicts checks over the batch's agents (those `settings` selects).
    fn check(&self, req: &GateRequest<'_>) -> Result<VerifyReport, String>;
    /// The tests (quick, or full per `req.settings`) on the tree of `merged`, the batch's
    /// merge commit onto `req.base`; the check and the tree that was tested.
    fn run_tests(
        &self,
        req: &GateRequest<'_>,
        merged: git2::Oid,
    ) -> Result<(Check, Option<baton_report::TestedTree>), String>;
}

#[derive(Debug, thiserror::Error)]
pub enum IntegrateError {
    #[error("{action}: {message}")]
    Git { action: String, message: String },
    #[error("the gate could not run: {0}")]
    Gate(String),
    #[error(transparent)]
    Track(#[from] baton_plan::TrackError),
    #[error(transparent)]
    Store(#[from] baton_store::StoreError),
    #[error(
        "{branch} moved to {found} while batch {batch} was being integrated onto {expected}; nothing was changed, run again to integrate onto the new tip"
    )]
    Moved {
        branch: String,
        batch: BatchId,
        expected: String,
        found: String,
    },
    #[error(
        "agent {agent}: branch {branch} does not exist; the agent has not started or its branch was deleted"
    )]
    MissingBranch { agent: AgentId, branch: String },
    #[error("--land {branch}: {reason}")]
    Land { branch: String, reason: String },
}

impl IntegrateError {
    /// Bad input (exit 2) rather than an environment failure.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, IntegrateError::MissingBranch { .. })
    }
}

fn git(action: impl Into<String>) -> impl FnOnce(git2::Error) -> IntegrateError {
    let action = action.into();
    move |e| IntegrateError::Git {
        action,
        message: e.message().to_owned(),
    }
}

/// The integration branch's tip; created at `base` when it does not exist yet.
pub fn ensure_integration_branch(
    repo: &git2::Repository,
    plan: &PlanId,
    base: git2::Oid,
) -> Result<git2::Oid, IntegrateError> {
    let name = full_ref(&integration_branch(plan));
    if let Ok(r) = repo.find_reference(&name)
        && let Some(oid) = r.target()
    {
        return Ok(oid);
    }
    match repo.reference(
        &name,
        base,
        false,
        &format!("baton: integration branch of {plan}"),
    ) {
        Ok(_) => Ok(base),
        // someone created it meanwhile: theirs stands
        Err(e) if e.code() == git2::ErrorCode::Exists => {
            integration_tip(repo, plan)?.ok_or_else(|| git(format!("create {name}"))(e))
        }
        Err(e) => Err(git(format!("create {name}"))(e)),
    }
}

/// The integration branch's tip, if the branch exists.
pub fn integration_tip(
    repo: &git2::Repository,
    plan: &PlanId,
) -> Result<Option<git2::Oid>, IntegrateError> {
    match repo.find_reference(&full_ref(&integration_branch(plan))) {
        Ok(r) => Ok(r.target()),
        Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
        Err(e) => Err(git("read the integration branch")(e)),
    }
}

/// Everything integration needs besides the batch.
pub struct Integrator<'a> {
    pub repo: &'a git2::Repository,
    pub plan_id: &'a PlanId,
    pub tracker: &'a ExecutionTracker,
    pub gate: &'a dyn Gate,
    /// Where gate reports are written (`<dir>/<batch>-<n>.json`).
    pub reports_dir: PathBuf,
    /// Called after each step is recorded: `gate`, `merge`, `tests`, `advance` (the CLI's
    /// crash tests hold the process there).
    pub after_step: Option<&'a StepHook>,
}

/// Told the batch and the name of each integration step once it is recorded.
pub type StepHook = dyn Fn(&BatchId, &str) + Send + Sync;

/// How integrating a batch ended.
#[derive(Debug, Clone, PartialEq)]
pub enum IntegrateOutcome {
    /// The integration branch moved from `from` to `to` (now, or in a run that died right
    /// after moving it).
    Advanced { from: String, to: String },
    /// The batch was integrated earlier; nothing to do.
    AlreadyDone { tip: String },
    /// The gate, the merge or the merged tests failed; the branch did not move.
    Failed(GateVerdict),
}

impl Integrator<'_> {
    fn record(&self, batch: &BatchId, state: &Integration) -> Result<(), IntegrateError> {
        let state = state.clone();
        self.tracker
            .update(|e, now| e.set_integration(batch, state, now))?;
        Ok(())
    }

    fn step(&self, batch: &BatchId, name: &str) {
        if let Some(hook) = self.after_step {
            hook(batch, name);
        }
    }

    fn now() -> String {
        baton_plan::ids::rfc3339_now(std::time::SystemTime::now())
    }

    /// Integrate `batch` (its agents in plan order). Resumes after the last recorded step.
    pub fn integrate(
        &self,
        batch: &BatchId,
        agents: &[GateAgent],
        settings: &BatchGate,
    ) -> Result<IntegrateOutcome, IntegrateError> {
        let repo = self.repo;
        let branch = integration_branch(self.plan_id);
        let tip = integration_tip(repo, self.plan_id)?.ok_or_else(|| IntegrateError::Git {
            action: format!("read {branch}"),
            message: "the integration branch does not exist; it is created when the run starts"
                .to_owned(),
        })?;
        let exec = self.tracker.load()?;
        let previous = exec.batch(batch).and_then(|b| b.integration.clone());
        let mut state = match previous {
            Some(s) if s.advanced => {
                return Ok(IntegrateOutcome::AlreadyDone {
                    tip: tip.to_string(),
                });
            }
            // a run died after moving the branch and before recording it
            Some(mut s) if s.merged.as_deref() == Some(&tip.to_string()) => {
                s.advanced = true;
                s.gates.push(passed_verdict());
                self.record(batch, &s)?;
                return Ok(IntegrateOutcome::Advanced {
                    from: s.base.clone(),
                    to: tip.to_string(),
                });
            }
            // the same tip: continue after the last recorded step (gate, merge, tests)
            Some(s) if s.base == tip.to_string() && s.tested != Some(false) => s,
            Some(s) => Integration {
                branch: branch.clone(),
                base: tip.to_string(),
                merged: None,
                tested: None,
                advanced: false,
                gated: None,
                ..s
            },
            None => Integration {
                branch: branch.clone(),
                base: tip.to_string(),
                ..Integration::default()
            },
        };
        let n = state.gates.len() + 1;
        let report_path = self.reports_dir.join(format!("{batch}-{n}.json"));
        let mut report = VerifyReport {
            schema_version: VerifyReport::SCHEMA_VERSION,
            ok: true,
            mode: if settings.full { "full" } else { "quick" }.to_owned(),
            repo: repo
                .workdir()
                .unwrap_or_else(|| repo.path())
                .display()
                .to_string(),
            head: Some(tip.to_string()),
            base: Some(tip.to_string()),
            duration_ms: 0,
            checks: Vec::new(),
            strict: settings.strict,
            merged: true,
            tested: None,
            partition: None,
            shards: Vec::new(),
            totals: Default::default(),
        };
        let started = std::time::Instant::now();

        // --- gate and merge (skipped when a merge is already recorded for this tip) ---------
        let merged = match state.merged.as_deref() {
            Some(m) => git2::Oid::from_str(m).map_err(git("read the recorded merge"))?,
            None => {
                let mut tips = Vec::new();
                for a in agents {
                    let oid = repo
                        .find_reference(&full_ref(&a.branch))
                        .ok()
                        .and_then(|r| r.target())
                        .ok_or_else(|| IntegrateError::MissingBranch {
                            agent: a.id.clone(),
                            branch: a.branch.clone(),
                        })?;
                    tips.push((a.id.clone(), oid));
                }
                let tip_map: BTreeMap<AgentId, String> = tips
                    .iter()
                    .map(|(id, oid)| (id.clone(), oid.to_string()))
                    .collect();
                if settings.runs(GateCheck::Git) || settings.runs(GateCheck::Conflicts) {
                    // a gate that passed on this tip for these very branches is not run again
                    let earlier = state
                        .gated
                        .as_ref()
                        .filter(|g| g.tips == tip_map)
                        .and_then(|g| baton_store::read_json::<VerifyReport>(&g.report).ok());
                    match earlier {
                        Some(done) => report.checks.extend(done.checks),
                        None => {
                            let (base, gated) = gated_agents(&state, tip, agents);
                            let req = GateRequest {
                                plan: self.plan_id,
                                batch,
                                base,
                                agents: &gated,
                                settings,
                            };
                            let gate = self.gate.check(&req).map_err(IntegrateError::Gate)?;
                            report.checks.extend(gate.checks);
                            if !baton_report_ok(&report.checks, settings.strict) {
                                return self.fail(
                                    batch,
                                    state,
                                    report,
                                    &report_path,
                                    "gate",
                                    started,
                                );
                            }
                            // the verdict is on disk before anything is merged
                            write_report(&report_path, &report)?;
                            state.gated = Some(GatePassed {
                                report: report_path.clone(),
                                tips: tip_map,
                            });
                            self.record(batch, &state)?;
                            self.step(batch, "gate");
                        }
                    }
                }
                match merge_in_order(repo, tip, &tips, self.plan_id, batch)? {
                    MergeResult::Conflicts(paths) => {
                        report.checks.push(merge_check(paths));
                        return self.fail(batch, state, report, &report_path, "merge", started);
                    }
                    MergeResult::Merged(m) => {
                        state.merged = Some(m.to_string());
                        self.record(batch, &state)?;
                        self.step(batch, "merge");
                        m
                    }
                }
            }
        };

        // --- the tests on the merged tree ------------------------------------------------
        if state.tested != Some(true) && settings.runs(GateCheck::Tests) {
            let req = GateRequest {
                plan: self.plan_id,
                batch,
                base: tip,
                agents,
                settings,
            };
            let (check, tested) = self
                .gate
                .run_tests(&req, merged)
                .map_err(IntegrateError::Gate)?;
            report.tested = tested.map(|mut t| {
                // what was tested is the batch's merged result, whoever laid it out
                t.kind = "merged".to_owned();
                t.commit = Some(tip.to_string());
                t.agents = agents.iter().map(|a| a.id.to_string()).collect();
                t
            });
            let passed = match check.status {
                CheckStatus::Pass | CheckStatus::Skip => true,
                CheckStatus::Warn => !settings.strict,
                CheckStatus::Fail | CheckStatus::Error => false,
            };
            report.checks.push(check);
            if !passed {
                state.tested = Some(false);
                return self.fail(batch, state, report, &report_path, "tests", started);
            }
            state.tested = Some(true);
            self.record(batch, &state)?;
            self.step(batch, "tests");
        }

        // --- advance: compare-and-swap on the tip the batch started from ------------------
        if merged != tip {
            let name = full_ref(&branch);
            let msg = format!("baton: integrate batch {batch}");
            if let Err(e) = repo.reference_matching(&name, merged, true, tip, &msg) {
                let found = integration_tip(repo, self.plan_id)?;
                if found != Some(merged) {
                    return Err(IntegrateError::Moved {
                        branch,
                        batch: batch.clone(),
                        expected: tip.to_string(),
                        found: found.map_or_else(|| e.message().to_owned(), |o| o.to_string()),
                    });
                }
            }
        }
        state.advanced = true;
        report.duration_ms = ms(started);
        baton_verify_finish(&mut report);
        write_report(&report_path, &report)?;
        let mut verdict = passed_verdict();
        verdict.report = Some(report_path);
        state.gates.push(verdict);
        self.record(batch, &state)?;
        self.step(batch, "advance");
        Ok(IntegrateOutcome::Advanced {
            from: tip.to_string(),
            to: merged.to_string(),
        })
    }
}
