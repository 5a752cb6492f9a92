//! The tests check on Cargo workspaces beyond the basics: `--affected` (rdeps of changed
//! packages), `--merged` on a Rust workspace, a moved nextest store, a missing test tool, and
//! the `cargo test` fallback without nextest.

use std::path::PathBuf;

use baton_tests::{TestRepo, write_file};

use super::tests_step::{baton_with_cargo, nextest_installed, tests_summary, tiny_crate};
use super::{add_worktree, check_of, verify_json};
use crate::support::Run;

#[test]
fn affected_runs_only_the_changed_packages_and_their_dependents() {
    if !nextest_installed() {
        return; // rdeps() is a nextest filterset
    }
    let repo = TestRepo::new();
    repo.write(
        "Cargo.toml",
        "[workspace]\nmembers = [\"a\", \"b\", \"c\"]\nresolver = \"2\"\n",
    );
    for (name, deps, body) in [
        ("a", "", "pub fn one() -> u32 { 1 }"),
        (
            "b",
            "a = { path = \"../a\" }\n",
            "pub fn two() -> u32 { a::one() + 1 }",
        ),
        ("c", "", "pub fn three() -> u32 { 3 }"),
    ] {
        repo.write(
            &format!("{name}/Cargo.toml"),
            &format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n{deps}"),
        );
        repo.write(
            &format!("{name}/src/lib.rs"),
            &format!(
                "{body}\n#[cfg(test)]\nmod tests {{\n    #[test]\n    fn in_{name}() {{}}\n}}\n"
            ),
        );
    }
    // cargo writes Cargo.lock on first use; a changed lockfile would rightly affect everything
    repo.write(".gitignore", "/target\n/Cargo.lock\n");
    repo.commit_all("three packages");
    repo.write("a/src/lib.rs", "pub fn one() -> u32 { 1 } // changed\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn in_a() {}\n}\n");
    let run = baton_with_cargo(
        &repo,
        &[
            "verify",
            "--check",
            "tests",
            "--full",
            "--affected",
            "--json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let t = tests_summary(&run);
    assert_eq!(t["filter"], "rdeps(=a)");
    assert_eq!(
        t["passed"], 2,
        "a's test and b's (b depends on a), not c's: {t:#}"
    );
    // a change outside every package touches nothing to test
    repo.git(&["checkout", "-q", "--", "."]);
    repo.write("NOTES.md", "notes\n");
    let run = baton_with_cargo(
        &repo,
        &["verify", "--check", "tests", "--affected", "--json"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(check_of(&run.json(), "tests")["status"], "skip");
    // with agents, their changes decide, even with --check tests alone, and their merged
    // result is what is tested
    std::fs::remove_file(repo.path().join("NOTES.md")).unwrap();
    let agent = add_worktree(&repo, "agent-c", "agent-c");
    write_file(
        &agent,
        "c/src/lib.rs",
        "pub fn three() -> u32 { 3 } // changed by the agent\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn in_c() {}\n}\n",
    );
    repo.commit_all_in(&agent, "agent changes c");
    let run = baton_with_cargo(
        &repo,
        &[
            "verify",
            "--check",
            "tests",
            "--full",
            "--affected",
            "--json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    let t = &check_of(&report, "tests")["tests"];
    assert_eq!(t["filter"], "rdeps(=c)", "{t:#}");
    assert_eq!(t["passed"], 1, "only c's test: {t:#}");
    assert_eq!(report["tested"]["kind"], "merged");
}

#[test]
fn a_missing_test_tool_is_exit_3_with_the_report_still_printed() {
    let repo = TestRepo::new();
    repo.write(
        ".config/baton.toml",
        "[verify]\nquick = [\"no-such-test-tool-xyz\"]\n",
    );
    repo.commit_all("config");
    let (run, report) = verify_json(&repo, &["--check", "tests"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let check = check_of(&report, "tests");
    assert_eq!(check["status"], "error");
    assert!(
        check["message"]
            .as_str()
            .unwrap()
            .contains("no-such-test-tool-xyz"),
        "{check:#}"
    );
}

#[test]
fn merged_rust_workspace_passes_where_each_agent_alone_fails() {
    let repo = TestRepo::new();
    repo.write(
        "Cargo.toml",
        "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    );
    repo.write(
        "src/lib.rs",
        "mod expected;\npub use expected::EXPECTED;\npub fn value() -> u32 { 1 }\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn value_matches() { assert_eq!(super::value(), super::EXPECTED); }\n}\n",
    );
    repo.write("src/expected.rs", "pub const EXPECTED: u32 = 1;\n");
    repo.write(".gitignore", "/target\n/Cargo.lock\n");
    repo.commit_all("tiny crate");
    // each agent does half of a change: alone, each breaks the test; merged, it passes
    let a = add_worktree(&repo, "a", "a");
    let b = add_worktree(&repo, "b", "b");
    let lib = std::fs::read_to_string(repo.path().join("src/lib.rs")).unwrap();
    write_file(&a, "src/lib.rs", &lib.replace("{ 1 }", "{ 2 }"));
    repo.commit_all_in(&a, "value is 2");
    write_file(&b, "src/expected.rs", "pub const EXPECTED: u32 = 2;\n");
    repo.commit_all_in(&b, "expect 2");
    let run = baton_with_cargo(&repo, &["verify", "--check", "tests", "--merged", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let t = tests_summary(&run);
    assert_eq!(
        (t["passed"].as_u64(), t["failed"].as_u64()),
        (Some(1), Some(0)),
        "{t:#}"
    );
    // the merged build used a stable scratch directory outside the checkout, with its own
    // target dir; the checkout is untouched
    let report = run.json();
    let dir = PathBuf::from(report["tested"]["dir"].as_str().unwrap());
    assert!(!dir.starts_with(repo.path()), "{dir:?}");
    assert!(dir.parent().unwrap().join("target").is_dir());
    assert!(!repo.path().join("target").exists());
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}

#[test]
fn a_moved_nextest_store_is_followed() {
    if !nextest_installed() {
        return;
    }
    let repo = TestRepo::new();
    repo.write(
        ".config/nextest.toml",
        "[store]\ndir = \"target/elsewhere\"\n",
    );
    tiny_crate(&repo, Some("test(ok_unit)"));
    let run = baton_with_cargo(&repo, &["verify", "--check", "tests", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let t = tests_summary(&run);
    assert_eq!(
        (t["passed"].as_u64(), t["failed"].as_u64()),
        (Some(1), Some(0)),
        "{t:#}"
    );
    assert!(
        repo.path()
            .join("target/elsewhere/baton-verify/junit.xml")
            .is_file()
    );
}

#[test]
fn without_nextest_cargo_test_runs_and_its_output_is_parsed() {
    let repo = TestRepo::new();
    tiny_crate(&repo, None);
    // a cargo that has no `nextest` subcommand, like a machine without cargo-nextest
    let real = std::env::var_os("CARGO").unwrap_or("cargo".into());
    let fake = repo.scratch("bin").join("cargo-without-nextest");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nif [ \"$1\" = nextest ]; then echo 'no such command: nextest' >&2; exit 101; fi\nexec '{}' \"$@\"\n",
            PathBuf::from(real).display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = PathBuf::from(std::env::var_os("HOME").expect("HOME is set"));
    let out = repo
        .command(crate::support::BATON, repo.path())
        .args(["verify", "--check", "tests", "--json"])
        .env("CARGO", &fake)
        .env(
            "CARGO_HOME",
            std::env::var_os("CARGO_HOME").map_or(home.join(".cargo"), PathBuf::from),
        )
        .env(
            "RUSTUP_HOME",
            std::env::var_os("RUSTUP_HOME").map_or(home.join(".rustup"), PathBuf::from),
        )
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_eq!(run.code, 1, "{}", run.stderr);
    let t = tests_summary(&run);
    assert_eq!(t["runner"], "cargo-test");
    // quick: unit tests only (`--lib --bins`), the failing one named
    assert_eq!(
        (t["passed"].as_u64(), t["failed"].as_u64()),
        (Some(1), Some(1)),
        "{t:#}"
    );
    assert_eq!(t["failures"][0]["name"], "tests::bad_unit");
    // --partition needs nextest: refused up front
    let out = repo
        .command(crate::support::BATON, repo.path())
        .args(["verify", "--check", "tests", "--partition", "hash:1/2"])
        .env("CARGO", &fake)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
