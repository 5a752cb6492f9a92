//! One metrics event: a line of `.baton/metrics.jsonl`.
//!
//! Writers (the runner, `baton metrics record`) build an [`Event`] and [`Event::validate`] it
//! before it is appended, so every line baton writes has safe ids, a known type and an RFC 3339
//! UTC time. Readers are lenient instead (see [`crate::scan`]): a line that does not parse is
//! counted and skipped, never fatal.

use std::collections::BTreeMap;
use std::time::SystemTime;

use baton_plan::{AgentId, BatchId, PlanId};
use serde::{Deserialize, Serialize};

use crate::{EventError, MetricsError};

/// The event types baton knows; `record` refuses others so a typo does not make a new series.
pub const KNOWN_EVENTS: &[&str] = &[
    "run_start",
    "run_complete",
    "batch_start",
    "batch_complete",
    "agent_start",
    "agent_complete",
    "agent_leak",
    "verification",
    "replan",
    "worktree",
    "cache",
    "task",
];

/// Task types an event may carry (those of plan agents).
pub const TASK_TYPES: &[&str] = &["research", "implement", "test", "verify"];

/// One line of the metrics log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub schema_version: u32,
    /// Unique: `E-YYYYMMDD-HHMMSS-<16 hex>` (UTC time and 64 random bits).
    pub event_id: String,
    /// RFC 3339 UTC with milliseconds.
    pub time: String,
    /// One of [`KNOWN_EVENTS`].
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_class: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
}

impl Event {
    pub const SCHEMA_VERSION: u32 = 1;

    /// An event of type `event` at `now` with a fresh id and nothing else set.
    pub fn new(event: impl Into<String>, now: SystemTime) -> Result<Event, MetricsError> {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(MetricsError::Random)?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Event {
            schema_version: Self::SCHEMA_VERSION,
            event_id: format!("E-{}-{hex}", baton_plan::ids::utc_stamp(now)),
            time: baton_plan::ids::rfc3339_now(now),
            event: event.into(),
            plan: None,
            batch: None,
            agent: None,
            task_type: None,
            duration_ms: None,
            success: None,
            error_class: None,
            details: BTreeMap::new(),
        })
    }

    /// Check every field against its rule. Ids must be valid plan/batch/agent ids, so an event
    /// can always be joined with the plan it names.
    pub fn validate(&self) -> Result<(), EventError> {
        let bad = |field: &'static str, value: &str, rule: &str| EventError {
            field,
            value: value.to_owned(),
            rule: rule.to_owned(),
        };
        if self.schema_version != Self::SCHEMA_VERSION {
            return Err(bad(
                "schema_version",
                &self.schema_version.to_string(),
                "this baton writes version 1",
            ));
        }
        if !KNOWN_EVENTS.contains(&self.event.as_str()) {
            return Err(bad(
                "event",
                &self.event,
                &format!("use one of {}", KNOWN_EVENTS.join(", ")),
            ));
        }
        if humantime::parse_rfc3339(&self.time).is_err() {
            return Err(bad(
                "time",
                &self.time,
                "use RFC 3339 UTC, e.g. 2026-01-01T00:00:00.000Z",
            ));
        }
        if let Some(p) = &self.plan {
            PlanId::new(p.as_str()).map_err(|_| bad("plan", p, PlanId::RULE))?;
        }
        if let Some(b) = &self.batch {
            BatchId::new(b.as_str()).map_err(|_| bad("batch", b, BatchId::RULE))?;
        }
        if let Some(a) = &self.agent {
            AgentId::new(a.as_str()).map_err(|_| bad("agent", a, AgentId::RULE))?;
        }
        if let Some(t) = &self.task_type
            && !TASK_TYPES.contains(&t.as_str())
        {
            return Err(bad(
                "task_type",
                t,
                &format!("use one of {}", TASK_TYPES.join(", ")),
            ));
        }
        if let Some(c) = &self.error_class
            && !is_key(c)
        {
            return Err(bad("error_class", c, KEY_RULE));
        }
        for key in self.details.keys() {
            if !is_key(key) {
                return Err(bad("detail key", key, KEY_RULE));
            }
        }
        Ok(())
    }

    /// The event as one JSON line (no newline).
    pub fn to_line(&self) -> Result<String, MetricsError> {
        serde_json::to_string(self).map_err(MetricsError::Serialize)
    }
}

const KEY_RULE: &str = "use 1-64 characters of a-z, 0-9, '_', '-' and '.', starting with a letter";

/// Error classes and detail keys: `[a-z][a-z0-9_.-]{0,63}`.
fn is_key(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_lowercase()
        && b[1..].iter().all(|&c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-' | b'.')
        })
}

/// Parse `KEY=VALUE` (the value may contain `=`).
pub fn parse_detail(s: &str) -> Result<(String, String), EventError> {
    match s.split_once('=') {
        Some((k, v)) if is_key(k) => Ok((k.to_owned(), v.to_owned())),
        _ => Err(EventError {
            field: "detail",
            value: s.to_owned(),
            rule: format!("use KEY=VALUE where KEY: {KEY_RULE}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_795_000_000_123)
    }

    #[test]
    fn new_events_validate_and_round_trip() {
        let mut e = Event::new("agent_complete", t0()).unwrap();
        e.plan = Some("OP-20261118-110640-0a1b2c3d".into());
        e.batch = Some("B1".into());
        e.agent = Some("scan-api".into());
        e.task_type = Some("research".into());
        e.duration_ms = Some(1200);
        e.success = Some(false);
        e.error_class = Some("timeout".into());
        e.details.insert("attempt".into(), "2".into());
        e.validate().unwrap();
        assert_eq!(e.time, "2026-11-18T11:06:40.123Z");
        assert!(
            e.event_id.starts_with("E-20261118-110640-"),
            "{}",
            e.event_id
        );
        assert_eq!(e.event_id.len(), "E-20261118-110640-".len() + 16);
        let line = e.to_line().unwrap();
        assert!(!line.contains('\n'));
        assert_eq!(serde_json::from_str::<Event>(&line).unwrap(), e);
        assert_ne!(
            Event::new("cache", t0()).unwrap().event_id,
            Event::new("cache", t0()).unwrap().event_id
        );
    }

    #[test]
    fn bad_fields_are_named() {
        let base = Event::new("replan", t0()).unwrap();
        type Mutate = fn(&mut Event);
        let cases: Vec<(&str, Mutate)> = vec![
            ("event", |e| e.event = "batch_strat".into()),
            ("plan", |e| e.plan = Some("../etc".into())),
            ("batch", |e| e.batch = Some("B 1".into())),
            ("agent", |e| e.agent = Some("A/b".into())),
            ("task_type", |e| e.task_type = Some("coding".into())),
            ("error_class", |e| e.error_class = Some("Time Out".into())),
            ("time", |e| e.time = "yesterday".into()),
        ];
        for (field, f) in cases {
            let mut e = base.clone();
            f(&mut e);
            assert_eq!(e.validate().unwrap_err().field, field);
        }
    }

    #[test]
    fn details() {
        assert_eq!(parse_detail("k=a=b").unwrap(), ("k".into(), "a=b".into()));
        assert_eq!(parse_detail("k=").unwrap(), ("k".into(), String::new()));
        assert!(parse_detail("novalue").is_err());
        assert!(parse_detail("=v").is_err());
        assert!(parse_detail("K=v").is_err());
    }
}
