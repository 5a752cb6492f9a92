//! `.config/baton.toml`: per-repository settings. Every section is optional; unknown keys are
//! errors with file, line and column, like plans.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{CliError, CliResult};

#[derive(Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub state: StateConfig,
    #[serde(default)]
    pub verify: baton_verify::VerifyConfig,
    #[serde(default)]
    pub worktree: baton_worktree::WorktreeConfig,
    /// Where agents and test shards run (`local` or `slurm`); a plan's `[executor]` overrides it.
    #[serde(default)]
    pub executor: baton_plan::executor::ExecutorSettings,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// Where baton keeps plans, executions, metrics and tasks, relative to the repository root.
    #[serde(default = "default_state_dir")]
    pub dir: PathBuf,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            dir: default_state_dir(),
        }
    }
}

fn default_state_dir() -> PathBuf {
    PathBuf::from(".baton")
}

impl Config {
    pub const PATH: &'static str = ".config/baton.toml";

    /// Read the config of the checkout at `root`; defaults when the file does not exist.
    pub fn load(root: &Path) -> CliResult<Config> {
        let path = root.join(Self::PATH);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => {
                return Err(CliError::env(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        };
        let config: Config = toml::from_str(&text).map_err(|e| {
            let (line, col) = e
                .span()
                .map_or((1, 1), |s| baton_plan::load::line_col(&text, s.start));
            CliError::input(format!(
                "{}:{line}:{col}: {}",
                path.display(),
                e.message().trim()
            ))
        })?;
        if config.state.dir.is_absolute()
            || config
                .state
                .dir
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(CliError::input(format!(
                "{}: state.dir {:?} must be a path inside the repository",
                path.display(),
                config.state.dir
            )));
        }
        if let Some((subject, message)) = config.executor.problems(None).into_iter().next() {
            return Err(CliError::input(format!(
                "{}: {subject}: {message}",
                path.display()
            )));
        }
        Ok(config)
    }
}
