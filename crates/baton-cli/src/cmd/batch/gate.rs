//! The batch loop's gate as the CLI provides it: `baton_verify::gate::run`, the call `baton
//! verify` makes, over the batch's agents (an explicit list: id, branch, write scope) for
//! the git and conflicts checks, and on the batch's merge commit for the tests. The CLI
//! only reads the environment (`$CARGO`, the cache directory) and shows progress.

use std::path::PathBuf;

use baton_git::RepoPaths;
use baton_plan::GateCheck;
use baton_report::{Check, TestedTree, VerifyReport};
use baton_run::integrate::{Gate, GateRequest};
use baton_verify::VerifyConfig;
use baton_verify::gate::{self, AgentSource, CheckKind, GateOptions, ListedAgent, Mode, TestsTree};

pub struct CliGate {
    pub repo: RepoPaths,
    pub config: VerifyConfig,
    /// The cargo program (from `$CARGO`, read by the CLI).
    pub cargo: PathBuf,
    /// The stable scratch directory merged trees are tested in (shared with `baton verify
    /// --merged`, so builds are incremental).
    pub scratch_dir: PathBuf,
    /// Show the tests' output on stderr.
    pub show_output: bool,
}

/// The gate's notes and the tests' output on stderr, when asked.
struct Stderr(bool);

impl gate::Progress for Stderr {
    fn note(&self, message: &str) {
        if self.0 {
            eprintln!("{message}");
        }
    }
    fn output(&self, line: &str) {
        if self.0 {
            eprintln!("{line}");
        }
    }
}

impl CliGate {
    /// The options every gate call of a batch shares: its base, agents and settings.
    fn options(&self, req: &GateRequest<'_>, checks: Vec<CheckKind>) -> GateOptions {
        let mut opts = GateOptions::new(self.repo.clone());
        // a batch whose tests step ran nothing fails its gate, as `baton verify` does, unless
        // the repository says that is fine (`[verify] allow_no_tests`) or the plan's batch
        // leaves the tests out (`gate = { checks = ["git", "conflicts"] }`)
        opts.config = self.config.clone();
        opts.checks = checks;
        opts.mode = if req.settings.full {
            Mode::Full
        } else {
            Mode::Quick
        };
        opts.base = Some(req.base.to_string());
        opts.agents = AgentSource::List(
            req.agents
                .iter()
                .map(|a| ListedAgent {
                    id: a.id.to_string(),
                    branch: a.branch.clone(),
                    scope: a.scope.clone(),
                    base: a.base.map(|o| o.to_string()),
                })
                .collect(),
        );
        opts.strict = req.settings.strict;
        opts.affected = req.settings.affected;
        opts.scratch_dir = Some(self.scratch_dir.clone());
        opts.cargo = self.cargo.clone();
        opts
    }
}

impl Gate for CliGate {
    fn check(&self, req: &GateRequest<'_>) -> Result<VerifyReport, String> {
        let checks = [
            (GateCheck::Git, CheckKind::Git),
            (GateCheck::Conflicts, CheckKind::Conflicts),
        ]
        .into_iter()
        .filter(|(g, _)| req.settings.runs(*g))
        .map(|(_, k)| k)
        .collect();
        let opts = self.options(req, checks);
        gate::run(&opts, &Stderr(self.show_output)).map_err(|e| e.to_string())
    }

    fn run_tests(
        &self,
        req: &GateRequest<'_>,
        merged: git2::Oid,
    ) -> Result<(Check, Option<TestedTree>), String> {
        let mut opts = self.options(req, vec![CheckKind::Tests]);
        opts.tests_tree = TestsTree::Commit(merged);
        let rep = gate::run(&opts, &Stderr(self.show_output)).map_err(|e| e.to_string())?;
        let tested = rep.tested;
        let check = rep
            .checks
            .into_iter()
            .find(|c| c.name == "tests")
            .ok_or_else(|| "the gate ran no tests check".to_owned())?;
        Ok((check, tested))
    }
}
