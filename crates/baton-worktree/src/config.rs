//! The `[worktree]` section of `.config/baton.toml`: where worktrees go, how their branches are
//! named, which branch counts as "integrated", and the optional setup of a new worktree.

use std::path::{Path, PathBuf};

use baton_plan::duration::HumanDuration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::errors::{Result, WorktreeError};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorktreeConfig {
    /// Directory that holds the worktrees. Relative paths are relative to the main checkout.
    /// Default: the sibling directory `<repo>.baton-worktrees`, outside the tracked tree.
    #[serde(default)]
    pub root: Option<PathBuf>,
    /// Branch name of an agent's worktree; `{plan}` and `{agent}` are replaced.
    #[serde(default = "default_branch")]
    pub branch: String,
    /// The branch work must reach to count as integrated. Default: the main checkout's branch.
    #[serde(default)]
    pub target: Option<String>,
    /// Patterns (`.worktreeinclude` syntax) of untracked or ignored files copied from the main
    /// checkout into new worktrees, in addition to those listed in `.worktreeinclude`.
    #[serde(default)]
    pub include: Vec<String>,
    /// A command (argv, no shell) run in each new worktree after checkout.
    #[serde(default)]
    pub setup: Vec<String>,
    /// Ignored files a reused worktree keeps for its next agent (build caches); every other
    /// ignored file (`.env`, notes, secrets) is deleted first. `.worktreeinclude` syntax.
    #[serde(default = "default_reuse_keep")]
    pub reuse_keep: Vec<String>,
    /// A worktree with no commits of its own is *new*, not merged: cleanup keeps it until it is
    /// this old (or `--force`).
    #[serde(default = "default_min_age")]
    pub min_age: HumanDuration,
    /// How many finished worktrees cleanup keeps on disk as spares (under `<root>/.spares/`)
    /// instead of deleting them, for the next create to reuse: only the files that differ are
    /// rewritten, and no inode is freed or allocated (which ext4 without a journal makes slow
    /// right after a cleanup). Only clean worktrees become spares, without their ignored files
    /// except `reuse_keep`; cleanup reports their disk use. Default 8 (a batch's worth); 0
    /// turns spares off. Lower it and run cleanup to free spares.
    #[serde(default = "default_spares")]
    pub spares: usize,
    /// The most disk the spares may use together, in MiB: cleanup frees the oldest beyond it
    /// (and keeps none larger than it). Default 4096.
    #[serde(default = "default_spares_max_mib")]
    pub spares_max_mib: u64,
}

impl Default for WorktreeConfig {
    fn default() -> Self {
        WorktreeConfig {
            root: None,
            branch: default_branch(),
            target: None,
            include: Vec::new(),
            setup: Vec::new(),
            reuse_keep: default_reuse_keep(),
            min_age: default_min_age(),
            spares: default_spares(),
            spares_max_mib: default_spares_max_mib(),
        }
    }
}

fn default_reuse_keep() -> Vec<String> {
    vec!["target/".to_owned(), "node_modules/".to_owned()]
}

fn default_spares() -> usize {
    8
}

fn default_spares_max_mib() -> u64 {
    4096
}

impl WorktreeConfig {
    /// The spares' disk budget in bytes.
    pub fn spares_max_bytes(&self) -> u64 {
        self.spares_max_mib.saturating_mul(1024 * 1024)
    }
}

fn default_min_age() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(3600))
}

fn default_branch() -> String {
    "baton/{plan}/{agent}".to_owned()
}

impl WorktreeConfig {
    /// Check what deserialisation cannot: the branch template and the root.
    pub fn validate(&self) -> Result<()> {
        if !self.branch.contains("{agent}") {
            return Err(WorktreeError::BadConfig {
                field: "branch",
                message: format!(
                    "{:?} must contain {{agent}} so agents get distinct branches",
                    self.branch
                ),
            });
        }
        let probe = self.branch.replace("{plan}", "p").replace("{agent}", "a");
        if !git2::Reference::is_valid_name(&format!("refs/heads/{probe}")) {
            return Err(WorktreeError::BadConfig {
                field: "branch",
                message: format!("{:?} does not make a valid branch name", self.branch),
            });
        }
        self.reuse_keep_set()?;
        Ok(())
    }

    /// The `reuse_keep` patterns, compiled.
    pub fn reuse_keep_set(&self) -> Result<crate::setup::Includes> {
        let pairs: Vec<(String, String)> = self
            .reuse_keep
            .iter()
            .map(|p| ("worktree.reuse_keep".to_owned(), p.clone()))
            .collect();
        crate::setup::Includes::compile(&pairs)
    }

    /// The branch of agent `agent` of plan `plan`.
    pub fn agent_branch(&self, plan: &str, agent: &str) -> String {
        self.branch
            .replace("{plan}", plan)
            .replace("{agent}", agent)
    }

    /// The directory holding worktrees for the main checkout at `main_workdir`.
    pub fn root_for(&self, main_workdir: &Path) -> PathBuf {
        match &self.root {
            Some(r) if r.is_absolute() => r.clone(),
            Some(r) => main_workdir.join(r),
            None => {
                let name = main_workdir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "repo".to_owned());
                main_workdir
                    .parent()
                    .unwrap_or(main_workdir)
                    .join(format!("{name}.baton-worktrees"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_root_is_a_sibling_and_branch_is_baton_plan_agent() {
        let c = WorktreeConfig::default();
        assert_eq!(
            c.root_for(Path::new("/src/app")),
            PathBuf::from("/src/app.baton-worktrees")
        );
        assert_eq!(c.agent_branch("OP-1", "a"), "baton/OP-1/a");
        c.validate().unwrap();
    }

    #[test]
    fn templates_without_agent_or_with_bad_ref_chars_are_rejected() {
        let mut c = WorktreeConfig {
            branch: "agents/{plan}".into(),
            ..WorktreeConfig::default()
        };
        assert!(c.validate().is_err());
        c.branch = "a..b/{agent}".into();
        assert!(c.validate().is_err());
        c.branch = "agents/{agent}".into();
        assert!(c.validate().is_ok());
    }
}
