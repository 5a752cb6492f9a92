//! The verify report, `schema_version` 1.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The whole report of one `baton verify` run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct VerifyReport {
    pub schema_version: u32,
    /// True when no check failed or errored (with `--strict`, also no warnings).
    pub ok: bool,
    /// `quick` or `full`.
    pub mode: String,
    pub repo: String,
    pub head: Option<String>,
    pub base: Option<String>,
    pub duration_ms: u64,
    pub checks: Vec<Check>,
    /// `--strict`: warnings failed the gate.
    #[serde(default)]
    pub strict: bool,
    /// `--merged`: the tests ran on the agents' work merged in memory.
    #[serde(default)]
    pub merged: bool,
    /// Totals over all checks.
    #[serde(default)]
    pub totals: Totals,
}

/// How many findings of each severity all checks produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Totals {
    pub errors: u64,
    pub warnings: u64,
    pub infos: u64,
}

impl Totals {
    pub fn of(checks: &[Check]) -> Self {
        let mut t = Totals::default();
        for f in checks.iter().flat_map(|c| &c.findings) {
            match f.severity {
                Severity::Error => t.errors += 1,
                Severity::Warning => t.warnings += 1,
                Severity::Info => t.infos += 1,
            }
        }
        t
    }
}

impl VerifyReport {
    pub const SCHEMA_VERSION: u32 = 1;
}

/// One check (`git`, `conflicts`, `tests`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Check {
    pub name: String,
    pub status: CheckStatus,
    pub duration_ms: u64,
    #[serde(default)]
    pub findings: Vec<Finding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<TestsSummary>,
    /// Why the check was skipped or could not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The conflicts check: the agents it compared and what each changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<AgentChanges>,
}

/// One agent as the conflicts check saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AgentChanges {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worktree: Option<String>,
    /// The commit its changes start from (merge base with `--base`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_base: Option<String>,
    /// Files it changed (committed, uncommitted and untracked), by path in the base.
    pub files: Vec<String>,
    /// How many of those changes are not committed.
    #[serde(default)]
    pub uncommitted: u64,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Pass,
    Warn,
    Fail,
    Skip,
    /// The check could not run (a tool missing, git failing).
    Error,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

/// One thing a check found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    /// Stable machine code, e.g. `unmerged_paths`, `multi_writer`, `scope_violation`.
    pub code: String,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// 1-based line in `path`, when the finding is about one place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// All paths, when one finding sums up many (e.g. `untracked_files`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Worktree or agent the finding is about, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worktree: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap: Option<Overlap>,
    pub message: String,
}

/// How two agents' versions of one file combine under git's three-way rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    Conflict,
    Clean,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TestsSummary {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    #[serde(default)]
    pub failures: Vec<TestFailure>,
    /// `nextest`, `cargo-test` or `command`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<String>,
    /// The command that ran (argv).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// The nextest filterset that selected the tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// `hash:M/N` when this is one shard of a partitioned run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// Where the tests ran: the checkout, or the scratch directory of `--merged`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// Exit code of the test command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TestFailure {
    pub name: String,
    /// The test binary or suite (`package::binary` for nextest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
