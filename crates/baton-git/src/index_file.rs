//! Reading git's index file directly (versions 2 and 3): entries with their stat data, and the
//! root of the cache-tree extension. libgit2 also verifies the file's SHA-1 and builds maps on
//! load, which costs more than the whole stat pass on a big checkout; git itself skips the
//! checksum on ordinary reads. Anything unusual (version 4, split or sparse index, SHA-256)
//! returns `None` and callers fall back to libgit2.
//!
//! And writing a new index (version 2, stage 0, no extensions) for a checkout baton has just
//! written itself: libgit2's `read_tree` + `add` per file + `write` cost more CPU than the
//! rest of a worktree's user-space work together.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// One index entry, borrowing its path from the file's bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawEntry<'a> {
    pub path: &'a [u8],
    pub ctime: (u32, u32),
    pub mtime: (u32, u32),
    pub ino: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u32,
    pub stage: u16,
    pub assume_valid: bool,
    pub skip_worktree: bool,
    pub intent_to_add: bool,
}

/// A parsed index.
pub(crate) struct RawIndex<'a> {
    pub entries: Vec<RawEntry<'a>>,
    /// The tree id of the whole index from the cache-tree, when that is valid.
    pub root_tree: Option<git2::Oid>,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|s| u16::from_be_bytes([s[0], s[1]]))
}

/// Parse an index file of a SHA-1 repository.
pub(crate) fn parse(b: &[u8]) -> Option<RawIndex<'_>> {
    const HASH: usize = 20;
    if b.get(..4)? != b"DIRC" {
        return None;
    }
    let version = be32(b, 4)?;
    if version != 2 && version != 3 {
        return None;
    }
    let count = be32(b, 8)? as usize;
    let end = b.len().checked_sub(HASH)?;
    let mut entries = Vec::with_capacity(count);
    let mut at = 12;
    for _ in 0..count {
        let flags = be16(b, at + 40 + HASH)?;
        let extended = flags & 0x4000 != 0;
        let (ext, path_at) = if extended {
            (be16(b, at + 62)?, at + 64)
        } else {
            (0, at + 62)
        };
        let path_len = b.get(path_at..end)?.iter().position(|&c| c == 0)?;
        let fixed = path_at - at;
        let entry_len = (fixed + path_len + 8) & !7;
        entries.push(RawEntry {
            path: &b[path_at..path_at + path_len],
            ctime: (be32(b, at)?, be32(b, at + 4)?),
            mtime: (be32(b, at + 8)?, be32(b, at + 12)?),
            ino: be32(b, at + 20)?,
            mode: be32(b, at + 24)?,
            uid: be32(b, at + 28)?,
            gid: be32(b, at + 32)?,
            size: be32(b, at + 36)?,
            stage: (flags >> 12) & 3,
            assume_valid: flags & 0x8000 != 0,
            skip_worktree: ext & (1 << 14) != 0,
            intent_to_add: ext & (1 << 13) != 0,
        });
        at += entry_len;
        if at > end {
            return None;
        }
    }
    let mut root_tree = None;
    while at + 8 <= end {
        let sig = &b[at..at + 4];
        let size = be32(b, at + 4)? as usize;
        let data = b.get(at + 8..at + 8 + size)?;
        match sig {
            b"TREE" => root_tree = tree_root(data),
            // split index, sparse index: entries live elsewhere or are collapsed
            b"link" | b"sdir" => return None,
            _ => {}
        }
        at += 8 + size;
    }
    Some(RawIndex { entries, root_tree })
}

/// The root entry of the cache-tree: `"" NUL <entries> SP <subtrees> LF <oid>`; an entry
/// count of -1 means invalid (no oid follows).
fn tree_root(data: &[u8]) -> Option<git2::Oid> {
    let nul = data.iter().position(|&c| c == 0)?;
    if nul != 0 {
        return None;
    }
    let rest = &data[1..];
    let lf = rest.iter().position(|&c| c == b'\n')?;
    let header = std::str::from_utf8(&rest[..lf]).ok()?;
    let count: i64 = header.split(' ').next()?.parse().ok()?;
    if count < 0 {
        return None;
    }
    git2::Oid::from_bytes(rest.get(lf + 1..lf + 21)?).ok()
}

/// One entry of a new index: a file (or symlink) as written, with the stat data of what was
/// written; `stat: None` for a gitlink (submodule), which git compares by its HEAD, not by stat.
pub struct NewEntry<'a> {
    pub path: &'a [u8],
    pub oid: git2::Oid,
    /// The mode in the tree; normalized as git does (`100644`, `100755`, `120000`, `160000`).
    pub mode: u32,
    pub stat: Option<&'a std::fs::Metadata>,
}

/// Write a version 2 index of `entries` (any order: they are sorted here as git sorts them, by
/// path bytes; a repeated path keeps its last entry) to `path`, as git and libgit2 do: into
/// `path.lock`, created exclusively (an existing lock means another writer: an error), then
/// renamed over `path`. Stat fields are truncated to 32 bits, as git stores them.
pub fn write(path: &Path, entries: &mut Vec<NewEntry<'_>>) -> std::io::Result<()> {
    entries.sort_by(|a, b| a.path.cmp(b.path));
    // keep the last of equal paths: dedup_by keeps the first, so reverse around it
    entries.reverse();
    entries.dedup_by(|a, b| a.path == b.path);
    entries.reverse();
    let mut buf = Vec::with_capacity(12 + entries.len() * 96 + 20);
    buf.extend_from_slice(b"DIRC");
    buf.extend_from_slice(&2u32.to_be_bytes());
    buf.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for e in entries.iter() {
        let start = buf.len();
        let (ctime, mtime, dev, ino, uid, gid, size) = match e.stat {
            Some(st) => (
                (st.ctime() as u32, st.ctime_nsec() as u32),
                (st.mtime() as u32, st.mtime_nsec() as u32),
                st.dev() as u32,
                st.ino() as u32,
                st.uid(),
                st.gid(),
                st.size() as u32,
            ),
            None => ((0, 0), (0, 0), 0, 0, 0, 0, 0),
        };
        for v in [
            ctime.0,
            ctime.1,
            mtime.0,
            mtime.1,
            dev,
            ino,
            normal_mode(e.mode),
            uid,
            gid,
            size,
        ] {
            buf.extend_from_slice(&v.to_be_bytes());
        }
        buf.extend_from_slice(e.oid.as_bytes());
        let flags = e.path.len().min(0xfff) as u16;
        buf.extend_from_slice(&flags.to_be_bytes());
        buf.extend_from_slice(e.path);
        // 1 to 8 NULs: the entry's length becomes a multiple of 8
        let len = (buf.len() - start + 8) & !7;
        buf.resize(start + len, 0);
    }
    let digest = sha1_smol::Sha1::from(&buf).digest().bytes();
    buf.extend_from_slice(&digest);
    let mut lock = path.as_os_str().to_owned();
    lock.push(".lock");
    let lock = std::path::PathBuf::from(lock);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o666)
        .open(&lock)?;
    if let Err(e) = f
        .write_all(&buf)
        .and_then(|()| std::fs::rename(&lock, path))
    {
        let _ = std::fs::remove_file(&lock);
        return Err(e);
    }
    Ok(())
}

/// The mode git stores for a tree entry's mode (`create_ce_mode`).
fn normal_mode(mode: u32) -> u32 {
    match mode & 0o170000 {
        0o120000 => 0o120000,
        0o160000 => 0o160000,
        _ if mode & 0o100 != 0 => 0o100755,
        _ => 0o100644,
    }
}

#[cfg(test)]
mod tests {
    use baton_tests::TestRepo;

    /// The parser agrees with libgit2 on a real index, cache-tree included.
    #[test]
    fn parses_what_git_writes() {
        let t = TestRepo::new();
        for i in 0..30 {
            t.write(&format!("d{}/f{i}.txt", i % 3), "x\n");
        }
        t.commit_all("files");
        // git writes the cache-tree on commit; `git status` refreshes stat data
        t.git(&["status", "--porcelain"]);
        let bytes = std::fs::read(t.path().join(".git/index")).unwrap();
        let parsed = super::parse(&bytes).expect("a version 2 index");
        let repo = git2::Repository::open(t.path()).unwrap();
        let index = repo.index().unwrap();
        assert_eq!(parsed.entries.len(), index.len());
        for (raw, e) in parsed.entries.iter().zip(index.iter()) {
            assert_eq!(raw.path, e.path.as_slice());
            assert_eq!((raw.mode, raw.size, raw.ino), (e.mode, e.file_size, e.ino));
            assert_eq!(raw.mtime, (e.mtime.seconds() as u32, e.mtime.nanoseconds()));
        }
        let head_tree = repo.head().unwrap().peel_to_tree().unwrap().id();
        assert_eq!(parsed.root_tree, Some(head_tree));
        assert!(super::parse(b"DIRC\0\0\0\x04").is_none());
    }

    /// An index written by [`super::write`] is one git reads as clean without refreshing it:
    /// the checksum, the order (entries given out of order), modes, stat data and a submodule entry; the last of a repeated path wins; an existing
    /// lock is an error that changes nothing.
    #[test]
    fn writes_an_index_git_finds_clean() {
        let t = TestRepo::new();
        for p in ["a-b", "a/b", "a.b", "z/y/x.txt", "bin/run"] {
            t.write(p, &format!("{p}\n"));
        }
        t.commit_all("files");
        let repo = git2::Repository::open(t.path()).unwrap();
        let tree = repo.head().unwrap().peel_to_tree().unwrap();
        let sub = repo.head().unwrap().target().unwrap();
        let mut files = Vec::new();
        tree.walk(git2::TreeWalkMode::PreOrder, |dir, e| {
            if e.kind() == Some(git2::ObjectType::Blob) {
                let path = format!("{dir}{}", e.name().unwrap());
                files.push((path, e.id(), e.filemode() as u32));
            }
            git2::TreeWalkResult::Ok
        })
        .unwrap();
        let stats: Vec<std::fs::Metadata> = files
            .iter()
            .map(|(p, ..)| std::fs::symlink_metadata(t.path().join(p)).unwrap())
            .collect();
        let wrong = std::fs::symlink_metadata(t.path().join("a-b")).unwrap();
        // out of order, and replaced by the tree's "a.b" that comes later
        let mut entries = vec![super::NewEntry {
            path: b"a.b",
            oid: sub,
            mode: 0o100755,
            stat: Some(&wrong),
        }];
        entries.extend(
            files
                .iter()
                .zip(&stats)
                .map(|((p, oid, mode), st)| super::NewEntry {
                    path: p.as_bytes(),
                    oid: *oid,
                    mode: *mode,
                    stat: Some(st),
                }),
        );
        // a submodule: stat data all zeros, as git leaves an uninitialized one
        std::fs::create_dir(t.path().join("sub")).unwrap();
        entries.push(super::NewEntry {
            path: b"sub",
            oid: sub,
            mode: 0o160000,
            stat: None,
        });
        let index = t.path().join(".git/index");
        let lock = t.path().join(".git/index.lock");
        std::fs::write(&lock, "held").unwrap();
        let before = std::fs::read(&index).unwrap();
        assert!(super::write(&index, &mut entries).is_err());
        assert_eq!(
            std::fs::read(&index).unwrap(),
            before,
            "a held lock changes nothing"
        );
        assert_eq!(std::fs::read(&lock).unwrap(), b"held");
        std::fs::remove_file(&lock).unwrap();
        super::write(&index, &mut entries).unwrap();
        assert!(!lock.exists());
        // libgit2 verifies the checksum on load
        let mut idx = repo.index().unwrap();
        idx.read(true).unwrap();
        let paths: Vec<String> = idx
            .iter()
            .map(|e| String::from_utf8(e.path).unwrap())
            .collect();
        assert_eq!(
            paths,
            [
                "README.md",
                "a-b",
                "a.b",
                "a/b",
                "bin/run",
                "sub",
                "z/y/x.txt"
            ]
        );
        assert_eq!(
            t.git(&["ls-files", "--stage", "sub"]),
            format!("160000 {sub} 0\tsub")
        );
        // clean without a refresh: diff-files trusts the stat data
        assert_eq!(t.git(&["diff-files", "--name-only"]), "");
        assert_eq!(
            t.git(&["diff-index", "--cached", "--name-only", "HEAD"]),
            "sub"
        );
        let parsed = std::fs::read(&index).unwrap();
        assert!(super::parse(&parsed).is_some());
    }
}
