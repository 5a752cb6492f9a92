//! The metrics log file: whole-line appends under its lock, lenient reads.

use std::path::{Path, PathBuf};

use baton_store::JsonlStats;

use crate::report::{Failures, Summary};
use crate::scan::{Filter, scan_file};
use crate::{Event, EventError, MetricsError};

/// `.baton/metrics.jsonl` (see `baton_store::StateDir::metrics`).
#[derive(Debug, Clone)]
pub struct MetricsLog {
    path: PathBuf,
}

/// A metrics log held open (see [`MetricsLog::appender`]).
#[derive(Debug)]
pub struct MetricsAppender(baton_store::JsonlAppender);

impl MetricsAppender {
    /// Validate every event, then append them all as whole lines in one locked write.
    pub fn append(&mut self, events: &[Event]) -> Result<(), AppendError> {
        let mut lines = Vec::with_capacity(events.len());
        for e in events {
            e.validate()?;
            lines.push(e.to_line()?);
        }
        self.0.append(&lines).map_err(MetricsError::from)?;
        Ok(())
    }
}

/// Why an append did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// An event broke a rule; nothing was written.
    #[error(transparent)]
    Invalid(#[from] EventError),
    #[error(transparent)]
    Log(#[from] MetricsError),
}

impl MetricsLog {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        MetricsLog { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Validate every event, then append them all as whole lines in one locked write.
    /// If one event is invalid nothing is written. A torn last line left by a crashed writer
    /// is terminated first, so it stays one bad line and the new lines are whole.
    ///
    /// Not fsynced: metrics are worth a page-cache write, not a disk flush per event; a power
    /// cut can lose the last lines but never tears the ones before them.
    pub fn append(&self, events: &[Event]) -> Result<(), AppendError> {
        let mut lines = Vec::with_capacity(events.len());
        for e in events {
            e.validate()?;
            lines.push(e.to_line()?);
        }
        baton_store::append_lines(&self.path, &lines, false).map_err(MetricsError::from)?;
        Ok(())
    }

    /// A writer that keeps the log open, for a process that appends an event at every step
    /// (a run): the same whole-line, locked appends as [`MetricsLog::append`], without
    /// opening two files per event.
    pub fn appender(&self) -> Result<MetricsAppender, MetricsError> {
        Ok(MetricsAppender(baton_store::JsonlAppender::open(
            &self.path,
        )?))
    }

    /// Every event in file order, with the count of lines that did not parse (sequential; for
    /// small logs and tests; summaries use [`MetricsLog::summary`]).
    pub fn read_all(&self) -> Result<(Vec<Event>, JsonlStats), MetricsError> {
        let mut events = Vec::new();
        let stats = baton_store::read_jsonl(&self.path, |e: Event| events.push(e))?;
        Ok((events, stats))
    }

    /// The summary of the events that pass `filter` (parallel and streaming).
    pub fn summary(&self, filter: &Filter) -> Result<Summary, MetricsError> {
        Ok(Summary::from_aggregate(scan_file(&self.path, filter)?))
    }

    /// The failures among the events that pass `filter`.
    pub fn failures(&self, filter: &Filter) -> Result<Failures, MetricsError> {
        Ok(Failures::from_aggregate(scan_file(&self.path, filter)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn an_invalid_event_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let log = MetricsLog::new(dir.path().join("m.jsonl"));
        let good = Event::new("cache", SystemTime::now()).unwrap();
        let mut bad = good.clone();
        bad.event = "nope".into();
        assert!(matches!(
            log.append(&[good.clone(), bad]),
            Err(AppendError::Invalid(_))
        ));
        assert!(!log.path().exists());
        log.append(std::slice::from_ref(&good)).unwrap();
        let (events, stats) = log.read_all().unwrap();
        assert_eq!(events, vec![good]);
        assert_eq!(stats.bad, 0);
    }
}
