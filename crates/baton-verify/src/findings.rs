//! Small constructors for findings and the status a check gets from its findings.

use baton_report::{CheckStatus, Finding, Severity};

/// A finding with only the required fields set.
pub fn finding(code: &str, severity: Severity, message: impl Into<String>) -> Finding {
    Finding {
        code: code.to_owned(),
        severity,
        path: None,
        line: None,
        paths: Vec::new(),
        worktree: None,
        agents: Vec::new(),
        overlap: None,
        message: message.into(),
    }
}

/// `fail` if any error (or, with `strict`, any warning), `warn` if any warning, else `pass`.
pub fn status_of(findings: &[Finding], strict: bool) -> CheckStatus {
    let worst = findings.iter().map(|f| f.severity).max();
    match worst {
        Some(Severity::Error) => CheckStatus::Fail,
        Some(Severity::Warning) if strict => CheckStatus::Fail,
        Some(Severity::Warning) => CheckStatus::Warn,
        _ => CheckStatus::Pass,
    }
}

/// Sort findings errors first, then by code, path and worktree, so output is stable.
pub fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.code.cmp(&b.code))
            .then_with(|| a.worktree.cmp(&b.worktree))
            .then_with(|| a.path.cmp(&b.path))
            .then_with(|| a.agents.cmp(&b.agents))
    });
}
