//! The real-shaped case of `bench verify`: 32 pull-request-like heads that forked from a
//! moving `main` at different points, of very different sizes (a few files to 150), most of
//! them touching the same hot files (a lock file, a changelog, the crate root), with renames,
//! deletions and additions, on a 4,000-file tree of files of real sizes. Compared with the
//! pairwise `git merge-tree --write-tree` loop over all 496 pairs in the same run (target
//! <= 0.05x), and their verdicts per pair must agree.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use super::super::synth::{self, Rng, git_ok, median_ms};
use super::{baton, serde_like, time_ms};

const FILES: usize = 4_000;
const MAIN_COMMITS: usize = 30;
const HEADS: usize = 32;
const HOT: [&str; 3] = ["Cargo.lock", "CHANGELOG.md", "src/lib.rs"];

fn path_of(i: usize) -> String {
    if i < HOT.len() {
        return HOT[i].to_owned();
    }
    let (a, b) = (i / 300, (i / 25) % 12);
    format!("crates/c{a:02}/src/m{b:02}/f{i:04}.rs")
}

fn initial(i: usize) -> Vec<String> {
    let n = match i {
        0 => 2_000,
        1 => 300,
        2 => 150,
        _ => 30 + (i * 7_919) % 400,
    };
    (0..n).map(|l| format!("line {l} of file {i}")).collect()
}

/// A popular-first pick: low indexes (hot and core files) far more often, like real PRs.
fn popular(rng: &mut Rng) -> usize {
    let u = (rng.below(1_000_000) as f64) / 1_000_000.0;
    HOT.len() + ((FILES - HOT.len()) as f64 * u * u * u) as usize
}

fn edit(rng: &mut Rng, lines: &mut Vec<String>, who: &str, n: usize) {
    for _ in 0..n {
        if lines.is_empty() {
            lines.push(format!("{who} writes"));
            continue;
        }
        let at = rng.below(lines.len());
        lines[at] = format!("{who} changed this ({})", rng.below(1000));
    }
}

fn write_file(w: &mut impl Write, path: &str, lines: &[String]) {
    let mut data = lines.join("\n");
    data.push('\n');
    write!(w, "M 100644 inline {path}\ndata {}\n{data}\n", data.len()).expect("write");
}

fn commit_header(
    w: &mut impl Write,
    branch: &str,
    n: usize,
    mark: Option<usize>,
    from: Option<&str>,
) {
    let msg = format!("commit {n}");
    writeln!(w, "commit refs/heads/{branch}").expect("write");
    if let Some(m) = mark {
        writeln!(w, "mark :{m}").expect("write");
    }
    write!(
        w,
        "committer Bench <bench@baton.invalid> {} +0000\ndata {}\n{msg}\n",
        1_767_225_600 + n,
        msg.len()
    )
    .expect("write");
    if let Some(f) = from {
        writeln!(w, "from {f}").expect("write");
    }
}

/// Build the repository: main's history, then the heads `pr/NN`.
pub fn build(repo: &Path) {
    std::fs::create_dir_all(repo).expect("create bench dir");
    git_ok(repo, &["init", "-q", "-b", "main"]);
    let mut child = synth::git(repo)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("start git fast-import");
    let mut rng = Rng::new(0x5eed_ba70);
    {
        let stdin = child.stdin.as_mut().expect("piped stdin");
        let mut w = std::io::BufWriter::new(stdin);
        let mut n = 0;
        commit_header(&mut w, "main", n, Some(1), None);
        for i in 0..FILES {
            write_file(&mut w, &path_of(i), &initial(i));
        }
        writeln!(w).expect("write");
        // main moves on: each commit edits a few files (the hot ones often)
        let mut state: Vec<HashMap<usize, Vec<String>>> = vec![HashMap::new()];
        for m in 1..=MAIN_COMMITS {
            n += 1;
            let mut now = state[m - 1].clone();
            commit_header(&mut w, "main", n, Some(m + 1), Some(&format!(":{m}")));
            for _ in 0..8 {
                let i = if rng.below(3) == 0 {
                    rng.below(HOT.len())
                } else {
                    popular(&mut rng)
                };
                let mut lines = now.get(&i).cloned().unwrap_or_else(|| initial(i));
                edit(&mut rng, &mut lines, &format!("main {m}"), 2);
                write_file(&mut w, &path_of(i), &lines);
                now.insert(i, lines);
            }
            writeln!(w).expect("write");
            state.push(now);
        }
        // the heads: fork somewhere on main, 1-4 commits, heavy-tailed sizes
        for k in 0..HEADS {
            let fork = rng.below(MAIN_COMMITS + 1);
            let mut files = state[fork].clone();
            let size = 3 + (150.0 * ((rng.below(1000) as f64) / 1000.0).powi(4)) as usize;
            let commits = 1 + rng.below(4);
            let who = format!("pr {k}");
            // files this head renamed or deleted (a rename needs its source)
            let mut gone = std::collections::HashSet::new();
            for c in 0..commits {
                n += 1;
                // later commits continue from the branch's tip
                let from = (c == 0).then(|| format!(":{}", fork + 1));
                commit_header(&mut w, &format!("pr/{k:02}"), n, None, from.as_deref());
                let per_commit = size.div_ceil(commits);
                for _ in 0..per_commit {
                    let roll = rng.below(100);
                    let i = match roll {
                        0..=9 => 0,
                        10..=17 => 1,
                        18..=22 => 2,
                        _ => popular(&mut rng),
                    };
                    let mut lines = files.get(&i).cloned().unwrap_or_else(|| initial(i));
                    if i == 1 {
                        // a changelog entry at the top: every such pair conflicts
                        lines.insert(2, format!("- {who}: a change"));
                    } else {
                        let n = 1 + rng.below(4);
                        edit(&mut rng, &mut lines, &who, n);
                    }
                    write_file(&mut w, &path_of(i), &lines);
                    files.insert(i, lines);
                }
                if rng.below(10) == 0 {
                    let path = format!("crates/new/p{k:02}.rs");
                    write_file(&mut w, &path, &["new file".to_owned()]);
                }
                if rng.below(20) == 0 {
                    let i = popular(&mut rng);
                    if !gone.insert(i) {
                        writeln!(w).expect("write");
                        continue;
                    }
                    let p = path_of(i);
                    writeln!(w, "R {p} crates/moved/{k:02}-{}", p.replace('/', "-"))
                        .expect("write");
                } else if rng.below(20) == 0 {
                    let i = popular(&mut rng);
                    gone.insert(i);
                    writeln!(w, "D {}", path_of(i)).expect("write");
                }
                writeln!(w).expect("write");
            }
        }
    }
    assert!(child.wait().expect("wait").success(), "fast-import failed");
    git_ok(repo, &["checkout", "-q", "-f", "main"]);
    git_ok(repo, &["status", "--porcelain=v2"]);
}

/// Time the conflicts check against the merge-tree loop; returns whether the target is met.
pub fn measure(repo: &Path, runs: usize) -> bool {
    let conflicts = || baton(repo, &["--check", "conflicts", "--branches", "pr/*"]);
    time_ms(conflicts());
    let report = serde_like::parse(&conflicts().output().expect("run").stdout);
    let heads: Vec<String> = (0..HEADS).map(|k| format!("pr/{k:02}")).collect();
    // what each head changed since it forked from main: the gate compares agents on the
    // files both changed; a file only main changed since one of them forked is the target's
    // business (`--merged`), though a pairwise merge-tree sees it as the other head's change
    let changed: Vec<std::collections::BTreeSet<String>> = heads
        .iter()
        .map(|h| {
            let mb = git_ok(repo, &["merge-base", "main", h]);
            git_ok(repo, &["diff", "--name-only", "--no-renames", &mb, h])
                .lines()
                .map(str::to_owned)
                .collect()
        })
        .collect();
    let mut loop_ms = Vec::new();
    let mut git_pairs = std::collections::BTreeSet::new();
    for _ in 0..runs.min(3) {
        let t = Instant::now();
        git_pairs.clear();
        for (x, a) in heads.iter().enumerate() {
            for (y, b) in heads.iter().enumerate().skip(x + 1) {
                let out = synth::git(repo)
                    .args(["merge-tree", "--write-tree", "--name-only", a, b])
                    .output()
                    .expect("run git merge-tree");
                let text = String::from_utf8_lossy(&out.stdout);
                let shared_conflict = text
                    .lines()
                    .skip(1)
                    .take_while(|l| !l.is_empty())
                    .any(|p| changed[x].contains(p) && changed[y].contains(p));
                if out.status.code() == Some(1) && shared_conflict {
                    git_pairs.insert((a.clone(), b.clone()));
                }
            }
        }
        loop_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let mut baton_ms = Vec::new();
    for _ in 0..runs {
        baton_ms.push(time_ms(conflicts()));
    }
    let l = median_ms(loop_ms.clone());
    let k = median_ms(baton_ms.clone());
    println!(
        "real-shaped: {FILES} files, main moved {MAIN_COMMITS} commits, {HEADS} heads forked along it; {} multi_writer findings ({} conflicts)",
        report.multi_writer, report.conflicts
    );
    let samples: Vec<String> = loop_ms.iter().map(|s| format!("{s:.0}")).collect();
    println!(
        "  git merge-tree loop (496 pairs)  {l:>9.1} ms   samples {}",
        samples.join(" ")
    );
    let ratios: Vec<String> = baton_ms.iter().map(|s| format!("{:.3}", s / l)).collect();
    println!(
        "  baton verify --check conflicts   {k:>9.1} ms   ratio {:.3}x (target <= 0.05x); every sample: {}",
        k / l,
        ratios.join(" ")
    );
    let agree = report.conflict_pairs == git_pairs;
    println!(
        "  pairs conflicting on a file both changed: baton {} and git merge-tree {}: {}",
        report.conflict_pairs.len(),
        git_pairs.len(),
        if agree { "agree" } else { "DISAGREE" }
    );
    if !agree {
        let only_baton: Vec<_> = report.conflict_pairs.difference(&git_pairs).collect();
        let only_git: Vec<_> = git_pairs.difference(&report.conflict_pairs).collect();
        println!("    only baton: {only_baton:?}\n    only git: {only_git:?}");
    }
    agree && k / l <= 0.05
}
