//! `baton logs PLAN AGENT [--follow]`: the output of an agent's attempt.

use std::io::Write;
use std::path::PathBuf;

use baton_plan::store as plan_store;
use baton_plan::{AgentId, Execution};
use baton_report::exit;
use clap::Args;

use crate::ctx::Ctx;
use crate::error::{CliError, CliResult};

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// A plan id, a unique suffix of one, or `latest`.
    plan: String,
    /// The agent's id.
    agent: String,
    /// Which attempt (default: the latest).
    #[arg(long, value_name = "N")]
    attempt: Option<u32>,
    /// Keep printing as the agent writes, until its attempt ends.
    #[arg(short, long)]
    follow: bool,
}

pub fn run(ctx: &Ctx, args: LogsArgs) -> CliResult {
    let dir = ctx.state_dir()?;
    let id = plan_store::resolve_plan_id(&dir, &args.plan)?;
    let plan = plan_store::load_stored(&dir, &id)?;
    let agent = AgentId::new(args.agent.clone())
        .map_err(|e| CliError::input(format!("agent {:?}: {e}", args.agent)))?;
    if plan.agent(&agent).is_none() {
        return Err(CliError::input(format!(
            "plan {id} has no agent {agent}; `baton plan show {id}` lists them"
        )));
    }
    let exec_path = dir.execution(id.as_str());
    let latest = if exec_path.exists() {
        let exec: Execution = baton_store::read_versioned(&exec_path)?;
        exec.batches
            .iter()
            .flat_map(|b| &b.agents)
            .find(|a| a.id == agent)
            .map_or(0, |a| a.attempt)
    } else {
        0
    };
    let attempt = args.attempt.unwrap_or(latest);
    if attempt == 0 {
        return Err(CliError::input(format!(
            "agent {agent} of plan {id} has not started yet; no log"
        )));
    }
    let log: PathBuf = dir.agent_log(id.as_str(), agent.as_str(), attempt);
    if !log.exists() {
        return Err(CliError::input(format!(
            "no log for attempt {attempt} of agent {agent} ({} does not exist)",
            log.display()
        )));
    }
    let mut out = std::io::stdout().lock();
    let mut sink = |bytes: &[u8]| {
        out.write_all(bytes)?;
        out.flush()
    };
    let result = if args.follow {
        baton_run::follow::follow(&log, &mut sink)
    } else {
        std::fs::read(&log).and_then(|b| sink(&b))
    };
    match result {
        Ok(()) => Ok(exit::OK),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(exit::OK),
        Err(e) => Err(CliError::env(format!("cannot read {}: {e}", log.display()))),
    }
}
