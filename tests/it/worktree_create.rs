//! `baton worktree create`: many at once from threads and from processes (no lock errors, all
//! valid for git), plan agents, owner locks, file modes and filters, and bad input that
//! changes nothing.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::SystemTime;

use baton_tests::TestRepo;
use baton_worktree::{CreateOptions, CreateRequest, WorktreeConfig, Worktrees};

use crate::support::{BATON, baton};
use crate::worktree_support::*;

#[test]
fn sixteen_threads_create_sixteen_worktrees_without_lock_errors() {
    let repo = repo_with_files();
    let paths = baton_git::RepoPaths::discover(repo.path()).unwrap();
    let wt = Worktrees::new(paths, WorktreeConfig::default()).unwrap();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let wt = &wt;
                s.spawn(move || {
                    let req = CreateRequest {
                        dir: PathBuf::from("OP-20260101-000000-0000abcd").join(format!("t{i}")),
                        branch: format!("baton/OP-20260101-000000-0000abcd/t{i}"),
                        base: "main".into(),
                        plan: Some("OP-20260101-000000-0000abcd".into()),
                        agent: Some(format!("t{i}")),
                    };
                    baton_worktree::create(
                        wt,
                        vec![req],
                        &CreateOptions::default(),
                        SystemTime::now(),
                    )
                })
            })
            .collect();
        for h in handles {
            let created = h.join().expect("thread").expect("create");
            assert_eq!(created[0].files_written, 201);
        }
    });
    assert_all_valid(&repo, 16);
}

#[test]
fn sixteen_processes_create_worktrees_at_once_without_lock_errors() {
    let repo = repo_with_files();
    let children: Vec<_> = (0..16)
        .map(|i| {
            repo.command(BATON, repo.path())
                .args(["worktree", "create", &format!("p{i}")])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn baton")
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_all_valid(&repo, 16);
}

#[test]
fn a_plan_gets_one_worktree_per_agent_on_its_agent_branch() {
    let repo = TestRepo::new();
    repo.write(
        "plan.toml",
        r#"schema_version = 1
title = "t"
[goal]
summary = "s"
[[batches]]
id = "B1"
name = "b"
kind = "parallel"
[[batches.agents]]
id = "alpha"
task_type = "implement"
prompt = "p"
command = ["true"]
[[batches.agents]]
id = "beta"
task_type = "implement"
prompt = "p"
command = ["true"]
"#,
    );
    let id = baton(&repo, &["plan", "new", "--from", "plan.toml"])
        .expect_code(0)
        .stdout
        .trim()
        .to_owned();
    let out = baton(&repo, &["--json", "worktree", "create", "--plan", &id])
        .expect_code(0)
        .json();
    let created = out["created"].as_array().unwrap();
    assert_eq!(created.len(), 2);
    for (c, agent) in created.iter().zip(["alpha", "beta"]) {
        assert_eq!(c["branch"], format!("baton/{id}/{agent}"));
        assert_eq!(
            PathBuf::from(c["path"].as_str().unwrap()),
            root(&repo).join(&id).join(agent)
        );
    }
    // an agent the plan does not have is bad input, and nothing is created
    baton(
        &repo,
        &["worktree", "create", "--plan", &id, "--agent", "gamma"],
    )
    .expect_code(2);
    assert_all_valid(&repo, 2);
}

#[test]
fn bad_input_changes_nothing() {
    let repo = TestRepo::new();
    create(&repo, "taken");
    let before = (git_worktrees(&repo), repo.git(&["for-each-ref"]));
    baton(&repo, &["worktree", "create", "x", "--base", "no-such-ref"]).expect_code(2);
    baton(&repo, &["worktree", "create", "taken"]).expect_code(2);
    baton(&repo, &["worktree", "create", "../escape"]).expect_code(2);
    baton(&repo, &["worktree", "create", "y", "--branch", "bad..name"]).expect_code(2);
    baton(
        &repo,
        &[
            "worktree",
            "create",
            "--plan",
            "OP-20260101-000000-0000abcd",
            "--agent",
            "ok",
            "--agent",
            "Bad/Id",
        ],
    )
    .expect_code(2);
    assert_eq!((git_worktrees(&repo), repo.git(&["for-each-ref"])), before);
    assert!(
        !root(&repo).join("x").exists()
            && !root(&repo).join("OP-20260101-000000-0000abcd").exists()
    );
}

#[test]
fn owner_lock_records_pid_and_start_time_and_unlock_releases_it() {
    let repo = TestRepo::new();
    let owner = Owner::spawn();
    baton(
        &repo,
        &["worktree", "create", "w", "--owner-pid", &owner.pid()],
    )
    .expect_code(0);
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", owner.pid())).unwrap();
    let start = stat[stat.rfind(')').unwrap() + 2..]
        .split(' ')
        .nth(19)
        .unwrap()
        .to_owned();
    let locked = std::fs::read_to_string(repo.path().join(".git/worktrees/w/locked")).unwrap();
    assert_eq!(
        locked.trim(),
        format!("baton owner pid={} start={start}", owner.pid())
    );
    // git refuses to remove it too
    assert!(
        !repo
            .git_output(repo.path(), &["worktree", "remove", "w"])
            .status
            .success()
    );
    baton(&repo, &["worktree", "unlock", "w"]).expect_code(0);
    let list = baton(&repo, &["--json", "worktree", "list"])
        .expect_code(0)
        .json();
    assert_eq!(listed(&list, "w")["locked"], false);
    baton(
        &repo,
        &["worktree", "create", "v", "--owner-pid", "999999999"],
    )
    .expect_code(2);
}

#[test]
fn executables_symlinks_and_attribute_filters_are_checked_out_as_git_would() {
    use std::os::unix::fs::PermissionsExt;
    let repo = TestRepo::new();
    repo.write("bin/run.sh", "#!/bin/sh\necho hi\n");
    std::fs::set_permissions(
        repo.path().join("bin/run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("bin/run.sh", repo.path().join("link")).unwrap();
    repo.commit_all("exec and link");
    let p = create(&repo, "plain");
    assert_eq!(
        std::fs::metadata(p.join("bin/run.sh"))
            .unwrap()
            .permissions()
            .mode()
            & 0o111,
        0o111
    );
    assert_eq!(
        std::fs::read_link(p.join("link")).unwrap(),
        PathBuf::from("bin/run.sh")
    );

    // with a conversion filter, the content is what git itself checks out
    repo.write(".gitattributes", "*.txt text eol=crlf\n");
    repo.write("notes.txt", "a\nb\n");
    repo.commit_all("crlf");
    let q = create(&repo, "filtered");
    let g = repo.scratch("x").join("by-git");
    repo.git(&[
        "worktree",
        "add",
        "-q",
        "--detach",
        g.to_str().unwrap(),
        "main",
    ]);
    assert_eq!(
        std::fs::read(q.join("notes.txt")).unwrap(),
        std::fs::read(g.join("notes.txt")).unwrap()
    );
    assert_eq!(std::fs::read(q.join("notes.txt")).unwrap(), b"a\r\nb\r\n");
    repo.git(&["worktree", "remove", g.to_str().unwrap()]);
    assert_all_valid(&repo, 2);
}

#[test]
fn a_root_inside_the_checkout_is_excluded_so_the_checkout_stays_clean() {
    let repo = TestRepo::new();
    repo.write(
        ".config/baton.toml",
        "[worktree]\nroot = \".baton/worktrees\"\nbranch = \"agents/{plan}/{agent}\"\n",
    );
    repo.commit_all("config");
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
    assert_eq!(
        out["created"][0]["branch"],
        "agents/OP-20260101-000000-0000abcd/a"
    );
    assert!(
        repo.path()
            .join(".baton/worktrees/OP-20260101-000000-0000abcd/a/README.md")
            .exists()
    );
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    // a bad config is bad input
    repo.write(
        ".config/baton.toml",
        "[worktree]\nbranch = \"agents/{plan}\"\n",
    );
    baton(&repo, &["worktree", "list"]).expect_code(2);
}
