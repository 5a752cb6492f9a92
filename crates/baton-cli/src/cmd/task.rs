//! `baton task create-from-plan|link|list|ready`: plans linked to a task system.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::time::SystemTime;

use baton_plan::store as plan_store;
use baton_report::exit;
use baton_tasks::file::FileStore;
use baton_tasks::from_plan::{create_from_plan, link_task};
use baton_tasks::taskwarrior::Taskwarrior;
use baton_tasks::{Task, TaskStore};
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

use crate::ctx::Ctx;
use crate::error::{CliError, CliResult};
use crate::table::{Align, Cell, Paint, Table};

#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// One parent task for a stored plan and one task per batch, blocked as `depends_on` says;
    /// the plan and the tasks are linked both ways. Re-running creates only what is missing.
    CreateFromPlan(PlanArgs),
    /// Link an existing task to a stored plan (both ways).
    Link(LinkArgs),
    /// List the tasks.
    List(ListArgs),
    /// Open tasks with no open blocker.
    Ready(BackendArgs),
    /// Mark a task done (or cancelled), which may make the tasks it blocks ready.
    Done(DoneArgs),
}

#[derive(Debug, Args)]
pub struct DoneArgs {
    /// The task's id in the backend, or a unique suffix of it (e.g. `-001`, or the end of a UUID).
    task: String,
    /// Cancel it instead: it no longer blocks anything either.
    #[arg(long)]
    cancel: bool,
    #[command(flatten)]
    backend: BackendArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// One JSON file per task in `.baton/tasks/`.
    File,
    /// Taskwarrior's `task` (TASKDATA and TASKRC are passed on).
    Taskwarrior,
}

/// The version of the `task … --json` documents that are not a task itself.
pub const TASK_OUTPUT_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Args)]
pub struct BackendArgs {
    /// The task system.
    #[arg(long, value_enum, default_value_t = Backend::File)]
    backend: Backend,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// A stored plan: full id, unique suffix, or `latest`.
    plan: String,
    #[command(flatten)]
    backend: BackendArgs,
}

#[derive(Debug, Args)]
pub struct LinkArgs {
    /// A stored plan: full id, unique suffix, or `latest`.
    plan: String,
    /// The task's id in the backend (T-… for files, a UUID for Taskwarrior).
    task: String,
    #[command(flatten)]
    backend: BackendArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only the tasks of this plan.
    #[arg(long, value_name = "ID")]
    plan: Option<String>,
    #[command(flatten)]
    backend: BackendArgs,
}

pub fn run(ctx: &Ctx, command: TaskCommand) -> CliResult {
    match command {
        TaskCommand::CreateFromPlan(a) => create(ctx, a),
        TaskCommand::Link(a) => link(ctx, a),
        TaskCommand::List(a) => list(ctx, a),
        TaskCommand::Ready(a) => ready(ctx, a),
        TaskCommand::Done(a) => done(ctx, a),
    }
}

fn store(ctx: &Ctx, backend: Backend) -> CliResult<Box<dyn TaskStore>> {
    match backend {
        Backend::File => Ok(Box::new(FileStore::new(ctx.state_dir()?))),
        Backend::Taskwarrior => Ok(Box::new(taskwarrior())),
    }
}

fn taskwarrior() -> Taskwarrior {
    // the library never reads the environment: hand Taskwarrior its own variables
    let env: Vec<(OsString, OsString)> = ["TASKDATA", "TASKRC"]
        .into_iter()
        .filter_map(|k| std::env::var_os(k).map(|v| (OsString::from(k), v)))
        .collect();
    Taskwarrior::new("task", env)
}

/// Every backend a plan may link tasks in, by name: the batch loop closes a batch's tasks
/// in them when it succeeds.
pub fn all_stores(state: &baton_store::StateDir) -> baton_run::batch_loop::TaskStores {
    let mut stores = baton_run::batch_loop::TaskStores::new();
    stores.insert("file".to_owned(), Box::new(FileStore::new(state.clone())));
    stores.insert("taskwarrior".to_owned(), Box::new(taskwarrior()));
    stores
}

/// Say which tasks a backend could not mark done (they are tried again on the next run).
pub fn warn_open(
    ctx: &Ctx,
    plan: &baton_plan::PlanId,
    outcomes: &[baton_run::batch_loop::TaskOutcome],
) {
    for o in outcomes {
        if let Some(e) = &o.error {
            ctx.warn(format!(
                "batch {}: task {} ({} backend) is not marked done: {e}; `baton run {plan} --resume` tries again",
                o.batch, o.task, o.backend
            ));
        }
    }
}

/// One aligned row per task; `open` holds the ids of open tasks, so only blockers still open
/// are named.
fn task_lines(ctx: &Ctx, tasks: &[&Task], open: &BTreeSet<&str>) -> Vec<String> {
    let mut table = Table::headless([
        Align::Left,
        Align::Left,
        Align::Left,
        Align::Left,
        Align::Left,
    ]);
    for t in tasks {
        let status = match t.status {
            baton_tasks::TaskStatus::Open => Cell::new("open", Paint::Yellow),
            baton_tasks::TaskStatus::Done => Cell::new("done", Paint::Green),
            baton_tasks::TaskStatus::Cancelled => Cell::new("cancelled", Paint::Dim),
        };
        let plan = t.plan.as_ref().map_or(String::new(), |p| {
            format!(
                "[{p}{}]",
                t.batch.as_ref().map_or(String::new(), |b| format!(" {b}"))
            )
        });
        let blockers: Vec<&str> = t
            .blocked_by
            .iter()
            .map(String::as_str)
            .filter(|b| open.contains(b))
            .collect();
        let blocked = if blockers.is_empty() {
            String::new()
        } else {
            format!("blocked by {}", blockers.join(", "))
        };
        table.row([
            Cell::plain(t.id.as_str()),
            status,
            Cell::plain(t.title.as_str()),
            Cell::plain(plan),
            Cell::plain(blocked),
        ]);
    }
    table.render(&ctx.style)
}

/// The ids of the open tasks among `tasks`.
fn open_ids(tasks: &[Task]) -> BTreeSet<&str> {
    tasks
        .iter()
        .filter(|t| t.status == baton_tasks::TaskStatus::Open)
        .map(|t| t.id.as_str())
        .collect()
}

/// The task a user named: its full id, or the only id that ends with what they typed.
fn resolve_task(tasks: &[Task], given: &str) -> CliResult<String> {
    if tasks.iter().any(|t| t.id == given) {
        return Ok(given.to_owned());
    }
    let matches: Vec<&str> = tasks
        .iter()
        .map(|t| t.id.as_str())
        .filter(|id| !given.is_empty() && id.ends_with(given))
        .collect();
    match matches.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => Err(CliError::input(format!(
            "no task {given:?}; `baton task list` shows the tasks"
        ))),
        many => Err(CliError::input(format!(
            "{given:?} matches {} tasks ({}); type more of the id",
            many.len(),
            many.join(", ")
        ))),
    }
}

fn create(ctx: &Ctx, a: PlanArgs) -> CliResult {
    let store = store(ctx, a.backend.backend)?;
    let state = ctx.state_dir()?;
    let id = plan_store::resolve_plan_id(&state, &a.plan)?;
    let plan = plan_store::load_stored(&state, &id)?;
    let outcome = create_from_plan(store.as_ref(), &state, &plan, SystemTime::now())?;
    if ctx.json {
        ctx.print_json(&CreateOutput {
            schema_version: TASK_OUTPUT_SCHEMA_VERSION,
            plan: &outcome.plan,
            backend: outcome.backend,
            created: &outcome.created,
            existing: &outcome.existing,
            links: &outcome.links,
        })?;
    } else {
        let all: Vec<Task> = outcome
            .created
            .iter()
            .chain(&outcome.existing)
            .cloned()
            .collect();
        let open = open_ids(&all);
        let created: Vec<&Task> = outcome.created.iter().collect();
        for line in task_lines(ctx, &created, &open) {
            ctx.say(line);
        }
        ctx.note(format!(
            "plan {}: {} created, {} already there ({} backend)",
            outcome.plan,
            crate::table::count(outcome.created.len(), "task", "tasks"),
            outcome.existing.len(),
            outcome.backend
        ));
    }
    Ok(exit::OK)
}

#[derive(Serialize)]
struct CreateOutput<'a> {
    schema_version: u32,
    plan: &'a baton_plan::PlanId,
    backend: &'static str,
    created: &'a [Task],
    existing: &'a [Task],
    links: &'a [baton_plan::model::TaskLink],
}

#[derive(Serialize)]
struct LinkOutput<'a> {
    schema_version: u32,
    plan: &'a baton_plan::PlanId,
    backend: &'static str,
    task: &'a Task,
    links: &'a [baton_plan::model::TaskLink],
}

fn link(ctx: &Ctx, a: LinkArgs) -> CliResult {
    let store = store(ctx, a.backend.backend)?;
    let state = ctx.state_dir()?;
    let id = plan_store::resolve_plan_id(&state, &a.plan)?;
    let (task, links) = link_task(store.as_ref(), &state, &id, &a.task)?;
    if ctx.json {
        ctx.print_json(&LinkOutput {
            schema_version: TASK_OUTPUT_SCHEMA_VERSION,
            plan: &id,
            backend: store.backend(),
            task: &task,
            links: &links,
        })?;
    } else {
        ctx.say(format!("linked {} and plan {id}", task.id));
    }
    Ok(exit::OK)
}

#[derive(Serialize)]
struct ListOutput<'a> {
    schema_version: u32,
    backend: &'static str,
    tasks: Vec<&'a Task>,
}

fn print_tasks(
    ctx: &Ctx,
    backend: &'static str,
    tasks: Vec<&Task>,
    open: &BTreeSet<&str>,
) -> CliResult<()> {
    if ctx.json {
        return ctx.print_json(&ListOutput {
            schema_version: TASK_OUTPUT_SCHEMA_VERSION,
            backend,
            tasks,
        });
    }
    if tasks.is_empty() {
        ctx.note("no tasks");
    }
    for line in task_lines(ctx, &tasks, open) {
        ctx.say(line);
    }
    Ok(())
}

fn list(ctx: &Ctx, a: ListArgs) -> CliResult {
    let store = store(ctx, a.backend.backend)?;
    let plan = match &a.plan {
        Some(p) => Some(plan_store::resolve_plan_id(&ctx.state_dir()?, p)?),
        None => None,
    };
    let tasks = store.list()?;
    let shown = tasks
        .iter()
        .filter(|t| plan.is_none() || t.plan == plan)
        .collect();
    print_tasks(ctx, store.backend(), shown, &open_ids(&tasks))?;
    Ok(exit::OK)
}

fn ready(ctx: &Ctx, a: BackendArgs) -> CliResult {
    let store = store(ctx, a.backend)?;
    let tasks = store.list()?;
    print_tasks(
        ctx,
        store.backend(),
        baton_tasks::ready(&tasks),
        &open_ids(&tasks),
    )?;
    Ok(exit::OK)
}

fn done(ctx: &Ctx, a: DoneArgs) -> CliResult {
    let store = store(ctx, a.backend.backend)?;
    let status = if a.cancel {
        baton_tasks::TaskStatus::Cancelled
    } else {
        baton_tasks::TaskStatus::Done
    };
    let tasks = store.list()?;
    let id = resolve_task(&tasks, &a.task)?;
    let task = store.set_status(&id, status)?;
    if ctx.json {
        ctx.print_json(&task)?;
    } else {
        let mut open = open_ids(&tasks);
        open.remove(task.id.as_str());
        for line in task_lines(ctx, &[&task], &open) {
            ctx.say(line);
        }
    }
    Ok(exit::OK)
}
