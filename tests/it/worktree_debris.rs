//! Class 6 of issue 8: creates that fail or are killed never hang and never leave debris the
//! next `create --plan` or `cleanup` cannot handle. Failing creates roll back without waiting
//! on their own lock; a SIGKILL at a random moment (fixed seed) of `create --plan` with 8
//! agents and of `create --reuse` is followed by a check that the repository is sound.
//!
//! `BATON_SIGKILL_ITERATIONS` (default 50) sets how many kills each test makes.

use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use baton_tests::{TestRepo, write_file};

use crate::support::{BATON, baton};
use crate::worktree_support::*;

const PLAN: &str = "OP-20260101-000000-0000abcd";

/// Wait for `child` at most `limit`; a create that outlives it is a hang.
fn wait_or_hang(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} hung for {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn spawn(repo: &TestRepo, args: &[&str]) -> Child {
    repo.command(BATON, repo.path())
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn baton")
}

fn agents(n: usize) -> Vec<String> {
    (1..=n)
        .flat_map(|i| ["--agent".to_owned(), format!("a{i}")])
        .collect()
}

fn create_plan_args(plan: &str, n: usize, reuse: bool) -> Vec<String> {
    let mut args: Vec<String> = ["--json", "worktree", "create", "--plan", plan]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    args.extend(agents(n));
    if reuse {
        args.push("--reuse".to_owned());
    }
    args
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Nothing of baton's is left: no linked worktree, no `baton/` branch, no journal, nothing
/// under the worktree root but empty directories.
#[track_caller]
fn assert_clean_slate(repo: &TestRepo) {
    assert_eq!(git_worktrees(repo).len(), 1, "{:?}", git_worktrees(repo));
    assert_eq!(repo.git(&["for-each-ref", "refs/heads/baton/"]), "");
    let journal =
        PathBuf::from(repo.git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]))
            .join("baton-journal");
    let left = std::fs::read_dir(&journal).map(|r| r.count()).unwrap_or(0);
    assert_eq!(left, 0, "journal records left in {}", journal.display());
    assert_eq!(repo.git(&["worktree", "prune", "-n", "-v"]), "");
    let placing: Vec<PathBuf> = std::fs::read_dir(root(repo))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|plan| std::fs::read_dir(plan.path()).ok())
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with(".baton-new.") || n.starts_with(".baton-stage.")
            })
        })
        .collect();
    assert_eq!(placing, Vec::<PathBuf>::new(), "placement directories left");
}

#[test]
fn a_create_that_fails_rolls_back_and_does_not_deadlock() {
    let repo = TestRepo::new();
    // a root that cannot be created: its parent is a file
    let blocker = repo.scratch("x").join("blocker");
    std::fs::write(&blocker, "a file\n").unwrap();
    repo.write(
        ".config/baton.toml",
        &format!("[worktree]\nroot = {:?}\n", blocker.join("root")),
    );
    let args = create_plan_args(PLAN, 2, false);
    let mut child = spawn(&repo, &strs(&args));
    let status = wait_or_hang(&mut child, Duration::from_secs(30), "a failing create");
    assert_eq!(status.code(), Some(3));
    assert_clean_slate(&repo);
    // the lock was released: the next create and cleanup run
    std::fs::remove_file(repo.path().join(".config/baton.toml")).unwrap();
    baton(&repo, &strs(&args)).expect_code(0);
    baton(&repo, &["worktree", "cleanup", "--force"]).expect_code(0);
    assert_clean_slate(&repo);
}

#[test]
fn concurrent_creates_of_one_plan_one_wins_and_none_hangs() {
    let repo = TestRepo::new();
    let args = create_plan_args(PLAN, 3, false);
    let mut children: Vec<Child> = (0..4).map(|_| spawn(&repo, &strs(&args))).collect();
    let codes: Vec<Option<i32>> = children
        .iter_mut()
        .map(|c| wait_or_hang(c, Duration::from_secs(60), "a concurrent create").code())
        .collect();
    assert_eq!(
        codes.iter().filter(|c| **c == Some(0)).count(),
        1,
        "{codes:?}"
    );
    assert!(codes.iter().all(|c| matches!(c, Some(0 | 2))), "{codes:?}");
    assert_all_valid(&repo, 3);
    baton(&repo, &["worktree", "cleanup", "--force"]).expect_code(0);
    assert_clean_slate(&repo);
}

fn iterations() -> u64 {
    std::env::var("BATON_SIGKILL_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50)
}

/// A fixed-seed generator (numerical recipes' LCG): the same kill moments every run.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

/// Run `args` and SIGKILL it after a random delay below `window`.
fn kill_at_random(repo: &TestRepo, args: &[String], rng: &mut Lcg, window: Duration) {
    let mut child = spawn(repo, &strs(args));
    let micros = rng.below(window.as_micros() as u64);
    std::thread::sleep(Duration::from_micros(micros));
    let _ = child.kill();
    let _ = child.wait();
}

/// How long one full run of `args` takes (the kill window).
fn duration_of(repo: &TestRepo, args: &[String]) -> Duration {
    let start = Instant::now();
    baton(repo, &strs(args)).expect_code(0);
    start.elapsed()
}

/// After a kill: the same create again either succeeds or (if the killed one had finished
/// some worktrees) refuses with exit 2 while those are complete; cleanup then leaves a clean
/// slate.
/// `check` then looks at the worktrees the plan has.
#[track_caller]
fn recovers(repo: &TestRepo, args: &[String], n: usize, check: &dyn Fn(&TestRepo)) {
    let again = baton(repo, &strs(args));
    match again.code {
        0 => {}
        2 => assert!(again.stderr.contains("already exists"), "{}", again.stderr),
        other => panic!("create after a kill exited {other}: {}", again.stderr),
    }
    // Every worktree of the plan is registered and complete (git would not prune it): all of
    // them after a successful run; after a refusal, those the killed run had finished (it is
    // rolled forward item by item, and back for the rest).
    let listed = git_worktrees(repo);
    if again.code == 0 {
        assert_eq!(listed.len(), n + 1, "{listed:?}");
    } else {
        assert!(
            (2..=n + 1).contains(&listed.len()),
            "{listed:?}\n{}\n{}",
            again.stderr,
            baton(repo, &["--json", "worktree", "cleanup", "--dry-run"]).stdout
        );
    }
    assert!(
        listed.iter().all(|(_, head)| !head.contains("prunable")),
        "{listed:?}"
    );
    check(repo);
    let report = baton(
        repo,
        &[
            "--json",
            "worktree",
            "cleanup",
            "--force",
            "--min-age",
            "0s",
        ],
    )
    .expect_code(0)
    .json();
    assert_eq!(report["kept"], serde_json::json!([]), "{report:#}");
    assert_clean_slate(repo);
}

#[test]
fn sigkill_at_any_moment_of_create_plan_leaves_nothing_the_next_run_cannot_handle() {
    let repo = TestRepo::new();
    let args = create_plan_args(PLAN, 8, false);
    let window = duration_of(&repo, &args).mul_f64(1.2);
    baton(&repo, &["worktree", "cleanup", "--force"]).expect_code(0);
    let mut rng = Lcg(8);
    for _ in 0..iterations() {
        kill_at_random(&repo, &args, &mut rng, window);
        recovers(&repo, &args, 8, &|_| {});
    }
    repo.git(&["fsck", "--no-progress", "--strict"]);
}

#[test]
fn sigkill_at_any_moment_of_create_reuse_leaves_nothing_the_next_run_cannot_handle() {
    let repo = TestRepo::new();
    repo.write(".gitignore", "target/\n.env\n");
    repo.commit_all("ignore");
    // new worktrees are reusable at once
    repo.write(".config/baton.toml", "[worktree]\nmin_age = \"0s\"\n");
    repo.write(".git/info/exclude", "/.config/\n");
    let donor = |i: u64| {
        let plan = format!("OP-20260101-000000-{i:08x}");
        let out = baton(
            &repo,
            &[
                "--json", "worktree", "create", "--plan", &plan, "--agent", "d",
            ],
        )
        .expect_code(0)
        .json();
        let p = PathBuf::from(out["created"][0]["path"].as_str().unwrap());
        write_file(&p, ".env", "SECRET=donor\n");
        write_file(&p, "target/cache", "warm\n");
    };
    let args = create_plan_args(PLAN, 1, true);
    donor(0);
    let window = duration_of(&repo, &args).mul_f64(1.2);
    baton(&repo, &["worktree", "cleanup", "--force"]).expect_code(0);
    let mut rng = Lcg(1);
    for i in 1..=iterations() {
        donor(i);
        kill_at_random(&repo, &args, &mut rng, window);
        recovers(&repo, &args, 1, &secrets_never_travel);
    }
    repo.git(&["fsck", "--no-progress", "--strict"]);
}

/// The plan's worktree (made fresh or from the donor) never holds the donor's `.env`.
fn secrets_never_travel(repo: &TestRepo) {
    let root = root(repo).join(PLAN).join("a1");
    assert!(root.join(".git").is_file(), "{} exists", root.display());
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        let Ok(read) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in read.flatten() {
            let p = e.path();
            assert_ne!(e.file_name(), ".env", "{} leaked", p.display());
            if e.file_type().is_ok_and(|t| t.is_dir()) && !is_git_dir(&p) {
                stack.push(p);
            }
        }
    }
}

fn is_git_dir(p: &Path) -> bool {
    p.file_name().is_some_and(|n| n == ".git")
}

/// Cleanup lists the debris of a create killed mid-way (`--dry-run` changes nothing) and then
/// removes it: a branch at its base, an admin dir cut short before `gitdir`, a directory with
/// half a `.git` file, the directories made under temporary names while placing it (not one
/// that holds anything else) and a stage its checkout created files in.
#[test]
fn cleanup_lists_then_removes_the_debris_of_a_killed_create() {
    let repo = TestRepo::new();
    let base = repo.git(&["rev-parse", "main"]);
    let branch = format!("baton/{PLAN}/a1");
    repo.git(&["branch", &branch, "main"]);
    let common = repo.path().join(".git");
    // pid 4294967295 cannot exist: the creator is gone
    let dead = "baton owner pid=4294967295 start=1";
    let admin = common.join("worktrees/a1");
    write_file(&admin, "locked", &format!("{dead}\n"));
    write_file(&admin, "commondir", "../..\n");
    write_file(&admin, "HEAD", &format!("ref: refs/heads/{branch}\n"));
    let path = root(&repo).join(PLAN).join("a1");
    // the checkout was cut short: the entry is complete, its files are not
    write_file(
        &admin,
        "gitdir",
        &format!("{}\n", path.join(".git").display()),
    );
    write_file(&path, ".git", &format!("gitdir: {}\n", admin.display()));
    // directories made under temporary names while the worktree was being placed: one with
    // the whole `.git`, one with half, one empty — and one that someone put work in
    let plan_dir = root(&repo).join(PLAN);
    let temp = |k: usize| plan_dir.join(format!(".baton-new.a1.{k}"));
    write_file(&temp(0), ".git", &format!("gitdir: {}\n", admin.display()));
    write_file(&temp(1), ".git", "gitdir: /");
    std::fs::create_dir(temp(2)).unwrap();
    write_file(&temp(3), "notes.txt", "mine\n");
    // and a stage its checkout was creating files through, with two files not yet moved
    let stage = plan_dir.join(".baton-stage.a1.0");
    write_file(&stage, ".git", &format!("gitdir: {}\n", admin.display()));
    write_file(&stage, "0", "fn main() {}\n");
    write_file(&stage, "1", "x\n");
    let journal = serde_json::json!({
        "schema_version": 1,
        "owner": {"pid": 4294967295u32, "start_time": 1},
        "items": [{
            "branch": branch, "base_commit": base, "path": path,
            "plan": PLAN, "agent": "a1", "admin": "a1"
        }]
    });
    let record = common.join("baton-journal/4294967295-1.json");
    write_file(
        record.parent().unwrap(),
        "4294967295-1.json",
        &journal.to_string(),
    );

    let dry = baton(&repo, &["--json", "worktree", "cleanup", "--dry-run"])
        .expect_code(0)
        .json();
    let steps = dry["debris"][0]["steps"].to_string();
    for what in ["remove", "admin dir", "delete branch"] {
        assert!(steps.contains(what), "{what} missing from {steps}");
    }
    for k in 0..3 {
        let name = format!(".baton-new.a1.{k}");
        assert!(steps.contains(&name), "{name} missing from {steps}");
    }
    assert!(!steps.contains(".baton-new.a1.3"), "{steps}");
    assert!(steps.contains(".baton-stage.a1.0"), "{steps}");
    assert!(record.exists() && admin.exists() && path.exists());
    assert!((0..4).all(|k| temp(k).exists()) && stage.join("1").exists());
    assert!(branch_exists(&repo, &branch));

    let real = baton(&repo, &["--json", "worktree", "cleanup"])
        .expect_code(0)
        .json();
    assert_eq!(real["debris"][0]["steps"], dry["debris"][0]["steps"]);
    assert_eq!(outcome(&real), outcome(&dry));
    assert!(!record.exists() && !admin.exists() && !path.exists());
    assert!((0..3).all(|k| !temp(k).exists()) && !stage.exists());
    assert_eq!(
        std::fs::read_to_string(temp(3).join("notes.txt")).unwrap(),
        "mine\n"
    );
    std::fs::remove_dir_all(temp(3)).unwrap();
    assert_clean_slate(&repo);
    // and the plan can be created again
    baton(&repo, &strs(&create_plan_args(PLAN, 1, false))).expect_code(0);
}

/// With `[worktree] spares`, a SIGKILL at any moment of a create that takes spares leaves
/// nothing the next run cannot handle: every worktree made is complete and clean, spares
/// claimed by the killed process are freed as debris, and they never exceed the configured
/// number. (`BATON_SIGKILL_ITERATIONS` / 5 kills.)
#[test]
fn sigkill_at_any_moment_of_create_from_spares_leaves_nothing_the_next_run_cannot_handle() {
    let repo = TestRepo::new();
    repo.write(".gitignore", "target/\n.env\n");
    repo.commit_all("ignore");
    repo.write(".config/baton.toml", "[worktree]\nspares = 4\n");
    repo.write(".git/info/exclude", "/.config/\n");
    let args = create_plan_args(PLAN, 4, false);
    let cleanup: Vec<String> = ["worktree", "cleanup", "--force", "--min-age", "0s"]
        .map(str::to_owned)
        .to_vec();
    duration_of(&repo, &args);
    baton(&repo, &strs(&cleanup)).expect_code(0);
    // from spares: the window of the path under test
    let window = duration_of(&repo, &args).mul_f64(1.2);
    let spares = |repo: &TestRepo| {
        std::fs::read_dir(root(repo).join(".spares"))
            .map(|r| {
                r.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("s-"))
                    .count()
            })
            .unwrap_or(0)
    };
    let clean = |repo: &TestRepo| {
        for (path, _) in &git_worktrees(repo)[1..] {
            assert_eq!(
                repo.git_in(path, &["status", "--porcelain"]),
                "",
                "{path:?}"
            );
            assert_eq!(
                repo.git_in(path, &["diff-files", "--name-only"]),
                "",
                "{path:?}"
            );
        }
    };
    let mut rng = Lcg(5);
    for _ in 0..iterations().div_ceil(5) {
        // recovers() ends with a cleanup, which refills the spares for the next kill
        kill_at_random(&repo, &args, &mut rng, window);
        recovers(&repo, &args, 4, &clean);
        assert!(spares(&repo) <= 4);
    }
    repo.write(".config/baton.toml", "[worktree]\nspares = 0\n");
    baton(&repo, &strs(&cleanup)).expect_code(0);
    assert!(!root(&repo).join(".spares").exists());
    repo.git(&["fsck", "--no-progress", "--strict"]);
}

/// A SIGKILL at any moment of `cleanup` — worktrees removed first, their branches deleted
/// after — leaves nothing the next run cannot handle: the next command finishes the branch
/// deletions the dead cleanup recorded (so no `baton/` branch outlives its worktree and blocks
/// `create --plan` with "already exists"), and the next cleanup leaves a clean slate.
/// (`BATON_SIGKILL_ITERATIONS` / 5 kills.)
#[test]
fn sigkill_at_any_moment_of_cleanup_leaves_no_branch_behind() {
    let repo = TestRepo::new();
    let args = create_plan_args(PLAN, 8, false);
    let cleanup: Vec<String> = ["worktree", "cleanup", "--force", "--min-age", "0s"]
        .map(str::to_owned)
        .to_vec();
    baton(&repo, &strs(&args)).expect_code(0);
    let window = duration_of(&repo, &cleanup).mul_f64(1.2);
    let mut rng = Lcg(13);
    for _ in 0..iterations().div_ceil(5) {
        baton(&repo, &strs(&args)).expect_code(0);
        let before = Audit::before(&repo);
        kill_at_random(&repo, &cleanup, &mut rng, window);
        recovers(&repo, &args, 8, &|_| {});
        before.after(&repo, "main");
    }
    repo.git(&["fsck", "--no-progress", "--strict"]);
}

/// The same window made certain: a dead cleanup's record names branches whose worktrees are
/// gone. The next command deletes a branch whose work is in the target, keeps one with work
/// the target lacks (and `create --plan` then refuses that agent, naming its branch).
#[test]
fn a_dead_cleanups_branches_are_deleted_only_when_their_work_is_in_the_target() {
    let repo = TestRepo::new();
    let args = create_plan_args(PLAN, 2, false);
    let out = baton(&repo, &strs(&args)).expect_code(0).json();
    let path = |i: usize| PathBuf::from(out["created"][i]["path"].as_str().unwrap());
    // a2 has work the target lacks; a1 has none
    let head = repo.git(&["rev-parse", "HEAD"]);
    write_file(&path(1), "only-here.txt", "work\n");
    let work = repo.commit_all_in(&path(1), "a2's work");
    let (b1, b2) = (format!("baton/{PLAN}/a1"), format!("baton/{PLAN}/a2"));
    for i in 0..2 {
        repo.git(&["worktree", "remove", "--force", path(i).to_str().unwrap()]);
    }
    let journal =
        PathBuf::from(repo.git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]))
            .join("baton-journal");
    std::fs::create_dir_all(&journal).unwrap();
    // a dead owner: pid 1 never has this start time
    let record = serde_json::json!({
        "schema_version": 1,
        "owner": {"pid": 1, "start_time": 1},
        "target": head,
        "branches": [{"branch": b1, "head": head}, {"branch": b2, "head": work}],
    });
    std::fs::write(journal.join("remove-1-1.json"), record.to_string()).unwrap();
    let before = Audit::before(&repo);
    let again = baton(&repo, &strs(&args));
    assert!(again.stderr.contains(&b2), "{}", again.stderr);
    again.expect_code(2);
    assert_eq!(
        repo.git(&["for-each-ref", "--format=%(refname)", "refs/heads/baton/"]),
        format!("refs/heads/{b2}")
    );
    before.after(&repo, "main");
    assert_eq!(std::fs::read_dir(&journal).unwrap().count(), 0);
}

/// A cleanup that keeps finished worktrees as spares, SIGKILLed at random moments (fixed
/// seed): the next plain cleanup (no `--force`) leaves no worktree, no `baton/` branch and no
/// journal record — in particular no entry whose directory had already moved into the spares
/// (it used to stay until `cleanup --force`) — and the next create works, from the spares.
#[test]
fn sigkill_at_any_moment_of_cleanup_into_spares_leaves_nothing_the_next_cleanup_cannot_handle() {
    let repo = TestRepo::new();
    repo.write(
        ".config/baton.toml",
        "[worktree]\nmin_age = \"0s\"\nspares = 8\n",
    );
    repo.write(".git/info/exclude", "/.config/\n");
    let create = create_plan_args(PLAN, 8, false);
    let cleanup: Vec<String> = ["--json", "worktree", "cleanup"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    baton(&repo, &strs(&create)).expect_code(0);
    let window = duration_of(&repo, &cleanup).mul_f64(1.2);
    let mut rng = Lcg(5);
    let mut cut_short = 0;
    for _ in 0..iterations() {
        baton(&repo, &strs(&create)).expect_code(0);
        kill_at_random(&repo, &cleanup, &mut rng, window);
        if git_worktrees(&repo).len() > 1 {
            cut_short += 1;
        }
        let report = baton(&repo, &strs(&cleanup)).expect_code(0).json();
        assert_eq!(report["kept"], serde_json::json!([]), "{report:#}");
        assert_eq!(
            repo.git(&["for-each-ref", "refs/heads/baton/"]),
            "",
            "{report:#}"
        );
        assert_clean_slate(&repo);
    }
    assert!(cut_short > 0, "no kill landed inside a cleanup");
    // the spares left are whole: the next create takes them
    let made = baton(&repo, &strs(&create)).expect_code(0).json();
    assert_eq!(
        made["created"].as_array().map(Vec::len),
        Some(8),
        "{made:#}"
    );
    repo.git(&["fsck", "--no-progress", "--strict"]);
}

/// The one moment of making a spare a random kill rarely hits: the worktree's files already
/// moved into the spare being made, its git entry still there. The next plain cleanup (no
/// `--force`, which a missing directory otherwise needs) removes the entry — the worktree was
/// proven clean and integrated before it moved —, the dead cleanup's record deletes the
/// branch, and `--dry-run` says so first without changing anything.
#[test]
fn a_cleanup_killed_while_moving_a_worktree_into_the_spares_is_finished_without_force() {
    let repo = TestRepo::new();
    repo.write(
        ".config/baton.toml",
        "[worktree]\nmin_age = \"0s\"\nspares = 1\n",
    );
    repo.write(".git/info/exclude", "/.config/\n");
    let made = baton(
        &repo,
        &[
            "--json", "worktree", "create", "--plan", PLAN, "--agent", "a1",
        ],
    )
    .expect_code(0)
    .json();
    let path = PathBuf::from(made["created"][0]["path"].as_str().unwrap());
    let branch = format!("baton/{PLAN}/a1");
    // the agent's work, integrated: main has it
    write_file(&path, "agent.txt", "done\n");
    repo.git_in(&path, &["add", "agent.txt"]);
    repo.git_in(&path, &["commit", "-q", "-m", "agent work"]);
    let head = repo.git_in(&path, &["rev-parse", "HEAD"]);
    repo.git(&["merge", "-q", "--ff-only", &branch]);
    let common = repo.path().join(".git");
    let admin = common.join("worktrees/a1");
    // what the dead cleanup (pid 4294967295 cannot exist) had done: its record of the branch,
    // the spare being made with its origin, the worktree's files moved into it
    let making = root(&repo).join(".spares/b-4294967295-1-a1");
    std::fs::create_dir_all(&making).unwrap();
    let origin = serde_json::json!({ "path": path, "admin_dir": admin });
    write_file(&making, "origin.json", &origin.to_string());
    std::fs::rename(&path, making.join("tree")).unwrap();
    let record = serde_json::json!({
        "schema_version": 1,
        "owner": {"pid": 4294967295u32, "start_time": 1},
        "target": repo.git(&["rev-parse", "main"]),
        "branches": [{"branch": branch, "head": head}]
    });
    write_file(
        &common.join("baton-journal"),
        "remove-4294967295-1.json",
        &record.to_string(),
    );

    let dry = baton(&repo, &["--json", "worktree", "cleanup", "--dry-run"])
        .expect_code(0)
        .json();
    let said = dry["debris"].to_string();
    assert!(said.contains("moving it into the spares"), "{dry:#}");
    assert!(said.contains(&format!("delete branch {branch}")), "{dry:#}");
    assert!(admin.is_dir() && making.is_dir() && branch_exists(&repo, &branch));

    let real = baton(&repo, &["--json", "worktree", "cleanup"])
        .expect_code(0)
        .json();
    assert_eq!(real["kept"], serde_json::json!([]), "{real:#}");
    assert!(!admin.exists(), "the entry went without --force: {real:#}");
    assert!(!branch_exists(&repo, &branch), "{real:#}");
    assert!(!making.exists(), "the half-made spare is debris: {real:#}");
    assert_clean_slate(&repo);
    // the work is where it was integrated
    assert_eq!(repo.git(&["show", "main:agent.txt"]), "done");
    repo.git(&["fsck", "--no-progress", "--strict"]);
}
