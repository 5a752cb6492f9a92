//! The conflicts check: every file written by two or more agents, per pair, classified by a
//! real three-way merge computed in memory; writes outside declared scopes; writes into the
//! main checkout while agents work in worktrees.
//!
//! Agents' changes are computed in parallel (one repository per thread): committed changes
//! are tree diffs from the merge base, then the worktree's status on top. Only files touched
//! by two or more agents are merged. Nothing is written to the repository.

use std::collections::BTreeMap;

use baton_git::changes::{Content, FileChange, line_changes};
use baton_git::merge::{ConflictKind, MergeOutcome, Merger, Side, is_link};
use baton_git::text_merge::HunkCache;
use baton_git::{GitError, RepoPaths};
use baton_plan::glob::ScopeMatcher;
use baton_report::{AgentChanges, Finding, Overlap, Severity};
use rayon::prelude::*;

use crate::agents::AgentSpec;
use crate::errors::AgentsError;
use crate::findings::finding;
use crate::pairs::{AgentFiles, Meeting, Pair, pairs};

/// One agent with what it changed.
#[derive(Debug, Clone)]
pub struct AgentLine {
    pub spec: AgentSpec,
    /// The merge base of its tip with the base commit.
    pub merge_base: Option<git2::Oid>,
    pub files: AgentFiles,
    /// Committed files with conflict markers: `(path, first lines of blocks)`.
    pub committed_markers: Vec<(String, Vec<u32>)>,
    /// Directories it renamed (old -> new), as git's merge detects them.
    pub dir_renames: BTreeMap<String, String>,
}

/// What the conflicts check found.
#[derive(Debug, Clone)]
pub struct ConflictsOutcome {
    pub findings: Vec<Finding>,
    pub lines: Vec<AgentLine>,
}

impl ConflictsOutcome {
    /// The per-agent summary for the report.
    pub fn agent_summaries(&self) -> Vec<AgentChanges> {
        self.lines
            .iter()
            .map(|l| {
                let (files, uncommitted) = match &l.files {
                    AgentFiles::Line(m) => (
                        m.keys().cloned().collect(),
                        m.values().filter(|c| c.uncommitted).count() as u64,
                    ),
                    AgentFiles::Declared(v) => (v.clone(), 0),
                };
                AgentChanges {
                    id: l.spec.id.clone(),
                    branch: l.spec.branch.clone(),
                    worktree: l.spec.worktree.as_ref().map(|p| p.display().to_string()),
                    merge_base: l.merge_base.map(|o| o.to_string()),
                    files,
                    uncommitted,
                }
            })
            .collect()
    }
}

/// Run the conflicts check for `agents` against the commit `base`.
pub fn check_conflicts(
    repo: &RepoPaths,
    base: git2::Oid,
    agents: Vec<AgentSpec>,
) -> Result<ConflictsOutcome, AgentsError> {
    let matchers = scope_matchers(&agents)?;
    let lines: Vec<Result<AgentLine, GitError>> = agents
        .into_par_iter()
        .map_init(
            || repo.open(),
            |r, spec| match r {
                Ok(r) => agent_line(r, base, spec),
                Err(e) => Err(GitError::Again(e.to_string())),
            },
        )
        .collect();
    let lines: Vec<AgentLine> = lines.into_iter().collect::<Result<_, _>>()?;
    let files: Vec<AgentFiles> = lines.iter().map(|l| l.files.clone()).collect();
    let mut work = pairs(&files);
    let renames: Vec<BTreeMap<String, String>> =
        lines.iter().map(|l| l.dir_renames.clone()).collect();
    work.extend(crate::pairs::dir_rename_pairs(&files, &renames));

    // the ancestor of each pair of lines that meet on a file: their own merge base
    let mut ancestors: BTreeMap<(usize, usize), Option<git2::Oid>> = BTreeMap::new();
    {
        let r = repo.open()?;
        for p in &work {
            ancestors.entry((p.a, p.b)).or_insert_with(|| {
                match (lines[p.a].spec.tip, lines[p.b].spec.tip) {
                    (Some(x), Some(y)) => r.merge_base(x, y).ok(),
                    _ => lines[p.a].merge_base.or(lines[p.b].merge_base),
                }
            });
        }
    }
    // one merger (an open repository with its in-memory store) per chunk of work, a few
    // chunks per thread: opening one per rayon split would cost more than small merges
    let chunk = work.len().div_ceil(rayon::current_num_threads() * 4).max(1);
    // each agent's diff of a file against an ancestor is the same in every pair it is in:
    // computed once, shared by all mergers
    let hunks = std::sync::Arc::new(HunkCache::default());
    let classified: Vec<Result<Vec<Finding>, GitError>> = work
        .par_chunks(chunk)
        .map(|pairs| {
            let merger = Merger::open(repo)?.with_hunk_cache(hunks.clone());
            pairs
                .iter()
                .map(|pair| classify(&merger, pair, &lines, ancestors[&(pair.a, pair.b)]))
                .collect()
        })
        .collect();
    let mut findings: Vec<Finding> = Vec::with_capacity(work.len());
    for part in classified {
        findings.extend(part?);
    }
    findings.extend(crate::writes::scope_violations(&lines, &matchers));
    findings.extend(crate::writes::committed_markers(&lines));
    if lines.iter().any(|l| l.spec.worktree.is_some()) {
        findings.extend(crate::writes::main_checkout_writes(repo, &lines)?);
    }
    crate::findings::sort(&mut findings);
    Ok(ConflictsOutcome { findings, lines })
}

fn scope_matchers(agents: &[AgentSpec]) -> Result<Vec<Option<ScopeMatcher>>, AgentsError> {
    agents
        .iter()
        .map(|a| {
            let Some(globs) = &a.scope else {
                return Ok(None);
            };
            for g in globs {
                baton_plan::glob::compile(g).map_err(|e| AgentsError::BadScope {
                    agent: a.id.clone(),
                    glob: g.clone(),
                    reason: e.kind().to_string(),
                })?;
            }
            ScopeMatcher::new(globs)
                .map(Some)
                .map_err(|e| AgentsError::BadScope {
                    agent: a.id.clone(),
                    glob: e.glob().unwrap_or_default().to_owned(),
                    reason: e.kind().to_string(),
                })
        })
        .collect()
}

fn agent_line(
    repo: &git2::Repository,
    base: git2::Oid,
    spec: AgentSpec,
) -> Result<AgentLine, GitError> {
    if let Some(files) = &spec.declared_files {
        return Ok(AgentLine {
            files: AgentFiles::Declared(files.clone()),
            merge_base: None,
            committed_markers: Vec::new(),
            dir_renames: BTreeMap::new(),
            spec,
        });
    }
    let merge_base = match spec.base {
        Some(own) => Some(own),
        None => spec.tip.and_then(|t| repo.merge_base(base, t).ok()),
    };
    let changes = line_changes(repo, merge_base, spec.tip, spec.worktree.as_deref())?;
    // committed content only: the git check scans the worktrees
    let mut committed_markers = Vec::new();
    for c in changes.values() {
        let (Some(Content::Blob { oid, .. }), Some(dest)) = (&c.content, &c.dest) else {
            continue;
        };
        let Ok(blob) = repo.find_blob(*oid) else {
            continue;
        };
        if blob.size() as u64 <= crate::markers::MAX_SCAN_BYTES {
            let found = crate::markers::conflict_blocks(blob.content());
            if !found.is_empty() {
                committed_markers.push((dest.clone(), found));
            }
        }
    }
    let base_tree = merge_base
        .map(|b| repo.find_commit(b).and_then(|c| c.tree()))
        .transpose()
        .map_err(GitError::git("read the merge base's tree"))?;
    let dir_renames = baton_git::renames::dir_renames(repo, base_tree.as_ref(), &changes);
    drop(base_tree);
    Ok(AgentLine {
        files: AgentFiles::Line(changes),
        merge_base,
        committed_markers,
        dir_renames,
        spec,
    })
}

fn change<'l>(lines: &'l [AgentLine], agent: usize, key: &str) -> Option<&'l FileChange> {
    match &lines[agent].files {
        AgentFiles::Line(m) => m.get(key),
        AgentFiles::Declared(_) => None,
    }
}

fn classify(
    merger: &Merger,
    pair: &Pair,
    lines: &[AgentLine],
    ancestor: Option<git2::Oid>,
) -> Result<Finding, GitError> {
    let (ida, idb) = (&lines[pair.a].spec.id, &lines[pair.b].spec.id);
    let side = |c: Option<&FileChange>| -> Result<Option<Side>, GitError> {
        c.and_then(|c| c.content.as_ref())
            .map(|content| merger.side(content))
            .transpose()
    };
    // every path of the pair's changes, for readers matching findings to paths
    let mut touched: Vec<String> = vec![pair.path.clone()];
    let (overlap, detail): (Option<Overlap>, String) = match &pair.meeting {
        Meeting::FileDirectory { file_by_a, inside } => {
            let (file_id, dir_id) = if *file_by_a { (ida, idb) } else { (idb, ida) };
            touched.push(inside.clone());
            (
                Some(Overlap::Conflict),
                format!(
                    "merging them conflicts: {} (file/directory: {file_id} wrote a file here, {dir_id} wrote {inside} inside a directory of the same name)",
                    ConflictKind::FileDirectory.describe()
                ),
            )
        }
        Meeting::DirectoryRename {
            renamed_by_a,
            added,
        } => {
            let (ren, add) = if *renamed_by_a {
                (ida, idb)
            } else {
                (idb, ida)
            };
            touched.push(added.clone());
            (
                Some(Overlap::Conflict),
                format!(
                    "merging them conflicts: {add} added {added} inside a directory {ren} renamed, so it would move here (git reports the file's location as a conflict)"
                ),
            )
        }
        Meeting::SharedTree => (
            None,
            "both wrote it in the shared tree, so one may have overwritten the other".to_owned(),
        ),
        Meeting::SameDest { key_a, key_b } => {
            let ca = change(lines, pair.a, key_a);
            let cb = change(lines, pair.b, key_b);
            let how = |k: &str, c: Option<&FileChange>| match c {
                Some(c) if c.is_rename() => format!("renamed from {k}"),
                _ => "added".to_owned(),
            };
            for (k, c) in [(key_a, ca), (key_b, cb)] {
                if c.is_some_and(FileChange::is_rename) {
                    touched.push(k.clone());
                }
            }
            // both added it: two-way; one renamed a file onto it: that file's base version
            // is the ancestor, as in git's rename/add handling
            let renamed_from = [(key_a, ca), (key_b, cb)]
                .into_iter()
                .filter(|(_, c)| c.is_some_and(FileChange::is_rename))
                .map(|(k, _)| k)
                .collect::<Vec<_>>();
            let ancestor_side = match (renamed_from.as_slice(), ancestor) {
                ([k], Some(oid)) => {
                    let tree = merger
                        .repo()
                        .find_commit(oid)
                        .and_then(|c| c.tree())
                        .map_err(GitError::git(format!("read the tree of {oid}")))?;
                    merger.side_in_tree(&tree, k)
                }
                _ => None,
            };
            let outcome = if renamed_from.len() == 2 {
                // two files renamed onto one path (rename/rename 2-to-1): only identical
                // results merge
                if side(ca)? == side(cb)? {
                    MergeOutcome::Clean(side(ca)?)
                } else {
                    MergeOutcome::Conflict(ConflictKind::AddAdd)
                }
            } else {
                merger.verdict(&pair.path, ancestor_side, side(ca)?, side(cb)?)?
            };
            let what = format!("{ida} {}, {idb} {}", how(key_a, ca), how(key_b, cb));
            match outcome {
                MergeOutcome::Clean(_) => (
                    Some(Overlap::Clean),
                    format!("{what}, with identical content"),
                ),
                MergeOutcome::Conflict(_) => (
                    Some(Overlap::Conflict),
                    format!("{what}: {}", ConflictKind::AddAdd.describe()),
                ),
            }
        }
        Meeting::SameFile => {
            let ca = change(lines, pair.a, &pair.path);
            let cb = change(lines, pair.b, &pair.path);
            let dest = |c: Option<&FileChange>| c.and_then(|c| c.dest.clone());
            let renamed = |c: Option<&FileChange>| c.is_some_and(FileChange::is_rename);
            let (da, db) = (dest(ca), dest(cb));
            touched.extend(da.iter().chain(db.iter()).cloned());
            let base_side = match ancestor {
                Some(oid) => {
                    let tree = merger
                        .repo()
                        .find_commit(oid)
                        .and_then(|c| c.tree())
                        .map_err(GitError::git(format!("read the tree of {oid}")))?;
                    merger.side_in_tree(&tree, &pair.path)
                }
                None => None,
            };
            let (sa, sb) = (side(ca)?, side(cb)?);
            // a file made a symlink (or back) is not followed by the other side's rename:
            // git keeps it at the old path and the rename loses its source
            let type_changed = |s: Option<Side>| matches!((s, base_side), (Some(s), Some(b)) if is_link(s.mode) != is_link(b.mode));
            let pre = if renamed(ca) && renamed(cb) && da != db {
                Some(ConflictKind::RenameRename)
            } else if (renamed(ca) && db.is_none())
                || (renamed(cb) && da.is_none())
                || (renamed(ca) && !renamed(cb) && type_changed(sb))
                || (renamed(cb) && !renamed(ca) && type_changed(sa))
            {
                Some(ConflictKind::RenameDelete)
            } else {
                None
            };
            let outcome = match pre {
                Some(k) => MergeOutcome::Conflict(k),
                None => merger.verdict(&pair.path, base_side, sa, sb)?,
            };
            let mut notes = Vec::new();
            for (id, c) in [(ida, ca), (idb, cb)] {
                if let Some(c) = c {
                    if let Some(d) = c.dest.as_deref().filter(|d| *d != pair.path) {
                        notes.push(format!("{id} renamed it to {d}"));
                    } else if c.dest.is_none() {
                        notes.push(format!("{id} deleted it"));
                    }
                    if c.uncommitted {
                        notes.push(format!("{id}'s change is not committed"));
                    }
                }
            }
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join("; "))
            };
            match outcome {
                MergeOutcome::Clean(_) => (
                    Some(Overlap::Clean),
                    format!("both changed it; the changes merge cleanly{notes}"),
                ),
                MergeOutcome::Conflict(k) => (
                    Some(Overlap::Conflict),
                    format!("merging them conflicts: {}{notes}", k.describe()),
                ),
            }
        }
    };
    let severity = match overlap {
        Some(Overlap::Clean) => Severity::Warning,
        _ => Severity::Error,
    };
    let mut agents = vec![ida.clone(), idb.clone()];
    agents.sort();
    let mut f = finding(
        "multi_writer",
        severity,
        format!(
            "{}: written by {} and {}: {detail}",
            pair.path, agents[0], agents[1]
        ),
    );
    f.path = Some(pair.path.clone());
    touched.sort();
    touched.dedup();
    if touched.len() > 1 {
        f.paths = touched;
    }
    f.agents = agents;
    f.overlap = overlap;
    Ok(f)
}
