//! The classes of issue 8 an adversary finds in cleanup, one test each, end to end: real
//! repositories, the real binary, and the whole-repo audit after every cleanup (no commit
//! reachable before — from a ref, a worktree HEAD or a submodule HEAD — is lost unless its
//! content is in the target).

use std::path::{Path, PathBuf};

use baton_tests::{TestRepo, write_file};

use crate::support::baton;
use crate::worktree_support::*;

/// `baton --json worktree cleanup ARGS...`, expecting `code`.
fn cleanup(repo: &TestRepo, args: &[&str], code: i32) -> serde_json::Value {
    let all = [&["--json", "worktree", "cleanup"][..], args].concat();
    baton(repo, &all).expect_code(code).json()
}

/// A baton worktree `name` with one commit of its own, merged into main with `--no-ff`.
fn merged(repo: &TestRepo, name: &str) -> PathBuf {
    let p = create(repo, name);
    write_file(&p, &format!("{name}.txt"), "work\n");
    repo.commit_all_in(&p, &format!("{name} work"));
    repo.git(&[
        "merge",
        "-q",
        "--no-ff",
        "-m",
        &format!("merge {name}"),
        name,
    ]);
    p
}

fn kept_message(report: &serde_json::Value, name: &str) -> String {
    report["kept"]
        .as_array()
        .expect("kept")
        .iter()
        .find(|k| k["name"] == name)
        .map(|k| k["message"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_else(|| panic!("{name} not kept: {report:#}"))
}

/// Class 1: a submodule commit that only the worktree's module store holds.
#[test]
fn submodule_commits_only_in_the_worktree_keep_it_until_they_are_pushed() {
    let repo = TestRepo::new();
    let origin = repo.scratch("sub-origin");
    repo.git_in(&origin, &["init", "-q", "-b", "main"]);
    write_file(&origin, "lib.txt", "lib\n");
    repo.commit_all_in(&origin, "lib");
    let file_ok = ["-c", "protocol.file.allow=always"];
    let url = origin.to_str().unwrap();
    repo.git(&[&file_ok[..], &["submodule", "add", "-q", url, "sub"]].concat());
    repo.commit_all("add sub");

    let w = create(&repo, "w");
    repo.git_in(
        &w,
        &[&file_ok[..], &["submodule", "update", "-q", "--init"]].concat(),
    );
    write_file(&w.join("sub"), "new.txt", "only here\n");
    let only_here = repo.commit_all_in(&w.join("sub"), "commit only in w's module store");
    repo.commit_all_in(&w, "bump sub");
    repo.git(&["merge", "-q", "--no-ff", "-m", "merge w", "w"]);

    let audit = Audit::before(&repo);
    let report = cleanup(&repo, &["--force"], 0);
    assert_eq!(outcome(&report)["w"], "keep:submodule_commits");
    assert!(kept_message(&report, "w").contains(&only_here[..10]));
    assert!(w.join("sub/new.txt").exists());
    audit.after(&repo, "main");

    // pushed to the submodule's origin, the commit is safe and the worktree can go
    repo.git_in(
        &w.join("sub"),
        &["push", "-q", "origin", "HEAD:refs/heads/from-w"],
    );
    let report = cleanup(&repo, &[], 0);
    assert_eq!(outcome(&report)["w"], "remove+branch");
    audit.after(&repo, "main");
}

/// Class 2: a directory that is no longer this entry's worktree is never removed.
#[test]
fn a_directory_that_is_no_longer_the_entrys_is_never_removed() {
    let repo = TestRepo::new();
    // an agent replaced .git with a repository of its own
    let own = merged(&repo, "own");
    std::fs::remove_file(own.join(".git")).unwrap();
    repo.git_in(&own, &["init", "-q", "-b", "mine"]);
    let mine = repo.commit_all_in(&own, "the agent's own history");
    // baton refuses to put a worktree where a stale entry still points
    let gone = create(&repo, "gone");
    std::fs::remove_dir_all(&gone).unwrap();
    let run = baton(&repo, &["worktree", "create", "gone", "--branch", "newer"]).expect_code(2);
    assert!(
        run.stderr.contains("stale worktree entry gone"),
        "{}",
        run.stderr
    );
    // a stale entry whose path a newer worktree took over (git can be made to do it)
    let reused = create(&repo, "reused");
    let admin = repo.path().join(".git/worktrees");
    copy_dir(&admin.join("reused"), &admin.join("stale"));
    write_file(&reused, "README.md", "live work of the newer worktree\n");
    // a path replaced by a file
    let filed = merged(&repo, "filed");
    std::fs::remove_dir_all(&filed).unwrap();
    std::fs::write(&filed, "not a worktree\n").unwrap();

    let audit = Audit::before(&repo);
    let report = cleanup(&repo, &["--min-age", "0s"], 0);
    let got = outcome(&report);
    assert_eq!(got["reused"], "keep:dirty");
    assert_eq!(got["own"], "keep:not_its_directory");
    assert_eq!(got["stale"], "keep:not_its_directory");
    assert_eq!(got["filed"], "keep:not_its_directory");
    assert_eq!(repo.git_in(&own, &["rev-parse", "HEAD"]), mine);
    assert_eq!(
        std::fs::read_to_string(reused.join("README.md")).unwrap(),
        "live work of the newer worktree\n"
    );
    assert_eq!(std::fs::read_to_string(&filed).unwrap(), "not a worktree\n");
    audit.after(&repo, "main");
    // named, with --force: still refused (exit 1), still there
    let report = cleanup(&repo, &["own", "stale", "filed", "--force"], 1);
    assert_eq!(report["kept"].as_array().unwrap().len(), 3, "{report:#}");
    assert!(own.join(".git").is_dir() && reused.join("README.md").exists() && filed.is_file());
    audit.after(&repo, "main");
}

/// Class 3: look-alikes of a squash merge are not integration.
#[test]
fn integrated_means_merging_it_changes_nothing_not_a_look_alike_patch() {
    let repo = TestRepo::new();
    repo.write("ctx.txt", "a\nb\nc\nd\ne\nf\na\nb\nc\nd\ne\nf\n");
    repo.write("call.txt", "foo(a,b)\n");
    repo.commit_all("context");
    // the same added line at another place with identical context
    let moved = create(&repo, "moved");
    write_file(
        &moved,
        "ctx.txt",
        "a\nb\nc\nNEW\nd\ne\nf\na\nb\nc\nd\ne\nf\n",
    );
    repo.commit_all_in(&moved, "add NEW at the first place");
    // a change that differs from main's only in whitespace
    let spaced = create(&repo, "spaced");
    write_file(&spaced, "call.txt", "foo(a, b)\n");
    repo.commit_all_in(&spaced, "space the call");
    repo.write("ctx.txt", "a\nb\nc\nd\ne\nf\na\nb\nc\nNEW\nd\ne\nf\n");
    let add_new = repo.commit_all("main: NEW at the second place");
    repo.write("call.txt", "foo(a,  b)\n");
    let spaced_main = repo.commit_all("main: the call spaced twice");
    // a real squash merge still counts
    let squashed = create(&repo, "squashed");
    write_file(&squashed, "s.txt", "squash me\n");
    repo.commit_all_in(&squashed, "squash work");
    repo.git(&["merge", "-q", "--squash", "squashed"]);
    repo.git(&["commit", "-q", "-m", "squashed"]);
    let patch_id = |rev: &str| {
        let diff = repo.git(&["show", rev]);
        let mut child = repo
            .command("git", repo.path())
            .args(["patch-id", "--stable"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{diff}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split(' ').next().unwrap_or_default().to_owned()
    };
    // the look-alikes really are: git's own patch-id cannot tell them apart
    assert_eq!(patch_id("moved"), patch_id(&add_new));
    assert_eq!(patch_id("spaced"), patch_id(&spaced_main));

    let audit = Audit::before(&repo);
    let report = cleanup(&repo, &[], 0);
    let got = outcome(&report);
    assert_eq!(got["moved"], "keep:unmerged");
    assert_eq!(got["spaced"], "keep:unmerged");
    assert_eq!(got["squashed"], "remove+branch");
    assert!(branch_exists(&repo, "moved") && branch_exists(&repo, "spaced"));
    audit.after(&repo, "main");
}

/// Class 3, its neighbour: "merging it changes nothing" is decided by git's merge, which diffs
/// with histogram. This case (found by a search with `git merge-file`) merges into exactly the
/// target's bytes under Myers, libgit2's algorithm, while git's histogram merge conflicts: the
/// branch is not integrated and must stay.
#[test]
fn integrated_follows_gits_histogram_merge_not_myers() {
    let lines = |s: &str| s.chars().map(|c| format!("{c}\n")).collect::<String>();
    let repo = TestRepo::new();
    repo.write("f.txt", &lines("cacd"));
    repo.commit_all("base");
    let branch = create(&repo, "hist");
    write_file(&branch, "f.txt", &lines("cdacd"));
    repo.commit_all_in(&branch, "branch");
    repo.write("f.txt", &lines("cdadc"));
    repo.commit_all("main");
    // git itself: the merge conflicts (so merging it would not be a no-op)
    let merge = repo.git_output(repo.path(), &["merge-tree", "--write-tree", "main", "hist"]);
    assert_eq!(merge.status.code(), Some(1), "git's merge conflicts");
    let audit = Audit::before(&repo);
    let report = cleanup(&repo, &[], 0);
    assert_eq!(outcome(&report)["hist"], "keep:unmerged", "{report:#}");
    assert!(branch_exists(&repo, "hist"));
    audit.after(&repo, "main");
}

/// Class 4: the target is resolved to a ref; it is never deleted however it is spelled, and a
/// detached main checkout is not silently the target.
#[test]
fn the_target_branch_is_never_deleted_however_it_is_spelled() {
    let repo = TestRepo::new();
    let feature = create(&repo, "feature");
    write_file(&feature, "f.txt", "feature\n");
    let tip = repo.commit_all_in(&feature, "feature work");
    let audit = Audit::before(&repo);
    for target in [
        "refs/heads/feature",
        "heads/feature",
        "feature~0",
        tip.as_str(),
    ] {
        let report = cleanup(&repo, &["--dry-run", "--target", target], 0);
        assert_eq!(
            outcome(&report)["feature"],
            "remove keep-branch:is_target",
            "--target {target}"
        );
    }
    // HEAD of the main checkout, followed, names main: feature is merely unmerged there
    let report = cleanup(&repo, &["--dry-run", "--target", "HEAD"], 0);
    assert_eq!(outcome(&report)["feature"], "keep:unmerged");
    let report = cleanup(&repo, &["--target", &tip], 0);
    assert_eq!(outcome(&report)["feature"], "remove keep-branch:is_target");
    assert!(branch_exists(&repo, "feature"));
    audit.after(&repo, "feature");

    repo.git(&["checkout", "-q", "--detach"]);
    let run = baton(&repo, &["worktree", "cleanup"]).expect_code(2);
    assert!(
        run.stderr.contains("detached") && run.stderr.contains("--target"),
        "{}",
        run.stderr
    );
    baton(&repo, &["worktree", "cleanup", "--target", "main"]).expect_code(0);
}

/// Class 5: missing is pruned with a recovery ref for a commit only it held; unreadable is
/// kept.
#[test]
fn missing_gets_a_recovery_ref_and_unreadable_is_kept() {
    let repo = TestRepo::new();
    let moved = create(&repo, "moved");
    repo.git_in(&moved, &["checkout", "-q", "--detach"]);
    write_file(&moved, "d.txt", "detached work\n");
    let orphan = repo.commit_all_in(&moved, "a commit only this worktree holds");
    std::fs::rename(&moved, repo.scratch("away").join("moved")).unwrap();
    // unreadable: a path whose parent cannot be resolved (a symlink loop) — not missing
    let out = baton(
        &repo,
        &[
            "--json",
            "worktree",
            "create",
            "--plan",
            "OP-20260101-000000-0000abcd",
            "--agent",
            "a",
        ],
    )
    .expect_code(0)
    .json();
    let hidden = PathBuf::from(out["created"][0]["path"].as_str().unwrap());
    write_file(&hidden, "a.txt", "agent work\n");
    let agent_commit = repo.commit_all_in(&hidden, "agent work");
    let plan_dir = hidden.parent().unwrap().to_owned();
    let aside = repo.scratch("aside").join("plan");
    std::fs::rename(&plan_dir, &aside).unwrap();
    std::os::unix::fs::symlink(plan_dir.file_name().unwrap(), &plan_dir).unwrap();

    let audit = Audit::before(&repo);
    let dry = baton(&repo, &["--json", "worktree", "prune", "--dry-run"])
        .expect_code(0)
        .json();
    assert_eq!(dry["pruned"].as_array().unwrap().len(), 1, "{dry:#}");
    assert_eq!(dry["unreadable"][0]["name"], "a", "{dry:#}");
    let report = cleanup(&repo, &["--force", "--min-age", "0s"], 0);
    let got = outcome(&report);
    assert_eq!(got["moved"], "prune");
    assert_eq!(got["a"], "keep:unreadable");
    let recovered = report["actions"][0]["recovered_refs"][0].as_str().unwrap();
    assert_eq!(repo.git(&["rev-parse", recovered]), orphan);
    audit.after(&repo, "main");
    baton(&repo, &["worktree", "prune"]).expect_code(0);
    // the unreadable one is still registered, with its commit
    std::fs::remove_file(&plan_dir).unwrap();
    std::fs::rename(&aside, &plan_dir).unwrap();
    assert_eq!(repo.git_in(&hidden, &["rev-parse", "HEAD"]), agent_commit);
}

/// Class 7: ignored files, nested repositories and hidden edits are named; the last two keep
/// the worktree.
#[test]
fn ignored_files_nested_repos_and_hidden_edits_are_counted_as_discards() {
    let repo = TestRepo::new();
    repo.write(".gitignore", ".env\nnotes/\ntarget/\n");
    repo.write("a.txt", "a\n");
    repo.write("b.txt", "b\n");
    repo.commit_all("ignore rules");
    let env = merged(&repo, "env");
    write_file(&env, ".env", "SECRET=1\n");
    write_file(&env, "target/debug/x", "cache\n");
    let nested = merged(&repo, "nested");
    write_file(&nested, "notes/repo/n.txt", "notes\n");
    repo.git_in(&nested.join("notes/repo"), &["init", "-q"]);
    repo.commit_all_in(&nested.join("notes/repo"), "notes history");
    let hidden = merged(&repo, "hidden");
    repo.git_in(&hidden, &["update-index", "--assume-unchanged", "a.txt"]);
    write_file(&hidden, "a.txt", "edited behind git's back\n");
    let skipped = merged(&repo, "skipped");
    repo.git_in(&skipped, &["update-index", "--skip-worktree", "b.txt"]);
    write_file(&skipped, "b.txt", "edited behind git's back\n");
    for p in [&hidden, &skipped] {
        assert_eq!(
            repo.git_in(p, &["status", "--porcelain"]),
            "",
            "git hides it"
        );
    }

    let audit = Audit::before(&repo);
    let dry = cleanup(&repo, &["--dry-run", "--force"], 0);
    let env_action = dry["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "env")
        .unwrap()
        .clone();
    assert_eq!(env_action["discards_changes"], true);
    assert_eq!(env_action["hidden"]["ignored"], 1);
    assert_eq!(env_action["hidden"]["ignored_sample"][0], ".env");
    assert_eq!(env_action["hidden"]["caches"][0], "target/");
    let report = cleanup(&repo, &[], 0);
    let got = outcome(&report);
    assert_eq!(got["env"], "remove+branch");
    assert_eq!(got["nested"], "keep:nested_repository");
    assert_eq!(got["hidden"], "keep:hidden_edits");
    assert_eq!(got["skipped"], "keep:hidden_edits");
    assert!(nested.join("notes/repo/.git").exists());
    audit.after(&repo, "main");
}

/// Class 8: not baton's, new, in use, or listed by a live execution: kept, with the reason.
#[test]
fn worktrees_not_batons_new_in_use_or_in_a_live_execution_are_kept() {
    let repo = TestRepo::new();
    let plain = repo.scratch("x").join("plain");
    repo.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "plain",
        plain.to_str().unwrap(),
    ]);
    let new = create(&repo, "new");
    let busy = merged(&repo, "busy");
    let mut inside = std::process::Command::new("sleep")
        .arg("600")
        .current_dir(&busy)
        .spawn()
        .unwrap();
    let plan = "OP-20260101-000000-0000abcd";
    let out = baton(
        &repo,
        &[
            "--json", "worktree", "create", "--plan", plan, "--agent", "a1",
        ],
    )
    .expect_code(0)
    .json();
    let a1 = PathBuf::from(out["created"][0]["path"].as_str().unwrap());
    write_execution(&repo, plan, "running", "pending");

    let audit = Audit::before(&repo);
    let report = cleanup(&repo, &["--force"], 0);
    let got = outcome(&report);
    assert_eq!(got["plain"], "keep:not_created_by_baton");
    assert_eq!(
        got["new"], "remove+branch",
        "--force removes a new worktree"
    );
    assert_eq!(got["busy"], "keep:process_inside");
    assert!(kept_message(&report, "busy").contains(&inside.id().to_string()));
    assert_eq!(got["a1"], "keep:live_execution");
    assert!(plain.exists() && branch_exists(&repo, "plain") && busy.exists() && a1.exists());
    assert!(!new.exists());
    audit.after(&repo, "main");

    let _ = inside.kill();
    let _ = inside.wait();
    write_execution(&repo, plan, "succeeded", "succeeded");
    let report = cleanup(&repo, &["--min-age", "0s"], 0);
    let got = outcome(&report);
    assert_eq!(got["busy"], "remove+branch");
    assert_eq!(got["a1"], "remove+branch");
    assert_eq!(got["plain"], "keep:not_created_by_baton");
    audit.after(&repo, "main");
    // --all widens the scope and says so
    let report = cleanup(&repo, &["--all", "--min-age", "0s"], 0);
    assert_eq!(report["scope"], "all");
    assert_eq!(outcome(&report)["plain"], "remove+branch");
    audit.after(&repo, "main");
}

/// A new worktree (no commits of its own) is kept until the minimum age.
#[test]
fn a_new_worktree_is_new_not_merged_until_the_minimum_age() {
    let repo = TestRepo::new();
    let p = create(&repo, "fresh");
    let audit = Audit::before(&repo);
    let report = cleanup(&repo, &[], 0);
    assert_eq!(outcome(&report)["fresh"], "keep:new");
    assert!(p.exists());
    let report = cleanup(&repo, &["--min-age", "0s"], 0);
    assert_eq!(outcome(&report)["fresh"], "remove+branch");
    audit.after(&repo, "main");
}

fn write_execution(repo: &TestRepo, plan: &str, status: &str, agent: &str) {
    let exec = serde_json::json!({
        "schema_version": 1,
        "plan_id": plan,
        "status": status,
        "started_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
        "revision": 1,
        "batches": [{
            "id": "b1",
            "status": status,
            "agents": [{"id": "a1", "status": agent, "attempt": 1}]
        }]
    });
    let path: &Path = &repo.path().join(".baton/executions");
    std::fs::create_dir_all(path).unwrap();
    std::fs::write(
        path.join(format!("{plan}.json")),
        serde_json::to_string_pretty(&exec).unwrap(),
    )
    .unwrap();
}

/// A neighbour of class 5: a commit made on a detached HEAD and left behind lives only in the
/// worktree's HEAD reflog, which goes with its admin dir: it gets a recovery ref.
#[test]
fn commits_only_the_worktree_reflog_holds_get_a_recovery_ref() {
    let repo = TestRepo::new();
    let p = merged(&repo, "left");
    repo.git_in(&p, &["checkout", "-q", "--detach"]);
    write_file(&p, "lost.txt", "left behind\n");
    let behind = repo.commit_all_in(&p, "a commit left on a detached HEAD");
    repo.git_in(&p, &["checkout", "-q", "left"]);
    let audit = Audit::before(&repo);
    let report = cleanup(&repo, &[], 0);
    assert_eq!(outcome(&report)["left"], "remove+branch");
    let r = report["actions"][0]["recovered_refs"][0].as_str().unwrap();
    assert_eq!(repo.git(&["rev-parse", r]), behind);
    audit.after(&repo, "main");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}
