//! Append-only JSON-lines logs (metrics).
//!
//! Appends take the file's lock, so whole lines from concurrent writers never interleave. A last
//! line left without its newline by a crashed writer is terminated before the next append, so
//! the damage stays one bad line that readers count and skip, and the new lines are whole.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::{StoreError, lock_exclusive};

/// What a read of a JSON-lines file found besides the good records.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct JsonlStats {
    /// Lines that parsed.
    pub good: u64,
    /// Lines that did not parse (torn writes, garbage); blank lines are not counted.
    pub bad: u64,
    /// 1-based numbers of the first bad lines (at most 10), for error messages.
    pub first_bad_lines: Vec<u64>,
}

/// Append `lines` (each without its newline) to `path` as whole lines, under the file's lock.
/// `durable` adds an fsync before the lock is released.
pub fn append_lines(path: &Path, lines: &[String], durable: bool) -> Result<(), StoreError> {
    let _guard = lock_exclusive(path)?;
    let mut file = open_for_append(path)?;
    append_locked(path, &mut file, lines, durable)
}

fn open_for_append(path: &Path) -> Result<File, StoreError> {
    crate::confine::open_append(path, true)
}

/// Write `lines` at the end of `file` (whose lock the caller holds), after a newline if a
/// crashed writer left the last line unterminated.
fn append_locked(
    path: &Path,
    file: &mut File,
    lines: &[String],
    durable: bool,
) -> Result<(), StoreError> {
    let len = file
        .metadata()
        .map_err(|e| StoreError::io("stat", path, e))?
        .len();
    let mut buf = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum::<usize>() + 1);
    if len > 0 {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::Start(len - 1))
            .and_then(|_| file.read_exact(&mut last))
            .map_err(|e| StoreError::io("read", path, e))?;
        if last[0] != b'\n' {
            buf.push(b'\n');
        }
    }
    for line in lines {
        debug_assert!(
            !line.contains('\n'),
            "a JSON line must not contain a newline"
        );
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
    }
    file.write_all(&buf)
        .map_err(|e| StoreError::io("append to", path, e))?;
    if durable {
        file.sync_data()
            .map_err(|e| StoreError::io("sync", path, e))?;
    }
    Ok(())
}

/// [`append_lines`] for a writer that appends often (a run's metrics): the file and its lock
/// file stay open, so each append is a lock, a look at the last byte and one write, with no
/// path lookups. The lock is the same sidecar lock other writers take.
#[derive(Debug)]
pub struct JsonlAppender {
    path: PathBuf,
    lock: File,
    file: File,
}

impl JsonlAppender {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        // takes (and at once drops) the lock: it makes the directory and the lock file
        let guard = lock_exclusive(path)?;
        let lock = OpenOptions::new()
            .write(true)
            .open(guard.path())
            .map_err(|e| StoreError::io("open lock file", guard.path(), e))?;
        drop(guard);
        Ok(JsonlAppender {
            path: path.to_owned(),
            lock,
            file: open_for_append(path)?,
        })
    }

    pub fn append(&mut self, lines: &[String]) -> Result<(), StoreError> {
        let lock_path = crate::lock::lock_path(&self.path);
        self.lock
            .lock()
            .map_err(|e| StoreError::io("lock", &lock_path, e))?;
        let result = append_locked(&self.path, &mut self.file, lines, false);
        let _ = self.lock.unlock();
        result
    }
}

/// Stream the records of a JSON-lines file to `each`, skipping and counting lines that do not
/// parse. A missing file reads as empty.
pub fn read_jsonl<T: DeserializeOwned>(
    path: &Path,
    mut each: impl FnMut(T),
) -> Result<JsonlStats, StoreError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(JsonlStats::default()),
        Err(e) => return Err(StoreError::io("open", path, e)),
    };
    let mut stats = JsonlStats::default();
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| StoreError::io("read", path, e))?;
        if n == 0 {
            break;
        }
        number += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<T>(&line) {
            Ok(v) => {
                stats.good += 1;
                each(v);
            }
            Err(_) => {
                stats.bad += 1;
                if stats.first_bad_lines.len() < 10 {
                    stats.first_bad_lines.push(number);
                }
            }
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_open_appenders_and_one_shot_appends_keep_lines_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join("m.jsonl");
        // a torn last line from a crashed writer, before any appender opened the file
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "{\"w\":9,\"n\":0}\n{\"w\":9").unwrap();
        let threads: Vec<_> = (0..3)
            .map(|w| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let mut appender = (w < 2).then(|| JsonlAppender::open(&path).unwrap());
                    for n in 0..200 {
                        let line = format!("{{\"w\":{w},\"n\":{n},\"pad\":\"{}\"}}", "x".repeat(n));
                        match &mut appender {
                            Some(a) => a.append(&[line]).unwrap(),
                            None => append_lines(&path, &[line], false).unwrap(),
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let mut per_writer = [0u32; 3];
        let stats = read_jsonl::<serde_json::Value>(&path, |v| {
            if let Some(w) = v["w"].as_u64().filter(|w| *w < 3) {
                assert_eq!(
                    v["n"].as_u64(),
                    Some(u64::from(per_writer[w as usize])),
                    "in order"
                );
                per_writer[w as usize] += 1;
            }
        })
        .unwrap();
        assert_eq!(per_writer, [200, 200, 200]);
        assert_eq!(stats.bad, 1, "only the torn line is bad");
    }

    #[test]
    fn torn_last_line_is_terminated_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        std::fs::write(&path, "{\"a\":1}\nnot json\n{\"a\":2").unwrap();
        append_lines(&path, &["{\"a\":3}".into()], false).unwrap();
        let mut seen = vec![];
        let stats = read_jsonl::<serde_json::Value>(&path, |v| seen.push(v["a"].as_i64())).unwrap();
        assert_eq!(seen, vec![Some(1), Some(3)]);
        assert_eq!(stats.good, 2);
        assert_eq!(stats.bad, 2);
        assert_eq!(stats.first_bad_lines, vec![2, 3]);
    }
}
