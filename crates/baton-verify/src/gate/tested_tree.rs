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
    let LaidOut { dir, env, scratch } =
        lay_out(repo, merger.repo(), &index, plan, scratch_dir, keep)
            .map_err(|e| format!("--merged: {e}"))?;
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

/// Lay out `commit`'s tree for the tests, like the merged result (same scratch directory,
/// lock file and build directory), for a caller that made the commit to test itself.
pub(super) fn prepare_commit(
    repo: &RepoPaths,
    commit: git2::Oid,
    plan: &TestsPlan,
    scratch_dir: &Path,
    keep: Option<&Path>,
) -> Result<MergedTree, String> {
    let what = format!("the commit to test, {commit}");
    let r = repo.open().map_err(|e| format!("{what}: {e}"))?;
    let tree = r
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(|e| format!("{what}: {}", e.message()))?;
    let mut index = git2::Index::new().map_err(|e| format!("{what}: {}", e.message()))?;
    index
        .read_tree(&tree)
        .map_err(|e| format!("{what}: {}", e.message()))?;
    let LaidOut { dir, env, scratch } =
        lay_out(repo, &r, &index, plan, scratch_dir, keep).map_err(|e| format!("{what}: {e}"))?;
    let tested = TestedTree {
        kind: "commit".to_owned(),
        commit: Some(commit.to_string()),
        tree: Some(tree.id().to_string()),
        uncommitted: false,
        agents: Vec::new(),
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

/// A tree laid out for the tests: where, cargo's environment, and the held scratch lock.
struct LaidOut {
    dir: PathBuf,
    env: Vec<(String, String)>,
    scratch: Scratch,
}

/// Sync `index` into the scratch tree (or `keep`), with the checkout's `Cargo.lock` when the
/// index has none; the environment points cargo at the scratch build directory.
fn lay_out(
    repo: &RepoPaths,
    objects: &git2::Repository,
    index: &git2::Index,
    plan: &TestsPlan,
    scratch_dir: &Path,
    keep: Option<&Path>,
) -> Result<LaidOut, String> {
    let scratch = Scratch::open(scratch_dir, &repo.common_dir).map_err(|e| e.to_string())?;
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
    scratch::sync_index(objects, index, &dir, &extra).map_err(|e| e.to_string())?;
    let mut env = Vec::new();
    if cargo {
        env.push((
            "CARGO_TARGET_DIR".to_owned(),
            scratch.target().display().to_string(),
        ));
    }
    Ok(LaidOut { dir, env, scratch })
}
