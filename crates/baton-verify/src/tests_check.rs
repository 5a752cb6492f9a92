//! The tests check: which tests to run (smoke or all, a shard, only affected packages), how
//! (cargo-nextest, `cargo test`, or a configured command), and what the results were.
//!
//! Running them is in `tests_run`.
//!
//! Filtersets are validated with nextest's own parser (`nextest-filtering`, against the
//! workspace's package graph) before anything runs, so a typo is exit 2, not a long build.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use guppy::graph::PackageGraph;
use nextest_filtering::{Filterset, FiltersetKind, KnownGroups, ParseContext};

use crate::errors::TestsError;

/// How the tests are run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runner {
    /// `cargo nextest run` with a filterset; per-test results from its JUnit report.
    Nextest,
    /// `cargo test` (nextest is not installed, or `[verify] runner = "cargo-test"`); results
    /// parsed from libtest's output.
    CargoTest,
    /// A configured command: per-test results from its JUnit file, else one check.
    Command(Vec<String>),
}

/// Everything decided before the tests run.
#[derive(Debug, Clone)]
pub struct TestsPlan {
    pub runner: Runner,
    pub full: bool,
    /// The nextest filterset (validated).
    pub filter: Option<String>,
    /// `hash:M/N` or `count:M/N` (validated).
    pub partition: Option<String>,
    /// The cargo program.
    pub cargo: PathBuf,
    /// Also run the doctests (`cargo test --doc`) after nextest, which cannot run them.
    pub doctests: bool,
    /// Only these packages (`--affected`), for the cargo test runner and the doctests.
    pub packages: Vec<String>,
    /// The JUnit file a configured command writes (relative to the tested tree).
    pub junit: Option<PathBuf>,
}

/// Check a `--partition` value: `hash:M/N` or `count:M/N` with 1 <= M <= N.
pub fn parse_partition(value: &str) -> Result<(), TestsError> {
    let bad = || TestsError::BadPartition {
        value: value.to_owned(),
    };
    let (kind, rest) = value.split_once(':').ok_or_else(bad)?;
    let (m, n) = rest.split_once('/').ok_or_else(bad)?;
    let (m, n): (u32, u32) = (m.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
    if !matches!(kind, "hash" | "count") || m == 0 || m > n {
        return Err(bad());
    }
    Ok(())
}

/// Is `cargo nextest` installed?
pub fn nextest_available(cargo: &Path) -> bool {
    Command::new(cargo)
        .args(["nextest", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The package graph of the Cargo workspace at `dir` (runs `cargo metadata`).
pub fn load_graph(cargo: &Path, dir: &Path) -> Result<PackageGraph, TestsError> {
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| TestsError::Spawn {
            program: format!("{} metadata", cargo.display()),
            source,
        })?;
    if !out.status.success() {
        return Err(TestsError::Metadata {
            dir: dir.to_owned(),
            message: last_line(&String::from_utf8_lossy(&out.stderr)),
        });
    }
    PackageGraph::from_json(String::from_utf8_lossy(&out.stdout)).map_err(|e| {
        TestsError::Metadata {
            dir: dir.to_owned(),
            message: e.to_string(),
        }
    })
}

/// Validate a filterset with nextest's parser against the workspace's packages. The error
/// carries nextest's own messages (`expected close parenthesis`, `operator didn't match any
/// packages`) with the part of the expression at fault.
pub fn validate_filterset(graph: &PackageGraph, expr: &str) -> Result<(), TestsError> {
    let cx = ParseContext::new(graph);
    Filterset::parse(
        expr.to_owned(),
        &cx,
        FiltersetKind::Test,
        &KnownGroups::Unavailable,
    )
    .map(|_| ())
    .map_err(|errs| TestsError::BadFilterset {
        expr: expr.to_owned(),
        message: errs
            .errors
            .iter()
            .map(|e| describe(expr, e))
            .collect::<Vec<_>>()
            .join("; "),
    })
}

fn describe(expr: &str, e: &nextest_filtering::errors::ParseSingleError) -> String {
    use miette::Diagnostic;
    let mut s = e.to_string();
    if let Some(labels) = e.labels() {
        for l in labels {
            let start = l.offset().min(expr.len());
            let end = (start + l.len()).min(expr.len());
            let part = expr.get(start..end).unwrap_or_default();
            let label = l.label().unwrap_or_default();
            s.push_str(&format!(
                " at column {}{}{}",
                start + 1,
                if part.is_empty() {
                    String::new()
                } else {
                    format!(" ({part:?})")
                },
                if label.is_empty() {
                    String::new()
                } else {
                    format!(": {label}")
                }
            ));
        }
    }
    s
}

/// Which workspace packages changed files belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Affected {
    /// A change outside every package (the root manifest, the lockfile, the toolchain):
    /// everything is affected.
    All,
    /// These packages (by name), whose reverse dependencies are affected too.
    Packages(Vec<String>),
}

/// Map changed paths (relative to the workspace root) to packages.
pub fn affected_packages(graph: &PackageGraph, root: &Path, changed: &[String]) -> Affected {
    let members: Vec<(PathBuf, String)> = graph
        .workspace()
        .iter()
        .filter_map(|p| {
            let dir = p.manifest_path().parent()?;
            Some((PathBuf::from(dir.as_str()), p.name().to_owned()))
        })
        .collect();
    let mut names = std::collections::BTreeSet::new();
    for rel in changed {
        let abs = root.join(rel);
        let owner = members
            .iter()
            .filter(|(dir, _)| abs.starts_with(dir) && dir.as_path() != root)
            .max_by_key(|(dir, _)| dir.components().count());
        match owner {
            Some((_, name)) => {
                names.insert(name.clone());
            }
            None if touches_whole_workspace(rel) => return Affected::All,
            None => {
                // the root package, if the workspace root is one
                if let Some((_, name)) = members.iter().find(|(dir, _)| dir.as_path() == root) {
                    names.insert(name.clone());
                }
            }
        }
    }
    Affected::Packages(names.into_iter().collect())
}

fn touches_whole_workspace(rel: &str) -> bool {
    matches!(
        rel,
        "Cargo.toml" | "Cargo.lock" | "rust-toolchain" | "rust-toolchain.toml"
    ) || rel.starts_with(".cargo/")
        || rel.starts_with(".config/")
}

/// The filterset selecting the tests of `packages` and of everything depending on them.
pub fn rdeps_filter(packages: &[String]) -> Option<String> {
    (!packages.is_empty()).then(|| {
        packages
            .iter()
            .map(|p| format!("rdeps(={p})"))
            .collect::<Vec<_>>()
            .join(" | ")
    })
}

pub(crate) fn last_line(s: &str) -> String {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("failed")
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions() {
        assert!(parse_partition("hash:1/2").is_ok());
        assert!(parse_partition("count:3/3").is_ok());
        for bad in [
            "hash:0/2",
            "hash:3/2",
            "hash:1",
            "slice:1/2",
            "1/2",
            "hash:a/b",
        ] {
            assert!(parse_partition(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn filterset_syntax_errors_use_nextest_messages() {
        let graph = PackageGraph::from_json(
            r#"{"packages":[],"workspace_members":[],"workspace_root":"/w","target_directory":"/w/target","version":1,"resolve":null}"#,
        )
        .unwrap();
        validate_filterset(&graph, "test(foo) | kind(lib)").unwrap();
        let err = validate_filterset(&graph, "test(foo")
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected close parenthesis"), "{err}");
        let err = validate_filterset(&graph, "package(nope)")
            .unwrap_err()
            .to_string();
        assert!(err.contains("operator didn't match any packages"), "{err}");
        assert_eq!(
            rdeps_filter(&["a".into(), "b".into()]).unwrap(),
            "rdeps(=a) | rdeps(=b)"
        );
    }
}
