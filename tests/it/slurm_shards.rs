//! `baton verify --full --shards N`: the same counts and verdict as one unsharded run, whether
//! the shards run as local processes or as one Slurm array job; bad executor settings are exit 2
//! before anything is submitted.

use std::path::PathBuf;

use baton_tests::TestRepo;

use crate::slurm_support::cluster;
use crate::support::{BATON, Run};

/// A crate with eight tests, one of them failing, so three shards each get some.
fn crate_with_tests(repo: &TestRepo) {
    repo.write(
        "Cargo.toml",
        "[package]\nname = \"sharded\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    );
    let mut lib = String::from("pub fn id(x: u32) -> u32 { x }\n#[cfg(test)]\nmod tests {\n");
    for i in 0..7 {
        lib.push_str(&format!(
            "    #[test]\n    fn ok_{i}() {{ assert_eq!(super::id({i}), {i}); }}\n"
        ));
    }
    lib.push_str(
        "    #[test]\n    fn broken() { assert_eq!(super::id(1), 2, \"one is not two\"); }\n}\n",
    );
    repo.write("src/lib.rs", &lib);
    repo.write(".gitignore", "/target\n/Cargo.lock\n");
    repo.commit_all("a crate with tests");
}

fn baton(repo: &TestRepo, slurm_conf: Option<&PathBuf>, args: &[&str]) -> Run {
    let home = PathBuf::from(std::env::var_os("HOME").expect("HOME is set"));
    let cargo_home = std::env::var_os("CARGO_HOME").map_or(home.join(".cargo"), PathBuf::from);
    let rustup_home = std::env::var_os("RUSTUP_HOME").map_or(home.join(".rustup"), PathBuf::from);
    let mut cmd = repo.command(BATON, repo.path());
    cmd.args(args)
        .env("CARGO_HOME", cargo_home)
        .env("RUSTUP_HOME", rustup_home)
        .env_remove("CARGO_TARGET_DIR");
    if let Some(c) = slurm_conf {
        cmd.env("SLURM_CONF", c);
    }
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn counts(run: &Run) -> (u64, u64, u64, String) {
    let report = run.json();
    let tests = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "tests")
        .unwrap_or_else(|| panic!("no tests check: {report:#}"));
    let t = &tests["tests"];
    (
        t["passed"].as_u64().unwrap(),
        t["failed"].as_u64().unwrap(),
        t["skipped"].as_u64().unwrap(),
        tests["status"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn three_shards_give_the_counts_of_one_run_locally_and_on_slurm() {
    if !baton_tests::require_program(
        "slurm_shards::counts",
        &["cargo", "nextest", "--version"],
        "shards are nextest partitions",
        "cargo install cargo-nextest",
    ) {
        return;
    }
    let repo = TestRepo::new();
    crate_with_tests(&repo);
    let whole = baton(
        &repo,
        None,
        &["verify", "--full", "--check", "tests", "--json"],
    );
    assert_eq!(whole.code, 1, "one test fails: {}", whole.stderr);
    let expected = counts(&whole);
    assert_eq!(expected, (7, 1, 0, "fail".to_owned()));

    let local = baton(
        &repo,
        None,
        &[
            "verify",
            "--full",
            "--check",
            "tests",
            "--shards",
            "3",
            "--executor",
            "local",
            "--json",
        ],
    );
    assert_eq!(local.code, 1, "{}", local.stderr);
    assert_eq!(counts(&local), expected);

    let Some(slurm) = cluster("slurm_shards::counts (on Slurm)") else {
        return;
    };
    let sharded = baton(
        &repo,
        slurm.conf.as_ref(),
        &[
            "verify",
            "--full",
            "--check",
            "tests",
            "--shards",
            "3",
            "--executor",
            "slurm",
            "--json",
        ],
    );
    assert_eq!(sharded.code, 1, "{}", sharded.stderr);
    assert_eq!(counts(&sharded), expected);
    assert!(
        sharded.stderr.contains("submitted array job"),
        "{}",
        sharded.stderr
    );
    // the merged failure names the failing test, as the unsharded report does
    let failures = |r: &Run| {
        let report = r.json();
        let tests = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "tests")
            .unwrap()
            .clone();
        tests["tests"]["failures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap_or("").to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(failures(&sharded), failures(&whole));
    // shard files of a complete run are cleaned up: only baton's own directory remains
    let shards_dir = repo.path().join(".baton/shards");
    let left: Vec<_> = std::fs::read_dir(&shards_dir)
        .map(|d| d.collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn bad_executor_settings_exit_2_before_anything_is_submitted() {
    let repo = TestRepo::new();
    crate_with_tests(&repo);
    for (config, needle) in [
        ("[executor]\nkind = \"slurm\"\ncpus = 0\n", "executor.cpus"),
        (
            "[executor]\nkind = \"slurm\"\nsbatch_args = [\"--output=/tmp/x\"]\n",
            "sbatch_args[0]",
        ),
        (
            "[executor]\nkind = \"kubernetes\"\n",
            "expected `local` or `slurm`",
        ),
        ("[executor]\npartition = \"p\"\n", "executor.kind"),
    ] {
        repo.write(".config/baton.toml", config);
        let run = baton(&repo, None, &["verify", "--full", "--shards", "2"]);
        assert_eq!(run.code, 2, "{config}: {}", run.stderr);
        assert!(run.stderr.contains(needle), "{config}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
    }
    repo.write(".config/baton.toml", "");
    for args in [
        &["verify", "--shards", "0"][..],
        &["verify", "--shards", "2", "--partition", "hash:1/2"],
        &["verify", "--executor", "slurm"],
    ] {
        let run = baton(&repo, None, args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
    }
    // a partition the cluster does not have: Slurm refuses the array before any task exists
    let Some(slurm) = cluster("slurm_shards::bad_partition") else {
        return;
    };
    // no task ever ran: no shard wrote a log
    repo.write(
        ".config/baton.toml",
        "[executor]\nkind = \"slurm\"\npartition = \"no-such-partition\"\n",
    );
    let run = baton(
        &repo,
        slurm.conf.as_ref(),
        &["verify", "--full", "--check", "tests", "--shards", "2"],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("partition"), "{}", run.stderr);
    assert!(
        !repo
            .path()
            .join(".baton/shards")
            .read_dir()
            .is_ok_and(|mut d| d.any(|e| e.is_ok_and(|e| e.path().join("shard-1.log").exists())))
    );
}
