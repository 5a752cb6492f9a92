//! `baton report merge REPORT...`: combine the JSON reports of CI shards into one;
//! `baton report schema`: the JSON Schema of a verify report.

use std::path::PathBuf;

use baton_report::{VerifyReport, exit};
use baton_verify::report::merge_reports;
use clap::Subcommand;

use crate::ctx::Ctx;
use crate::error::{CliError, CliResult};

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Combine shard reports (from `verify --partition … --report FILE`) into one.
    Merge {
        /// The shard reports.
        #[arg(required = true, value_name = "REPORT")]
        reports: Vec<PathBuf>,
        /// Also write the combined report to FILE.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Print the JSON Schema of the verify report (`verify --json`, `--report FILE`).
    Schema,
    /// Draw a run's timeline as one self-contained HTML file (or a Chrome trace for Perfetto).
    Html(super::report_html::ReportHtmlArgs),
}

pub fn run(ctx: &Ctx, cmd: ReportCommand) -> CliResult {
    let (reports, output) = match cmd {
        ReportCommand::Merge { reports, output } => (reports, output),
        ReportCommand::Schema => {
            ctx.print_json(&schemars::schema_for!(VerifyReport))?;
            return Ok(exit::OK);
        }
        ReportCommand::Html(a) => return super::report_html::run(ctx, a),
    };
    let mut loaded = Vec::new();
    for path in reports {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| CliError::input(format!("report {}: {e}", path.display())))?;
        let report: VerifyReport = serde_json::from_str(&text).map_err(|e| {
            CliError::input(format!(
                "report {}: not a baton verify report: {e}",
                path.display()
            ))
        })?;
        loaded.push((path, report));
    }
    let merged = merge_reports(loaded)?;
    if let Some(out) = &output {
        let mut text = serde_json::to_vec_pretty(&merged)
            .map_err(|e| CliError::env(format!("cannot serialize the report: {e}")))?;
        text.push(b'\n');
        baton_store::write_atomic(out, &text)?;
    }
    if ctx.json {
        ctx.print_json(&merged)?;
    } else {
        super::verify::print_human(ctx, &merged);
    }
    Ok(if merged.ok {
        exit::OK
    } else {
        exit::GATE_FAILED
    })
}
