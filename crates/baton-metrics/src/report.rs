//! The reports of `baton metrics summary` and `baton metrics failures`, built from a merged
//! [`Aggregate`]. Output types only: the CLI prints them.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::aggregate::{Aggregate, Counts};

/// Outcomes of a kind of event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rate {
    pub count: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// succeeded / (succeeded + failed); `null` when no event said either.
    pub success_rate: Option<f64>,
}

impl From<Counts> for Rate {
    fn from(c: Counts) -> Self {
        Rate {
            count: c.count,
            succeeded: c.succeeded,
            failed: c.failed,
            success_rate: c.success_rate(),
        }
    }
}

/// Agents of one task type (from `agent_complete` events).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskTypeStats {
    pub count: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub success_rate: Option<f64>,
    /// Events that had a duration.
    pub timed: u64,
    /// Exact nearest-rank percentiles of `duration_ms`.
    pub p50_ms: Option<u64>,
    pub p95_ms: Option<u64>,
}

/// One batch: summed agent time over wall time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchStats {
    pub plan: String,
    pub batch: String,
    pub agents: u64,
    pub agent_ms: u64,
    pub wall_ms: Option<u64>,
    /// agent_ms / wall_ms; `null` without a wall time (no batch_complete) or with 0 ms.
    pub speedup: Option<f64>,
}

/// Speed-up over every batch that has one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpeedupStats {
    pub batches: u64,
    pub mean: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// `baton metrics summary --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub schema_version: u32,
    /// Events that passed the filter.
    pub events: u64,
    pub filtered_out: u64,
    /// Lines that did not parse; they are skipped.
    pub bad_lines: u64,
    pub first_bad_lines: Vec<u64>,
    pub first_time: Option<String>,
    pub last_time: Option<String>,
    pub by_event: BTreeMap<String, Rate>,
    pub task_types: BTreeMap<String, TaskTypeStats>,
    /// `verification` events: how often the gate passed.
    pub gate: Rate,
    pub replans: u64,
    pub speedup: SpeedupStats,
    /// Every batch seen, by plan then batch id.
    pub batches: Vec<BatchStats>,
}

/// Nearest-rank percentile `num/den` of `v` (reorders `v`).
pub fn percentile(v: &mut [u64], num: u64, den: u64) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let n = v.len() as u64;
    let rank = (num * n).div_ceil(den).max(1);
    let idx = usize::try_from(rank - 1).unwrap_or(0).min(v.len() - 1);
    Some(*v.select_nth_unstable(idx).1)
}

impl Summary {
    pub const SCHEMA_VERSION: u32 = 1;

    pub fn from_aggregate(mut agg: Aggregate) -> Summary {
        let task_types = agg
            .task_types
            .iter_mut()
            .map(|(k, t)| {
                let stats = TaskTypeStats {
                    count: t.counts.count,
                    succeeded: t.counts.succeeded,
                    failed: t.counts.failed,
                    success_rate: t.counts.success_rate(),
                    timed: t.durations.len() as u64,
                    p50_ms: percentile(&mut t.durations, 50, 100),
                    p95_ms: percentile(&mut t.durations, 95, 100),
                };
                (k.clone(), stats)
            })
            .collect();
        let mut batches: Vec<BatchStats> = agg
            .batches
            .iter()
            .flat_map(|(plan, bs)| {
                bs.iter().map(move |(batch, b)| {
                    let wall_ms = b.wall();
                    BatchStats {
                        plan: plan.clone(),
                        batch: batch.clone(),
                        agents: b.agents,
                        agent_ms: b.agent_ms,
                        wall_ms,
                        speedup: wall_ms
                            .filter(|&w| w > 0)
                            .map(|w| b.agent_ms as f64 / w as f64),
                    }
                })
            })
            .collect();
        batches.sort_by(|a, b| (&a.plan, &a.batch).cmp(&(&b.plan, &b.batch)));
        let speeds: Vec<f64> = batches.iter().filter_map(|b| b.speedup).collect();
        let speedup = SpeedupStats {
            batches: speeds.len() as u64,
            mean: (!speeds.is_empty()).then(|| speeds.iter().sum::<f64>() / speeds.len() as f64),
            min: speeds.iter().copied().reduce(f64::min),
            max: speeds.iter().copied().reduce(f64::max),
        };
        let counts = |k: &str| agg.by_event.get(k).copied().unwrap_or_default();
        Summary {
            schema_version: Self::SCHEMA_VERSION,
            events: agg.events,
            filtered_out: agg.filtered_out,
            bad_lines: agg.bad,
            first_bad_lines: agg.first_bad_lines.clone(),
            first_time: agg.first_time.clone(),
            last_time: agg.last_time.clone(),
            gate: counts("verification").into(),
            replans: counts("replan").count,
            by_event: agg
                .by_event
                .iter()
                .map(|(k, c)| (k.clone(), (*c).into()))
                .collect(),
            task_types,
            speedup,
            batches,
        }
    }
}

/// One failure group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailureGroup {
    pub error_class: String,
    pub task_type: String,
    pub count: u64,
    /// Up to three plans with this failure (the smallest ids).
    pub example_plans: Vec<String>,
    pub last_time: String,
}

/// `baton metrics failures --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failures {
    pub schema_version: u32,
    /// Events that passed the filter.
    pub events: u64,
    pub bad_lines: u64,
    /// Events with `success: false`.
    pub failures: u64,
    /// Failures per error class.
    pub by_class: BTreeMap<String, u64>,
    /// Most frequent first; ties by class, then task type.
    pub groups: Vec<FailureGroup>,
}

impl Failures {
    pub const SCHEMA_VERSION: u32 = 1;

    pub fn from_aggregate(agg: Aggregate) -> Failures {
        let mut groups = Vec::new();
        let mut by_class = BTreeMap::new();
        for (class, per_type) in agg.failures {
            for (task_type, f) in per_type {
                *by_class.entry(class.clone()).or_insert(0) += f.count;
                groups.push(FailureGroup {
                    error_class: class.clone(),
                    task_type,
                    count: f.count,
                    example_plans: f.example_plans.into_iter().collect(),
                    last_time: f.last_time,
                });
            }
        }
        groups.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.error_class.cmp(&b.error_class))
                .then_with(|| a.task_type.cmp(&b.task_type))
        });
        Failures {
            schema_version: Self::SCHEMA_VERSION,
            events: agg.events,
            bad_lines: agg.bad,
            failures: groups.iter().map(|g| g.count).sum(),
            by_class,
            groups,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut v: Vec<u64> = (1..=20).collect();
        assert_eq!(percentile(&mut v, 50, 100), Some(10));
        assert_eq!(percentile(&mut v, 95, 100), Some(19));
        assert_eq!(percentile(&mut [7], 95, 100), Some(7));
        assert_eq!(percentile(&mut [], 50, 100), None);
        let mut w = vec![5, 1, 4, 2, 3];
        assert_eq!(percentile(&mut w, 50, 100), Some(3));
        assert_eq!(percentile(&mut w, 95, 100), Some(5));
    }
}
