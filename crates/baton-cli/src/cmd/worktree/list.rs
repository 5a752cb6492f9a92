//! `baton worktree list`: the table (or JSON) of every worktree's state.

use std::time::SystemTime;

use baton_report::exit;
use baton_worktree::Worktrees;

use super::ListArgs;
use crate::ctx::Ctx;
use crate::error::CliResult;
use crate::table::{Align, Cell, Paint, Table};

pub fn run(ctx: &Ctx, wt: &Worktrees, a: ListArgs) -> CliResult {
    let listing = baton_worktree::list(wt, a.target.as_deref(), SystemTime::now())?;
    if ctx.json {
        ctx.print_versioned(super::WORKTREE_OUTPUT_SCHEMA_VERSION, &listing)?;
        return Ok(exit::OK);
    }
    let mut table = Table::new([
        ("NAME", Align::Left),
        ("BRANCH", Align::Left),
        ("HEAD", Align::Left),
        ("CHANGES", Align::Left),
        ("MERGED", Align::Left),
        ("COMMITS", Align::Left),
        ("OWNER", Align::Left),
        ("AGE", Align::Right),
        ("PATH", Align::Left),
    ]);
    for w in &listing.worktrees {
        let name = w.name.clone().unwrap_or_else(|| "(main)".into());
        let branch = w.branch.clone().unwrap_or_else(|| "(detached)".into());
        let head = w.head.as_deref().map_or("-", |h| &h[..h.len().min(10)]);
        let changes = match (w.exists, w.dirty) {
            (false, _) => Cell::new("missing", Paint::Red),
            (true, None) => Cell::new("unknown", Paint::Red),
            (true, Some(d)) if d.is_clean() => Cell::new("clean", Paint::Green),
            (true, Some(d)) => Cell::new(changes_text(d.modified, d.untracked), Paint::Yellow),
        };
        let merged = match w.merge {
            Some(m) if m.is_integrated() => Cell::new(m.as_str(), Paint::Green),
            Some(m) => Cell::new(m.as_str(), Paint::Yellow),
            None => Cell::plain("-"),
        };
        let vs_target = match (w.ahead, w.behind) {
            (Some(a), Some(b)) => ahead_behind(a, b),
            _ => "-".into(),
        };
        let owner = match (&w.owner, w.locked) {
            (Some(o), _) if w.owner_alive => Cell::new(format!("pid {} live", o.pid), Paint::Cyan),
            (Some(o), _) => Cell::plain(format!("pid {} dead", o.pid)),
            (None, true) => Cell::new("locked", Paint::Yellow),
            (None, false) => Cell::plain("-"),
        };
        let age = w.age_secs.map_or("-".into(), short_age);
        let prunable = if w.prunable { " (prunable)" } else { "" };
        table.row([
            Cell::plain(name),
            Cell::plain(branch),
            Cell::plain(head),
            changes,
            merged,
            Cell::plain(vs_target),
            owner,
            Cell::plain(age),
            Cell::plain(format!("{}{prunable}", w.path.display())),
        ]);
    }
    for line in table.render(&ctx.style) {
        ctx.say(line);
    }
    Ok(exit::OK)
}

/// `2 modified, 1 untracked` (only the non-zero parts).
pub fn changes_text(modified: usize, untracked: usize) -> String {
    let mut parts = Vec::new();
    if modified > 0 {
        parts.push(format!("{modified} modified"));
    }
    if untracked > 0 {
        parts.push(format!("{untracked} untracked"));
    }
    parts.join(", ")
}

/// Commits ahead of and behind the target: `2 ahead, 1 behind`, `even`.
pub fn ahead_behind(ahead: usize, behind: usize) -> String {
    match (ahead, behind) {
        (0, 0) => "even".into(),
        (a, 0) => format!("{a} ahead"),
        (0, b) => format!("{b} behind"),
        (a, b) => format!("{a} ahead, {b} behind"),
    }
}

fn short_age(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}
