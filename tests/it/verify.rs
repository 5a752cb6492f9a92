//! End-to-end tests of `baton verify`: the real binary on real repositories with real
//! worktrees. Submodules by check: git state, conflicts (cross-checked against
//! `git merge-tree`), tests, and output formats.

mod agents;
mod conflicts;
mod gate_api;
mod git_state;
mod git_truth;
mod output;
mod replay;
mod tests_cargo;
mod tests_python;
mod tests_rust;
mod tests_step;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use baton_tests::TestRepo;
use serde_json::Value;

use crate::support::{Run, baton};

/// Run `baton verify ARGS --json` and return the run and the report.
pub fn verify_json(repo: &TestRepo, args: &[&str]) -> (Run, Value) {
    let mut all = vec!["verify"];
    all.extend_from_slice(args);
    all.push("--json");
    let run = baton(repo, &all);
    let report = run.json();
    (run, report)
}

/// The findings of one check as `(code, severity, path)`.
pub fn findings(report: &Value, check: &str) -> Vec<(String, String, Option<String>)> {
    check_of(report, check)["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap_or_default().to_owned(),
                f["severity"].as_str().unwrap_or_default().to_owned(),
                f["path"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// One check of a report, by name (panics with the report if missing).
#[track_caller]
pub fn check_of<'r>(report: &'r Value, name: &str) -> &'r Value {
    report["checks"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no {name} check in {report:#}"))
}

/// Add a linked worktree on a new branch beside the repository; returns its path.
pub fn add_worktree(repo: &TestRepo, name: &str, branch: &str) -> PathBuf {
    let path = repo.scratch("wt").join(name);
    repo.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        branch,
        path.to_str().unwrap(),
    ]);
    path
}

/// Every file under `dir` with its length and modification time: to prove nothing changed.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, std::time::SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                out.insert(entry.path(), (meta.len(), meta.modified().unwrap()));
            }
        }
    }
    out
}
