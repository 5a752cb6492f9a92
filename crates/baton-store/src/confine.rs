//! State files are never reached through a symlink below the state directory.
//!
//! [`crate::StateDir::open`] refuses a state directory that is (or sits under) a symlink, and
//! the names it knows at the top (`plans/`, `metrics.jsonl`, …). But baton writes deeper too:
//! `cache/`, `shards/`, `executions/<plan>/logs/<agent>/`, a commit record per agent. A
//! repository that commits `.baton/cache -> /elsewhere` (or any such link at any depth) would
//! make a plain `create_dir_all` + write land wherever the link points.
//!
//! So every state root a process opens is registered here ([`confine_to`]), and every write
//! primitive of this crate — atomic rewrites, new files, appends, locks — and
//! [`create_dir_all`], which the other crates use for directories under the state dir, first
//! walks the path from the root down: a symlink or a non-directory on the way is refused
//! ([`StoreError::Symlink`], [`StoreError::NotADirectory`]), a missing directory is made one
//! level at a time and looked at again. The last name itself is never followed either: files
//! are created exclusively, renamed over (which replaces a link, never writes through it), or
//! opened with `O_NOFOLLOW`. Paths outside every registered root are left as they are (a
//! report the user asked for at a path of their choosing).
//!
//! A process that writes state without opening a [`crate::StateDir`] (an attempt's
//! supervisor) registers the root it is given.

use std::path::{Component, Path, PathBuf};
use std::sync::RwLock;

use crate::StoreError;

static ROOTS: RwLock<Vec<PathBuf>> = RwLock::new(Vec::new());

/// Confine this process's writes below `root` to real directories (see the module doc).
pub fn confine_to(root: &Path) {
    let mut roots = ROOTS.write().unwrap_or_else(|e| e.into_inner());
    if !roots.iter().any(|r| r == root) {
        roots.push(root.to_owned());
    }
}

/// The registered state root `path` lies under, if any (the longest, should roots nest).
pub fn root_of(path: &Path) -> Option<PathBuf> {
    let roots = ROOTS.read().unwrap_or_else(|e| e.into_inner());
    roots
        .iter()
        .filter(|r| path.starts_with(r))
        .max_by_key(|r| r.as_os_str().len())
        .cloned()
}

/// Make the directory `dir` (and its missing parents). Below a registered state root, every
/// level is checked: a symlink or a file on the way is refused, nothing is made through it.
pub fn create_dir_all(dir: &Path) -> Result<(), StoreError> {
    match root_of(dir) {
        Some(root) => walk(&root, dir, true),
        None => {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::io("create directory", dir, e))
        }
    }
}

/// Make the directory that will hold the file `path`, as [`create_dir_all`] does.
pub fn create_parent_dirs(path: &Path) -> Result<(), StoreError> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => create_dir_all(p),
        _ => Ok(()),
    }
}

/// Check, without making anything, that the directories from the registered root down to
/// `path`'s parent that exist are real directories. A missing one ends the walk (nothing
/// deeper exists to follow).
pub fn check_parent_dirs(path: &Path) -> Result<(), StoreError> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    match root_of(parent) {
        Some(root) => walk(&root, parent, false),
        None => Ok(()),
    }
}

/// [`check_parent_dirs`], and `path` itself is not a symlink either: for a file another
/// program will open by name (a Slurm job's log), where `O_NOFOLLOW` is not baton's to set.
pub fn check_no_links(path: &Path) -> Result<(), StoreError> {
    check_parent_dirs(path)?;
    if root_of(path).is_some() && matches!(kind(path)?, Kind::Link) {
        return Err(StoreError::Symlink {
            path: path.to_owned(),
        });
    }
    Ok(())
}

fn walk(root: &Path, dir: &Path, make: bool) -> Result<(), StoreError> {
    let rel = dir.strip_prefix(root).unwrap_or(Path::new(""));
    let mut at = root.to_owned();
    for part in rel.components() {
        match part {
            Component::Normal(name) => at.push(name),
            Component::CurDir => continue,
            // `..` or an absolute part could climb out of the root: refuse it as a link would be
            _ => {
                return Err(StoreError::Symlink {
                    path: at.join(part),
                });
            }
        }
        match kind(&at)? {
            Kind::Dir => {}
            Kind::Link => return Err(StoreError::Symlink { path: at }),
            Kind::Other => return Err(StoreError::NotADirectory { path: at }),
            Kind::Missing if !make => return Ok(()),
            Kind::Missing => match std::fs::create_dir(&at) {
                Ok(()) => {}
                // someone else made it meanwhile: look at what they made
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match kind(&at)? {
                    Kind::Dir => {}
                    Kind::Link => return Err(StoreError::Symlink { path: at }),
                    _ => return Err(StoreError::NotADirectory { path: at }),
                },
                Err(e) => return Err(StoreError::io("create directory", &at, e)),
            },
        }
    }
    Ok(())
}

enum Kind {
    Dir,
    Link,
    Other,
    Missing,
}

fn kind(path: &Path) -> Result<Kind, StoreError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Ok(Kind::Link),
        Ok(m) if m.is_dir() => Ok(Kind::Dir),
        Ok(_) => Ok(Kind::Other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Kind::Missing),
        Err(e) => Err(StoreError::io("look at", path, e)),
    }
}

/// Open `path` for appending (created if missing) without following a symlink at its name,
/// after [`create_parent_dirs`]. For logs and JSON-lines files under the state dir.
pub fn open_append(path: &Path, read: bool) -> Result<std::fs::File, StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    create_parent_dirs(path)?;
    std::fs::OpenOptions::new()
        .create(true)
        .read(read)
        .append(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| link_or_io("open", path, e))
}

/// An open refused with `ELOOP` under `O_NOFOLLOW` means the name is a symlink.
pub(crate) fn link_or_io(action: &'static str, path: &Path, e: std::io::Error) -> StoreError {
    if e.raw_os_error() == Some(libc::ELOOP) {
        StoreError::Symlink {
            path: path.to_owned(),
        }
    } else {
        StoreError::io(action, path, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_or_a_file_below_a_root_is_refused_at_any_depth_and_nothing_is_made_through_it() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("state");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(root.join("executions/p1/logs")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("cache")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("executions/p1/logs/a1")).unwrap();
        std::fs::write(root.join("shards"), "a file").unwrap();
        confine_to(&root);

        for (dir, link) in [
            (root.join("cache/agents"), true),
            (root.join("executions/p1/logs/a1"), true),
            (root.join("executions/p1/logs/a1/deeper"), true),
            (root.join("shards/1"), false),
            (root.join("x/../cache/y"), true),
        ] {
            match create_dir_all(&dir) {
                Err(StoreError::Symlink { .. }) if link => {}
                Err(StoreError::NotADirectory { .. }) if !link => {}
                other => panic!("{}: {other:?}", dir.display()),
            }
        }
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);

        // a log that is a link is never opened through it
        std::fs::create_dir_all(root.join("executions/p1/logs/a2")).unwrap();
        let log = root.join("executions/p1/logs/a2/1.log");
        std::os::unix::fs::symlink(outside.join("victim"), &log).unwrap();
        assert!(matches!(
            open_append(&log, false),
            Err(StoreError::Symlink { .. })
        ));
        assert!(!outside.join("victim").exists());
        assert!(matches!(
            check_no_links(&log),
            Err(StoreError::Symlink { .. })
        ));
        check_no_links(&root.join("executions/p1/logs/a2/2.log")).unwrap();

        // real directories are made, one level at a time, and reused
        create_dir_all(&root.join("executions/p2/logs/a1")).unwrap();
        create_dir_all(&root.join("executions/p2/logs/a1")).unwrap();
        assert!(root.join("executions/p2/logs/a1").is_dir());
        // outside every root nothing is checked
        let free = t.path().join("free/a/b");
        create_dir_all(&free).unwrap();
        assert!(free.is_dir());
    }
}
