//! Human output of `baton verify` and `baton report merge`: one line per check, one line per
//! finding, the verdict with totals; `-v` lists the agents compared, `-q` prints only the
//! verdict.

use baton_report::{CheckStatus, Severity, VerifyReport};

use crate::ctx::Ctx;

/// One line per check, one line per finding, then the verdict with totals.
pub(in crate::cmd) fn print_human(ctx: &Ctx, rep: &VerifyReport) {
    let s = &ctx.style;
    // --quiet: only the verdict
    for c in rep.checks.iter().filter(|_| !ctx.quiet) {
        let status = match c.status {
            CheckStatus::Pass => s.green("pass"),
            CheckStatus::Warn => s.yellow("warn"),
            CheckStatus::Fail => s.red("FAIL"),
            CheckStatus::Skip => s.dim("skip"),
            CheckStatus::Error => s.red("ERROR"),
        };
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
            (None, None) if c.findings.is_empty() => "no findings".to_owned(),
            (None, None) => format!("{} finding(s)", c.findings.len()),
        };
        let detail = if c.agents.is_empty() {
            detail
        } else {
            format!("{} agent(s) compared, {detail}", c.agents.len())
        };
        ctx.say(format!(
            "{:<10} {status:<5} {detail} {}",
            s.bold(&c.name),
            s.dim(&format!("({} ms)", c.duration_ms))
        ));
        if ctx.verbose > 0 {
            for a in &c.agents {
                let place = match (&a.branch, &a.worktree) {
                    (Some(b), Some(w)) => format!("branch {b} in {w}"),
                    (Some(b), None) => format!("branch {b}"),
                    (None, Some(w)) => w.clone(),
                    (None, None) => "shared tree".to_owned(),
                };
                ctx.say(format!(
                    "  {} {} ({place}): {} file(s) changed, {} not committed",
                    s.dim("agent"),
                    a.id,
                    a.files.len(),
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
                    .and_then(|m| m.lines().next())
                    .map(|m| format!(": {m}"))
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
        "{verdict}: {} error(s), {} warning(s) in {} ms",
        rep.totals.errors, rep.totals.warnings, rep.duration_ms
    ));
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}
