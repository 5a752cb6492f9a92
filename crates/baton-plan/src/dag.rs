//! The batch graph: cycles, levels, and which batches may run at the same time.
//!
//! Edges point from a batch to the batches it depends on. All functions are pure and take the
//! plan's batches as they are; unknown dependencies are ignored here (validation reports them).

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::BatchId;
use crate::model::Batch;

/// Index of the batches by id; with duplicate ids the first wins (validation reports them).
fn index(batches: &[Batch]) -> BTreeMap<&BatchId, usize> {
    let mut map = BTreeMap::new();
    for (i, b) in batches.iter().enumerate() {
        map.entry(&b.id).or_insert(i);
    }
    map
}

fn edges(batches: &[Batch]) -> Vec<Vec<usize>> {
    let idx = index(batches);
    batches
        .iter()
        .map(|b| {
            b.depends_on
                .iter()
                .filter_map(|d| idx.get(d).copied())
                .collect()
        })
        .collect()
}

/// A dependency cycle, if there is one: `[B1, B3, B2, B1]` means B1 depends on B3, which
/// depends on B2, which depends on B1.
pub fn find_cycle(batches: &[Batch]) -> Option<Vec<BatchId>> {
    let edges = edges(batches);
    #[derive(Clone, Copy, PartialEq)]
    enum Color {
        White,
        Grey,
        Black,
    }
    let mut color = vec![Color::White; batches.len()];
    for root in 0..batches.len() {
        if color[root] != Color::White {
            continue;
        }
        // iterative DFS keeping the current path
        let mut path: Vec<(usize, usize)> = vec![(root, 0)];
        color[root] = Color::Grey;
        while let Some(&mut (node, ref mut next)) = path.last_mut() {
            if let Some(&dep) = edges[node].get(*next) {
                *next += 1;
                match color[dep] {
                    Color::White => {
                        color[dep] = Color::Grey;
                        path.push((dep, 0));
                    }
                    Color::Grey => {
                        let start = path.iter().position(|&(n, _)| n == dep).unwrap_or(0);
                        let mut cycle: Vec<BatchId> = path[start..]
                            .iter()
                            .map(|&(n, _)| batches[n].id.clone())
                            .collect();
                        cycle.push(batches[dep].id.clone());
                        return Some(cycle);
                    }
                    Color::Black => {}
                }
            } else {
                color[node] = Color::Black;
                path.pop();
            }
        }
    }
    None
}

/// The levels of an acyclic graph: level 0 has no dependencies, level k depends only on
/// levels < k. Batches on one level may run together. `None` if there is a cycle.
pub fn levels(batches: &[Batch]) -> Option<Vec<Vec<BatchId>>> {
    let edges = edges(batches);
    // Kahn's algorithm on "depends on" edges: a batch settles once all its dependencies have.
    let mut dependents = vec![Vec::new(); batches.len()];
    let mut waiting: Vec<usize> = edges.iter().map(Vec::len).collect();
    for (i, deps) in edges.iter().enumerate() {
        for &d in deps {
            dependents[d].push(i);
        }
    }
    let mut level = vec![0usize; batches.len()];
    let mut ready: Vec<usize> = (0..batches.len()).filter(|&i| waiting[i] == 0).collect();
    let mut settled = 0;
    while let Some(i) = ready.pop() {
        settled += 1;
        for &k in &dependents[i] {
            level[k] = level[k].max(level[i] + 1);
            waiting[k] -= 1;
            if waiting[k] == 0 {
                ready.push(k);
            }
        }
    }
    if settled < batches.len() {
        return None;
    }
    let depth = level.iter().max().map_or(0, |m| m + 1);
    let mut out = vec![Vec::new(); depth];
    for (i, &l) in level.iter().enumerate() {
        out[l].push(batches[i].id.clone());
    }
    Some(out)
}

/// `reach[i]` = indices of every batch that batch `i` depends on, directly or not.
pub fn ancestors(batches: &[Batch]) -> Vec<BTreeSet<usize>> {
    let edges = edges(batches);
    (0..batches.len())
        .map(|start| {
            let mut seen = BTreeSet::new();
            let mut stack = edges[start].clone();
            while let Some(n) = stack.pop() {
                if seen.insert(n) {
                    stack.extend(edges[n].iter().copied());
                }
            }
            seen
        })
        .collect()
}

/// May batches `i` and `j` (indices) run at the same time? True when neither depends on the
/// other, directly or not.
pub fn concurrent(ancestors: &[BTreeSet<usize>], i: usize, j: usize) -> bool {
    i != j && !ancestors[i].contains(&j) && !ancestors[j].contains(&i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(id: &str, deps: &[&str]) -> Batch {
        Batch {
            id: BatchId::new(id).unwrap(),
            name: String::new(),
            kind: Default::default(),
            depends_on: deps.iter().map(|d| BatchId::new(*d).unwrap()).collect(),
            agents: vec![],
            status: Default::default(),
            gate: Default::default(),
        }
    }

    fn ids(v: &[BatchId]) -> Vec<&str> {
        v.iter().map(BatchId::as_str).collect()
    }

    #[test]
    fn cycle_is_printed_in_order() {
        let b = [
            batch("B1", &["B3"]),
            batch("B2", &["B1"]),
            batch("B3", &["B2"]),
        ];
        assert_eq!(ids(&find_cycle(&b).unwrap()), ["B1", "B3", "B2", "B1"]);
        assert!(levels(&b).is_none());
    }

    #[test]
    fn self_cycle() {
        let b = [batch("B1", &["B1"])];
        assert_eq!(ids(&find_cycle(&b).unwrap()), ["B1", "B1"]);
    }

    #[test]
    fn levels_of_a_diamond_with_forward_refs() {
        // written out of order on purpose: B4 first, depending on later batches
        let b = [
            batch("B4", &["B2", "B3"]),
            batch("B2", &["B1"]),
            batch("B3", &["B1"]),
            batch("B1", &[]),
            batch("B5", &[]),
        ];
        assert!(find_cycle(&b).is_none());
        let lv = levels(&b).unwrap();
        let lv: Vec<Vec<&str>> = lv.iter().map(|l| ids(l)).collect();
        assert_eq!(lv, vec![vec!["B1", "B5"], vec!["B2", "B3"], vec!["B4"]]);
        let anc = ancestors(&b);
        assert!(concurrent(&anc, 1, 2)); // B2 ∥ B3
        assert!(!concurrent(&anc, 0, 3)); // B4 after B1
        assert!(concurrent(&anc, 0, 4)); // B4 ∥ B5
    }
}
