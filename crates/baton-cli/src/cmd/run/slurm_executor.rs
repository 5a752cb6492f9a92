//! `baton run` on Slurm: the `[executor]` settings of the config with the plan's on top, the
//! `--executor` flag over both, checked and tried (`sbatch --test-only`) before anything is
//! written or submitted.

use std::path::Path;

use baton_plan::Plan;
use baton_plan::executor::ExecutorKind;
use baton_run::ExecError;
use baton_slurm::{Slurm, SlurmExecutor};

use crate::cmd::verify::shards::ExecutorArg;
use crate::ctx::Ctx;
use crate::error::{CliError, CliResult};

/// A Slurm executor ready to run, with the scratch directory its job script lives in (the
/// script is sent to the controller at each `sbatch`, so it never needs to be on a shared
/// filesystem).
pub struct Prepared {
    pub executor: SlurmExecutor,
    /// Keep it as long as the executor: dropping it removes the script.
    pub scratch: tempfile::TempDir,
}

/// `None` for the local executor.
pub fn prepare(
    ctx: &Ctx,
    plan: &Plan,
    flag: Option<ExecutorArg>,
    worktree_root: &Path,
) -> CliResult<Option<Prepared>> {
    let config = ctx.config()?.executor.clone();
    let settings = match &plan.executor {
        Some(p) => config.overlay(p),
        None => config,
    };
    let kind = flag.map_or(settings.kind(), ExecutorKind::from);
    if kind == ExecutorKind::Local {
        return Ok(None);
    }
    let slurm = Slurm::default();
    if !slurm.answers() {
        return Err(CliError::env(
            "--executor slurm: no Slurm controller answers `sinfo`; check the cluster (or SLURM_CONF), or try one here with `cargo xtask slurm up`",
        ));
    }
    if let Ok(nodes) = slurm.node_count()
        && let Some(w) = baton_slurm::fs::shared_fs_warning(worktree_root, nodes)
    {
        ctx.warn(w);
    }
    let scratch = tempfile::Builder::new()
        .prefix("baton-slurm-")
        .tempdir()
        .map_err(|e| CliError::env(format!("cannot create a scratch directory: {e}")))?;
    let executor = SlurmExecutor::new(slurm, settings, scratch.path()).map_err(exec_err)?;
    let agents: Vec<&str> = plan.agents().map(|(_, a)| a.id.as_str()).collect();
    let root = worktree_root
        .ancestors()
        .find(|p| p.is_dir())
        .unwrap_or(Path::new("/"));
    executor.preflight(agents, root).map_err(exec_err)?;
    Ok(Some(Prepared { executor, scratch }))
}

fn exec_err(e: ExecError) -> CliError {
    match e {
        ExecError::Config(m) => CliError::input(format!("[executor]: {m}")),
        e => CliError::env(format!("slurm: {e}")),
    }
}
