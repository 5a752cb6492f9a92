//! The git check: each code on a real repository, in the main checkout and in worktrees.

use std::time::{Duration, SystemTime};

use baton_tests::{TestRepo, write_file};

use super::{add_worktree, check_of, findings, verify_json};
use crate::support::baton;

fn git_findings(repo: &TestRepo, extra: &[&str]) -> (i32, Vec<(String, String, Option<String>)>) {
    let mut args = vec!["--check", "git"];
    args.extend_from_slice(extra);
    let (run, report) = verify_json(repo, &args);
    (run.code, findings(&report, "git"))
}

fn codes(found: &[(String, String, Option<String>)]) -> Vec<(&str, &str)> {
    found
        .iter()
        .map(|(c, s, _)| (c.as_str(), s.as_str()))
        .collect()
}

/// Two branches that change line 1 of `f.txt` differently; returns the other branch name.
fn diverge(repo: &TestRepo) -> &'static str {
    repo.write("f.txt", "base\n");
    repo.commit_all("add f");
    repo.git(&["branch", "other"]);
    repo.write("f.txt", "main side\n");
    repo.commit_all("main edits f");
    repo.git(&["checkout", "-q", "other"]);
    repo.write("f.txt", "other side\n");
    repo.commit_all("other edits f");
    repo.git(&["checkout", "-q", "main"]);
    "other"
}

#[test]
fn clean_repository_passes() {
    let repo = TestRepo::new();
    let (run, report) = verify_json(&repo, &["--check", "git"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(check_of(&report, "git")["status"], "pass");
    assert!(findings(&report, "git").is_empty());
    assert_eq!(report["ok"], true);
    assert_eq!(report["head"], repo.git(&["rev-parse", "HEAD"]));
}

#[test]
fn merge_conflict_reports_unmerged_paths_and_the_merge() {
    let repo = TestRepo::new();
    let other = diverge(&repo);
    let out = repo.git_output(repo.path(), &["merge", "-q", other]);
    assert!(!out.status.success(), "the merge should conflict");
    let (code, found) = git_findings(&repo, &[]);
    assert_eq!(code, 1);
    assert!(found.contains(&(
        "unmerged_paths".into(),
        "error".into(),
        Some("f.txt".into())
    )));
    assert!(codes(&found).contains(&("operation_in_progress", "error")));
    // the file with markers is unmerged: reported once as unmerged, not again as markers
    assert!(!codes(&found).iter().any(|(c, _)| *c == "conflict_markers"));
}

#[test]
fn every_operation_in_progress_is_an_error() {
    // rebase, cherry-pick, revert: each stopped on a conflict in its own worktree
    let repo = TestRepo::new();
    let other = diverge(&repo);
    let rebase = add_worktree(&repo, "rebasing", "rebasing");
    let pick = add_worktree(&repo, "picking", "picking");
    let revert = add_worktree(&repo, "reverting", "reverting");
    assert!(
        !repo
            .git_output(&rebase, &["rebase", other])
            .status
            .success()
    );
    assert!(
        !repo
            .git_output(&pick, &["cherry-pick", other])
            .status
            .success()
    );
    // reverting the commit before HEAD~0 that touched f.txt conflicts with main's later edit
    write_file(&revert, "f.txt", "third\n");
    repo.commit_all_in(&revert, "third edit");
    assert!(
        !repo
            .git_output(&revert, &["revert", "--no-edit", "HEAD~1"])
            .status
            .success()
    );
    let bisect = add_worktree(&repo, "bisecting", "bisecting");
    repo.git_in(&bisect, &["bisect", "start"]);

    let (run, report) = verify_json(&repo, &["--check", "git"]);
    assert_eq!(run.code, 1);
    let msgs: Vec<String> = check_of(&report, "git")["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "operation_in_progress")
        .map(|f| format!("{} {}", f["worktree"].as_str().unwrap(), f["message"]))
        .collect();
    for (dir, op) in [
        (&rebase, "a rebase"),
        (&pick, "a cherry-pick"),
        (&revert, "a revert"),
        (&bisect, "a bisect"),
    ] {
        assert!(
            msgs.iter()
                .any(|m| m.starts_with(dir.to_str().unwrap()) && m.contains(op)),
            "{op} in {} not reported: {msgs:#?}",
            dir.display()
        );
    }
}

#[test]
fn index_lock_is_reported_with_its_holder_or_as_stale() {
    let repo = TestRepo::new();
    let lock = repo.path().join(".git/index.lock");
    std::fs::write(&lock, "").unwrap();
    // git itself cannot take the lock, whatever its age: the next merge would fail. (Staging a
    // new file always writes the index; `update-index --refresh` only complains about the
    // lock when it has something to write, which depends on the clock: a flaky premise.)
    repo.write("staged.txt", "x\n");
    let blocked = repo.git_output(repo.path(), &["add", "staged.txt"]);
    assert!(!blocked.status.success(), "git took a held index.lock");
    std::fs::remove_file(repo.path().join("staged.txt")).unwrap();

    // young and open in a live process: held, naming the process
    let holder = std::process::Command::new("sleep")
        .arg("30")
        .stdin(std::fs::File::open(&lock).unwrap())
        .spawn()
        .unwrap();
    let mut holder = KillOnDrop(holder);
    let (code, found) = git_findings(&repo, &[]);
    assert_eq!(code, 1);
    assert_eq!(codes(&found), [("index_lock", "error")]);
    let pid = holder.0.id();
    let message = lock_message(&repo);
    assert!(message.contains(&format!("pid {pid} (sleep)")), "{message}");
    holder.0.kill().unwrap();
    holder.0.wait().unwrap();

    // young and open in no process: stale (a hook may be running), still blocking
    let (code, found) = git_findings(&repo, &[]);
    assert_eq!(code, 1);
    assert_eq!(codes(&found), [("stale_index_lock", "error")]);
    let message = lock_message(&repo);
    assert!(message.contains("young"), "{message}");

    // old and open in no process: stale
    let old = SystemTime::now() - Duration::from_secs(600);
    std::fs::File::options()
        .write(true)
        .open(&lock)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let (code, found) = git_findings(&repo, &[]);
    assert_eq!(code, 1);
    assert_eq!(codes(&found), [("stale_index_lock", "error")]);
}

/// The message of the git check's one finding.
fn lock_message(repo: &TestRepo) -> String {
    let (_, report) = verify_json(repo, &["--check", "git"]);
    check_of(&report, "git")["findings"][0]["message"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A child process killed when the test ends, even if it fails first.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn conflict_markers_in_modified_and_untracked_files_only() {
    let repo = TestRepo::new();
    let markers = "a\n<<<<<<< HEAD\nx\n=======\ny\n>>>>>>> other\n";
    // committed with markers and unmodified: not scanned (only changed files are read)
    repo.write("committed.txt", markers);
    repo.write("doc.md", "Title\n=======\n");
    repo.write("tracked.txt", "fine\n");
    repo.commit_all("files");
    repo.write("tracked.txt", markers);
    repo.write("new.txt", markers);
    repo.write("doc.md", "Title\n=======\n\nmore\n");
    let (run, report) = verify_json(&repo, &["--check", "git"]);
    assert_eq!(run.code, 1);
    let marked: Vec<(String, u64)> = check_of(&report, "git")["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "conflict_markers")
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        marked,
        [("new.txt".to_owned(), 2), ("tracked.txt".to_owned(), 2)]
    );
}

#[test]
fn uncommitted_and_untracked_are_warnings_that_strict_fails() {
    let repo = TestRepo::new();
    repo.write("README.md", "changed\n");
    repo.write("notes/new.txt", "new\n");
    let (code, found) = git_findings(&repo, &[]);
    assert_eq!(code, 0);
    assert_eq!(
        codes(&found),
        [
            ("uncommitted_changes", "warning"),
            ("untracked_files", "warning")
        ]
    );
    let (run, report) = verify_json(&repo, &["--check", "git", "--strict"]);
    assert_eq!(run.code, 1);
    assert_eq!(check_of(&report, "git")["status"], "fail");
    let untracked = &check_of(&report, "git")["findings"][1];
    assert_eq!(untracked["paths"], serde_json::json!(["notes/new.txt"]));
}

#[test]
fn detached_head_and_prunable_worktree_are_warnings() {
    let repo = TestRepo::new();
    let detached = repo.scratch("wt").join("detached");
    repo.git(&[
        "worktree",
        "add",
        "-q",
        "--detach",
        detached.to_str().unwrap(),
    ]);
    let gone = add_worktree(&repo, "gone", "gone");
    std::fs::remove_dir_all(&gone).unwrap();
    let (run, report) = verify_json(&repo, &["--check", "git"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let found = check_of(&report, "git")["findings"]
        .as_array()
        .unwrap()
        .clone();
    let by_code = |code: &str| -> Vec<String> {
        found
            .iter()
            .filter(|f| f["code"] == code)
            .map(|f| f["worktree"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(by_code("detached_head"), [detached.display().to_string()]);
    assert_eq!(by_code("prunable_worktree"), [gone.display().to_string()]);
    // git agrees the worktree is prunable
    let porcelain = repo.git(&["worktree", "list", "--porcelain"]);
    assert!(porcelain.contains("prunable"), "{porcelain}");
}

#[test]
fn problems_in_a_linked_worktree_are_reported_with_its_path() {
    let repo = TestRepo::new();
    let wt = add_worktree(&repo, "agent", "agent/x");
    write_file(&wt, "README.md", "<<<<<<< a\n=======\n>>>>>>> b\n");
    let (run, report) = verify_json(&repo, &["--check", "git"]);
    assert_eq!(run.code, 1);
    let f = &check_of(&report, "git")["findings"][0];
    assert_eq!(f["code"], "conflict_markers");
    assert_eq!(f["worktree"], wt.display().to_string());
    // human output: one line per finding and the verdict
    let human = baton(&repo, &["verify", "--check", "git", "--color", "never"]);
    assert_eq!(human.code, 1);
    assert!(
        human
            .stdout
            .contains("error conflict_markers: README.md in agent"),
        "{}",
        human.stdout
    );
    assert!(
        human
            .stdout
            .contains("verify FAILED (git): 1 error, 1 warning"),
        "{}",
        human.stdout
    );
}

#[test]
fn not_a_repository_is_exit_3_and_bad_base_is_exit_2() {
    let repo = TestRepo::new();
    let outside = repo.scratch("outside");
    let run = crate::support::baton_in(&repo, &outside, &["verify", "--check", "git"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("not inside a git repository"),
        "{}",
        run.stderr
    );
    let run = baton(
        &repo,
        &["verify", "--check", "conflicts", "--base", "no-such-ref"],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("no-such-ref"), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
}

/// Big enough for the stat pre-pass (2048+ index entries): the git check's view of changed
/// and untracked files matches `git status`, in the main checkout and in a linked worktree.
#[test]
fn big_checkouts_agree_with_git_status() {
    let repo = TestRepo::new();
    for i in 0..2100 {
        repo.write(
            &format!("src/d{:02}/f{i:04}.txt", i % 30),
            &format!("file {i}\n"),
        );
    }
    repo.write(".gitignore", "*.log\n");
    repo.commit_all("many files");
    let wt = add_worktree(&repo, "big", "big");
    for dir in [repo.path().to_path_buf(), wt.clone()] {
        write_file(&dir, "src/d03/f0003.txt", "changed\n");
        std::fs::remove_file(dir.join("src/d04/f0004.txt")).unwrap();
        write_file(&dir, "src/d05/new.txt", "new\n");
        write_file(&dir, "brand/new/dir.txt", "new\n");
        write_file(&dir, "src/d06/noise.log", "ignored\n");
        write_file(&dir, "staged.txt", "staged\n");
        repo.git_in(&dir, &["add", "staged.txt"]);
    }
    let before = super::snapshot(&repo.path().join(".git"));
    let (run, report) = verify_json(&repo, &["--check", "git"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        super::snapshot(&repo.path().join(".git")),
        before,
        "verify wrote under .git"
    );
    for dir in [repo.path().to_path_buf(), wt] {
        let porcelain = repo.git_in(&dir, &["status", "--porcelain", "-uall"]);
        let mut git_tracked: Vec<String> = Vec::new();
        let mut git_untracked: Vec<String> = Vec::new();
        for line in porcelain.lines() {
            let path = line[3..].to_owned();
            if line.starts_with("??") {
                git_untracked.push(path);
            } else {
                git_tracked.push(path);
            }
        }
        let ours = |code: &str| -> Vec<String> {
            let mut v: Vec<String> = check_of(&report, "git")["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["code"] == code && f["worktree"] == dir.display().to_string())
                .flat_map(|f| f["paths"].as_array().unwrap().clone())
                .map(|p| p.as_str().unwrap().to_owned())
                .collect();
            v.sort();
            v
        };
        git_tracked.sort();
        git_untracked.sort();
        assert_eq!(
            ours("uncommitted_changes"),
            git_tracked,
            "in {}",
            dir.display()
        );
        assert_eq!(
            ours("untracked_files"),
            git_untracked,
            "in {}",
            dir.display()
        );
    }
}
