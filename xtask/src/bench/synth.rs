//! Synthetic repositories for benchmarks, built fast with `git fast-import`.
//!
//! Content is deterministic (a fixed seed, fixed author and dates), so runs compare.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A small deterministic PRNG (xorshift64*): benchmarks need the same repo every run, not
/// cryptographic randomness.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// A git command with an isolated config and a fixed identity and date.
pub fn git(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_SYSTEM", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Bench")
        .env("GIT_AUTHOR_EMAIL", "bench@baton.invalid")
        .env("GIT_COMMITTER_NAME", "Bench")
        .env("GIT_COMMITTER_EMAIL", "bench@baton.invalid")
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z");
    cmd
}

/// Run git and fail loudly.
pub fn git_ok(dir: &Path, args: &[&str]) -> String {
    let out = git(dir).args(args).output().expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The path of file number `i` in a tree shaped like a real project: up to 3 directory
/// levels, ~40 files per directory.
pub fn file_path(i: usize) -> String {
    let (a, b, c) = (i / 4000, (i / 200) % 20, (i / 40) % 5);
    format!("src/m{a:02}/d{b:02}/p{c}/f{i:05}.rs")
}

/// Deterministic content of a file: `lines` numbered lines.
pub fn file_content(i: usize, lines: usize) -> String {
    let mut s = String::with_capacity(lines * 32);
    for l in 0..lines {
        s.push_str(&format!("// file {i} line {l}\n"));
    }
    s
}

/// Create a repository at `dir` with `files` files (40 lines each) in one commit on `main`,
/// checked out. Returns the repo path.
pub fn build_repo(dir: &Path, files: usize) -> PathBuf {
    std::fs::create_dir_all(dir).expect("create bench dir");
    git_ok(dir, &["init", "-q", "-b", "main"]);
    let mut child = git(dir)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("start git fast-import");
    {
        let stdin = child.stdin.as_mut().expect("piped stdin");
        let mut w = std::io::BufWriter::new(stdin);
        for i in 0..files {
            let data = file_content(i, 40);
            write!(w, "blob\nmark :{}\ndata {}\n{}\n", i + 1, data.len(), data).expect("write");
        }
        let msg = "synthetic repository";
        write!(
            w,
            "commit refs/heads/main\ncommitter Bench <bench@baton.invalid> 1767225600 +0000\ndata {}\n{}\n",
            msg.len(),
            msg
        )
        .expect("write");
        for i in 0..files {
            writeln!(w, "M 100644 :{} {}", i + 1, file_path(i)).expect("write");
        }
        writeln!(w).expect("write");
    }
    let status = child.wait().expect("wait for fast-import");
    assert!(status.success(), "git fast-import failed");
    git_ok(dir, &["checkout", "-q", "-f", "main"]);
    dir.to_owned()
}

/// One file of a real-shaped tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapedFile {
    /// Path relative to the repository root, `/`-separated.
    pub path: String,
    /// git mode: `100644`, `100755` or `120000` (a symlink, `content` is its target).
    pub mode: u32,
    pub content: Vec<u8>,
}

/// Files in a real-shaped tree by default: about what rust-lang/cargo has.
pub const REAL_SHAPED_FILES: usize = 3_000;

/// The files of a tree shaped like a real Rust repository such as rust-lang/cargo, from
/// `seed` (the same seed gives the same tree, byte for byte): `files` files under a handful of
/// top-level directories (`src/`, `crates/`, `tests/`, `benches/`, `doc/`, `ci/`, `.github/`);
/// directories nest up to 7 levels with an uneven fan-out (a few wide ones such as a test
/// suite with hundreds of files, many with a handful, snapshot-test style chains of small
/// directories); sizes follow a long-tailed (log-normal-like) distribution with a median of
/// about 2 KiB, a few empty files and a few files of 100+ KiB; ~1% executable scripts and a
/// couple of symlinks. Content is line-oriented text that compresses like source code.
pub fn real_shaped_files(seed: u64, files: usize) -> Vec<ShapedFile> {
    let mut rng = Rng::new(seed);
    let mut out: Vec<ShapedFile> = Vec::with_capacity(files);
    let mut seen = std::collections::HashSet::new();
    let tops: [(&str, usize); 8] = [
        ("src", 22),
        ("crates", 24),
        ("tests", 34),
        ("benches", 4),
        ("doc", 8),
        ("ci", 1),
        (".github", 1),
        ("", 1),
    ];
    let weight: usize = tops.iter().map(|t| t.1).sum();
    // Directories are grown breadth-first under each top-level directory: each directory gets
    // its own file count and subdirectory count, drawn so most are small and a few are wide.
    let mut queue: std::collections::VecDeque<(String, usize, usize)> = tops
        .iter()
        .map(|(name, w)| (name.to_string(), 0, files * w / weight))
        .collect();
    while let Some((dir, depth, budget)) = queue.pop_front() {
        if budget == 0 {
            continue;
        }
        // files here: a long tail (most dirs 1-12 files, some 50-300)
        let here = if depth == 0 && !dir.is_empty() {
            rng.below(4)
        } else if dir.is_empty() {
            budget
        } else {
            match rng.below(20) {
                0 => 40 + rng.below(260),
                1..=3 => 12 + rng.below(30),
                _ => 1 + rng.below(12),
            }
        }
        .min(budget);
        for _ in 0..here {
            let file = shaped_file(&mut rng, &dir, depth);
            if seen.insert(file.path.clone()) {
                out.push(file);
            }
        }
        let rest = budget - here.min(budget);
        if rest == 0 {
            continue;
        }
        if depth >= 6 {
            // too deep: the rest goes beside this directory's files
            for _ in 0..rest {
                let file = shaped_file(&mut rng, &dir, depth);
                if seen.insert(file.path.clone()) {
                    out.push(file);
                }
            }
            continue;
        }
        let subdirs = match rng.below(10) {
            0 => 10 + rng.below(60),
            1..=3 => 3 + rng.below(8),
            _ => 1 + rng.below(3),
        }
        .min(rest);
        let mut left = rest;
        for k in 0..subdirs {
            let share = if k + 1 == subdirs {
                left
            } else {
                (left / (subdirs - k)).max(1) * (50 + rng.below(100)) / 100
            }
            .min(left);
            left -= share;
            let name = dir_name(&mut rng, depth, k);
            let child = if dir.is_empty() {
                name
            } else {
                format!("{dir}/{name}")
            };
            queue.push_back((child, depth + 1, share));
        }
    }
    // a couple of symlinks, as real repositories have: beside a file, pointing at it
    for k in 0..2.min(out.len()) {
        let target = out[rng.below(out.len())].path.clone();
        let (path, content) = match target.rsplit_once('/') {
            Some((d, name)) => (format!("{d}/link-{k}.rs"), name.to_owned()),
            None => (format!("link-{k}.rs"), target.clone()),
        };
        if seen.insert(path.clone()) {
            out.push(ShapedFile {
                path,
                mode: 0o120000,
                content: content.into_bytes(),
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

const WORDS: &[&str] = &[
    "let",
    "fn",
    "pub",
    "struct",
    "impl",
    "self",
    "match",
    "Some",
    "None",
    "Ok",
    "Err",
    "return",
    "use",
    "mod",
    "crate",
    "for",
    "in",
    "if",
    "else",
    "mut",
    "ref",
    "String",
    "Vec",
    "Option",
    "Result",
    "path",
    "config",
    "package",
    "target",
    "build",
    "unit",
    "dep",
    "manifest",
    "ws",
    "registry",
    "source",
    "id",
    "name",
    "version",
    "features",
    "resolve",
    "&",
    "=",
    "->",
    "{",
    "}",
    "(",
    ")",
    ";",
    ",",
    "::",
    ".",
    "?",
    "0",
    "1",
    "//",
    "#[test]",
    "assert_eq!",
];

fn dir_name(rng: &mut Rng, depth: usize, k: usize) -> String {
    const NAMES: &[&str] = &[
        "core",
        "util",
        "ops",
        "sources",
        "compiler",
        "registry",
        "resolver",
        "testsuite",
        "cargo_add",
        "cargo_new",
        "fixtures",
        "support",
        "in",
        "out",
        "src",
        "tests",
        "benches",
        "lib",
        "bin",
        "git",
        "http",
        "config",
        "fingerprint",
        "lockfile",
        "profiles",
        "features",
        "workspaces",
        "build_script",
        "doc",
        "reference",
        "guide",
        "commands",
        "examples",
    ];
    let base = NAMES[rng.below(NAMES.len())];
    if depth >= 2 && rng.below(3) == 0 {
        format!("{base}_{k}")
    } else {
        format!(
            "{base}{}",
            if k > 0 {
                format!("_{k}")
            } else {
                String::new()
            }
        )
    }
}

fn shaped_file(rng: &mut Rng, dir: &str, depth: usize) -> ShapedFile {
    let (ext, mode) = match rng.below(100) {
        0 => ("sh", 0o100755),
        1..=60 => ("rs", 0o100644),
        61..=72 => ("md", 0o100644),
        73..=82 => ("toml", 0o100644),
        83..=88 => ("txt", 0o100644),
        89..=94 => ("json", 0o100644),
        _ => ("svg", 0o100644),
    };
    let stem = format!("{}_{}", WORDS[rng.below(22) + 21], rng.below(100_000));
    let name = format!("{stem}.{ext}");
    let path = if dir.is_empty() {
        name
    } else {
        format!("{dir}/{name}")
    };
    // log-normal-like: the product of a few uniform factors, median ~2 KiB, long tail
    let size = match rng.below(100) {
        0..=1 => 0,
        _ => {
            let mut s = 200.0_f64;
            for _ in 0..4 {
                s *= 0.5 + (rng.below(1000) as f64) / 333.0;
            }
            let s = if rng.below(200) == 0 { s * 40.0 } else { s };
            (s as usize).min(400_000) + depth
        }
    };
    let mut content = Vec::with_capacity(size + 64);
    if mode == 0o100755 {
        content.extend_from_slice(b"#!/bin/sh\nset -eu\n");
    }
    while content.len() < size {
        let words = 2 + rng.below(10);
        let indent = rng.below(4) * 4;
        content.extend(std::iter::repeat_n(b' ', indent));
        for w in 0..words {
            if w > 0 {
                content.push(b' ');
            }
            content.extend_from_slice(WORDS[rng.below(WORDS.len())].as_bytes());
        }
        content.push(b'\n');
    }
    content.truncate(size.max(if mode == 0o100755 { 18 } else { 0 }));
    if mode == 0o100755 && content.last() != Some(&b'\n') {
        content.push(b'\n');
    }
    ShapedFile {
        path,
        mode,
        content,
    }
}

/// Create a repository at `dir` holding `files` (from [`real_shaped_files`]) in one commit on
/// `main`, checked out.
pub fn build_shaped_repo(dir: &Path, files: &[ShapedFile]) -> PathBuf {
    std::fs::create_dir_all(dir).expect("create bench dir");
    git_ok(dir, &["init", "-q", "-b", "main"]);
    let mut child = git(dir)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("start git fast-import");
    {
        let stdin = child.stdin.as_mut().expect("piped stdin");
        let mut w = std::io::BufWriter::new(stdin);
        for (i, f) in files.iter().enumerate() {
            write!(w, "blob\nmark :{}\ndata {}\n", i + 1, f.content.len()).expect("write");
            w.write_all(&f.content).expect("write");
            writeln!(w).expect("write");
        }
        let msg = "real-shaped repository";
        write!(
            w,
            "commit refs/heads/main\ncommitter Bench <bench@baton.invalid> 1767225600 +0000\ndata {}\n{}\n",
            msg.len(),
            msg
        )
        .expect("write");
        for (i, f) in files.iter().enumerate() {
            writeln!(w, "M {:o} :{} {}", f.mode, i + 1, f.path).expect("write");
        }
        writeln!(w).expect("write");
    }
    let status = child.wait().expect("wait for fast-import");
    assert!(status.success(), "git fast-import failed");
    git_ok(dir, &["checkout", "-q", "-f", "main"]);
    dir.to_owned()
}

/// Median of some durations in milliseconds.
pub fn median_ms(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    let n = samples.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_shaped_tree_is_deterministic_and_shaped_like_a_real_repository() {
        let a = real_shaped_files(7, REAL_SHAPED_FILES);
        assert_eq!(
            a,
            real_shaped_files(7, REAL_SHAPED_FILES),
            "same seed, same tree"
        );
        assert_ne!(
            a,
            real_shaped_files(8, REAL_SHAPED_FILES),
            "the seed matters"
        );
        let n = a.len();
        assert!((2_900..=3_100).contains(&n), "{n} files");
        let depth = |f: &ShapedFile| f.path.matches('/').count();
        let max_depth = a.iter().map(depth).max().unwrap_or(0);
        assert!((4..=7).contains(&max_depth), "max depth {max_depth}");
        let mut dirs = std::collections::BTreeMap::<&str, usize>::new();
        for f in &a {
            *dirs
                .entry(f.path.rsplit_once('/').map_or("", |(d, _)| d))
                .or_default() += 1;
        }
        let widest = dirs.values().copied().max().unwrap_or(0);
        let small = dirs.values().filter(|&&c| c <= 12).count();
        assert!(dirs.len() >= 150, "{} directories", dirs.len());
        assert!(widest >= 50, "a wide directory: {widest}");
        assert!(small * 2 > dirs.len(), "most directories are small");
        let mut sizes: Vec<usize> = a.iter().map(|f| f.content.len()).collect();
        sizes.sort_unstable();
        let median = sizes[n / 2];
        assert!((1_000..=4_000).contains(&median), "median size {median}");
        assert!(
            sizes[n - 1] >= 100_000,
            "a long tail: largest {}",
            sizes[n - 1]
        );
        assert!(sizes.contains(&0), "some empty files");
        assert!(a.iter().any(|f| f.mode == 0o100755));
        assert!(a.iter().any(|f| f.mode == 0o120000));
        eprintln!(
            "{n} files, {} dirs, max depth {max_depth}, widest {widest}, median {median} B, total {} KiB",
            dirs.len(),
            sizes.iter().sum::<usize>() / 1024
        );
    }
}
