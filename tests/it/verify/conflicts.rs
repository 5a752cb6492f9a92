//! The conflicts check: each case of two (or three) agents writing one file, decided by an
//! in-memory three-way merge and cross-checked against `git merge-tree --write-tree` on the
//! same two lines of work (uncommitted state committed to branches after baton has run).

use std::path::{Path, PathBuf};

use baton_tests::{TestRepo, write_file};
use serde_json::Value;

use super::{add_worktree, check_of, snapshot, verify_json};

pub(super) const TEN: &str = "l1\nl2\nl3\nl4\nl5\nl6\nl7\nl8\nl9\nl10\n";

/// A multi_writer finding: path, agents, overlap.
pub(super) type Meeting = (String, Vec<String>, String);

/// A repository whose base commit has `f.txt` (ten lines) and `other.txt`, and one worktree
/// per agent on a branch named like the agent.
pub(super) struct Batch {
    pub repo: TestRepo,
    agents: Vec<(String, PathBuf)>,
}

impl Batch {
    pub fn new(ids: &[&str]) -> Self {
        let repo = TestRepo::new();
        repo.write("f.txt", TEN);
        repo.write("other.txt", "other\n");
        repo.commit_all("base");
        let agents = ids
            .iter()
            .map(|id| (id.to_string(), add_worktree(&repo, id, id)))
            .collect();
        Batch { repo, agents }
    }

    pub fn dir(&self, id: &str) -> &Path {
        &self.agents.iter().find(|(a, _)| a == id).unwrap().1
    }

    /// Replace line `n` (1-based) of f.txt in the agent's worktree.
    pub fn edit_line(&self, id: &str, n: usize, text: &str) {
        let path = self.dir(id).join("f.txt");
        let content = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<&str> = content.lines().collect();
        lines[n - 1] = text;
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    }

    pub fn commit(&self, id: &str) {
        self.repo
            .commit_all_in(self.dir(id), &format!("{id} works"));
    }

    /// Run the conflicts check; return the multi_writer findings as (path, agents, overlap).
    pub fn verify(&self) -> (i32, Value, Vec<Meeting>) {
        let (run, report) = verify_json(&self.repo, &["--check", "conflicts"]);
        assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
        let found = check_of(&report, "conflicts")["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["code"] == "multi_writer")
            .map(|f| {
                (
                    f["path"].as_str().unwrap().to_owned(),
                    f["agents"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|a| a.as_str().unwrap().to_owned())
                        .collect(),
                    f["overlap"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        (run.code, report, found)
    }

    /// What `git merge-tree --write-tree` says about merging two agents' work, after
    /// committing whatever each left uncommitted: `conflict` or `clean`.
    fn git_says(&self, a: &str, b: &str) -> &'static str {
        for id in [a, b] {
            self.repo
                .commit_all_in(self.dir(id), "commit for the cross-check");
        }
        let out = self
            .repo
            .git_output(self.repo.path(), &["merge-tree", "--write-tree", a, b]);
        match out.status.code() {
            Some(0) => "clean",
            Some(1) => "conflict",
            other => panic!(
                "git merge-tree failed ({other:?}): {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }
}

/// Run baton, then ask git, for one pair that meets on `path`; assert both agree on
/// `expected`.
#[track_caller]
fn check_pair(batch: &Batch, path: &str, expected: &str) {
    let (code, _, found) = batch.verify();
    assert_eq!(
        found,
        [(
            path.to_owned(),
            vec!["a".to_owned(), "b".to_owned()],
            expected.to_owned()
        )],
    );
    assert_eq!(code, if expected == "conflict" { 1 } else { 0 });
    assert_eq!(
        batch.git_says("a", "b"),
        expected,
        "git disagrees with baton"
    );
}

#[test]
fn same_line_conflicts() {
    let b = Batch::new(&["a", "b"]);
    b.edit_line("a", 2, "A");
    b.commit("a");
    b.edit_line("b", 2, "B");
    b.commit("b");
    check_pair(&b, "f.txt", "conflict");
}

#[test]
fn adjacent_lines_conflict() {
    let b = Batch::new(&["a", "b"]);
    b.edit_line("a", 4, "A");
    b.commit("a");
    b.edit_line("b", 5, "B");
    b.commit("b");
    check_pair(&b, "f.txt", "conflict");
}

#[test]
fn disjoint_hunks_merge_cleanly_as_a_warning() {
    let b = Batch::new(&["a", "b"]);
    b.edit_line("a", 1, "A");
    b.commit("a");
    b.edit_line("b", 9, "B");
    b.commit("b");
    let (_, report, _) = b.verify();
    let f = &check_of(&report, "conflicts")["findings"][0];
    assert_eq!(f["severity"], "warning");
    assert_eq!(check_of(&report, "conflicts")["status"], "warn");
    check_pair(&b, "f.txt", "clean");
}

#[test]
fn delete_vs_modify_conflicts() {
    let b = Batch::new(&["a", "b"]);
    b.repo.git_in(b.dir("a"), &["rm", "-q", "f.txt"]);
    b.commit("a");
    b.edit_line("b", 3, "B");
    b.commit("b");
    check_pair(&b, "f.txt", "conflict");
}

#[test]
fn rename_is_followed_to_an_edit_elsewhere_in_the_file() {
    let b = Batch::new(&["a", "b"]);
    b.repo.git_in(b.dir("a"), &["mv", "f.txt", "renamed.txt"]);
    b.commit("a");
    b.edit_line("b", 8, "B");
    b.commit("b");
    let (_, report, _) = b.verify();
    let msg = check_of(&report, "conflicts")["findings"][0]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(msg.contains("a renamed it to renamed.txt"), "{msg}");
    check_pair(&b, "f.txt", "clean");
}

#[test]
fn rename_and_edit_of_the_same_line_conflict() {
    let b = Batch::new(&["a", "b"]);
    b.repo.git_in(b.dir("a"), &["mv", "f.txt", "renamed.txt"]);
    write_file(b.dir("a"), "renamed.txt", &TEN.replace("l2\n", "A\n"));
    b.commit("a");
    b.edit_line("b", 2, "B");
    b.commit("b");
    check_pair(&b, "f.txt", "conflict");
}

#[test]
fn uncommitted_changes_count() {
    let b = Batch::new(&["a", "b"]);
    b.edit_line("a", 6, "A");
    b.edit_line("b", 6, "B");
    let (_, report, _) = b.verify();
    let agents = check_of(&report, "conflicts")["agents"]
        .as_array()
        .unwrap()
        .clone();
    assert!(agents.iter().all(|a| a["uncommitted"] == 1), "{agents:#?}");
    check_pair(&b, "f.txt", "conflict");
}

#[test]
fn untracked_files_count() {
    let b = Batch::new(&["a", "b"]);
    write_file(b.dir("a"), "src/new.rs", "fn a() {}\n");
    write_file(b.dir("b"), "src/new.rs", "fn b() {}\n");
    check_pair(&b, "src/new.rs", "conflict");
}

#[test]
fn identical_untracked_files_merge_cleanly() {
    let b = Batch::new(&["a", "b"]);
    write_file(b.dir("a"), "same.txt", "same\n");
    write_file(b.dir("b"), "same.txt", "same\n");
    check_pair(&b, "same.txt", "clean");
}

#[test]
fn three_agents_on_one_file_are_reported_per_pair() {
    let b = Batch::new(&["a", "b", "c"]);
    b.edit_line("a", 1, "A");
    b.commit("a");
    b.edit_line("b", 7, "B");
    b.commit("b");
    b.edit_line("c", 7, "C");
    b.commit("c");
    let (code, _, mut found) = b.verify();
    found.sort();
    assert_eq!(code, 1);
    let s = |x: &str| x.to_owned();
    assert_eq!(
        found,
        [
            (s("f.txt"), vec![s("a"), s("b")], s("clean")),
            (s("f.txt"), vec![s("a"), s("c")], s("clean")),
            (s("f.txt"), vec![s("b"), s("c")], s("conflict")),
        ]
    );
    for (x, y, expected) in [
        ("a", "b", "clean"),
        ("a", "c", "clean"),
        ("b", "c", "conflict"),
    ] {
        assert_eq!(b.git_says(x, y), expected, "{x} vs {y}");
    }
}

#[test]
fn disjoint_files_are_not_findings_and_nothing_on_disk_changes() {
    let b = Batch::new(&["a", "b"]);
    b.edit_line("a", 1, "A");
    write_file(b.dir("b"), "other.txt", "changed, not committed\n");
    write_file(b.dir("b"), "f.txt", &TEN.replace("l9", "B"));
    let git_dir = b.repo.path().join(".git");
    let before = snapshot(&git_dir);
    let (code, report, found) = b.verify();
    assert_eq!(
        snapshot(&git_dir),
        before,
        "verify changed files under .git"
    );
    assert_eq!(code, 0);
    assert_eq!(found.len(), 1, "{report:#}");
    // an object for an uncommitted version was hashed in memory, not written
    let a_blob = b.repo.git_in(b.dir("a"), &["hash-object", "f.txt"]);
    let out = b
        .repo
        .git_output(b.repo.path(), &["cat-file", "-e", &a_blob]);
    assert!(
        !out.status.success(),
        "the uncommitted blob must not be in the object store"
    );
}
