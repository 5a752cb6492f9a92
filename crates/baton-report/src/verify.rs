//! The verify report, `schema_version` 1.

use serde::{Deserialize, Serialize};

/// The whole report of one `baton verify` run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// The tree the tests step tested (absent when no tests ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tested: Option<TestedTree>,
    /// `hash:M/N` when this report is one shard of a partitioned run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// The shards a merged report was combined from (`report merge`), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<String>,
    /// Totals over all checks.
    #[serde(default)]
    pub totals: Totals,
}

/// Which tree the tests ran on: the checkout (its HEAD, and whether it had uncommitted
/// changes) or the agents' work merged onto the base (the merged tree's id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestedTree {
    /// `checkout` or `merged`.
    pub kind: String,
    /// The commit tested (the checkout's HEAD), or the base the merge was laid onto.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The id of the tree tested: for `merged`, the merged result's tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<String>,
    /// The checkout had uncommitted or untracked changes, which were tested too.
    #[serde(default)]
    pub uncommitted: bool,
    /// The agents whose work was merged, in merge order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<String>,
    /// Where the tests ran.
    pub dir: String,
    /// The directory is kept for a person to look at (`--keep-merged`).
    #[serde(default)]
    pub kept: bool,
}

/// How many findings of each severity all checks produced; `errors` also counts every
/// failed test, and a failed check with nothing else to count counts as one error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub errors: u64,
    pub warnings: u64,
    pub infos: u64,
}

impl Totals {
    pub fn of(checks: &[Check]) -> Self {
        let mut t = Totals::default();
        for c in checks {
            let mut errors = 0;
            for f in &c.findings {
                match f.severity {
                    Severity::Error => errors += 1,
                    Severity::Warning => t.warnings += 1,
                    Severity::Info => t.infos += 1,
                }
            }
            errors += c.tests.as_ref().map_or(0, |s| s.failed);
            if errors == 0 && matches!(c.status, CheckStatus::Fail | CheckStatus::Error) {
                errors = 1;
            }
            t.errors += errors;
        }
        t
    }
}

impl VerifyReport {
    pub const SCHEMA_VERSION: u32 = 1;
}

/// One check (`git`, `conflicts`, `tests`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Pass,
    Warn,
    Fail,
    Skip,
    /// The check could not run (a tool missing, git failing).
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

/// One thing a check found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    Conflict,
    Clean,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// False when the runner cannot count tests (a configured command without
    /// `[verify] junit`): the command is one check, and `passed`/`failed` stay 0.
    #[serde(default = "yes")]
    pub counted: bool,
    /// The last lines of the test command's output (stdout and stderr, interleaved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tail: Option<String>,
    /// Every test that ran, passed or not, with its output where the runner kept it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cases: Vec<TestCase>,
}

fn yes() -> bool {
    true
}

/// One test that ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestCase {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    /// `passed`, `failed` or `skipped`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The tail of its output, when the runner kept it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

impl Default for TestsSummary {
    fn default() -> Self {
        TestsSummary {
            passed: 0,
            failed: 0,
            skipped: 0,
            failures: Vec::new(),
            runner: None,
            command: Vec::new(),
            filter: None,
            partition: None,
            dir: None,
            exit_code: None,
            counted: true,
            output_tail: None,
            cases: Vec::new(),
        }
    }
}

/// One failed test (or a failed command), with its cause where it is known.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestFailure {
    pub name: String,
    /// The test binary or suite (`package::binary` for nextest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    /// The assertion or panic message, the exception: what went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Where it failed (relative to the tested tree), when the output says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// The tail of the test's own output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}
