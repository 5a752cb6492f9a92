//! Stable, machine-readable output types of baton.
//!
//! This crate plays the role nextest-metadata plays for nextest: the JSON shapes and exit codes
//! that CI steps and director agents depend on. Field names are snake_case, maps are `BTreeMap`
//! for a stable order, every document has `schema_version`, and there is no `flatten` or
//! `untagged`. Add fields freely; never rename or drop one without bumping the version.

pub mod exit;
mod verify;

pub use verify::{
    AgentChanges, Check, CheckStatus, Finding, Overlap, Severity, TestCase, TestFailure,
    TestedTree, TestsSummary, Totals, VerifyReport,
};
