//! Helpers shared by the worktree tests: creating worktrees with the real CLI, owner
//! processes, and the "no commit is ever lost" check, done with the git CLI.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command};

use baton_tests::TestRepo;
use serde_json::Value;

use crate::support::baton;

/// `baton worktree create NAME` (from main); returns the worktree's path.
pub fn create(repo: &TestRepo, name: &str) -> PathBuf {
    let out = baton(repo, &["--json", "worktree", "create", name]).expect_code(0);
    PathBuf::from(out.json()["created"][0]["path"].as_str().expect("path"))
}

/// The worktree root baton uses by default: the sibling `<repo>.baton-worktrees`.
pub fn root(repo: &TestRepo) -> PathBuf {
    repo.path().with_file_name("repo.baton-worktrees")
}

/// A real child process to act as a worktree owner. Killed on drop.
pub struct Owner(pub Child);

impl Owner {
    pub fn spawn() -> Owner {
        Owner(
            Command::new("sleep")
                .arg("600")
                .spawn()
                .expect("spawn sleep"),
        )
    }
    pub fn pid(&self) -> String {
        self.0.id().to_string()
    }
    /// Kill and reap it: its pid is then dead (or, if reused, has another start time).
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Every commit on each local branch that is not on `main`, by branch.
pub fn commits_off_main(repo: &TestRepo) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for b in repo
        .git(&["for-each-ref", "--format=%(refname:short)", "refs/heads/"])
        .lines()
    {
        if b == "main" {
            continue;
        }
        let commits: Vec<String> = repo
            .git(&["rev-list", b, "^main"])
            .lines()
            .map(str::to_owned)
            .collect();
        out.insert(b.to_owned(), commits);
    }
    out
}

/// After a cleanup: every commit that was on an agent branch is still reachable from some ref,
/// unless its branch was integrated (`integrated` lists squash-merged branches, whose commits
/// may go because their content is on main).
#[track_caller]
pub fn assert_nothing_lost(
    repo: &TestRepo,
    before: &BTreeMap<String, Vec<String>>,
    integrated: &[&str],
) {
    let all: Vec<String> = repo
        .git(&["rev-list", "--all"])
        .lines()
        .map(str::to_owned)
        .collect();
    for (branch, commits) in before {
        if integrated.contains(&branch.as_str()) {
            continue;
        }
        for c in commits {
            assert!(
                all.contains(c),
                "commit {c} of branch {branch} is no longer reachable from any ref"
            );
        }
    }
}

/// `git worktree list --porcelain`, as (path, branch-or-detached) pairs.
pub fn git_worktrees(repo: &TestRepo) -> Vec<(PathBuf, String)> {
    let text = repo.git(&["worktree", "list", "--porcelain"]);
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut path = None;
        let mut head = String::new();
        for line in block.lines() {
            if let Some(p) = line.strip_prefix("worktree ") {
                path = Some(PathBuf::from(p));
            } else if let Some(b) = line.strip_prefix("branch refs/heads/") {
                head = b.to_owned();
            } else if line == "detached" {
                head = "(detached)".to_owned();
            } else if line.starts_with("prunable") {
                head.push_str(" prunable");
            }
        }
        if let Some(p) = path {
            out.push((p, head));
        }
    }
    out
}

pub fn branch_exists(repo: &TestRepo, branch: &str) -> bool {
    repo.git_output(
        repo.path(),
        &[
            "rev-parse",
            "--verify",
            "-q",
            &format!("refs/heads/{branch}"),
        ],
    )
    .status
    .success()
}

/// The JSON object of one worktree in `baton worktree list --json`, by name.
pub fn listed(list: &Value, name: &str) -> Value {
    list["worktrees"]
        .as_array()
        .expect("worktrees")
        .iter()
        .find(|w| w["name"] == name)
        .unwrap_or_else(|| panic!("{name} not listed in {list:#}"))
        .clone()
}

/// Names of the actions / kept entries of a cleanup report, with their kind / reason.
pub fn outcome(report: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for a in report["actions"].as_array().expect("actions") {
        let branch = if a["delete_branch"] == true {
            "+branch".to_owned()
        } else {
            a["branch_kept"]
                .as_str()
                .map(|r| format!(" keep-branch:{r}"))
                .unwrap_or_default()
        };
        out.insert(
            a["name"].as_str().expect("name").to_owned(),
            format!("{}{branch}", a["kind"].as_str().expect("kind")),
        );
    }
    for k in report["kept"].as_array().expect("kept") {
        out.insert(
            k["name"].as_str().expect("name").to_owned(),
            format!("keep:{}", k["reason"].as_str().expect("reason")),
        );
    }
    out
}

/// Every worktree git knows is valid: listed without "prunable", clean, on its branch; and
/// the repository passes `git fsck`.
#[track_caller]
pub fn assert_all_valid(repo: &TestRepo, expected_linked: usize) {
    let listed = git_worktrees(repo);
    assert_eq!(listed.len(), expected_linked + 1, "{listed:?}");
    for (path, head) in &listed[1..] {
        // the index's stat data matches the files exactly (diff-files never refreshes it)
        assert_eq!(
            repo.git_in(path, &["diff-files", "--name-only"]),
            "",
            "{path:?} index is stale"
        );
        assert!(
            !head.contains("prunable") && !head.is_empty(),
            "{path:?}: {head}"
        );
        assert_eq!(
            repo.git_in(path, &["status", "--porcelain"]),
            "",
            "{path:?} is not clean"
        );
        assert_eq!(
            repo.git_in(path, &["rev-parse", "--abbrev-ref", "HEAD"]),
            *head
        );
    }
    repo.git(&["fsck", "--no-progress", "--strict"]);
}

pub fn repo_with_files() -> TestRepo {
    let repo = TestRepo::new();
    for i in 0..200 {
        repo.write(&format!("src/d{}/f{i}.txt", i % 10), &format!("file {i}\n"));
    }
    repo.commit_all("many files");
    repo
}
