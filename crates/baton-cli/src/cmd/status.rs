//! `baton status [PLAN]`: the progress tree of an execution.

use baton_plan::store as plan_store;
use std::io::Write;

use baton_plan::{Execution, Plan, PlanId, Status};
use baton_report::exit;
use clap::Args;
use std::time::Duration;

use crate::ctx::Ctx;
use crate::error::{CliError, CliResult};
use crate::table::{Align, Cell, Paint, Table, count};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// A plan id, a unique suffix of one, or `latest` (default: the newest plan).
    plan: Option<String>,
    /// If the execution file is damaged, copy it to a `.bak-N` file beside it and start the
    /// execution over (all pending). Does nothing to a file that reads fine.
    #[arg(long)]
    repair: bool,
    /// Show the progress again at every change until the execution ends (with --json, one
    /// JSON document per line).
    #[arg(long)]
    watch: bool,
}

/// The version of `status --json` (an object: `plan_id`, `title`, `execution`; all null when no
/// plan is stored).
pub const STATUS_SCHEMA_VERSION: u32 = 1;

pub fn run(ctx: &Ctx, args: StatusArgs) -> CliResult {
    let dir = ctx.state_dir()?;
    let given = args.plan.as_deref().unwrap_or("latest");
    if args.plan.is_none() && plan_store::list_ids(&dir)?.is_empty() {
        if ctx.json {
            ctx.print_json(&serde_json::json!({
                "schema_version": STATUS_SCHEMA_VERSION,
                "plan_id": null,
                "title": null,
                "execution": null,
            }))?;
        } else {
            ctx.say("no plans stored yet; nothing has run");
        }
        return Ok(exit::OK);
    }
    let id = plan_store::resolve_plan_id(&dir, given)?;
    let plan = plan_store::load_stored(&dir, &id)?;
    let path = dir.execution(id.as_str());
    if args.watch {
        return watch(ctx, &dir, &id, &plan);
    }
    let execution: Option<Execution> = if path.exists() {
        match baton_store::read_versioned(&path) {
            Ok(e) => Some(e),
            Err(e) if e.is_bad_content() && args.repair => {
                let _guard = baton_store::lock_exclusive(&path)?;
                let backup = baton_store::backup(&path)?;
                let fresh = Execution::new(
                    id.clone(),
                    &plan,
                    &baton_plan::ids::rfc3339_now(std::time::SystemTime::now()),
                );
                baton_store::write_json(&path, &fresh)?;
                ctx.warn(format!(
                    "{e}\nrepaired: the damaged file is kept as {}; the execution starts over",
                    backup.display()
                ));
                Some(fresh)
            }
            Err(e) if e.is_bad_content() => {
                return Err(CliError::input(format!(
                    "{e}; `baton status {id} --repair` backs it up and starts the execution over"
                )));
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        None
    };
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "schema_version": STATUS_SCHEMA_VERSION,
            "plan_id": id,
            "title": plan.title,
            "execution": execution,
        }))?;
        return Ok(exit::OK);
    }
    render(ctx, &id, &plan, execution.as_ref());
    Ok(exit::OK)
}

/// Print the progress at every change of the execution file, until the execution ends.
fn watch(ctx: &Ctx, dir: &baton_store::StateDir, id: &PlanId, plan: &Plan) -> CliResult {
    let exec_dir = dir.executions_dir();
    baton_store::create_dir_all(&exec_dir)?;
    let watcher = baton_run::follow::DirWatch::new(&exec_dir)
        .map_err(|e| CliError::env(format!("cannot watch {}: {e}", exec_dir.display())))?;
    let path = dir.execution(id.as_str());
    let mut last = None;
    loop {
        let exec: Option<Execution> = if path.exists() {
            Some(baton_store::read_versioned(&path)?)
        } else {
            None
        };
        let revision = exec.as_ref().map(|e| e.revision);
        if revision != last {
            last = revision;
            if ctx.json {
                let line = serde_json::json!({ "schema_version": STATUS_SCHEMA_VERSION, "plan_id": id, "title": plan.title, "execution": exec });
                let _ = writeln!(std::io::stdout().lock(), "{line}");
            } else {
                ctx.say("");
                render(ctx, id, plan, exec.as_ref());
            }
            if exec.as_ref().is_some_and(|e| e.status.is_finished()) {
                return Ok(exit::OK);
            }
        }
        watcher
            .wait()
            .map_err(|e| CliError::env(format!("cannot watch {}: {e}", exec_dir.display())))?;
    }
}

fn render(ctx: &Ctx, id: &PlanId, plan: &Plan, execution: Option<&Execution>) {
    let s = &ctx.style;
    let paint = |status: Status| -> Cell {
        let text = status.as_str();
        let colour = match status {
            Status::Succeeded => Paint::Green,
            Status::Failed => Paint::Red,
            Status::Running => Paint::Cyan,
            Status::Skipped | Status::Cancelled => Paint::Yellow,
            Status::Pending => Paint::Dim,
        };
        Cell::new(text, colour)
    };
    let mut table = Table::headless([Align::Left, Align::Left, Align::Left]).indent("  ");
    let Some(exec) = execution else {
        ctx.say(format!(
            "{} {} — not run yet",
            s.bold(id.as_str()),
            plan.title
        ));
        for b in &plan.batches {
            table.row([
                Cell::new(b.id.as_str(), Paint::Bold),
                paint(Status::Pending),
            ]);
        }
        for line in table.render(s) {
            ctx.say(line);
        }
        return;
    };
    let counts = exec.agent_counts();
    let total: usize = counts.values().sum();
    let done = counts
        .iter()
        .filter(|(st, _)| st.is_finished())
        .map(|(_, n)| n)
        .sum::<usize>();
    let driver = match exec.runner {
        _ if exec.status.is_finished() => String::new(),
        Some(r) if baton_run::procfs::is_alive(&r) => format!(", baton run pid {}", r.pid),
        _ if exec.status == Status::Running => format!(
            "; {}: no runner — `baton run {id} --resume` continues",
            s.yellow("interrupted")
        ),
        _ => String::new(),
    };
    ctx.say(format!(
        "{} {} — {} ({done} of {} finished, revision {}{driver})",
        s.bold(id.as_str()),
        plan.title,
        paint(exec.status).paint.apply(s, exec.status.as_str()),
        count(total, "agent", "agents"),
        exec.revision
    ));
    for b in &exec.batches {
        table.row([Cell::new(b.id.as_str(), Paint::Bold), paint(b.status)]);
        for a in &b.agents {
            let mut detail = Vec::new();
            if a.attempt > 1 {
                detail.push(format!("attempt {}", a.attempt));
            }
            if let Some(r) = &a.result {
                detail.push(
                    humantime::format_duration(Duration::from_millis(r.duration_ms)).to_string(),
                );
                if let Some(code) = r.exit_code {
                    detail.push(format!("exit {code}"));
                }
                if let Some(class) = r.error_class {
                    detail.push(
                        serde_json::to_value(class)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                    );
                }
                if !r.files_changed.is_empty() {
                    detail.push(format!(
                        "{} changed",
                        count(r.files_changed.len(), "file", "files")
                    ));
                }
                if let Some(left) = &r.leftovers {
                    let n = left.swept.max(left.killed_after_grace) as usize + left.survived.len();
                    detail.push(format!("left {} behind", count(n, "process", "processes")));
                }
            }
            if let Some(at) = &a.retry_at
                && a.status == Status::Failed
            {
                detail.push(format!("retry at {}", local_clock(at)));
            }
            if let Some(class) = a.stopping {
                detail.push(format!("stopping ({})", class_name(class)));
            }
            table.row([
                Cell::plain(format!("  {}", a.id)),
                paint(a.status),
                Cell::plain(detail.join(", ")),
            ]);
        }
    }
    for line in table.render(s) {
        ctx.say(line);
    }
    if !exec.replans.is_empty() {
        ctx.say(format!("  replans: {}", exec.replans.len()));
    }
    if let Some(open) = exec.breaker.as_ref().and_then(|b| b.open.as_ref()) {
        ctx.say(format!(
            "  launching stopped: {} agents failed with {}{}",
            open.agents.len(),
            class_name(open.class),
            match &open.until {
                Some(t) => format!(", paused until {}", local_clock(t)),
                None => format!("; fix it, then `baton run {id} --resume`"),
            }
        ));
    }
}

fn class_name(class: baton_plan::ErrorClass) -> String {
    serde_json::to_value(class)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `HH:MM:SS` (UTC) of an RFC 3339 time, or the text as it is.
fn local_clock(t: &str) -> String {
    match t.get(11..19) {
        Some(hms) if t.len() > 19 => format!("{hms} UTC"),
        _ => t.to_owned(),
    }
}
