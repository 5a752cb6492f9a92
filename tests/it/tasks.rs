//! `baton task` with the built-in file backend: create-from-plan, link, list, ready.

use std::collections::BTreeMap;
use std::path::PathBuf;

use baton_tests::TestRepo;
use serde_json::{Value, json};

use crate::support::baton;

/// B1 depends on B2, which is written after it (a forward reference); B3 on both.
pub const FORWARD_PLAN: &str = r#"
schema_version = 1
title = "Cache layer"

[defaults]
command = ["true"]

[[batches]]
id = "B1"
name = "implement"
depends_on = ["B2"]
[[batches.agents]]
id = "impl"
task_type = "implement"
prompt = "implement"
scope = { files_write = ["src/**"] }

[[batches]]
id = "B2"
name = "research"
[[batches.agents]]
id = "scan"
task_type = "research"
prompt = "research"
scope = { files_write = ["docs/**"] }

[[batches]]
id = "B3"
name = "test"
depends_on = ["B1", "B2"]
[[batches.agents]]
id = "check"
task_type = "test"
prompt = "test"
scope = { files_write = ["tests/**"] }
"#;

/// Store `toml` through the real CLI; returns the plan id.
pub fn store_plan(repo: &TestRepo, toml: &str) -> String {
    repo.write("plan.toml", toml);
    let out = baton(repo, &["plan", "new", "--from", "plan.toml", "--json"]).expect_code(0);
    out.json()["id"].as_str().unwrap().to_owned()
}

pub fn plan_path(repo: &TestRepo, id: &str) -> PathBuf {
    repo.path().join(format!(".baton/plans/{id}.json"))
}

/// Edit the stored plan's JSON the way a user with an editor might.
pub fn edit_stored_plan(repo: &TestRepo, id: &str, f: impl FnOnce(&mut Value)) {
    let path = plan_path(repo, id);
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// An edit of a stored plan and what the error must say.
pub type BadEdit = (&'static str, fn(&mut Value));

/// The two bad edits: a dependency on a batch that does not exist, and a cycle B1 → B2 → B1.
pub fn bad_edits() -> Vec<BadEdit> {
    vec![
        ("depends on B9, which the plan does not have", |v| {
            v["batches"][2]["depends_on"] = json!(["B1", "B9"]);
        }),
        ("form a cycle", |v| {
            v["batches"][1]["depends_on"] = json!(["B1"])
        }),
    ]
}

fn task_files(repo: &TestRepo) -> Vec<String> {
    let dir = repo.path().join(".baton/tasks");
    let mut names: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json"))
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

/// Tasks of a `--json` output by batch (`"-"` for the parent).
pub fn by_batch(tasks: &Value) -> BTreeMap<String, Value> {
    tasks
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["batch"].as_str().unwrap_or("-").to_owned(), t.clone()))
        .collect()
}

pub fn ids(v: &Value) -> Vec<String> {
    let mut ids: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[test]
fn create_from_plan_with_forward_dependencies_links_both_ways() {
    let repo = TestRepo::new();
    let plan = store_plan(&repo, FORWARD_PLAN);
    let out = baton(&repo, &["task", "create-from-plan", &plan, "--json"])
        .expect_code(0)
        .json();
    assert_eq!(out["plan"], plan.as_str());
    assert_eq!(out["backend"], "file");
    assert_eq!(out["existing"], json!([]));
    let created = &out["created"];
    // B2 (no dependencies) first, then B1, then B3, the parent last
    let order: Vec<&str> = created
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["batch"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(order, ["B2", "B1", "B3", "-"]);
    let t = by_batch(created);
    let id = |b: &str| t[b]["id"].as_str().unwrap().to_owned();
    for (b, task) in &t {
        let tid = task["id"].as_str().unwrap();
        // T-YYYYMMDD-HHMMSS-<8 hex>-NNN
        assert_eq!(tid.len(), "T-20260101-000000-0123abcd-001".len(), "{tid}");
        assert!(tid.starts_with("T-"));
        assert_eq!(task["plan"], plan.as_str(), "{b}");
        assert_eq!(task["status"], "open");
    }
    assert_eq!(t["B1"]["blocked_by"], json!([id("B2")]));
    assert_eq!(t["B2"].get("blocked_by"), None);
    assert_eq!(ids(&t["B3"]["blocked_by"]), {
        let mut v = vec![id("B1"), id("B2")];
        v.sort();
        v
    });
    assert_eq!(ids(&t["-"]["blocked_by"]), {
        let mut v = vec![id("B1"), id("B2"), id("B3")];
        v.sort();
        v
    });
    assert_eq!(t["-"]["title"], "Cache layer");
    // task -> plan: in each file; plan -> tasks: in the stored plan
    assert_eq!(task_files(&repo).len(), 4);
    let stored: Value =
        serde_json::from_str(&std::fs::read_to_string(plan_path(&repo, &plan)).unwrap()).unwrap();
    let links: BTreeMap<String, Value> = stored["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["task_id"].as_str().unwrap().to_owned(), l.clone()))
        .collect();
    assert_eq!(links.len(), 4);
    for b in ["B1", "B2", "B3"] {
        assert_eq!(
            links[&id(b)],
            json!({"backend": "file", "task_id": id(b), "batch": b})
        );
    }
    assert_eq!(
        links[&id("-")],
        json!({"backend": "file", "task_id": id("-")})
    );
    assert_eq!(out["links"], stored["tasks"]);

    // ready: only B2; once B2 is done, B1; the parent waits for all
    let ready = |repo: &TestRepo| {
        let r = baton(repo, &["task", "ready", "--json"])
            .expect_code(0)
            .json();
        by_batch(&r["tasks"]).into_keys().collect::<Vec<_>>()
    };
    assert_eq!(ready(&repo), ["B2"]);
    let done = baton(&repo, &["task", "done", &id("B2"), "--json"])
        .expect_code(0)
        .json();
    assert_eq!(done["status"], "done");
    let b2 = repo.path().join(format!(".baton/tasks/{}.json", id("B2")));
    assert!(
        std::fs::read_to_string(&b2)
            .unwrap()
            .contains("\"status\": \"done\"")
    );
    assert_eq!(ready(&repo), ["B1"]);
    // cancelling B1 unblocks B3 too; the parent still waits for B3
    baton(&repo, &["task", "done", "--cancel", &id("B1")]).expect_code(0);
    assert_eq!(ready(&repo), ["B3"]);
    baton(&repo, &["task", "done", "T-20260101-000000-0123abcd-999"]).expect_code(2);

    // a re-run creates nothing and keeps the links as they are
    let files = task_files(&repo);
    let again = baton(&repo, &["task", "create-from-plan", "latest", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(again["created"], json!([]));
    assert_eq!(again["existing"].as_array().unwrap().len(), 4);
    assert_eq!(again["links"], stored["tasks"]);
    assert_eq!(task_files(&repo), files);
    let human = baton(&repo, &["task", "create-from-plan", &plan]).expect_code(0);
    assert!(
        human.stderr.contains("0 tasks created, 4 already there"),
        "{}",
        human.stderr
    );

    // list, all and by plan
    let list = baton(&repo, &["task", "list", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(list["tasks"].as_array().unwrap().len(), 4);
    let other = store_plan(&repo, &FORWARD_PLAN.replace("Cache layer", "Other"));
    baton(&repo, &["task", "create-from-plan", &other]).expect_code(0);
    let mine = baton(&repo, &["task", "list", "--plan", &plan, "--json"])
        .expect_code(0)
        .json();
    assert_eq!(mine["tasks"].as_array().unwrap().len(), 4);
    assert_eq!(task_files(&repo).len(), 8);
}

#[test]
fn a_missing_dependency_or_a_cycle_writes_nothing() {
    for (message, edit) in bad_edits() {
        let repo = TestRepo::new();
        let plan = store_plan(&repo, FORWARD_PLAN);
        edit_stored_plan(&repo, &plan, edit);
        let before = std::fs::read(plan_path(&repo, &plan)).unwrap();
        let run = baton(&repo, &["task", "create-from-plan", &plan]).expect_code(2);
        assert!(run.stderr.contains(message), "{}", run.stderr);
        assert!(run.stderr.contains("nothing was written"), "{}", run.stderr);
        assert!(!repo.path().join(".baton/tasks").exists());
        assert_eq!(std::fs::read(plan_path(&repo, &plan)).unwrap(), before);
    }
}

#[test]
fn link_connects_a_task_and_a_plan_both_ways() {
    let repo = TestRepo::new();
    let plan = store_plan(&repo, FORWARD_PLAN);
    // a task made by hand (legacy 4-hex id), not yet linked
    let tid = "T-20240101-000000-beef-001";
    repo.write(
        &format!(".baton/tasks/{tid}.json"),
        r#"{"schema_version": 1, "id": "T-20240101-000000-beef-001", "title": "by hand", "status": "open"}"#,
    );
    let out = baton(&repo, &["task", "link", &plan, tid, "--json"])
        .expect_code(0)
        .json();
    assert_eq!(out["task"]["plan"], plan.as_str());
    assert_eq!(out["links"], json!([{"backend": "file", "task_id": tid}]));
    let task: Value = serde_json::from_str(
        &std::fs::read_to_string(repo.path().join(format!(".baton/tasks/{tid}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(task["plan"], plan.as_str());
    // linking again changes nothing
    let before = std::fs::read(plan_path(&repo, &plan)).unwrap();
    baton(&repo, &["task", "link", &plan, tid]).expect_code(0);
    assert_eq!(std::fs::read(plan_path(&repo, &plan)).unwrap(), before);

    // a task of another plan, an unknown task, an unknown plan: exit 2, nothing changed
    let other = store_plan(&repo, &FORWARD_PLAN.replace("Cache layer", "Other"));
    let run = baton(&repo, &["task", "link", &other, tid]).expect_code(2);
    assert!(run.stderr.contains("is linked to plan"), "{}", run.stderr);
    baton(
        &repo,
        &["task", "link", &plan, "T-20240101-000000-beef-999"],
    )
    .expect_code(2);
    baton(&repo, &["task", "link", &plan, "../../etc/passwd"]).expect_code(2);
    baton(&repo, &["task", "link", "OP-20200101-000000-00000000", tid]).expect_code(2);
    assert_eq!(std::fs::read(plan_path(&repo, &plan)).unwrap(), before);
    let other_stored = std::fs::read_to_string(plan_path(&repo, &other)).unwrap();
    assert!(!other_stored.contains("\"tasks\""));
}

#[test]
fn a_damaged_task_file_is_an_error_naming_it() {
    let repo = TestRepo::new();
    repo.write(
        ".baton/tasks/T-20260101-000000-0123abcd-001.json",
        "{\"schema_version\": 1, \"id\":",
    );
    let run = baton(&repo, &["task", "list"]).expect_code(2);
    assert!(
        run.stderr.contains("T-20260101-000000-0123abcd-001.json"),
        "{}",
        run.stderr
    );
    baton(&repo, &["task", "ready", "--json"]).expect_code(2);
}

#[test]
fn only_available_backends_are_offered() {
    let repo = TestRepo::new();
    let help = baton(&repo, &["task", "list", "--help"]).expect_code(0);
    assert!(help.stdout.contains("taskwarrior"), "{}", help.stdout);
    assert!(!help.stdout.contains("beads"), "{}", help.stdout);
    baton(&repo, &["task", "list", "--backend", "beads"]).expect_code(2);
    baton(&repo, &["task", "list", "--backend", "jira"]).expect_code(2);
}

#[test]
fn concurrent_create_from_plan_runs_create_one_set_of_tasks() {
    let repo = TestRepo::new();
    let plan = store_plan(&repo, FORWARD_PLAN);
    let children: Vec<_> = (0..4)
        .map(|_| {
            repo.command(crate::support::BATON, repo.path())
                .args(["task", "create-from-plan", &plan, "--json"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut created = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        created += v["created"].as_array().unwrap().len();
    }
    assert_eq!(
        created, 4,
        "one run creates the 4 tasks, the others find them"
    );
    assert_eq!(task_files(&repo).len(), 4);
    let stored: Value =
        serde_json::from_str(&std::fs::read_to_string(plan_path(&repo, &plan)).unwrap()).unwrap();
    assert_eq!(stored["tasks"].as_array().unwrap().len(), 4);
}

/// `task done` takes a unique suffix of a task id (as plans take a suffix of theirs); an
/// ambiguous or unknown one is bad input naming the candidates. `task ready` then shows the
/// next task without naming the done one as a blocker.
#[test]
fn done_by_unique_suffix_and_ready_names_only_open_blockers() {
    let repo = TestRepo::new();
    let plan = store_plan(&repo, FORWARD_PLAN);
    let created = baton(&repo, &["task", "create-from-plan", &plan, "--json"])
        .expect_code(0)
        .json();
    assert_eq!(created["schema_version"], 1);
    let tasks = created["created"].as_array().unwrap();
    let id_of = |batch: &str| {
        tasks.iter().find(|t| t["batch"] == batch).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let b2 = id_of("B2");
    let b1 = id_of("B1");
    // a second plan's tasks end in -001, -002, … too: "001" is ambiguous
    let other = store_plan(&repo, &FORWARD_PLAN.replace("Cache layer", "Other"));
    baton(&repo, &["task", "create-from-plan", &other]).expect_code(0);
    let ambiguous = baton(&repo, &["task", "done", "001"]).expect_code(2);
    assert!(
        ambiguous.stderr.contains("type more of the id"),
        "{}",
        ambiguous.stderr
    );
    let unknown = baton(&repo, &["task", "done", "nosuch"]).expect_code(2);
    assert!(
        unknown.stderr.contains("no task \"nosuch\""),
        "{}",
        unknown.stderr
    );

    // the random part and the number: unique across the two plans
    let suffix = &b2[b2.len() - 12..];
    let done = baton(&repo, &["task", "done", suffix, "--json"])
        .expect_code(0)
        .json();
    assert_eq!(done["id"], b2.as_str());
    assert_eq!(done["status"], "done");

    let ready = baton(&repo, &["task", "ready"]).expect_code(0).stdout;
    assert!(ready.contains(&b1), "{ready}");
    assert!(
        !ready.contains("blocked by"),
        "a done task named as a blocker:\n{ready}"
    );
    // the list still names B3's open blocker (B1), never the done one
    let list = baton(&repo, &["task", "list"]).expect_code(0).stdout;
    let b3_line = list
        .lines()
        .find(|l| l.contains(&format!("[{plan} B3]")))
        .unwrap();
    assert!(b3_line.contains(&format!("blocked by {b1}")), "{b3_line}");
    assert!(!b3_line.contains(&b2), "{b3_line}");
}
