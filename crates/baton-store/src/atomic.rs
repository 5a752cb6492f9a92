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

/// The spare file earlier builds kept beside a file they rewrote often (`.<name>.spare`):
/// whoever removes `path` for good removes it too, if one is there.
pub fn spare_path(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.spare"))
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
/// A read that does not parse while the file changed during it (a writer that rewrites in
/// place: an earlier build's runner, or another program) is read again. A file that does not
/// parse and did not change is reported.
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
