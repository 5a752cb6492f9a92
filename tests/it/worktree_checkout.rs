//! The fast checkout (`checkout::populate_many`, several worktrees of one base written
//! together) against git itself: every worktree baton makes holds, byte for byte and mode for
//! mode, what `git worktree add` checks out, with an index git finds clean without refreshing.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use baton_tests::TestRepo;

use crate::support::baton;
use crate::worktree_support::{assert_all_valid, git_worktrees};

/// What a checkout holds, outside `.git`: per path, its kind, permission bits and content
/// (a symlink's target).
pub(crate) fn snapshot(root: &Path) -> BTreeMap<String, (char, u32, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (char, u32, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).expect("read dir") {
            let e = e.expect("dir entry");
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if rel == ".git" {
                continue;
            }
            let meta = std::fs::symlink_metadata(&p).expect("lstat");
            let mode = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&p).expect("readlink");
                let target = target.to_string_lossy().as_bytes().to_vec();
                out.insert(rel, ('l', 0, target));
            } else if meta.is_dir() {
                out.insert(rel, ('d', mode, Vec::new()));
                walk(root, &p, out);
            } else {
                out.insert(rel, ('f', mode, std::fs::read(&p).expect("read")));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// `main` checked out by `git worktree add` (on branch `g`): what baton's checkouts must equal.
fn checkout_by_git(repo: &TestRepo) -> PathBuf {
    let by_git = repo.scratch("x").join("by-git");
    let path = by_git.to_str().unwrap();
    repo.git(&["worktree", "add", "-q", "-b", "g", path, "main"]);
    by_git
}

/// A tree with what a checkout must get right: nesting, empty and binary files, executables,
/// symlinks (relative, dangling, to a directory), odd names, many files in one directory.
pub(crate) fn varied_repo() -> TestRepo {
    let repo = TestRepo::new();
    for i in 0..120 {
        let depth = i % 6;
        let mut path: Vec<String> = (0..depth).map(|d| format!("lvl{d}-{}", i % 3)).collect();
        path.push(format!("f{i}.rs"));
        let body = "line of text\n".repeat(i * 7 % 50);
        repo.write(&path.join("/"), &body);
    }
    repo.write("wide/empty.txt", "");
    repo.write("name with spaces/é ü.md", "unicode name\n");
    repo.write("no-newline", "no newline at the end");
    repo.write("crlf.txt", "kept as is\r\n");
    std::fs::write(
        repo.path().join("blob.bin"),
        (0..=255u8).cycle().take(70_000).collect::<Vec<u8>>(),
    )
    .unwrap();
    repo.write("bin/run.sh", "#!/bin/sh\necho hi\n");
    std::fs::set_permissions(
        repo.path().join("bin/run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("bin/run.sh", repo.path().join("link")).unwrap();
    std::os::unix::fs::symlink("../nowhere", repo.path().join("bin/dangling")).unwrap();
    std::os::unix::fs::symlink("lvl0-1", repo.path().join("dirlink")).unwrap();
    repo.commit_all("varied tree");
    repo
}

#[test]
fn several_worktrees_at_once_match_git_worktree_add_byte_for_byte_and_mode_for_mode() {
    let repo = varied_repo();
    let out = baton(
        &repo,
        &[
            "--json",
            "worktree",
            "create",
            "--plan",
            "OP-20260101-000000-0000c0de",
            "--agent",
            "a",
            "--agent",
            "b",
            "--agent",
            "c",
        ],
    )
    .expect_code(0)
    .json();
    let ours: Vec<PathBuf> = out["created"]
        .as_array()
        .expect("created")
        .iter()
        .map(|c| PathBuf::from(c["path"].as_str().expect("path")))
        .collect();
    assert_eq!(ours.len(), 3);
    let by_git = checkout_by_git(&repo);
    let want = snapshot(&by_git);
    assert!(
        want.len() > 130,
        "the tree is what the test means: {}",
        want.len()
    );
    assert_eq!(
        want["bin/run.sh"].1 & 0o111,
        0o111,
        "git made it executable"
    );
    for p in &ours {
        let got = snapshot(p);
        let differ: std::collections::BTreeSet<&String> = want
            .keys()
            .chain(got.keys())
            .filter(|k| want.get(*k) != got.get(*k))
            .collect();
        assert!(
            differ.is_empty(),
            "{p:?} differs from git's checkout at {differ:?}"
        );
        // the same index entries (paths, modes, blobs) as git's
        assert_eq!(
            repo.git_in(p, &["ls-files", "--stage"]),
            repo.git_in(&by_git, &["ls-files", "--stage"])
        );
    }
    repo.git(&["worktree", "remove", by_git.to_str().unwrap()]);
    // clean to git without a refresh (stat data right), on their branches, fsck clean
    assert_all_valid(&repo, 3);
}

#[test]
fn new_plan_directories_are_marked_as_tops_of_directory_hierarchies() {
    if !baton_tests::require_program(
        "new_plan_directories_are_marked_as_tops_of_directory_hierarchies",
        &["lsattr", "-d", "/"],
        "it reads the inode flags baton sets",
        "apt-get install e2fsprogs",
    ) {
        return;
    }
    let repo = TestRepo::new();
    let plan = "OP-20260101-000000-0000d1e5";
    baton(
        &repo,
        &["worktree", "create", "--plan", plan, "--agent", "a"],
    )
    .expect_code(0);
    let root = crate::worktree_support::root(&repo);
    match lsattr(&root.join(plan)) {
        // ext4 and others with the attribute: set on what baton made
        Some(flags) => {
            assert!(flags.contains('T'), "plan dir flags {flags}");
            assert!(lsattr(&root).is_some_and(|f| f.contains('T')), "root");
        }
        // a filesystem without inode flags (tmpfs): the hint is skipped, create still works
        None => baton_tests::skip("the temp dir's filesystem has no inode flags (tmpfs?)"),
    }
    assert_all_valid(&repo, 1);
}

/// The inode flags `lsattr -d` shows, or `None` when the filesystem has none.
fn lsattr(dir: &Path) -> Option<String> {
    let out = std::process::Command::new("lsattr")
        .arg("-d")
        .arg(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace().next().map(str::to_owned)
}

/// The trees the fast path writes its own index for, or hands to libgit2: a submodule (an
/// index entry and an empty directory, no file) and a name that is not UTF-8 (its bytes kept,
/// not replaced). Each worktree holds what `git worktree add` makes, with the same index.
#[test]
fn submodules_and_names_that_are_not_utf8_are_checked_out_as_git_does() {
    use std::os::unix::ffi::OsStrExt;
    let submodule = TestRepo::new();
    for odd_name in [false, true] {
        let repo = TestRepo::new();
        for i in 0..40 {
            repo.write(
                &format!("src/m{}/f{i}.rs", i % 4),
                &format!("fn f{i}() {{}}\n"),
            );
        }
        // names next to a directory, in byte order: `-` and `.` sort before `/`
        repo.write("a-b", "1\n");
        repo.write("a/b", "2\n");
        repo.write("a.b", "3\n");
        if odd_name {
            let name = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
            std::fs::write(repo.path().join("src").join(name), "latin-1 name\n").unwrap();
        }
        repo.git(&["add", "-A"]);
        let head = submodule.git(&["rev-parse", "HEAD"]);
        repo.git(&[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("160000,{head},vendor/sub"),
        ]);
        repo.git(&["commit", "-q", "-m", "with a submodule"]);
        let plan = if odd_name {
            "OP-20260101-000000-0000f00d"
        } else {
            "OP-20260101-000000-0000f00c"
        };
        let out = baton(
            &repo,
            &[
                "--json", "worktree", "create", "--plan", plan, "--agent", "a", "--agent", "b",
            ],
        )
        .expect_code(0)
        .json();
        let by_git = checkout_by_git(&repo);
        let want = snapshot(&by_git);
        assert!(by_git.join("vendor/sub").is_dir(), "git made the directory");
        for c in out["created"].as_array().expect("created") {
            let p = PathBuf::from(c["path"].as_str().expect("path"));
            assert_eq!(snapshot(&p), want, "{p:?} (odd name: {odd_name})");
            assert!(p.join("vendor/sub").is_dir(), "{p:?}");
            if odd_name {
                let name = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
                assert!(p.join("src").join(name).is_file(), "{p:?}: bytes kept");
            }
            let stage = repo.git_in(&p, &["ls-files", "--stage"]);
            assert!(
                stage.contains(&format!("160000 {head} 0\tvendor/sub")),
                "{stage}"
            );
            assert_eq!(stage, repo.git_in(&by_git, &["ls-files", "--stage"]));
        }
        repo.git(&["worktree", "remove", by_git.to_str().unwrap()]);
        assert_all_valid(&repo, 2);
    }
}

/// A commit whose tree has one crafted entry under `sub/` (as `git hash-object --literally`
/// writes what no git command would), beside a plain file; `link` adds a symlink `s` to
/// `target` at the top.
fn crafted_commit(repo: &TestRepo, name: &[u8], link: Option<&Path>) -> String {
    let hash = |kind: &str, data: &[u8]| -> Vec<u8> {
        let mut child = repo
            .command("git", repo.path())
            .args(["hash-object", "-w", "--literally", "-t", kind, "--stdin"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(data).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let hex = String::from_utf8(out.stdout).unwrap();
        (0..40)
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex.trim()[i..i + 2], 16).unwrap())
            .collect()
    };
    let entry = |mode: &str, name: &[u8], oid: &[u8]| -> Vec<u8> {
        [mode.as_bytes(), b" ", name, b"\0", oid].concat()
    };
    let blob = hash("blob", b"pwned\n");
    let sub = hash("tree", &entry("100644", name, &blob));
    let mut top = entry("100644", b"f", &blob);
    if let Some(target) = link {
        let l = hash("blob", target.to_str().unwrap().as_bytes());
        top.extend(entry("120000", b"s", &l));
    }
    top.extend(entry("40000", b"sub", &sub));
    let tree = hash("tree", &top);
    let hex: String = tree.iter().map(|b| format!("{b:02x}")).collect();
    repo.git(&["commit-tree", &hex, "-m", "crafted"])
}

/// A base whose tree names a path git refuses (`..`, `.`, `.git` in any case, a `/` inside a
/// name — with a symlink the same tree writes, a path through it) is refused with exit 2 and
/// nothing written anywhere: not outside the worktree root, not a worktree, not a branch.
/// Look-alikes of `.git` are left to libgit2's checkout, which refuses them as git does;
/// ordinary dot-names stay on the fast path.
#[test]
fn a_tree_entry_git_refuses_is_refused_and_nothing_is_written() {
    let repo = TestRepo::new();
    let outside = repo.scratch("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let escape = b"../../../../../escaped.txt".to_vec();
    let cases: Vec<(Vec<u8>, Option<&Path>, Option<i32>)> = vec![
        (b"..".to_vec(), None, Some(2)),
        (b".".to_vec(), None, Some(2)),
        (b".git".to_vec(), None, Some(2)),
        (b".GiT".to_vec(), None, Some(2)),
        (escape, None, Some(2)),
        (b"../s/x".to_vec(), Some(&outside), Some(2)),
        (b".git.".to_vec(), None, None),
        (b"git~1".to_vec(), None, None),
        (b".g\xe2\x80\x8cit".to_vec(), None, None),
        (b"time:12.txt".to_vec(), None, None),
        (b"back\\slash".to_vec(), None, None),
        (b".gitmodules".to_vec(), Some(&outside), None),
    ];
    for (i, (name, link, code)) in cases.iter().enumerate() {
        let c = crafted_commit(&repo, name, *link);
        let run = baton(
            &repo,
            &[
                "worktree",
                "create",
                "--plan",
                "OP-20260101-000000-0000bad0",
                "--no-setup",
                "--agent",
                &format!("a{i}"),
                "--base",
                &c,
            ],
        );
        let shown = String::from_utf8_lossy(name);
        match code {
            Some(code) => {
                let run = run.expect_code(*code);
                assert!(
                    run.stderr.contains("git refuses to check out"),
                    "{shown}: {}",
                    run.stderr
                );
            }
            // look-alikes: libgit2 decides, and agrees with git (the oracle)
            None => {
                let wt = repo.scratch("oracle").join(format!("g{i}"));
                let by_git = repo.git_output(
                    repo.path(),
                    &[
                        "worktree",
                        "add",
                        "-q",
                        "--detach",
                        wt.to_str().unwrap(),
                        &c,
                    ],
                );
                assert_eq!(
                    run.code == 0,
                    by_git.status.success(),
                    "{shown}: baton exit {}, {}; git: {}",
                    run.code,
                    run.stderr,
                    String::from_utf8_lossy(&by_git.stderr)
                );
                if run.code == 0 {
                    // what both wrote is removed again for the checks below
                    repo.git(&["worktree", "remove", "--force", wt.to_str().unwrap()]);
                    let ours = format!("OP-20260101-000000-0000bad0/a{i}");
                    let ours = crate::worktree_support::root(&repo).join(ours);
                    repo.git(&["worktree", "remove", "--force", ours.to_str().unwrap()]);
                    let branch = format!("baton/OP-20260101-000000-0000bad0/a{i}");
                    repo.git(&["branch", "-D", &branch]);
                } else {
                    let _ = std::fs::remove_dir_all(&wt);
                    repo.git(&["worktree", "prune"]);
                }
            }
        }
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "{shown}: written through the symlink"
        );
        let mut up = repo.path().to_path_buf();
        while let Some(p) = up.parent() {
            assert!(!p.join("escaped.txt").exists(), "{shown}: escaped to {p:?}");
            up = p.to_path_buf();
        }
        assert_eq!(
            git_worktrees(&repo).len(),
            1,
            "{shown}: a worktree was left"
        );
        assert_eq!(
            repo.git(&["branch", "--list", "baton/*"]),
            "",
            "{shown}: a branch was left"
        );
    }
    // names that only look close stay ordinary files
    let c = crafted_commit(&repo, b".github", None);
    let out = baton(
        &repo,
        &[
            "--json",
            "worktree",
            "create",
            "--plan",
            "OP-20260101-000000-0000bad0",
            "--agent",
            "ok",
            "--base",
            &c,
        ],
    )
    .expect_code(0)
    .json();
    let p = PathBuf::from(out["created"][0]["path"].as_str().unwrap());
    assert_eq!(std::fs::read(p.join("sub/.github")).unwrap(), b"pwned\n");
    // (no whole-repo fsck here: the crafted trees are what `git fsck --strict` exists to flag)
    assert_eq!(repo.git_in(&p, &["diff-files", "--name-only"]), "");
    assert_eq!(repo.git_in(&p, &["status", "--porcelain"]), "");
}

/// The user's own attributes file (`~/.config/git/attributes`, read by git without any
/// setting) asks for CRLF: baton's worktrees hold what git's does, line endings converted.
#[test]
fn the_users_attributes_file_is_honoured_as_git_honours_it() {
    let repo = TestRepo::new();
    for i in 0..20 {
        repo.write(&format!("d/f{i}.txt"), "one\ntwo\n");
    }
    repo.commit_all("text");
    let attrs = repo.home().join(".config/git/attributes");
    std::fs::create_dir_all(attrs.parent().unwrap()).unwrap();
    std::fs::write(&attrs, "*.txt text eol=crlf\n").unwrap();
    let out = baton(
        &repo,
        &[
            "--json",
            "worktree",
            "create",
            "--plan",
            "OP-20260101-000000-0000a77e",
            "--agent",
            "a",
            "--agent",
            "b",
        ],
    )
    .expect_code(0)
    .json();
    let by_git = checkout_by_git(&repo);
    assert_eq!(
        std::fs::read(by_git.join("d/f0.txt")).unwrap(),
        b"one\r\ntwo\r\n",
        "git converted"
    );
    let want = snapshot(&by_git);
    for c in out["created"].as_array().expect("created") {
        let p = PathBuf::from(c["path"].as_str().expect("path"));
        assert_eq!(snapshot(&p), want, "{p:?}");
        assert_eq!(repo.git_in(&p, &["status", "--porcelain"]), "", "{p:?}");
    }
}
