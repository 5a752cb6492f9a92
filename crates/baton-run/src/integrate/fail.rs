//! The end of a failed integration attempt (the gate, the merge or the merged tests): the
//! report written, the verdict recorded with one line per finding and the agents named, and
//! the batch's state reset so the next attempt starts from the gate again. Also which agents
//! the gate checks after a replan.

use std::path::Path;

use baton_plan::{AgentId, BatchId, GateVerdict, Integration};
use baton_report::{CheckStatus, Severity, VerifyReport};

use super::verdict::{baton_verify_finish, check_line, finding_line, ms, write_report};
use super::{GateAgent, IntegrateError, IntegrateOutcome, Integrator};

/// The gate's base and agents before the merge. After a replan only the agents sent back are
/// gated (the others' work is already in their line, and was gated), each from where it
/// restarted.
pub(super) fn gated_agents(
    state: &Integration,
    tip: git2::Oid,
    agents: &[GateAgent],
) -> (git2::Oid, Vec<GateAgent>) {
    let replan_base = state
        .replan_base
        .as_deref()
        .and_then(|b| git2::Oid::from_str(b).ok());
    let Some(replan_base) = replan_base else {
        return (tip, agents.to_vec());
    };
    let gated = agents
        .iter()
        .filter(|a| state.replanned.contains(&a.id))
        .map(|a| {
            let mut a = a.clone();
            a.base = state
                .replan_bases
                .get(&a.id)
                .and_then(|b| git2::Oid::from_str(b).ok());
            a
        })
        .collect();
    (replan_base, gated)
}

impl Integrator<'_> {
    pub(super) fn fail(
        &self,
        batch: &BatchId,
        mut state: Integration,
        mut report: VerifyReport,
        report_path: &Path,
        step: &str,
        started: std::time::Instant,
    ) -> Result<IntegrateOutcome, IntegrateError> {
        report.duration_ms = ms(started);
        baton_verify_finish(&mut report);
        report.ok = false;
        write_report(report_path, &report)?;
        let mut agents: Vec<AgentId> = Vec::new();
        let mut findings = Vec::new();
        for c in &report.checks {
            let failed = matches!(c.status, CheckStatus::Fail | CheckStatus::Error);
            for f in &c.findings {
                let counts = f.severity == Severity::Error
                    || (report.strict && f.severity == Severity::Warning);
                if !counts {
                    continue;
                }
                findings.push(finding_line(&c.name, f));
                for a in &f.agents {
                    if let Ok(id) = AgentId::new(a.as_str())
                        && !agents.contains(&id)
                    {
                        agents.push(id);
                    }
                }
            }
            if failed && c.findings.is_empty() {
                findings.push(check_line(c));
            }
        }
        let verdict = GateVerdict {
            at: Self::now(),
            passed: false,
            failed_step: Some(step.to_owned()),
            findings,
            agents,
            report: Some(report_path.to_owned()),
        };
        state.gates.push(verdict.clone());
        // a failed attempt is finished: the next one starts from the gate again
        state.merged = None;
        state.tested = None;
        state.gated = None;
        self.record(batch, &state)?;
        Ok(IntegrateOutcome::Failed(verdict))
    }
}
