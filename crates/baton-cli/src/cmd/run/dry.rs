//! `baton run --dry-run` on a terminal: levels, what runs together, and each agent's argv,
//! directory and branch (`--json` prints the `Preview` itself).

use baton_run::preview::Preview;

use crate::ctx::Ctx;
use crate::error::CliResult;

pub fn print_preview(ctx: &Ctx, p: &Preview, why: &str) -> CliResult<()> {
    if ctx.json {
        return ctx.print_json(p);
    }
    let s = &ctx.style;
    ctx.say(format!(
        "{} — dry run: nothing runs; up to {} agent(s) at once ({why})",
        s.bold(p.plan.as_str()),
        p.max_parallel
    ));
    ctx.say(format!(
        "levels: {}",
        crate::cmd::plan::format_levels(&p.levels)
    ));
    for (i, level) in p.levels.iter().enumerate() {
        ctx.say(format!(
            "level {i}: {} run together",
            level
                .iter()
                .map(|b| b.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for b in &p.batches {
        let kind = match b.kind {
            baton_plan::BatchKind::Parallel => "parallel",
            baton_plan::BatchKind::Sequential => "sequential, one at a time",
        };
        let deps = if b.depends_on.is_empty() {
            String::new()
        } else {
            format!(
                ", after {}",
                b.depends_on
                    .iter()
                    .map(|d| d.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        ctx.say(format!("{} ({kind}{deps})", s.bold(b.id.as_str())));
        for a in &b.agents {
            ctx.say(format!(
                "  {} argv: {}",
                s.bold(a.id.as_str()),
                quote(&a.argv)
            ));
            match &a.branch {
                Some(br) => ctx.say(format!("    worktree {} on {br}", a.cwd.display())),
                None => ctx.say(format!("    shared checkout {}", a.cwd.display())),
            }
            if !a.serialised_with.is_empty() {
                ctx.say(format!(
                    "    serialised with {} (overlapping write scopes)",
                    a.serialised_with
                        .iter()
                        .map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// argv shown so each element is visible (JSON string quoting); it is never run by a shell.
fn quote(argv: &[String]) -> String {
    argv.iter()
        .map(|a| serde_json::to_string(a).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" ")
}
