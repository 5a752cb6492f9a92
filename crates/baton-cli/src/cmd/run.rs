//! `baton run PLAN`: execute a plan's batches of agents, supervised and resumable; and the
//! hidden `baton __supervise` that runs one attempt (see `baton_run::supervise`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use baton_plan::store as plan_store;
use baton_plan::validate::{Severity, validate};
use baton_plan::{AgentId, ExecutionTracker, Plan, PlanId, Status};
use baton_report::exit;
use baton_run::LocalExecutor;
use baton_run::backoff::Backoff;
use baton_run::runner::{RunConfig, Runner, Workspaces};
use clap::Args;

use crate::ctx::Ctx;
use crate::error::{CliError, CliResult};

mod dry;
mod slurm_executor;
mod view;

#[derive(Debug, Args)]
#[command(after_help = "\
Each agent runs its command (its own, its profile's, the [routing] profile of its task type, or \
the default profile) in its own worktree on baton/<plan>/<agent> (or the shared checkout with \
isolation = \"none\"), in its own process group under a supervisor that outlives this process. \
State is saved at every transition: if baton run dies, agents keep running and `baton run PLAN \
--resume` picks them up. Ctrl-C once stops launching; twice stops the running agents.")]
pub struct RunArgs {
    /// A plan file (validated, then stored), a stored plan id, a unique suffix of one, or `latest`.
    plan: String,
    /// Agents running at the same time (default: from cores and free memory, said at start).
    #[arg(long, value_name = "N")]
    max_parallel: Option<usize>,
    /// Continue an interrupted execution: finished agents are never run again, live ones are
    /// adopted, gone ones are retried or failed. (A plain `baton run` on an interrupted
    /// execution does the same and says so.)
    #[arg(long)]
    resume: bool,
    /// Print the schedule — levels, what runs together, each agent's argv, worktree and
    /// branch — and run nothing.
    #[arg(long)]
    dry_run: bool,
    /// Time between SIGTERM and SIGKILL when an agent is stopped.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    grace: Duration,
    /// First retry delay; doubles each retry, with jitter.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
    backoff: Duration,
    /// Longest retry delay.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = humantime::parse_duration)]
    backoff_cap: Duration,
    /// Stop launching when this many distinct agents fail in a row with the same
    /// environment-level class (command not found, rate-limited).
    #[arg(long, value_name = "N", default_value_t = 2)]
    breaker: usize,
    /// No new agent while free memory is below this many MiB.
    #[arg(long, value_name = "MIB")]
    min_free_memory: Option<u64>,
    /// No new agent while the one-minute load average is above this.
    #[arg(long, value_name = "LOAD")]
    max_load: Option<f64>,
    /// A TOML file of resource limits (`min_free_memory = MIB`, `max_load = N`) that replace
    /// the two flags above. It is re-read while agents wait for resources, so editing it lets
    /// a waiting run go on (or holds it back); a missing file sets no limit.
    #[arg(long, value_name = "FILE")]
    limits: Option<PathBuf>,
    /// How many times a failed gate may send agents back for another attempt.
    #[arg(long, value_name = "N", default_value_t = 2)]
    replan_budget: u32,
    /// Where agents run: `local` process groups or `slurm` jobs (default: the plan's or
    /// .config/baton.toml's `[executor] kind`, else local). Resume with the same executor.
    #[arg(long, value_enum, value_name = "KIND")]
    executor: Option<super::verify::shards::ExecutorArg>,
    /// When the run succeeds, fast-forward BRANCH to the plan's integration branch
    /// (`baton/<plan>/integration`); refused unless it is a fast-forward. Without it, none of
    /// your branches or your checkout is touched.
    #[arg(long, value_name = "BRANCH")]
    land: Option<String>,
    /// Run every agent, even one whose command, prompt (upstream outputs included),
    /// environment values, base tree and upstream results match an earlier success.
    #[arg(long)]
    no_cache: bool,
    /// Say whether AGENT would come from the output cache, and which input changed if not;
    /// runs nothing.
    #[arg(long, value_name = "AGENT", conflicts_with = "dry_run")]
    explain_cache: Option<String>,
}

/// Cache entries older than this are not reused.
const CACHE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// At most this many entries are kept (the oldest go first).
const CACHE_MAX_ENTRIES: usize = 2000;

/// The hidden `__supervise` subcommand's arguments, parsed by `baton_run::supervise`.
#[derive(Debug, Args)]
pub struct SuperviseCli {
    /// The supervisor's own arguments (internal: written by `baton run`, not by people).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<OsString>,
}

pub fn supervise(args: SuperviseCli) -> CliResult {
    Ok(supervise_args(&args.args))
}

/// `__supervise ARGS…` without going through clap (it runs once per agent attempt).
pub fn supervise_args(args: &[OsString]) -> u8 {
    match baton_run::supervise::SuperviseArgs::parse(args) {
        Ok(parsed) => {
            u8::try_from(baton_run::supervise::supervise(parsed)).unwrap_or(exit::ENVIRONMENT)
        }
        Err(e) => {
            eprintln!("error: __supervise: {e}");
            exit::BAD_INPUT
        }
    }
}

/// Agents at once when `--max-parallel` is not given: two per core (agents mostly wait on
/// their model), at most one per 512 MiB of free memory, at least two.
fn default_parallel() -> (usize, String) {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mem = baton_run::procfs::available_memory_mb();
    let by_mem = mem.map_or(usize::MAX, |m| (m / 512) as usize);
    let n = (cores * 2).min(by_mem).max(2);
    let why = match mem {
        Some(m) => format!("{cores} cores, {m} MiB free"),
        None => format!("{cores} cores"),
    };
    (n, why)
}

/// Validate a plan before anything is written; errors name the file and exit 2.
fn check(plan: &Plan, source: &str) -> CliResult<()> {
    let validation = validate(plan);
    let errors: Vec<String> = validation
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| format!("{source}: {d} [{}]", d.code))
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    Err(CliError::input(format!(
        "{}\nnot run: {} error(s) in the plan; fix them and run again",
        errors.join("\n"),
        errors.len()
    )))
}

/// The plan to run: a file is validated before anything is written, then stored (a file that
/// carries the id of a stored plan runs that plan); otherwise a stored plan.
fn resolve(ctx: &Ctx, given: &str, dry_run: bool) -> CliResult<(PlanId, Plan)> {
    let path = Path::new(given);
    if baton_plan::load::Format::from_path(path).is_some() && path.is_file() {
        let plan = baton_plan::load_plan(path)?;
        check(&plan, given)?;
        if let Some(id) = &plan.id {
            let dir = ctx.state_dir()?;
            if dir.plan(id.as_str()).exists() {
                let stored = plan_store::load_stored(&dir, id)?;
                return Ok((id.clone(), stored));
            }
        }
        if dry_run {
            // the same content already stored (and not finished) is what a run would run
            let dir = ctx.state_dir()?;
            if plan.id.is_none()
                && dir.plans_dir().is_dir()
                && let Some(existing) = plan_store::find_same(&dir, &plan)?
            {
                let exec = dir.execution(existing.as_str());
                let finished = exec.exists()
                    && baton_store::read_versioned::<baton_plan::Execution>(&exec)?
                        .status
                        .is_finished();
                if !finished {
                    return Ok((existing.clone(), plan_store::load_stored(&dir, &existing)?));
                }
            }
            // not stored: a fresh id stands in for the one storing would give it
            let id = match plan.id.clone() {
                Some(id) => id,
                None => PlanId::generate(SystemTime::now())
                    .map_err(|e| CliError::env(format!("cannot generate a plan id: {e}")))?,
            };
            return Ok((id, plan));
        }
        let dir = ctx.state_dir_for_writing()?;
        let stored = match plan_store::store_plan(&dir, plan.clone(), SystemTime::now()) {
            // the same file again: an unfinished run of it continues; after a finished run it
            // is a new run (the output cache makes the unchanged agents cheap)
            Err(plan_store::PlanStoreError::Duplicate(existing)) => {
                let exec = dir.execution(existing.as_str());
                let finished = exec.exists()
                    && baton_store::read_versioned::<baton_plan::Execution>(&exec)?
                        .status
                        .is_finished();
                if !finished {
                    ctx.note(format!("the same plan is stored as {existing}; running it"));
                    let stored = plan_store::load_stored(&dir, &existing)?;
                    return Ok((existing, stored));
                }
                plan_store::store_copy(&dir, plan, SystemTime::now())?
            }
            other => other?,
        };
        let id = stored.id.clone().expect("stored plans have ids");
        ctx.note(format!("stored the plan as {id}"));
        return Ok((id, stored));
    }
    let dir = ctx.state_dir()?;
    let id = plan_store::resolve_plan_id(&dir, given)?;
    let plan = plan_store::load_stored(&dir, &id)?;
    check(&plan, &format!("plan {id}"))?;
    Ok((id, plan))
}

/// Worktrees from the pool: a finished, integrated worktree is reused when there is one.
struct Pool {
    wt: baton_worktree::Worktrees,
}

impl Workspaces for Pool {
    fn prepare(
        &self,
        plan: &PlanId,
        agent: &AgentId,
        base: Option<&str>,
    ) -> Result<(PathBuf, String), String> {
        self.prepare_many(plan, std::slice::from_ref(agent), base)?
            .pop()
            .ok_or_else(|| "no worktree was made".to_owned())
    }

    fn prepare_many(
        &self,
        plan: &PlanId,
        agents: &[AgentId],
        base: Option<&str>,
    ) -> Result<Vec<(PathBuf, String)>, String> {
        let reqs = agents
            .iter()
            .map(|agent| baton_worktree::CreateRequest {
                dir: PathBuf::from(plan.as_str()).join(agent.as_str()),
                branch: self
                    .wt
                    .config
                    .branch
                    .replace("{plan}", plan.as_str())
                    .replace("{agent}", agent.as_str()),
                base: base.unwrap_or("HEAD").to_owned(),
                plan: Some(plan.to_string()),
                agent: Some(agent.to_string()),
            })
            .collect();
        // locked to this runner until each agent's supervisor takes it over (`attach`)
        let opts = baton_worktree::CreateOptions {
            owner: baton_run::procfs::process_ref(std::process::id()),
            reuse: true,
            setup: true,
            ..Default::default()
        };
        let made = baton_worktree::create(&self.wt, reqs, &opts, SystemTime::now())
            .map_err(|e| e.to_string())?;
        // `create` returns them in request order
        Ok(made.into_iter().map(|c| (c.path, c.branch)).collect())
    }

    fn attach(&self, dir: &Path, process: baton_plan::ProcessRef) -> Result<(), String> {
        match baton_worktree::set_owner(&self.wt, &dir.to_string_lossy(), process) {
            Ok(_) => Ok(()),
            // the attempt already ended: nothing to protect
            Err(baton_worktree::WorktreeError::NoSuchProcess { .. }) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn changed_files(&self, dir: &Path) -> Vec<String> {
        changed_files(dir)
    }
}

/// Files changed in a worktree: uncommitted changes plus commits on its branch since it left
/// its upstream base, as git itself reports them.
fn changed_files(dir: &Path) -> Vec<String> {
    let Ok(repo) = git2::Repository::open(dir) else {
        return Vec::new();
    };
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(true).recurse_untracked_dirs(true);
    let mut files: Vec<String> = repo
        .statuses(Some(&mut opts))
        .map(|s| {
            s.iter()
                .filter_map(|e| e.path().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files.dedup();
    files
}

pub fn run(ctx: &Ctx, args: RunArgs) -> CliResult {
    if let Some(file) = &args.limits {
        baton_run::resources::read_limits(file).map_err(|e| {
            CliError::input(format!("--limits: {e}; fix the file or leave the flag out"))
        })?;
    }
    // explaining the cache writes nothing: a plan file is not stored, no execution is made
    let reads_only = args.dry_run || args.explain_cache.is_some();
    let (plan_id, plan) = resolve(ctx, &args.plan, reads_only)?;
    if let Some(agent) = &args.explain_cache {
        return explain_cache(ctx, &plan_id, &plan, agent, args.no_cache);
    }
    let repo = ctx.repo()?.clone();
    let root = repo.main_workdir();
    let (max_parallel, why) = match args.max_parallel {
        Some(0) => return Err(CliError::input("--max-parallel 0: give at least 1")),
        Some(n) => (n, "--max-parallel".to_owned()),
        None => default_parallel(),
    };
    let dir = ctx.state_dir()?;
    let logs_dir = dir.executions_dir().join(plan_id.as_str()).join("logs");
    let wt = baton_worktree::Worktrees::new(repo.clone(), ctx.config()?.worktree.clone())?;
    if args.dry_run {
        let worktree_of = |a: &AgentId| {
            let branch = wt
                .config
                .branch
                .replace("{plan}", plan_id.as_str())
                .replace("{agent}", a.as_str());
            (wt.root.join(plan_id.as_str()).join(a.as_str()), branch)
        };
        let p = baton_run::preview::preview(
            &plan,
            &plan_id,
            max_parallel,
            &root,
            &logs_dir,
            &worktree_of,
        );
        dry::print_preview(ctx, &p, &why)?;
        return Ok(exit::OK);
    }

    // the executor's settings are checked (and, for Slurm, tried with `sbatch --test-only`)
    // before anything is written or submitted
    let slurm = slurm_executor::prepare(ctx, &plan, args.executor, &wt.root)?;
    let dir = ctx.state_dir_for_writing()?;
    let exec_path = dir.execution(plan_id.as_str());
    let existed = exec_path.exists();
    let tracker = ExecutionTracker::open(&exec_path, plan_id.clone(), plan.clone())?;
    if existed {
        // tasks a backend failed to close when their batch succeeded: tried again
        let retried = baton_run::batch_loop::retry_open_tasks(
            &plan_id,
            &plan,
            &super::task::all_stores(&dir),
            &tracker,
            Some(&baton_metrics::MetricsLog::new(dir.metrics())),
        )?;
        super::task::warn_open(ctx, &plan_id, &retried);
        let exec = tracker.load()?;
        if exec.status.is_finished() {
            ctx.note(format!(
                "the execution of {plan_id} already finished ({}); `baton status {plan_id}` shows it",
                exec.status.as_str()
            ));
            return Ok(if exec.status == Status::Succeeded {
                exit::OK
            } else {
                exit::GATE_FAILED
            });
        }
        let started = exec.batches.iter().any(|b| b.status != Status::Pending);
        if started && !args.resume {
            ctx.note(format!(
                "resuming the interrupted execution of {plan_id} (finished agents are not run again)"
            ));
        }
    }
    if let Some(branch) = &args.land
        && repo
            .open()?
            .find_branch(branch, git2::BranchType::Local)
            .is_err()
    {
        return Err(CliError::input(format!(
            "--land {branch}: no such local branch"
        )));
    }
    // the batch loop: batches start from baton/<plan>/integration (created here from HEAD),
    // each agent's work is committed, each batch gated, merged, tested and integrated
    let mut hooks = super::batch::loop_hooks(ctx, &plan_id, &plan, None)?;
    hooks.cache =
        (!args.no_cache).then(|| baton_run::cache::Cache::new(&dir, CACHE_TTL, CACHE_MAX_ENTRIES));
    let cache_stats = std::sync::Arc::clone(&hooks.cache_stats);
    let exe = std::env::current_exe().map_err(|e| {
        CliError::env(format!(
            "cannot find the baton binary to supervise agents: {e}"
        ))
    })?;
    // the Slurm job script's directory lives as long as this function
    let (executor, _scratch): (Box<dyn baton_run::Executor>, _) = match slurm {
        Some(s) => (Box::new(s.executor), Some(s.scratch)),
        None => (
            Box::new(
                LocalExecutor::new(exe, vec!["__supervise".into()], args.grace)
                    .with_launcher(vec!["__launch".into()]),
            ),
            None,
        ),
    };
    let nonce = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let cfg = RunConfig {
        repo_root: root.clone(),
        logs_dir,
        max_parallel,
        grace: args.grace,
        backoff: Backoff {
            base: args.backoff,
            cap: args.backoff_cap,
        },
        breaker_threshold: args.breaker,
        rate_limit_cooldown: args.backoff_cap.min(Duration::from_secs(60)),
        replan_budget: args.replan_budget,
        default_retries: 0,
        min_free_memory_mb: args.min_free_memory,
        max_load: args.max_load,
        limits_file: args.limits.clone(),
        nonce,
        runner: baton_run::procfs::process_ref(std::process::id()),
        search_path: std::env::var_os("PATH"),
    };
    let runner = Runner::new(
        plan.clone(),
        plan_id.clone(),
        tracker,
        executor,
        Box::new(hooks),
        Box::new(Pool { wt }),
        cfg,
    )
    .map_err(run_error)?;
    let interrupter = runner.interrupter();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .map_err(|e| CliError::env(format!("cannot watch for Ctrl-C: {e}")))?;
    let signals_handle = signals.handle();
    std::thread::spawn(move || {
        for _ in signals.forever() {
            interrupter.interrupt();
        }
    });
    if !ctx.json {
        ctx.note(format!(
            "running {plan_id}: {} batch(es), {} agent(s), up to {max_parallel} at once ({why})",
            plan.batches.len(),
            plan.agents().count()
        ));
    }
    let metrics = baton_metrics::MetricsLog::new(dir.metrics());
    let mut out = view::Output::new(ctx, &plan, metrics);
    let summary = runner.run(&mut |e| out.event(e)).map_err(run_error)?;
    signals_handle.close();
    out.finish();
    let resume = format!("baton run {plan_id} --resume");
    if let Some(hint) = &summary.breaker {
        ctx.warn(format!("stopped launching: {hint}"));
    }
    if summary.interrupted {
        if !ctx.json {
            ctx.note(format!("state saved; continue with `{resume}`"));
        }
        return Ok(exit::GATE_FAILED);
    }
    for b in &summary.execution.batches {
        for t in b.integration.iter().flat_map(|i| &i.tasks_open) {
            ctx.warn(format!(
                "batch {}: task {} ({} backend) is not marked done: {}; `baton run {plan_id} --resume` tries again",
                b.id, t.id, t.backend, t.error
            ));
        }
    }
    let lookups = cache_stats
        .lookups
        .load(std::sync::atomic::Ordering::Relaxed);
    if lookups > 0 && !ctx.json {
        let hits = cache_stats.hits.load(std::sync::atomic::Ordering::Relaxed);
        ctx.say(format!("{hits} of {lookups} attempt(s) from cache"));
    }
    if summary.status == Status::Succeeded
        && let Some(branch) = &args.land
    {
        let r = repo.open()?;
        let tip = baton_run::integrate::integration_tip(&r, &plan_id)?
            .ok_or_else(|| CliError::env("the integration branch vanished"))?;
        let moved = baton_run::integrate::land(&r, branch, tip)?;
        if !ctx.json {
            ctx.note(if moved {
                format!("landed: {branch} fast-forwarded to baton/{plan_id}/integration")
            } else {
                format!("{branch} already points at baton/{plan_id}/integration")
            });
        }
    }
    Ok(match summary.status {
        Status::Succeeded => exit::OK,
        _ => exit::GATE_FAILED,
    })
}

/// `--explain-cache AGENT`: compare the agent's inputs as they are now (its batch starting
/// from the integration branch, or HEAD before the run) with the last success stored for it.
/// Reads only: no execution, integration branch, lock or metrics line is made.
fn explain_cache(
    ctx: &Ctx,
    plan_id: &PlanId,
    plan: &Plan,
    agent: &str,
    no_cache: bool,
) -> CliResult {
    use baton_run::cache::Explanation;
    let id = AgentId::new(agent).map_err(|e| CliError::input(format!("--explain-cache: {e}")))?;
    let Some((batch, _)) = plan.agent(&id) else {
        return Err(CliError::input(format!(
            "--explain-cache {agent}: the plan has no such agent"
        )));
    };
    if no_cache {
        return Err(CliError::input(
            "--explain-cache with --no-cache: there is no cache to ask",
        ));
    }
    let dir = ctx.state_dir()?;
    let cache = baton_run::cache::Cache::new(&dir, CACHE_TTL, CACHE_MAX_ENTRIES);
    let exec_path = dir.execution(plan_id.as_str());
    let exec: Option<baton_plan::Execution> = if exec_path.exists() {
        Some(baton_store::read_versioned(&exec_path)?)
    } else {
        None
    };
    let repo = ctx.repo()?.open()?;
    let tip = baton_run::integrate::integration_tip(&repo, plan_id)?;
    let base = match tip {
        Some(t) => t,
        None => repo
            .head()
            .ok()
            .and_then(|h| h.target())
            .ok_or_else(|| CliError::input("HEAD has no commit yet"))?,
    };
    let tree = repo
        .find_commit(base)
        .map(|c| c.tree_id().to_string())
        .map_err(|e| CliError::env(format!("read {base}: {}", e.message())))?;
    let inputs = baton_run::batch_loop::cache_inputs_of(
        &dir,
        plan_id,
        plan,
        exec.as_ref(),
        &batch.id,
        &id,
        tree,
    )?;
    let (verdict, changed) = match cache.explain(agent, &inputs) {
        Explanation::Hit => ("hit".to_owned(), Vec::new()),
        Explanation::Changed(parts) => ("miss".to_owned(), parts),
        Explanation::NoEntry => ("miss".to_owned(), Vec::new()),
        Explanation::NeverSeen => ("miss".to_owned(), Vec::new()),
    };
    let why = match cache.explain(agent, &inputs) {
        Explanation::Hit => "its inputs match a stored success: it would not run".to_owned(),
        Explanation::Changed(parts) => format!(
            "changed since its last success: {} (the base tree assumes its batch starts from {})",
            parts.join(", "),
            if tip.is_some() {
                "the integration branch as it is now"
            } else {
                "HEAD"
            }
        ),
        Explanation::NoEntry => {
            "the inputs match its last success, but that entry expired or was dropped".to_owned()
        }
        Explanation::NeverSeen => "no success of this agent is stored yet".to_owned(),
    };
    if ctx.json {
        ctx.print_json(
            &serde_json::json!({"agent": agent, "cache": verdict, "changed": changed, "why": why}),
        )?;
    } else {
        ctx.say(format!("{agent}: cache {verdict}: {why}"));
    }
    Ok(exit::OK)
}

fn run_error(e: baton_run::RunError) -> CliError {
    match e {
        baton_run::RunError::Track(t) => t.into(),
        baton_run::RunError::Busy(m) => CliError::env(m),
    }
}
