//! Where the merged result is built and tested: one stable scratch directory per repository
//! (the caller picks it, outside the checkout), so a second run on an unchanged batch
//! rebuilds nothing. Its `tree/` is synced to the merged index (only files
//! whose content differs are written, so cargo's fingerprints stay fresh; files not in the
//! merged tree are removed), `target/` is the build directory, emptied when it grows past a
//! bound. A marker file proves the directory is baton's before anything in it is removed, and
//! a lock keeps two gates from sharing it at once.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use baton_git::GitError;

const MARKER: &str = ".baton-merged-scratch";

/// The scratch directory of one repository, locked while it is held.
pub struct Scratch {
    root: PathBuf,
    _lock: baton_store::LockGuard,
}

impl Scratch {
    /// Open (creating if needed) and lock the scratch directory `root` of the repository
    /// whose git directory is `repo`. A directory that exists without baton's marker is
    /// refused: nothing in it is baton's. The marker names the repository, so scratch
    /// directories of repositories that are gone can be pruned ([`prune_orphans`]).
    pub fn open(root: &Path, repo: &Path) -> Result<Self, GitError> {
        let root = root.to_owned();
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| GitError::Io { path, source }
        };
        let fresh = !root.exists();
        std::fs::create_dir_all(&root).map_err(io(&root))?;
        let marker = root.join(MARKER);
        let empty = std::fs::read_dir(&root)
            .map_err(io(&root))?
            .next()
            .is_none();
        if !marker.is_file() && !fresh && !empty {
            return Err(GitError::Io {
                path: root.clone(),
                source: std::io::Error::other(
                    "this scratch directory exists but is not baton's (no marker file); move it away or set BATON_CACHE_DIR",
                ),
            });
        }
        let text = format!(
            "baton verify --merged scratch; safe to delete\nrepo = {}\n",
            repo.display()
        );
        if std::fs::read_to_string(&marker).ok().as_deref() != Some(text.as_str()) {
            std::fs::write(&marker, text).map_err(io(&marker))?;
        }
        let lock = baton_store::lock_exclusive(&root).map_err(|e| GitError::Io {
            path: root.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        Ok(Scratch { root, _lock: lock })
    }

    /// The merged tree's directory.
    pub fn tree(&self) -> PathBuf {
        self.root.join("tree")
    }

    /// The build directory (`CARGO_TARGET_DIR`).
    pub fn target(&self) -> PathBuf {
        self.root.join("target")
    }

    /// Empty the build directory when it holds more than `max_bytes`; returns whether it did.
    pub fn bound_target(&self, max_bytes: u64) -> bool {
        let target = self.target();
        if dir_size(&target) <= max_bytes || !self.root.join(MARKER).is_file() {
            return false;
        }
        std::fs::remove_dir_all(&target).is_ok()
    }
}

/// Remove the `merged-*` scratch directories under `cache` whose marker names a repository
/// that no longer exists (never one without baton's marker). Returns what was removed.
pub fn prune_orphans(cache: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(cache) else {
        return removed;
    };
    for e in entries.flatten() {
        let dir = e.path();
        let named = e
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with("merged-"));
        let is_dir = dir.symlink_metadata().is_ok_and(|m| m.is_dir());
        let Ok(marker) = std::fs::read_to_string(dir.join(MARKER)) else {
            continue;
        };
        let repo = marker.lines().find_map(|l| l.strip_prefix("repo = "));
        if named
            && is_dir
            && repo.is_some_and(|r| !Path::new(r).exists())
            && std::fs::remove_dir_all(&dir).is_ok()
        {
            // the lock's sidecar file, `<dir>.lock`
            let mut lock = dir.clone().into_os_string();
            lock.push(".lock");
            let _ = std::fs::remove_file(lock);
            removed.push(dir);
        }
    }
    removed
}

/// Total size of the files under `dir` (symlinks not followed).
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}

/// Make `dir` hold exactly the files of `index` plus `extra` (path, bytes): write a file
/// only when its content or mode differs, remove everything else. Returns how many files
/// were written.
pub fn sync_index(
    repo: &git2::Repository,
    index: &git2::Index,
    dir: &Path,
    extra: &[(String, Vec<u8>)],
) -> Result<usize, GitError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| GitError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut wanted: BTreeSet<PathBuf> = BTreeSet::new();
    let mut written = 0;
    let mut submodules = Vec::new();
    let mut write_one = |rel: &Path, bytes: &[u8], mode: u32| -> Result<(), GitError> {
        let path = dir.join(rel);
        wanted.insert(rel.to_owned());
        if let Some(parent) = path.parent() {
            // a file where a directory must go (the tree changed shape)
            let mut p = parent;
            while p != dir {
                if p.symlink_metadata().is_ok_and(|m| !m.is_dir()) {
                    std::fs::remove_file(p).map_err(io(p))?;
                }
                p = p.parent().unwrap_or(dir);
            }
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        if same_file(&path, bytes, mode) {
            return Ok(());
        }
        if let Ok(meta) = path.symlink_metadata() {
            if meta.is_dir() {
                std::fs::remove_dir_all(&path).map_err(io(&path))?;
            } else {
                std::fs::remove_file(&path).map_err(io(&path))?;
            }
        }
        if mode & 0o170000 == 0o120000 {
            #[cfg(unix)]
            std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(bytes), &path)
                .map_err(io(&path))?;
        } else {
            std::fs::write(&path, bytes).map_err(io(&path))?;
            #[cfg(unix)]
            if mode & 0o111 != 0 {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                    .map_err(io(&path))?;
            }
        }
        written += 1;
        Ok(())
    };
    for entry in index.iter() {
        // paths are bytes: a name that is not UTF-8 is written as git would write it
        let rel = Path::new(std::ffi::OsStr::from_bytes(&entry.path));
        if !safe_rel(&entry.path) {
            continue;
        }
        if entry.mode == 0o160000 {
            let path = dir.join(rel);
            if !path.is_dir() {
                let _ = std::fs::remove_file(&path);
            }
            std::fs::create_dir_all(&path).map_err(io(&path))?;
            submodules.push(rel.to_owned());
            continue;
        }
        let blob = repo
            .find_blob(entry.id)
            .map_err(GitError::git(format!("read {}", rel.display())))?;
        write_one(rel, blob.content(), entry.mode)?;
    }
    for (rel, bytes) in extra {
        if safe_rel(rel.as_bytes()) {
            write_one(Path::new(rel), bytes, 0o100644)?;
        }
    }
    wanted.extend(submodules);
    remove_unwanted(dir, dir, &wanted)?;
    Ok(written)
}

/// Never write outside the directory or into a git directory, whatever the tree says.
fn safe_rel(rel: &[u8]) -> bool {
    !rel.split(|&b| b == b'/')
        .any(|c| c.is_empty() || c == b"." || c == b".." || c.eq_ignore_ascii_case(b".git"))
}

fn same_file(path: &Path, bytes: &[u8], mode: u32) -> bool {
    let Ok(meta) = path.symlink_metadata() else {
        return false;
    };
    if mode & 0o170000 == 0o120000 {
        return meta.file_type().is_symlink()
            && std::fs::read_link(path).is_ok_and(|t| t.as_os_str().as_encoded_bytes() == bytes);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if (meta.permissions().mode() & 0o111 != 0) != (mode & 0o111 != 0) {
            return false;
        }
    }
    meta.is_file()
        && meta.len() == bytes.len() as u64
        && std::fs::read(path).is_ok_and(|b| b == bytes)
}

/// Remove what is under `dir` and not wanted (nor a parent of something wanted).
fn remove_unwanted(root: &Path, dir: &Path, wanted: &BTreeSet<PathBuf>) -> Result<(), GitError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| GitError::Io { path, source }
    };
    let entries = std::fs::read_dir(dir).map_err(io(dir))?;
    for e in entries.flatten() {
        let path = e.path();
        let rel = path.strip_prefix(root).unwrap_or(&path).to_owned();
        if wanted.contains(&rel) {
            continue;
        }
        let is_dir = path.symlink_metadata().is_ok_and(|m| m.is_dir());
        let holds_wanted = is_dir
            && wanted
                .range(rel.clone()..)
                .next()
                .is_some_and(|w| w.starts_with(&rel));
        if holds_wanted {
            remove_unwanted(root, &path, wanted)?;
        } else if is_dir {
            std::fs::remove_dir_all(&path).map_err(io(&path))?;
        } else {
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
    }
    Ok(())
}

/// The id git gives the tree of `index`, computed without writing any object (libgit2 would
/// "freshen" objects the repository already has).
pub fn tree_id(index: &git2::Index) -> Result<git2::Oid, GitError> {
    #[derive(Default)]
    struct Dir {
        files: BTreeMap<Vec<u8>, (u32, git2::Oid)>,
        dirs: BTreeMap<Vec<u8>, Dir>,
    }
    let mut root = Dir::default();
    for e in index.iter() {
        let mut parts: Vec<&[u8]> = e.path.split(|b| *b == b'/').collect();
        let Some(name) = parts.pop() else { continue };
        let mut d = &mut root;
        for p in parts {
            d = d.dirs.entry(p.to_vec()).or_default();
        }
        d.files.insert(name.to_vec(), (e.mode, e.id));
    }
    fn hash(d: &Dir) -> Result<git2::Oid, GitError> {
        // git orders entries by name, a directory's name as if it ended in '/'
        let mut entries: Vec<(Vec<u8>, u32, git2::Oid, Vec<u8>)> = Vec::new();
        for (name, (mode, oid)) in &d.files {
            entries.push((name.clone(), *mode, *oid, name.clone()));
        }
        for (name, sub) in &d.dirs {
            let mut key = name.clone();
            key.push(b'/');
            entries.push((name.clone(), 0o40000, hash(sub)?, key));
        }
        entries.sort_by(|a, b| a.3.cmp(&b.3));
        let mut bytes = Vec::new();
        for (name, mode, oid, _) in entries {
            bytes.extend_from_slice(format!("{mode:o} ").as_bytes());
            bytes.extend_from_slice(&name);
            bytes.push(0);
            bytes.extend_from_slice(oid.as_bytes());
        }
        git2::Oid::hash_object(git2::ObjectType::Tree, &bytes)
            .map_err(GitError::git("hash a merged tree"))
    }
    hash(&root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_tests::TestRepo;

    #[test]
    fn scratch_is_baton_s_only_and_its_build_dir_is_bounded() {
        let tmp = tempfile::tempdir().unwrap();
        let foreign = tmp.path().join("foreign");
        std::fs::create_dir_all(&foreign).unwrap();
        std::fs::write(foreign.join("precious.txt"), "keep").unwrap();
        let err = Scratch::open(&foreign, tmp.path())
            .err()
            .expect("a foreign directory is refused");
        assert!(err.to_string().contains("not baton's"), "{err}");
        assert!(foreign.join("precious.txt").is_file());

        let root = tmp.path().join("merged-x");
        let s = Scratch::open(&root, tmp.path()).unwrap();
        std::fs::create_dir_all(s.target().join("debug")).unwrap();
        std::fs::write(s.target().join("debug/big"), vec![0u8; 4096]).unwrap();
        assert_eq!(dir_size(&s.target()), 4096);
        assert!(!s.bound_target(8192), "under the bound: kept");
        assert!(s.target().join("debug/big").is_file());
        assert!(s.bound_target(1024), "over the bound: emptied");
        assert!(!s.target().exists());
        drop(s);
        // reopening a directory baton made works
        drop(Scratch::open(&root, tmp.path()).unwrap());

        // the scratch of a repository that is gone is pruned; others, and foreign
        // directories, stay
        let gone = tmp.path().join("merged-gone");
        drop(Scratch::open(&gone, &tmp.path().join("no-such-repo/.git")).unwrap());
        let foreign = tmp.path().join("merged-foreign");
        std::fs::create_dir_all(&foreign).unwrap();
        std::fs::write(foreign.join("x"), "x").unwrap();
        assert_eq!(prune_orphans(tmp.path()), vec![gone.clone()]);
        assert!(!gone.exists() && root.is_dir() && foreign.join("x").is_file());
    }

    #[test]
    fn tree_id_matches_git_and_sync_writes_only_what_differs() {
        let repo = TestRepo::new();
        repo.write("a.txt", "a\n");
        repo.write("dir/b.txt", "b\n");
        repo.write("dir-c/c.txt", "c\n");
        repo.write("dir.d", "d\n");
        repo.commit_all("files");
        let git = git2::Repository::open(repo.path()).unwrap();
        let head_tree = git.head().unwrap().peel_to_tree().unwrap();
        let mut index = git2::Index::new().unwrap();
        index.read_tree(&head_tree).unwrap();
        assert_eq!(tree_id(&index).unwrap(), head_tree.id());

        let out = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(out.path().join("stale/deep")).unwrap();
        std::fs::write(out.path().join("stale/deep/x"), "x").unwrap();
        std::fs::write(out.path().join("a.txt"), "a\n").unwrap();
        let extra = vec![("Cargo.lock".to_owned(), b"lock".to_vec())];
        // every file of the tree and the extra one, except a.txt, already there and equal
        assert_eq!(
            sync_index(&git, &index, out.path(), &extra).unwrap(),
            index.len() + 1 - 1
        );
        assert!(!out.path().join("stale").exists());
        assert_eq!(
            std::fs::read_to_string(out.path().join("dir/b.txt")).unwrap(),
            "b\n"
        );
        assert_eq!(sync_index(&git, &index, out.path(), &extra).unwrap(), 0);
        std::fs::write(out.path().join("dir/b.txt"), "changed").unwrap();
        assert_eq!(sync_index(&git, &index, out.path(), &extra).unwrap(), 1);
        assert!(out.path().join("Cargo.lock").is_file());
    }

    /// The tested tree holds a name that is not UTF-8 as its bytes (it was written with
    /// replacement characters). What could lead outside is refused before it gets here:
    /// libgit2's index holds no `..` or `.git` component, and no `s/x` beside a file `s`.
    #[test]
    fn sync_keeps_name_bytes() {
        use std::os::unix::ffi::OsStrExt;
        let repo = TestRepo::new();
        let git = git2::Repository::open(repo.path()).unwrap();
        let blob = git.blob(b"data\n").unwrap();
        let mut index = git2::Index::new().unwrap();
        let entry = |path: &[u8], mode: u32| git2::IndexEntry {
            ctime: git2::IndexTime::new(0, 0),
            mtime: git2::IndexTime::new(0, 0),
            dev: 0,
            ino: 0,
            mode,
            uid: 0,
            gid: 0,
            file_size: 0,
            id: blob,
            flags: 0,
            flags_extended: 0,
            path: path.to_vec(),
        };
        index.add(&entry(b"caf\xe9.txt", 0o100644)).unwrap();
        index.add(&entry(b"s", 0o120000)).unwrap();
        for p in [&b"sub/../../up.txt"[..], b"sub/.GIT/config"] {
            assert!(index.add(&entry(p, 0o100644)).is_err());
        }
        index.add(&entry(b"s/x", 0o100644)).unwrap();
        let held: Vec<Vec<u8>> = index.iter().map(|e| e.path).collect();
        assert_eq!(
            held,
            [&b"caf\xe9.txt"[..], b"s/x"],
            "s/x replaced the link s"
        );
        let out = tempfile::tempdir().unwrap();
        assert_eq!(sync_index(&git, &index, out.path(), &[]).unwrap(), 2);
        let name = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
        assert_eq!(std::fs::read(out.path().join(name)).unwrap(), b"data\n");
        assert!(out.path().join("s").is_dir());
    }
}
