//! `baton plan new|validate|show|list`.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use baton_plan::store as plan_store;
use baton_plan::{Plan, PlanId, Severity, Validation, load_plan, validate};
use baton_report::exit;
use clap::{Args, Subcommand};
use serde::Serialize;

use crate::ctx::Ctx;
use crate::error::{CliError, CliResult};

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
    /// Where to write the skeleton (default `<plan-id>.toml` in the current directory; `-` for stdout).
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
    }
}

/// The skeleton `plan new --title` writes: valid as written, every section shown once.
pub fn skeleton(id: &PlanId, title: &str) -> String {
    let title = toml_string(title);
    format!(
        r#"# A baton plan. Check it with `baton plan validate FILE`, store it with `baton plan new --from FILE`.
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
                "{}: not stored: {errors} error(s){}; fix them and run again",
                file.display(),
                if args.strict && warnings > 0 {
                    format!(" and {warnings} warning(s) under --strict")
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
    match args.output.as_deref() {
        Some(p) if p == Path::new("-") => {
            if ctx.json {
                ctx.print_json(&serde_json::json!({ "id": id, "toml": text }))?;
            } else {
                print!("{text}");
            }
        }
        out => {
            let path = out
                .map(Path::to_owned)
                .unwrap_or_else(|| PathBuf::from(format!("{id}.toml")));
            write_new_file(&path, &text)?;
            if ctx.json {
                ctx.print_json(&NewOutput {
                    id: &id,
                    path: &path,
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
            "{}: {} — {} batch(es), {} agent(s){}",
            args.file.display(),
            ctx.style.green("valid"),
            plan.batches.len(),
            agents,
            if warnings > 0 {
                format!(", {warnings} warning(s)")
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
            "{}: invalid plan: {errors} error(s), {warnings} warning(s){}",
            args.file.display(),
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
        ctx.print_json(&entries)?;
        return Ok(exit::OK);
    }
    if entries.is_empty() {
        ctx.say("no plans stored yet; create one with `baton plan new --title T` and store it with `baton plan new --from FILE`");
        return Ok(exit::OK);
    }
    for e in entries {
        ctx.say(format!(
            "{}  {:<10}  {:>2} batches  {:>3} agents  {}",
            e.id,
            e.execution.map_or("not run", |s| s.as_str()),
            e.batches,
            e.agents,
            e.title
        ));
    }
    Ok(exit::OK)
}
