//! Where agents wrote, beyond meeting each other: outside their declared scope, into the main
//! checkout while they work in worktrees, and conflict markers they committed.

use std::collections::BTreeSet;

use baton_git::changes::FileChange;
use baton_git::status::{StatusMode, status};
use baton_git::{GitError, RepoPaths};
use baton_plan::glob::ScopeMatcher;
use baton_report::{Finding, Severity};

use crate::conflicts::AgentLine;
use crate::findings::finding;
use crate::pairs::AgentFiles;

/// Conflict markers in files an agent committed (a merge it botched and committed anyway).
/// Uncommitted files are the git check's business: it scans every worktree.
pub(crate) fn committed_markers(lines: &[AgentLine]) -> Vec<Finding> {
    let mut out = Vec::new();
    for l in lines {
        for (path, found) in &l.committed_markers {
            let mut f = finding(
                "conflict_markers",
                Severity::Error,
                format!(
                    "{path}: agent {} committed it with {} conflict marker block(s), the first at line {}",
                    l.spec.id,
                    found.len(),
                    found[0]
                ),
            );
            f.path = Some(path.clone());
            f.line = found.first().copied();
            f.agents = vec![l.spec.id.clone()];
            out.push(f);
        }
    }
    out
}

pub(crate) fn scope_violations(
    lines: &[AgentLine],
    matchers: &[Option<ScopeMatcher>],
) -> Vec<Finding> {
    let mut out = Vec::new();
    for (line, matcher) in lines.iter().zip(matchers) {
        let Some(m) = matcher else { continue };
        let touched: BTreeSet<&str> = match &line.files {
            AgentFiles::Line(changes) => changes.values().flat_map(FileChange::touched).collect(),
            AgentFiles::Declared(v) => v.iter().map(String::as_str).collect(),
        };
        let scope = line.spec.scope.as_deref().unwrap_or_default().join(", ");
        for p in touched.into_iter().filter(|p| !m.is_match(p)) {
            let mut f = finding(
                "scope_violation",
                Severity::Error,
                format!(
                    "{p}: agent {} wrote it, outside its files_write scope ({scope})",
                    line.spec.id
                ),
            );
            f.path = Some(p.to_owned());
            f.agents = vec![line.spec.id.clone()];
            out.push(f);
        }
    }
    out
}

/// Changes in the main checkout while agents work in their own worktrees: a warning, or an
/// error for a file an agent changed too.
pub(crate) fn main_checkout_writes(
    repo: &RepoPaths,
    lines: &[AgentLine],
) -> Result<Vec<Finding>, GitError> {
    let main = RepoPaths {
        workdir: repo.main_workdir(),
        git_dir: repo.common_dir.clone(),
        common_dir: repo.common_dir.clone(),
    };
    if lines
        .iter()
        .any(|l| l.spec.worktree.as_deref() == Some(main.workdir.as_path()))
    {
        return Ok(Vec::new());
    }
    let Ok(r) = git2::Repository::open(&main.workdir) else {
        return Ok(Vec::new());
    };
    if r.is_bare() {
        return Ok(Vec::new());
    }
    let changed: Vec<String> = status(&r, StatusMode::default())?
        .into_iter()
        .map(|e| e.path)
        .collect();
    let mut out = Vec::new();
    let mut others = Vec::new();
    for p in changed {
        let writers: Vec<String> = lines
            .iter()
            .filter(|l| match &l.files {
                AgentFiles::Line(m) => m.values().any(|c| c.touched().any(|t| t == p)),
                AgentFiles::Declared(v) => v.contains(&p),
            })
            .map(|l| l.spec.id.clone())
            .collect();
        if writers.is_empty() {
            others.push(p);
            continue;
        }
        let mut f = finding(
            "main_checkout_write",
            Severity::Error,
            format!(
                "{p} is changed in the main checkout and by agent(s) {} in their worktrees; one side will overwrite the other",
                writers.join(", ")
            ),
        );
        f.path = Some(p);
        f.agents = writers;
        f.worktree = Some(main.workdir.display().to_string());
        out.push(f);
    }
    if !others.is_empty() {
        let mut f = finding(
            "main_checkout_write",
            Severity::Warning,
            format!(
                "{} file(s) changed in the main checkout while agents work in worktrees ({})",
                others.len(),
                crate::git_check::sample(&others)
            ),
        );
        f.worktree = Some(main.workdir.display().to_string());
        f.paths = others;
        out.push(f);
    }
    Ok(out)
}
