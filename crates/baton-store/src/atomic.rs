//! Atomic rewrites and careful reads of JSON files.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::StoreError;

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Replace `path` with `bytes` so that a reader sees either the old or the new content, and a
/// crash at any point leaves one of the two.
///
/// The temp file has a unique name (`.<name>.<pid>.<counter>.tmp`, created with `create_new`),
/// so concurrent writers, in this process or others, never clobber each other's temp files.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = parent_of(path);
    crate::confine::create_dir_all(dir)?;
    let (tmp_path, mut tmp) = create_temp_beside(path)?;
    let result = (|| {
        tmp.write_all(bytes)
            .map_err(|e| StoreError::io("write", &tmp_path, e))?;
        tmp.sync_all()
            .map_err(|e| StoreError::io("sync", &tmp_path, e))?;
        drop(tmp);
        std::fs::rename(&tmp_path, path).map_err(|e| StoreError::io("rename into", path, e))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp_path);
    }
    result
}

fn create_temp_beside(path: &Path) -> Result<(PathBuf, File), StoreError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let pid = std::process::id();
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = path.with_file_name(format!(".{name}.{pid}.{n}.tmp"));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            // A stale temp file left by a crashed process that had our pid: take the next name.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(StoreError::io("create temp file beside", path, e)),
        }
    }
}

/// The spare file [`write_atomic_reusing`] keeps beside `path` (`.<name>.spare`): whoever
/// removes `path` for good removes it too.
pub fn spare_path(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.spare"))
}

/// [`write_atomic`] for a file that one writer rewrites many times while holding its lock
/// (the runner's execution): the new version is written into a spare file beside it
/// (`.<name>.spare`) and the two names are swapped (`renameat2(RENAME_EXCHANGE)`), so the old
/// version becomes the next write's spare. No inode is freed or allocated per write: on a
/// file system that scans recently freed inodes at every allocation (ext4 without a journal),
/// freeing one per write made every later file creation nearby slower, run after run.
///
/// Readers see the old or the new content, as with [`write_atomic`]; a reader still reading
/// the old version when a later write reuses it notices (see [`read_json`]) and reads again.
/// Without the swap (a file system that lacks it), or with a spare that is not a plain file
/// of its own, this is [`write_atomic`].
pub fn write_atomic_reusing(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let dir = parent_of(path);
    let spare = spare_path(path);
    crate::confine::check_parent_dirs(path)?;
    // the current version must be a plain file here, not a link to elsewhere
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() => {}
        _ => return write_atomic(path, bytes),
    }
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&spare);
    let Ok(mut file) = file else {
        return write_atomic(path, bytes);
    };
    // never write through a name that another file shares
    match file.metadata() {
        Ok(m) if m.file_type().is_file() && m.nlink() == 1 => {}
        _ => return write_atomic(path, bytes),
    }
    (|| {
        file.set_len(0)?;
        file.write_all(bytes)?;
        file.sync_all()
    })()
    .map_err(|e| StoreError::io("write", &spare, e))?;
    drop(file);
    match rustix::fs::renameat_with(
        rustix::fs::CWD,
        &spare,
        rustix::fs::CWD,
        path,
        rustix::fs::RenameFlags::EXCHANGE,
    ) {
        Ok(()) => {}
        // no swap here: the spare simply replaces the file
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS | rustix::io::Errno::OPNOTSUPP) => {
            std::fs::rename(&spare, path).map_err(|e| StoreError::io("rename into", path, e))?
        }
        Err(e) => return Err(StoreError::io("swap into", path, e.into())),
    }
    sync_dir(dir)
}

/// fsync a directory so a rename in it survives a power cut.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    let handle = File::open(dir).map_err(|e| StoreError::io("open directory", dir, e))?;
    handle
        .sync_all()
        .map_err(|e| StoreError::io("sync directory", dir, e))
}

/// Serialize `value` as pretty JSON (with a final newline) and write it atomically.
pub fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), StoreError> {
    write_atomic(path, &json_bytes(path, value)?)
}

/// `value` as the pretty JSON baton writes, with a final newline.
pub(crate) fn json_bytes<T: Serialize + ?Sized>(
    path: &Path,
    value: &T,
) -> Result<Vec<u8>, StoreError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| StoreError::Serialize {
        path: path.to_owned(),
        source,
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Write `value` to `path` only if no file is there yet; `AlreadyExists` otherwise.
///
/// The content is complete before the name appears (written to a temp file, then hard-linked
/// into place, which fails if the name is taken), so readers never see a partial file.
pub fn create_new_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), StoreError> {
    let dir = parent_of(path);
    crate::confine::create_dir_all(dir)?;
    let bytes = json_bytes(path, value)?;
    let (tmp_path, mut tmp) = create_temp_beside(path)?;
    let result = (|| {
        tmp.write_all(&bytes)
            .map_err(|e| StoreError::io("write", &tmp_path, e))?;
        tmp.sync_all()
            .map_err(|e| StoreError::io("sync", &tmp_path, e))?;
        match std::fs::hard_link(&tmp_path, path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StoreError::AlreadyExists {
                    path: path.to_owned(),
                });
            }
            Err(e) => return Err(StoreError::io("create", path, e)),
        }
        sync_dir(dir)
    })();
    let _ = std::fs::remove_file(&tmp_path);
    result
}

/// Read and parse a JSON file. A parse error names the file, line and column.
///
/// A file rewritten by [`write_atomic_reusing`] may be rewritten while it is read (the
/// version being read became the writer's spare): such a read does not parse, and the file
/// changed during it, so it is read again. A file that does not parse and did not change is
/// reported.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, StoreError> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let stamp = |m: &std::fs::Metadata| (m.dev(), m.ino(), m.mtime(), m.mtime_nsec(), m.size());
    let mut tries = 0;
    loop {
        let mut file = File::open(path).map_err(|e| StoreError::io("read", path, e))?;
        let before = file.metadata().map(|m| stamp(&m)).ok();
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| StoreError::io("read", path, e))?;
        match parse_json(path, &bytes) {
            Err(e) if tries < 5 => {
                let after = file.metadata().map(|m| stamp(&m)).ok();
                let now = std::fs::metadata(path).map(|m| stamp(&m)).ok();
                if before == after && after == now {
                    return Err(e);
                }
                tries += 1;
            }
            done => return done,
        }
    }
}

/// Parse the bytes read from `path`; an error names the file and the position.
pub(crate) fn parse_json<T: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Parse {
        path: path.to_owned(),
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    })
}

/// serde_json appends " at line L column C"; we print the position up front instead.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Copy `path` to a fresh `<path>.bak-<n>` beside it and return the backup's path.
/// Used by `--repair` paths before they replace a damaged file.
pub fn backup(path: &Path) -> Result<PathBuf, StoreError> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    for n in 1u32.. {
        let candidate = path.with_file_name(format!("{name}.bak-{n}"));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(mut out) => {
                let bytes = std::fs::read(path).map_err(|e| StoreError::io("read", path, e))?;
                out.write_all(&bytes)
                    .and_then(|()| out.sync_all())
                    .map_err(|e| StoreError::io("write backup", &candidate, e))?;
                sync_dir(parent_of(path))?;
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(StoreError::io("create backup", &candidate, e)),
        }
    }
    unreachable!("u32 backups exhausted")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_names_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, "{\n  \"a\": 1,\n  \"b\": \n").unwrap();
        let err = read_json::<serde_json::Value>(&path).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("{}:4:0: ", path.display())),
            "{text}"
        );
        assert!(err.is_bad_content());
        // the bad file is untouched
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\n  \"a\": 1,\n  \"b\": \n"
        );
    }

    #[test]
    fn reusing_writes_swap_two_inodes_and_free_none() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exec.json");
        let spare = dir.path().join(".exec.json.spare");
        write_atomic_reusing(&path, b"0").unwrap();
        let mut inodes = std::collections::BTreeSet::new();
        for n in 1..20u32 {
            write_atomic_reusing(&path, n.to_string().as_bytes()).unwrap();
            assert_eq!(std::fs::read_to_string(&path).unwrap(), n.to_string());
            // the version before is the spare, whole
            assert_eq!(
                std::fs::read_to_string(&spare).unwrap(),
                (n - 1).to_string()
            );
            inodes.insert(std::fs::metadata(&path).unwrap().ino());
            inodes.insert(std::fs::metadata(&spare).unwrap().ino());
        }
        assert_eq!(inodes.len(), 2, "the same two files all along: {inodes:?}");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "no temp file left: {names:?}");
    }

    #[test]
    fn reusing_write_never_writes_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside.txt");
        std::fs::write(&outside, "keep").unwrap();
        let path = dir.path().join("exec.json");
        write_atomic_reusing(&path, b"1").unwrap();
        // a symbolic link as the spare, then a hard link
        let spare = dir.path().join(".exec.json.spare");
        let _ = std::fs::remove_file(&spare);
        std::os::unix::fs::symlink(&outside, &spare).unwrap();
        write_atomic_reusing(&path, b"2").unwrap();
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "2");
        let _ = std::fs::remove_file(&spare);
        std::fs::hard_link(&outside, &spare).unwrap();
        write_atomic_reusing(&path, b"3").unwrap();
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "3");
        // the file itself a symbolic link: replaced, its target untouched
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&outside, &path).unwrap();
        write_atomic_reusing(&path, b"4").unwrap();
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "4");
    }

    /// A regression guard, not a proof: the window in which a reader holds the version a
    /// write is reusing is rarely hit here (each write fsyncs); what must hold is that readers
    /// racing the writer always get one whole version.
    #[test]
    fn readers_never_see_a_torn_version_of_a_reused_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exec.json");
        // versions of different lengths, so a torn read could not parse
        let version =
            |n: usize| serde_json::to_vec(&vec![n; 20_000 + (n * 7919) % 100_000]).unwrap();
        write_atomic_reusing(&path, &version(0)).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (path, stop) = (path.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut reads = 0u32;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let v: Vec<usize> = read_json(&path).expect("a whole version");
                        assert!(v.windows(2).all(|w| w[0] == w[1]), "one version's content");
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        for n in 1..60 {
            write_atomic_reusing(&path, &version(n)).unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for r in readers {
            assert!(r.join().expect("no reader failed") > 0);
        }
    }

    #[test]
    fn create_new_refuses_existing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        create_new_json(&path, &1).unwrap();
        let err = create_new_json(&path, &2).unwrap_err();
        assert!(matches!(err, StoreError::AlreadyExists { .. }));
        assert_eq!(read_json::<u32>(&path).unwrap(), 1);
        // no temp files are left behind
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("x.json")]);
    }

    #[test]
    fn backup_takes_fresh_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        std::fs::write(&path, "garbage").unwrap();
        let b1 = backup(&path).unwrap();
        let b2 = backup(&path).unwrap();
        assert_ne!(b1, b2);
        assert_eq!(std::fs::read_to_string(b2).unwrap(), "garbage");
    }
}
