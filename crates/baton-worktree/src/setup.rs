//! Optional setup of a new worktree: copy untracked or ignored files of the main checkout that
//! match `.worktreeinclude`-style patterns (`.env`, `config/*.local`), then run a setup
//! command (argv, no shell) in the worktree.
//!
//! Pattern syntax (one per line, `#` comments): a pattern without `/` matches a name at any
//! depth; with a `/` it is anchored at the repository root; a trailing `/` is allowed; `*`,
//! `?`, `**` and `[...]` are globs. Negation (`!`) is not supported and is an error.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use git2::{Repository, StatusOptions};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::errors::{Result, WorktreeError};

pub const INCLUDE_FILE: &str = ".worktreeinclude";

/// The compiled include patterns.
#[derive(Debug, Clone)]
pub struct Includes {
    set: GlobSet,
    count: usize,
}

impl Includes {
    /// Patterns from `<main>/.worktreeinclude` (if present) plus `extra` (from the config).
    pub fn load(main_workdir: &Path, extra: &[String]) -> Result<Includes> {
        let file = main_workdir.join(INCLUDE_FILE);
        let mut patterns: Vec<(String, String)> = extra
            .iter()
            .map(|p| ("worktree.include".to_owned(), p.clone()))
            .collect();
        match std::fs::read_to_string(&file) {
            Ok(text) => patterns.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(|l| (INCLUDE_FILE.to_owned(), l.to_owned())),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(WorktreeError::io("read", file)(e)),
        }
        Includes::compile(&patterns)
    }

    /// Compile `(source file, pattern)` pairs.
    pub fn compile(patterns: &[(String, String)]) -> Result<Includes> {
        let mut builder = GlobSetBuilder::new();
        for (source_file, pattern) in patterns {
            let bad = |message: String| WorktreeError::BadPattern {
                source_file: source_file.clone(),
                pattern: pattern.clone(),
                message,
            };
            if pattern.starts_with('!') {
                return Err(bad("negated patterns are not supported".to_owned()));
            }
            let trimmed = pattern.trim_end_matches('/');
            let glob = match trimmed.strip_prefix('/') {
                Some(anchored) => anchored.to_owned(),
                None if trimmed.contains('/') => trimmed.to_owned(),
                None => format!("**/{trimmed}"),
            };
            let compiled = GlobBuilder::new(&glob)
                .literal_separator(true)
                .build()
                .map_err(|e| bad(e.kind().to_string()))?;
            builder.add(compiled);
        }
        let set = builder.build().map_err(|e| WorktreeError::BadPattern {
            source_file: INCLUDE_FILE.to_owned(),
            pattern: String::new(),
            message: e.to_string(),
        })?;
        Ok(Includes {
            set,
            count: patterns.len(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Does the relative, `/`-separated `path` (a trailing `/` is ignored) match a pattern?
    pub fn is_match(&self, path: &str) -> bool {
        self.set.is_match(path.trim_end_matches('/'))
    }

    /// Untracked and ignored paths of the main checkout that match (relative, `/`-separated;
    /// a directory matches as a whole). Ignored directories are not descended into, so a
    /// large `target/` costs nothing unless a pattern names it.
    pub fn matching(&self, main: &Repository) -> Result<Vec<String>> {
        if self.is_empty() {
            return Ok(Vec::new());
        }
        let mut opts = StatusOptions::new();
        opts.include_untracked(true)
            .recurse_untracked_dirs(true)
            .include_ignored(true)
            .recurse_ignored_dirs(false)
            .exclude_submodules(true);
        let statuses = main.statuses(Some(&mut opts)).map_err(WorktreeError::git(
            "list untracked files of the main checkout",
        ))?;
        let mut out = Vec::new();
        for s in statuses.iter() {
            let st = s.status();
            if !(st.contains(git2::Status::WT_NEW) || st.contains(git2::Status::IGNORED)) {
                continue;
            }
            let Some(path) = s.path() else { continue };
            if self.set.is_match(path.trim_end_matches('/')) {
                out.push(path.trim_end_matches('/').to_owned());
            }
        }
        out.sort();
        Ok(out)
    }
}

/// An include file a new worktree did not get, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NotCopied {
    pub path: String,
    pub why: String,
}

/// Copy `paths` (relative) from `from` to `to`, directories recursively, symlinks as symlinks.
/// Never writes through a symlink or over what the checkout wrote: a path the new worktree
/// already has, or one under a symlink or a file of the checkout (a base can make `config` a
/// link to anywhere), is skipped and returned with the reason.
pub fn copy_paths(from: &Path, to: &Path, paths: &[String]) -> Result<Vec<NotCopied>> {
    let mut skipped = Vec::new();
    'paths: for rel in paths {
        // the directories above it inside `to`: real directories, made here if missing
        let mut dir = to.to_path_buf();
        let rel_path = Path::new(rel);
        let parents: Vec<_> = rel_path
            .parent()
            .map(|p| p.components().collect())
            .unwrap_or_default();
        for c in parents {
            dir.push(c);
            match dir.symlink_metadata() {
                Ok(m) if m.is_dir() => {}
                Ok(m) => {
                    let what = if m.file_type().is_symlink() {
                        "a symlink"
                    } else {
                        "a file"
                    };
                    let at = dir.strip_prefix(to).unwrap_or(&dir).display().to_string();
                    skipped.push(NotCopied {
                        path: rel.clone(),
                        why: format!(
                            "the checkout has {what} at {at}; nothing is written through it"
                        ),
                    });
                    continue 'paths;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::create_dir(&dir).map_err(WorktreeError::io("create", &dir))?;
                }
                Err(e) => return Err(WorktreeError::io("read", &dir)(e)),
            }
        }
        copy_any(&from.join(rel), &to.join(rel), rel, &mut skipped)?;
    }
    Ok(skipped)
}

/// Copy `src` to `dst`, whose parent is a real directory; what `dst` already is stays.
fn copy_any(src: &Path, dst: &Path, rel: &str, skipped: &mut Vec<NotCopied>) -> Result<()> {
    let meta = std::fs::symlink_metadata(src).map_err(WorktreeError::io("read", src))?;
    match dst.symlink_metadata() {
        Ok(d) if meta.is_dir() && d.is_dir() => {
            // a directory the checkout made: add what it lacks
            return copy_children(src, dst, rel, skipped);
        }
        Ok(_) => {
            skipped.push(NotCopied {
                path: rel.to_owned(),
                why: "the checkout already has it".to_owned(),
            });
            return Ok(());
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(WorktreeError::io("read", dst)(e)),
    }
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(src).map_err(WorktreeError::io("read", src))?;
        std::os::unix::fs::symlink(target, dst).map_err(WorktreeError::io("create", dst))?;
    } else if meta.is_dir() {
        std::fs::create_dir(dst).map_err(WorktreeError::io("create", dst))?;
        copy_children(src, dst, rel, skipped)?;
    } else {
        // a new file only (`dst` was just seen missing): never through a symlink
        let mut input = std::fs::File::open(src).map_err(WorktreeError::io("read", src))?;
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(meta.permissions().mode() & 0o7777)
            .open(dst)
            .map_err(WorktreeError::io("create", dst))?;
        std::io::copy(&mut input, &mut out).map_err(WorktreeError::io("copy", src))?;
    }
    Ok(())
}

fn copy_children(src: &Path, dst: &Path, rel: &str, skipped: &mut Vec<NotCopied>) -> Result<()> {
    for item in std::fs::read_dir(src).map_err(WorktreeError::io("read", src))? {
        let item = item.map_err(WorktreeError::io("read", src))?;
        let name = item.file_name();
        let child_rel = format!("{rel}/{}", name.to_string_lossy());
        copy_any(&item.path(), &dst.join(&name), &child_rel, skipped)?;
    }
    Ok(())
}

/// Run the setup command in `dir`; its output is returned, a failure is an error with it.
pub fn run_setup(argv: &[String], dir: &Path) -> Result<String> {
    let Some((program, args)) = argv.split_first() else {
        return Ok(String::new());
    };
    let fail = |message: String| WorktreeError::Setup {
        argv: argv.to_vec(),
        dir: dir.to_owned(),
        message,
    };
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| fail(e.to_string()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        // the last line that says something; none when the command printed nothing
        match text.lines().rev().map(str::trim).find(|l| !l.is_empty()) {
            Some(last) => Err(fail(format!("{}: {last}", out.status))),
            None => Err(fail(format!("{} (it printed nothing)", out.status))),
        }
    }
}

/// A path inside `root` for a relative name, refusing `..` and absolute names.
pub fn inside(root: &Path, rel: &Path) -> Option<PathBuf> {
    let safe = rel
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    (safe && !rel.as_os_str().is_empty()).then(|| root.join(rel))
}
