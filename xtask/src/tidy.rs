//! Repository hygiene, checked as tests so `cargo test --workspace` is the whole gate.

use std::path::{Path, PathBuf};

use xshell::{Shell, cmd};

use crate::project_root;

fn rust_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if !name.starts_with('.') && name != "target" {
                    stack.push(path);
                }
            } else if name.ends_with(".rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Every Rust file starts with a `//!` doc comment saying what it is for, and has no
/// trailing whitespace or tabs.
#[test]
fn files_are_documented_and_clean() {
    let root = project_root();
    let mut problems = Vec::new();
    for path in rust_files(&root) {
        let rel = path
            .strip_prefix(&root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if !text.starts_with("//!") {
            problems.push(format!(
                "{rel}: does not start with a `//!` comment saying what it is for"
            ));
        }
        for (i, line) in text.lines().enumerate() {
            if line.ends_with(' ') || line.ends_with('\t') {
                problems.push(format!("{rel}:{}: trailing whitespace", i + 1));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "tidy problems:\n{}",
        problems.join("\n")
    );
}

/// ARCHITECTURE.md's code map names every crate.
#[test]
fn architecture_names_every_crate() {
    let root = project_root();
    let arch =
        std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md exists");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(root.join("crates"))
        .expect("crates/ exists")
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !arch.contains(&format!("`{name}`")) {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md does not name these crates: {missing:?}"
    );
}

/// `cargo fmt --check` passes (skipped only where rustfmt is not installed at all).
#[test]
fn formatting() {
    let sh = Shell::new().expect("shell");
    sh.change_dir(project_root());
    if cmd!(sh, "cargo fmt --version")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_err()
    {
        eprintln!("rustfmt is not installed; formatting not checked");
        return;
    }
    let result = cmd!(sh, "cargo fmt --all -- --check")
        .quiet()
        .ignore_stdout()
        .run();
    assert!(
        result.is_ok(),
        "code is not formatted: run `cargo fmt --all` and commit"
    );
}
