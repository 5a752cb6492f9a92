//! The gate's report as the batch loop keeps it: status of the checks, one line per
//! finding for prompts and terminals, the merge-conflict check, the report file.

use std::path::Path;

use baton_plan::GateVerdict;
use baton_report::{Check, CheckStatus, Finding, Severity, VerifyReport};

use super::IntegrateError;

pub(super) fn baton_report_ok(checks: &[Check], strict: bool) -> bool {
    checks.iter().all(|c| match c.status {
        CheckStatus::Pass | CheckStatus::Skip => true,
        CheckStatus::Warn => !strict,
        CheckStatus::Fail | CheckStatus::Error => false,
    })
}

pub(super) fn baton_verify_finish(report: &mut VerifyReport) {
    report.totals = baton_report::Totals::of(&report.checks);
    report.ok = baton_report_ok(&report.checks, report.strict);
}

pub(super) fn passed_verdict() -> GateVerdict {
    GateVerdict {
        at: baton_plan::ids::rfc3339_now(std::time::SystemTime::now()),
        passed: true,
        failed_step: None,
        findings: Vec::new(),
        agents: Vec::new(),
        report: None,
    }
}

pub(super) fn merge_check(paths: Vec<(String, Vec<String>)>) -> Check {
    let findings = paths
        .into_iter()
        .map(|(path, agents)| Finding {
            code: "merge_conflict".to_owned(),
            severity: Severity::Error,
            message: format!(
                "{path}: the changes of {} do not merge",
                agents.join(" and ")
            ),
            path: Some(path),
            line: None,
            paths: Vec::new(),
            worktree: None,
            agents,
            overlap: Some(baton_report::Overlap::Conflict),
        })
        .collect();
    Check {
        name: "merge".to_owned(),
        status: CheckStatus::Fail,
        duration_ms: 0,
        findings,
        tests: None,
        message: Some("the agents' branches do not merge onto the integration branch".into()),
        agents: Vec::new(),
    }
}

/// One line per finding: `conflicts: multi_writer src/lib.rs (agent-a, agent-b): …`.
pub fn finding_line(check: &str, f: &Finding) -> String {
    let mut line = format!("{check}: {}", f.code);
    if let Some(p) = &f.path {
        line.push(' ');
        line.push_str(p);
    }
    if !f.agents.is_empty() {
        line.push_str(&format!(" ({})", f.agents.join(", ")));
    }
    line.push_str(": ");
    line.push_str(&f.message);
    line
}

pub(super) fn check_line(c: &Check) -> String {
    let mut line = format!("{}: {}", c.name, c.status_word());
    if let Some(t) = &c.tests {
        line.push_str(&format!(" ({} passed, {} failed", t.passed, t.failed));
        if let Some(code) = t.exit_code {
            line.push_str(&format!(", exit code {code}"));
        }
        line.push(')');
        for f in t.failures.iter().take(5) {
            line.push_str(&format!("; {}", f.name));
        }
    }
    if let Some(m) = &c.message {
        line.push_str(": ");
        line.push_str(m);
    }
    line
}

trait StatusWord {
    fn status_word(&self) -> &'static str;
}

impl StatusWord for Check {
    fn status_word(&self) -> &'static str {
        match self.status {
            CheckStatus::Pass => "passed",
            CheckStatus::Fail => "failed",
            CheckStatus::Warn => "warned",
            CheckStatus::Skip => "skipped",
            CheckStatus::Error => "could not run",
        }
    }
}

pub(super) fn write_report(path: &Path, report: &VerifyReport) -> Result<(), IntegrateError> {
    // write_json makes the directory, walking only real ones below the state dir
    baton_store::write_json(path, report)?;
    Ok(())
}

pub(super) fn ms(since: std::time::Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}
