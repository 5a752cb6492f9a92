//! Helpers shared by the worktree tests: creating worktrees with the real CLI, owner
//! processes, and the "no commit is ever lost" check, done with the git CLI.

use std::collections::{BTreeMap, BTreeSet};
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

/// The whole-repo audit: every commit reachable before a cleanup (from any ref, any worktree's
/// HEAD, any submodule's HEAD) is checked afterwards. A commit that became unreachable must be
/// integrated into the target — merging it changes nothing, with git's own `merge-tree` as the
/// oracle — and a submodule commit must still exist in some module store or the submodule's
/// origin. Take it with [`Audit::before`], check it with [`Audit::after`] after every cleanup.
pub struct Audit {
    commits: BTreeSet<String>,
    /// (submodule name, commit it had checked out)
    submodule_heads: BTreeSet<(String, String)>,
}

impl Audit {
    pub fn before(repo: &TestRepo) -> Audit {
        Audit {
            commits: reachable(repo),
            submodule_heads: submodule_heads(repo),
        }
    }

    /// Check the repository now against the snapshot; `target` is the branch work may have
    /// been integrated into.
    #[track_caller]
    pub fn after(&self, repo: &TestRepo, target: &str) {
        let now = reachable(repo);
        let target_tree = repo.git(&["rev-parse", &format!("{target}^{{tree}}")]);
        let lost: Vec<&String> = self.commits.difference(&now).collect();
        let integrated: Vec<&String> = lost
            .iter()
            .copied()
            .filter(|c| {
                let out = repo.git_output(
                    repo.path(),
                    &[
                        "merge-tree",
                        "--write-tree",
                        "--allow-unrelated-histories",
                        target,
                        c,
                    ],
                );
                out.status.success()
                    && String::from_utf8_lossy(&out.stdout).lines().next() == Some(&target_tree)
            })
            .collect();
        for c in &lost {
            // an earlier commit of an integrated branch is covered by its integrated tip
            let covered = integrated.iter().any(|d| {
                d == c
                    || repo
                        .git_output(repo.path(), &["merge-base", "--is-ancestor", c, d])
                        .status
                        .success()
            });
            assert!(
                covered,
                "commit {c} became unreachable and its content is not in {target}"
            );
        }
        let stores = module_stores(repo);
        for (name, c) in &self.submodule_heads {
            let found = stores.iter().any(|s| {
                repo.git_output(
                    repo.path(),
                    &[
                        "--git-dir",
                        s.to_str().expect("utf-8 path"),
                        "cat-file",
                        "-e",
                        &format!("{c}^{{commit}}"),
                    ],
                )
                .status
                .success()
            });
            assert!(
                found,
                "submodule {name} commit {c} exists in no module store any more"
            );
        }
        // and git finds the repository sound
        repo.git(&["fsck", "--no-progress", "--connectivity-only"]);
    }
}

/// Every commit reachable from any ref or any worktree's HEAD.
fn reachable(repo: &TestRepo) -> BTreeSet<String> {
    let mut args = vec!["rev-list".to_owned(), "--all".to_owned()];
    for line in repo.git(&["worktree", "list", "--porcelain"]).lines() {
        if let Some(h) = line.strip_prefix("HEAD ") {
            args.push(h.to_owned());
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    repo.git(&args).lines().map(str::to_owned).collect()
}

/// The HEAD of every initialised submodule of every worktree.
fn submodule_heads(repo: &TestRepo) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (wt, _) in git_worktrees(repo) {
        if !wt.join(".gitmodules").exists() {
            continue;
        }
        let text = repo.git_in(
            &wt,
            &[
                "submodule",
                "foreach",
                "--quiet",
                "echo \"$name $(git rev-parse HEAD)\"",
            ],
        );
        for line in text.lines() {
            if let Some((name, head)) = line.split_once(' ') {
                out.insert((name.to_owned(), head.to_owned()));
            }
        }
    }
    out
}

/// Every module store that still exists: the main one, each worktree's, and the submodules'
/// origins named in `.gitmodules`.
fn module_stores(repo: &TestRepo) -> Vec<PathBuf> {
    let common =
        PathBuf::from(repo.git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]));
    let mut out = Vec::new();
    let mut dirs = vec![common.join("modules")];
    if let Ok(read) = std::fs::read_dir(common.join("worktrees")) {
        dirs.extend(read.flatten().map(|e| e.path().join("modules")));
    }
    for d in dirs {
        if let Ok(read) = std::fs::read_dir(&d) {
            out.extend(read.flatten().map(|e| e.path()));
        }
    }
    let urls = repo.git_output(
        repo.path(),
        &["config", "-f", ".gitmodules", "--get-regexp", "url"],
    );
    for line in String::from_utf8_lossy(&urls.stdout).lines() {
        if let Some((_, url)) = line.split_once(' ') {
            let url = PathBuf::from(url);
            // a non-bare origin keeps its objects in `.git`
            let dotgit = url.join(".git");
            out.push(if dotgit.is_dir() { dotgit } else { url });
        }
    }
    out
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
