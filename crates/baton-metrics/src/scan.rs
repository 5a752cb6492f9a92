//! The streaming, parallel reader of the metrics log.
//!
//! The file is read in chunks of [`CHUNK`] bytes cut at line ends; a group of chunks (two per
//! rayon thread) is parsed and aggregated in parallel, and the partial aggregates are merged in
//! file order before the next group is read. Memory is the group's chunks plus the aggregate
//! (whose largest part is one `u64` per `agent_complete` duration), never the whole file.

use std::io::Read;
use std::path::Path;
use std::time::SystemTime;

use rayon::prelude::*;

use crate::MetricsError;
use crate::aggregate::{Aggregate, Row};

/// Bytes per chunk.
pub const CHUNK: usize = 4 << 20;

/// Which events a summary covers.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only events of this plan.
    pub plan: Option<String>,
    /// Only events at or after this time.
    pub since: Option<SystemTime>,
}

/// The filter with `since` also as a canonical RFC 3339 string, to compare canonical event
/// times without parsing them.
struct Prepared<'f> {
    plan: Option<&'f str>,
    since: Option<(SystemTime, String)>,
}

fn canonical(time: &str) -> bool {
    // `YYYY-MM-DDTHH:MM:SS.mmmZ`, the one format baton writes: such strings sort as times
    let b = time.as_bytes();
    b.len() == 24 && b[10] == b'T' && b[19] == b'.' && b[23] == b'Z'
}

impl Prepared<'_> {
    fn matches(&self, row: &Row<'_>) -> bool {
        if let Some(plan) = self.plan
            && row.plan.as_ref().map(|p| p.0.as_ref()) != Some(plan)
        {
            return false;
        }
        if let Some((since, since_str)) = &self.since {
            let time = row.time.0.as_ref();
            if canonical(time) {
                return time >= since_str.as_str();
            }
            return humantime::parse_rfc3339_weak(time).is_ok_and(|t| t >= *since);
        }
        true
    }
}

/// Aggregate one chunk (whole lines; the last may lack its newline at the end of the file).
fn aggregate_chunk(chunk: &[u8], filter: &Prepared<'_>) -> Aggregate {
    let mut agg = Aggregate::default();
    let body = chunk.strip_suffix(b"\n").unwrap_or(chunk);
    if chunk.is_empty() {
        return agg;
    }
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', body).chain(std::iter::once(body.len()));
    for end in ends {
        let line = &body[start..end];
        start = end + 1;
        agg.lines += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let row = match crate::fastrow::parse(line) {
            Some(row) => Ok(row),
            None => serde_json::from_slice::<Row<'_>>(line),
        };
        match row {
            Ok(row) if row.schema_version == crate::Event::SCHEMA_VERSION => {
                if filter.matches(&row) {
                    agg.add(&row);
                } else {
                    agg.filtered_out += 1;
                }
            }
            _ => {
                let n = agg.lines;
                agg.add_bad(n);
            }
        }
    }
    agg
}

/// Aggregate the events of `bytes` (a whole log in memory) with the same rules as files.
pub fn aggregate_bytes(bytes: &[u8], filter: &Filter) -> Aggregate {
    let prepared = prepare(filter);
    aggregate_chunk(bytes, &prepared)
}

fn prepare(filter: &Filter) -> Prepared<'_> {
    Prepared {
        plan: filter.plan.as_deref(),
        since: filter
            .since
            .map(|t| (t, humantime::format_rfc3339_millis(t).to_string())),
    }
}

/// Append up to `want` bytes from `file` to `buf` (fewer only at the end of the file).
/// Unlike `read_to_end` this never grows `buf` past what it needs, so no chunk is copied
/// by a reallocation.
fn fill(file: &mut impl Read, buf: &mut Vec<u8>, want: usize) -> std::io::Result<usize> {
    let start = buf.len();
    buf.resize(start + want, 0);
    let mut filled = start;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                buf.truncate(filled);
                return Err(e);
            }
        }
    }
    buf.truncate(filled);
    Ok(filled - start)
}

/// Aggregate the log at `path`; a missing file is an empty log.
pub fn scan_file(path: &Path, filter: &Filter) -> Result<Aggregate, MetricsError> {
    scan_chunked(path, filter, CHUNK)
}

fn scan_chunked(path: &Path, filter: &Filter, chunk: usize) -> Result<Aggregate, MetricsError> {
    let io = |action, source| MetricsError::Io {
        action,
        path: path.to_owned(),
        source,
    };
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Aggregate::default()),
        Err(e) => return Err(io("open", e)),
    };
    let prepared = prepare(filter);
    let group = (rayon::current_num_threads() * 2).max(2);
    let mut total = Aggregate::default();
    let mut carry: Vec<u8> = Vec::new();
    // buffers are reused from group to group: fresh 4 MiB allocations cost page faults
    let mut pool: Vec<Vec<u8>> = Vec::with_capacity(group);
    let mut eof = false;
    while !eof {
        let mut chunks: Vec<Vec<u8>> = Vec::with_capacity(group);
        while chunks.len() < group && !eof {
            let mut buf = pool.pop().unwrap_or_default();
            buf.clear();
            buf.extend_from_slice(&carry);
            carry.clear();
            // a carried partial line is short, except for a line longer than a chunk
            let n = fill(&mut file, &mut buf, chunk).map_err(|e| io("read", e))?;
            if n == 0 {
                eof = true;
                if !buf.is_empty() {
                    chunks.push(buf);
                }
                continue;
            }
            match buf.iter().rposition(|&b| b == b'\n') {
                Some(i) => {
                    carry.extend_from_slice(&buf[i + 1..]);
                    buf.truncate(i + 1);
                    chunks.push(buf);
                }
                // a line longer than a chunk: keep reading until it ends
                None => carry = buf,
            }
        }
        let parts: Vec<Aggregate> = chunks
            .par_iter()
            .map(|c| aggregate_chunk(c, &prepared))
            .collect();
        pool = chunks;
        for part in parts {
            total.merge(part);
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(i: u32, event: &str, extra: &str) -> String {
        format!(
            r#"{{"schema_version":1,"event_id":"E-{i}","time":"2026-01-01T00:00:{:02}.000Z","event":"{event}"{extra}}}"#,
            i % 60
        )
    }

    #[test]
    fn small_chunks_give_the_same_aggregate_as_one_pass() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        let mut text = String::new();
        for i in 0..200u32 {
            let l = match i % 7 {
                0 => "garbage {".to_owned(),
                1 => String::new(),
                2 => line(
                    i,
                    "agent_complete",
                    r#","plan":"OP-20260101-000000-0000000a","batch":"B1","task_type":"test","duration_ms":5,"success":false,"error_class":"timeout""#,
                ),
                3 => line(i, "verification", r#","success":true"#),
                _ => line(
                    i,
                    "agent_complete",
                    &format!(r#","task_type":"implement","duration_ms":{i},"success":true"#),
                ),
            };
            text.push_str(&l);
            text.push('\n');
        }
        text.push_str("{\"torn\":");
        std::fs::write(&path, &text).unwrap();
        let whole = aggregate_bytes(text.as_bytes(), &Filter::default());
        for chunk in [1, 64, 1000, CHUNK] {
            let a = scan_chunked(&path, &Filter::default(), chunk).unwrap();
            assert_eq!(a.lines, 201, "chunk {chunk}");
            assert_eq!(a.bad, whole.bad, "chunk {chunk}");
            assert_eq!(a.bad, 30, "29 garbage lines and the torn one");
            assert_eq!(a.first_bad_lines, whole.first_bad_lines);
            assert_eq!(a.first_bad_lines[..3], [1, 8, 15]);
            assert_eq!(a.events, whole.events);
            assert_eq!(a.by_event, whole.by_event);
            assert_eq!(a.batches, whole.batches);
            assert_eq!(a.failures, whole.failures);
            let mut d1 = a.task_types["implement"].durations.clone();
            let mut d2 = whole.task_types["implement"].durations.clone();
            d1.sort_unstable();
            d2.sort_unstable();
            assert_eq!(d1, d2);
        }
    }
}
