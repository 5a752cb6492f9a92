//! `baton verify --shards N [--executor local|slurm]`: the tests check as N nextest partitions
//! (`hash:K/N`), run as N local processes or as one Slurm array job, their reports merged
//! (`report merge`'s logic) into one tests check with the same counts and verdict as an
//! unsharded run.
//!
//! Each shard is this same program: `verify --check tests --partition hash:K/N --report FILE
//! --json`, so a shard is exactly what a user can run by hand.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use baton_git::RepoPaths;
use baton_plan::executor::{ExecutorKind, ExecutorSettings};
use baton_report::{Check, CheckStatus, VerifyReport};
use baton_run::Outcome;
use baton_slurm::array::{ArrayJob, submit_array, wait_array};
use baton_slurm::{Slurm, SlurmError};
use baton_verify::gate::{self, CheckKind, GateOptions, Mode};

use crate::ctx::Ctx;
use crate::error::{CliError, CliResult};

/// The most shards one run may ask for.
const MAX_SHARDS: u32 = 256;
const TASK: &str = "{array_task}";

/// `--executor`: where the shards run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExecutorArg {
    Local,
    Slurm,
}

impl From<ExecutorArg> for ExecutorKind {
    fn from(a: ExecutorArg) -> ExecutorKind {
        match a {
            ExecutorArg::Local => ExecutorKind::Local,
            ExecutorArg::Slurm => ExecutorKind::Slurm,
        }
    }
}

/// A sharded tests run, validated.
pub struct Sharding {
    pub shards: u32,
    pub kind: ExecutorKind,
    pub settings: ExecutorSettings,
}

/// Check `--shards`/`--executor` against the other flags and the config (exit 2 on anything
/// wrong), before any check runs.
pub fn validate(
    ctx: &Ctx,
    shards: Option<u32>,
    executor: Option<ExecutorArg>,
    conflicting: &[(&str, bool)],
) -> CliResult<Option<Sharding>> {
    let Some(n) = shards else {
        if executor.is_some() {
            return Err(CliError::input(
                "--executor needs --shards N (the executor runs the test shards)",
            ));
        }
        return Ok(None);
    };
    if n == 0 || n > MAX_SHARDS {
        return Err(CliError::input(format!(
            "--shards {n}: give a number of shards from 1 to {MAX_SHARDS}"
        )));
    }
    if let Some((flag, _)) = conflicting.iter().find(|(_, set)| *set) {
        return Err(CliError::input(format!(
            "--shards cannot be combined with {flag}; shards test the checkout as it is"
        )));
    }
    let settings = ctx.config()?.executor.clone();
    let kind = executor.map_or(settings.kind(), ExecutorKind::from);
    Ok(Some(Sharding {
        shards: n,
        kind,
        settings,
    }))
}

/// Run the shards and merge their tests checks. Problems running them become an `error`
/// check; Slurm refusing the job's settings is bad input (exit 2, nothing ran).
pub fn run(ctx: &Ctx, repo: &RepoPaths, full: bool, s: &Sharding) -> CliResult<Check> {
    let started = Instant::now();
    let state = ctx.state_dir_for_writing()?;
    let dir = state.root().join("shards").join(format!(
        "{}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis()),
        std::process::id()
    ));
    baton_store::create_dir_all(&dir)?;
    let exe = std::env::current_exe()
        .map_err(|e| CliError::env(format!("cannot find this program's path: {e}")))?;
    let n = s.shards;
    let argv: Vec<String> = vec![
        exe.to_string_lossy().into_owned(),
        "--repo".into(),
        repo.workdir.to_string_lossy().into_owned(),
        "--color".into(),
        "never".into(),
        "--json".into(),
        "verify".into(),
        "--check".into(),
        "tests".into(),
        // a shard tests the checkout as it is (sharding refuses --merged)
        "--in-checkout".into(),
        if full { "--full" } else { "--quick" }.into(),
        "--partition".into(),
        format!("hash:{TASK}/{n}"),
        "--report".into(),
        dir.join(format!("shard-{TASK}.json"))
            .to_string_lossy()
            .into_owned(),
    ];
    ctx.note(format!(
        "tests: {n} shards on the {} executor (logs in {})",
        s.kind.as_str(),
        dir.display()
    ));
    let (outcomes, where_) = match s.kind {
        ExecutorKind::Local => (
            run_local(&argv, n, &dir, &repo.workdir)?,
            "local".to_owned(),
        ),
        ExecutorKind::Slurm => run_slurm(ctx, &argv, n, &dir, &repo.workdir, &s.settings)?,
    };
    let mut reports = Vec::new();
    let mut broken = Vec::new();
    for k in 1..=n {
        let path = dir.join(format!("shard-{k}.json"));
        let parsed = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str::<VerifyReport>(&t).ok());
        match parsed {
            Some(r) => reports.push((path, r)),
            None => broken.push(format!(
                "shard {k}/{n} wrote no report ({}; log: {})",
                describe(outcomes.get(&k)),
                dir.join(format!("shard-{k}.log")).display()
            )),
        }
    }
    if !broken.is_empty() {
        let mut c = errored("tests", broken.join("; "), started);
        c.message = Some(format!("{} [{where_}]", c.message.unwrap_or_default()));
        return Ok(c);
    }
    let merged = baton_verify::report::merge_reports(reports)?;
    let Some(mut tests) = merged.checks.into_iter().find(|c| c.name == "tests") else {
        return Ok(errored(
            "tests",
            format!(
                "the shards' reports have no tests check (logs in {})",
                dir.display()
            ),
            started,
        ));
    };
    tests.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let note = format!("{n} shards on {where_}");
    tests.message = Some(match tests.message.take() {
        Some(m) => format!("{m} ({note})"),
        None => note,
    });
    // every shard reported: the directory is ours and holds nothing else worth keeping
    if tests.status != CheckStatus::Error {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(tests)
}

/// The gate with the tests check run as shards: the other checks through
/// `baton_verify::gate::run` as usual, the tests through [`run`], then the report is finished
/// (and written to `--report`) as the gate would.
pub fn gate(
    ctx: &Ctx,
    opts: &GateOptions,
    progress: &dyn baton_verify::gate::Progress,
    s: &Sharding,
) -> CliResult<VerifyReport> {
    let started = Instant::now();
    let mut rest = opts.clone();
    rest.checks.retain(|k| *k != CheckKind::Tests);
    rest.report = None;
    let mut rep = gate::run(&rest, progress)?;
    if opts.checks.contains(&CheckKind::Tests) {
        rep.checks
            .push(run(ctx, &opts.repo, opts.mode == Mode::Full, s)?);
    }
    rep.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    baton_verify::report::finish(&mut rep);
    if let Some(path) = &opts.report {
        let mut text = serde_json::to_vec_pretty(&rep)
            .map_err(|e| CliError::env(format!("cannot serialize the report: {e}")))?;
        text.push(b'\n');
        baton_store::write_atomic(path, &text)?;
    }
    Ok(rep)
}

fn errored(name: &str, message: String, started: Instant) -> Check {
    Check {
        name: name.to_owned(),
        status: CheckStatus::Error,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        findings: Vec::new(),
        tests: None,
        message: Some(message),
        agents: Vec::new(),
    }
}

fn describe(o: Option<&Outcome>) -> String {
    match o {
        Some(Outcome::Exited(c)) => format!("exited {c}"),
        Some(Outcome::Signalled(s)) => format!("killed by signal {s}"),
        Some(Outcome::TimedOut) => "timed out".to_owned(),
        Some(Outcome::Cancelled) => "cancelled".to_owned(),
        Some(Outcome::SpawnFailed(m) | Outcome::Lost(m) | Outcome::NotStarted(m)) => m.clone(),
        None => "no status".to_owned(),
    }
}

fn fill(argv: &[String], k: u32) -> Vec<String> {
    argv.iter()
        .map(|a| a.replace(TASK, &k.to_string()))
        .collect()
}

fn run_local(argv: &[String], n: u32, dir: &Path, cwd: &Path) -> CliResult<BTreeMap<u32, Outcome>> {
    let mut children = Vec::new();
    for k in 1..=n {
        let args = fill(argv, k);
        let log_path = dir.join(format!("shard-{k}.log"));
        // a new file of its own, never through a link at its name
        let log = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&log_path)
            .map_err(|e| CliError::env(format!("cannot write {}: {e}", log_path.display())))?;
        let err = log
            .try_clone()
            .map_err(|e| CliError::env(format!("cannot write {}: {e}", log_path.display())))?;
        let child = Command::new(&args[0])
            .args(&args[1..])
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| CliError::env(format!("cannot start shard {k}: {e}")))?;
        children.push((k, child));
    }
    let mut out = BTreeMap::new();
    for (k, mut child) in children {
        let o = match child.wait() {
            Ok(s) => match s.code() {
                Some(c) => Outcome::Exited(c),
                None => Outcome::Signalled(
                    std::os::unix::process::ExitStatusExt::signal(&s).unwrap_or(0),
                ),
            },
            Err(e) => Outcome::Lost(e.to_string()),
        };
        out.insert(k, o);
    }
    Ok(out)
}

fn run_slurm(
    ctx: &Ctx,
    argv: &[String],
    n: u32,
    dir: &Path,
    cwd: &Path,
    settings: &ExecutorSettings,
) -> CliResult<(BTreeMap<u32, Outcome>, String)> {
    let slurm = Slurm::default();
    let script = baton_slurm::job::ensure_script(dir).map_err(|e| {
        CliError::env(format!(
            "cannot write the job script in {}: {e}",
            dir.display()
        ))
    })?;
    if let Ok(nodes) = slurm.node_count()
        && let Some(w) = baton_slurm::fs::shared_fs_warning(cwd, nodes)
    {
        ctx.warn(w);
    }
    let env = BTreeMap::new();
    let options = baton_slurm::job::resource_options(&settings.job_for(""), &Default::default());
    let name = format!("baton-verify-shards-{}", std::process::id());
    let job = ArrayJob {
        name: &name,
        tasks: n,
        script: &script,
        args: argv,
        cwd,
        log_dir: dir,
        log_prefix: "shard",
        timeout: None,
        options,
        env: &env,
    };
    let id = submit_array(&slurm, &job).map_err(slurm_err)?;
    ctx.note(format!("tests: submitted array job {id} ({n} tasks)"));
    let poll = settings
        .poll_interval
        .map_or(Duration::from_millis(500), |d| d.0);
    let outcomes = wait_array(&slurm, &id, n, poll, |done| {
        ctx.note(format!("tests: {done}/{n} shards finished"));
    })
    .map_err(|e| {
        // no one will wait for the shards any more: do not leave them queued
        let _ = slurm.cancel(&id, None);
        slurm_err(e)
    })?;
    Ok((outcomes, format!("slurm job {id}")))
}

fn slurm_err(e: SlurmError) -> CliError {
    match e {
        SlurmError::Refused(_) => CliError::input(format!("[executor] in .config/baton.toml: {e}")),
        e => CliError::env(e.to_string()),
    }
}
