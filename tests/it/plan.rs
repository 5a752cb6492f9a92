//! `baton plan …` and `baton status` end to end: the real binary on real repositories.

use baton_tests::{TestRepo, write_file};

use crate::support::{baton, baton_in};

/// Files under the repository's state dir (relative paths, sorted); empty if it does not exist.
fn state_files(repo: &TestRepo) -> Vec<String> {
    let root = repo.path().join(".baton");
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(&root).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

const GOOD: &str = r#"schema_version = 1
title = "Two batches"
[profiles.s]
command = ["sh", "agent.sh", "{agent_id}"]
[defaults]
profile = "s"
[[batches]]
id = "B1"
[[batches.agents]]
id = "scan"
task_type = "research"
scope = { files_write = ["docs/**"] }
[[batches]]
id = "B2"
depends_on = ["B1"]
[[batches.agents]]
id = "build"
task_type = "implement"
prompt = "use {outputs.scan}"
scope = { files_write = ["src/**"] }
"#;

#[test]
fn skeleton_validates_stores_and_shows() {
    let repo = TestRepo::new();
    let scratch = repo.scratch("work");
    let run = baton_in(
        &repo,
        &scratch,
        &["plan", "new", "--title", "Cache \"layer\"", "-o", "p.toml"],
    )
    .expect_code(0);
    let id = run.stdout.trim().to_owned();
    assert!(id.starts_with("OP-") && id.len() == 27, "{id}");
    let text = std::fs::read_to_string(scratch.join("p.toml")).unwrap();
    assert!(text.contains(&format!("id = \"{id}\"")));
    assert!(text.contains("title = \"Cache \\\"layer\\\"\""));
    // writing over an existing file is refused
    baton_in(
        &repo,
        &scratch,
        &["plan", "new", "--title", "again", "-o", "p.toml"],
    )
    .expect_code(2);

    baton_in(&repo, &scratch, &["plan", "validate", "p.toml"]).expect_code(0);
    let plan_path = scratch.join("p.toml");
    let plan_arg = plan_path.to_str().unwrap();
    let stored = baton(&repo, &["--json", "plan", "new", "--from", plan_arg]).expect_code(0);
    let out = stored.json();
    assert_eq!(out["id"], id.as_str(), "the skeleton's id is kept");
    assert_eq!(state_files(&repo), vec![format!("plans/{id}.json")]);
    // the state dir is excluded, so the checkout stays clean
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    let exclude = std::fs::read_to_string(repo.path().join(".git/info/exclude")).unwrap();
    assert_eq!(exclude.lines().filter(|l| *l == "/.baton/").count(), 1);

    // storing the same plan again: exit 2, nothing written
    let again = baton(&repo, &["plan", "new", "--from", plan_arg]).expect_code(2);
    assert!(
        again
            .stderr
            .contains(&format!("plan {id} is already stored")),
        "{}",
        again.stderr
    );
    assert_eq!(state_files(&repo).len(), 1);

    let shown = baton(&repo, &["--json", "plan", "show", "latest"])
        .expect_code(0)
        .json();
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(shown["batches"][1]["depends_on"][0], "B1");
    let human = baton(&repo, &["plan", "show", &id[id.len() - 8..]]).expect_code(0);
    assert!(
        human.stdout.contains("levels: [B1] -> [B2]"),
        "{}",
        human.stdout
    );

    let list = baton(&repo, &["--json", "plan", "list"])
        .expect_code(0)
        .json();
    assert_eq!(list["schema_version"], 1);
    assert_eq!(list["plans"].as_array().unwrap().len(), 1);
    assert_eq!(list["plans"][0]["execution"], serde_json::Value::Null);

    let status = baton(&repo, &["status"]).expect_code(0);
    assert!(status.stdout.contains("not run yet"), "{}", status.stdout);
}

#[test]
fn json_and_toml_plans_store_the_same_model() {
    let repo = TestRepo::new();
    write_file(repo.path(), "p.toml", GOOD);
    let v = baton(&repo, &["--json", "plan", "validate", "p.toml"])
        .expect_code(0)
        .json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["levels"], serde_json::json!([["B1"], ["B2"]]));
    let id = baton(&repo, &["plan", "new", "--from", "p.toml"])
        .expect_code(0)
        .stdout;
    let stored =
        std::fs::read_to_string(repo.path().join(format!(".baton/plans/{}.json", id.trim())))
            .unwrap();
    // the stored JSON is itself a valid plan file
    let mut json: serde_json::Value = serde_json::from_str(&stored).unwrap();
    json.as_object_mut().unwrap().remove("id");
    write_file(
        repo.path(),
        "p.json",
        &serde_json::to_string(&json).unwrap(),
    );
    // the same content without an id is the same plan: refused, naming the stored one
    let again = baton(&repo, &["plan", "new", "--from", "p.json"]).expect_code(2);
    assert!(
        again
            .stderr
            .contains(&format!("already stored as {}", id.trim())),
        "{}",
        again.stderr
    );
    baton(&repo, &["plan", "rm", id.trim()]).expect_code(0);
    let id2 = baton(&repo, &["plan", "new", "--from", "p.json"])
        .expect_code(0)
        .stdout;
    assert_ne!(id.trim(), id2.trim());
    let a: serde_json::Value = serde_json::from_str(&stored).unwrap();
    let b: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            repo.path()
                .join(format!(".baton/plans/{}.json", id2.trim())),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(a["batches"], b["batches"]);
    assert_eq!(a["profiles"], b["profiles"]);
}

/// Each bad plan: `validate` and `new --from` exit 2 with one line naming the file and the
/// problem, and nothing is written.
#[test]
fn bad_plans_exit_2_and_write_nothing() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "cycle",
            "[[batches]]\nid = \"B1\"\ndepends_on = [\"B2\"]\n[[batches.agents]]\nid = \"a\"\ntask_type = \"test\"\n[[batches]]\nid = \"B2\"\ndepends_on = [\"B1\"]\n[[batches.agents]]\nid = \"b\"\ntask_type = \"test\"\n",
            "batch B1: depends_on forms a cycle: B1 -> B2 -> B1",
        ),
        (
            "missing",
            "[[batches]]\nid = \"B1\"\ndepends_on = [\"B9\"]\n[[batches.agents]]\nid = \"a\"\ntask_type = \"test\"\n",
            "batch B1: depends on B9, which is not a batch of this plan",
        ),
        (
            "duplicate",
            "[[batches]]\nid = \"B1\"\n[[batches.agents]]\nid = \"a\"\ntask_type = \"test\"\n[[batches.agents]]\nid = \"a\"\ntask_type = \"test\"\n",
            "agent a: the id is used twice",
        ),
        (
            "unsafe",
            "[[batches]]\nid = \"B1\"\n[[batches.agents]]\nid = \"../../x\"\ntask_type = \"test\"\n",
            ":10:6: agent id \"../../x\" is not valid",
        ),
        (
            "empty",
            "[[batches]]\nid = \"B1\"\n",
            "batch B1: the batch has no agents",
        ),
        (
            "unknown-field",
            "[[batches]]\nid = \"B1\"\nagnets = []\n",
            ":9:1: unknown field `agnets`",
        ),
        (
            "truncated",
            "[[batches]]\nid = \"B1",
            ":8:9: invalid basic string",
        ),
    ];
    let repo = TestRepo::new();
    let header = "schema_version = 1\ntitle = \"t\"\n[profiles.s]\ncommand = [\"x\"]\n[defaults]\nprofile = \"s\"\n";
    for (name, body, fragment) in cases {
        let file = format!("{name}.toml");
        write_file(repo.path(), &file, &format!("{header}{body}"));
        for args in [
            vec!["plan", "validate", &file],
            vec!["plan", "new", "--from", &file],
        ] {
            let run = baton(&repo, &args).expect_code(2);
            assert!(
                run.stderr.contains(file.as_str()) && run.stderr.contains(fragment),
                "{name}: {args:?}: stderr does not name the file and {fragment:?}:\n{}",
                run.stderr
            );
            assert!(
                run.stdout.is_empty(),
                "{name}: nothing on stdout: {}",
                run.stdout
            );
        }
        assert!(
            !repo.path().join(".baton").exists(),
            "{name}: nothing written"
        );
    }
}

#[test]
fn overlapping_scopes_warn_and_strict_refuses() {
    let repo = TestRepo::new();
    let plan = r#"schema_version = 1
title = "t"
[defaults]
command = ["x"]
[[batches]]
id = "B1"
[[batches.agents]]
id = "a"
task_type = "implement"
scope = { files_write = ["src/**"] }
[[batches.agents]]
id = "b"
task_type = "implement"
scope = { files_write = ["src/lib.rs"] }
"#;
    write_file(repo.path(), "p.toml", plan);
    let run = baton(&repo, &["plan", "validate", "p.toml"]).expect_code(0);
    assert!(
        run.stderr
            .contains("warning: p.toml: agent a: may write the same files as agent b"),
        "{}",
        run.stderr
    );
    baton(&repo, &["plan", "validate", "--strict", "p.toml"]).expect_code(2);
    baton(&repo, &["plan", "new", "--strict", "--from", "p.toml"]).expect_code(2);
    assert!(!repo.path().join(".baton").exists());
}

#[test]
fn environment_and_lookup_errors() {
    let repo = TestRepo::new();
    // not a repository: exit 3
    let outside = repo.scratch("not-a-repo");
    let run = baton_in(&repo, &outside, &["plan", "list"]).expect_code(3);
    assert!(
        run.stderr.contains("is not inside a git repository"),
        "{}",
        run.stderr
    );
    // unknown plan id: exit 2
    let run = baton(&repo, &["plan", "show", "OP-20260101-000000-deadbeef"]).expect_code(2);
    assert!(
        run.stderr.contains("no plan OP-20260101-000000-deadbeef"),
        "{}",
        run.stderr
    );
    // bad flag: exit 2
    baton(&repo, &["plan", "list", "--frobnicate"]).expect_code(2);
    // a plan file with another extension
    write_file(repo.path(), "p.yaml", "x: 1");
    let run = baton(&repo, &["plan", "validate", "p.yaml"]).expect_code(2);
    assert!(
        run.stderr
            .contains("p.yaml: plans are .toml or .json files"),
        "{}",
        run.stderr
    );
    // a bad config file names its position
    write_file(repo.path(), ".config/baton.toml", "[state]\ndri = \"x\"\n");
    let run = baton(&repo, &["plan", "list"]).expect_code(2);
    assert!(
        run.stderr.contains("baton.toml:2:1: unknown field `dri`"),
        "{}",
        run.stderr
    );
}

#[test]
fn works_from_a_subdirectory_and_with_repo_flag() {
    let repo = TestRepo::new();
    write_file(repo.path(), "p.toml", GOOD);
    baton(&repo, &["plan", "new", "--from", "p.toml"]).expect_code(0);
    let sub = repo.path().join("deep/er");
    std::fs::create_dir_all(&sub).unwrap();
    let list = baton_in(&repo, &sub, &["--json", "plan", "list"])
        .expect_code(0)
        .json();
    assert_eq!(list["plans"].as_array().unwrap().len(), 1);
    let elsewhere = repo.scratch("elsewhere");
    let list = baton_in(
        &repo,
        &elsewhere,
        &[
            "--json",
            "--repo",
            repo.path().to_str().unwrap(),
            "plan",
            "list",
        ],
    )
    .expect_code(0)
    .json();
    assert_eq!(list["plans"][0]["title"], "Two batches");
}

#[test]
fn concurrent_stores_get_distinct_ids() {
    let repo = TestRepo::new();
    // eight different plans (the same content twice is one plan: see the test above)
    for i in 0..8 {
        let plan = GOOD.replacen("title = \"", &format!("title = \"{i} "), 1);
        assert_ne!(plan, GOOD);
        write_file(repo.path(), &format!("p{i}.toml"), &plan);
    }
    let children: Vec<_> = (0..8)
        .map(|i| {
            repo.command(crate::support::BATON, repo.path())
                .args(["plan", "new", "--from", &format!("p{i}.toml")])
                .output()
        })
        .collect();
    let mut ids: Vec<String> = children
        .into_iter()
        .map(|out| {
            let out = out.expect("run baton");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 8);
    assert_eq!(state_files(&repo).len(), 8);
}

#[test]
fn validate_output_snapshot() {
    let repo = TestRepo::new();
    write_file(
        repo.path(),
        "bad.toml",
        r#"schema_version = 1
title = "t"
[defaults]
command = ["x", "{prompt}"]
[[batches]]
id = "B1"
depends_on = ["B2", "B9"]
[[batches.agents]]
id = "a"
task_type = "implement"
scope = { files_write = ["src/**"] }
[[batches.agents]]
id = "b"
task_type = "implement"
scope = { files_write = ["src/db/*.rs"] }
[[batches]]
id = "B2"
depends_on = ["B1"]
[[batches.agents]]
id = "c"
task_type = "test"
"#,
    );
    let run = baton(&repo, &["plan", "validate", "bad.toml"]).expect_code(2);
    insta::assert_snapshot!(run.stderr, @r#"
    error: bad.toml: batch B1: depends on B9, which is not a batch of this plan [missing_dependency]
    error: bad.toml: batch B1: depends_on forms a cycle: B1 -> B2 -> B1 (each depends on the next); remove one of these dependencies [dependency_cycle]
    warning: bad.toml: agent a: may write the same files as agent b ("src/**" overlaps "src/db/*.rs"; both in parallel batch B1); make the batch sequential or split the scopes [overlapping_write_scopes]
    error: bad.toml: invalid plan: 2 errors, 1 warning
    "#);
}

/// `plan new --title` without `-o` prints the skeleton and leaves the checkout as it was.
#[test]
fn skeleton_goes_to_stdout_and_the_checkout_stays_clean() {
    let repo = TestRepo::new();
    let run = baton(&repo, &["plan", "new", "--title", "T"]).expect_code(0);
    assert!(run.stdout.starts_with("# A baton plan."), "{}", run.stdout);
    assert!(run.stdout.contains("baton plan schema"), "{}", run.stdout);
    assert_eq!(repo.git(&["status", "--porcelain", "--ignored"]), "");
    let json = baton(&repo, &["--json", "plan", "new", "--title", "T"])
        .expect_code(0)
        .json();
    assert_eq!(json["schema_version"], 1);
    assert!(json["toml"].as_str().unwrap().contains("title = \"T\""));
}

/// `plan rm` removes the plan and its execution; a running execution needs --force; the id
/// may be a suffix; an unknown one is bad input.
#[test]
fn rm_removes_a_plan_and_refuses_a_running_one() {
    let repo = TestRepo::new();
    write_file(repo.path(), "p.toml", GOOD);
    let id = baton(&repo, &["plan", "new", "--from", "p.toml"])
        .expect_code(0)
        .stdout
        .trim()
        .to_owned();
    let exec = repo.path().join(format!(".baton/executions/{id}.json"));
    std::fs::create_dir_all(exec.parent().unwrap()).unwrap();
    let plan_id = baton_plan::PlanId::new(&id).unwrap();
    let plan = baton_plan::store::load_stored(
        &baton_store::StateDir::new(repo.path().join(".baton")),
        &plan_id,
    )
    .unwrap();
    let mut execution = baton_plan::Execution::new(plan_id, &plan, "2026-01-01T00:00:00Z");
    let first = plan.batches[0].id.clone();
    execution
        .start_batch(&plan, &first, "2026-01-01T00:00:01Z")
        .unwrap();
    baton_store::write_json(&exec, &execution).unwrap();
    // an earlier build's runner left a spare beside the execution; it goes with it
    let bytes = serde_json::to_vec_pretty(&execution).unwrap();
    let spare = baton_store::spare_path(&exec);
    std::fs::write(&spare, &bytes).unwrap();
    assert!(spare.is_file());

    let refused = baton(&repo, &["plan", "rm", &id[id.len() - 6..]]).expect_code(2);
    assert!(refused.stderr.contains("--force"), "{}", refused.stderr);
    assert!(exec.exists() && repo.path().join(format!(".baton/plans/{id}.json")).exists());

    let out = baton(&repo, &["--json", "plan", "rm", &id, "--force"])
        .expect_code(0)
        .json();
    assert_eq!(out["id"], id.as_str());
    assert!(out["removed_execution"].is_string(), "{out}");
    assert!(!exec.exists());
    assert!(!spare.exists(), "the execution's spare is removed with it");
    assert!(state_files(&repo).iter().all(|f| !f.starts_with("plans/")));
    baton(&repo, &["plan", "rm", &id]).expect_code(2);
}

/// `baton config` names each value's source; `--json` is an object with schema_version.
#[test]
fn config_shows_values_and_where_they_came_from() {
    let repo = TestRepo::new();
    write_file(
        repo.path(),
        ".config/baton.toml",
        "[verify]\nstale_lock_secs = 5\n",
    );
    let out = baton(&repo, &["--json", "config"]).expect_code(0).json();
    assert_eq!(out["schema_version"], 1);
    let setting = |key: &str| {
        out["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .unwrap_or_else(|| panic!("no {key} in {out}"))
            .clone()
    };
    assert_eq!(setting("verify.stale_lock_secs")["value"], 5);
    assert_eq!(setting("verify.stale_lock_secs")["source"], "file");
    assert_eq!(setting("state.dir")["value"], ".baton");
    assert_eq!(setting("state.dir")["source"], "default");
    let human = baton(&repo, &["config"]).expect_code(0).stdout;
    let line = human
        .lines()
        .find(|l| l.starts_with("verify.stale_lock_secs"))
        .unwrap();
    assert!(line.ends_with(".config/baton.toml"), "{line}");
}
