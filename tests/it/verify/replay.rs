//! The replay: a deterministic generated corpus of three-way cases shaped like real history
//! (edits, adjacent edits, moves, deletes, empty files, re-indents, mode and type changes,
//! file/directory, symlinks, non-UTF-8 names, a target that moved on), each checked against
//! `git merge-tree --write-tree`: the verdict per file of the conflicts check, and the tree
//! `--merged` tests, which must be git's merge of the agents' branches into the target.
//!
//! All cases live in one repository written by one `git fast-import`; git answers every
//! merge of a phase in one `git merge-tree --stdin`. `BATON_REPLAY_CASES` sets the corpus
//! size (default 520), `BATON_REPLAY_TEXT_CASES` the number of histogram-sensitive text cases
//! added to it (default 240: repeated lines, moved and duplicated blocks, blank lines, the
//! 8-line file where histogram and Myers merges part); `BATON_REPLAY_REPO=/path/to/clone` replays pairs of commits of a
//! real clone instead (see [`replay_a_local_clone`]).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};

use baton_git::RepoPaths;
use baton_report::Overlap;
use baton_tests::TestRepo;
use baton_verify::agents::AgentSpec;
use baton_verify::conflicts::check_conflicts;
use baton_verify::merged::{Merged, merge_lines};

mod corpus;

use corpus::Case;

/// What git decided for one merge: clean or not, the tree, the conflicted paths.
#[derive(Debug, Clone)]
struct GitMerge {
    clean: bool,
    tree: String,
    conflicted: BTreeSet<Vec<u8>>,
}

/// Run one `git merge-tree --stdin` over `lines` (`[<base> -- ]<one> <two>`).
fn merge_tree_batch(repo: &TestRepo, lines: &[String]) -> Vec<GitMerge> {
    merge_tree_stdin(repo.command("git", repo.path()), lines)
}

fn merge_tree_stdin(mut cmd: Command, lines: &[String]) -> Vec<GitMerge> {
    cmd.args([
        "merge-tree",
        "--stdin",
        "-z",
        "--name-only",
        "--no-messages",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = lines.join("\n") + "\n";
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "git merge-tree --stdin failed");
    let mut fields = out.stdout.split(|b| *b == 0);
    let mut merges = Vec::new();
    for _ in lines {
        let status = fields.next().unwrap();
        let tree = String::from_utf8_lossy(fields.next().unwrap()).into_owned();
        let mut conflicted = BTreeSet::new();
        for f in fields.by_ref() {
            if f.is_empty() {
                break;
            }
            conflicted.insert(f.to_vec());
        }
        merges.push(GitMerge {
            clean: status == b"1",
            tree,
            conflicted,
        });
    }
    merges
}

/// git names the file side of a file/directory conflict `<path>~<side>`: back to `<path>`.
fn strip_side(path: &[u8], sides: &[&str]) -> Vec<u8> {
    for s in sides {
        let suffix = format!("~{s}");
        if let Some(p) = path.strip_suffix(suffix.as_bytes()) {
            return p.to_vec();
        }
    }
    path.to_vec()
}

fn spec(id: &str, tip: git2::Oid) -> AgentSpec {
    AgentSpec {
        id: id.to_owned(),
        branch: None,
        tip: Some(tip),
        worktree: None,
        scope: None,
        declared_files: None,
        base: None,
    }
}

/// baton's paths are git's quoted form for names that are not UTF-8: back to bytes.
fn raw(path: &str) -> Vec<u8> {
    baton_git::pathkey::key_bytes(path).into_owned()
}

/// The disagreements between baton and git on one case (empty: they agree).
struct Pairing<'a> {
    name: &'a str,
    target: git2::Oid,
    a: git2::Oid,
    b: git2::Oid,
}

fn compare(
    paths: &RepoPaths,
    case: &Pairing<'_>,
    pair: &GitMerge,
    merged: Option<&GitMerge>,
    labels: &[&str],
) -> Vec<String> {
    let mut wrong = Vec::new();
    let name = case.name;
    let outcome = check_conflicts(
        paths,
        case.target,
        vec![spec("a", case.a), spec("b", case.b)],
    )
    .unwrap_or_else(|e| panic!("{name}: the conflicts check failed: {e}"));
    let multi: Vec<_> = outcome
        .findings
        .iter()
        .filter(|f| f.code == "multi_writer")
        .collect();
    let git_conflicts: BTreeSet<Vec<u8>> = pair
        .conflicted
        .iter()
        .map(|p| strip_side(p, labels))
        .collect();
    let covered = |p: &Vec<u8>, overlap: Overlap| {
        multi.iter().any(|f| {
            f.overlap == Some(overlap)
                && (f.path.as_deref().map(raw).as_ref() == Some(p)
                    || f.paths.iter().any(|q| raw(q) == *p))
        })
    };
    for p in &git_conflicts {
        if !covered(p, Overlap::Conflict) {
            wrong.push(format!(
                "{name}: git conflicts on {}, baton does not",
                String::from_utf8_lossy(p)
            ));
        }
    }
    for f in &multi {
        let mut own: Vec<Vec<u8>> = f.paths.iter().map(|p| raw(p)).collect();
        own.extend(f.path.as_deref().map(raw));
        let in_git = own.iter().any(|p| git_conflicts.contains(p));
        if f.overlap == Some(Overlap::Conflict) && !in_git {
            wrong.push(format!(
                "{name}: baton says {}, git merges it cleanly",
                f.message
            ));
        }
    }
    let baton_clean = !multi.iter().any(|f| f.overlap == Some(Overlap::Conflict));
    if baton_clean != pair.clean && wrong.is_empty() {
        wrong.push(format!(
            "{name}: git says clean={}, baton clean={baton_clean}",
            pair.clean
        ));
    }
    if let Some(git) = merged {
        match merge_lines(paths, case.target, &outcome.lines).unwrap() {
            Merged::Clean { merger, mut index } => {
                let tree = index.write_tree_to(merger.repo()).unwrap();
                if !git.clean {
                    wrong.push(format!("{name}: --merged is clean, git's merge conflicts"));
                } else if tree.to_string() != git.tree {
                    wrong.push(format!(
                        "{name}: --merged tree {tree} is not git's {}",
                        git.tree
                    ));
                }
            }
            Merged::Conflicts(c) => {
                if git.clean {
                    wrong.push(format!(
                        "{name}: --merged conflicts on {c:?}, git merges cleanly"
                    ));
                }
            }
            Merged::NotApplicable => wrong.push(format!("{name}: --merged not applicable")),
        }
    }
    wrong
}

#[test]
fn generated_corpus_agrees_with_git_merge_tree() {
    let count = std::env::var("BATON_REPLAY_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(520);
    let text_count = std::env::var("BATON_REPLAY_TEXT_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(240);
    let repo = TestRepo::new();
    let cases: Vec<Case> = (0..count)
        .map(|i| corpus::generate(i as u64))
        .chain((0..text_count).map(|i| corpus::generate_repetitive(i as u64)))
        .collect();
    let count = cases.len();
    let commits = corpus::import(&repo, &cases);
    let paths = RepoPaths::discover(repo.path()).unwrap();
    let r = paths.open().unwrap();
    let oid = |s: &str| git2::Oid::from_str(s).unwrap();
    // phase 1: the two agents with each other, and the target with agent a
    let mut lines = Vec::new();
    for c in &commits {
        lines.push(format!("{} {}", c.a, c.b));
        lines.push(format!("{} {}", c.target, c.a));
    }
    let phase1 = merge_tree_batch(&repo, &lines);
    // phase 2: that result with agent b, on b's merge base with the target
    let mut lines2 = Vec::new();
    let mut which = Vec::new();
    for (i, c) in commits.iter().enumerate() {
        let first = &phase1[2 * i + 1];
        if first.clean {
            let mb = r.merge_base(oid(&c.target), oid(&c.b)).unwrap();
            lines2.push(format!("{mb} -- {} {}", first.tree, c.b));
            which.push(i);
        }
    }
    let phase2 = merge_tree_batch(&repo, &lines2);
    let mut final_merge: BTreeMap<usize, GitMerge> = BTreeMap::new();
    for (i, m) in which.into_iter().zip(phase2) {
        final_merge.insert(i, m);
    }
    let mut wrong = Vec::new();
    let mut conflicts = 0;
    for (i, c) in commits.iter().enumerate() {
        let merged = final_merge.get(&i).cloned().unwrap_or(GitMerge {
            clean: false,
            tree: String::new(),
            conflicted: BTreeSet::new(),
        });
        let pair = &phase1[2 * i];
        conflicts += usize::from(!pair.clean);
        let labels = [c.a.as_str(), c.b.as_str(), c.target.as_str(), "a", "b"];
        let first_tree = phase1[2 * i + 1].tree.clone();
        let mut all_labels: Vec<&str> = labels.to_vec();
        all_labels.push(&first_tree);
        wrong.extend(compare(
            &paths,
            &Pairing {
                name: &cases[i].describe(),
                target: oid(&c.target),
                a: oid(&c.a),
                b: oid(&c.b),
            },
            pair,
            Some(&merged),
            &all_labels,
        ));
    }
    // the corpus must exercise both verdicts, not only one
    assert!(
        conflicts > count / 10 && conflicts < count - count / 10,
        "{conflicts} of {count} cases conflict: the generator is lopsided"
    );
    assert!(
        wrong.is_empty(),
        "{} disagreement(s) with git over {count} cases:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// The same replay over a real clone: `BATON_REPLAY_REPO=/path/to/clone` (and optionally
/// `BATON_REPLAY_PAIRS`, default 200): the two parents of each merge commit of HEAD's
/// history are two agents (real lines of work that met), the target their merge base.
/// Nothing is written to the clone's refs (git merge-tree only adds unreferenced objects).
#[test]
fn replay_a_local_clone() {
    let Some(dir) = std::env::var_os("BATON_REPLAY_REPO") else {
        return; // opt-in: replays the real history of a clone the user points at
    };
    let pairs: usize = std::env::var("BATON_REPLAY_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = std::path::PathBuf::from(dir);
    let paths = RepoPaths::discover(&dir).unwrap();
    let r = paths.open().unwrap();
    let out = Command::new("git")
        .arg("-C")
        .arg(&dir)
        .args(["rev-list", "--merges", "--parents"])
        .arg(format!("--max-count={pairs}"))
        .arg("HEAD")
        .output()
        .unwrap();
    let mut cases = Vec::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let ids: Vec<&str> = line.split(' ').collect();
        let [_, a, b] = ids.as_slice() else { continue };
        let (oa, ob) = (
            git2::Oid::from_str(a).unwrap(),
            git2::Oid::from_str(b).unwrap(),
        );
        let Ok(base) = r.merge_base(oa, ob) else {
            continue;
        };
        cases.push((base.to_string(), a.to_string(), b.to_string()));
    }
    assert!(!cases.is_empty(), "no merge commits in {}", dir.display());
    let lines: Vec<String> = cases
        .iter()
        .map(|(base, a, b)| format!("{base} -- {a} {b}"))
        .collect();
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(&dir);
    let git = merge_tree_stdin(cmd, &lines);
    let mut wrong = Vec::new();
    for ((base, a, b), g) in cases.iter().zip(&git) {
        let oid = |s: &str| git2::Oid::from_str(s).unwrap();
        let name = format!("{a}+{b} on {base}");
        wrong.extend(compare(
            &paths,
            &Pairing {
                name: &name,
                target: oid(base),
                a: oid(a),
                b: oid(b),
            },
            g,
            None,
            &[a.as_str(), b.as_str()],
        ));
    }
    assert!(
        wrong.is_empty(),
        "{} disagreement(s) with git over {} pairs:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}
