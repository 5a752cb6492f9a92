//! Spares (`[worktree] spares`): cleanup keeps finished worktrees on disk and the next create
//! turns them into new agents' worktrees. What the agent gets must be exactly what
//! `git worktree add` checks out (byte for byte, mode for mode, an index git finds clean), plus
//! only the build caches `reuse_keep` names: never another agent's `.env`.

use std::path::{Path, PathBuf};

use baton_tests::TestRepo;
use serde_json::Value;

use crate::support::baton;
use crate::worktree_checkout::{snapshot, varied_repo};
use crate::worktree_support::{Audit, assert_all_valid, root};

const PLAN: &str = "OP-20260101-000000-0000face";

fn configure(repo: &TestRepo, spares: usize) {
    repo.write(
        ".config/baton.toml",
        &format!("[worktree]\nspares = {spares}\n"),
    );
    repo.write(".gitignore", ".env\ntarget/\n");
}

fn create(repo: &TestRepo, base: &str, agents: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "--json", "worktree", "create", "--plan", PLAN, "--base", base,
    ];
    for a in agents {
        args.extend(["--agent", a]);
    }
    let out = baton(repo, &args).expect_code(0).json();
    out["created"].as_array().expect("created").clone()
}

fn path_of(c: &Value) -> PathBuf {
    PathBuf::from(c["path"].as_str().expect("path"))
}

fn cleanup(repo: &TestRepo) -> Value {
    baton(repo, &["--json", "worktree", "cleanup", "--min-age", "0s"])
        .expect_code(0)
        .json()
}

/// `git worktree add` of `base`, snapshotted and removed again.
fn git_checkout(
    repo: &TestRepo,
    base: &str,
) -> std::collections::BTreeMap<String, (char, u32, Vec<u8>)> {
    let by_git = repo.scratch("x").join("by-git");
    repo.git(&[
        "worktree",
        "add",
        "-q",
        "--detach",
        by_git.to_str().unwrap(),
        base,
    ]);
    let snap = snapshot(&by_git);
    repo.git(&["worktree", "remove", by_git.to_str().unwrap()]);
    snap
}

fn differ(
    want: &std::collections::BTreeMap<String, (char, u32, Vec<u8>)>,
    p: &Path,
) -> Vec<String> {
    let mut got = snapshot(p);
    got.retain(|k, _| k != "target" && !k.starts_with("target/"));
    want.keys()
        .chain(got.keys())
        .filter(|k| want.get(*k) != got.get(*k))
        .cloned()
        .collect()
}

#[test]
fn a_spare_becomes_a_worktree_identical_to_git_worktree_add_without_the_old_agents_secrets() {
    let repo = varied_repo();
    configure(&repo, 2);
    let old = repo.commit_all("config");
    // the new base changes, adds, deletes and re-modes files and retargets a symlink
    repo.write("lvl0-1/f1.rs", "changed on main\n");
    repo.write("added/new.txt", "new file\n");
    std::fs::remove_file(repo.path().join("no-newline")).unwrap();
    std::fs::set_permissions(
        repo.path().join("bin/run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    std::fs::remove_file(repo.path().join("link")).unwrap();
    std::os::unix::fs::symlink("blob.bin", repo.path().join("link")).unwrap();
    repo.commit_all("next");

    let first = create(&repo, &old, &["a", "b"]);
    let a = path_of(&first[0]);
    std::fs::write(a.join(".env"), "SECRET=of plan one\n").unwrap();
    std::fs::create_dir_all(a.join("target")).unwrap();
    std::fs::write(a.join("target/cache.bin"), "warm build cache").unwrap();

    let audit = Audit::before(&repo);
    let report = cleanup(&repo);
    audit.after(&repo, "main");
    let actions = report["actions"].as_array().expect("actions");
    assert_eq!(actions.len(), 2, "{report}");
    assert!(
        actions
            .iter()
            .all(|a| a["spare"] == true && a["done"] == true),
        "{report}"
    );
    assert_eq!(report["spares"]["count"], 2, "{report}");
    assert!(
        report["spares"]["bytes"].as_u64().expect("bytes") > 70_000,
        "{report}"
    );
    // for git they are gone: no entry, no branch
    assert_all_valid(&repo, 0);
    assert_eq!(repo.git(&["branch", "--list", "baton/*"]), "");

    let second = create(&repo, "main", &["c", "d"]);
    let want = git_checkout(&repo, "main");
    assert!(want.contains_key("added/new.txt") && !want.contains_key("no-newline"));
    let mut caches = 0;
    for c in &second {
        let p = path_of(c);
        let d = differ(&want, &p);
        assert!(d.is_empty(), "{p:?} differs from git's checkout at {d:?}");
        assert!(!p.join(".env").exists(), "{p:?} got the old agent's .env");
        caches += usize::from(p.join("target/cache.bin").is_file());
        assert_eq!(
            repo.git_in(&p, &["ls-files", "--stage"]),
            repo.git_in(repo.path(), &["ls-files", "--stage"]),
        );
        // only what differs between the spare's commit and the new base was written
        let n = c["files_written"].as_u64().expect("files_written");
        assert!(n > 0 && n < 20, "{p:?} wrote {n} files");
    }
    assert_eq!(
        caches, 1,
        "the build cache reuse_keep names stays with its worktree"
    );
    // clean to git without a refresh, on their branches, fsck clean
    assert_all_valid(&repo, 2);
    assert!(
        !root(&repo).join(".spares").exists(),
        "both spares were used"
    );
}

#[test]
fn lowering_spares_frees_them_and_dirty_worktrees_never_become_spares() {
    let repo = varied_repo();
    configure(&repo, 3);
    repo.commit_all("config");
    let made = create(&repo, "main", &["a", "b"]);
    let dirty = path_of(&made[1]);
    std::fs::write(dirty.join("notes.txt"), "untracked work\n").unwrap();
    let report = baton(
        &repo,
        &[
            "--json",
            "worktree",
            "cleanup",
            "--min-age",
            "0s",
            "--force",
        ],
    )
    .expect_code(0)
    .json();
    let spare: Vec<(String, bool)> = report["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap_or("").to_owned(),
                a["spare"] == true,
            )
        })
        .collect();
    assert_eq!(
        spare,
        vec![("a".to_owned(), true), ("b".to_owned(), false)],
        "{report}"
    );
    assert_eq!(report["spares"]["count"], 1, "{report}");

    // debris of a spare being taken by a process that is gone
    let junk = root(&repo).join(".spares/c-4000000000-0-junk");
    std::fs::create_dir_all(junk.join("tree")).unwrap();
    // a dry run says what it would free and frees nothing
    configure(&repo, 0);
    let dry = baton(&repo, &["--json", "worktree", "cleanup", "--dry-run"])
        .expect_code(0)
        .json();
    assert_eq!(dry["spares"]["freed"], 2, "{dry}");
    assert_eq!(dry["spares"]["count"], 1, "{dry}");
    assert!(junk.exists());
    let real = baton(&repo, &["--json", "worktree", "cleanup"])
        .expect_code(0)
        .json();
    assert_eq!(real["spares"]["freed"], 2, "{real}");
    assert_eq!(real["spares"]["count"], 0, "{real}");
    assert!(!root(&repo).join(".spares").exists());
    assert_all_valid(&repo, 0);
}

#[test]
fn a_spares_directory_that_is_a_symlink_is_never_followed() {
    let repo = varied_repo();
    configure(&repo, 1);
    repo.commit_all("config");
    let made = create(&repo, "main", &["a"]);
    let elsewhere = repo.scratch("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, root(&repo).join(".spares")).unwrap();
    let report = cleanup(&repo);
    let a = &report["actions"][0];
    assert!(a["done"] == true && a["spare"] == false, "{report}");
    assert_eq!(report["spares"]["count"], 0, "{report}");
    assert!(!path_of(&made[0]).exists(), "removed as without spares");
    assert_eq!(
        std::fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "nothing written there"
    );
    assert_all_valid(&repo, 0);
}
