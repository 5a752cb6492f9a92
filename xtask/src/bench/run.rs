//! `cargo xtask bench run`: `baton run` against the shell doing the same work, in one run.
//!
//! - parallel: 8 agents that each sleep 2 s, `--max-parallel 8` vs `--max-parallel 1`
//!   (speed-up target >= 7x: they sleep, cores are not the limit);
//! - overhead: 200 no-op agents (`true`), isolation none, max-parallel 8, vs `xargs -P 8` on
//!   the same commands (ratio target <= 2.0), with the per-agent overhead in ms — durable state
//!   (every transition fsynced), supervisors, logs and metrics included; `--only overhead` runs
//!   just this row. Everything lives in the temp dir (`TMPDIR`): on a file system where a new
//!   inode is dear (ext4 without a journal scans recently deleted inodes) the files an agent
//!   needs (its log directory, log and pid file) are most of the overhead;
//! - worktrees: 16 agents in fresh worktrees of the ~20k-file synthetic repo vs a loop of
//!   `git worktree add` + the same command in each;
//! - memory: the peak RSS of `baton run` with 32 agents (target <= 30 MB).
//!
//! baton runs as this very binary (`xtask` embeds the CLI), process start included; each
//! sample runs a new plan so nothing is skipped as already finished.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use super::synth::{self, git_ok, median_ms};

struct Opts {
    samples: usize,
    files: usize,
    skip_sleep: bool,
    /// Only the 200 no-op agents row (`--only overhead`).
    only_overhead: bool,
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        samples: 1,
        files: 20_000,
        skip_sleep: false,
        only_overhead: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> Result<usize, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        match a.as_str() {
            "--samples" => o.samples = num("--samples")?.max(1),
            "--files" => o.files = num("--files")?,
            "--skip-sleep" => o.skip_sleep = true,
            "--only" => match it.next().map(String::as_str) {
                Some("overhead") => o.only_overhead = true,
                other => return Err(format!("--only {other:?}: the one part is `overhead`")),
            },
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(o)
}

pub fn run(args: &[String]) -> ExitCode {
    let opts = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!(
                "error: {e}; usage: cargo xtask bench run [--samples N] [--files N] [--skip-sleep] [--only overhead]"
            );
            return ExitCode::from(2);
        }
    };
    let tmp = std::env::temp_dir().join(format!("baton-bench-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("create bench dir");
    let small = synth::build_repo(&tmp.join("small"), 10);
    allow_no_tests(&small);
    println!("run bench: {} sample(s)", opts.samples);
    let mut rows: Vec<(String, f64, f64, String)> = Vec::new();

    if !opts.skip_sleep && !opts.only_overhead {
        let (seq, par) = bench_parallel(&small, &tmp, opts.samples);
        let speedup = seq / par;
        rows.push((
            "8 x sleep 2s, parallel vs one after another".into(),
            seq,
            par,
            verdict(
                speedup >= 7.0,
                format!("speed-up {speedup:.2}x (target >= 7x)"),
            ),
        ));
    }

    let (xargs, ours) = bench_overhead(&small, &tmp, opts.samples);
    let per_agent = (ours - xargs) / 200.0;
    rows.push((
        "200 no-op agents, -P 8: xargs vs baton".into(),
        xargs,
        ours,
        verdict(
            ours / xargs <= 2.0,
            format!(
                "ratio {:.2} (target <= 2.0), overhead {per_agent:.2} ms per agent",
                ours / xargs
            ),
        ),
    ));

    if opts.only_overhead {
        println!(
            "\n{:<52} {:>10} {:>10}  result",
            "work", "base ms", "baton ms"
        );
        for (name, base, ours, result) in rows {
            println!("{name:<52} {base:>10.0} {ours:>10.0}  {result}");
        }
        let _ = std::fs::remove_dir_all(&tmp);
        return ExitCode::SUCCESS;
    }
    let big = synth::build_repo(&tmp.join("big"), opts.files);
    allow_no_tests(&big);
    let (git, ours) = bench_worktrees(&big, &tmp, opts.samples);
    rows.push((
        format!(
            "16 agents in worktrees, {} files: git loop vs baton",
            opts.files
        ),
        git,
        ours,
        format!("ratio {:.2}", ours / git),
    ));

    // agents as Slurm jobs vs the local executor (issue 14), when a cluster answers
    match crate::slurm::bench::find_cluster() {
        Some(conf) => match crate::slurm::bench::compare(&conf, 32, opts.samples) {
            Ok((local, slurm)) => rows.push((
                "32 x sleep 1s: local executor vs Slurm jobs".into(),
                local,
                slurm,
                format!(
                    "ratio {:.2}, Slurm overhead {:.1} ms per agent",
                    slurm / local,
                    (slurm - local) / 32.0
                ),
            )),
            Err(e) => println!("slurm row failed: {e}"),
        },
        None => println!("slurm row skipped: no cluster answers (cargo xtask slurm up)"),
    }

    let rss = rss_mb(&small, &tmp);
    // a big temp dir takes long to delete: say the figures first
    println!(
        "\n{:<52} {:>10} {:>10}  result",
        "work", "base ms", "baton ms"
    );
    for (name, base, ours, result) in rows {
        println!("{name:<52} {base:>10.0} {ours:>10.0}  {result}");
    }
    println!(
        "peak RSS of baton run with 32 agents: {rss:.1} MB {}",
        verdict(rss <= 30.0, "(target <= 30 MB)".into())
    );
    let _ = std::fs::remove_dir_all(&tmp);
    ExitCode::SUCCESS
}

/// The synthetic repositories have no tests: the batch loop's gate must not fail them for it.
fn allow_no_tests(repo: &Path) {
    let dir = repo.join(".config");
    std::fs::create_dir_all(&dir).expect("create .config");
    std::fs::write(dir.join("baton.toml"), "[verify]\nallow_no_tests = true\n")
        .expect("write .config/baton.toml");
}

fn verdict(met: bool, text: String) -> String {
    format!("{text} {}", if met { "met" } else { "MISSED" })
}

/// A plan file with `n` agents running `command` (TOML argv), isolation as given.
fn plan(dir: &Path, id: &str, n: usize, command: &str, isolation: &str) -> PathBuf {
    let mut text = format!(
        "schema_version = 1\nid = \"{id}\"\ntitle = \"bench\"\n[defaults]\nisolation = \"{isolation}\"\ncommand = {command}\n[[batches]]\nid = \"B1\"\n"
    );
    for i in 0..n {
        text.push_str(&format!(
            "[[batches.agents]]\nid = \"a{i}\"\ntask_type = \"implement\"\n"
        ));
    }
    let path = dir.join(format!("{id}.toml"));
    std::fs::write(&path, text).expect("write plan");
    path
}

fn plan_id(scenario: u32, sample: usize) -> String {
    format!("OP-20260101-000000-{:08x}", scenario * 4096 + sample as u32)
}

/// `baton run PLAN --max-parallel N` in `repo`; returns wall milliseconds.
fn baton_run(repo: &Path, plan: &Path, max_parallel: usize) -> f64 {
    let t = Instant::now();
    let status = Command::new(std::env::current_exe().expect("current exe"))
        .current_dir(repo)
        .arg("run")
        .arg(plan)
        // every sample runs its agents (no output cache)
        .args([
            "--max-parallel",
            &max_parallel.to_string(),
            "-q",
            "--no-cache",
        ])
        .stdout(Stdio::null())
        .status()
        .expect("run baton");
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    assert!(status.success(), "baton run {} failed", plan.display());
    ms
}

fn bench_parallel(repo: &Path, tmp: &Path, samples: usize) -> (f64, f64) {
    let (mut seq, mut par) = (Vec::new(), Vec::new());
    for s in 0..samples {
        let p = plan(tmp, &plan_id(1, s), 8, r#"["sleep", "2"]"#, "none");
        par.push(baton_run(repo, &p, 8));
        let q = plan(tmp, &plan_id(2, s), 8, r#"["sleep", "2"]"#, "none");
        seq.push(baton_run(repo, &q, 1));
        println!(
            "parallel sample {s}: one after another {:.0} ms, parallel {:.0} ms, speed-up {:.2}x",
            seq[s],
            par[s],
            seq[s] / par[s]
        );
    }
    (median_ms(seq), median_ms(par))
}

fn bench_overhead(repo: &Path, tmp: &Path, samples: usize) -> (f64, f64) {
    settle(tmp);
    let (mut xargs, mut ours) = (Vec::new(), Vec::new());
    for s in 0..samples {
        let t = Instant::now();
        let mut child = Command::new("xargs")
            .args(["-P", "8", "-n", "1", "true"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("run xargs");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("piped");
            for i in 0..200 {
                writeln!(stdin, "a{i}").expect("feed xargs");
            }
        }
        assert!(child.wait().expect("wait xargs").success());
        xargs.push(t.elapsed().as_secs_f64() * 1000.0);
        let p = plan(
            tmp,
            &plan_id(3, s),
            200,
            r#"["true", "{agent_id}"]"#,
            "none",
        );
        let probe = fs_probe(&tmp.join(format!("probe-{s}")));
        ours.push(baton_run(repo, &p, 8));
        println!(
            "overhead sample {s}: xargs {:.0} ms, baton {:.0} ms, ratio {:.2}, {:.2} ms per agent \
             (file system probe: 200 directories + 400 files in {probe:.0} ms)",
            xargs[s],
            ours[s],
            ours[s] / xargs[s],
            (ours[s] - xargs[s]) / 200.0
        );
    }
    (median_ms(xargs), median_ms(ours))
}

/// What the files baton needs per agent (a directory, a log, a pid file) cost on this file
/// system right now, in ms for 200 agents. On ext4 without a journal every new inode skips
/// the inodes freed in its group in the last minute, so a deletion anywhere near (an earlier
/// run's temp dir, a build) can multiply it; the probe shows when a sample met such a file
/// system. Nothing is deleted, so the probe adds no such cost of its own.
fn fs_probe(dir: &Path) -> f64 {
    let t = Instant::now();
    for i in 0..200 {
        let d = dir.join(format!("a{i}"));
        std::fs::create_dir_all(&d).expect("probe dir");
        std::fs::write(d.join("1.log"), b"").expect("probe file");
        std::fs::write(d.join("1.pid.json"), b"").expect("probe file");
    }
    t.elapsed().as_secs_f64() * 1000.0
}

/// Wait (at most 5 minutes, saying so) until the file system probe is back to what a quiet
/// file system gives: ext4 without a journal keeps inodes freed in the last 60 s (300 s while
/// their table block is unwritten) from reuse, and scans past every one of them at each
/// allocation; after a large deletion (a test suite's temp dirs, a build) each new file costs
/// ~1 ms. xargs creates no file, so such a sample measures the file system, not baton. The
/// samples' probes are printed all the same.
fn settle(tmp: &Path) {
    let start = Instant::now();
    for n in 0.. {
        let probe = fs_probe(&tmp.join(format!("settle-{n}")));
        if probe <= 25.0 {
            if n > 0 {
                println!(
                    "file system settled after {:.0} s (probe {probe:.0} ms)",
                    start.elapsed().as_secs_f64()
                );
            }
            return;
        }
        if start.elapsed().as_secs() >= 300 {
            println!(
                "file system still slow after 5 min (probe {probe:.0} ms): the samples below measure it too"
            );
            return;
        }
        if n == 0 {
            println!(
                "file system probe {probe:.0} ms (a quiet one: < 25 ms): waiting for inodes freed recently to be reusable ..."
            );
        }
        std::thread::sleep(std::time::Duration::from_secs(10));
    }
}

fn bench_worktrees(repo: &Path, tmp: &Path, samples: usize) -> (f64, f64) {
    let (mut git, mut ours) = (Vec::new(), Vec::new());
    for s in 0..samples {
        let root = tmp.join(format!("git-wt-{s}"));
        let t = Instant::now();
        for i in 0..16 {
            let path = root.join(format!("a{i}"));
            let path = path.to_str().expect("utf-8 path");
            git_ok(
                repo,
                &[
                    "worktree",
                    "add",
                    "-q",
                    "-b",
                    &format!("g{s}/a{i}"),
                    path,
                    "main",
                ],
            );
            let ok = Command::new("true")
                .current_dir(path)
                .status()
                .expect("run true")
                .success();
            assert!(ok);
        }
        git.push(t.elapsed().as_secs_f64() * 1000.0);
        let p = plan(tmp, &plan_id(4, s), 16, r#"["true"]"#, "worktree");
        ours.push(baton_run(repo, &p, 16));
        // not timed: make room for the next sample (removing 16 full checkouts is slow, so
        // only when one follows; the last ones go with the temp dir after the table)
        if s + 1 < samples {
            let made = repo.with_extension("baton-worktrees");
            let _ = std::fs::remove_dir_all(&made);
            git_ok(repo, &["worktree", "prune"]);
        }
        println!(
            "worktree sample {s}: git loop {:.0} ms, baton {:.0} ms, ratio {:.2}",
            git[s],
            ours[s],
            ours[s] / git[s]
        );
    }
    (median_ms(git), median_ms(ours))
}

/// Peak RSS of `baton run` with 32 sleeping agents (the largest of the runner and the
/// processes it waited for), in MB, measured by verify's helper mode.
fn rss_mb(repo: &Path, tmp: &Path) -> f64 {
    let p = plan(tmp, &plan_id(5, 0), 32, r#"["sleep", "1"]"#, "none");
    let out = Command::new(std::env::current_exe().expect("current exe"))
        .args(["bench", "verify", "--rss-of", "run"])
        .arg(&p)
        .args(["--max-parallel", "32", "-q", "--repo"])
        .arg(repo)
        .output()
        .expect("run rss helper");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse::<f64>()
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}
