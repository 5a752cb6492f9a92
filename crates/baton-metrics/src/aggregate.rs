//! Pure aggregation: events in, partial aggregates out; partial aggregates merge.
//!
//! What counts where:
//! - every event: its type's count, and succeeded/failed when it has `success`;
//! - `agent_complete`: its task type's count, success and duration (for p50/p95);
//! - `agent_complete` with plan and batch: the batch's agent count and summed agent time;
//! - `batch_start`/`batch_complete`: the batch's wall time (`duration_ms` of the completion,
//!   else completion time minus start time);
//! - `success: false`: a failure, grouped by error class (`unclassified` when absent) and task
//!   type (`none` when absent), with up to three example plans (the smallest ids, so the choice
//!   does not depend on how the work was split).

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use serde::Deserialize;

/// Example plans kept per failure group.
pub const EXAMPLE_PLANS: usize = 3;
/// Bad line numbers kept for messages.
pub const FIRST_BAD_LINES: usize = 10;

/// A string field that borrows from the line when it has no escapes.
#[derive(Debug, PartialEq, Eq)]
pub struct Str<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Str<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// The fields of an event the aggregation reads (others are skipped unparsed into values).
#[derive(Debug, PartialEq, Eq, Deserialize)]
pub struct Row<'a> {
    pub schema_version: u32,
    #[serde(borrow)]
    pub time: Str<'a>,
    #[serde(borrow)]
    pub event: Str<'a>,
    #[serde(borrow, default)]
    pub plan: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub batch: Option<Str<'a>>,
    #[serde(borrow, default)]
    pub task_type: Option<Str<'a>>,
    #[serde(default)]
    pub duration_ms: Option<u64>,
    #[serde(default)]
    pub success: Option<bool>,
    #[serde(borrow, default)]
    pub error_class: Option<Str<'a>>,
}

fn s<'r>(v: &'r Option<Str<'_>>) -> Option<&'r str> {
    v.as_ref().map(|x| x.0.as_ref())
}

/// FNV-1a: the keys are short ids from a local file, so a fast hash beats SipHash's
/// protection against crafted collisions (which a user's own log has no reason to contain).
#[derive(Debug, Default, Clone, Copy)]
pub struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// The maps of an aggregate.
pub type Map<V> = HashMap<String, V, BuildHasherDefault<Fnv>>;

/// Occurrences, and how many of them said success or failure.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub count: u64,
    pub succeeded: u64,
    pub failed: u64,
}

impl Counts {
    fn add(&mut self, success: Option<bool>) {
        self.count += 1;
        match success {
            Some(true) => self.succeeded += 1,
            Some(false) => self.failed += 1,
            None => {}
        }
    }
    fn merge(&mut self, o: Counts) {
        self.count += o.count;
        self.succeeded += o.succeeded;
        self.failed += o.failed;
    }
    /// succeeded / (succeeded + failed), `None` when no event said either.
    pub fn success_rate(&self) -> Option<f64> {
        let n = self.succeeded + self.failed;
        (n > 0).then(|| self.succeeded as f64 / n as f64)
    }
}

/// One task type: outcomes and every duration (exact percentiles).
#[derive(Debug, Default)]
pub struct TaskAgg {
    pub counts: Counts,
    pub durations: Vec<u64>,
}

/// One batch of one plan.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchAgg {
    pub agents: u64,
    pub agent_ms: u64,
    /// Earliest `batch_start`, ms since the epoch.
    pub start_ms: Option<u64>,
    /// Latest `batch_complete`, ms since the epoch.
    pub complete_ms: Option<u64>,
    /// `duration_ms` of the latest `batch_complete`.
    pub wall_ms: Option<u64>,
}

impl BatchAgg {
    fn merge(&mut self, o: BatchAgg) {
        self.agents += o.agents;
        self.agent_ms += o.agent_ms;
        self.start_ms = min_opt(self.start_ms, o.start_ms);
        if o.complete_ms >= self.complete_ms {
            self.complete_ms = o.complete_ms;
            self.wall_ms = o.wall_ms.or(self.wall_ms);
        }
    }
    /// Wall time of the batch: what its completion said, else completion minus start.
    pub fn wall(&self) -> Option<u64> {
        self.wall_ms.or_else(|| {
            let (s, c) = (self.start_ms?, self.complete_ms?);
            c.checked_sub(s)
        })
    }
}

fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// One failure group (error class × task type).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FailAgg {
    pub count: u64,
    pub example_plans: BTreeSet<String>,
    pub last_time: String,
}

impl FailAgg {
    fn add_plan(&mut self, plan: &str) {
        let full = self.example_plans.len() >= EXAMPLE_PLANS;
        if full
            && self
                .example_plans
                .last()
                .is_some_and(|l| plan >= l.as_str())
        {
            return;
        }
        if self.example_plans.insert(plan.to_owned()) && self.example_plans.len() > EXAMPLE_PLANS {
            self.example_plans.pop_last();
        }
    }
    fn merge(&mut self, o: FailAgg) {
        self.count += o.count;
        for p in &o.example_plans {
            self.add_plan(p);
        }
        if o.last_time > self.last_time {
            self.last_time = o.last_time;
        }
    }
}

/// Everything a summary or failure report needs, for a part of the log or all of it.
#[derive(Debug, Default)]
pub struct Aggregate {
    /// Lines seen, blank ones included (to number lines across parts).
    pub lines: u64,
    /// Events that parsed and passed the filter.
    pub events: u64,
    /// Events that parsed but did not pass the filter.
    pub filtered_out: u64,
    /// Lines that did not parse (or had another schema version).
    pub bad: u64,
    /// 1-based numbers of the first bad lines.
    pub first_bad_lines: Vec<u64>,
    pub first_time: Option<String>,
    pub last_time: Option<String>,
    pub by_event: Map<Counts>,
    pub task_types: Map<TaskAgg>,
    /// plan → batch → aggregate.
    pub batches: Map<Map<BatchAgg>>,
    /// error class → task type → aggregate.
    pub failures: Map<Map<FailAgg>>,
}

fn entry<'m, V: Default, S: BuildHasher>(
    map: &'m mut HashMap<String, V, S>,
    key: &str,
) -> &'m mut V {
    // look up by &str first so the common case allocates nothing
    if !map.contains_key(key) {
        map.insert(key.to_owned(), V::default());
    }
    map.get_mut(key).expect("inserted above")
}

fn parse_ms(time: &str) -> Option<u64> {
    let t = humantime::parse_rfc3339_weak(time).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    u64::try_from(d.as_millis()).ok()
}

impl Aggregate {
    /// Count a line that did not parse; `line` is 1-based within this part.
    pub fn add_bad(&mut self, line: u64) {
        self.bad += 1;
        if self.first_bad_lines.len() < FIRST_BAD_LINES {
            self.first_bad_lines.push(line);
        }
    }

    /// Add one event that passed the filter.
    pub fn add(&mut self, row: &Row<'_>) {
        self.events += 1;
        let time = row.time.0.as_ref();
        match &mut self.first_time {
            Some(t) if t.as_str() <= time => {}
            Some(t) => {
                t.clear();
                t.push_str(time);
            }
            None => self.first_time = Some(time.to_owned()),
        }
        match &mut self.last_time {
            Some(t) if t.as_str() >= time => {}
            Some(t) => {
                t.clear();
                t.push_str(time);
            }
            None => self.last_time = Some(time.to_owned()),
        }
        let event = row.event.0.as_ref();
        entry(&mut self.by_event, event).add(row.success);

        if event == "agent_complete"
            && let Some(tt) = s(&row.task_type)
        {
            let agg = entry(&mut self.task_types, tt);
            agg.counts.add(row.success);
            if let Some(d) = row.duration_ms {
                agg.durations.push(d);
            }
        }
        if let (Some(plan), Some(batch)) = (s(&row.plan), s(&row.batch)) {
            match event {
                "agent_complete" => {
                    let b = entry(entry(&mut self.batches, plan), batch);
                    b.agents += 1;
                    b.agent_ms += row.duration_ms.unwrap_or(0);
                }
                "batch_start" => {
                    let b = entry(entry(&mut self.batches, plan), batch);
                    b.start_ms = min_opt(b.start_ms, parse_ms(time));
                }
                "batch_complete" => {
                    let b = entry(entry(&mut self.batches, plan), batch);
                    let at = parse_ms(time);
                    if at >= b.complete_ms {
                        b.complete_ms = at;
                        b.wall_ms = row.duration_ms.or(b.wall_ms);
                    }
                }
                _ => {}
            }
        }
        if row.success == Some(false) {
            let class = s(&row.error_class).unwrap_or("unclassified");
            let tt = s(&row.task_type).unwrap_or("none");
            let f = entry(entry(&mut self.failures, class), tt);
            f.count += 1;
            if let Some(plan) = s(&row.plan) {
                f.add_plan(plan);
            }
            if time > f.last_time.as_str() {
                f.last_time = time.to_owned();
            }
        }
    }

    /// Merge `other`, which covers the lines right after the `self.lines` lines seen so far.
    pub fn merge(&mut self, other: Aggregate) {
        let base = self.lines;
        self.lines += other.lines;
        self.events += other.events;
        self.filtered_out += other.filtered_out;
        self.bad += other.bad;
        for l in other.first_bad_lines {
            if self.first_bad_lines.len() < FIRST_BAD_LINES {
                self.first_bad_lines.push(base + l);
            }
        }
        self.first_time = match (self.first_time.take(), other.first_time) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_time = match (self.last_time.take(), other.last_time) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        for (k, v) in other.by_event {
            self.by_event.entry(k).or_default().merge(v);
        }
        for (k, v) in other.task_types {
            let t = self.task_types.entry(k).or_default();
            t.counts.merge(v.counts);
            if t.durations.is_empty() {
                t.durations = v.durations;
            } else {
                t.durations.extend_from_slice(&v.durations);
            }
        }
        for (plan, batches) in other.batches {
            let mine = self.batches.entry(plan).or_default();
            for (b, agg) in batches {
                mine.entry(b).or_default().merge(agg);
            }
        }
        for (class, groups) in other.failures {
            let mine = self.failures.entry(class).or_default();
            for (tt, agg) in groups {
                mine.entry(tt).or_default().merge(agg);
            }
        }
    }
}
