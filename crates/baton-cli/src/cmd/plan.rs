//! `baton plan new|validate|show|list|rm|schema`.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use baton_plan::store as plan_store;
use baton_plan::{Plan, PlanId, Severity, Validation, load_plan, validate};
use baton_report::exit;
use clap::{Args, Subcommand};
use serde::Serialize;

use crate::ctx::Ctx;
use crate::error::{CliError, CliResult};
use crate::table::{Align, Cell, Table, count};

#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Write a skeleton plan with a fresh id (--title), or store a plan file (--from).
    New(NewArgs),
    /// Check a plan file without storing it: ids, dependencies, cycles, scopes, commands.
    Validate(ValidateArgs),
    /// Show a stored plan (by id, unique id suffix, or `latest`) or a plan file.
    Show(ShowArgs),
    /// List the stored plans.
    List,
    /// Remove a stored plan and its execution state (worktrees, branches and metrics stay).
    Rm(RmArgs),
    /// Print the JSON Schema of a plan file (for editors: taplo, VS Code, and for checks).
    Schema,
}

/// The version of every `plan … --json` document that is not a plan itself.
pub const PLAN_OUTPUT_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Args)]
pub struct RmArgs {
    /// A plan id, a unique suffix of one, or `latest`.
    plan: String,
    /// Remove it even if its execution is still marked running.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["title", "from"]))]
pub struct NewArgs {
    /// Title of a new skeleton plan.
    #[arg(long)]
    title: Option<String>,
    /// Validate FILE (.toml or .json) and store it under the state directory; prints its id.
    #[arg(long, value_name = "FILE")]
    from: Option<PathBuf>,
    /// Write the skeleton to FILE (refuses to overwrite); without it the skeleton goes to stdout.
    #[arg(short, long, value_name = "FILE", requires = "title")]
    output: Option<PathBuf>,
    /// Refuse to store the plan if validation gives warnings too (errors always refuse).
    #[arg(long, requires = "from")]
    strict: bool,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The plan file (.toml or .json).
    file: PathBuf,
    /// Treat warnings (such as overlapping write scopes) as errors.
    #[arg(long)]
    strict: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A plan id, a unique suffix of one, `latest`, or a path to a plan file.
    plan: String,
}

pub fn run(ctx: &Ctx, command: PlanCommand) -> CliResult {
    match command {
        PlanCommand::New(a) => new(ctx, a),
        PlanCommand::Validate(a) => validate_cmd(ctx, a),
        PlanCommand::Show(a) => show(ctx, a),
        PlanCommand::List => list(ctx),
        PlanCommand::Rm(a) => rm(ctx, a),
        PlanCommand::Schema => {
            ctx.print_json(&baton_plan::schema::plan_schema())?;
            Ok(exit::OK)
        }
    }
}

/// The skeleton `plan new --title` writes: valid as written, every section shown once.
pub fn skeleton(id: &PlanId, title: &str) -> String {
    let title = toml_string(title);
    format!(
        r#"# A baton plan. Check it with `baton plan validate FILE`, store it with `baton plan new --from FILE`.
# Every field: docs/plan.md. For completion and checks in editors (taplo, VS Code):
# `baton plan schema > plan.schema.json`, then make the first line `#:schema ./plan.schema.json`.
schema_version = 1
id = "{id}"
title = {title}

[goal]
summary = "What is true when this plan is done"
success_criteria = ["all tests pass"]

[defaults]
profile = "claude"
timeout = "30m"
idle_timeout = "5m"
retries = 1

# Agent commands are argv: placeholders such as {{prompt}} are filled in element by element,
# never through a shell.
[profiles.claude]
command = ["claude", "-p", "{{prompt}}"]

[[batches]]
id = "B1"
name = "research"
kind = "parallel"

[[batches.agents]]
id = "survey"
task_type = "research"
prompt = "Describe what has to change, and where"
scope = {{ files_write = ["docs/notes.md"] }}

[[batches]]
id = "B2"
name = "implement"
kind = "parallel"
depends_on = ["B1"]

[[batches.agents]]
id = "implement"
task_type = "implement"
prompt = "Make the change described in {{outputs.survey}}"
scope = {{ files_write = ["src/**"] }}
"#
    )
}

fn toml_string(s: &str) -> String {
    // serde_json's string escaping is valid TOML basic-string escaping
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

#[derive(Serialize)]
struct NewOutput<'a> {
    schema_version: u32,
    id: &'a PlanId,
    path: &'a Path,
    stored: bool,
}

fn new(ctx: &Ctx, args: NewArgs) -> CliResult {
    if let Some(file) = args.from {
        let (plan, validation) = load_and_validate(&file)?;
        report_diagnostics(ctx, &file, &validation);
        let errors = validation.errors().count();
        let warnings = validation.warnings().count();
        if errors > 0 || (args.strict && warnings > 0) {
            return Err(CliError::input(format!(
                "{}: not stored: {}{}; fix them and run again",
                file.display(),
                count(errors, "error", "errors"),
                if args.strict && warnings > 0 {
                    format!(
                        " and {} under --strict",
                        count(warnings, "warning", "warnings")
                    )
                } else {
                    String::new()
                }
            )));
        }
        let dir = ctx.state_dir_for_writing()?;
        let stored = plan_store::store_plan(&dir, plan, SystemTime::now())?;
        // store_plan always sets the id
        let id = stored.id.as_ref().expect("stored plans have ids");
        let path = dir.plan(id.as_str());
        if ctx.json {
            ctx.print_json(&NewOutput {
                schema_version: PLAN_OUTPUT_SCHEMA_VERSION,
                id,
                path: &path,
                stored: true,
            })?;
        } else {
            ctx.say(id.as_str());
            ctx.note(format!("stored {}", path.display()));
        }
        return Ok(exit::OK);
    }
    // clap's ArgGroup makes one of --title/--from required
    let title = args.title.unwrap_or_default();
    if title.trim().is_empty() {
        return Err(CliError::input("--title is empty; give the plan a title"));
    }
    let id = PlanId::generate(SystemTime::now())
        .map_err(|e| CliError::env(format!("cannot generate a plan id: {e}")))?;
    let text = skeleton(&id, &title);
    match args.output.as_deref().filter(|p| *p != Path::new("-")) {
        None => {
            if ctx.json {
                ctx.print_json(&serde_json::json!({
                    "schema_version": PLAN_OUTPUT_SCHEMA_VERSION,
                    "id": id,
                    "toml": text,
                }))?;
            } else {
                print!("{text}");
                ctx.note(format!(
                    "plan {id}: save it (`-o FILE` writes it for you), edit it, then `baton plan new --from FILE`"
                ));
            }
        }
        Some(path) => {
            write_new_file(path, &text)?;
            if ctx.json {
                ctx.print_json(&NewOutput {
                    schema_version: PLAN_OUTPUT_SCHEMA_VERSION,
                    id: &id,
                    path,
                    stored: false,
                })?;
            } else {
                ctx.say(id.as_str());
                ctx.note(format!(
                    "wrote {}; edit it, then `baton plan new --from {}`",
                    path.display(),
                    path.display()
                ));
            }
        }
    }
    Ok(exit::OK)
}

fn write_new_file(path: &Path, text: &str) -> CliResult<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => CliError::input(format!(
                "{} already exists; choose another --output",
                path.display()
            )),
            _ => CliError::env(format!("cannot create {}: {e}", path.display())),
        })?;
    file.write_all(text.as_bytes())
        .map_err(|e| CliError::env(format!("cannot write {}: {e}", path.display())))
}

/// Parse a plan file and validate it. A file that does not parse is an error (exit 2).
pub fn load_and_validate(file: &Path) -> CliResult<(Plan, Validation)> {
    let plan = load_plan(file)?;
    let validation = validate(&plan);
    Ok((plan, validation))
}

/// Warnings and errors, one line each on stderr, naming the file.
fn report_diagnostics(ctx: &Ctx, file: &Path, validation: &Validation) {
    for d in &validation.diagnostics {
        let label = match d.severity {
            Severity::Error => ctx.err_style.red("error:"),
            Severity::Warning => ctx.err_style.yellow("warning:"),
        };
        eprintln!("{label} {}: {d} [{}]", file.display(), d.code);
    }
}

#[derive(Serialize)]
struct ValidateOutput<'a> {
    schema_version: u32,
    file: &'a Path,
    ok: bool,
    errors: usize,
    warnings: usize,
    diagnostics: &'a [baton_plan::Diagnostic],
    levels: &'a [Vec<baton_plan::BatchId>],
}

fn validate_cmd(ctx: &Ctx, args: ValidateArgs) -> CliResult {
    let plan = match load_plan(&args.file) {
        Ok(p) => p,
        Err(e) => {
            if ctx.json {
                ctx.print_json(&serde_json::json!({
                    "schema_version": PLAN_OUTPUT_SCHEMA_VERSION,
                    "file": args.file, "ok": false, "errors": 1, "warnings": 0,
                    "diagnostics": [{"severity": "error", "code": "syntax", "subject": "file", "message": e.to_string()}],
                    "levels": [],
                }))?;
            }
            return Err(e.into());
        }
    };
    let validation = validate(&plan);
    let errors = validation.errors().count();
    let warnings = validation.warnings().count();
    let ok = errors == 0 && !(args.strict && warnings > 0);
    report_diagnostics(ctx, &args.file, &validation);
    if ctx.json {
        ctx.print_json(&ValidateOutput {
            schema_version: PLAN_OUTPUT_SCHEMA_VERSION,
            file: &args.file,
            ok,
            errors,
            warnings,
            diagnostics: &validation.diagnostics,
            levels: &validation.levels,
        })?;
    } else if ok {
        let agents = plan.agents().count();
        ctx.say(format!(
            "{}: {} — {}, {}{}",
            args.file.display(),
            ctx.style.green("valid"),
            count(plan.batches.len(), "batch", "batches"),
            count(agents, "agent", "agents"),
            if warnings > 0 {
                format!(", {}", count(warnings, "warning", "warnings"))
            } else {
                String::new()
            }
        ));
        ctx.say(format!("levels: {}", format_levels(&validation.levels)));
    }
    if ok {
        Ok(exit::OK)
    } else {
        Err(CliError::input(format!(
            "{}: invalid plan: {}, {}{}",
            args.file.display(),
            count(errors, "error", "errors"),
            count(warnings, "warning", "warnings"),
            if errors == 0 { " (--strict)" } else { "" }
        )))
    }
}

/// `[B1] -> [B2, B3] -> [B4]`
pub fn format_levels(levels: &[Vec<baton_plan::BatchId>]) -> String {
    levels
        .iter()
        .map(|l| {
            format!(
                "[{}]",
                l.iter().map(|b| b.as_str()).collect::<Vec<_>>().join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// A stored plan by id/suffix/`latest`, or a plan file when `given` names an existing file.
pub fn resolve_plan(ctx: &Ctx, given: &str) -> CliResult<Plan> {
    let as_path = Path::new(given);
    if baton_plan::load::Format::from_path(as_path).is_some() && as_path.is_file() {
        return Ok(load_plan(as_path)?);
    }
    let dir = ctx.state_dir()?;
    let id = plan_store::resolve_plan_id(&dir, given)?;
    Ok(plan_store::load_stored(&dir, &id)?)
}

fn show(ctx: &Ctx, args: ShowArgs) -> CliResult {
    let plan = resolve_plan(ctx, &args.plan)?;
    if ctx.json {
        ctx.print_json(&plan)?;
        return Ok(exit::OK);
    }
    let s = &ctx.style;
    let id = plan.id.as_ref().map_or("(not stored)", PlanId::as_str);
    ctx.say(format!("{} {}", s.bold(id), plan.title));
    if !plan.goal.summary.is_empty() {
        ctx.say(format!("goal: {}", plan.goal.summary));
    }
    for c in &plan.goal.success_criteria {
        ctx.say(format!("  - {c}"));
    }
    let validation = validate(&plan);
    if !validation.levels.is_empty() {
        ctx.say(format!("levels: {}", format_levels(&validation.levels)));
    }
    for batch in &plan.batches {
        let after = if batch.depends_on.is_empty() {
            String::new()
        } else {
            format!(
                " after {}",
                batch
                    .depends_on
                    .iter()
                    .map(|b| b.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let kind = match batch.kind {
            baton_plan::BatchKind::Parallel => "parallel",
            baton_plan::BatchKind::Sequential => "sequential",
        };
        ctx.say(format!(
            "{} {} ({kind}){after}",
            s.cyan(batch.id.as_str()),
            batch.name
        ));
        for agent in &batch.agents {
            let writes = if agent.scope.files_write.is_empty() {
                String::new()
            } else {
                format!(" writes {}", agent.scope.files_write.join(", "))
            };
            ctx.say(format!(
                "  {} [{}]{writes}",
                agent.id,
                agent.task_type.as_str()
            ));
            if ctx.verbose > 0 && !agent.prompt.is_empty() {
                ctx.say(format!("    {}", s.dim(&agent.prompt)));
            }
        }
    }
    for d in &validation.diagnostics {
        ctx.warn(format!("{d} [{}]", d.code));
    }
    Ok(exit::OK)
}

#[derive(Serialize)]
struct ListEntry {
    id: PlanId,
    title: String,
    batches: usize,
    agents: usize,
    created_at: Option<String>,
    execution: Option<baton_plan::Status>,
}

fn list(ctx: &Ctx) -> CliResult {
    let dir = ctx.state_dir()?;
    let mut entries = Vec::new();
    for id in plan_store::list_ids(&dir)? {
        let plan = plan_store::load_stored(&dir, &id)?;
        let exec_path = dir.execution(id.as_str());
        let execution = if exec_path.exists() {
            Some(baton_store::read_versioned::<baton_plan::Execution>(&exec_path)?.status)
        } else {
            None
        };
        entries.push(ListEntry {
            batches: plan.batches.len(),
            agents: plan.agents().count(),
            title: plan.title,
            created_at: plan.created_at,
            execution,
            id,
        });
    }
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "schema_version": PLAN_OUTPUT_SCHEMA_VERSION,
            "plans": entries,
        }))?;
        return Ok(exit::OK);
    }
    if entries.is_empty() {
        ctx.say("no plans stored yet; write one with `baton plan new --title T -o plan.toml`, edit it, and store it with `baton plan new --from plan.toml`");
        return Ok(exit::OK);
    }
    let mut table = Table::new([
        ("ID", Align::Left),
        ("EXECUTION", Align::Left),
        ("BATCHES", Align::Right),
        ("AGENTS", Align::Right),
        ("TITLE", Align::Left),
    ]);
    for e in entries {
        table.row([
            Cell::plain(e.id.to_string()),
            Cell::plain(e.execution.map_or("not run", |s| s.as_str())),
            Cell::plain(e.batches.to_string()),
            Cell::plain(e.agents.to_string()),
            Cell::plain(e.title),
        ]);
    }
    for line in table.render(&ctx.style) {
        ctx.say(line);
    }
    Ok(exit::OK)
}

fn rm(ctx: &Ctx, args: RmArgs) -> CliResult {
    let dir = ctx.state_dir()?;
    let id = plan_store::resolve_plan_id(&dir, &args.plan)?;
    let removed = plan_store::remove_plan(&dir, &id, args.force)?;
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "schema_version": PLAN_OUTPUT_SCHEMA_VERSION,
            "id": id,
            "removed_plan": removed.plan,
            "removed_execution": removed.execution,
        }))?;
    } else {
        ctx.say(format!(
            "removed plan {id}{}",
            if removed.execution.is_some() {
                " and its execution state"
            } else {
                ""
            }
        ));
    }
    Ok(exit::OK)
}
