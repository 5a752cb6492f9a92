//! The replay's generated corpus: deterministic three-way cases (a base, two agents, a target
//! that may have moved on) shaped like real history, written with one `git fast-import`.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Stdio;

use baton_tests::TestRepo;

/// A tree: path bytes -> (mode, content).
pub type Tree = BTreeMap<Vec<u8>, (u32, Vec<u8>)>;

/// One case: the base, each agent's tree, the target's tree, and what was done (for
/// messages).
pub struct Case {
    pub seed: u64,
    pub base: Tree,
    pub a: Tree,
    pub b: Tree,
    pub target: Tree,
    pub ops: Vec<String>,
}

impl Case {
    pub fn describe(&self) -> String {
        format!("case {} [{}]", self.seed, self.ops.join("; "))
    }
}

/// The commits of one imported case.
pub struct Commits {
    pub a: String,
    pub b: String,
    pub target: String,
}

/// A small deterministic generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn text(lines: &[String]) -> Vec<u8> {
    let mut s = lines.join("\n");
    s.push('\n');
    s.into_bytes()
}

fn lines_of(content: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(content)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn base_tree(rng: &mut Rng, seed: u64) -> Tree {
    let mut t = Tree::new();
    let body = |name: &str, n: usize| -> Vec<u8> {
        text(
            &(0..n)
                .map(|k| format!("    let {name}_{k} = {};", (seed * 31 + k as u64) % 997))
                .collect::<Vec<_>>(),
        )
    };
    t.insert(b"src/lib.rs".to_vec(), (0o100644, body("lib", 12)));
    t.insert(b"src/util.rs".to_vec(), (0o100644, body("util", 10)));
    t.insert(b"docs/guide.md".to_vec(), (0o100644, body("guide", 8)));
    t.insert(b"run.sh".to_vec(), (0o100755, body("run", 5)));
    t.insert(b"d/.keep".to_vec(), (0o100644, Vec::new()));
    t.insert(b"d/data.txt".to_vec(), (0o100644, body("data", 6)));
    if rng.chance(30) {
        t.insert(b"caf\xe9.txt".to_vec(), (0o100644, body("latin", 6)));
        t.insert(b"caf\xe8.txt".to_vec(), (0o100644, body("latin2", 6)));
    }
    if rng.chance(30) {
        t.insert(b"link".to_vec(), (0o120000, b"src/lib.rs".to_vec()));
    }
    t
}

/// A path is free in `t`: no file there, no file at a parent, no file below it.
fn free(t: &Tree, path: &[u8]) -> bool {
    if t.contains_key(path) {
        return false;
    }
    for (i, b) in path.iter().enumerate() {
        if *b == b'/' && t.contains_key(&path[..i]) {
            return false;
        }
    }
    let mut dir = path.to_vec();
    dir.push(b'/');
    !t.keys().any(|k| k.starts_with(&dir))
}

fn pick(rng: &mut Rng, t: &Tree, regular_only: bool) -> Option<Vec<u8>> {
    let keys: Vec<&Vec<u8>> = t
        .iter()
        .filter(|(_, (m, _))| !regular_only || *m != 0o120000)
        .map(|(k, _)| k)
        .collect();
    (!keys.is_empty()).then(|| keys[rng.below(keys.len())].clone())
}

const NEW_PATHS: [&str; 6] = [
    "src/new.rs",
    "notes.txt",
    "p",
    "p/inner.txt",
    "docs/extra.md",
    "src/lib.rs/x",
];

/// Apply one random operation of an agent (or the target) to `t`; returns its description.
fn operate(rng: &mut Rng, t: &mut Tree, who: &str) -> String {
    let esc = |p: &[u8]| String::from_utf8_lossy(p).into_owned();
    for _ in 0..8 {
        let op = rng.below(14);
        match op {
            // edits: replace, insert or delete a line (adjacent edits happen on their own)
            0..=3 => {
                let Some(p) = pick(rng, t, true) else {
                    continue;
                };
                let (mode, content) = t[&p].clone();
                let mut lines = lines_of(&content);
                if lines.is_empty() {
                    continue;
                }
                let at = rng.below(lines.len());
                let what = match op {
                    0 | 1 => {
                        lines[at] = format!("    edited by {who} {}", rng.below(3));
                        "edit"
                    }
                    2 => {
                        lines.insert(at, format!("    inserted by {who}"));
                        "insert"
                    }
                    _ => {
                        lines.remove(at);
                        "delete line"
                    }
                };
                let new = if lines.is_empty() {
                    Vec::new()
                } else {
                    text(&lines)
                };
                t.insert(p.clone(), (mode, new));
                return format!("{who} {what} {}:{}", esc(&p), at + 1);
            }
            // a move, maybe with an edit
            4 | 5 => {
                let Some(p) = pick(rng, t, false) else {
                    continue;
                };
                let name = p.rsplit(|b| *b == b'/').next().unwrap().to_vec();
                let dirs: [&[u8]; 3] = [b"moved/", b"src/", b"lib/"];
                let mut to = dirs[rng.below(3)].to_vec();
                to.extend(&name);
                if rng.chance(30) {
                    to.extend(b".old");
                }
                if !free(t, &to) {
                    continue;
                }
                let (mode, mut content) = t.remove(&p).unwrap();
                if op == 5 && mode != 0o120000 && !content.is_empty() {
                    let mut lines = lines_of(&content);
                    let at = rng.below(lines.len());
                    lines[at] = format!("    moved and edited by {who}");
                    content = text(&lines);
                }
                t.insert(to.clone(), (mode, content));
                return format!("{who} move {} -> {}", esc(&p), esc(&to));
            }
            6 => {
                let Some(p) = pick(rng, t, false) else {
                    continue;
                };
                t.remove(&p);
                return format!("{who} delete {}", esc(&p));
            }
            7 => {
                let path = NEW_PATHS[rng.below(NEW_PATHS.len())].as_bytes().to_vec();
                if !free(t, &path) {
                    continue;
                }
                let content = format!("new file {}\n", rng.below(2)).into_bytes();
                t.insert(path.clone(), (0o100644, content));
                return format!("{who} add {}", esc(&path));
            }
            8 => {
                let Some(p) = pick(rng, t, true) else {
                    continue;
                };
                let entry = t.get_mut(&p).unwrap();
                entry.0 = if entry.0 == 0o100755 {
                    0o100644
                } else {
                    0o100755
                };
                return format!("{who} chmod {}", esc(&p));
            }
            9 => {
                let Some(p) = pick(rng, t, true) else {
                    continue;
                };
                t.insert(p.clone(), (0o120000, b"run.sh".to_vec()));
                return format!("{who} symlink {}", esc(&p));
            }
            // wrap a file in a module and move it: re-indented, so git sees no rename
            10 => {
                let Some(p) = pick(rng, t, true) else {
                    continue;
                };
                let mut to = b"wrapped/".to_vec();
                to.extend(p.rsplit(|b| *b == b'/').next().unwrap());
                if !free(t, &to) || t[&p].1.is_empty() {
                    continue;
                }
                let (mode, content) = t.remove(&p).unwrap();
                let mut lines = vec!["mod wrapped {".to_owned()];
                lines.extend(lines_of(&content).iter().map(|l| format!("    {l}")));
                lines.push("}".to_owned());
                t.insert(to.clone(), (mode, text(&lines)));
                return format!("{who} re-indent and move {} -> {}", esc(&p), esc(&to));
            }
            // empty files: fill, move
            11 => {
                if !t.contains_key(b"d/.keep".as_slice()) {
                    continue;
                }
                if rng.chance(50) {
                    t.insert(b"d/.keep".to_vec(), (0o100644, b"filled\n".to_vec()));
                    return format!("{who} fill d/.keep");
                }
                if !free(t, b"e/.keep") {
                    continue;
                }
                let e = t.remove(b"d/.keep".as_slice()).unwrap();
                t.insert(b"e/.keep".to_vec(), e);
                return format!("{who} move d/.keep -> e/.keep");
            }
            // a file replaced by a directory of the same name
            12 => {
                let Some(p) = pick(rng, t, true) else {
                    continue;
                };
                let content = t.remove(&p).unwrap();
                let mut inner = p.clone();
                inner.extend(b"/mod.rs");
                t.insert(inner.clone(), content);
                return format!("{who} file to directory {}", esc(&inner));
            }
            // an edit to a file whose name is not UTF-8
            _ => {
                let names: [&[u8]; 2] = [b"caf\xe9.txt", b"caf\xe8.txt"];
                let p = names[rng.below(2)].to_vec();
                let Some((mode, content)) = t.get(&p).cloned() else {
                    continue;
                };
                let mut lines = lines_of(&content);
                let at = rng
                    .below(lines.len().max(1))
                    .min(lines.len().saturating_sub(1));
                if lines.is_empty() {
                    continue;
                }
                lines[at] = format!("    latin edit by {who}");
                t.insert(p.clone(), (mode, text(&lines)));
                return format!("{who} edit {}:{}", esc(&p), at + 1);
            }
        }
    }
    format!("{who} nothing")
}

/// The case for `seed`.
pub fn generate(seed: u64) -> Case {
    let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xBA70);
    let base = base_tree(&mut rng, seed);
    let mut ops = Vec::new();
    let (mut a, mut b, mut target) = (base.clone(), base.clone(), base.clone());
    for _ in 0..1 + rng.below(2) {
        ops.push(operate(&mut rng, &mut a, "a"));
    }
    for _ in 0..1 + rng.below(2) {
        ops.push(operate(&mut rng, &mut b, "b"));
    }
    if rng.chance(30) {
        ops.push(operate(&mut rng, &mut target, "target"));
    }
    Case {
        seed,
        base,
        a,
        b,
        target,
        ops,
    }
}

/// Lines that repeat: braces, blank lines, a few short tokens. Histogram and Myers diffs
/// pair such lines differently, so a merge of them is where git's verdict and a Myers
/// merge's part.
const REPEATED: [&str; 8] = ["}", "", "a", "b", "c", "d", "    }", "    x += 1;"];

/// One edit of a histogram-sensitive file: a line replaced, inserted or deleted, a block
/// moved or duplicated, blank lines added.
fn edit_repetitive(rng: &mut Rng, lines: &mut Vec<String>, who: &str) -> String {
    let token = |rng: &mut Rng| REPEATED[rng.below(REPEATED.len())].to_owned();
    let n = lines.len();
    match rng.below(6) {
        0 if n > 0 => {
            let at = rng.below(n);
            lines[at] = token(rng);
            format!("{who} replace line {}", at + 1)
        }
        1 if n > 1 => {
            let at = rng.below(n);
            lines.remove(at);
            format!("{who} delete line {}", at + 1)
        }
        2 if n > 3 => {
            let len = 1 + rng.below(3.min(n - 1));
            let from = rng.below(n - len + 1);
            let block: Vec<String> = lines.drain(from..from + len).collect();
            let to = rng.below(lines.len() + 1);
            let moved = block.len();
            lines.splice(to..to, block);
            format!("{who} move {moved} lines {} -> {}", from + 1, to + 1)
        }
        3 if n > 2 => {
            let len = 1 + rng.below(2);
            let from = rng.below(n - len + 1);
            let block: Vec<String> = lines[from..from + len].to_vec();
            let to = rng.below(n + 1);
            lines.splice(to..to, block);
            format!("{who} duplicate {len} lines {} at {}", from + 1, to + 1)
        }
        4 => {
            let at = rng.below(n + 1);
            lines.splice(at..at, [String::new(), String::new()]);
            format!("{who} blank lines at {}", at + 1)
        }
        _ => {
            let at = rng.below(n + 1);
            lines.insert(at, token(rng));
            format!("{who} insert at {}", at + 1)
        }
    }
}

/// A case built to tell a histogram merge from a Myers one: one file of repeated lines,
/// blank lines and braces, edited by both agents. Case `seed` 0 is the 8-line file where git
/// (histogram) conflicts and a Myers merge is clean.
pub fn generate_repetitive(seed: u64) -> Case {
    let letters = |s: &str| s.chars().map(|c| c.to_string()).collect::<Vec<_>>();
    let mut rng = Rng(seed.wrapping_mul(0x9E6C_63D0_676A_9A99) ^ 0x4157);
    let path = b"h.txt".to_vec();
    let (base_lines, a_lines, b_lines, mut ops) = if seed == 0 {
        (
            letters("bbbbadbc"),
            letters("bbdbabc"),
            letters("dbbbab"),
            vec!["the 8-line histogram case".to_owned()],
        )
    } else {
        let n = 4 + rng.below(30);
        let base: Vec<String> = (0..n)
            .map(|_| REPEATED[rng.below(REPEATED.len())].to_owned())
            .collect();
        let (mut a, mut b, mut ops) = (base.clone(), base.clone(), Vec::new());
        for _ in 0..1 + rng.below(3) {
            ops.push(edit_repetitive(&mut rng, &mut a, "a"));
        }
        for _ in 0..1 + rng.below(3) {
            ops.push(edit_repetitive(&mut rng, &mut b, "b"));
        }
        (base, a, b, ops)
    };
    ops.insert(0, "repetitive h.txt".to_owned());
    let tree = |lines: &[String]| {
        let mut t = Tree::new();
        t.insert(b"other.txt".to_vec(), (0o100644, b"untouched\n".to_vec()));
        t.insert(path.clone(), (0o100644, text(lines)));
        t
    };
    let base = tree(&base_lines);
    Case {
        seed: seed + 1_000_000,
        a: tree(&a_lines),
        b: tree(&b_lines),
        target: base.clone(),
        base,
        ops,
    }
}

fn write_commit(out: &mut Vec<u8>, mark: usize, parent: Option<usize>, tree: &Tree, n: usize) {
    writeln!(out, "commit refs/replay/work").unwrap();
    writeln!(out, "mark :{mark}").unwrap();
    writeln!(
        out,
        "committer Replay <replay@example.com> {} +0000",
        1_700_000_000 + n
    )
    .unwrap();
    writeln!(out, "data 0").unwrap();
    if let Some(p) = parent {
        writeln!(out, "from :{p}").unwrap();
    }
    writeln!(out, "deleteall").unwrap();
    for (path, (mode, content)) in tree {
        write!(out, "M {mode:o} inline ").unwrap();
        out.extend(path);
        writeln!(out, "\ndata {}", content.len()).unwrap();
        out.extend(content);
        out.push(b'\n');
    }
}

/// Write every case into `repo` with one `git fast-import`: four commits per case (base,
/// a, b, target, all but the base on top of it).
pub fn import(repo: &TestRepo, cases: &[Case]) -> Vec<Commits> {
    let mut stream = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let m = 4 * i + 1;
        writeln!(stream, "reset refs/replay/work").unwrap();
        write_commit(&mut stream, m, None, &c.base, m);
        write_commit(&mut stream, m + 1, Some(m), &c.a, m + 1);
        write_commit(&mut stream, m + 2, Some(m), &c.b, m + 2);
        if c.target == c.base {
            continue;
        }
        write_commit(&mut stream, m + 3, Some(m), &c.target, m + 3);
    }
    let marks = repo.scratch("replay").join("marks");
    std::fs::create_dir_all(marks.parent().unwrap()).unwrap();
    let mut cmd = repo.command("git", repo.path());
    cmd.arg("fast-import")
        .arg("--quiet")
        .arg(format!("--export-marks={}", marks.display()))
        .stdin(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(&stream).unwrap();
    assert!(child.wait().unwrap().success(), "git fast-import failed");
    let text = std::fs::read_to_string(&marks).unwrap();
    let by_mark: BTreeMap<usize, String> = text
        .lines()
        .filter_map(|l| {
            let (m, oid) = l.split_once(' ')?;
            Some((m.trim_start_matches(':').parse().ok()?, oid.to_owned()))
        })
        .collect();
    cases
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let m = 4 * i + 1;
            Commits {
                a: by_mark[&(m + 1)].clone(),
                b: by_mark[&(m + 2)].clone(),
                target: by_mark.get(&(m + 3)).unwrap_or(&by_mark[&m]).clone(),
            }
        })
        .collect()
}
