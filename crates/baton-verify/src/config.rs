//! The `[verify]` section of `.config/baton.toml`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Settings of `baton verify`; every key is optional.
///
/// ```toml
/// [verify]
/// smoke = "kind(lib) | kind(bin)"        # nextest filterset that --quick runs (Rust repos)
/// quick = ["make", "test-quick"]         # commands for repos that are not Cargo workspaces
/// full = ["make", "test"]
/// stale_lock_secs = 60
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
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
    /// An `index.lock` older than this many seconds is reported as stale.
    #[serde(default = "default_stale_lock_secs")]
    pub stale_lock_secs: u64,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        VerifyConfig {
            smoke: default_smoke(),
            quick: None,
            full: None,
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
