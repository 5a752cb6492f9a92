//! The README's "Embed baton in your repository's xtask" section, followed literally in a new
//! repository: its files are taken from the README's code blocks, the path dependency pointed
//! at this workspace, and `cargo xtask` is built and run. Slow (a first build of ~150 crates),
//! so it runs with `BATON_SLOW_TESTS=1` (`.ci/run` sets it); its target directory,
//! `embed-test` inside the one in use, is kept between runs, so later runs are incremental.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use baton_tests::{TestRepo, skip, write_file};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_owned()
}

/// The files the README's embedding section names: a line "`PATH`…:" followed by a fenced
/// code block.
fn readme_files() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let start = readme
        .find("## Embed baton in your repository's xtask")
        .expect("README has the embedding section");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let mut files = Vec::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix('`') else {
            continue;
        };
        let Some((path, tail)) = rest.split_once('`') else {
            continue;
        };
        if !tail.trim_end().ends_with(':') || path.contains(' ') {
            continue;
        }
        let fence = lines.find(|l| l.starts_with("```")).expect("a code block");
        assert!(fence.len() > 3, "{path}: the block names its language");
        let body: Vec<&str> = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .collect();
        files.push((path.to_owned(), body.join("\n") + "\n"));
    }
    files
}

#[test]
fn readme_embedding_section_names_every_file() {
    let files = readme_files();
    let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "Cargo.toml",
            "xtask/Cargo.toml",
            "xtask/src/main.rs",
            ".cargo/config.toml"
        ]
    );
    assert!(
        files[1]
            .1
            .contains("baton-cli = { path = \"../../baton/crates/baton-cli\" }")
    );
}

/// `embed-test` inside the target directory in use, kept between runs.
fn embed_target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace().join("target"), PathBuf::from)
        .join("embed-test")
}

fn cargo(dir: &Path, args: &[&str]) -> (std::process::Output, f64) {
    let start = Instant::now();
    let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", embed_target())
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .output()
        .expect("run cargo");
    (out, start.elapsed().as_secs_f64())
}

#[test]
fn readme_embedding_builds_and_runs_in_a_new_repository() {
    if std::env::var_os("BATON_SLOW_TESTS").is_none_or(|v| v != "1") {
        skip(
            "readme_embedding_builds_and_runs_in_a_new_repository: a first build takes minutes; set BATON_SLOW_TESTS=1 (.ci/run does)",
        );
        return;
    }
    let repo = TestRepo::new();
    let baton_path = workspace().join("crates/baton-cli");
    for (path, body) in readme_files() {
        let body = body.replace(
            "../../baton/crates/baton-cli",
            baton_path.to_str().expect("a UTF-8 path"),
        );
        write_file(repo.path(), &path, &body);
    }
    // the README's optional step: the versions baton is tested with
    std::fs::copy(
        workspace().join("Cargo.lock"),
        repo.path().join("Cargo.lock"),
    )
    .unwrap();

    let (build, secs) = cargo(repo.path(), &["build", "--package", "xtask"]);
    let stderr = String::from_utf8_lossy(&build.stderr);
    assert!(build.status.success(), "cargo build failed:\n{stderr}");
    let compiled = stderr
        .lines()
        .filter(|l| l.trim_start().starts_with("Compiling "))
        .count();
    // the measurement docs/embedding.md quotes, uncaptured so `cargo test` shows it
    let _ = writeln!(
        std::io::stderr().lock(),
        "embedding: `cargo build -p xtask` compiled {compiled} crates in {secs:.0} s"
    );

    let (help, _) = cargo(repo.path(), &["xtask", "--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.status.success(),
        "{}",
        String::from_utf8_lossy(&help.stderr)
    );
    assert!(text.contains("Usage: cargo xtask"), "{text}");
    assert!(text.contains("Global options:"), "{text}");

    // the worked examples too
    let (help, _) = cargo(repo.path(), &["xtask", "plan", "--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("\n  cargo xtask plan validate "), "{text}");
    assert!(!text.contains("\n  baton "), "{text}");

    let (list, _) = cargo(repo.path(), &["xtask", "worktree", "list"]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    assert!(text.starts_with("NAME "), "{text}");

    // messages name the command the user typed
    let (missing, _) = cargo(repo.path(), &["xtask", "status", "nosuchplan"]);
    let err = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(2), "{err}");
    assert!(err.contains("`cargo xtask plan list`"), "{err}");
    assert!(!err.contains("`baton "), "{err}");
}
