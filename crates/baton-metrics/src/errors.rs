//! Errors of the metrics crate: a bad event (bad input) or a log that cannot be read or written.

use std::path::PathBuf;

/// A field of an event that breaks its rule; nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("metrics event: {field} {value:?} is not valid: {rule}")]
pub struct EventError {
    pub field: &'static str,
    pub value: String,
    pub rule: String,
}

/// Reading or appending to the metrics log failed.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error(transparent)]
    Store(#[from] baton_store::StoreError),
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serialize a metrics event: {0}")]
    Serialize(#[source] serde_json::Error),
    #[error("cannot generate an event id: {0}")]
    Random(getrandom::Error),
}
