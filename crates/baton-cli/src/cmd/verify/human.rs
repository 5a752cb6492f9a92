//! Human output of `baton verify` and `baton report merge`: one line per check, one line per
//! finding, the verdict with totals; `-v` lists the agents compared, `-q` prints only the
//! verdict.

use baton_report::{CheckStatus, Severity, VerifyReport};

use crate::ctx::Ctx;
use crate::table::{Align, Cell, Paint, Table, count};

/// One line per check, one line per finding, then the verdict with totals.
pub(in crate::cmd) fn print_human(ctx: &Ctx, rep: &VerifyReport) {
    let s = &ctx.style;
    // one aligned row per check (padded before colouring); findings go under their check
    let mut table = Table::headless([Align::Left, Align::Left, Align::Left, Align::Right]);
    for c in &rep.checks {
        let status = match c.status {
            CheckStatus::Pass => Cell::new("pass", Paint::Green),
            CheckStatus::Warn => Cell::new("warn", Paint::Yellow),
            CheckStatus::Fail => Cell::new("FAIL", Paint::Red),
            CheckStatus::Skip => Cell::new("skip", Paint::Dim),
            CheckStatus::Error => Cell::new("ERROR", Paint::Red),
        };
        let shown = c
            .findings
            .iter()
            .filter(|f| f.severity != Severity::Info || ctx.verbose > 0)
            .count();
        let hidden = c.findings.len() - shown;
        let detail = match (&c.tests, &c.message) {
            (Some(t), _) if !t.counted => format!(
                "`{}` {} (exit code {}; one check, no per-test counts without [verify] junit)",
                t.command.join(" "),
                if t.exit_code == Some(0) {
                    "passed"
                } else {
                    "failed"
                },
                t.exit_code.map_or("none".to_owned(), |c| c.to_string())
            ),
            (Some(t), _) => format!(
                "{} passed, {} failed, {} skipped",
                t.passed, t.failed, t.skipped
            ),
            (None, Some(m)) => m.clone(),
            (None, None) if shown == 0 => "no findings".to_owned(),
            (None, None) => count(shown, "finding", "findings"),
        };
        let detail = if hidden > 0 {
            format!(
                "{detail} ({} hidden; -v shows them)",
                count(hidden, "info", "infos")
            )
        } else {
            detail
        };
        let detail = if c.agents.is_empty() {
            detail
        } else {
            format!(
                "{} compared, {detail}",
                count(c.agents.len(), "agent", "agents")
            )
        };
        table.row([
            Cell::new(c.name.as_str(), Paint::Bold),
            status,
            Cell::plain(detail),
            Cell::new(format!("{} ms", c.duration_ms), Paint::Dim),
        ]);
    }
    let rows = table.render(s);
    // --quiet: only the verdict
    for (c, row) in rep.checks.iter().zip(rows).filter(|_| !ctx.quiet) {
        ctx.say(row);
        if ctx.verbose > 0 {
            for a in &c.agents {
                let place = match (&a.branch, &a.worktree) {
                    (Some(b), Some(w)) => format!("branch {b} in {w}"),
                    (Some(b), None) => format!("branch {b}"),
                    (None, Some(w)) => w.clone(),
                    (None, None) => "shared tree".to_owned(),
                };
                ctx.say(format!(
                    "  {} {} ({place}): {} changed, {} not committed",
                    s.dim("agent"),
                    a.id,
                    count(a.files.len(), "file", "files"),
                    a.uncommitted
                ));
            }
        }
        for f in &c.findings {
            if f.severity == Severity::Info && ctx.verbose == 0 {
                continue;
            }
            let sev = match f.severity {
                Severity::Error => s.red("error"),
                Severity::Warning => s.yellow("warning"),
                Severity::Info => s.dim("info"),
            };
            ctx.say(format!("  {sev} {}: {}", s.cyan(&f.code), f.message));
        }
        if let Some(t) = &c.tests {
            for fail in &t.failures {
                let place = match (&fail.file, fail.line) {
                    (Some(f), Some(l)) => format!(" at {f}:{l}"),
                    (Some(f), None) => format!(" at {f}"),
                    _ => String::new(),
                };
                let why = fail
                    .message
                    .as_deref()
                    .and_then(|m| m.lines().find(|l| !l.trim().is_empty()))
                    .map(|m| format!(": {}", m.trim()))
                    .unwrap_or_default();
                ctx.say(format!("  {} {}{place}{why}", s.red("failed"), fail.name));
            }
        }
        if c.name == "tests"
            && let Some(t) = &rep.tested
        {
            let what = match (t.kind.as_str(), &t.tree, &t.commit) {
                ("merged", Some(tree), Some(base)) => format!(
                    "the merged result of {} (tree {}, on {})",
                    if t.agents.is_empty() {
                        "the agents".to_owned()
                    } else {
                        t.agents.join(", ")
                    },
                    short(tree),
                    short(base)
                ),
                (_, _, Some(commit)) => format!(
                    "the checkout at {}{}",
                    short(commit),
                    if t.uncommitted {
                        " with its uncommitted changes"
                    } else {
                        ""
                    }
                ),
                _ => "the checkout".to_owned(),
            };
            let kept = if t.kept { " (kept)" } else { "" };
            ctx.say(format!("  {} {what} in {}{kept}", s.dim("tested"), t.dir));
        }
    }
    if !rep.shards.is_empty() && !ctx.quiet {
        ctx.say(format!(
            "{} {} shards: {}",
            s.dim("combined"),
            rep.shards.len(),
            rep.shards.join(", ")
        ));
    }
    let verdict = if rep.ok {
        s.green("verify passed")
    } else {
        // name the checks that failed: a failing test run has no findings to count
        let failed: Vec<&str> = rep
            .checks
            .iter()
            .filter(|c| matches!(c.status, CheckStatus::Fail | CheckStatus::Error))
            .map(|c| c.name.as_str())
            .collect();
        if failed.is_empty() {
            s.red("verify FAILED")
        } else {
            s.red(&format!("verify FAILED ({})", failed.join(", ")))
        }
    };
    ctx.say(format!(
        "{verdict}: {}, {} in {} ms",
        count(rep.totals.errors as usize, "error", "errors"),
        count(rep.totals.warnings as usize, "warning", "warnings"),
        rep.duration_ms
    ));
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}
