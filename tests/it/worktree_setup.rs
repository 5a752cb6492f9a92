//! New-worktree setup and the pool: include files and the setup command, and reuse of a
//! finished agent's worktree for the next agent (only differing files rewritten, ignored
//! build output kept).

use std::path::PathBuf;
use std::time::SystemTime;

use baton_tests::{TestRepo, write_file};

use crate::support::baton;
use crate::worktree_support::*;

#[test]
fn setup_copies_include_files_and_runs_the_setup_command() {
    let repo = TestRepo::new();
    repo.write(".gitignore", ".env\nsetup-ran\nsecrets/\n");
    repo.write(
        ".worktreeinclude",
        "# copied into new worktrees\n.env\nsecrets/\n",
    );
    repo.write(
        ".config/baton.toml",
        "[worktree]\nsetup = [\"sh\", \"-c\", \"cat .env > setup-ran\"]\n",
    );
    repo.commit_all("setup files");
    repo.write(".env", "TOKEN=1\n");
    repo.write("secrets/key", "k\n");
    repo.write("other.local", "not listed\n");
    let p = create(&repo, "w");
    assert_eq!(
        std::fs::read_to_string(p.join(".env")).unwrap(),
        "TOKEN=1\n"
    );
    assert_eq!(
        std::fs::read_to_string(p.join("secrets/key")).unwrap(),
        "k\n"
    );
    assert_eq!(
        std::fs::read_to_string(p.join("setup-ran")).unwrap(),
        "TOKEN=1\n"
    );
    assert!(!p.join("other.local").exists());
    assert_eq!(repo.git_in(&p, &["status", "--porcelain"]), "");
    // --no-setup skips both
    let q = baton(
        &repo,
        &["--json", "worktree", "create", "bare", "--no-setup"],
    )
    .expect_code(0)
    .json();
    let q = PathBuf::from(q["created"][0]["path"].as_str().unwrap());
    assert!(!q.join(".env").exists() && !q.join("setup-ran").exists());
    // a failing setup command removes the worktree and its branch again
    repo.write(".config/baton.toml", "[worktree]\nsetup = [\"false\"]\n");
    baton(&repo, &["worktree", "create", "fails"]).expect_code(3);
    assert!(!root(&repo).join("fails").exists() && !branch_exists(&repo, "fails"));
    assert_all_valid(&repo, 2);
}

/// A base whose tree makes an include file's path a symlink (`.env` a link to a file of the
/// user's, `config` a link to a directory outside) gets nothing written through the link: the
/// files outside stay as they were, and the JSON says which includes were not copied and why.
#[test]
fn include_files_are_never_copied_through_a_symlink_the_base_has() {
    let repo = TestRepo::new();
    repo.write(".gitignore", ".env\nconfig/*.env\n");
    repo.write(".worktreeinclude", ".env\nconfig/*.env\n");
    repo.write("config/app.toml", "[app]\n");
    repo.commit_all("includes");
    repo.write(".env", "TOKEN=secret\n");
    repo.write("config/local.env", "DB=secret\n");
    let outside = repo.scratch("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let rc = outside.join("bashrc");
    std::fs::write(&rc, "precious\n").unwrap();
    // the base: on a side branch, `.env` and `config` are symlinks out of the worktree
    let side = repo.scratch("side");
    repo.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "side",
        side.to_str().unwrap(),
    ]);
    std::fs::remove_dir_all(side.join("config")).unwrap();
    std::os::unix::fs::symlink(&outside, side.join("config")).unwrap();
    std::os::unix::fs::symlink(&rc, side.join(".env")).unwrap();
    repo.git_in(&side, &["add", "-A", "-f", ".env", "config"]);
    repo.git_in(&side, &["commit", "-q", "-m", "links out"]);
    let out = baton(
        &repo,
        &["--json", "worktree", "create", "w", "--base", "side"],
    )
    .expect_code(0)
    .json();
    assert_eq!(std::fs::read_to_string(&rc).unwrap(), "precious\n");
    let names: Vec<String> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["bashrc"],
        "nothing written into the linked directory"
    );
    let c = &out["created"][0];
    assert_eq!(c["copied"], serde_json::json!([]), "{c}");
    let not: Vec<(String, String)> = c["not_copied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["path"].as_str().unwrap().to_owned(),
                n["why"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(not.len(), 2, "{not:?}");
    assert_eq!(not[0].0, ".env");
    assert!(not[0].1.contains("already has it"), "{not:?}");
    assert_eq!(not[1].0, "config/local.env");
    assert!(not[1].1.contains("a symlink at config"), "{not:?}");
    // the human output says it too
    let text = baton(&repo, &["worktree", "create", "w2", "--base", "side"]).expect_code(0);
    assert!(
        text.stdout.contains("not copied: config/local.env"),
        "{}",
        text.stdout
    );
}

#[test]
fn reuse_moves_a_finished_worktree_to_the_new_agent_and_keeps_only_build_caches() {
    let repo = repo_with_files();
    repo.write(".gitignore", "target/\n.env\nnotes/\n");
    repo.commit_all("ignore target");
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
    write_file(&a1, "target/cache.bin", "warm\n");
    write_file(&a1, ".env", "SECRET=of-plan-a1\n");
    write_file(&a1, "notes/todo.md", "a1's notes\n");
    write_file(&a1, "src/d1/f1.txt", "changed by a1\n");
    repo.commit_all_in(&a1, "a1 work");
    repo.git(&[
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "merge a1",
        &format!("baton/{plan}/a1"),
    ]);
    let audit = Audit::before(&repo);
    // an old mtime on a file that stays the same shows whether reuse rewrites it
    let old = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    let unchanged = a1.join("src/d2/f2.txt");
    let f = std::fs::File::options()
        .write(true)
        .open(&unchanged)
        .unwrap();
    f.set_modified(old).unwrap();
    drop(f);
    repo.git_in(&a1, &["update-index", "-q", "--refresh"]);
    let mtime = |p: &std::path::Path| std::fs::metadata(p).unwrap().modified().unwrap();
    // main moves on, so the reused worktree has exactly one file to rewrite
    repo.write("src/d3/f3.txt", "changed on main\n");
    repo.commit_all("main work");

    let out = baton(
        &repo,
        &[
            "--json", "worktree", "create", "--plan", plan, "--agent", "a2", "--reuse",
        ],
    )
    .expect_code(0)
    .json();
    let c = &out["created"][0];
    assert_eq!(PathBuf::from(c["reused_from"].as_str().unwrap()), a1);
    let a2 = PathBuf::from(c["path"].as_str().unwrap());
    assert_eq!(a2, root(&repo).join(plan).join("a2"));
    assert_eq!(c["deleted_branch"], format!("baton/{plan}/a1"));
    assert!(!a1.exists());
    assert_eq!(
        c["files_written"], 1,
        "only the file that differs is rewritten"
    );
    assert_eq!(mtime(&a2.join("src/d2/f2.txt")), old);
    assert_eq!(
        std::fs::read_to_string(a2.join("src/d3/f3.txt")).unwrap(),
        "changed on main\n"
    );
    assert_eq!(
        std::fs::read_to_string(a2.join("target/cache.bin")).unwrap(),
        "warm\n"
    );
    // every other ignored file of the previous agent (secrets included) is gone
    assert!(!a2.join(".env").exists() && !a2.join("notes").exists());
    assert_eq!(
        std::fs::read_to_string(a2.join("src/d1/f1.txt")).unwrap(),
        "changed by a1\n"
    );
    assert_eq!(
        repo.git_in(&a2, &["rev-parse", "HEAD"]),
        repo.git(&["rev-parse", "main"])
    );
    audit.after(&repo, "main");
    assert_all_valid(&repo, 1);
    assert_eq!(git_worktrees(&repo)[1].1, format!("baton/{plan}/a2"));

    // an unmerged worktree is never reused: a fresh one is made
    write_file(&a2, "src/x.txt", "unmerged\n");
    repo.commit_all_in(&a2, "a2 work");
    let out = baton(
        &repo,
        &[
            "--json", "worktree", "create", "--plan", plan, "--agent", "a3", "--reuse",
        ],
    )
    .expect_code(0)
    .json();
    assert!(out["created"][0]["reused_from"].is_null());
    assert!(a2.exists() && branch_exists(&repo, &format!("baton/{plan}/a2")));
}
