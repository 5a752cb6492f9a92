//! The gate's verdict equals git's, class by class (issue 9): each case runs the real binary
//! and asks git itself (`git merge-tree --write-tree`, `git status`) on the same repository.

use std::path::Path;

use baton_tests::{TestRepo, write_file};

use super::conflicts::TEN;
use super::{add_worktree, check_of, findings, verify_json};
use crate::support::baton_in;

/// `git merge-tree --write-tree a b`: true when it conflicts.
fn git_conflicts(repo: &TestRepo, a: &str, b: &str) -> bool {
    let out = repo.git_output(repo.path(), &["merge-tree", "--write-tree", a, b]);
    match out.status.code() {
        Some(0) => false,
        Some(1) => true,
        other => panic!(
            "git merge-tree failed ({other:?}): {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// The multi_writer findings of a report as `(path, overlap)`.
fn meetings(report: &serde_json::Value) -> Vec<(String, String)> {
    check_of(report, "conflicts")["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "multi_writer")
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["overlap"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A base with `f.txt` (ten lines) and worktrees `a` and `b` on branches of those names.
fn two_agents() -> (TestRepo, std::path::PathBuf, std::path::PathBuf) {
    let repo = TestRepo::new();
    repo.write("f.txt", TEN);
    repo.commit_all("base");
    let a = add_worktree(&repo, "a", "a");
    let b = add_worktree(&repo, "b", "b");
    (repo, a, b)
}

fn edit_line(dir: &Path, n: usize, text: &str) {
    let mut lines: Vec<String> = TEN.lines().map(str::to_owned).collect();
    lines[n - 1] = text.to_owned();
    write_file(dir, "f.txt", &(lines.join("\n") + "\n"));
}

#[test]
fn the_base_is_the_main_checkout_wherever_verify_runs() {
    let (repo, a, b) = two_agents();
    edit_line(&a, 2, "A");
    repo.commit_all_in(&a, "a");
    edit_line(&b, 2, "B");
    repo.commit_all_in(&b, "b");
    assert!(git_conflicts(&repo, "a", "b"));
    let a_str = a.to_str().unwrap();
    for (dir, extra) in [
        (repo.path(), vec![]),
        (a.as_path(), vec![]),
        (repo.path(), vec!["--repo", a_str]),
    ] {
        let mut args = vec!["verify", "--check", "conflicts", "--json"];
        args.extend(extra.iter().copied());
        let run = baton_in(&repo, dir, &args);
        assert_eq!(run.code, 1, "from {}: {}", dir.display(), run.stderr);
        assert_eq!(
            meetings(&run.json()),
            [("f.txt".to_owned(), "conflict".to_owned())],
            "from {}",
            dir.display()
        );
    }
}

#[test]
fn a_file_and_a_directory_of_one_name_conflict_committed_or_not() {
    let (repo, a, b) = two_agents();
    write_file(&a, "p", "a file\n");
    repo.commit_all_in(&a, "a adds the file p");
    write_file(&b, "p/x", "inside a directory p\n");
    // uncommitted first
    let (run, report) = verify_json(&repo, &["--check", "conflicts"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(meetings(&report), [("p".to_owned(), "conflict".to_owned())]);
    repo.commit_all_in(&b, "b adds p/x");
    let (run, report) = verify_json(&repo, &["--check", "conflicts"]);
    assert_eq!(run.code, 1);
    assert_eq!(meetings(&report), [("p".to_owned(), "conflict".to_owned())]);
    assert!(git_conflicts(&repo, "a", "b"), "git merges it cleanly");
}

#[test]
fn an_empty_file_moved_is_not_a_rename() {
    // the repro: base has an empty d/.keep; a moves it, b deletes it or fills it
    for (fill, git_says_conflict) in [(false, false), (true, true)] {
        let repo = TestRepo::new();
        repo.write("f.txt", TEN);
        repo.write("d/.keep", "");
        repo.commit_all("base");
        let a = add_worktree(&repo, "a", "a");
        let b = add_worktree(&repo, "b", "b");
        std::fs::create_dir_all(a.join("e")).unwrap();
        repo.git_in(&a, &["mv", "d/.keep", "e/.keep"]);
        repo.commit_all_in(&a, "a moves the empty file");
        if fill {
            write_file(&b, "d/.keep", "filled\n");
        } else {
            repo.git_in(&b, &["rm", "-q", "d/.keep"]);
        }
        repo.commit_all_in(&b, "b");
        assert_eq!(git_conflicts(&repo, "a", "b"), git_says_conflict);
        let (run, report) = verify_json(&repo, &["--check", "conflicts"]);
        let conflicts = meetings(&report)
            .iter()
            .any(|(_, overlap)| overlap == "conflict");
        assert_eq!(conflicts, git_says_conflict, "fill={fill}: {report:#}");
        assert_eq!(run.code, i32::from(git_says_conflict));
    }
}

#[test]
fn a_file_moved_and_reindented_is_not_a_rename() {
    let (repo, a, b) = two_agents();
    let body: String = (0..30)
        .map(|i| format!("fn f{i}() -> u32 {{ {i} }}\n"))
        .collect();
    write_file(&a, "lib.rs", &body);
    repo.commit_all_in(&a, "a adds lib.rs");
    repo.git(&["merge", "-q", "--ff-only", "a"]);
    repo.git_in(&b, &["merge", "-q", "--ff-only", "a"]);
    // a wraps it in a module (every line re-indented) in a new file; b edits the original
    let wrapped: String = std::iter::once("mod inner {\n".to_owned())
        .chain(body.lines().map(|l| format!("    {l}\n")))
        .chain(std::iter::once("}\n".to_owned()))
        .collect();
    repo.git_in(&a, &["rm", "-q", "lib.rs"]);
    write_file(&a, "inner.rs", &wrapped);
    repo.commit_all_in(&a, "a wraps lib.rs into inner.rs");
    write_file(&b, "lib.rs", &body.replace("f3()", "g3()"));
    repo.commit_all_in(&b, "b edits lib.rs");
    // git sees no rename: a deleted what b modified
    assert!(git_conflicts(&repo, "a", "b"));
    let (run, report) = verify_json(&repo, &["--check", "conflicts"]);
    assert_eq!(run.code, 1, "{report:#}");
    assert_eq!(
        meetings(&report),
        [("lib.rs".to_owned(), "conflict".to_owned())]
    );
}

#[test]
fn a_cherry_pick_left_with_its_sequencer_active_is_in_progress() {
    let repo = TestRepo::new();
    repo.write("f.txt", "1\n2\n3\n");
    repo.commit_all("base");
    repo.git(&["checkout", "-q", "-b", "side"]);
    repo.write("f.txt", "S\n2\n3\n");
    repo.commit_all("s1");
    repo.write("g.txt", "g\n");
    repo.commit_all("s2");
    repo.git(&["checkout", "-q", "main"]);
    repo.write("f.txt", "M\n2\n3\n");
    repo.commit_all("m");
    let picked = repo.git_output(repo.path(), &["cherry-pick", "side~1", "side"]);
    assert!(!picked.status.success(), "the first pick should conflict");
    repo.write("f.txt", "X\n2\n3\n");
    repo.git(&["add", "f.txt"]);
    repo.git(&["commit", "-q", "--no-edit"]);
    assert!(!repo.path().join(".git/CHERRY_PICK_HEAD").exists());
    let status = repo.git(&["status"]);
    assert!(
        status.contains("Cherry-pick currently in progress"),
        "{status}"
    );
    let (run, report) = verify_json(&repo, &["--check", "git"]);
    assert_eq!(run.code, 1, "{report:#}");
    let found = findings(&report, "git");
    assert!(
        found
            .iter()
            .any(|(code, sev, _)| code == "operation_in_progress" && sev == "error"),
        "{found:?}"
    );
    let msg = check_of(&report, "git")["findings"][0]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(msg.contains("cherry-pick"), "{msg}");
}

#[test]
fn markers_committed_since_the_base_quick_and_every_tracked_file_full() {
    let repo = TestRepo::new();
    let markers = "a\n<<<<<<< HEAD\nx\n=======\ny\n>>>>>>> other\n";
    repo.write("old.txt", markers);
    repo.write("f.txt", "fine\n");
    repo.commit_all("markers committed long ago");
    let base = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    repo.write("new.txt", markers);
    repo.commit_all("markers committed since the base");
    let marked = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["--check", "git"];
        all.extend_from_slice(args);
        let (run, report) = verify_json(&repo, &all);
        assert_eq!(run.code, 1, "{report:#}");
        findings(&report, "git")
            .into_iter()
            .filter(|(code, _, _)| code == "conflict_markers")
            .filter_map(|(_, _, p)| p)
            .collect()
    };
    assert_eq!(marked(&["--base", &base]), ["new.txt"]);
    assert_eq!(marked(&["--base", &base, "--full"]), ["new.txt", "old.txt"]);
    // git agrees those committed files hold its markers
    let grep = repo.git(&["grep", "-l", "^=======$", "HEAD"]);
    assert_eq!(grep.lines().count(), 2, "{grep}");
}

#[test]
fn non_utf8_names_stay_distinct_and_are_quoted_as_git_does() {
    use std::os::unix::ffi::OsStrExt;
    let repo = TestRepo::new();
    let e9 = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
    let e8 = std::ffi::OsStr::from_bytes(b"caf\xe8.txt");
    std::fs::write(repo.path().join(e9), TEN).unwrap();
    std::fs::write(repo.path().join(e8), TEN).unwrap();
    repo.commit_all("base");
    let a = add_worktree(&repo, "a", "a");
    let b = add_worktree(&repo, "b", "b");
    std::fs::write(a.join(e9), TEN.replace("l2", "A")).unwrap();
    std::fs::write(b.join(e8), TEN.replace("l2", "B")).unwrap();
    // uncommitted, and a new untracked non-UTF-8 name too
    std::fs::write(b.join(std::ffi::OsStr::from_bytes(b"n\xe9w.txt")), "x\n").unwrap();
    let (run, report) = verify_json(&repo, &["--check", "conflicts,git"]);
    assert_eq!(run.code, 0, "{}: {report:#}", run.stderr);
    assert!(meetings(&report).is_empty(), "{report:#}");
    let untracked: Vec<String> = check_of(&report, "git")["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "untracked_files")
        .flat_map(|f| f["paths"].as_array().unwrap().clone())
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    let git_says = repo.git_in(&b, &["status", "--porcelain"]);
    assert!(git_says.contains("?? \"n\\351w.txt\""), "{git_says}");
    assert_eq!(untracked, ["\"n\\351w.txt\""]);
    for dir in [&a, &b] {
        repo.commit_all_in(dir, "commit");
    }
    assert!(!git_conflicts(&repo, "a", "b"));
    let (run, report) = verify_json(&repo, &["--check", "conflicts"]);
    assert_eq!(run.code, 0, "{report:#}");
    assert!(meetings(&report).is_empty(), "{report:#}");
}

#[test]
fn a_submodule_pointer_git_fast_forwards_is_clean() {
    let repo = TestRepo::new();
    let sub_src = repo.scratch("sub-src");
    std::fs::create_dir_all(&sub_src).unwrap();
    repo.git_in(&sub_src, &["init", "-q", "-b", "main"]);
    write_file(&sub_src, "s.txt", "1\n");
    repo.commit_all_in(&sub_src, "s1");
    repo.write("f.txt", TEN);
    repo.git(&[
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "-q",
        sub_src.to_str().unwrap(),
        "sub",
    ]);
    repo.commit_all("base with a submodule");
    // two later commits in the submodule, fetched into the superproject's copy
    write_file(&sub_src, "s.txt", "2\n");
    let c2 = repo.commit_all_in(&sub_src, "s2");
    write_file(&sub_src, "s.txt", "3\n");
    let c3 = repo.commit_all_in(&sub_src, "s3");
    let sub = repo.path().join("sub");
    repo.git_in(&sub, &["fetch", "-q", "origin"]);
    let (c2, c3) = (c2.trim().to_owned(), c3.trim().to_owned());
    for (branch, commit) in [("a", &c2), ("b", &c3)] {
        repo.git(&["branch", branch]);
        let blob = format!("160000,{commit},sub");
        let tmp_index = repo.path().join(format!(".git/index-{branch}"));
        let env_index = tmp_index.to_str().unwrap().to_owned();
        let mut cmd = repo.command("git", repo.path());
        cmd.env("GIT_INDEX_FILE", &env_index)
            .args(["read-tree", branch]);
        assert!(cmd.status().unwrap().success());
        let mut cmd = repo.command("git", repo.path());
        cmd.env("GIT_INDEX_FILE", &env_index)
            .args(["update-index", "--cacheinfo", &blob]);
        assert!(cmd.status().unwrap().success());
        let mut cmd = repo.command("git", repo.path());
        cmd.env("GIT_INDEX_FILE", &env_index).args(["write-tree"]);
        let tree = String::from_utf8(cmd.output().unwrap().stdout).unwrap();
        let commit = repo.git(&[
            "commit-tree",
            tree.trim(),
            "-p",
            branch,
            "-m",
            "bump the submodule",
        ]);
        repo.git(&["branch", "-f", branch, commit.trim()]);
    }
    assert!(!git_conflicts(&repo, "a", "b"), "git fast-forwards it");
    let (run, report) = verify_json(&repo, &["--check", "conflicts", "--branches", "*"]);
    assert_eq!(run.code, 0, "{}: {report:#}", run.stderr);
    assert_eq!(meetings(&report), [("sub".to_owned(), "clean".to_owned())]);
}

#[test]
fn json_with_another_format_is_a_usage_error() {
    let repo = TestRepo::new();
    repo.write("f.txt", TEN);
    repo.commit_all("base");
    for format in ["human", "github", "junit"] {
        let run = baton_in(
            &repo,
            repo.path(),
            &["verify", "--check", "git", "--json", "--format", format],
        );
        assert_eq!(run.code, 2, "--format {format}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "--format {format}: {}", run.stdout);
        assert!(run.stderr.contains("--json"), "{}", run.stderr);
    }
    let run = baton_in(
        &repo,
        repo.path(),
        &["verify", "--check", "git", "--json", "--format", "json"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.json();
}

/// git's merge diffs with histogram, libgit2 with Myers only; on this 8-line file they
/// disagree (git conflicts, a Myers merge is clean). baton merges text as git does, so its
/// verdict is git's. More histogram-sensitive shapes are in the replay corpus.
#[test]
fn histogram_merges_agree_with_git() {
    let lines = |s: &str| s.chars().map(|c| format!("{c}\n")).collect::<String>();
    let repo = TestRepo::new();
    repo.write("f.txt", &lines("bbbbadbc"));
    repo.commit_all("base");
    let a = add_worktree(&repo, "a", "a");
    let b = add_worktree(&repo, "b", "b");
    write_file(&a, "f.txt", &lines("bbdbabc"));
    repo.commit_all_in(&a, "a");
    write_file(&b, "f.txt", &lines("dbbbab"));
    repo.commit_all_in(&b, "b");
    assert!(
        git_conflicts(&repo, "a", "b"),
        "git's histogram merge conflicts"
    );
    // the case tells the algorithms apart: git's own merge with Myers is clean
    let (fa, fb) = (a.join("f.txt"), b.join("f.txt"));
    let myers = repo.git_output(
        repo.path(),
        &[
            "merge-file",
            "-p",
            "--diff-algorithm=myers",
            fa.to_str().unwrap(),
            "f.txt",
            fb.to_str().unwrap(),
        ],
    );
    assert_eq!(myers.status.code(), Some(0), "git's Myers merge is clean");
    let (run, report) = verify_json(&repo, &["--check", "conflicts"]);
    assert_eq!(run.code, 1, "{report:#}");
    assert_eq!(
        meetings(&report),
        [("f.txt".to_owned(), "conflict".to_owned())]
    );
}
