//! The `[verify]` section of `.config/baton.toml`.

use serde::Deserialize;

/// Settings of `baton verify`; every key is optional.
///
/// ```toml
/// [verify]
/// smoke = "kind(lib) | kind(bin)"        # nextest filterset that --quick runs (Rust repos)
/// quick = ["make", "test-quick"]         # commands for repos that are not Cargo workspaces
/// full = ["make", "test"]
/// junit = "build/junit.xml"              # the JUnit file those commands write: per-test counts
/// runner = "cargo-test"                  # Rust repos: `nextest` (default when installed) or `cargo-test`
/// allow_no_tests = false                 # true: zero tests run, or no test command, passes
/// merged_target_max_mb = 4096            # the `--merged` build directory is emptied above this
/// stale_lock_secs = 60
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyConfig {
    /// The nextest filterset of `--quick` in Cargo workspaces.
    #[serde(default = "default_smoke")]
    pub smoke: String,
    /// The command (argv) of `--quick`; overrides nextest when set.
    #[serde(default)]
    pub quick: Option<Vec<String>>,
    /// The command (argv) of `--full`; overrides nextest when set.
    #[serde(default)]
    pub full: Option<Vec<String>>,
    /// The JUnit XML file the `quick`/`full` command writes, relative to the tested tree;
    /// without it a command is one check, not a count of tests.
    #[serde(default)]
    pub junit: Option<String>,
    /// How Rust tests run; default: nextest when installed, else `cargo test`.
    #[serde(default)]
    pub runner: Option<RunnerChoice>,
    /// Zero tests run, or no test command at all, is a pass instead of a failure.
    #[serde(default)]
    pub allow_no_tests: bool,
    /// The `--merged` build directory is emptied when it grows past this many MiB.
    #[serde(default = "default_merged_target_max_mb")]
    pub merged_target_max_mb: u64,
    /// An `index.lock` older than this many seconds is reported as stale.
    #[serde(default = "default_stale_lock_secs")]
    pub stale_lock_secs: u64,
}

/// `[verify] runner`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunnerChoice {
    /// cargo-nextest (process per test).
    Nextest,
    /// `cargo test`, for suites that are not safe under nextest's process-per-test model.
    CargoTest,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        VerifyConfig {
            smoke: default_smoke(),
            quick: None,
            full: None,
            junit: None,
            runner: None,
            allow_no_tests: false,
            merged_target_max_mb: default_merged_target_max_mb(),
            stale_lock_secs: default_stale_lock_secs(),
        }
    }
}

/// Unit tests of libraries and binaries: fast, and they need no fixtures.
pub const DEFAULT_SMOKE: &str = "kind(lib) | kind(bin) | kind(proc-macro)";

fn default_smoke() -> String {
    DEFAULT_SMOKE.to_owned()
}

fn default_stale_lock_secs() -> u64 {
    60
}

fn default_merged_target_max_mb() -> u64 {
    4096
}
