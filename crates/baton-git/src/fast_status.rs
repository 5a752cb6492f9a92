//! A fast path for working-tree status on big checkouts.
//!
//! libgit2's status stats every file by its absolute path, one after the other; on a 20k-file
//! checkout most of its time is the kernel walking those long paths. Here the working tree is
//! read directory by directory (`read_dir` + `fstatat` on short names, in parallel), each file's
//! stat data is compared with its index entry like git does (`ie_match_stat`, racy entries
//! included), and staged changes are ruled out by comparing the index's tree id with HEAD's
//! (computed in an in-memory object store, from the index's cache-tree when it is valid).
//! Only the few candidate paths found that way go through libgit2's status for the
//! authoritative answer, so results are exactly libgit2's.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rayon::prelude::*;

use crate::GitError;
use crate::index_file::{self, RawEntry};

/// The tracked files of one directory: `(name, entry)`.
type DirFiles<'p, 'e> = Vec<(&'p [u8], &'e RawEntry<'p>)>;

/// What the pre-pass found: paths to ask libgit2 about, or `None` to ask about everything.
pub(crate) fn candidates(
    repo: &git2::Repository,
    min_entries: usize,
) -> Result<Option<Vec<String>>, GitError> {
    let Some(workdir) = repo.workdir() else {
        return Ok(None);
    };
    let index_path = repo.path().join("index");
    let Ok(bytes) = std::fs::read(&index_path) else {
        return Ok(None);
    };
    let Some(index) = index_file::parse(&bytes) else {
        return Ok(None);
    };
    if index.entries.len() < min_entries
        || index
            .entries
            .iter()
            .any(|e| e.stage != 0 || std::str::from_utf8(e.path).is_err())
    {
        // small or conflicted: libgit2 alone is as fast and simpler
        return Ok(None);
    }
    let index_mtime = std::fs::metadata(&index_path)
        .ok()
        .map(|m| (m.mtime(), m.mtime_nsec()));
    // directory -> its tracked files; every ancestor directory is tracked too
    let mut dirs: HashMap<&[u8], Vec<(&[u8], &RawEntry<'_>)>> = HashMap::new();
    let mut tracked_dirs: HashSet<&[u8]> = HashSet::new();
    dirs.entry(b"").or_default();
    for e in &index.entries {
        let (dir, name) = match e.path.iter().rposition(|&c| c == b'/') {
            Some(i) => (&e.path[..i], &e.path[i + 1..]),
            None => (&e.path[..0], e.path),
        };
        dirs.entry(dir).or_default().push((name, e));
        let mut d = dir;
        while !d.is_empty() && tracked_dirs.insert(d) {
            dirs.entry(d).or_default();
            d = d
                .iter()
                .rposition(|&c| c == b'/')
                .map_or(&d[..0], |i| &d[..i]);
        }
    }
    let tasks: Vec<(&[u8], &DirFiles<'_, '_>)> = dirs.iter().map(|(d, f)| (*d, f)).collect();
    let found: Option<Vec<Vec<String>>> = tasks
        .par_iter()
        .map(|(dir, files)| scan_dir(workdir, dir, files, &tracked_dirs, index_mtime))
        .collect();
    // a name that is not UTF-8 cannot be passed on as a pathspec: let libgit2 do it all
    let Some(found) = found else {
        return Ok(None);
    };
    let mut out: Vec<String> = found.into_iter().flatten().collect();
    let Some(staged) = staged_paths(repo, index.root_tree)? else {
        return Ok(None);
    };
    // untracked candidates that are ignored are not changes
    out.retain(|p| {
        let path = p.trim_end_matches('/');
        !repo.status_should_ignore(Path::new(path)).unwrap_or(false)
    });
    out.extend(staged);
    out.sort();
    out.dedup();
    Ok(Some(out))
}

/// Compare one directory's entries with the index; return candidate paths (untracked
/// directories end with `/`), or `None` on a file name that is not UTF-8.
fn scan_dir(
    workdir: &Path,
    dir: &[u8],
    files: &[(&[u8], &RawEntry<'_>)],
    tracked_dirs: &HashSet<&[u8]>,
    index_mtime: Option<(i64, i64)>,
) -> Option<Vec<String>> {
    let dir_s = String::from_utf8_lossy(dir);
    let join = |name: &str| {
        if dir.is_empty() {
            name.to_owned()
        } else {
            format!("{dir_s}/{name}")
        }
    };
    let mut out = Vec::new();
    let Ok(listing) = std::fs::read_dir(workdir.join(&*dir_s)) else {
        // the directory is gone: every file in it is deleted
        out.extend(files.iter().map(|(n, _)| join(&String::from_utf8_lossy(n))));
        return Some(out);
    };
    let by_name: HashMap<&[u8], &RawEntry<'_>> = files.iter().map(|(n, e)| (*n, *e)).collect();
    let mut seen = 0usize;
    for entry in listing.flatten() {
        let name_os = entry.file_name();
        let name = name_os.as_encoded_bytes();
        if dir.is_empty() && name == b".git" {
            continue;
        }
        let name_str = name_os.to_str()?;
        let lossy = || join(name_str);
        match by_name.get(name) {
            Some(e) => {
                seen += 1;
                let unchanged = e.skip_worktree
                    || e.assume_valid
                    || e.mode == 0o160000
                    || entry
                        .metadata()
                        .is_ok_and(|m| stat_matches(e, &m, index_mtime));
                if !unchanged {
                    out.push(lossy());
                }
            }
            None => {
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                if !is_dir {
                    out.push(lossy());
                } else {
                    let mut full = dir.to_vec();
                    if !full.is_empty() {
                        full.push(b'/');
                    }
                    full.extend_from_slice(name);
                    if !tracked_dirs.contains(full.as_slice()) {
                        out.push(format!("{}/", lossy()));
                    }
                }
            }
        }
    }
    if seen < files.len() {
        // some tracked files are missing from the listing: deleted
        let listed: HashSet<Vec<u8>> = std::fs::read_dir(workdir.join(&*dir_s))
            .map(|l| {
                l.flatten()
                    .map(|e| e.file_name().as_encoded_bytes().to_vec())
                    .collect()
            })
            .unwrap_or_default();
        for (n, _) in files {
            if !listed.contains(*n) {
                out.push(join(&String::from_utf8_lossy(n)));
            }
        }
    }
    Some(out)
}

/// git's `ie_match_stat`: the file is unchanged if its stat data matches the index entry and
/// the entry is not racy (written in the same second as, or after, the index).
fn stat_matches(e: &RawEntry<'_>, m: &std::fs::Metadata, index_mtime: Option<(i64, i64)>) -> bool {
    if e.intent_to_add {
        return false;
    }
    let ft = m.file_type();
    let type_ok = match e.mode & 0o170000 {
        0o120000 => ft.is_symlink(),
        0o100000 => ft.is_file() && ((e.mode & 0o100 != 0) == (m.mode() & 0o100 != 0)),
        _ => false,
    };
    let same = type_ok
        && e.mtime == (m.mtime() as u32, m.mtime_nsec() as u32)
        && e.ctime == (m.ctime() as u32, m.ctime_nsec() as u32)
        && e.ino == m.ino() as u32
        && e.uid == m.uid()
        && e.gid == m.gid()
        && e.size == m.size() as u32;
    let racy =
        index_mtime.is_none_or(|(s, ns)| (i64::from(e.mtime.0), i64::from(e.mtime.1)) >= (s, ns));
    same && !racy
}

/// The paths whose index entry differs from HEAD (staged changes), or `None` when that cannot
/// be told (no HEAD yet). When the index's cache-tree is valid and names HEAD's tree, nothing
/// is staged; otherwise (a stale cache-tree) HEAD's tree is diffed to the index.
fn staged_paths(
    repo: &git2::Repository,
    cached_root: Option<git2::Oid>,
) -> Result<Option<Vec<String>>, GitError> {
    let Ok(head_tree) = repo.head().and_then(|h| h.peel_to_tree()) else {
        return Ok(None);
    };
    if cached_root == Some(head_tree.id()) {
        return Ok(Some(Vec::new()));
    }
    let index = repo.index().map_err(GitError::git("read the index"))?;
    let mut opts = git2::DiffOptions::new();
    opts.ignore_submodules(true);
    let diff = repo
        .diff_tree_to_index(Some(&head_tree), Some(&index), Some(&mut opts))
        .map_err(GitError::git("diff HEAD to the index"))?;
    let mut out = Vec::new();
    for d in diff.deltas() {
        for f in [d.old_file(), d.new_file()] {
            if let Some(p) = f.path() {
                out.push(p.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{StatusMode, status, tune_for_reading};
    use baton_tests::TestRepo;

    fn sorted(repo: &git2::Repository, fast_from: usize) -> Vec<String> {
        let mut v: Vec<String> = status(
            repo,
            StatusMode {
                renames: false,
                fast_from: Some(fast_from),
            },
        )
        .unwrap()
        .into_iter()
        .map(|e| {
            format!(
                "{:?} {} {:?} {} {}",
                e.kind, e.path, e.head_path, e.staged, e.unstaged
            )
        })
        .collect();
        v.sort();
        v
    }

    /// The pre-pass plus libgit2 on the candidates gives exactly libgit2's full answer.
    #[test]
    fn agrees_with_libgit2_status() {
        tune_for_reading();
        let t = TestRepo::new();
        for i in 0..40 {
            t.write(&format!("src/d{}/f{i}.txt", i % 4), &format!("file {i}\n"));
        }
        t.write(".gitignore", "*.log\n/build/\n");
        t.write("run.sh", "echo\n");
        t.commit_all("files");
        let repo = git2::Repository::open(t.path()).unwrap();
        assert_eq!(
            candidates(&repo, 0).unwrap(),
            Some(vec![]),
            "a clean tree has no candidates"
        );
        assert!(sorted(&repo, 0).is_empty());

        t.write("src/d0/f0.txt", "changed\n");
        t.write("src/d1/f1.txt", "same size\n");
        std::fs::remove_file(t.path().join("src/d2/f2.txt")).unwrap();
        std::fs::remove_dir_all(t.path().join("src/d3")).unwrap();
        t.write("src/d0/new.txt", "untracked\n");
        t.write("fresh/deep/x.txt", "untracked dir\n");
        t.write("debug.log", "ignored\n");
        t.write("build/out.bin", "ignored dir\n");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            t.path().join("run.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        // staged, with the working tree matching the index
        t.write("staged.txt", "staged\n");
        t.git(&["add", "staged.txt"]);
        let repo = git2::Repository::open(t.path()).unwrap();
        let found = candidates(&repo, 0)
            .unwrap()
            .expect("the fast path applies");
        assert!(found.contains(&"staged.txt".to_owned()), "{found:?}");
        assert_eq!(sorted(&repo, 0), sorted(&repo, usize::MAX));
        t.git(&["reset", "-q", "staged.txt"]);
        let repo = git2::Repository::open(t.path()).unwrap();
        let found = candidates(&repo, 0)
            .unwrap()
            .expect("the fast path applies");
        assert!(found.contains(&"fresh/".to_owned()), "{found:?}");
        assert!(
            !found
                .iter()
                .any(|p| p.contains("log") || p.starts_with("build")),
            "{found:?}"
        );
        let fast = sorted(&repo, 0);
        assert_eq!(fast, sorted(&repo, usize::MAX));
        assert!(
            fast.iter().any(|l| l.contains("fresh/deep/x.txt")),
            "{fast:#?}"
        );
        assert!(fast.iter().any(|l| l.contains("run.sh")), "{fast:#?}");
    }
}
