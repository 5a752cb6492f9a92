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
