//! The output cache under `baton run`: a re-run with nothing changed takes every agent from
//! the cache (same trees as the first run); a changed prompt misses for that agent and for
//! everything downstream of it, and `--explain-cache` names the input that changed.

use crate::batch_loop::Loop;
use crate::support::{Run, baton};
use crate::tasks::store_plan;

/// Each agent writes its prompt (and c its upstream's output) into a file of its own.
const AGENT_SH: &str = r#"#!/bin/sh
printf '%s\n' "$2" > "$1.txt"
printf '{"summary": "%s wrote %s.txt"}' "$1" "$1" > "$BATON_RESULT_FILE"
"#;

const PLAN: &str = r#"
schema_version = 1
title = "Cached"

[profiles.script]
command = ["sh", "agent.sh", "{agent_id}", "{prompt}"]
env = { MODEL = "small" }

[defaults]
profile = "script"

[[batches]]
id = "B1"
[[batches.agents]]
id = "a"
task_type = "implement"
prompt = "PROMPT_A"
[[batches.agents]]
id = "b"
task_type = "implement"
prompt = "part b"

[[batches]]
id = "B2"
depends_on = ["B1"]
[[batches.agents]]
id = "c"
task_type = "implement"
prompt = "after {outputs.a}"
"#;

fn hits(run: &Run) -> Vec<String> {
    let mut v: Vec<String> = run
        .stdout
        .lines()
        .filter(|l| l.contains("[cache hit]"))
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .collect();
    v.sort();
    v
}

fn store(l: &Loop, prompt_a: &str) -> String {
    // each stored copy gets a title of its own: `plan new --from` refuses a plan whose content
    // is already stored, and the title is not part of any agent's cache key
    static COPIES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COPIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let plan = PLAN.replace("PROMPT_A", prompt_a).replace(
        "title = \"Cached\"",
        &format!("title = \"Cached, copy {n}\""),
    );
    let id = store_plan(&l.repo, &plan);
    std::fs::remove_file(l.repo.path().join("plan.toml")).unwrap();
    id
}

#[test]
fn rerun_is_all_hits_and_a_changed_prompt_misses_downstream() {
    let l = Loop::new(&PLAN.replace("PROMPT_A", "part a"));
    l.repo.write("agent.sh", AGENT_SH);
    l.repo.commit_all("scripted agents");

    let first = baton(&l.repo, &["run", &l.plan]).expect_code(0);
    assert!(hits(&first).is_empty(), "{}", first.stdout);
    assert!(
        first.stdout.contains("0 of 3 attempt(s) from cache"),
        "{}",
        first.stdout
    );
    let tree1 = l.rev(&format!("{}^{{tree}}", l.integration()));

    // the same plan again, nothing changed: every agent from the cache, same result
    let second = store(&l, "part a");
    let run = baton(&l.repo, &["run", &second]).expect_code(0);
    assert_eq!(hits(&run), ["a", "b", "c"], "{}", run.stdout);
    assert!(
        run.stdout.contains("3 of 3 attempt(s) from cache"),
        "{}",
        run.stdout
    );
    let tree2 = l.rev(&format!("baton/{second}/integration^{{tree}}"));
    assert_eq!(tree2, tree1);
    // c got a's output through the cache too
    let c = l
        .repo
        .git(&["show", &format!("baton/{second}/integration:c.txt")]);
    assert_eq!(c, "after a wrote a.txt");

    // a's prompt changes: --explain-cache names it; a and c (downstream) run, b is a hit
    let third = store(&l, "part a, done differently");
    let explain = baton(&l.repo, &["run", &third, "--explain-cache", "a", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(explain["cache"], "miss", "{explain}");
    assert_eq!(
        explain["changed"],
        serde_json::json!(["prompt"]),
        "{explain}"
    );
    let b = baton(&l.repo, &["run", &third, "--explain-cache", "b", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(b["cache"], "hit", "{b}");
    let run = baton(&l.repo, &["run", &third]).expect_code(0);
    assert_eq!(hits(&run), ["b"], "{}", run.stdout);
    assert!(
        run.stdout.contains("1 of 3 attempt(s) from cache"),
        "{}",
        run.stdout
    );

    // --no-cache runs everything
    let fourth = store(&l, "part a");
    let run = baton(&l.repo, &["run", &fourth, "--no-cache"]).expect_code(0);
    assert!(hits(&run).is_empty(), "{}", run.stdout);
    // metrics record every lookup with its result
    let metrics = std::fs::read_to_string(l.repo.path().join(".baton/metrics.jsonl")).unwrap();
    let lookups = metrics.matches("\"event\":\"cache\"").count();
    assert_eq!(lookups, 9, "three runs with the cache, three agents each");
}
