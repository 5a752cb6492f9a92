//! Which pairs of agents wrote the same file (pure): the work list of the conflicts check.
//!
//! Changes are keyed by their path in the base, so a rename by one agent and an edit by
//! another meet on the original path. A second index by destination catches two agents
//! creating one path from different origins (add/add, rename onto an added file).

use std::collections::BTreeMap;

use baton_git::changes::FileChange;

/// How two agents' changes meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meeting {
    /// Both changed the file at this base path: a three-way merge decides.
    SameFile,
    /// Both wrote this destination from different origins (their keys).
    SameDest { key_a: String, key_b: String },
    /// Both reported writing it in one shared tree: no versions to merge.
    SharedTree,
    /// One wrote a file at this path, the other a file inside a directory of this name
    /// (`inside`): the merged tree cannot hold both. `file_by_a`: agent `a` wrote the file.
    FileDirectory { file_by_a: bool, inside: String },
    /// One renamed a directory (`renamed_by_a`) in which the other added `added`; git
    /// would move it along to this pair's path and reports that as a conflict.
    DirectoryRename { renamed_by_a: bool, added: String },
}

/// One pair of agents meeting on one path. `a < b` (indexes into the agent list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub path: String,
    pub a: usize,
    pub b: usize,
    pub meeting: Meeting,
}

/// What one agent changed: its line-of-work changes, or the files it declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentFiles {
    Line(BTreeMap<String, FileChange>),
    Declared(Vec<String>),
}

impl AgentFiles {
    pub fn paths(&self) -> Vec<String> {
        match self {
            AgentFiles::Line(m) => m.keys().cloned().collect(),
            AgentFiles::Declared(v) => v.clone(),
        }
    }
}

/// Every pair of agents that wrote a common path, sorted by path then agents.
pub fn pairs(agents: &[AgentFiles]) -> Vec<Pair> {
    let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut by_dest: BTreeMap<&str, Vec<(usize, &str)>> = BTreeMap::new();
    for (i, files) in agents.iter().enumerate() {
        match files {
            AgentFiles::Line(changes) => {
                for c in changes.values() {
                    by_key.entry(c.key.as_str()).or_default().push(i);
                    if let Some(d) = c.dest.as_deref()
                        && (d != c.key || c.added)
                    {
                        by_dest.entry(d).or_default().push((i, c.key.as_str()));
                    }
                }
            }
            AgentFiles::Declared(paths) => {
                for p in paths {
                    by_key.entry(p.as_str()).or_default().push(i);
                }
            }
        }
    }
    let declared = |i: usize| matches!(agents[i], AgentFiles::Declared(_));
    let mut out = Vec::new();
    for (path, who) in &by_key {
        for (x, &a) in who.iter().enumerate() {
            for &b in &who[x + 1..] {
                let meeting = if declared(a) || declared(b) {
                    Meeting::SharedTree
                } else {
                    Meeting::SameFile
                };
                out.push(Pair {
                    path: (*path).to_owned(),
                    a,
                    b,
                    meeting,
                });
            }
        }
    }
    for (dest, who) in &by_dest {
        for (x, &(a, key_a)) in who.iter().enumerate() {
            for &(b, key_b) in &who[x + 1..] {
                if key_a == key_b || a == b {
                    continue; // met already as the same file
                }
                out.push(Pair {
                    path: (*dest).to_owned(),
                    a,
                    b,
                    meeting: Meeting::SameDest {
                        key_a: key_a.to_owned(),
                        key_b: key_b.to_owned(),
                    },
                });
            }
        }
    }
    // file/directory: a path one agent writes as a file, the other writes files under
    let mut written: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, files) in agents.iter().enumerate() {
        if let AgentFiles::Line(changes) = files {
            for c in changes.values() {
                if let (Some(d), Some(_)) = (c.dest.as_deref(), &c.content) {
                    written.entry(d).or_default().push(i);
                }
            }
        }
    }
    let mut seen: std::collections::BTreeSet<(String, usize, usize)> =
        out.iter().map(|p| (p.path.clone(), p.a, p.b)).collect();
    for (path, inside_writers) in &written {
        for (at, _) in path.match_indices('/') {
            let dir = &path[..at];
            let Some(file_writers) = written.get(dir) else {
                continue;
            };
            for &f in file_writers {
                for &d in inside_writers.iter().filter(|d| **d != f) {
                    let (a, b) = (f.min(d), f.max(d));
                    if !seen.insert((dir.to_owned(), a, b)) {
                        continue;
                    }
                    out.push(Pair {
                        path: dir.to_owned(),
                        a,
                        b,
                        meeting: Meeting::FileDirectory {
                            file_by_a: a == f,
                            inside: (*path).to_owned(),
                        },
                    });
                }
            }
        }
    }
    out.sort_by(|p, q| (&p.path, p.a, p.b).cmp(&(&q.path, q.a, q.b)));
    out
}

/// Files one agent added inside a directory another agent renamed (`renames[i]`: agent
/// `i`'s directory renames, old -> new). The pair's path is where git would move the file.
pub fn dir_rename_pairs(agents: &[AgentFiles], renames: &[BTreeMap<String, String>]) -> Vec<Pair> {
    let mut out = Vec::new();
    for (s, dirs) in renames.iter().enumerate() {
        if dirs.is_empty() {
            continue;
        }
        for (o, files) in agents.iter().enumerate() {
            let AgentFiles::Line(changes) = files else {
                continue;
            };
            if o == s {
                continue;
            }
            for c in changes.values() {
                let Some(d) = c.dest.as_deref() else { continue };
                if !(c.added || c.is_rename()) {
                    continue;
                }
                // the deepest renamed directory holding it
                let hit = d
                    .match_indices('/')
                    .map(|(i, _)| &d[..i])
                    .rfind(|dir| dirs.contains_key(*dir));
                let Some(dir) = hit else { continue };
                if renames[o].contains_key(dir) {
                    continue; // both renamed it: no file follows one side's rename
                }
                let moved_to = format!("{}{}", dirs[dir], &d[dir.len()..]);
                out.push(Pair {
                    path: moved_to,
                    a: s.min(o),
                    b: s.max(o),
                    meeting: Meeting::DirectoryRename {
                        renamed_by_a: s < o,
                        added: d.to_owned(),
                    },
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_git::changes::FileChange;

    fn modify(path: &str) -> FileChange {
        FileChange {
            key: path.to_owned(),
            dest: Some(path.to_owned()),
            content: Some(baton_git::changes::Content::Blob {
                oid: git2::Oid::zero(),
                mode: 0o100644,
            }),
            added: false,
            uncommitted: false,
        }
    }
    fn rename(from: &str, to: &str) -> FileChange {
        FileChange {
            dest: Some(to.to_owned()),
            ..modify(from)
        }
    }
    fn add(path: &str) -> FileChange {
        FileChange {
            added: true,
            ..modify(path)
        }
    }
    fn line(changes: &[FileChange]) -> AgentFiles {
        AgentFiles::Line(changes.iter().map(|c| (c.key.clone(), c.clone())).collect())
    }

    #[test]
    fn same_file_pairs_for_every_pair() {
        let agents = [
            line(&[modify("a.rs"), modify("b.rs")]),
            line(&[modify("a.rs")]),
            line(&[modify("a.rs"), modify("c.rs")]),
        ];
        let got: Vec<(String, usize, usize)> = pairs(&agents)
            .into_iter()
            .map(|p| (p.path, p.a, p.b))
            .collect();
        assert_eq!(
            got,
            [
                ("a.rs".to_owned(), 0, 1),
                ("a.rs".to_owned(), 0, 2),
                ("a.rs".to_owned(), 1, 2)
            ]
        );
    }

    #[test]
    fn rename_meets_edit_on_the_base_path() {
        let agents = [
            line(&[rename("old.rs", "new.rs")]),
            line(&[modify("old.rs")]),
        ];
        let got = pairs(&agents);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].path, "old.rs");
        assert_eq!(got[0].meeting, Meeting::SameFile);
    }

    #[test]
    fn rename_onto_an_added_file_meets_on_the_destination() {
        let agents = [line(&[rename("old.rs", "new.rs")]), line(&[add("new.rs")])];
        let got = pairs(&agents);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].path, "new.rs");
        assert!(matches!(got[0].meeting, Meeting::SameDest { .. }));
    }

    #[test]
    fn a_file_meets_a_directory_of_the_same_name() {
        let agents = [line(&[add("p")]), line(&[add("p/x"), add("q")])];
        let got = pairs(&agents);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].path, "p");
        assert_eq!(
            got[0].meeting,
            Meeting::FileDirectory {
                file_by_a: true,
                inside: "p/x".to_owned()
            }
        );
    }

    #[test]
    fn disjoint_files_do_not_meet_and_shared_tree_is_marked() {
        assert!(pairs(&[line(&[modify("a")]), line(&[modify("b")])]).is_empty());
        let got = pairs(&[
            AgentFiles::Declared(vec!["x".into()]),
            AgentFiles::Declared(vec!["x".into(), "y".into()]),
        ]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].meeting, Meeting::SharedTree);
    }
}
