//! `cargo xtask bench worktree`: baton's worktree create / reuse / cleanup against the git CLI
//! on a synthetic ~20k-file repository, measured in the same run, medians and ratios.
//!
//! - create: 8 worktrees in one `baton worktree create --plan` vs a `git worktree add` loop
//!   (target <= 0.5x);
//! - reuse: moving a finished worktree to a new agent and base (50 files differ) vs a fresh
//!   `git worktree add` (target <= 0.1x);
//! - cleanup: `baton worktree cleanup` of 8 worktrees vs a `git worktree remove --force` loop
//!   (target <= 0.5x).
//!
//! baton runs as this very binary (`xtask` embeds the CLI), so process start is included.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use super::synth::{self, git_ok, median_ms};

const AGENTS: usize = 8;
const PLAN: &str = "OP-20260101-000000-0000beef";

struct Opts {
    files: usize,
    samples: usize,
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        files: 20_000,
        samples: 3,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> Result<usize, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        match a.as_str() {
            "--files" => o.files = num("--files")?,
            "--samples" => o.samples = num("--samples")?.max(1),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(o)
}

pub fn run(args: &[String]) -> ExitCode {
    let opts = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}; usage: cargo xtask bench worktree [--files N] [--samples N]");
            return ExitCode::from(2);
        }
    };
    let tmp = tempdir();
    let repo = synth::build_repo(&tmp.join("repo"), opts.files);
    prepare_next_branch(&repo, 50);
    println!(
        "worktree bench: {} files, {} samples, {AGENTS} worktrees per create/cleanup sample",
        opts.files, opts.samples
    );
    let rows = [
        ("create 8", bench_create(&repo, &tmp, opts.samples), 0.5),
        ("reuse 1", bench_reuse(&repo, &tmp, opts.samples), 0.1),
        ("cleanup 8", bench_cleanup(&repo, &tmp, opts.samples), 0.5),
    ];
    println!(
        "\n{:<10} {:>12} {:>12} {:>7} {:>7}",
        "work", "git ms", "baton ms", "ratio", "target"
    );
    for (name, (git, baton), target) in rows {
        let ratio = baton / git;
        let verdict = if ratio <= target { "met" } else { "MISSED" };
        println!("{name:<10} {git:>12.0} {baton:>12.0} {ratio:>6.2}x {target:>6.2}x {verdict}");
    }
    let _ = std::fs::remove_dir_all(&tmp);
    ExitCode::SUCCESS
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("baton-bench-worktree-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create bench dir");
    dir
}

/// A branch `next` with `n` files changed, so reuse has real work to do.
fn prepare_next_branch(repo: &Path, n: usize) {
    git_ok(repo, &["checkout", "-q", "-b", "next"]);
    for i in 0..n {
        let p = repo.join(synth::file_path(i * 97 % 20_000));
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

/// Time `f`, after flushing dirty pages so that neither side pays for the other's writeback.
fn timed(f: impl FnOnce()) -> f64 {
    let _ = Command::new("sync").status();
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64() * 1000.0
}

fn git_paths(tmp: &Path, tag: &str) -> Vec<PathBuf> {
    (0..AGENTS)
        .map(|i| tmp.join("git-wt").join(format!("{tag}-{i}")))
        .collect()
}

fn git_add_loop(repo: &Path, paths: &[PathBuf], tag: &str, base: &str) {
    for (i, p) in paths.iter().enumerate() {
        let b = format!("g/{tag}-{i}");
        git_ok(
            repo,
            &[
                "worktree",
                "add",
                "-q",
                "-b",
                &b,
                p.to_str().expect("utf-8 path"),
                base,
            ],
        );
    }
}

fn git_reset(repo: &Path, tmp: &Path) {
    let _ = std::fs::remove_dir_all(tmp.join("git-wt"));
    git_ok(repo, &["worktree", "prune"]);
}

fn agents_args(tag: &str) -> Vec<String> {
    let mut v = vec![
        "worktree".to_owned(),
        "create".to_owned(),
        "--plan".to_owned(),
        PLAN.to_owned(),
        "--no-setup".to_owned(),
    ];
    for i in 0..AGENTS {
        v.push("--agent".to_owned());
        v.push(format!("{tag}-{i}"));
    }
    v
}

fn baton_create_8(repo: &Path, tag: &str) {
    let args = agents_args(tag);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    baton(repo, &args);
}

fn bench_create(repo: &Path, tmp: &Path, samples: usize) -> (f64, f64) {
    let (mut git, mut ours) = (Vec::new(), Vec::new());
    for s in 0..samples {
        let tag = format!("c{s}");
        let paths = git_paths(tmp, &tag);
        // alternate who goes first, so neither always meets a quieter filesystem
        if s % 2 == 1 {
            ours.push(timed(|| baton_create_8(repo, &tag)));
            baton(repo, &["worktree", "cleanup"]);
        }
        git.push(timed(|| git_add_loop(repo, &paths, &tag, "main")));
        git_reset(repo, tmp);
        if s % 2 == 0 {
            ours.push(timed(|| baton_create_8(repo, &tag)));
            baton(repo, &["worktree", "cleanup"]);
        }
        println!(
            "create  sample {s}: git {:.0} ms, baton {:.0} ms",
            git[s], ours[s]
        );
    }
    (median_ms(git), median_ms(ours))
}

fn bench_reuse(repo: &Path, tmp: &Path, samples: usize) -> (f64, f64) {
    let (mut git, mut ours) = (Vec::new(), Vec::new());
    for s in 0..samples {
        let p = tmp.join("git-wt").join(format!("r{s}"));
        git.push(timed(|| {
            git_ok(
                repo,
                &[
                    "worktree",
                    "add",
                    "-q",
                    "-b",
                    &format!("g/r{s}"),
                    p.to_str().expect("utf-8"),
                    "next",
                ],
            );
        }));
        git_reset(repo, tmp);
        // a finished agent: clean, integrated into main
        baton(
            repo,
            &[
                "worktree",
                "create",
                "--plan",
                PLAN,
                "--agent",
                &format!("done{s}"),
                "--no-setup",
            ],
        );
        let mut out = String::new();
        ours.push(timed(|| {
            out = baton(
                repo,
                &[
                    "worktree",
                    "create",
                    "--plan",
                    PLAN,
                    "--agent",
                    &format!("next{s}"),
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
        baton(repo, &["worktree", "cleanup", "--force"]);
        println!(
            "reuse   sample {s}: git {:.0} ms, baton {:.0} ms",
            git[s], ours[s]
        );
    }
    (median_ms(git), median_ms(ours))
}

fn bench_cleanup(repo: &Path, tmp: &Path, samples: usize) -> (f64, f64) {
    let (mut git, mut ours) = (Vec::new(), Vec::new());
    for s in 0..samples {
        let tag = format!("x{s}");
        let paths = git_paths(tmp, &tag);
        let ours_once = |ours: &mut Vec<f64>| {
            baton_create_8(repo, &tag);
            let mut out = String::new();
            ours.push(timed(|| out = baton(repo, &["worktree", "cleanup"])));
            assert_eq!(
                out.matches("\"done\": true").count(),
                AGENTS,
                "cleanup removed all: {out}"
            );
        };
        // alternate who goes first
        if s % 2 == 1 {
            ours_once(&mut ours);
        }
        git_add_loop(repo, &paths, &tag, "main");
        git.push(timed(|| {
            for p in &paths {
                git_ok(
                    repo,
                    &["worktree", "remove", "--force", p.to_str().expect("utf-8")],
                );
            }
        }));
        git_reset(repo, tmp);
        if s % 2 == 0 {
            ours_once(&mut ours);
        }
        println!(
            "cleanup sample {s}: git {:.0} ms, baton {:.0} ms",
            git[s], ours[s]
        );
    }
    (median_ms(git), median_ms(ours))
}
