//! What `baton run` shows: one JSON event per line (`--json`), timestamped lines when stdout
//! is not a terminal, and a live view per agent on a terminal (indicatif): state, attempt,
//! elapsed, last line of output. Every event also becomes a metrics event.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use baton_metrics::{Event, MetricsAppender, MetricsLog};
use baton_plan::{AgentId, ErrorClass, Plan, Status};
use baton_run::RunEvent;
use baton_run::sched::Wait;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::ctx::Ctx;

fn class_name(c: ErrorClass) -> String {
    serde_json::to_value(c)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

pub struct Output<'a> {
    ctx: &'a Ctx,
    task_types: BTreeMap<AgentId, &'static str>,
    metrics: MetricsLog,
    /// The log held open after the first event (a run appends one at every step).
    appender: Option<MetricsAppender>,
    metrics_failed: bool,
    plan: String,
    live: Option<Live>,
}

/// The terminal view: a spinner line per running agent (batch/agent, attempt, elapsed, last
/// line of its output), redrawn by a ticker thread; event lines print above it.
struct Live {
    multi: MultiProgress,
    bars: Arc<Mutex<BTreeMap<AgentId, (ProgressBar, PathBuf)>>>,
    stop: Arc<AtomicBool>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

impl Live {
    fn new() -> Self {
        let bars: Arc<Mutex<BTreeMap<AgentId, (ProgressBar, PathBuf)>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let (bars, stop) = (bars.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(bars) = bars.lock() {
                        for (bar, log) in bars.values() {
                            if let Some(last) = baton_run::attempt::last_line(log) {
                                bar.set_message(last);
                            }
                        }
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
            })
        };
        Live {
            multi: MultiProgress::new(),
            bars,
            stop,
            ticker: Some(ticker),
        }
    }
}

impl<'a> Output<'a> {
    pub fn new(ctx: &'a Ctx, plan: &Plan, metrics: MetricsLog) -> Self {
        let live = (!ctx.json && !ctx.quiet && std::io::stderr().is_terminal()).then(Live::new);
        Output {
            ctx,
            task_types: plan
                .agents()
                .map(|(_, a)| (a.id.clone(), a.task_type.as_str()))
                .collect(),
            metrics,
            appender: None,
            metrics_failed: false,
            plan: plan.id.as_ref().map(|i| i.to_string()).unwrap_or_default(),
            live,
        }
    }

    pub fn event(&mut self, e: &RunEvent) {
        self.record_metric(e);
        if self.ctx.json {
            if let Ok(line) = serde_json::to_string(e) {
                let _ = writeln!(std::io::stdout().lock(), "{line}");
            }
            return;
        }
        self.update_live(e);
        if let Some(text) = self.line(e) {
            let stamp = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
            let line = format!("{} {text}", self.ctx.style.dim(&stamp[11..19]));
            match &self.live {
                Some(l) => {
                    let _ = l.multi.println(line);
                }
                None => self.ctx.say(line),
            }
        }
    }

    pub fn finish(&mut self) {
        if let Some(mut l) = self.live.take() {
            l.stop.store(true, Ordering::Relaxed);
            if let Some(t) = l.ticker.take() {
                let _ = t.join();
            }
            if let Ok(bars) = l.bars.lock() {
                for (bar, _) in bars.values() {
                    bar.finish_and_clear();
                }
            }
            let _ = l.multi.clear();
        }
    }

    /// The live rows: one per agent that runs or waits to run again, saying its state.
    fn update_live(&mut self, e: &RunEvent) {
        let Some(live) = &mut self.live else {
            return;
        };
        let Ok(mut bars) = live.bars.lock() else {
            return;
        };
        match e {
            RunEvent::AgentStart {
                batch,
                agent,
                attempt,
                log,
                ..
            } => Self::put_row(
                live,
                &mut bars,
                agent,
                format!("{batch}/{agent} #{attempt} running"),
                log.clone(),
            ),
            // a resumed run shows the attempts it watches again
            RunEvent::AgentAdopted {
                batch,
                agent,
                attempt,
                log,
            } => Self::put_row(
                live,
                &mut bars,
                agent,
                format!("{batch}/{agent} #{attempt} running (adopted)"),
                log.clone(),
            ),
            RunEvent::AgentKill { agent, reason, .. } => {
                if let Some((bar, _)) = bars.get(agent) {
                    bar.set_prefix(format!("{} (stopping: {reason})", bar.prefix()));
                }
            }
            // a retry follows: the row stays, saying when (with the failed attempt's last line)
            RunEvent::AgentFinish {
                batch,
                agent,
                attempt,
                retry_in_ms: Some(ms),
                ..
            } => {
                if let Some((bar, _)) = bars.get(agent) {
                    bar.set_prefix(format!(
                        "{batch}/{agent} #{attempt} failed, retry in {:.1}s",
                        *ms as f64 / 1000.0
                    ));
                    bar.reset_elapsed();
                }
            }
            RunEvent::AgentFinish { agent, .. } => {
                if let Some((bar, _)) = bars.remove(agent) {
                    bar.finish_and_clear();
                    live.multi.remove(&bar);
                }
            }
            _ => {}
        }
    }

    /// Show `agent`'s row (replacing the one it had): `prefix` says who and in what state,
    /// then the time since, then the last line of `log`.
    fn put_row(
        live: &Live,
        bars: &mut BTreeMap<AgentId, (ProgressBar, PathBuf)>,
        agent: &AgentId,
        prefix: String,
        log: PathBuf,
    ) {
        if let Some((old, _)) = bars.remove(agent) {
            old.finish_and_clear();
            live.multi.remove(&old);
        }
        let bar = live.multi.add(ProgressBar::new_spinner());
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} {prefix} {elapsed:>4} {wide_msg}")
        {
            bar.set_style(style);
        }
        bar.set_prefix(prefix);
        bar.enable_steady_tick(Duration::from_millis(200));
        bars.insert(agent.clone(), (bar, log));
    }

    fn line(&self, e: &RunEvent) -> Option<String> {
        let s = &self.ctx.style;
        Some(match e {
            RunEvent::RunStart { resumed: true, .. } => "resumed".to_owned(),
            RunEvent::RunStart { .. } => return None,
            RunEvent::BatchStart { batch } => format!("{} started", s.bold(batch.as_str())),
            RunEvent::AgentStart {
                agent,
                attempt,
                log,
                ..
            } => format!("{agent} started (attempt {attempt}), log {}", log.display()),
            RunEvent::AgentAdopted { agent, attempt, .. } => {
                format!("{agent} still running (attempt {attempt}): adopted")
            }
            RunEvent::CacheHit { agent, attempt, .. } => format!(
                "{agent} {} (attempt {attempt}): an identical earlier success is reused, not run",
                s.green("[cache hit]")
            ),
            RunEvent::AgentWaiting { wait } => match wait {
                Wait::Scope { agent, with } => format!(
                    "{agent} waits for {with}: their write scopes overlap, so they run one after the other"
                ),
                Wait::Backoff { agent, .. } => format!("{agent} waits to retry"),
                Wait::Slots { .. } => return None,
                Wait::Busy { agent, why } => format!("{agent} waiting for resources: {why}"),
                Wait::Stopped { agent, why } => format!("{agent} not started: {why}"),
            },
            RunEvent::AgentKill { agent, reason, .. } => {
                format!("{} {agent}: {reason}", s.yellow("stopping"))
            }
            RunEvent::AgentFinish {
                agent,
                attempt,
                status,
                error_class,
                exit_code,
                duration_ms,
                retry_in_ms,
                detail,
                ..
            } => {
                let mut line = format!(
                    "{agent} {} (attempt {attempt}, {:.1}s",
                    paint(self.ctx, *status),
                    *duration_ms as f64 / 1000.0
                );
                if let Some(c) = exit_code.filter(|c| *c != 0) {
                    line.push_str(&format!(", exit {c}"));
                }
                if let Some(c) = error_class {
                    line.push_str(&format!(", {}", class_name(*c)));
                }
                line.push(')');
                if let Some(d) = detail {
                    line.push_str(&format!(": {d}"));
                }
                if let Some(ms) = retry_in_ms {
                    line.push_str(&format!("; retry in {:.1}s", *ms as f64 / 1000.0));
                }
                line
            }
            RunEvent::Leak {
                agent,
                attempt,
                swept,
                killed_after_grace,
                pids,
                ..
            } => {
                let mut what = Vec::new();
                if *swept > 0 {
                    what.push(format!("{swept} still running when it exited (stopped)"));
                }
                if *killed_after_grace > 0 {
                    what.push(format!(
                        "{killed_after_grace} ignored SIGTERM (killed with SIGKILL after the grace period)"
                    ));
                }
                if !pids.is_empty() {
                    what.push(format!("{pids:?} alive after SIGKILL"));
                }
                format!(
                    "{} {agent} (attempt {attempt}) left processes behind: {}",
                    s.red("leak:"),
                    what.join("; ")
                )
            }
            RunEvent::Warning { agent, message } => {
                format!("{} {agent}: {message}", s.yellow("warning:"))
            }
            RunEvent::BreakerOpen { hint, .. } => format!("{} {hint}", s.red("breaker open:")),
            RunEvent::GateFailed {
                batch,
                findings,
                rerun,
            } => format!(
                "{} gate failed: {findings}{}",
                batch,
                if rerun.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; running again: {}",
                        rerun
                            .iter()
                            .map(|a| a.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            ),
            RunEvent::BatchFinish { batch, status, .. } => {
                format!("{} {}", s.bold(batch.as_str()), paint(self.ctx, *status))
            }
            RunEvent::Stopping { running } => format!(
                "stopping: no new agent starts; waiting for {running} running agent(s) (Ctrl-C again stops them)"
            ),
            RunEvent::Killing { running } => format!("stopping {running} running agent(s)"),
            RunEvent::RunFinish {
                status,
                interrupted,
                duration_ms,
            } => format!(
                "run {} in {:.1}s",
                if *interrupted {
                    s.yellow("interrupted")
                } else {
                    paint(self.ctx, *status)
                },
                *duration_ms as f64 / 1000.0
            ),
        })
    }

    fn record_metric(&mut self, e: &RunEvent) {
        if self.metrics_failed {
            return;
        }
        let made = match e {
            RunEvent::RunStart { plan, .. } => {
                self.plan = plan.to_string();
                metric("run_start", |_| {})
            }
            RunEvent::BatchStart { batch } => {
                metric("batch_start", |m| m.batch = Some(batch.to_string()))
            }
            RunEvent::AgentStart {
                batch,
                agent,
                attempt,
                ..
            } => metric("agent_start", |m| {
                m.batch = Some(batch.to_string());
                m.agent = Some(agent.to_string());
                m.details.insert("attempt".into(), attempt.to_string());
            }),
            RunEvent::AgentFinish {
                batch,
                agent,
                attempt,
                status,
                error_class,
                duration_ms,
                ..
            } => metric("agent_complete", |m| {
                m.batch = Some(batch.to_string());
                m.agent = Some(agent.to_string());
                m.duration_ms = Some(*duration_ms);
                m.success = Some(*status == Status::Succeeded);
                m.error_class = error_class.map(class_name);
                m.details.insert("attempt".into(), attempt.to_string());
            }),
            RunEvent::Leak {
                batch,
                agent,
                attempt,
                swept,
                killed_after_grace,
                pids,
            } => metric("agent_leak", |m| {
                m.batch = Some(batch.to_string());
                m.agent = Some(agent.to_string());
                m.success = Some(pids.is_empty());
                m.details.insert("attempt".into(), attempt.to_string());
                m.details.insert("swept".into(), swept.to_string());
                m.details
                    .insert("killed_after_grace".into(), killed_after_grace.to_string());
                m.details.insert("survived".into(), pids.len().to_string());
            }),
            RunEvent::BatchFinish {
                batch,
                status,
                duration_ms,
            } => metric("batch_complete", |m| {
                m.batch = Some(batch.to_string());
                m.duration_ms = Some(*duration_ms);
                m.success = Some(*status == Status::Succeeded);
                m.details.insert("status".into(), status.as_str().into());
            }),
            RunEvent::RunFinish {
                status,
                interrupted,
                duration_ms,
            } => metric("run_complete", |m| {
                m.duration_ms = Some(*duration_ms);
                m.success = Some(*status == Status::Succeeded);
                m.details
                    .insert("interrupted".into(), interrupted.to_string());
            }),
            _ => None,
        };
        let Some(mut m) = made else {
            return;
        };
        if !self.plan.is_empty() {
            m.plan = Some(self.plan.clone());
        }
        if let Some(a) = &m.agent
            && let Ok(id) = AgentId::new(a.clone())
            && let Some(t) = self.task_types.get(&id)
        {
            m.task_type = Some((*t).to_owned());
        }
        let appended = match &mut self.appender {
            Some(a) => a.append(&[m]).map_err(|e| e.to_string()),
            None => match self.metrics.appender() {
                Ok(mut a) => {
                    let r = a.append(&[m]).map_err(|e| e.to_string());
                    self.appender = Some(a);
                    r
                }
                Err(e) => Err(e.to_string()),
            },
        };
        if let Err(err) = appended {
            self.metrics_failed = true;
            self.ctx
                .warn(format!("metrics are not recorded for this run: {err}"));
        }
    }
}

fn metric(name: &str, fill: impl FnOnce(&mut Event)) -> Option<Event> {
    let mut e = Event::new(name, SystemTime::now()).ok()?;
    fill(&mut e);
    Some(e)
}

fn paint(ctx: &Ctx, status: Status) -> String {
    let s = &ctx.style;
    let text = status.as_str();
    match status {
        Status::Succeeded => s.green(text),
        Status::Failed => s.red(text),
        Status::Running => s.cyan(text),
        Status::Skipped | Status::Cancelled => s.yellow(text),
        Status::Pending => s.dim(text),
    }
}
