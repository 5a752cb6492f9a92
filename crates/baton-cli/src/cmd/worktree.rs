//! `baton worktree create|list|cleanup|prune|lock|unlock`: the CLI face of `baton-worktree`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::SystemTime;

use baton_plan::duration::HumanDuration;
use baton_plan::store as plan_store;
use baton_plan::{AgentId, Execution, PlanId, Status};
use baton_report::exit;
use baton_worktree::{
    ActionKind, CleanupOptions, CreateOptions, CreateRequest, Worktrees, process,
};
use clap::{Args, Subcommand};

mod list;

use crate::ctx::Ctx;
use crate::error::{CliError, CliResult};

/// The version of every `worktree … --json` document (list, create, cleanup, prune, lock, unlock).
pub const WORKTREE_OUTPUT_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Subcommand)]
pub enum WorktreeCommand {
    /// Create worktrees: one per agent of a plan (--plan), or one named NAME.
    Create(CreateArgs),
    /// Every worktree: branch, head, dirty, ahead/behind, merged state, lock, owner, age.
    List(ListArgs),
    /// Remove worktrees baton made whose work is integrated (merging them into the target
    /// changes nothing); keep, and say why, everything else. The debris of interrupted creates
    /// is rolled back. Up to `[worktree] spares` (default 8) clean ones are kept as spares for
    /// the next create, which then writes only what differs. --json names what each removal
    /// discards (ignored files as a count and a sample, nested repositories, hidden edits);
    /// --dry-run says all of it and changes nothing.
    Cleanup(CleanupArgs),
    /// Remove the administrative entries of worktrees whose directory is gone.
    Prune(PruneArgs),
    /// Record process PID as the owner of a worktree: cleanup never touches it while it runs.
    Lock(LockArgs),
    /// Remove a worktree's lock.
    Unlock(UnlockArgs),
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["name", "plan"]))]
pub struct CreateArgs {
    /// Name of a single worktree (directory under the root; also the branch unless --branch).
    name: Option<String>,
    /// Create the worktrees of this plan's agents (id, unique suffix, or `latest`).
    #[arg(long, value_name = "ID")]
    plan: Option<String>,
    /// Only these agents of the plan (repeatable; default all).
    #[arg(long = "agent", value_name = "AGENT", requires = "plan")]
    agents: Vec<String>,
    /// The worktrees of one batch of the plan, started from the plan's integration branch
    /// (`baton/<plan>/integration`, created from the target if needed); the batch and its
    /// agents are recorded as started in the execution, as `baton run` would.
    #[arg(
        long,
        value_name = "BATCH",
        requires = "plan",
        conflicts_with = "agents"
    )]
    batch: Option<String>,
    /// Branch, tag or commit to start from (default: the target branch).
    #[arg(long, value_name = "REF")]
    base: Option<String>,
    /// Branch of a named worktree (default NAME).
    #[arg(long, value_name = "BRANCH", requires = "name")]
    branch: Option<String>,
    /// Reuse finished worktrees (clean, integrated, no live owner) instead of fresh checkouts.
    #[arg(long)]
    reuse: bool,
    /// Skip copying .worktreeinclude files and running the setup command.
    #[arg(long)]
    no_setup: bool,
    /// Lock the new worktrees for process PID (pid + start time are recorded).
    #[arg(long, value_name = "PID")]
    owner_pid: Option<u32>,
    /// The branch that reusable worktrees must be integrated into.
    #[arg(long, value_name = "REF")]
    target: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// The branch merged state is computed against (default: config, else the main checkout's branch).
    #[arg(long, value_name = "REF")]
    pub(crate) target: Option<String>,
}

#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Only these worktrees (name, path or branch); exit 1 if one of them is kept.
    worktrees: Vec<String>,
    /// Show what would be done, do nothing.
    #[arg(long)]
    dry_run: bool,
    /// Also remove dirty, unmerged, new and person-locked worktrees (unmerged branches are still
    /// kept; worktrees of live owners, of live executions, with a process inside, unreadable,
    /// not proven theirs, or holding submodule commits found nowhere else are still kept).
    #[arg(long)]
    force: bool,
    /// Only worktrees older than this (e.g. 2h, 1d).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    older_than: Option<HumanDuration>,
    /// Keep *new* worktrees (no commits of their own yet) younger than this, unless --force
    /// (default: [worktree] min_age, 1h).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    min_age: Option<HumanDuration>,
    /// Also worktrees baton did not make (plain `git worktree add`); by default they are
    /// listed as kept and left alone.
    #[arg(long)]
    all: bool,
    /// Only worktrees made for this plan.
    #[arg(long, value_name = "ID")]
    plan: Option<String>,
    /// Only the worktrees of this batch of --plan, checked against the plan's integration
    /// branch (unless --target): a batch integrated there is merged, and its worktrees and
    /// branches can go while the integration branch keeps every commit.
    #[arg(long, value_name = "BATCH", requires = "plan")]
    batch: Option<String>,
    /// Never delete branches, even integrated ones.
    #[arg(long)]
    keep_branches: bool,
    /// The branch work must be integrated into (default: config, else the main checkout's branch).
    #[arg(long, value_name = "REF")]
    target: Option<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Show what would be pruned, do nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// Worktree name, path or branch.
    worktree: String,
    /// The owner process.
    #[arg(long, value_name = "PID")]
    pid: u32,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Worktree name, path or branch.
    worktree: String,
}

fn parse_duration(s: &str) -> Result<HumanDuration, String> {
    HumanDuration::try_from(s.to_owned())
}

pub fn run(ctx: &Ctx, command: WorktreeCommand) -> CliResult {
    let wt = Worktrees::new(ctx.repo()?.clone(), ctx.config()?.worktree.clone())?;
    match command {
        WorktreeCommand::Create(a) => create(ctx, &wt, a),
        WorktreeCommand::List(a) => list::run(ctx, &wt, a),
        WorktreeCommand::Cleanup(a) => cleanup(ctx, &wt, a),
        WorktreeCommand::Prune(a) => prune(ctx, &wt, a),
        WorktreeCommand::Lock(a) => {
            let owner = process::process_ref(a.pid)
                .ok_or_else(|| CliError::input(format!("process {} does not exist", a.pid)))?;
            let path = baton_worktree::set_owner(&wt, &a.worktree, owner)?;
            json_or_say(
                ctx,
                &serde_json::json!({ "path": path, "owner": owner }),
                format!("locked {} for process {}", path.display(), owner.pid),
            )
        }
        WorktreeCommand::Unlock(a) => {
            let owner = baton_worktree::release(&wt, &a.worktree)?;
            json_or_say(
                ctx,
                &serde_json::json!({ "worktree": a.worktree, "previous_owner": owner }),
                format!("unlocked {}", a.worktree),
            )
        }
    }
}

fn json_or_say(ctx: &Ctx, value: &serde_json::Value, line: String) -> CliResult {
    if ctx.json {
        ctx.print_versioned(WORKTREE_OUTPUT_SCHEMA_VERSION, value)?;
    } else {
        ctx.say(line);
    }
    Ok(exit::OK)
}

fn create(ctx: &Ctx, wt: &Worktrees, mut a: CreateArgs) -> CliResult {
    let repo = wt.open()?;
    // --batch: validated before anything is written; the batch's agents, on the integration
    // branch
    let batch = match (&a.batch, &a.plan) {
        (Some(b), Some(p)) => {
            let start = super::batch::batch_start(ctx, p, b)?;
            a.agents = start.agents.iter().map(ToString::to_string).collect();
            Some(start)
        }
        _ => None,
    };
    let base = match (a.base.take(), &batch) {
        (Some(b), _) => b,
        (None, Some(start)) => {
            let target = wt.resolve_target(&repo, a.target.as_deref())?.name;
            start.integration_base(&repo, &target)?
        }
        (None, None) => wt.resolve_target(&repo, a.target.as_deref())?.name,
    };
    let mut reqs = Vec::new();
    if let Some(name) = &a.name {
        baton_worktree::check_name(name)?;
        reqs.push(CreateRequest {
            dir: PathBuf::from(name),
            branch: a.branch.clone().unwrap_or_else(|| name.clone()),
            base: base.clone(),
            plan: None,
            agent: None,
        });
    } else if let Some(given) = &a.plan {
        let dir = ctx.state_dir()?;
        let stored = plan_store::resolve_plan_id(&dir, given)
            .and_then(|id| plan_store::load_stored(&dir, &id));
        let (plan_id, agents): (PlanId, Vec<String>) = match stored {
            Ok(plan) => {
                let id = plan
                    .id
                    .clone()
                    .ok_or_else(|| CliError::input(format!("stored plan {given} has no id")))?;
                let all: Vec<String> = plan
                    .agents()
                    .map(|(_, ag)| ag.id.as_str().to_owned())
                    .collect();
                for want in &a.agents {
                    if !all.contains(want) {
                        return Err(CliError::input(format!("plan {id} has no agent {want:?}")));
                    }
                }
                (
                    id,
                    if a.agents.is_empty() {
                        all
                    } else {
                        a.agents.clone()
                    },
                )
            }
            // A plan that is not stored (yet) is fine when its id and agents are given.
            Err(e) if !a.agents.is_empty() => {
                let id = PlanId::new(given.clone()).map_err(|_| CliError::from(e))?;
                (id, a.agents.clone())
            }
            Err(e) => return Err(e.into()),
        };
        let mut seen = BTreeSet::new();
        for agent in agents {
            AgentId::new(agent.clone()).map_err(|e| CliError::input(e.to_string()))?;
            if !seen.insert(agent.clone()) {
                return Err(CliError::input(format!(
                    "--agent {agent} is given twice; name each agent once"
                )));
            }
            reqs.push(CreateRequest {
                dir: PathBuf::from(plan_id.as_str()).join(&agent),
                branch: wt.config.agent_branch(plan_id.as_str(), &agent),
                base: base.clone(),
                plan: Some(plan_id.to_string()),
                agent: Some(agent),
            });
        }
    }
    let owner = match a.owner_pid {
        Some(pid) => Some(
            process::process_ref(pid)
                .ok_or_else(|| CliError::input(format!("--owner-pid {pid}: no such process")))?,
        ),
        None => None,
    };
    // Debris of creates that were killed: rolled back (or forward) first, and said so.
    for d in baton_worktree::journal::recover(wt, false)? {
        for step in &d.steps {
            ctx.note(format!(
                "interrupted create ({}): {step}",
                d.journal.display()
            ));
        }
    }
    let progress = crate::progress::Counter::new(ctx, "checking out", "files");
    let opts = CreateOptions {
        owner,
        reuse: a.reuse,
        setup: !a.no_setup,
        target: a.target,
        progress: Some(std::sync::Arc::clone(&progress.count)),
    };
    let created = baton_worktree::create(wt, reqs, &opts, SystemTime::now());
    drop(progress);
    let created = created?;
    if let Some(start) = &batch {
        let made: Vec<(String, PathBuf, String)> = created
            .iter()
            .map(|c| {
                (
                    c.agent.clone().unwrap_or_default(),
                    c.path.clone(),
                    c.branch.clone(),
                )
            })
            .collect();
        start.record(ctx, &made)?;
    }
    if ctx.json {
        ctx.print_versioned(
            WORKTREE_OUTPUT_SCHEMA_VERSION,
            &serde_json::json!({ "created": created }),
        )?;
        return Ok(exit::OK);
    }
    for c in &created {
        let how = match &c.reused_from {
            Some(from) => format!(
                "reused {} ({} files rewritten)",
                from.display(),
                c.files_written
            ),
            None => format!("{} files", c.files_written),
        };
        ctx.say(format!(
            "created {} on {} from {} ({}) — {how}",
            c.path.display(),
            ctx.style.bold(&c.branch),
            c.base,
            &c.base_commit[..10]
        ));
        for n in &c.not_copied {
            ctx.say(format!("  not copied: {} ({})", n.path, n.why));
        }
    }
    Ok(exit::OK)
}

/// (plan, agent) pairs that an unfinished execution lists as pending or running.
fn active_agents(ctx: &Ctx) -> CliResult<BTreeSet<(String, String)>> {
    let dir = ctx.state_dir()?;
    let mut out = BTreeSet::new();
    let Ok(read) = std::fs::read_dir(dir.executions_dir()) else {
        return Ok(out);
    };
    for e in read.flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let exec: Execution = baton_store::read_json(&path)?;
        if exec.status.is_finished() {
            continue;
        }
        for b in &exec.batches {
            for ag in &b.agents {
                if matches!(ag.status, Status::Pending | Status::Running) {
                    out.insert((exec.plan_id.to_string(), ag.id.as_str().to_owned()));
                }
            }
        }
    }
    Ok(out)
}

fn cleanup(ctx: &Ctx, wt: &Worktrees, mut a: CleanupArgs) -> CliResult {
    if let (Some(plan), Some(batch)) = (&a.plan, &a.batch) {
        let (branches, integration) = super::batch::batch_branches(ctx, plan, batch)?;
        let repo = wt.open()?;
        let existing: Vec<String> = branches
            .into_iter()
            .filter(|b| repo.find_branch(b, git2::BranchType::Local).is_ok())
            .collect();
        if existing.is_empty() {
            ctx.say(format!(
                "batch {batch} has no worktree branches left; nothing to clean up"
            ));
            return Ok(exit::OK);
        }
        a.worktrees.extend(existing);
        if a.target.is_none() {
            a.target = integration;
        }
    }
    let nothing = nothing_to_clean(&a);
    // A plan given by a unique prefix or `latest` resolves to its stored id; an id that is not
    // stored is still fine if worktrees were made for it (the library checks that).
    let (plan, plan_stored) = match &a.plan {
        None => (None, false),
        Some(given) => match plan_store::resolve_plan_id(&ctx.state_dir()?, given) {
            Ok(id) => (Some(id.to_string()), true),
            Err(_) => (Some(given.clone()), false),
        },
    };
    let opts = CleanupOptions {
        force: a.force,
        dry_run: a.dry_run,
        older_than: a.older_than.map(|d| d.0),
        keep_branches: a.keep_branches,
        only: a.worktrees,
        plan,
        plan_stored,
        target: a.target,
        all: a.all,
        min_age: Some(a.min_age.unwrap_or(wt.config.min_age).0),
        active_agents: active_agents(ctx)?,
    };
    let report = baton_worktree::cleanup(wt, &opts, SystemTime::now())?;
    if let (Some(plan), Some(batch)) = (&a.plan, &a.batch) {
        super::batch::record_cleanup(ctx, plan, batch, &report)?;
    }
    let code = if report.refused {
        exit::GATE_FAILED
    } else {
        exit::OK
    };
    if ctx.json {
        ctx.print_versioned(WORKTREE_OUTPUT_SCHEMA_VERSION, &report)?;
        return Ok(code);
    }
    let would = if report.dry_run { "would " } else { "" };
    for act in &report.actions {
        let verb = match act.kind {
            ActionKind::Remove => "remove",
            ActionKind::Prune => "prune",
        };
        let branch = match (&act.branch, act.delete_branch, act.branch_kept) {
            (Some(b), true, _) => format!("; {would}delete branch {b}"),
            (Some(b), false, Some(why)) => format!(
                "; keep branch {b} ({})",
                serde_json::to_value(why)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            ),
            _ => String::new(),
        };
        let merged = act
            .merge
            .map(|m| format!(" [{}]", m.as_str()))
            .unwrap_or_default();
        let discards = if act.discards_changes {
            format!("; {would}discard its uncommitted changes (--force)")
        } else {
            String::new()
        };
        let stale = act
            .stale_owner
            .map(|o| format!("; its owner (pid {}) is gone", o.pid))
            .unwrap_or_default();
        let fail = act
            .error
            .as_deref()
            .map(|e| format!(" — FAILED: {e}"))
            .unwrap_or_default();
        let recovered = if act.recovered_refs.is_empty() {
            String::new()
        } else {
            format!(
                "; keep commits only it held as {}",
                act.recovered_refs.join(", ")
            )
        };
        let spare = if act.spare {
            " as a spare for the next create"
        } else {
            ""
        };
        ctx.say(format!(
            "{would}{verb} {} ({}){spare}{merged}{discards}{branch}{recovered}{stale}{fail}",
            act.name,
            act.path.display()
        ));
        for line in discard_lines(act) {
            ctx.say(format!("    {would}discard {line}"));
        }
    }
    for d in &report.debris {
        for step in &d.steps {
            ctx.say(format!("{would}{step} ({})", d.journal.display()));
        }
    }
    for k in &report.kept {
        let line = format!("keep {} ({}): {}", k.name, k.path.display(), k.message);
        ctx.say(if k.requested {
            ctx.style.red(&line)
        } else {
            line
        });
    }
    for p in &report.swept {
        ctx.say(format!("{would}delete leftover {}", p.display()));
    }
    if report.spares.freed > 0 {
        ctx.say(format!(
            "{would}free {} spare(s) beyond [worktree] spares",
            report.spares.freed
        ));
    }
    if report.actions.is_empty() && report.kept.is_empty() && report.swept.is_empty() {
        ctx.say(nothing);
    }
    if report.spares.count > 0 {
        ctx.note(format!(
            "{} spare worktree(s) in {} use {:.1} MiB; set [worktree] spares = 0 and run cleanup to free them",
            report.spares.count,
            report.spares.dir.display(),
            report.spares.bytes as f64 / (1024.0 * 1024.0)
        ));
    }
    if report.scope == "all" {
        ctx.note("--all: worktrees baton did not make were included");
    }
    if report.refused {
        ctx.warn("some worktrees you named were kept or could not be removed");
    }
    Ok(code)
}

/// What "nothing to do" means under the filters given: `no worktrees of plan X older than 2h`.
fn nothing_to_clean(a: &CleanupArgs) -> String {
    let mut line = String::from("nothing to clean up: no linked worktrees");
    if let Some(plan) = &a.plan {
        line.push_str(&format!(" of plan {plan}"));
    }
    if let Some(age) = &a.older_than {
        line.push_str(&format!(" older than {age}"));
    }
    line
}

/// What removing a worktree throws away, one line per kind.
fn discard_lines(act: &baton_worktree::Action) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(d) = act.dirty {
        if d.modified > 0 {
            out.push(format!("{} uncommitted change(s)", d.modified));
        }
        if d.untracked > 0 {
            out.push(format!("{} untracked file(s)", d.untracked));
        }
    }
    if let Some(h) = &act.hidden {
        if h.ignored > 0 {
            out.push(format!(
                "{} ignored file(s), e.g. {}",
                h.ignored,
                h.ignored_sample.join(", ")
            ));
        }
        if !h.nested_repos.is_empty() {
            out.push(format!("nested repositories {}", h.nested_repos.join(", ")));
        }
        if !h.hidden_edits.is_empty() {
            out.push(format!(
                "edits hidden by assume-unchanged/skip-worktree in {}",
                h.hidden_edits.join(", ")
            ));
        }
        if !h.caches.is_empty() {
            out.push(format!("build caches {}", h.caches.join(", ")));
        }
    }
    out
}

fn prune(ctx: &Ctx, wt: &Worktrees, a: PruneArgs) -> CliResult {
    let report = baton_worktree::prune(wt, a.dry_run)?;
    if ctx.json {
        ctx.print_versioned(WORKTREE_OUTPUT_SCHEMA_VERSION, &report)?;
        return Ok(exit::OK);
    }
    let would = if a.dry_run { "would prune" } else { "pruned" };
    for p in &report.pruned {
        let recovered = p
            .recovered_ref
            .as_deref()
            .map(|r| format!("; its head is kept as {r}"))
            .unwrap_or_default();
        ctx.say(format!(
            "{would} {} ({} is gone){recovered}",
            p.name,
            p.path.display()
        ));
    }
    for p in &report.held {
        ctx.say(format!(
            "kept {} ({} is gone, but it is locked)",
            p.name,
            p.path.display()
        ));
    }
    for p in &report.unreadable {
        let why = p.reason.as_deref().unwrap_or("cannot be read");
        ctx.say(format!(
            "kept {} ({why}: unreadable is not missing)",
            p.name
        ));
    }
    if report.pruned.is_empty() && report.held.is_empty() && report.unreadable.is_empty() {
        ctx.say("nothing to prune");
    }
    Ok(exit::OK)
}
