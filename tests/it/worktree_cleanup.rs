//! `baton worktree cleanup` and `prune` on every case of the issue, in one real repository:
//! merged, squash-merged, unmerged, dirty, untracked-only, live owner, dead owner, directory
//! deleted by hand, branch checked out elsewhere, detached. After every cleanup, no commit of
//! an agent branch is lost unless its branch was integrated (checked with the git CLI).

use std::path::PathBuf;

use baton_tests::{TestRepo, write_file};

use crate::support::baton;
use crate::worktree_support::*;

/// The repository with one worktree per case, and the owner processes.
struct Cases {
    repo: TestRepo,
    live: Owner,
    paths: std::collections::BTreeMap<&'static str, PathBuf>,
}

fn cases() -> Cases {
    let repo = TestRepo::new();
    let mut paths = std::collections::BTreeMap::new();

    let p = create(&repo, "merged");
    write_file(&p, "merged.txt", "merged work\n");
    repo.commit_all_in(&p, "merged work");
    repo.git(&["merge", "-q", "--no-ff", "-m", "merge merged", "merged"]);
    paths.insert("merged", p);

    let p = create(&repo, "squashed");
    write_file(&p, "squashed.txt", "one\n");
    repo.commit_all_in(&p, "squash 1");
    write_file(&p, "squashed.txt", "one\ntwo\n");
    repo.commit_all_in(&p, "squash 2");
    repo.git(&["merge", "-q", "--squash", "squashed"]);
    repo.git(&["commit", "-q", "-m", "squashed work"]);
    paths.insert("squashed", p);

    let p = create(&repo, "unmerged");
    write_file(&p, "unmerged.txt", "not merged\n");
    repo.commit_all_in(&p, "unmerged work");
    paths.insert("unmerged", p);

    let p = create(&repo, "dirty");
    write_file(&p, "README.md", "changed but not committed\n");
    paths.insert("dirty", p);

    let p = create(&repo, "untracked");
    write_file(&p, "new-file.txt", "never added\n");
    paths.insert("untracked", p);

    let live = Owner::spawn();
    let out = baton(
        &repo,
        &[
            "--json",
            "worktree",
            "create",
            "live",
            "--owner-pid",
            &live.pid(),
        ],
    )
    .expect_code(0);
    paths.insert(
        "live",
        PathBuf::from(out.json()["created"][0]["path"].as_str().unwrap()),
    );

    let mut dead = Owner::spawn();
    let out = baton(
        &repo,
        &[
            "--json",
            "worktree",
            "create",
            "dead",
            "--owner-pid",
            &dead.pid(),
        ],
    )
    .expect_code(0);
    paths.insert(
        "dead",
        PathBuf::from(out.json()["created"][0]["path"].as_str().unwrap()),
    );
    dead.kill();

    let p = create(&repo, "gone");
    std::fs::remove_dir_all(&p).unwrap();
    paths.insert("gone", p);

    let p = create(&repo, "shared");
    paths.insert("shared", p);
    let elsewhere = repo.scratch("x").join("elsewhere");
    repo.git(&[
        "worktree",
        "add",
        "-q",
        "--force",
        elsewhere.to_str().unwrap(),
        "shared",
    ]);
    write_file(&elsewhere, "README.md", "edited in the second checkout\n");
    paths.insert("elsewhere", elsewhere);

    let det = repo.scratch("x").join("det");
    repo.git(&[
        "worktree",
        "add",
        "-q",
        "--detach",
        det.to_str().unwrap(),
        "HEAD",
    ]);
    write_file(&det, "det.txt", "detached work\n");
    repo.commit_all_in(&det, "detached work");
    paths.insert("det", det);

    let detclean = repo.scratch("x").join("detclean");
    repo.git(&[
        "worktree",
        "add",
        "-q",
        "--detach",
        detclean.to_str().unwrap(),
        "HEAD",
    ]);
    paths.insert("detclean", detclean);

    Cases { repo, live, paths }
}

fn expect(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn each_case_gets_the_right_treatment_and_no_commit_is_lost() {
    let c = cases();
    let repo = &c.repo;
    let audit = Audit::before(repo);
    assert_eq!(
        repo.git(&["rev-list", "unmerged", "^main"]).lines().count(),
        1
    );

    let list = baton(repo, &["--json", "worktree", "list"])
        .expect_code(0)
        .json();
    assert_eq!(listed(&list, "merged")["merge"], "merged");
    assert_eq!(listed(&list, "squashed")["merge"], "squash_merged");
    assert_eq!(listed(&list, "unmerged")["merge"], "unmerged");
    assert_eq!(listed(&list, "unmerged")["ahead"], 1);
    assert_eq!(listed(&list, "dirty")["dirty"]["modified"], 1);
    assert_eq!(listed(&list, "untracked")["dirty"]["untracked"], 1);
    assert_eq!(listed(&list, "untracked")["dirty"]["modified"], 0);
    assert_eq!(listed(&list, "live")["owner_alive"], true);
    assert_eq!(
        listed(&list, "live")["owner"]["pid"].to_string(),
        c.live.pid()
    );
    assert_eq!(listed(&list, "dead")["locked"], true);
    assert_eq!(listed(&list, "dead")["owner_alive"], false);
    assert_eq!(listed(&list, "gone")["prunable"], true);
    assert_eq!(listed(&list, "gone")["exists"], false);
    assert_eq!(listed(&list, "det")["detached"], true);
    assert_eq!(
        listed(&list, "shared")["branch_checked_out_elsewhere"][0],
        c.paths["elsewhere"].to_str().unwrap()
    );
    // git sees baton's owner lock
    let porcelain = repo.git(&["worktree", "list", "--porcelain"]);
    assert!(
        porcelain.contains(&format!("locked baton owner pid={}", c.live.pid())),
        "{porcelain}"
    );

    // A dry run says exactly what the real run then does, and changes nothing.
    let git_before = git_worktrees(repo);
    // By default only baton's worktrees are candidates; the others are listed, not touched,
    // and a worktree with no commits of its own is new, not merged.
    let scoped = baton(repo, &["--json", "worktree", "cleanup", "--dry-run"])
        .expect_code(0)
        .json();
    assert_eq!(scoped["scope"], "baton");
    let scoped = outcome(&scoped);
    for other in ["elsewhere", "det", "detclean"] {
        assert_eq!(scoped[other], "keep:not_created_by_baton", "{other}");
    }
    assert_eq!(scoped["dead"], "keep:new");
    let wide = ["--all", "--min-age", "0s"];
    let dry = baton(
        repo,
        &[
            &["--json", "worktree", "cleanup", "--dry-run"][..],
            &wide[..],
        ]
        .concat(),
    )
    .expect_code(0)
    .json();
    assert_eq!(dry["scope"], "all");
    assert_eq!(git_worktrees(repo), git_before);
    audit.after(repo, "main");
    let real = baton(
        repo,
        &[&["--json", "worktree", "cleanup"][..], &wide[..]].concat(),
    )
    .expect_code(0)
    .json();
    assert_eq!(outcome(&dry), outcome(&real));
    assert_eq!(
        outcome(&real),
        expect(&[
            ("merged", "remove+branch"),
            ("squashed", "remove+branch"),
            ("unmerged", "keep:unmerged"),
            ("dirty", "keep:dirty"),
            ("untracked", "keep:untracked"),
            ("live", "keep:owner_alive"),
            ("dead", "remove+branch"),
            ("gone", "prune"),
            ("shared", "remove keep-branch:checked_out_elsewhere"),
            ("elsewhere", "keep:dirty"),
            ("det", "keep:unmerged"),
            ("detclean", "remove"),
        ])
    );
    audit.after(repo, "main");
    for gone in ["merged", "squashed", "dead", "shared", "detclean"] {
        assert!(!c.paths[gone].exists(), "{gone} should be removed");
    }
    for kept in ["unmerged", "dirty", "untracked", "live", "elsewhere", "det"] {
        assert!(c.paths[kept].join(".git").exists(), "{kept} should be kept");
    }
    assert!(!branch_exists(repo, "merged") && !branch_exists(repo, "squashed"));
    assert!(branch_exists(repo, "unmerged") && branch_exists(repo, "shared"));
    // git agrees: the removed ones are gone for good, nothing is left to prune
    let names: Vec<String> = git_worktrees(repo)
        .into_iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "repo",
            "dirty",
            "live",
            "unmerged",
            "untracked",
            "det",
            "elsewhere"
        ]
    );
    assert_eq!(repo.git(&["worktree", "prune", "-n", "-v"]), "");
    repo.git(&["fsck", "--no-progress"]);

    // --force: dirty and unmerged go (the unmerged branch stays); live owners and detached
    // commits that are on no branch still stay.
    let forced = baton(repo, &["--json", "worktree", "cleanup", "--force", "--all"])
        .expect_code(0)
        .json();
    assert_eq!(
        outcome(&forced),
        expect(&[
            ("unmerged", "remove keep-branch:unmerged"),
            ("dirty", "remove+branch"),
            ("untracked", "remove+branch"),
            ("live", "keep:owner_alive"),
            ("elsewhere", "remove+branch"),
            ("det", "keep:detached_unreachable"),
        ])
    );
    audit.after(repo, "main");
    assert!(branch_exists(repo, "unmerged"));
    assert_eq!(
        repo.git(&["rev-list", "unmerged", "^main"]).lines().count(),
        1
    );
    assert_eq!(repo.git(&["worktree", "prune", "-n", "-v"]), "");
    repo.git(&["fsck", "--no-progress"]);
}

#[test]
fn naming_a_worktree_that_must_be_kept_exits_1_and_removes_nothing_else() {
    let repo = TestRepo::new();
    let keep = create(&repo, "work");
    write_file(&keep, "w.txt", "w\n");
    repo.commit_all_in(&keep, "work");
    let other = create(&repo, "other");
    let run = baton(&repo, &["--json", "worktree", "cleanup", "work"]).expect_code(1);
    let report = run.json();
    assert_eq!(report["kept"][0]["requested"], true);
    assert_eq!(report["kept"][0]["reason"], "unmerged");
    assert!(
        keep.exists() && other.exists(),
        "only the named worktree is considered"
    );
    // an unknown name is bad input
    baton(&repo, &["worktree", "cleanup", "nope"]).expect_code(2);
    // the other one, named, goes once it is old enough to be more than new
    baton(&repo, &["worktree", "cleanup", "other"]).expect_code(1);
    assert!(other.exists());
    baton(&repo, &["worktree", "cleanup", "other", "--min-age", "0s"]).expect_code(0);
    assert!(!other.exists() && keep.exists());
}

#[test]
fn older_than_keeps_young_worktrees() {
    let repo = TestRepo::new();
    let p = create(&repo, "young");
    let report = baton(
        &repo,
        &["--json", "worktree", "cleanup", "--older-than", "1d"],
    )
    .expect_code(0)
    .json();
    assert_eq!(outcome(&report), expect(&[("young", "keep:too_recent")]));
    assert!(p.exists());
    baton(&repo, &["worktree", "cleanup", "--older-than", "soon"]).expect_code(2);
}

#[test]
fn prune_removes_only_entries_whose_directory_is_gone() {
    let repo = TestRepo::new();
    let gone = create(&repo, "gone");
    let here = create(&repo, "here");
    let owner = Owner::spawn();
    let held = create(&repo, "held");
    baton(&repo, &["worktree", "lock", "held", "--pid", &owner.pid()]).expect_code(0);
    std::fs::remove_dir_all(&gone).unwrap();
    std::fs::remove_dir_all(&held).unwrap();

    let dry = baton(&repo, &["--json", "worktree", "prune", "--dry-run"])
        .expect_code(0)
        .json();
    assert_eq!(dry["pruned"][0]["name"], "gone");
    assert_eq!(dry["held"][0]["name"], "held");
    assert!(
        repo.git(&["worktree", "list", "--porcelain"])
            .contains("gone")
    );

    baton(&repo, &["worktree", "prune"]).expect_code(0);
    let listed: Vec<PathBuf> = git_worktrees(&repo).into_iter().map(|(p, _)| p).collect();
    assert!(!listed.contains(&gone));
    assert!(listed.contains(&here) && listed.contains(&held));
    assert!(branch_exists(&repo, "gone"), "prune never deletes branches");
}

#[test]
fn leftovers_of_an_interrupted_removal_are_swept() {
    let repo = TestRepo::new();
    let kept = create(&repo, "kept");
    write_file(&kept, "x.txt", "untracked\n");
    // pid 4294967295 cannot exist, so this removal's process is gone
    let leftover = root(&repo).join(".old.4294967295.baton-removing");
    write_file(&leftover, "deep/file", "half deleted\n");
    let dry = baton(&repo, &["--json", "worktree", "cleanup", "--dry-run"])
        .expect_code(0)
        .json();
    assert_eq!(dry["swept"][0], leftover.to_str().unwrap());
    assert!(leftover.exists());
    baton(&repo, &["worktree", "cleanup"]).expect_code(0);
    assert!(!leftover.exists() && kept.exists());
}
