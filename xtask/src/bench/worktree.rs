//! `cargo xtask bench worktree`: baton's worktree create / reuse / cleanup against the git CLI,
//! measured in the same run, on two trees: a real-shaped one (`synth::real_shaped_files`, ~3k
//! files shaped like rust-lang/cargo, 4 agents) and the synthetic one (~20k files, 8 agents).
//!
//! - create: N worktrees in one `baton worktree create --plan` vs a `git worktree add` loop
//!   (target <= 0.5x), twice: cold (no spares: every file is a new inode, what a first create
//!   or `[worktree] spares = 0` gets) and from spares (what the default config, `spares = 8`,
//!   does after the first cleanup: it kept the finished worktrees and create turns them into
//!   the new ones);
//! - reuse: moving a finished worktree to a new agent and base (50 files differ) vs a fresh
//!   `git worktree add` (target <= 0.1x);
//! - cleanup: `baton worktree cleanup` of N worktrees vs a `git worktree remove --force` loop
//!   (target <= 0.5x), with spares off (every file deleted; with the default config cleanup
//!   moves them into the spares instead).
//!
//! baton's cleanups pass `--min-age 0s`: the worktrees of a sample have no commits of their
//! own, so without it cleanup would keep them as *new* and the churn would free nothing.
//!
//! Every sample prints its own ratio, and a target is met only when *every* sample meets it,
//! not the median. Fairness: the side that goes first alternates, dirty pages are flushed
//! before each timed run, between samples both tools create and remove a set of worktrees
//! (churn), so no sample meets a filesystem fresher than a real user's, and within a create
//! sample neither side's worktrees are removed before the other side ran (on ext4 without a
//! journal a removal slows every new inode for minutes, so the side that ran second used to
//! pay for the removal of the first's). baton marks the
//! directories it creates above its worktrees as tops of directory hierarchies (ext4's `T`
//! attribute), so each worktree gets block groups of its own; `--git-spread` gives git's
//! worktree parent the same attribute, to compare with git at its best on this filesystem.
//!
//! baton runs as this very binary (`xtask` embeds the CLI), so process start is included.
//!
//! The trees live under `$TMPDIR` (default `/tmp`), printed first: `TMPDIR=/mnt/x` measures
//! another file system, e.g. a journaled ext4 loop mount beside a journal-less root, where
//! no new inode scans the recently freed ones.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use super::synth::{self, git_ok, median_ms};

const PLAN: &str = "OP-20260101-000000-0000beef";
const SEED: u64 = 0x5eed_ca60;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Real,
    Synthetic,
    Both,
}

struct Opts {
    which: Which,
    files: usize,
    samples: usize,
    only: Option<String>,
    git_spread: bool,
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        which: Which::Both,
        files: 20_000,
        samples: 3,
        only: None,
        git_spread: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        let num = |v: String, name: &str| -> Result<usize, String> {
            v.parse().map_err(|_| format!("{name} needs a number"))
        };
        match a.as_str() {
            "--files" => o.files = num(value("--files")?, "--files")?,
            "--samples" => o.samples = num(value("--samples")?, "--samples")?.max(1),
            "--tree" => {
                o.which = match value("--tree")?.as_str() {
                    "real" => Which::Real,
                    "synthetic" => Which::Synthetic,
                    "both" => Which::Both,
                    t => return Err(format!("--tree {t}: expected real, synthetic or both")),
                }
            }
            "--only" => {
                let w = value("--only")?;
                if !["create", "reuse", "cleanup"].contains(&w.as_str()) {
                    return Err(format!("--only {w}: expected create, reuse or cleanup"));
                }
                o.only = Some(w);
            }
            "--git-spread" => o.git_spread = true,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(o)
}

/// One repository under test.
struct Tree {
    label: &'static str,
    repo: PathBuf,
    tmp: PathBuf,
    agents: usize,
    /// Give git's worktree parent the `T` attribute baton gives its own directories.
    git_spread: bool,
}

/// Every sample of one kind of work.
struct Row {
    tree: &'static str,
    work: String,
    git: Vec<Sample>,
    baton: Vec<Sample>,
    target: f64,
}

pub fn run(args: &[String]) -> ExitCode {
    let opts = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!(
                "error: {e}; usage: cargo xtask bench worktree [--tree real|synthetic|both] \
                 [--files N] [--samples N] [--only create|reuse|cleanup] [--git-spread]"
            );
            return ExitCode::from(2);
        }
    };
    let tmp = tempdir();
    println!("bench directory: {}", tmp.display());
    let mut rows = Vec::new();
    if opts.which != Which::Synthetic {
        let files = synth::real_shaped_files(SEED, synth::REAL_SHAPED_FILES);
        let dir = tmp.join("real");
        let repo = synth::build_shaped_repo(&dir.join("repo"), &files);
        let changed: Vec<String> = files
            .iter()
            .filter(|f| f.mode != 0o120000)
            .step_by(files.len() / 50)
            .take(50)
            .map(|f| f.path.clone())
            .collect();
        prepare_next_branch(&repo, &changed);
        println!(
            "\nreal-shaped tree: {} files, {} samples, 4 worktrees per create/cleanup sample",
            files.len(),
            opts.samples
        );
        let tree = Tree {
            label: "real 3k",
            repo,
            tmp: dir,
            agents: 4,
            git_spread: opts.git_spread,
        };
        rows.extend(bench_tree(&tree, &opts));
    }
    if opts.which != Which::Real {
        let dir = tmp.join("synthetic");
        let repo = synth::build_repo(&dir.join("repo"), opts.files);
        let changed: Vec<String> = (0..50)
            .map(|i| synth::file_path(i * 97 % opts.files.max(1)))
            .collect();
        prepare_next_branch(&repo, &changed);
        println!(
            "\nsynthetic tree: {} files, {} samples, 8 worktrees per create/cleanup sample",
            opts.files, opts.samples
        );
        let tree = Tree {
            label: "synthetic",
            repo,
            tmp: dir,
            agents: 8,
            git_spread: opts.git_spread,
        };
        rows.extend(bench_tree(&tree, &opts));
    }
    print_table(&rows);
    let _ = std::fs::remove_dir_all(&tmp);
    ExitCode::SUCCESS
}

fn bench_tree(t: &Tree, opts: &Opts) -> Vec<Row> {
    let wants = |w: &str| opts.only.as_deref().is_none_or(|o| o == w);
    let mut rows = Vec::new();
    // spares are on by default ([worktree] spares = 8): the cold, reuse and cleanup rows turn
    // them off, to measure checkouts written and deleted file by file
    set_spares(t, 0);
    if wants("create") {
        rows.push(bench_create(t, opts.samples, false));
        rows.push(bench_create(t, opts.samples, true));
    }
    if wants("reuse") {
        rows.push(bench_reuse(t, opts.samples));
    }
    if wants("cleanup") {
        rows.push(bench_cleanup(t, opts.samples));
    }
    rows
}

fn print_table(rows: &[Row]) {
    println!(
        "\n{:<10} {:<10} {:>9} {:>9} {:>7} {:>7} {:>7} {:>7}  every sample's ratio (wall)",
        "tree", "work", "git ms", "baton ms", "cpu", "median", "worst", "target"
    );
    for r in rows {
        let ratios: Vec<f64> = r
            .baton
            .iter()
            .zip(&r.git)
            .map(|(b, g)| b.wall / g.wall)
            .collect();
        let cpu: Vec<f64> = r
            .baton
            .iter()
            .zip(&r.git)
            .map(|(b, g)| b.cpu / g.cpu)
            .collect();
        let worst = ratios.iter().copied().fold(0.0, f64::max);
        let verdict = if worst <= r.target { "met" } else { "MISSED" };
        let each: Vec<String> = ratios.iter().map(|x| format!("{x:.2}")).collect();
        println!(
            "{:<10} {:<10} {:>9.0} {:>9.0} {:>6.2}x {:>6.2}x {:>6.2}x {:>6.2}x  {} {verdict}",
            r.tree,
            r.work,
            median_ms(r.git.iter().map(|x| x.wall).collect()),
            median_ms(r.baton.iter().map(|x| x.wall).collect()),
            median_ms(cpu),
            median_ms(ratios.clone()),
            worst,
            r.target,
            each.join(" "),
        );
    }
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("baton-bench-worktree-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create bench dir");
    dir
}

/// A branch `next` with `paths` changed, so reuse has real work to do.
fn prepare_next_branch(repo: &Path, paths: &[String]) {
    git_ok(repo, &["checkout", "-q", "-b", "next"]);
    for p in paths {
        let p = repo.join(p);
        if p.exists() {
            std::fs::write(&p, "changed on next\n").expect("write");
        }
    }
    git_ok(repo, &["commit", "-q", "-a", "-m", "next"]);
    git_ok(repo, &["checkout", "-q", "main"]);
}

fn baton(repo: &Path, args: &[&str]) -> String {
    let exe = std::env::current_exe().expect("current exe");
    let out = Command::new(exe)
        .current_dir(repo)
        .arg("--json")
        .args(args)
        .output()
        .expect("run baton");
    assert!(
        out.status.success(),
        "baton {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One timed run: wall-clock time and the CPU time (user + system) of the child processes it
/// ran, both in ms. On a shared machine the wall time carries other people's load; the CPU
/// time shows the work each tool itself did.
#[derive(Clone, Copy)]
struct Sample {
    wall: f64,
    cpu: f64,
}

/// Time `f`, after flushing dirty pages so that neither side pays for the other's writeback.
fn timed(f: impl FnOnce()) -> Sample {
    let _ = Command::new("sync").status();
    let cpu = children_cpu_ms();
    let t = Instant::now();
    f();
    Sample {
        wall: t.elapsed().as_secs_f64() * 1000.0,
        cpu: children_cpu_ms() - cpu,
    }
}

/// User + system time of this process's waited-for children (`cutime` + `cstime` of
/// `/proc/self/stat`, in clock ticks of 10 ms), or NaN where there is no such file.
fn children_cpu_ms() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return f64::NAN;
    };
    // fields after the command name start at field 3 (state); cutime is 16, cstime 17
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (tick(13) + tick(14)) * 10.0
}

/// Where git's worktrees of one sample go; their parent is made before any timing.
fn git_paths(t: &Tree, tag: &str) -> Vec<PathBuf> {
    let parent = git_parent(t);
    (0..t.agents)
        .map(|i| parent.join(format!("{tag}-{i}")))
        .collect()
}

/// The directory git's worktrees go in (removed by `git_reset`, made again here).
fn git_parent(t: &Tree) -> PathBuf {
    let parent = t.tmp.join("git-wt");
    if !parent.exists() {
        std::fs::create_dir_all(&parent).expect("create git's worktree parent");
        if t.git_spread {
            // what baton does for its own new directories (checkout::make_parents)
            let _ = Command::new("chattr").arg("+T").arg(&parent).status();
        }
    }
    parent
}

fn git_add_loop(t: &Tree, paths: &[PathBuf], tag: &str, base: &str) {
    for (i, p) in paths.iter().enumerate() {
        let b = format!("g/{tag}-{i}");
        let p = p.to_str().expect("utf-8 path");
        git_ok(&t.repo, &["worktree", "add", "-q", "-b", &b, p, base]);
    }
}

fn git_remove_loop(t: &Tree, paths: &[PathBuf]) {
    for p in paths {
        let p = p.to_str().expect("utf-8 path");
        git_ok(&t.repo, &["worktree", "remove", "--force", p]);
    }
}

fn git_reset(t: &Tree) {
    let _ = std::fs::remove_dir_all(t.tmp.join("git-wt"));
    git_ok(&t.repo, &["worktree", "prune"]);
}

fn baton_create(t: &Tree, tag: &str) {
    let mut args = vec![
        "worktree".to_owned(),
        "create".to_owned(),
        "--plan".to_owned(),
        PLAN.to_owned(),
        "--no-setup".to_owned(),
    ];
    for i in 0..t.agents {
        args.push("--agent".to_owned());
        args.push(format!("{tag}-{i}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    baton(&t.repo, &args);
}

/// Untimed create/remove rounds by both tools between samples, so each sample meets a
/// filesystem with recently freed inodes and blocks, as a user's does after some agents ran.
fn churn(t: &Tree, work: &str, s: usize) {
    let tag = format!("churn-{work}{s}");
    let paths = git_paths(t, &tag);
    git_add_loop(t, &paths, &tag, "main");
    git_remove_loop(t, &paths);
    git_reset(t);
    baton_create(t, &tag);
    baton_cleanup(t);
}

/// `baton worktree cleanup` of everything the samples made (they are *new*: no commits).
fn baton_cleanup(t: &Tree) -> String {
    baton(&t.repo, &["worktree", "cleanup", "--min-age", "0s"])
}

/// Set `[worktree] spares` in the repository's config (untracked, excluded).
fn set_spares(t: &Tree, n: usize) {
    let dir = t.repo.join(".config");
    std::fs::create_dir_all(&dir).expect("create .config");
    std::fs::write(
        dir.join("baton.toml"),
        format!("[worktree]\nspares = {n}\n"),
    )
    .expect("write config");
    let exclude = t.repo.join(".git/info/exclude");
    let text = std::fs::read_to_string(&exclude).unwrap_or_default();
    if !text.lines().any(|l| l == "/.config/") {
        std::fs::write(&exclude, format!("{text}/.config/\n")).expect("write exclude");
    }
}

/// The 1-minute load average, to read each sample against.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

fn report(t: &Tree, work: &str, s: usize, git: Sample, ours: Sample) {
    println!(
        "{:<10} {work:<11} sample {s}: git {:>7.0} ms, baton {:>7.0} ms, ratio {:.2} \
         (cpu: git {:.0} ms, baton {:.0} ms, ratio {:.2}; load {})",
        t.label,
        git.wall,
        ours.wall,
        ours.wall / git.wall,
        git.cpu,
        ours.cpu,
        ours.cpu / git.cpu,
        load()
    );
}

/// Create samples, cold or from spares. Cold: between samples both tools create and remove a
/// set of worktrees (churn). From spares: `[worktree] spares` = the number of agents, the
/// worktrees of the previous round are cleaned up into spares, and git's churn still runs.
fn bench_create(t: &Tree, samples: usize, spares: bool) -> Row {
    let (mut git, mut ours) = (Vec::new(), Vec::new());
    // "sp": from spares, what the default config does after the first cleanup; "cold": with
    // `spares = 0`, or the very first create
    let work = if spares {
        format!("create {} sp", t.agents)
    } else {
        format!("create {} cold", t.agents)
    };
    let prefix = if spares { "p" } else { "c" };
    if spares {
        set_spares(t, t.agents);
        baton_create(t, "prime");
        let out = baton_cleanup(t);
        assert!(
            out.contains(&format!("\"count\": {}", t.agents)),
            "cleanup kept spares: {out}"
        );
    }
    for s in 0..samples {
        if s > 0 {
            if spares {
                let tag = format!("churn-p{s}");
                let paths = git_paths(t, &tag);
                git_add_loop(t, &paths, &tag, "main");
                git_remove_loop(t, &paths);
                git_reset(t);
            } else {
                churn(t, "c", s);
            }
        }
        let tag = format!("{prefix}{s}");
        let paths = git_paths(t, &tag);
        // Both meet the file system the churn left: neither removes its worktrees before the
        // other has run (a removal of 8 checkouts makes every new inode of the next minutes
        // scan past 160k freed ones, so whoever ran second paid for the first). Who goes
        // first still alternates.
        if s % 2 == 1 {
            ours.push(timed(|| baton_create(t, &tag)));
        }
        git.push(timed(|| git_add_loop(t, &paths, &tag, "main")));
        if s % 2 == 0 {
            ours.push(timed(|| baton_create(t, &tag)));
        }
        git_reset(t);
        baton_cleanup(t);
        report(t, &work, s, git[s], ours[s]);
    }
    if spares {
        // free the spares: the other benches start without
        set_spares(t, 0);
        baton_cleanup(t);
    }
    Row {
        tree: t.label,
        work,
        git,
        baton: ours,
        target: 0.5,
    }
}

fn bench_reuse(t: &Tree, samples: usize) -> Row {
    let (mut git, mut ours) = (Vec::new(), Vec::new());
    for s in 0..samples {
        let p = git_parent(t).join(format!("r{s}"));
        let p = p.to_str().expect("utf-8");
        let branch = format!("g/r{s}");
        git.push(timed(|| {
            git_ok(
                &t.repo,
                &["worktree", "add", "-q", "-b", &branch, p, "next"],
            );
        }));
        git_reset(t);
        // a finished agent: clean, integrated into main
        let done = format!("done{s}");
        let args = ["worktree", "create", "--plan", PLAN, "--agent", &done];
        baton(&t.repo, &[&args[..], &["--no-setup"]].concat());
        let mut out = String::new();
        let next = format!("next{s}");
        ours.push(timed(|| {
            out = baton(
                &t.repo,
                &[
                    "worktree",
                    "create",
                    "--plan",
                    PLAN,
                    "--agent",
                    &next,
                    "--base",
                    "next",
                    "--reuse",
                    "--no-setup",
                ],
            );
        }));
        assert!(
            !out.contains("\"reused_from\": null"),
            "the finished worktree was not reused: {out}"
        );
        baton(&t.repo, &["worktree", "cleanup", "--force"]);
        report(t, "reuse 1", s, git[s], ours[s]);
    }
    Row {
        tree: t.label,
        work: "reuse 1".to_owned(),
        git,
        baton: ours,
        target: 0.1,
    }
}

fn bench_cleanup(t: &Tree, samples: usize) -> Row {
    let (mut git, mut ours) = (Vec::new(), Vec::new());
    let work = format!("cleanup {}", t.agents);
    for s in 0..samples {
        if s > 0 {
            churn(t, "x", s);
        }
        let tag = format!("x{s}");
        let paths = git_paths(t, &tag);
        let ours_once = |ours: &mut Vec<Sample>| {
            baton_create(t, &tag);
            let mut out = String::new();
            ours.push(timed(|| out = baton_cleanup(t)));
            assert_eq!(
                out.matches("\"done\": true").count(),
                t.agents,
                "cleanup removed all: {out}"
            );
        };
        // alternate who goes first
        if s % 2 == 1 {
            ours_once(&mut ours);
        }
        git_add_loop(t, &paths, &tag, "main");
        git.push(timed(|| git_remove_loop(t, &paths)));
        git_reset(t);
        if s % 2 == 0 {
            ours_once(&mut ours);
        }
        report(t, &work, s, git[s], ours[s]);
    }
    Row {
        tree: t.label,
        work,
        git,
        baton: ours,
        target: 0.5,
    }
}
