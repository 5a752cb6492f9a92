//! The batch loop's promises at its edges: `--explain-cache` writes nothing; replanned
//! agents re-run one after another, each on top of the one before; a runner killed at any
//! step of integrating a batch resumes without repeating a finished step; every task backend
//! is closed when its batch succeeds; and the loop driven by hand records every step.

use std::collections::BTreeMap;
use std::path::Path;

use crate::batch_loop::Loop;
use crate::support::baton;

/// Every file under `dir` (relative path → bytes); empty when `dir` does not exist.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(read) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in read.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            if e.file_type().unwrap().is_dir() {
                out.insert(format!("{rel}/"), Vec::new());
                stack.push(p);
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Each agent writes its prompt into a file of its own.
const WRITER_SH: &str = r#"#!/bin/sh
printf '%s\n' "$2" > "$1.txt"
printf '{"summary": "%s wrote %s.txt"}' "$1" "$1" > "$BATON_RESULT_FILE"
"#;

const CACHED_PLAN: &str = r#"
schema_version = 1
title = "Explained"

[profiles.script]
command = ["sh", "agent.sh", "{agent_id}", "{prompt}"]

[defaults]
profile = "script"

[[batches]]
id = "B1"
[[batches.agents]]
id = "a"
task_type = "implement"
prompt = "part a"

[[batches]]
id = "B2"
depends_on = ["B1"]
[[batches.agents]]
id = "b"
task_type = "implement"
prompt = "after {outputs.a}"
"#;

#[test]
fn explain_cache_writes_nothing() {
    let l = Loop::new(CACHED_PLAN);
    l.repo.write("agent.sh", WRITER_SH);
    l.repo.commit_all("scripted agents");
    let state = l.repo.path().join(".baton");
    let refs = || l.repo.git(&["for-each-ref", "--format=%(refname) %(objectname)"]);

    // before the plan ever ran: a miss, and no execution, lock, metrics line or branch
    let (before, refs_before) = (snapshot(&state), refs());
    let out = baton(&l.repo, &["run", &l.plan, "--explain-cache", "b", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(out["cache"], "miss", "{out}");
    assert_eq!(snapshot(&state), before, ".baton/ changed");
    assert_eq!(refs(), refs_before, "a ref changed");

    // after a run: a hit, still nothing written
    baton(&l.repo, &["run", &l.plan]).expect_code(0);
    let again = crate::tasks::store_plan(&l.repo, &CACHED_PLAN.replace("Explained", "Again"));
    std::fs::remove_file(l.repo.path().join("plan.toml")).unwrap();
    let (before, refs_before) = (snapshot(&state), refs());
    // a would be a hit; b misses, for its upstream has not run in this copy
    for (agent, verdict) in [("a", "hit"), ("b", "miss")] {
        let out = baton(&l.repo, &["run", &again, "--explain-cache", agent, "--json"])
            .expect_code(0)
            .json();
        assert_eq!(out["cache"], verdict, "{agent}: {out}");
    }
    assert_eq!(snapshot(&state), before, ".baton/ changed");
    assert_eq!(refs(), refs_before, "a ref changed");

    // a plan file never stored, in a repository without .baton/: it stays absent
    let fresh = baton_tests::TestRepo::new();
    fresh.write("plan.toml", CACHED_PLAN);
    let out = baton(&fresh, &["run", "plan.toml", "--explain-cache", "a", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(out["cache"], "miss", "{out}");
    assert!(!fresh.path().join(".baton").exists(), "explaining made .baton/");
    // bad input still says so, and writes nothing
    let bad = baton(&fresh, &["run", "plan.toml", "--explain-cache", "zz"]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(!fresh.path().join(".baton").exists());
}
