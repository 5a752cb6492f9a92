//! Reading git's index file directly (versions 2 and 3): entries with their stat data, and the
//! root of the cache-tree extension. libgit2 also verifies the file's SHA-1 and builds maps on
//! load, which costs more than the whole stat pass on a big checkout; git itself skips the
//! checksum on ordinary reads. Anything unusual (version 4, split or sparse index, SHA-256)
//! returns `None` and callers fall back to libgit2.

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
}
