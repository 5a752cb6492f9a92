//! The tree the tests step tests: the checkout as it is, or the agents' work merged onto the
//! base and laid out in the repository's stable scratch directory (or `--keep-merged`), and
//! how the report names it (`TestedTree`).

use std::path::{Path, PathBuf};

use baton_git::RepoPaths;
use baton_report::{Finding, Severity, TestedTree};

use crate::conflicts::ConflictsOutcome;
use crate::findings::finding;
use crate::merged::{Merged, merge_lines};
use crate::pairs::AgentFiles;
use crate::scratch::{self, Scratch};
use crate::tests_check::{Runner, TestsPlan};

pub(super) fn checkout_tree(repo: &RepoPaths) -> TestedTree {
    let (commit, uncommitted) = match repo.open() {
        Ok(r) => {
            let head = r.head().ok().and_then(|h| h.target());
            let mut opts = git2::StatusOptions::new();
            opts.include_untracked(true).include_ignored(false);
            let dirty = r.statuses(Some(&mut opts)).is_ok_and(|s| !s.is_empty());
            (head.map(|o| o.to_string()), dirty)
        }
        Err(_) => (None, false),
    };
    TestedTree {
        kind: "checkout".to_owned(),
        commit,
        tree: None,
        uncommitted,
        agents: Vec::new(),
        dir: repo.workdir.display().to_string(),
        kept: false,
    }
}

pub(super) enum MergedTree {
    Ready {
        dir: PathBuf,
        env: Vec<(String, String)>,
        tested: Box<TestedTree>,
        scratch: Scratch,
    },
    NotApplicable,
    Conflicts(Vec<Finding>),
}

/// Merge the agents' work onto `base` and lay it out for the tests: in the repository's
/// stable scratch tree (or `keep` when given), with the checkout's `Cargo.lock` when the
/// merged tree has none, and a stable build directory for cargo.
pub(super) fn prepare_merged(
    repo: &RepoPaths,
    base: git2::Oid,
    outcome: &ConflictsOutcome,
    plan: &TestsPlan,
    scratch_dir: &Path,
    keep: Option<&Path>,
) -> Result<MergedTree, String> {
    let (merger, index) = match merge_lines(repo, base, &outcome.lines)
        .map_err(|e| e.to_string())?
    {
        Merged::NotApplicable => return Ok(MergedTree::NotApplicable),
        Merged::Conflicts(paths) => {
            let findings = paths
                .into_iter()
                .map(|(p, agents)| {
                    let mut f = finding(
                        "merge_conflict",
                        Severity::Error,
                        format!(
                            "{p}: the agents' changes do not merge ({}); the merged result cannot be tested",
                            agents.join(", ")
                        ),
                    );
                    f.path = Some(p);
                    f.agents = agents;
                    f
                })
                .collect();
            return Ok(MergedTree::Conflicts(findings));
        }
        Merged::Clean { merger, index } => (merger, index),
    };
    let tree = scratch::tree_id(&index).map_err(|e| format!("--merged: {e}"))?;
    let scratch =
        Scratch::open(scratch_dir, &repo.common_dir).map_err(|e| format!("--merged: {e}"))?;
    if let Some(cache) = scratch_dir.parent() {
        scratch::prune_orphans(cache);
    }
    let dir = keep.map_or_else(|| scratch.tree(), Path::to_owned);
    let mut extra = Vec::new();
    let cargo = matches!(plan.runner, Runner::Nextest | Runner::CargoTest);
    if cargo && index.get_path(Path::new("Cargo.lock"), 0).is_none() {
        // the checkout's own (untracked) lock file: test the dependency versions the user has
        if let Ok(bytes) = std::fs::read(repo.workdir.join("Cargo.lock")) {
            extra.push(("Cargo.lock".to_owned(), bytes));
        }
    }
    scratch::sync_index(merger.repo(), &index, &dir, &extra)
        .map_err(|e| format!("--merged: {e}"))?;
    let mut env = Vec::new();
    if cargo {
        env.push((
            "CARGO_TARGET_DIR".to_owned(),
            scratch.target().display().to_string(),
        ));
    }
    let tested = TestedTree {
        kind: "merged".to_owned(),
        commit: Some(base.to_string()),
        tree: Some(tree.to_string()),
        uncommitted: outcome.lines.iter().any(|l| match &l.files {
            AgentFiles::Line(m) => m.values().any(|c| c.uncommitted),
            AgentFiles::Declared(_) => false,
        }),
        agents: outcome.lines.iter().map(|l| l.spec.id.clone()).collect(),
        dir: dir.display().to_string(),
        kept: keep.is_some(),
    };
    Ok(MergedTree::Ready {
        dir,
        env,
        tested: Box::new(tested),
        scratch,
    })
}
