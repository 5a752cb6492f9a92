//! `baton worktree list`: the table (or JSON) of every worktree's state.

use std::time::SystemTime;

use baton_report::exit;
use baton_worktree::Worktrees;

use super::ListArgs;
use crate::ctx::Ctx;
use crate::error::CliResult;

pub fn run(ctx: &Ctx, wt: &Worktrees, a: ListArgs) -> CliResult {
    let listing = baton_worktree::list(wt, a.target.as_deref(), SystemTime::now())?;
    if ctx.json {
        ctx.print_json(&listing)?;
        return Ok(exit::OK);
    }
    let s = &ctx.style;
    ctx.say(s.dim(&format!(
        "{:<20} {:<28} {:<10} {:<9} {:<14} {:>7} {:<14} {:>6}  PATH",
        "NAME", "BRANCH", "HEAD", "CHANGES", "MERGED", "+/-", "LOCK", "AGE"
    )));
    for w in &listing.worktrees {
        let name = w.name.clone().unwrap_or_else(|| "(main)".into());
        let branch = w.branch.clone().unwrap_or_else(|| "(detached)".into());
        let head = w
            .head
            .as_deref()
            .map_or("-", |h| &h[..h.len().min(10)])
            .to_owned();
        let changes = match (w.exists, w.dirty) {
            (false, _) => s.red("missing"),
            (true, None) => s.red("unknown"),
            (true, Some(d)) if d.is_clean() => s.green("clean"),
            (true, Some(d)) => s.yellow(&format!("{}M {}U", d.modified, d.untracked)),
        };
        let merged = match w.merge {
            Some(m) if m.is_integrated() => s.green(m.as_str()),
            Some(m) => s.yellow(m.as_str()),
            None => "-".into(),
        };
        let ab = match (w.ahead, w.behind) {
            (Some(x), Some(y)) => format!("+{x}/-{y}"),
            _ => "-".into(),
        };
        let lock = match (&w.owner, w.locked) {
            (Some(o), _) if w.owner_alive => s.cyan(&format!("pid {} live", o.pid)),
            (Some(o), _) => format!("pid {} dead", o.pid),
            (None, true) => s.yellow("locked"),
            (None, false) => "-".into(),
        };
        let age = w.age_secs.map_or("-".into(), short_age);
        let prunable = if w.prunable { " (prunable)" } else { "" };
        ctx.say(format!(
            "{:<20} {:<28} {:<10} {:<9} {:<14} {:>7} {:<14} {:>6}  {}{prunable}",
            name,
            branch,
            head,
            pad(&changes, 9),
            pad(&merged, 14),
            ab,
            pad(&lock, 14),
            age,
            w.path.display()
        ));
    }
    Ok(exit::OK)
}

/// Pad a possibly coloured cell to `width` visible characters.
fn pad(cell: &str, width: usize) -> String {
    let visible = strip_ansi(cell).chars().count();
    format!("{cell}{}", " ".repeat(width.saturating_sub(visible)))
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut in_escape = false;
    for c in s.chars() {
        match (in_escape, c) {
            (false, '\u{1b}') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}

fn short_age(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}
