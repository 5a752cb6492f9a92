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
    out.sort_by(|p, q| (&p.path, p.a, p.b).cmp(&(&q.path, q.a, q.b)));
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
            content: None,
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
