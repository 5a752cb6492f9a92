//! `cargo xtask bench verify`: a ~20k-file repository with 32 agent branches (about 20
//! changed files each, some shared), and in the same run:
//! - the git check vs `git status --porcelain=v2` (target <= 1.2x),
//! - the conflicts check vs a loop of pairwise `git merge-tree --write-tree` (target <= 0.1x),
//! - the peak memory of verify (target <= 100 MB), read from `getrusage(RUSAGE_CHILDREN)` in
//!   a helper process whose only child is baton.
//!
//! - a real-shaped case (`verify/real.rs`): pull-request-like heads forked along a moving
//!   main, of heavy-tailed sizes, sharing hot files (target <= 0.05x the merge-tree loop).
//!
//! `--real-only` runs only the real-shaped case. `--worktrees N` adds N agent worktrees with uncommitted work and times both checks there
//! too; `--keep` keeps the repository.

use std::io::Write;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use super::synth::{self, Rng, git_ok, median_ms};

mod real;

const FILES: usize = 20_000;
const AGENTS: usize = 32;
const PER_AGENT: usize = 20;
/// Files every agent may touch besides its own: each is shared by about four agents.
const HOT: usize = 24;
const SHARED_PER_AGENT: usize = 3;

pub fn run(args: &[String]) -> ExitCode {
    if args.first().map(String::as_str) == Some("--rss-of") {
        return rss_of(&args[1..]);
    }
    let tmp = std::env::temp_dir().join(format!("baton-bench-verify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let repo = tmp.join("repo");
    // `--real-only`: only the real-shaped case
    let mut ok = true;
    if !args.iter().any(|a| a == "--real-only") {
        let t = Instant::now();
        synth::build_repo(&repo, FILES);
        add_agent_branches(&repo);
        // a settled index, as in any checkout that has been used
        git_ok(&repo, &["status", "--porcelain=v2"]);
        eprintln!(
            "built {FILES} files and {AGENTS} agent branches in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        ok = measure(&repo);
    }
    let real_repo = tmp.join("real");
    let t = Instant::now();
    real::build(&real_repo);
    eprintln!(
        "built the real-shaped repository in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    ok &= real::measure(&real_repo, 5);
    println!(
        "  {}",
        if ok {
            "all targets met"
        } else {
            "SOME TARGETS MISSED"
        }
    );
    let worktrees = args
        .iter()
        .position(|a| a == "--worktrees")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse::<usize>().ok());
    if let Some(n) = worktrees.filter(|_| repo.exists()) {
        measure_worktrees(&repo, &tmp, n.min(AGENTS));
    }
    if args.iter().any(|a| a == "--keep") {
        eprintln!("kept {}", tmp.display());
    } else {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    ExitCode::SUCCESS
}

/// 32 branches `agent/NN` off `main`: 17 files of their own and 3 hot files each, one line
/// changed per file; on a hot file agents sometimes pick the same line (a conflict) and
/// sometimes lines far apart (a clean merge).
fn add_agent_branches(repo: &Path) {
    let main = git_ok(repo, &["rev-parse", "main"]);
    let mut child = synth::git(repo)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("start git fast-import");
    {
        let stdin = child.stdin.as_mut().expect("piped stdin");
        let mut w = std::io::BufWriter::new(stdin);
        let mut rng = Rng::new(0xba70);
        for k in 0..AGENTS {
            let msg = format!("agent {k} works");
            write!(
                w,
                "commit refs/heads/agent/{k:02}\ncommitter Bench <bench@baton.invalid> 1767229200 +0000\ndata {}\n{msg}\nfrom {main}\n",
                msg.len()
            )
            .expect("write");
            let mut files: Vec<(usize, usize)> = (0..PER_AGENT - SHARED_PER_AGENT)
                .map(|j| (k * 500 + j * 29, rng.below(40)))
                .collect();
            for j in 0..SHARED_PER_AGENT {
                let hot = FILES - HOT + (k + j * 7) % HOT;
                // half the agents edit line 5 of a hot file (conflicts), the rest spread out
                let line = if k % 2 == 0 { 5 } else { 10 + (k % 4) * 8 };
                files.push((hot, line));
            }
            for (i, line) in files {
                let mut content = synth::file_content(i, 40);
                let from = format!("// file {i} line {line}\n");
                content = content.replace(&from, &format!("// agent {k} changed line {line}\n"));
                write!(
                    w,
                    "M 100644 inline {}\ndata {}\n{content}\n",
                    synth::file_path(i),
                    content.len()
                )
                .expect("write");
            }
            writeln!(w).expect("write");
        }
    }
    assert!(child.wait().expect("wait").success(), "fast-import failed");
}

pub(super) fn time_ms(mut cmd: Command) -> f64 {
    let t = Instant::now();
    let out = cmd.output().expect("run benchmark command");
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ms
}

pub(super) fn baton(repo: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("current exe"));
    cmd.arg("verify")
        .args(args)
        .arg("--json")
        .arg("--repo")
        .arg(repo);
    cmd
}

fn measure(repo: &Path) -> bool {
    const RUNS: usize = 9;
    let git_status = || {
        let mut c = synth::git(repo);
        c.args(["status", "--porcelain=v2"]);
        c
    };
    let git_check = || baton(repo, &["--check", "git"]);
    let conflicts = || baton(repo, &["--check", "conflicts", "--branches", "agent/*"]);
    // warm the page cache and check the commands work
    time_ms(git_status());
    time_ms(git_check());
    let report: serde_like::Report = serde_like::parse(&conflicts().output().expect("run").stdout);
    eprintln!(
        "conflicts check: {} multi_writer findings ({} conflicts) over {AGENTS} agents",
        report.multi_writer, report.conflicts
    );
    let mut status_ms = Vec::new();
    let mut check_ms = Vec::new();
    for _ in 0..RUNS {
        status_ms.push(time_ms(git_status()));
        check_ms.push(time_ms(git_check()));
    }
    let mut conflict_ms = Vec::new();
    for _ in 0..RUNS {
        conflict_ms.push(time_ms(conflicts()));
    }
    let branches: Vec<String> = (0..AGENTS).map(|k| format!("agent/{k:02}")).collect();
    let mut loop_ms = Vec::new();
    let mut git_pairs = std::collections::BTreeSet::new();
    for _ in 0..3 {
        let t = Instant::now();
        git_pairs.clear();
        for (x, a) in branches.iter().enumerate() {
            for b in &branches[x + 1..] {
                let out = synth::git(repo)
                    .args(["merge-tree", "--write-tree", "--name-only", a, b])
                    .output()
                    .expect("run git merge-tree");
                if out.status.code() == Some(1) {
                    git_pairs.insert((a.clone(), b.clone()));
                }
            }
        }
        loop_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let rss_git = rss_mb(repo, &["--check", "git"]);
    let rss_conflicts = rss_mb(repo, &["--check", "conflicts", "--branches", "agent/*"]);
    let (s, c, k, l) = (
        median_ms(status_ms.clone()),
        median_ms(check_ms.clone()),
        median_ms(conflict_ms.clone()),
        median_ms(loop_ms),
    );
    let pairs = AGENTS * (AGENTS - 1) / 2;
    println!(
        "verify bench: {FILES} files, {AGENTS} agent branches, {PER_AGENT} changed files each (medians)"
    );
    println!("  git status --porcelain=v2        {s:>9.1} ms");
    let every = |xs: &[f64], over: f64| -> String {
        xs.iter()
            .map(|x| format!("{:.3}", x / over))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "  baton verify --check git         {c:>9.1} ms   ratio {:.2}x (target <= 1.2x); every sample (vs the git status run beside it): {}",
        c / s,
        check_ms
            .iter()
            .zip(&status_ms)
            .map(|(c, s)| format!("{:.2}", c / s))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "  git merge-tree loop ({pairs} pairs) {l:>9.1} ms   {} pairs conflict",
        git_pairs.len()
    );
    println!(
        "  baton verify --check conflicts   {k:>9.1} ms   ratio {:.3}x (target <= 0.1x), {} pairs conflict; every sample: {}",
        k / l,
        report.conflict_pairs.len(),
        every(&conflict_ms, l)
    );
    let agree = report.conflict_pairs == git_pairs;
    println!(
        "  conflicting pairs: baton and git merge-tree {}",
        if agree { "agree" } else { "DISAGREE" }
    );
    if !agree {
        let only_baton: Vec<_> = report.conflict_pairs.difference(&git_pairs).collect();
        let only_git: Vec<_> = git_pairs.difference(&report.conflict_pairs).collect();
        println!("    only baton: {only_baton:?}\n    only git: {only_git:?}");
    }
    println!(
        "  peak RSS: git check {rss_git:.1} MB, conflicts check {rss_conflicts:.1} MB (target <= 100 MB)"
    );
    agree && c / s <= 1.2 && k / l <= 0.1 && rss_git.max(rss_conflicts) <= 100.0
}

/// `--worktrees N`: agents as linked worktrees (the default agent source), each with 15
/// uncommitted edits and an untracked file. Compares the git check with `git status` run in
/// the main checkout and every worktree one after the other, and times the conflicts check.
fn measure_worktrees(repo: &Path, tmp: &Path, n: usize) {
    const RUNS: usize = 5;
    let t = Instant::now();
    let mut dirs = vec![repo.to_owned()];
    for k in 0..n {
        let dir = tmp.join(format!("wt{k:02}"));
        git_ok(
            repo,
            &[
                "worktree",
                "add",
                "-q",
                dir.to_str().expect("utf-8 temp path"),
                &format!("agent/{k:02}"),
            ],
        );
        for j in 0..15 {
            let path = dir.join(synth::file_path(k * 500 + 250 + j));
            let mut content = std::fs::read_to_string(&path).expect("read a checked-out file");
            content.push_str(&format!("// uncommitted edit by agent {k}\n"));
            std::fs::write(&path, content).expect("edit a file");
        }
        std::fs::write(dir.join(format!("untracked-{k}.txt")), "new\n").expect("write a file");
        git_ok(&dir, &["status", "--porcelain=v2"]);
        dirs.push(dir);
    }
    eprintln!("added {n} worktrees in {:.1} s", t.elapsed().as_secs_f64());
    let mut status_ms = Vec::new();
    let mut check_ms = Vec::new();
    let mut conflicts_ms = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        for d in &dirs {
            let mut c = synth::git(d);
            c.args(["status", "--porcelain=v2"]);
            c.output().expect("run git status");
        }
        status_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        check_ms.push(time_ms(baton(repo, &["--check", "git"])));
        conflicts_ms.push(time_ms(baton(repo, &["--check", "conflicts"])));
    }
    let rss = rss_mb(repo, &["--check", "conflicts"]);
    let (s, c, k) = (
        median_ms(status_ms),
        median_ms(check_ms),
        median_ms(conflicts_ms),
    );
    println!("with {n} agent worktrees (15 uncommitted edits + 1 untracked file each):");
    println!("  git status in main + {n} worktrees  {s:>9.1} ms");
    println!(
        "  baton verify --check git          {c:>9.1} ms   ratio {:.2}x",
        c / s
    );
    println!("  baton verify --check conflicts    {k:>9.1} ms   peak RSS {rss:.1} MB");
}

/// Peak RSS of one baton verify run, in MB, measured by a helper process.
fn rss_mb(repo: &Path, args: &[&str]) -> f64 {
    let mut cmd = Command::new(std::env::current_exe().expect("current exe"));
    cmd.args(["bench", "verify", "--rss-of", "verify"])
        .args(args)
        .arg("--json")
        .arg("--repo")
        .arg(repo);
    let out = cmd.output().expect("run rss helper");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse::<f64>()
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Helper mode: run this binary with `args` as the only child, then print the children's
/// peak RSS in KiB.
fn rss_of(args: &[String]) -> ExitCode {
    let status = Command::new(std::env::current_exe().expect("current exe"))
        .args(args)
        .stdout(Stdio::null())
        .status()
        .expect("run child");
    if status.code().is_none_or(|c| c > 1) {
        eprintln!("child failed: {status}");
        return ExitCode::FAILURE;
    }
    println!("{}", children_max_rss_kb());
    ExitCode::SUCCESS
}

#[expect(
    unsafe_code,
    reason = "getrusage has no safe wrapper in the crates we already depend on"
)]
fn children_max_rss_kb() -> i64 {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage struct and a valid `who`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    if rc == 0 { usage.ru_maxrss } else { -1 }
}

/// The pairs of agents whose conflicts findings say they conflict, and the finding counts.
pub(super) mod serde_like {
    use std::collections::BTreeSet;

    pub struct Report {
        pub multi_writer: usize,
        pub conflicts: usize,
        pub conflict_pairs: BTreeSet<(String, String)>,
    }

    pub fn parse(stdout: &[u8]) -> Report {
        let v: serde_json::Value = serde_json::from_slice(stdout).expect("verify prints JSON");
        let mut r = Report {
            multi_writer: 0,
            conflicts: 0,
            conflict_pairs: BTreeSet::new(),
        };
        for c in v["checks"].as_array().into_iter().flatten() {
            for f in c["findings"].as_array().into_iter().flatten() {
                if f["code"] != "multi_writer" {
                    continue;
                }
                r.multi_writer += 1;
                if f["overlap"] == "conflict" {
                    r.conflicts += 1;
                    let a = |i: usize| f["agents"][i].as_str().unwrap_or_default().to_owned();
                    r.conflict_pairs.insert((a(0), a(1)));
                }
            }
        }
        r
    }
}
