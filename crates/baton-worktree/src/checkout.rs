//! Filling new worktrees with the files of a commit, and writing their index.
//!
//! Several worktrees of the same commit are filled together: the tree is walked once, each
//! blob is read (inflated) once and written to every worktree, in parallel over files, and each
//! index is built from the tree plus the stat data of the files just written. This plain copy
//! is only right when git would not transform content, so a repository with attributes
//! (`.gitattributes`, `info/attributes`, `core.attributesFile`, the user's or the system's
//! attributes file), line-ending settings, a
//! sparse checkout, or a name that is not UTF-8 or looks like `.git` on another file system
//! falls back to libgit2's checkout, one worktree per thread. A name git refuses (`.`, `..`,
//! `.git`, a `/` inside a name) is refused before anything is written.

use std::fs::Metadata;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use git2::build::CheckoutBuilder;
use git2::{FileMode, ObjectType, Oid, Repository, TreeWalkMode, TreeWalkResult};
use rayon::prelude::*;

use crate::errors::{Result, WorktreeError};
use crate::place;

/// One entry of the tree to write.
struct File {
    path: String,
    oid: Oid,
    mode: i32,
}

/// Check out `commit` into each of the empty worktrees `paths` (their HEAD already names their
/// branch). Returns the number of files written per worktree. `progress`, if given, counts the
/// files written so far, over all worktrees.
pub fn populate_many(paths: &[&Path], commit: Oid, progress: Option<&AtomicU64>) -> Result<usize> {
    populate_many_with(paths, commit, progress, &|p| place::Stager::new(p)).map(|(n, _)| n)
}

/// [`populate_many`] with the stagers `stager` makes; also returns how many stage directories
/// the worktrees needed in all.
fn populate_many_with(
    paths: &[&Path],
    commit: Oid,
    progress: Option<&AtomicU64>,
    stager: &(dyn Fn(&Path) -> place::Stager + Sync),
) -> Result<(usize, usize)> {
    let advance = |n: usize| {
        if let Some(p) = progress {
            p.fetch_add(n as u64, Ordering::Relaxed);
        }
    };
    let Some(first) = paths.first() else {
        return Ok((0, 0));
    };
    let repo = open(first)?;
    let tree = repo
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(WorktreeError::git(format!("read the tree of {commit}")))?;
    let Walked {
        dirs,
        files,
        gitlinks,
        plain,
    } = walk(&tree)?;
    if !plain || !plain_config(&repo) {
        return paths
            .par_iter()
            .map(|p| populate(p, commit).inspect(|&n| advance(n)))
            .collect::<Result<Vec<_>>>()
            .map(|v| (v.first().copied().unwrap_or(0), 0));
    }
    paths.par_iter().try_for_each(|root| {
        dirs.iter().try_for_each(|d| {
            let p = root.join(d);
            std::fs::create_dir_all(&p).map_err(WorktreeError::io("create", p))
        })
    })?;
    // where each worktree's files are created: in it, or through a stage when its own block
    // groups turn out slow (see `place`)
    let stagers: Vec<place::Stager> = paths.iter().map(|p| stager(p)).collect();
    let common = repo.commondir().to_owned();
    drop(tree);
    drop(repo);
    // Chunks of files that sit together in the tree: each chunk's blobs are read once, then
    // written worktree by worktree, so each worktree's directories are filled in order (far
    // less filesystem metadata churn than interleaving eight trees file by file).
    // stats[file][worktree]
    let stats: Vec<Vec<Metadata>> = files
        .par_chunks(256)
        .map_init(
            || Repository::open(&common),
            |repo, chunk| -> Result<Vec<Vec<Metadata>>> {
                let repo = repo.as_ref().map_err(|e| {
                    WorktreeError::git("open the repository")(git2::Error::from_str(e.message()))
                })?;
                let odb = repo
                    .odb()
                    .map_err(WorktreeError::git("open the object database"))?;
                let blobs = chunk
                    .iter()
                    .map(|f| {
                        odb.read(f.oid)
                            .map(|o| o.data().to_vec())
                            .map_err(WorktreeError::git(format!("read {} ({})", f.path, f.oid)))
                    })
                    .collect::<Result<Vec<Vec<u8>>>>()?;
                let mut out: Vec<Vec<Metadata>> = (0..chunk.len())
                    .map(|_| Vec::with_capacity(paths.len()))
                    .collect();
                for (root, stager) in paths.iter().zip(&stagers) {
                    let (used, stage) = stager.current();
                    let cpu = place::thread_cpu();
                    let mut bytes = 0;
                    for ((f, data), st) in chunk.iter().zip(&blobs).zip(out.iter_mut()) {
                        let meta = stager
                            .create(
                                stage.as_deref(),
                                &f.path,
                                |p| write_one(p, f.mode, data),
                                |p| std::fs::symlink_metadata(p),
                            )
                            .map_err(WorktreeError::io("create", root.join(&f.path)))?;
                        st.push(meta);
                        bytes += data.len();
                    }
                    stager.observe(used, place::thread_cpu() - cpu, chunk.len(), bytes);
                    advance(chunk.len());
                }
                Ok(out)
            },
        )
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    let stages = stagers.iter().map(place::Stager::made).sum();
    for s in &stagers {
        s.finish();
    }
    paths.par_iter().enumerate().try_for_each(|(w, root)| {
        let admin = open(root)?.path().to_owned();
        let mut entries: Vec<baton_git::index_file::NewEntry<'_>> = files
            .iter()
            .zip(&stats)
            .map(|(f, st)| baton_git::index_file::NewEntry {
                path: f.path.as_bytes(),
                oid: f.oid,
                mode: f.mode as u32,
                stat: Some(&st[w]),
            })
            .chain(gitlinks.iter().map(|g| baton_git::index_file::NewEntry {
                path: g.path.as_bytes(),
                oid: g.oid,
                mode: g.mode as u32,
                stat: None,
            }))
            .collect();
        let index = admin.join("index");
        baton_git::index_file::write(&index, &mut entries)
            .map_err(WorktreeError::io("write the index", index))
    })?;
    Ok((files.len(), stages))
}

/// Create the directories from `root` down to the parent of the new worktree `path`, and mark
/// each one this call creates as the top of a directory hierarchy (ext4's `T` attribute, what
/// `chattr +T` sets), so the filesystem places each new worktree in a block group of its own
/// instead of beside its siblings. Without it every worktree of a plan lands in the groups of
/// the previous batch, whose inodes cleanup has just freed, and on ext4 without a journal
/// each new inode then skips every recently freed one, one inode-table lookup each: creating
/// 4 worktrees of 3k files after a cleanup took seconds of kernel time. Directories that
/// existed before are left as they are; a filesystem without the attribute ignores the hint.
pub fn make_parents(root: &Path, path: &Path) -> Result<()> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    let Ok(rel) = parent.strip_prefix(root) else {
        return Ok(());
    };
    if let Some(above) = root.parent() {
        std::fs::create_dir_all(above).map_err(WorktreeError::io("create", above))?;
    }
    let mut dir = root.to_owned();
    let mut dirs = vec![dir.clone()];
    for c in rel.components() {
        dir.push(c);
        dirs.push(dir.clone());
    }
    for d in dirs {
        match std::fs::create_dir(&d) {
            Ok(()) => mark_top_dir(&d),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(WorktreeError::io("create", d)(e)),
        }
    }
    Ok(())
}

/// Set the `T` (top of directory hierarchy) attribute; a hint, so failure is ignored.
fn mark_top_dir(dir: &Path) {
    use rustix::fs::{IFlags, Mode, OFlags, ioctl_getflags, ioctl_setflags};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let Ok(fd) = rustix::fs::open(dir, flags, Mode::empty()) else {
        return;
    };
    if let Ok(old) = ioctl_getflags(&fd)
        && !old.contains(IFlags::TOPDIR)
    {
        let _ = ioctl_setflags(&fd, old | IFlags::TOPDIR);
    }
}

fn open(path: &Path) -> Result<Repository> {
    Repository::open(path).map_err(WorktreeError::git(format!(
        "open the worktree {}",
        path.display()
    )))
}

/// What a checkout of a tree writes.
struct Walked {
    /// Directories, parents first (a submodule's among them: git leaves it empty).
    dirs: Vec<PathBuf>,
    files: Vec<File>,
    /// Submodules: an index entry each, no file.
    gitlinks: Vec<File>,
    /// No `.gitattributes` anywhere in the tree.
    plain: bool,
}

fn walk(tree: &git2::Tree<'_>) -> Result<Walked> {
    let mut w = Walked {
        dirs: Vec::new(),
        files: Vec::new(),
        gitlinks: Vec::new(),
        plain: true,
    };
    let mut refused = None;
    let walked = tree.walk(TreeWalkMode::PreOrder, |dir, e| {
        let is_link = e.filemode() == i32::from(FileMode::Link);
        match classify(e.name_bytes(), is_link) {
            Name::Plain => {}
            Name::Refused => {
                let name = String::from_utf8_lossy(e.name_bytes());
                refused = Some(format!("{dir}{name}"));
                return TreeWalkResult::Abort;
            }
            // the whole tree goes to libgit2's checkout, which applies git's own checks (what
            // is under such a directory is its to judge)
            Name::Libgit2 => {
                w.plain = false;
                return if e.kind() == Some(ObjectType::Tree) {
                    TreeWalkResult::Skip
                } else {
                    TreeWalkResult::Ok
                };
            }
        }
        let Ok(name) = std::str::from_utf8(e.name_bytes()) else {
            return TreeWalkResult::Ok; // classify sent it to libgit2
        };
        let path = format!("{dir}{name}");
        match e.kind() {
            Some(ObjectType::Tree) => w.dirs.push(PathBuf::from(&path)),
            Some(ObjectType::Blob) => {
                if name == ".gitattributes" {
                    w.plain = false;
                }
                w.files.push(File {
                    path,
                    oid: e.id(),
                    mode: e.filemode(),
                });
            }
            Some(ObjectType::Commit) => {
                w.dirs.push(PathBuf::from(&path));
                w.gitlinks.push(File {
                    path,
                    oid: e.id(),
                    mode: e.filemode(),
                });
            }
            _ => {}
        }
        TreeWalkResult::Ok
    });
    if let Some(path) = refused {
        return Err(WorktreeError::UnsafeTreePath { path });
    }
    match walked {
        Ok(()) => Ok(w),
        // libgit2 must write this tree anyway: what was gathered is not used
        Err(_) if !w.plain => Ok(w),
        Err(e) => Err(WorktreeError::git("walk the tree")(e)),
    }
}

/// What the fast path may do with a tree entry's name.
#[derive(Debug, PartialEq, Eq)]
enum Name {
    Plain,
    /// Left to libgit2's checkout, which applies git's checks for `.git` look-alikes (NTFS
    /// short names and trailing dots, HFS+ ignorable characters, a `.gitmodules` symlink) and
    /// writes a name that is not UTF-8 as its bytes.
    Libgit2,
    /// git refuses to check it out: it would leave the directory, name a path through
    /// another entry (a `/` inside a name, which could pass through a symlink the tree also
    /// writes), or write a `.git` of its own.
    Refused,
}

fn classify(name: &[u8], is_link: bool) -> Name {
    let lower = name.to_ascii_lowercase();
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || lower == b".git"
    {
        return Name::Refused;
    }
    let Ok(text) = std::str::from_utf8(name) else {
        return Name::Libgit2;
    };
    let after_git = lower.strip_prefix(b".git");
    let dotgit_like = after_git.is_some_and(|rest| {
        !rest
            .first()
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
    });
    // characters HFS+ ignores in names, so ".g\u{200c}it" is ".git" there
    let hfs_ignorable = text.chars().any(|c| {
        matches!(c, '\u{200c}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{206a}'..='\u{206f}' | '\u{feff}')
    });
    if dotgit_like
        || hfs_ignorable
        || lower.starts_with(b"git~")
        || name.contains(&b'\\')
        || name.contains(&b':')
        || (is_link && lower.starts_with(b".gitmodules"))
    {
        return Name::Libgit2;
    }
    Name::Plain
}

/// No setting that makes git transform file content on checkout.
fn plain_config(repo: &Repository) -> bool {
    let Ok(cfg) = repo.config() else { return false };
    let set = |k: &str| cfg.get_string(k).is_ok();
    let autocrlf = cfg
        .get_string("core.autocrlf")
        .map(|v| v != "false")
        .unwrap_or(false);
    !autocrlf
        && !set("core.eol")
        && !set("core.attributesFile")
        && !cfg.get_bool("core.sparseCheckout").unwrap_or(false)
        && cfg.get_bool("core.symlinks").unwrap_or(true)
        && !repo.commondir().join("info").join("attributes").exists()
        && !attribute_files_beyond_the_repository()
}

/// The attribute files git reads without being told: the user's (`$XDG_CONFIG_HOME/git/
/// attributes`, else `~/.config/git/attributes`) and the system's (`/etc/gitattributes`).
/// One that exists may ask for line-ending or other conversions (libgit2 reads them too).
fn attribute_files_beyond_the_repository() -> bool {
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    let user = xdg.map(|d| d.join("git").join("attributes"));
    let system = (std::env::var_os("GIT_ATTR_NOSYSTEM").is_none())
        .then(|| PathBuf::from("/etc/gitattributes"));
    user.into_iter().chain(system).any(|f| f.exists())
}

fn write_one(path: &Path, mode: i32, data: &[u8]) -> std::io::Result<Metadata> {
    if mode == i32::from(FileMode::Link) {
        let target = std::ffi::OsStr::new(std::str::from_utf8(data).unwrap_or_default());
        std::os::unix::fs::symlink(target, path)?;
        return std::fs::symlink_metadata(path);
    }
    let perm = if mode == i32::from(FileMode::BlobExecutable) {
        0o777
    } else {
        0o666
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(perm)
        .open(path)?;
    f.write_all(data)?;
    f.metadata()
}

/// Check out `commit` into the empty worktree at `path` with libgit2. Returns the number of
/// files written.
pub fn populate(path: &Path, commit: Oid) -> Result<usize> {
    let repo = open(path)?;
    let tree = repo
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(WorktreeError::git(format!("read the tree of {commit}")))?;
    let mut written = 0usize;
    let mut opts = CheckoutBuilder::new();
    opts.force();
    opts.progress(|_, done, _| written = done);
    repo.checkout_tree(tree.as_object(), Some(&mut opts))
        .map_err(WorktreeError::git(format!(
            "check out {commit} into {}",
            path.display()
        )))?;
    drop(opts);
    Ok(written)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    use super::*;

    /// Every chunk counted as slow: files go through every stage there may be, and the
    /// worktree git sees is the same clean checkout (the index's stat data is that of the files
    /// where they ended up, not where they were created).
    #[test]
    fn files_created_through_stages_make_the_same_clean_worktree() {
        let repo = baton_tests::TestRepo::new();
        for i in 0..1500 {
            repo.write(&format!("d{}/f{i}.txt", i % 9), &format!("{i}\n"));
        }
        repo.write("run.sh", "#!/bin/sh\necho hi\n");
        let run = repo.path().join("run.sh");
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("run.sh", repo.path().join("link")).unwrap();
        let head = repo.commit_all("files");
        let parent = repo.scratch("wts");
        let wts: Vec<PathBuf> = (0..2).map(|i| parent.join(format!("w{i}"))).collect();
        for (i, wt) in wts.iter().enumerate() {
            let branch = format!("b{i}");
            let path = wt.to_str().unwrap();
            repo.git(&[
                "worktree",
                "add",
                "-q",
                "--no-checkout",
                "-b",
                &branch,
                path,
            ]);
        }
        let refs: Vec<&Path> = wts.iter().map(PathBuf::as_path).collect();
        let commit = Oid::from_str(&head).unwrap();
        let slow = |p: &Path| place::Stager::with_slow(p, Duration::ZERO);
        let (n, stages) = populate_many_with(&refs, commit, None, &slow).unwrap();
        assert_eq!(n, 1503);
        assert!(stages >= 2, "stages used: {stages}");
        for wt in &wts {
            // before anything refreshes the index: its stat data matches every file
            assert_eq!(repo.git_in(wt, &["diff-files", "--name-only"]), "");
            assert_eq!(repo.git_in(wt, &["status", "--porcelain"]), "");
            assert_eq!(repo.git_in(wt, &["diff", "--stat"]), "");
            assert_eq!(
                std::fs::read_to_string(wt.join("d3/f12.txt")).unwrap(),
                "12\n"
            );
            let mode = std::fs::metadata(wt.join("run.sh"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o111, 0o111, "run.sh is executable");
            assert_eq!(
                std::fs::read_link(wt.join("link")).unwrap(),
                Path::new("run.sh")
            );
        }
        let mut left: Vec<String> = std::fs::read_dir(&parent)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["w0", "w1"], "stages left behind");
    }

    /// Fast chunks go straight into the worktree: no stage is made.
    #[test]
    fn a_fast_checkout_makes_no_stage() {
        let repo = baton_tests::TestRepo::new();
        for i in 0..600 {
            repo.write(&format!("f{i}.txt"), "x\n");
        }
        let head = repo.commit_all("files");
        let wt = repo.scratch("wts").join("w");
        let path = wt.to_str().unwrap();
        repo.git(&["worktree", "add", "-q", "--no-checkout", "-b", "b", path]);
        let never = |p: &Path| place::Stager::with_slow(p, Duration::MAX / 4096);
        let commit = Oid::from_str(&head).unwrap();
        let (_, stages) = populate_many_with(&[&wt], commit, None, &never).unwrap();
        assert_eq!(stages, 0);
        assert_eq!(repo.git_in(&wt, &["status", "--porcelain"]), "");
    }
}
