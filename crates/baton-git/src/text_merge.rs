//! Three-way merges of text content exactly as git's merge does them: git's own xdiff
//! (`xdl_merge`, vendored in libgit2 and linked already) with git's settings — histogram
//! diffs, the zealous conflict level, default markers.
//!
//! libgit2's `git_merge_file` can only ask xdiff for Myers or patience diffs, while git's merge
//! (`merge-ort` through `ll_xdl_merge`) asks for histogram; the two find different hunks on
//! repeated lines and moved blocks, so their verdicts and merged bytes differ. gitoxide's text
//! driver was tried and is not git's either: its histogram (imara-diff) breaks ties between
//! equally good anchors differently (the 8-line case in `tests/it/verify/git_truth.rs`).
//! Calling the same C code git runs, with git's parameters, is the only way to be byte-exact.
#![expect(
    unsafe_code,
    reason = "calls libgit2's vendored xdiff (git's own merge code) through its C interface"
)]

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_long, c_ulong, c_void};
use std::sync::Arc;

/// How a text merge of three versions of one file goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextMerge {
    /// It merges; the merged bytes, exactly as git writes them.
    Clean(Vec<u8>),
    /// Some lines conflict.
    Conflict,
    /// One of the versions is binary (git: a NUL in its first 8000 bytes): git does not merge
    /// lines of it, so differing sides conflict.
    Binary,
}

/// git's `buffer_is_binary`: a NUL byte in the first 8000 bytes.
pub fn is_binary(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(8000)].contains(&0)
}

// The C interface of xdiff (libgit2/deps/xdiff/xdiff.h), as vendored by libgit2-sys.
#[repr(C)]
struct MmFile {
    ptr: *mut c_char,
    size: c_long,
}

#[repr(C)]
struct XpParam {
    flags: c_ulong,
    ignore_regex: *mut *mut c_void,
    ignore_regex_nr: usize,
    anchors: *mut *mut c_char,
    anchors_nr: usize,
}

#[repr(C)]
struct XmParam {
    xpp: XpParam,
    marker_size: c_int,
    level: c_int,
    favor: c_int,
    style: c_int,
    ancestor: *const c_char,
    file1: *const c_char,
    file2: *const c_char,
}

const XDF_HISTOGRAM_DIFF: c_ulong = 1 << 15;
const XDL_MERGE_ZEALOUS: c_int = 2;
const DEFAULT_CONFLICT_MARKER_SIZE: c_int = 7;
/// git's `MAX_XDIFF_SIZE`: larger content is merged as binary.
const MAX_XDIFF_SIZE: usize = 1024 * 1024 * 1023;

#[repr(C)]
struct XdEmitConf {
    ctxlen: c_long,
    interhunkctxlen: c_long,
    flags: c_ulong,
    find_func: *const c_void,
    find_func_priv: *mut c_void,
    hunk_func: Option<extern "C" fn(c_long, c_long, c_long, c_long, *mut c_void) -> c_int>,
}

#[repr(C)]
struct XdEmitCb {
    priv_: *mut c_void,
    out_hunk: *const c_void,
    out_line: *const c_void,
}

unsafe extern "C" {
    fn xdl_diff(
        mf1: *mut MmFile,
        mf2: *mut MmFile,
        xpp: *const XpParam,
        xecfg: *const XdEmitConf,
        ecb: *mut XdEmitCb,
    ) -> c_int;
    fn xdl_merge(
        orig: *mut MmFile,
        mf1: *mut MmFile,
        mf2: *mut MmFile,
        xmp: *const XmParam,
        result: *mut MmFile,
    ) -> c_int;
}

/// The parameters of every diff git's merge makes.
fn merge_diff_params() -> XpParam {
    XpParam {
        flags: XDF_HISTOGRAM_DIFF,
        ignore_regex: std::ptr::null_mut(),
        ignore_regex_nr: 0,
        anchors: std::ptr::null_mut(),
        anchors_nr: 0,
    }
}

fn mmfile(bytes: &[u8]) -> MmFile {
    MmFile {
        // xdiff only reads its inputs
        ptr: bytes.as_ptr().cast_mut().cast(),
        size: bytes.len() as c_long,
    }
}

/// Merge `ours` and `theirs` against `base` the way `git merge` does (`ll_xdl_merge` with
/// `merge-ort`'s options). `None` only if xdiff fails (out of memory).
pub fn merge(base: &[u8], ours: &[u8], theirs: &[u8]) -> Option<TextMerge> {
    if [base, ours, theirs]
        .into_iter()
        .any(|b| is_binary(b) || b.len() > MAX_XDIFF_SIZE)
    {
        return Some(TextMerge::Binary);
    }
    // xdiff allocates through libgit2's allocator, set up by libgit2's global init
    libgit2_sys::init();
    let (mut o, mut a, mut b) = (mmfile(base), mmfile(ours), mmfile(theirs));
    let labels = [c"ours", c"base", c"theirs"];
    let params = XmParam {
        xpp: merge_diff_params(),
        marker_size: DEFAULT_CONFLICT_MARKER_SIZE,
        level: XDL_MERGE_ZEALOUS,
        favor: 0,
        style: 0,
        ancestor: labels[1].as_ptr(),
        file1: labels[0].as_ptr(),
        file2: labels[2].as_ptr(),
    };
    let mut result = MmFile {
        ptr: std::ptr::null_mut(),
        size: 0,
    };
    // SAFETY: the inputs are valid for their lengths and only read; the parameter struct
    // matches xdiff.h field for field; the result buffer is allocated by libgit2's allocator
    // (the default one, malloc) and freed below with free.
    let conflicts = unsafe { xdl_merge(&mut o, &mut a, &mut b, &params, &mut result) };
    let bytes = if result.ptr.is_null() || result.size <= 0 {
        Vec::new()
    } else {
        // SAFETY: xdiff wrote `size` bytes at `ptr`
        unsafe { std::slice::from_raw_parts(result.ptr.cast::<u8>(), result.size as usize) }
            .to_vec()
    };
    if !result.ptr.is_null() {
        // SAFETY: allocated by xdiff with libgit2's default allocator (malloc), freed once
        unsafe { libc::free(result.ptr.cast()) };
    }
    match conflicts {
        0 => Some(TextMerge::Clean(bytes)),
        n if n > 0 => Some(TextMerge::Conflict),
        _ => None,
    }
}

/// One side's diff against a base, as git's merge sees it: each hunk of the side's diff (git's
/// xdiff, histogram, slid as xdl_merge slides them) as base lines `[s, e)` replaced by side
/// lines `[as, ae)`, and the side's text with its line starts.
pub struct SideDiff {
    hunks: Vec<[u32; 4]>,
    text: Arc<[u8]>,
    /// Where each line of `text` starts, and `text.len()` last.
    lines: Vec<u32>,
}

impl SideDiff {
    /// The bytes of side lines `[from, to)`.
    fn slice(&self, from: u32, to: u32) -> Option<&[u8]> {
        let (from, to) = (
            *self.lines.get(from as usize)?,
            *self.lines.get(to as usize)?,
        );
        self.text.get(from as usize..to as usize)
    }
}

/// xdiff's hunks of `side` against `base`, as `xdl_merge` computes them.
fn xdiff_hunks(base: &[u8], side: &[u8]) -> Option<Vec<[u32; 4]>> {
    extern "C" fn push(
        start: c_long,
        count: c_long,
        start_b: c_long,
        count_b: c_long,
        out: *mut c_void,
    ) -> c_int {
        // SAFETY: `out` is the `Vec` handed to xdl_diff below, alive for the whole call
        let out = unsafe { &mut *out.cast::<Vec<[u32; 4]>>() };
        out.push([
            start as u32,
            (start + count) as u32,
            start_b as u32,
            (start_b + count_b) as u32,
        ]);
        0
    }
    libgit2_sys::init();
    let mut hunks: Vec<[u32; 4]> = Vec::new();
    let (mut o, mut s) = (mmfile(base), mmfile(side));
    let params = merge_diff_params();
    // no context: each change of xdiff's script is one hunk, as xdl_merge walks them
    let conf = XdEmitConf {
        ctxlen: 0,
        interhunkctxlen: 0,
        flags: 0,
        find_func: std::ptr::null(),
        find_func_priv: std::ptr::null_mut(),
        hunk_func: Some(push),
    };
    let mut cb = XdEmitCb {
        priv_: (&mut hunks as *mut Vec<[u32; 4]>).cast(),
        out_hunk: std::ptr::null(),
        out_line: std::ptr::null(),
    };
    // SAFETY: inputs valid and only read; the structs match xdiff.h; the callback only
    // touches `hunks`, which outlives the call
    let rc = unsafe { xdl_diff(&mut o, &mut s, &params, &conf, &mut cb) };
    if rc < 0 {
        return None;
    }
    Some(hunks)
}

/// Where each line of `text` starts, and `text.len()` last (xdiff's records: split after each
/// `\n`, a last line without one included).
fn line_starts(text: &[u8]) -> Vec<u32> {
    let mut lines = vec![0u32];
    lines.extend(
        memchr::memchr_iter(b'\n', text)
            .filter(|i| i + 1 < text.len())
            .map(|i| i as u32 + 1),
    );
    if !text.is_empty() {
        lines.push(text.len() as u32);
    }
    lines
}

/// The diff of `side` against `base`. `None` for binary content (or if xdiff fails).
pub fn side_diff(base: &[u8], side: Arc<[u8]>) -> Option<SideDiff> {
    if is_binary(base) || is_binary(&side) || base.len().max(side.len()) > MAX_XDIFF_SIZE {
        return None;
    }
    let hunks = xdiff_hunks(base, &side)?;
    Some(SideDiff {
        hunks,
        lines: line_starts(&side),
        text: side,
    })
}

/// Does xdl_merge (git's merge) merge these two sides of one base cleanly? Its rules, on the
/// sides' diffs: hunks of the two sides that overlap or touch (no unchanged base line between
/// them) form one region, chained; a region with hunks of both sides conflicts unless both
/// sides' text over it is the same (xdiff's eager and zealous levels resolve identical
/// changes). The replay corpus checks this against `git merge-tree`. `None` if the diffs are
/// not of one base (then merge in full).
pub fn merges_cleanly(a: &SideDiff, b: &SideDiff) -> Option<bool> {
    let mut all: Vec<(usize, [u32; 4])> = a
        .hunks
        .iter()
        .map(|h| (0, *h))
        .chain(b.hunks.iter().map(|h| (1, *h)))
        .collect();
    all.sort_by_key(|(side, h)| (h[0], *side));
    let sides = [a, b];
    let mut i = 0;
    while i < all.len() {
        // the region: every following hunk starting at or before its end
        let (mut end, mut j) = (all[i].1[1], i + 1);
        while j < all.len() && all[j].1[0] <= end {
            end = end.max(all[j].1[1]);
            j += 1;
        }
        let region = &all[i..j];
        let start = region[0].1[0];
        if region.iter().any(|(s, _)| *s == 0) && region.iter().any(|(s, _)| *s == 1) {
            let text = |side: usize| {
                let mine: Vec<&[u32; 4]> = region
                    .iter()
                    .filter(|(s, _)| *s == side)
                    .map(|(_, h)| h)
                    .collect();
                let (first, last) = (mine.first()?, mine.last()?);
                let from = first[2].checked_sub(first[0].checked_sub(start)?)?;
                let to = last[3].checked_add(end.checked_sub(last[1])?)?;
                sides[side].slice(from, to)
            };
            if text(0)? != text(1)? {
                return Some(false);
            }
        }
        i = j;
    }
    Some(true)
}

/// A cached side diff (`None`: binary content, merged in full).
type Cached = Option<Arc<SideDiff>>;

/// Each side's hunks against a base, per (base blob, side blob): an agent's diff against the
/// base is the same in every pair it is part of, so it is computed once for all of them.
#[derive(Default)]
pub struct HunkCache {
    hunks: std::sync::Mutex<HashMap<(git2::Oid, git2::Oid), Cached>>,
    /// Blob contents: an ancestor is diffed against many sides, a side against several
    /// ancestors; each is read (inflated) once.
    blobs: std::sync::Mutex<HashMap<git2::Oid, Arc<[u8]>>>,
}

impl HunkCache {
    /// The diff of `side` against `base` (`None`: binary), computed by `compute` on a miss.
    pub fn get(
        &self,
        base: git2::Oid,
        side: git2::Oid,
        compute: impl FnOnce() -> Option<SideDiff>,
    ) -> Option<Arc<SideDiff>> {
        let lock = || self.hunks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = lock().get(&(base, side)) {
            return h.clone();
        }
        let h = compute().map(Arc::new);
        lock().insert((base, side), h.clone());
        h
    }

    /// The content of the blob `base`, read by `read` once.
    pub fn blob<E>(
        &self,
        base: git2::Oid,
        read: impl FnOnce() -> Result<Arc<[u8]>, E>,
    ) -> Result<Arc<[u8]>, E> {
        let lock = || self.blobs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = lock().get(&base) {
            return Ok(b.clone());
        }
        let b = read()?;
        lock().insert(base, b.clone());
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<u8> {
        s.chars().flat_map(|c| [c as u8, b'\n']).collect()
    }

    #[test]
    fn disjoint_edits_merge_and_adjacent_ones_conflict() {
        let base = b"1\n2\n3\n4\n5\n6\n7\n8\n";
        assert_eq!(
            merge(
                base,
                b"one\n2\n3\n4\n5\n6\n7\n8\n",
                b"1\n2\n3\n4\n5\n6\n7\neight\n"
            ),
            Some(TextMerge::Clean(b"one\n2\n3\n4\n5\n6\n7\neight\n".to_vec()))
        );
        assert_eq!(
            merge(
                base,
                b"1\nTWO\n3\n4\n5\n6\n7\n8\n",
                b"1\n2\nTHREE\n4\n5\n6\n7\n8\n"
            ),
            Some(TextMerge::Conflict)
        );
        // the same change on both sides is not a conflict
        let same = b"1\nTWO\n3\n4\n5\n6\n7\n8\n";
        assert_eq!(
            merge(base, same, same),
            Some(TextMerge::Clean(same.to_vec()))
        );
        assert_eq!(merge(base, b"a\0b", base), Some(TextMerge::Binary));
        assert_eq!(merge(b"", b"", b""), Some(TextMerge::Clean(Vec::new())));
    }

    /// The verdict from cached side diffs is xdl_merge's, on edits near and far, identical
    /// changes, insertions at a boundary, deletions, and the histogram case.
    #[test]
    fn side_diffs_give_xdl_merges_verdict() {
        let base = lines("12345678");
        let sides = [
            lines("A2345678"),
            lines("1B345678"),
            lines("12C45678"),
            lines("1234567D"),
            lines("12x345678"),
            lines("1245678"),
            lines("1B3456"),
            lines("12345678Z"),
            lines("B1B345678"),
            "1\n2\n3\n4\n5\n6\n7\n8".as_bytes().to_vec(),
        ];
        for a in &sides {
            for b in &sides {
                let want = matches!(merge(&base, a, b), Some(TextMerge::Clean(_)));
                let (da, db) = (
                    side_diff(&base, a[..].into()).unwrap(),
                    side_diff(&base, b[..].into()).unwrap(),
                );
                assert_eq!(merges_cleanly(&da, &db), Some(want), "{a:?} / {b:?}");
            }
        }
        let (o, a, b) = (lines("bbbbadbc"), lines("bbdbabc"), lines("dbbbab"));
        let (da, db) = (
            side_diff(&o, a[..].into()).unwrap(),
            side_diff(&o, b[..].into()).unwrap(),
        );
        assert_eq!(merges_cleanly(&da, &db), Some(false));
        assert!(side_diff(&base, b"\0"[..].into()).is_none());
    }

    #[test]
    fn diffs_with_histogram_as_git_merge_does() {
        // a Myers merge of these is clean; git's (histogram) conflicts
        assert_eq!(
            merge(&lines("bbbbadbc"), &lines("bbdbabc"), &lines("dbbbab")),
            Some(TextMerge::Conflict)
        );
    }
}
