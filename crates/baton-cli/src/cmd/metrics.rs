//! `baton metrics record|summary|failures`: the metrics log in `.baton/metrics.jsonl`.

use std::time::{Duration, SystemTime};

use baton_metrics::log::AppendError;
use baton_metrics::report::{BatchStats, Rate};
use baton_metrics::{Event, Failures, Filter, MetricsLog, Summary};
use baton_plan::PlanId;
use baton_report::exit;
use clap::{Args, Subcommand};

use crate::ctx::Ctx;
use crate::error::{CliError, CliResult};

#[derive(Debug, Subcommand)]
pub enum MetricsCommand {
    /// Append one event to the metrics log (for scripts and agents).
    Record(RecordArgs),
    /// Counts, success rates, p50/p95 durations, gate pass rate, replans, speed-up per batch.
    Summary(FilterArgs),
    /// Failures grouped by error class and task type, with example plans.
    Failures(FilterArgs),
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Event type: run_start, run_complete, batch_start, batch_complete, agent_start,
    /// agent_complete, agent_leak, verification, replan, worktree, cache, task.
    #[arg(long, value_name = "TYPE")]
    event: String,
    /// The plan the event belongs to (a plan id).
    #[arg(long, value_name = "ID")]
    plan: Option<String>,
    /// The batch the event belongs to (a batch id such as B1).
    #[arg(long, value_name = "ID")]
    batch: Option<String>,
    /// The agent the event is about (an agent id).
    #[arg(long, value_name = "ID")]
    agent: Option<String>,
    /// research, implement, test or verify.
    #[arg(long, value_name = "T")]
    task_type: Option<String>,
    /// How long the work took, in milliseconds.
    #[arg(long, value_name = "N")]
    duration_ms: Option<u64>,
    /// Whether it succeeded: true or false.
    #[arg(long, value_name = "BOOL", value_parser = clap::value_parser!(bool))]
    success: Option<bool>,
    /// Why it failed, e.g. timeout, exit_nonzero, gate_failed.
    #[arg(long, value_name = "C")]
    error_class: Option<String>,
    /// Extra KEY=VALUE pairs (repeatable).
    #[arg(long = "detail", value_name = "KEY=VALUE")]
    details: Vec<String>,
}

#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Only events of this plan (a full id, or a unique suffix of a stored plan's id, or `latest`).
    #[arg(long, value_name = "ID")]
    plan: Option<String>,
    /// Only events at or after TIME: RFC 3339 (2026-01-01T00:00:00Z), a date (2026-01-01, UTC),
    /// or an age such as 24h or 7d.
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
}

pub fn run(ctx: &Ctx, command: MetricsCommand) -> CliResult {
    match command {
        MetricsCommand::Record(a) => record(ctx, a),
        MetricsCommand::Summary(a) => summary(ctx, a),
        MetricsCommand::Failures(a) => failures(ctx, a),
    }
}

fn append_error(e: AppendError) -> CliError {
    match e {
        AppendError::Invalid(e) => CliError::input(e.to_string()),
        AppendError::Log(e) => metrics_error(e),
    }
}

fn metrics_error(e: baton_metrics::MetricsError) -> CliError {
    match e {
        baton_metrics::MetricsError::Store(s) => s.into(),
        other => CliError::env(other.to_string()),
    }
}

fn record(ctx: &Ctx, a: RecordArgs) -> CliResult {
    let now = SystemTime::now();
    let mut event = Event::new(a.event, now).map_err(metrics_error)?;
    event.plan = a.plan;
    event.batch = a.batch;
    event.agent = a.agent;
    event.task_type = a.task_type;
    event.duration_ms = a.duration_ms;
    event.success = a.success;
    event.error_class = a.error_class;
    for d in &a.details {
        let (k, v) = baton_metrics::event::parse_detail(d)
            .map_err(|e| CliError::input(format!("--detail: {e}")))?;
        if event.details.insert(k.clone(), v).is_some() {
            return Err(CliError::input(format!(
                "--detail {k} is given twice; give each key once"
            )));
        }
    }
    // check everything before touching the state directory: bad input writes nothing
    event
        .validate()
        .map_err(|e| CliError::input(e.to_string()))?;
    let log = MetricsLog::new(ctx.state_dir_for_writing()?.metrics());
    log.append(std::slice::from_ref(&event))
        .map_err(append_error)?;
    if ctx.json {
        ctx.print_json(&event)?;
    } else {
        ctx.say(&event.event_id);
    }
    Ok(exit::OK)
}

/// `--since`: RFC 3339, a UTC date, or an age before `now`.
fn parse_since(s: &str, now: SystemTime) -> CliResult<SystemTime> {
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return Ok(t);
    }
    if s.len() == 10
        && let Ok(t) = humantime::parse_rfc3339(&format!("{s}T00:00:00Z"))
    {
        return Ok(t);
    }
    if let Ok(d) = humantime::parse_duration(s) {
        // An age reaching back before 1970 means "everything": clamp to the epoch, which is
        // also the earliest time the summaries can print (21000d used to panic there).
        return Ok(now
            .checked_sub(d)
            .filter(|t| *t >= SystemTime::UNIX_EPOCH)
            .unwrap_or(SystemTime::UNIX_EPOCH));
    }
    Err(CliError::input(format!(
        "--since {s:?}: use RFC 3339 (2026-01-01T00:00:00Z), a date (2026-01-01) or an age (24h, 7d)"
    )))
}

fn filter(ctx: &Ctx, a: &FilterArgs) -> CliResult<Filter> {
    let plan = match &a.plan {
        None => None,
        // a full id is taken as it is: metrics outlive stored plans
        Some(p) if PlanId::new(p.as_str()).is_ok() => Some(p.clone()),
        Some(p) => {
            let dir = ctx.state_dir()?;
            Some(baton_plan::store::resolve_plan_id(&dir, p)?.to_string())
        }
    };
    let since = a
        .since
        .as_deref()
        .map(|s| parse_since(s, SystemTime::now()))
        .transpose()?;
    Ok(Filter { plan, since })
}

fn warn_bad_lines(ctx: &Ctx, log: &MetricsLog, bad: u64, first: &[u64]) {
    if bad > 0 {
        let lines: Vec<String> = first.iter().map(u64::to_string).collect();
        let which = if lines.is_empty() {
            String::new()
        } else {
            format!(" (first: line {})", lines.join(", "))
        };
        ctx.warn(format!(
            "{}: skipped {} that {} not parse{which}",
            log.path().display(),
            crate::table::count(bad as usize, "line", "lines"),
            if bad == 1 { "does" } else { "do" }
        ));
    }
}

fn pct(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

fn ms(v: Option<u64>) -> String {
    v.map_or_else(
        || "-".to_owned(),
        |v| humantime::format_duration(Duration::from_millis(v)).to_string(),
    )
}

fn rate_line(r: &Rate) -> String {
    if r.succeeded + r.failed == 0 {
        String::new()
    } else {
        format!(
            "success {} ({}/{})",
            pct(r.success_rate),
            r.succeeded,
            r.succeeded + r.failed
        )
    }
}

fn summary(ctx: &Ctx, a: FilterArgs) -> CliResult {
    let filter = filter(ctx, &a)?;
    let log = MetricsLog::new(ctx.state_dir()?.metrics());
    let s = log.summary(&filter).map_err(metrics_error)?;
    warn_bad_lines(ctx, &log, s.bad_lines, &s.first_bad_lines);
    if ctx.json {
        ctx.print_json(&s)?;
    } else {
        print_summary(ctx, &s);
    }
    Ok(exit::OK)
}

fn print_summary(ctx: &Ctx, s: &Summary) {
    let st = &ctx.style;
    let span = match (&s.first_time, &s.last_time) {
        (Some(a), Some(b)) => format!(" from {a} to {b}"),
        _ => String::new(),
    };
    ctx.say(format!("{} {} events{span}", st.bold("metrics:"), s.events));
    if s.events == 0 {
        return;
    }
    ctx.say(st.bold("events"));
    for (name, r) in &s.by_event {
        ctx.say(format!("  {name:<16} {:>8}  {}", r.count, rate_line(r)));
    }
    if !s.task_types.is_empty() {
        ctx.say(format!(
            "{}  {:>8} {:>9} {:>10} {:>10}",
            st.bold("task types      "),
            "agents",
            "success",
            "p50",
            "p95"
        ));
        for (name, t) in &s.task_types {
            ctx.say(format!(
                "  {name:<16} {:>8} {:>9} {:>10} {:>10}",
                t.count,
                pct(t.success_rate),
                ms(t.p50_ms),
                ms(t.p95_ms)
            ));
        }
    }
    let gate = if s.gate.count == 0 {
        "no verification events".to_owned()
    } else {
        format!(
            "{} of {} passed ({})",
            s.gate.succeeded,
            s.gate.succeeded + s.gate.failed,
            pct(s.gate.success_rate)
        )
    };
    ctx.say(format!("{} {gate}", st.bold("gate:")));
    ctx.say(format!("{} {}", st.bold("replans:"), s.replans));
    let sp = &s.speedup;
    match (sp.mean, sp.min, sp.max) {
        (Some(mean), Some(min), Some(max)) => ctx.say(format!(
            "{} {}, mean {mean:.2}x (min {min:.2}x, max {max:.2}x)",
            st.bold("speed-up:"),
            crate::table::count(sp.batches as usize, "batch", "batches")
        )),
        _ => ctx.say(format!(
            "{} no batch with agent and wall time",
            st.bold("speed-up:")
        )),
    }
    // one line per batch when there are few (a plan's worth); --json always has them all
    if s.batches.len() <= 20 {
        for b in &s.batches {
            ctx.say(format!("  {}", batch_line(b)));
        }
    }
}

fn batch_line(b: &BatchStats) -> String {
    let speed = b
        .speedup
        .map_or_else(|| "-".to_owned(), |x| format!("{x:.2}x"));
    format!(
        "{} {}: {}, {} agent time / {} wall = {speed}",
        b.plan,
        b.batch,
        crate::table::count(b.agents as usize, "agent", "agents"),
        ms(Some(b.agent_ms)),
        ms(b.wall_ms)
    )
}

fn failures(ctx: &Ctx, a: FilterArgs) -> CliResult {
    let filter = filter(ctx, &a)?;
    let log = MetricsLog::new(ctx.state_dir()?.metrics());
    let f: Failures = log.failures(&filter).map_err(metrics_error)?;
    warn_bad_lines(ctx, &log, f.bad_lines, &[]);
    if ctx.json {
        ctx.print_json(&f)?;
        return Ok(exit::OK);
    }
    ctx.say(format!(
        "{} {} of {} events failed",
        ctx.style.bold("failures:"),
        f.failures,
        f.events
    ));
    for g in &f.groups {
        let examples = if g.example_plans.is_empty() {
            String::new()
        } else {
            format!("  e.g. {}", g.example_plans.join(", "))
        };
        ctx.say(format!(
            "  {:>6}  {:<16} {:<10} last {}{examples}",
            g.count, g.error_class, g.task_type, g.last_time
        ));
    }
    Ok(exit::OK)
}
