//! Rename detection as git's merge does it (`diffcore-rename.c`), not as libgit2 does.
//!
//! libgit2 scores similarity with its own signature and ignores leading whitespace by
//! default, so a file moved and re-indented counts as renamed where git scores it at a few
//! percent, and git's 66% can fall under libgit2's 50%. Here: empty files are never rename
//! sources; exact renames (same blob, same kind) first, preferring the same file name; then
//! pairs whose file names are unique on both sides at 75% or more; then every remaining pair at
//! git's default 50%, best score first. Similarity is git's span hash: content cut into
//! chunks at each newline or every 64 bytes, `copied / max(size)` of the chunks in common.

use std::collections::{BTreeMap, HashMap};

use crate::changes::FileChange;

/// git's `MAX_SCORE`; 50% is git's default rename threshold.
const MAX_SCORE: u64 = 60_000;
const MIN_SCORE: u64 = MAX_SCORE / 2;
const HASHBASE: u32 = 107_927;
/// git keeps this many best sources per destination before the greedy pass.
const CANDIDATES_PER_DST: usize = 4;

/// One side of a possible rename: a deleted (source) or added (destination) file.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub path: &'a str,
    pub oid: git2::Oid,
    pub mode: u32,
}

fn is_regular(mode: u32) -> bool {
    mode & 0o170000 == 0o100000
}

fn is_link(mode: u32) -> bool {
    mode & 0o170000 == 0o120000
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The empty blob, never a rename source in git.
pub fn empty_blob() -> git2::Oid {
    git2::Oid::from_bytes(&[
        0xe6, 0x9d, 0xe2, 0x9b, 0xb2, 0xd1, 0xd6, 0x43, 0x4b, 0x8b, 0x29, 0xae, 0x77, 0x5a, 0xd8,
        0xc2, 0xe4, 0x8c, 0x53, 0x91,
    ])
    .unwrap_or_else(|_| git2::Oid::zero())
}

/// git's span hash of some content: byte counts per chunk hash.
pub fn span_hash(data: &[u8]) -> HashMap<u32, u64> {
    let is_text = !data[..data.len().min(8000)].contains(&0);
    let mut out: HashMap<u32, u64> = HashMap::new();
    let (mut accum1, mut accum2): (u32, u32) = (0, 0);
    let mut n: u64 = 0;
    let mut i = 0;
    while i < data.len() {
        let c = data[i];
        i += 1;
        if is_text && c == b'\r' && data.get(i) == Some(&b'\n') {
            continue;
        }
        let old1 = accum1;
        accum1 = (accum1 << 7) ^ (accum2 >> 25);
        accum2 = (accum2 << 7) ^ (old1 >> 25);
        accum1 = accum1.wrapping_add(u32::from(c));
        n += 1;
        if n < 64 && c != b'\n' {
            continue;
        }
        let h = accum1.wrapping_add(accum2.wrapping_mul(0x61)) % HASHBASE;
        *out.entry(h).or_default() += n;
        n = 0;
        accum1 = 0;
        accum2 = 0;
    }
    if n > 0 {
        let h = accum1.wrapping_add(accum2.wrapping_mul(0x61)) % HASHBASE;
        *out.entry(h).or_default() += n;
    }
    out
}

/// git's similarity score of two regular files (0..=60000).
pub fn similarity(src: &[u8], dst: &[u8]) -> u64 {
    score(&Hashed::new(src.to_vec()), &Hashed::new(dst.to_vec()))
}

/// A file's size and span hash, computed once however many pairs it is scored in.
struct Hashed {
    size: u64,
    spans: HashMap<u32, u64>,
}

impl Hashed {
    fn new(data: Vec<u8>) -> Self {
        Hashed {
            size: data.len() as u64,
            spans: span_hash(&data),
        }
    }
}

fn too_different(src: u64, dst: u64) -> bool {
    let (max, min) = (src.max(dst), src.min(dst));
    max == 0 || max * (MAX_SCORE - MIN_SCORE) < (max - min) * MAX_SCORE
}

fn score(src: &Hashed, dst: &Hashed) -> u64 {
    if too_different(src.size, dst.size) {
        return 0;
    }
    let copied: u64 = src
        .spans
        .iter()
        .map(|(h, c)| dst.spans.get(h).map_or(0, |dc| (*dc).min(*c)))
        .sum();
    copied * MAX_SCORE / src.size.max(dst.size)
}

/// Pair deleted files (`srcs`) with added files (`dsts`) as git's merge would: returns
/// `(src index, dst index)` pairs. `content` reads a blob (`None`: unreadable, never paired
/// inexactly).
pub fn find_renames(
    srcs: &[Candidate<'_>],
    dsts: &[Candidate<'_>],
    mut content: impl FnMut(git2::Oid) -> Option<Vec<u8>>,
) -> Vec<(usize, usize)> {
    let empty = empty_blob();
    let mut src_used = vec![false; srcs.len()];
    let mut dst_used = vec![false; dsts.len()];
    for (i, s) in srcs.iter().enumerate() {
        if s.oid == empty || !(is_regular(s.mode) || is_link(s.mode)) {
            src_used[i] = true; // never a source
        }
    }
    let mut out = Vec::new();
    // exact renames: the same blob, preferring a source with the same file name
    let mut by_oid: HashMap<git2::Oid, Vec<usize>> = HashMap::new();
    for (i, s) in srcs.iter().enumerate() {
        if !src_used[i] {
            by_oid.entry(s.oid).or_default().push(i);
        }
    }
    for (j, d) in dsts.iter().enumerate() {
        let Some(cands) = by_oid.get(&d.oid) else {
            continue;
        };
        let fits = |i: &&usize| !src_used[**i] && is_link(srcs[**i].mode) == is_link(d.mode);
        let pick = cands
            .iter()
            .filter(fits)
            .find(|i| basename(srcs[**i].path) == basename(d.path))
            .or_else(|| cands.iter().find(fits))
            .copied();
        if let Some(i) = pick {
            src_used[i] = true;
            dst_used[j] = true;
            out.push((i, j));
        }
    }
    let live_src: Vec<usize> = (0..srcs.len())
        .filter(|i| !src_used[*i] && is_regular(srcs[*i].mode))
        .collect();
    let live_dst: Vec<usize> = (0..dsts.len())
        .filter(|j| !dst_used[*j] && is_regular(dsts[*j].mode))
        .collect();
    if live_src.is_empty() || live_dst.is_empty() {
        out.sort_unstable();
        return out;
    }
    let mut cache: HashMap<git2::Oid, Option<std::rc::Rc<Hashed>>> = HashMap::new();
    let mut load = |oid: git2::Oid| -> Option<std::rc::Rc<Hashed>> {
        cache
            .entry(oid)
            .or_insert_with(|| content(oid).map(|d| std::rc::Rc::new(Hashed::new(d))))
            .clone()
    };
    let mut pair_score = |i: usize, j: usize| -> u64 {
        match (load(srcs[i].oid), load(dsts[j].oid)) {
            (Some(a), Some(b)) => score(&a, &b),
            _ => 0,
        }
    };
    // file names unique among the remaining sources and destinations pair first, at 75%
    let mut src_names: HashMap<&str, usize> = HashMap::new();
    for i in &live_src {
        *src_names.entry(basename(srcs[*i].path)).or_default() += 1;
    }
    let mut dst_names: HashMap<&str, usize> = HashMap::new();
    for j in &live_dst {
        *dst_names.entry(basename(dsts[*j].path)).or_default() += 1;
    }
    for &j in &live_dst {
        let name = basename(dsts[j].path);
        if src_names.get(name) != Some(&1) || dst_names.get(name) != Some(&1) {
            continue;
        }
        let Some(&i) = live_src.iter().find(|i| basename(srcs[**i].path) == name) else {
            continue;
        };
        if src_used[i] {
            continue;
        }
        if pair_score(i, j) >= MIN_SCORE + (MAX_SCORE - MIN_SCORE) / 2 {
            src_used[i] = true;
            dst_used[j] = true;
            out.push((i, j));
        }
    }
    // everything else: the best few sources per destination, then greedily by score
    let mut scored: Vec<(u64, bool, usize, usize)> = Vec::new();
    for &j in live_dst.iter().filter(|j| !dst_used[**j]) {
        let mut best: Vec<(u64, bool, usize, usize)> = live_src
            .iter()
            .filter(|i| !src_used[**i])
            .filter_map(|&i| {
                let s = pair_score(i, j);
                (s >= MIN_SCORE)
                    .then(|| (s, basename(srcs[i].path) == basename(dsts[j].path), j, i))
            })
            .collect();
        best.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.3.cmp(&b.3)));
        best.truncate(CANDIDATES_PER_DST);
        scored.extend(best);
    }
    scored.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then(b.1.cmp(&a.1))
            .then(a.2.cmp(&b.2))
            .then(a.3.cmp(&b.3))
    });
    for (_, _, j, i) in scored {
        if src_used[i] || dst_used[j] {
            continue;
        }
        src_used[i] = true;
        dst_used[j] = true;
        out.push((i, j));
    }
    out.sort_unstable();
    out
}

/// The directories a line of work renamed, as git's merge detects them: `old dir -> new dir`.
///
/// Each file rename votes for the pair of its directories once their common trailing
/// components are stripped (`a/b/c/f -> x/b/c/f` votes `a -> x`); a directory counts as
/// renamed when it is gone on this side (no file of the base below it survives in place and
/// none was added there) and one new directory has the most votes (a tie renames nothing).
/// The other side's files added inside such a directory would follow the rename, which git
/// (`merge.directoryRenames=conflict`, the default) reports as a conflict.
pub fn dir_renames(
    repo: &git2::Repository,
    base: Option<&git2::Tree<'_>>,
    changes: &BTreeMap<String, FileChange>,
) -> BTreeMap<String, String> {
    let mut votes: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for c in changes.values().filter(|c| c.is_rename()) {
        let Some(dest) = c.dest.as_deref() else {
            continue;
        };
        let (Some((mut od, _)), Some((mut nd, _))) =
            (c.key.rsplit_once('/'), dest.rsplit_once('/'))
        else {
            continue;
        };
        while let (Some((op, ol)), Some((np, nl))) = (od.rsplit_once('/'), nd.rsplit_once('/')) {
            if ol != nl {
                break;
            }
            od = op;
            nd = np;
        }
        if od == nd {
            continue;
        }
        *votes
            .entry(od.to_owned())
            .or_default()
            .entry(nd.to_owned())
            .or_default() += 1;
    }
    let mut out = BTreeMap::new();
    for (old, to) in votes {
        let best = to.values().copied().max().unwrap_or(0);
        let winners: Vec<&String> = to
            .iter()
            .filter(|(_, n)| **n == best)
            .map(|(d, _)| d)
            .collect();
        let [winner] = winners.as_slice() else {
            continue;
        };
        if dir_survives(repo, base, changes, &old) {
            continue;
        }
        out.insert(old, (*winner).clone());
    }
    out
}

/// Some file stays under `dir` on this side: a base file not deleted or moved out, or a new
/// one.
fn dir_survives(
    repo: &git2::Repository,
    base: Option<&git2::Tree<'_>>,
    changes: &BTreeMap<String, FileChange>,
    dir: &str,
) -> bool {
    let prefix = format!("{dir}/");
    if changes
        .values()
        .any(|c| c.dest.as_deref().is_some_and(|d| d.starts_with(&prefix)))
    {
        return true;
    }
    let Some(sub) = base
        .and_then(|t| t.get_path(&crate::pathkey::key_path(dir)).ok())
        .and_then(|e| repo.find_tree(e.id()).ok())
    else {
        return false;
    };
    let Ok(files) = crate::changes::tree_files(repo, &sub) else {
        return true;
    };
    files.iter().any(|(p, _, _)| {
        let full = format!("{prefix}{p}");
        !changes.contains_key(&full)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reindenting_a_file_is_not_similar() {
        let body: String = (0..40).map(|i| format!("fn f{i}() {{ {i} }}\n")).collect();
        let indented: String = body.lines().map(|l| format!("    {l}\n")).collect();
        assert_eq!(similarity(body.as_bytes(), body.as_bytes()), MAX_SCORE);
        assert!(similarity(body.as_bytes(), indented.as_bytes()) < MIN_SCORE);
    }

    #[test]
    fn the_empty_blob_id_is_gits() {
        assert_eq!(
            empty_blob(),
            git2::Oid::hash_object(git2::ObjectType::Blob, b"").unwrap()
        );
    }
}
