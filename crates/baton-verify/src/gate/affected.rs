//! `--affected`: the files the batch changed, and the workspace packages their tests need.

use std::path::Path;

use baton_git::RepoPaths;
use guppy::graph::PackageGraph;

use crate::conflicts::ConflictsOutcome;
use crate::pairs::AgentFiles;

/// `packages` and every workspace package that depends on them, by name.
pub(super) fn reverse_dependents(graph: &PackageGraph, packages: &[String]) -> Vec<String> {
    let ids: Vec<_> = graph
        .workspace()
        .iter()
        .filter(|p| packages.iter().any(|n| n == p.name()))
        .map(|p| p.id())
        .collect();
    let Ok(query) = graph.query_reverse(ids) else {
        return packages.to_vec();
    };
    let mut names: Vec<String> = query
        .resolve()
        .packages(guppy::graph::DependencyDirection::Forward)
        .filter(|p| p.in_workspace())
        .map(|p| p.name().to_owned())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The files the batch changed: the agents' files, or (without agents) what this checkout
/// changed since `base`, committed or not.
pub(super) fn changed_files(
    repo: &RepoPaths,
    base: Option<git2::Oid>,
    outcome: Option<&ConflictsOutcome>,
) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    if let Some(o) = outcome.filter(|o| !o.lines.is_empty()) {
        for l in &o.lines {
            match &l.files {
                AgentFiles::Line(m) => {
                    for c in m.values() {
                        out.extend(c.touched().map(str::to_owned));
                    }
                }
                AgentFiles::Declared(v) => out.extend(v.iter().cloned()),
            }
        }
        return out.into_iter().collect();
    }
    if let Ok(r) = repo.open() {
        let head = r.head().ok().and_then(|h| h.target());
        if let Ok(changes) =
            baton_git::changes::line_changes(&r, base, head, Some(Path::new(&repo.workdir)))
        {
            for c in changes.values() {
                out.extend(c.touched().map(str::to_owned));
            }
        }
    }
    out.into_iter().collect()
}
