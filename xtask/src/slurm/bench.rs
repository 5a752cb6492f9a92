//! `cargo xtask slurm bench [--agents N] [--samples N]`: N agents that sleep 1 s run by
//! `baton run` through the local executor and through Slurm, in the same run; prints every
//! sample and the per-agent overhead of the Slurm path in ms ((slurm − local) wall time / N).
//!
//! Needs a cluster (`cargo xtask slurm up`); baton runs as this very binary.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

pub fn run(conf: &Path, args: &[String]) -> ExitCode {
    let mut agents = 32usize;
    let mut samples = 3usize;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let n = it.next().and_then(|v| v.parse::<usize>().ok());
        match (a.as_str(), n) {
            ("--agents", Some(n)) => agents = n.max(1),
            ("--samples", Some(n)) => samples = n.max(1),
            _ => {
                eprintln!("usage: cargo xtask slurm bench [--agents N] [--samples N]");
                return ExitCode::from(2);
            }
        }
    }
    println!("slurm bench: {agents} agents sleeping 1 s, {samples} samples, max-parallel {agents}");
    match compare(conf, agents, samples) {
        Ok((l, r)) => {
            println!(
                "median: local {l:.0} ms, slurm {r:.0} ms, ratio {:.2}; per-agent overhead of the Slurm path: {:.1} ms",
                r / l,
                (r - l) / agents as f64
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(3)
        }
    }
}

/// The cluster `cargo xtask bench run` uses: `SLURM_CONF`, else the one `cargo xtask slurm up`
/// starts; `None` when no controller answers.
pub fn find_cluster() -> Option<std::path::PathBuf> {
    let conf = std::env::var_os("SLURM_CONF")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(super::DEFAULT_DIR).join("slurm.conf"));
    let ok = Command::new("sinfo")
        .arg("--noheader")
        .env("SLURM_CONF", &conf)
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(conf)
}

/// Median wall times (ms) of `baton run` with `agents` sleeping agents, local then Slurm;
/// every sample is printed.
pub fn compare(conf: &Path, agents: usize, samples: usize) -> Result<(f64, f64), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let mut local = Vec::new();
    let mut slurm = Vec::new();
    for s in 1..=samples {
        let l = one(&exe, conf, "local", agents)?;
        let r = one(&exe, conf, "slurm", agents)?;
        println!(
            "sample {s}: local {l:.0} ms, slurm {r:.0} ms, ratio {:.2}, slurm overhead {:.1} ms/agent",
            r / l,
            (r - l) / agents as f64
        );
        local.push(l);
        slurm.push(r);
    }
    Ok((median(local), median(slurm)))
}

/// Wall time of one `baton run` of the plan, in ms.
fn one(exe: &Path, conf: &Path, executor: &str, agents: usize) -> Result<f64, String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let repo = tmp.path();
    let git = |args: &[&str]| -> Result<(), String> {
        let ok = Command::new("git")
            .args(args)
            .current_dir(repo)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "bench")
            .env("GIT_AUTHOR_EMAIL", "bench@baton.invalid")
            .env("GIT_COMMITTER_NAME", "bench")
            .env("GIT_COMMITTER_EMAIL", "bench@baton.invalid")
            .output()
            .map_err(|e| e.to_string())?
            .status
            .success();
        ok.then_some(())
            .ok_or_else(|| format!("git {args:?} failed"))
    };
    git(&["init", "-q", "-b", "main"])?;
    git(&["commit", "-q", "--allow-empty", "-m", "init"])?;
    let mut plan = String::from(
        "schema_version = 1\ntitle = \"bench\"\n[defaults]\nisolation = \"none\"\ncommand = [\"sleep\", \"1\"]\n[[batches]]\nid = \"B1\"\n",
    );
    if executor == "slurm" {
        plan.push_str("[executor]\nkind = \"slurm\"\npoll_interval = \"100ms\"\n");
    }
    for i in 0..agents {
        plan.push_str(&format!(
            "[[batches.agents]]\nid = \"a{i}\"\ntask_type = \"test\"\n"
        ));
    }
    let path = repo.join("plan.toml");
    std::fs::write(&path, plan).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let out = Command::new(exe)
        .args(["run", "--repo"])
        .arg(repo)
        .arg(&path)
        .args([
            "--executor",
            executor,
            "--max-parallel",
            &agents.to_string(),
            "--quiet",
        ])
        .env("SLURM_CONF", conf)
        .output()
        .map_err(|e| e.to_string())?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if !out.status.success() {
        return Err(format!(
            "baton run --executor {executor} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(ms)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
