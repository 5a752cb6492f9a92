//! Metrics of baton: an append-only `.baton/metrics.jsonl` event log and its summaries.
//!
//! - [`event`]: one event (a JSON line): ids, type, duration, success, error class, details;
//!   validation of what scripts and agents record.
//! - [`log`]: appending whole lines under the log's lock (a torn last line is terminated first)
//!   and reading with bad lines skipped and counted.
//! - [`aggregate`]: pure aggregation of events into partial aggregates that merge.
//! - `fastrow`: a strict fast path for the lines baton writes; anything else goes to serde_json.
//! - [`scan`]: the streaming, parallel reader: the file is read in chunks, each chunk is parsed
//!   and aggregated on the rayon pool, partial aggregates merge in file order.
//! - [`report`]: the summary and failure reports built from a merged aggregate.
//!
//! Percentiles are exact (nearest rank over every duration of a task type, kept as `u64`s: 8 bytes
//! per event, 8 MB for a million events).

pub mod aggregate;
mod errors;
pub mod event;
mod fastrow;
pub mod log;
pub mod report;
pub mod scan;

pub use errors::{EventError, MetricsError};
pub use event::{Event, KNOWN_EVENTS};
pub use log::{AppendError, MetricsAppender, MetricsLog};
pub use report::{Failures, Summary};
pub use scan::Filter;
