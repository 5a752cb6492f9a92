//! The picture of a run: batches and agents as bars on a time axis — every attempt (from the
//! metrics log's `agent_start`/`agent_complete` events, else the execution's last attempt),
//! cache hits, the gate verdicts of each batch with their findings, replans — built as plain
//! data from the execution and the metrics, plus its Chrome trace (Perfetto) form. The HTML
//! page is rendered by the CLI from [`Timeline`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use baton_metrics::Event;
use baton_plan::{Execution, Plan};
use serde::Serialize;

/// Milliseconds since the Unix epoch of an RFC 3339 time; `None` when it does not parse.
pub fn epoch_ms(rfc3339: &str) -> Option<u64> {
    let t = humantime::parse_rfc3339_weak(rfc3339.trim_end_matches('Z')).ok()?;
    u64::try_from(t.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    pub plan: String,
    pub title: String,
    pub status: String,
    /// The time axis, ms since the epoch.
    pub start_ms: u64,
    pub end_ms: u64,
    pub batches: Vec<BatchRow>,
    pub replans: Vec<Mark>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchRow {
    pub id: String,
    pub status: String,
    pub start_ms: Option<u64>,
    pub end_ms: Option<u64>,
    pub agents: Vec<AgentRow>,
    pub gates: Vec<GateMark>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentRow {
    pub id: String,
    pub status: String,
    pub attempts: Vec<AttemptBar>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptBar {
    pub attempt: u32,
    pub start_ms: u64,
    pub end_ms: u64,
    /// `None` while it runs.
    pub ok: Option<bool>,
    pub cache_hit: bool,
    /// The attempt's log, relative to the state directory's `executions/<plan>/`.
    pub log: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateMark {
    pub at_ms: u64,
    pub passed: bool,
    pub failed_step: Option<String>,
    pub findings: Vec<String>,
    pub report: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mark {
    pub at_ms: u64,
    pub text: String,
}

/// What the metrics say of one attempt: start, end, succeeded, cache hit.
type Span = (Option<u64>, Option<u64>, Option<bool>, bool);

/// Build the timeline of `exec` from the metrics `events` (any plan's; this plan's are
/// picked). `now_ms` closes bars of attempts still running.
pub fn build(plan: &Plan, exec: &Execution, events: &[Event], now_ms: u64) -> Timeline {
    let plan_id = exec.plan_id.to_string();
    let mine: Vec<&Event> = events
        .iter()
        .filter(|e| e.plan.as_deref() == Some(plan_id.as_str()))
        .collect();
    // (agent, attempt) → start, end, ok, cache hit
    let mut spans: BTreeMap<(String, u32), Span> = BTreeMap::new();
    for e in &mine {
        let (Some(agent), Some(t)) = (e.agent.clone(), epoch_ms(&e.time)) else {
            continue;
        };
        let attempt = e
            .details
            .get("attempt")
            .and_then(|a| a.parse().ok())
            .unwrap_or(1);
        let span = spans.entry((agent, attempt)).or_default();
        match e.event.as_str() {
            "agent_start" => span.0 = Some(t),
            "agent_complete" => {
                span.1 = Some(t);
                span.2 = e.success;
                if span.0.is_none() {
                    span.0 = Some(t.saturating_sub(e.duration_ms.unwrap_or(0)));
                }
            }
            "cache" if e.details.get("result").map(String::as_str) == Some("hit") => {
                span.3 = true;
                span.0.get_or_insert(t);
                span.1.get_or_insert(t);
                span.2.get_or_insert(true);
            }
            _ => {}
        }
    }
    let mut lo = epoch_ms(&exec.started_at).unwrap_or(now_ms);
    let mut hi = exec
        .finished_at
        .as_deref()
        .and_then(epoch_ms)
        .unwrap_or(now_ms)
        .max(lo);
    let mut batches = Vec::new();
    for b in &exec.batches {
        let mut agents = Vec::new();
        for a in &b.agents {
            let mut attempts: Vec<AttemptBar> = spans
                .iter()
                .filter(|((id, _), _)| id == a.id.as_str())
                .filter_map(|((_, n), (s, e, ok, hit))| {
                    let start = (*s)?;
                    Some(AttemptBar {
                        attempt: *n,
                        start_ms: start,
                        end_ms: e.unwrap_or(now_ms).max(start),
                        ok: *ok,
                        cache_hit: *hit,
                        log: format!("logs/{}/{n}.log", a.id),
                    })
                })
                .collect();
            // without metrics (driven by hand): the execution's last attempt
            if attempts.is_empty()
                && let Some(start) = a.started_at.as_deref().and_then(epoch_ms)
            {
                let end = a.finished_at.as_deref().and_then(epoch_ms);
                attempts.push(AttemptBar {
                    attempt: a.attempt.max(1),
                    start_ms: start,
                    end_ms: end.unwrap_or(now_ms).max(start),
                    ok: a
                        .status
                        .is_finished()
                        .then(|| a.status == baton_plan::Status::Succeeded),
                    cache_hit: false,
                    log: format!("logs/{}/{}.log", a.id, a.attempt.max(1)),
                });
            }
            for bar in &attempts {
                lo = lo.min(bar.start_ms);
                hi = hi.max(bar.end_ms);
            }
            agents.push(AgentRow {
                id: a.id.to_string(),
                status: a.status.as_str().to_owned(),
                attempts,
            });
        }
        let gates = b
            .integration
            .iter()
            .flat_map(|i| &i.gates)
            .map(|g| GateMark {
                at_ms: epoch_ms(&g.at).unwrap_or(now_ms),
                passed: g.passed,
                failed_step: g.failed_step.clone(),
                findings: g.findings.clone(),
                report: g.report.clone(),
            })
            .collect::<Vec<_>>();
        for g in &gates {
            hi = hi.max(g.at_ms);
        }
        let start_ms = b.started_at.as_deref().and_then(epoch_ms);
        let end_ms = b.finished_at.as_deref().and_then(epoch_ms);
        if let Some(s) = start_ms {
            lo = lo.min(s);
        }
        if let Some(e) = end_ms {
            hi = hi.max(e);
        }
        batches.push(BatchRow {
            id: b.id.to_string(),
            status: b.status.as_str().to_owned(),
            start_ms,
            end_ms,
            agents,
            gates,
        });
    }
    let replans = exec
        .replans
        .iter()
        .filter_map(|r| {
            Some(Mark {
                at_ms: epoch_ms(&r.at)?,
                text: r.reason.clone(),
            })
        })
        .collect();
    Timeline {
        plan: plan_id,
        title: plan.title.clone(),
        status: exec.status.as_str().to_owned(),
        start_ms: lo,
        end_ms: hi.max(lo + 1),
        batches,
        replans,
    }
}

/// The timeline as a Chrome trace (the JSON Perfetto and `chrome://tracing` open): one
/// process per batch, one thread per agent, a complete event per attempt, instant events for
/// gate verdicts and replans.
pub fn chrome_trace(t: &Timeline) -> serde_json::Value {
    use serde_json::json;
    let us = |ms: u64| (ms.saturating_sub(t.start_ms)) * 1000;
    let mut events = Vec::new();
    for (bi, b) in t.batches.iter().enumerate() {
        let pid = bi + 1;
        events.push(json!({"name": "process_name", "ph": "M", "pid": pid,
            "args": {"name": format!("batch {} ({})", b.id, b.status)}}));
        for (ai, a) in b.agents.iter().enumerate() {
            let tid = ai + 1;
            events.push(
                json!({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
                "args": {"name": a.id}}),
            );
            for bar in &a.attempts {
                let outcome = match (bar.cache_hit, bar.ok) {
                    (true, _) => "cache hit",
                    (_, Some(true)) => "succeeded",
                    (_, Some(false)) => "failed",
                    (_, None) => "running",
                };
                events.push(json!({
                    "name": format!("{} #{}", a.id, bar.attempt),
                    "cat": "attempt",
                    "ph": "X",
                    "ts": us(bar.start_ms),
                    "dur": (bar.end_ms - bar.start_ms) * 1000,
                    "pid": pid,
                    "tid": tid,
                    "args": {"outcome": outcome, "log": bar.log},
                }));
            }
        }
        for g in &b.gates {
            events.push(json!({
                "name": if g.passed { "gate passed" } else { "gate failed" },
                "cat": "gate",
                "ph": "i",
                "s": "p",
                "ts": us(g.at_ms),
                "pid": pid,
                "tid": 0,
                "args": {"findings": g.findings, "failed_step": g.failed_step},
            }));
        }
    }
    for r in &t.replans {
        events.push(
            json!({"name": "replan", "cat": "replan", "ph": "i", "s": "g",
            "ts": us(r.at_ms), "pid": 0, "tid": 0, "args": {"reason": r.text}}),
        );
    }
    json!({"traceEvents": events, "displayTimeUnit": "ms",
        "otherData": {"plan": t.plan, "title": t.title, "status": t.status}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_with_and_without_fraction() {
        assert_eq!(epoch_ms("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(epoch_ms("1970-01-01T00:00:01.250Z"), Some(1250));
        assert_eq!(epoch_ms("yesterday"), None);
    }
}
