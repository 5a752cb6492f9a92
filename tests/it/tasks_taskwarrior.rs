//! `baton task --backend taskwarrior` against the real Taskwarrior (`task`, Debian package
//! `taskwarrior`) in a temporary TASKDATA, cross-checked with `task export` and Taskwarrior's
//! own `+READY` set.

use std::path::{Path, PathBuf};
use std::process::Command;

use baton_tests::TestRepo;
use serde_json::{Value, json};

use crate::support::{BATON, Run};
use crate::tasks::{
    FORWARD_PLAN, bad_edits, by_batch, edit_stored_plan, ids, plan_path, store_plan,
};

/// A Taskwarrior database of its own, beside the test repository.
struct Tw {
    data: PathBuf,
    rc: PathBuf,
}

impl Tw {
    /// `None` (the test reports itself skipped) when Taskwarrior is absent outside CI.
    fn new(repo: &TestRepo, test: &str) -> Option<Tw> {
        if !baton_tests::require_program(
            test,
            &["task", "--version"],
            "the Taskwarrior backend is tested against the real `task`",
            "apt-get install taskwarrior",
        ) {
            return None;
        }
        let dir = repo.scratch("taskwarrior");
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let rc = dir.join("taskrc");
        std::fs::write(&rc, "").unwrap();
        Some(Tw { data, rc })
    }

    /// `task` directly, with the same UDAs baton declares.
    fn task(&self, args: &[&str]) -> String {
        let out = Command::new("task")
            .env("TASKDATA", &self.data)
            .env("TASKRC", &self.rc)
            .args([
                "rc.confirmation=off",
                "rc.verbose=nothing",
                "rc.json.array=on",
                "rc.uda.baton_plan.type=string",
                "rc.uda.baton_batch.type=string",
            ])
            .args(args)
            .output()
            .expect("run task");
        assert!(
            out.status.success(),
            "task {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn export(&self, filter: &[&str]) -> Value {
        let mut args = filter.to_vec();
        args.push("export");
        serde_json::from_str(&self.task(&args)).unwrap()
    }

    /// baton with TASKDATA and TASKRC pointing here.
    fn baton(&self, repo: &TestRepo, args: &[&str]) -> Run {
        baton_env(
            repo,
            args,
            &[("TASKDATA", &self.data), ("TASKRC", &self.rc)],
        )
    }
}

fn baton_env(repo: &TestRepo, args: &[&str], env: &[(&str, &Path)]) -> Run {
    let mut cmd = repo.command(BATON, repo.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.args(args).output().expect("run baton");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn uuids(tasks: &Value) -> Vec<String> {
    let mut v: Vec<String> = tasks
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["uuid"].as_str().or(t["id"].as_str()).unwrap().to_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn create_from_plan_in_real_taskwarrior() {
    let repo = TestRepo::new();
    let Some(tw) = Tw::new(&repo, "create_from_plan_in_real_taskwarrior") else {
        return;
    };
    let plan = store_plan(&repo, FORWARD_PLAN);
    let out = tw
        .baton(
            &repo,
            &[
                "task",
                "create-from-plan",
                &plan,
                "--backend",
                "taskwarrior",
                "--json",
            ],
        )
        .expect_code(0)
        .json();
    assert_eq!(out["backend"], "taskwarrior");
    let ours = by_batch(&out["created"]);
    assert_eq!(ours.len(), 4);

    // what Taskwarrior itself holds: descriptions, UDAs, depends as UUIDs
    let theirs = tw.export(&[]);
    let theirs: std::collections::BTreeMap<String, Value> = theirs
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["baton_batch"].as_str().unwrap_or("-").to_owned(),
                t.clone(),
            )
        })
        .collect();
    assert_eq!(theirs.len(), 4);
    let uuid = |b: &str| theirs[b]["uuid"].as_str().unwrap().to_owned();
    for (b, t) in &theirs {
        assert_eq!(t["baton_plan"], plan.as_str(), "{b}");
        assert_eq!(t["status"], "pending");
        assert_eq!(t["uuid"], ours[b]["id"], "{b}");
    }
    assert_eq!(
        theirs["B1"]["description"],
        "Cache layer: batch B1 (implement)"
    );
    assert_eq!(ids(&theirs["B1"]["depends"]), [uuid("B2")]);
    assert_eq!(theirs["B2"].get("depends"), None);
    let mut b3 = vec![uuid("B1"), uuid("B2")];
    b3.sort();
    assert_eq!(ids(&theirs["B3"]["depends"]), b3);
    let mut parent = vec![uuid("B1"), uuid("B2"), uuid("B3")];
    parent.sort();
    assert_eq!(ids(&theirs["-"]["depends"]), parent);

    // plan -> tasks links name the UUIDs
    let stored: Value =
        serde_json::from_str(&std::fs::read_to_string(plan_path(&repo, &plan)).unwrap()).unwrap();
    assert_eq!(
        stored["tasks"][0],
        json!({"backend": "taskwarrior", "task_id": uuid("B2"), "batch": "B2"})
    );
    assert_eq!(stored["tasks"].as_array().unwrap().len(), 4);

    // baton's ready set is Taskwarrior's own +READY set, before and after B2 is done
    let ready = |tw: &Tw| {
        let r = tw
            .baton(
                &repo,
                &["task", "ready", "--backend", "taskwarrior", "--json"],
            )
            .expect_code(0)
            .json();
        uuids(&r["tasks"])
    };
    assert_eq!(ready(&tw), [uuid("B2")]);
    assert_eq!(uuids(&tw.export(&["+READY"])), [uuid("B2")]);
    tw.baton(
        &repo,
        &["task", "done", &uuid("B2"), "--backend", "taskwarrior"],
    )
    .expect_code(0);
    assert_eq!(
        tw.export(&["status:completed"])[0]["uuid"],
        uuid("B2").as_str()
    );
    assert_eq!(ready(&tw), [uuid("B1")]);
    assert_eq!(uuids(&tw.export(&["+READY"])), [uuid("B1")]);
    // closed by Taskwarrior itself
    tw.task(&[&uuid("B1"), "done"]);
    assert_eq!(ready(&tw), [uuid("B3")]);
    assert_eq!(uuids(&tw.export(&["+READY"])), [uuid("B3")]);

    // re-running creates nothing
    let again = tw
        .baton(
            &repo,
            &[
                "task",
                "create-from-plan",
                &plan,
                "--backend",
                "taskwarrior",
                "--json",
            ],
        )
        .expect_code(0)
        .json();
    assert_eq!(again["created"], json!([]));
    assert_eq!(again["existing"].as_array().unwrap().len(), 4);
    assert_eq!(tw.export(&[]).as_array().unwrap().len(), 4);
    let list = tw
        .baton(
            &repo,
            &["task", "list", "--backend", "taskwarrior", "--json"],
        )
        .expect_code(0)
        .json();
    assert_eq!(list["tasks"].as_array().unwrap().len(), 4);
    // the file backend was not touched
    assert!(
        !repo
            .path()
            .join(".baton/tasks")
            .read_dir()
            .unwrap()
            .any(|e| { e.unwrap().file_name().to_string_lossy().ends_with(".json") })
    );
}

#[test]
fn a_missing_dependency_or_a_cycle_writes_nothing_to_taskwarrior() {
    for (message, edit) in bad_edits() {
        let repo = TestRepo::new();
        let Some(tw) = Tw::new(
            &repo,
            "a_missing_dependency_or_a_cycle_writes_nothing_to_taskwarrior",
        ) else {
            return;
        };
        let plan = store_plan(&repo, FORWARD_PLAN);
        edit_stored_plan(&repo, &plan, edit);
        let before = std::fs::read(plan_path(&repo, &plan)).unwrap();
        let run = tw
            .baton(
                &repo,
                &[
                    "task",
                    "create-from-plan",
                    &plan,
                    "--backend",
                    "taskwarrior",
                ],
            )
            .expect_code(2);
        assert!(run.stderr.contains(message), "{}", run.stderr);
        assert_eq!(tw.export(&[]), json!([]));
        assert_eq!(std::fs::read(plan_path(&repo, &plan)).unwrap(), before);
    }
}

#[test]
fn link_a_taskwarrior_task_both_ways() {
    let repo = TestRepo::new();
    let Some(tw) = Tw::new(&repo, "link_a_taskwarrior_task_both_ways") else {
        return;
    };
    let plan = store_plan(&repo, FORWARD_PLAN);
    tw.task(&["add", "written by hand"]);
    let uuid = tw.export(&[])[0]["uuid"].as_str().unwrap().to_owned();
    let out = tw
        .baton(
            &repo,
            &[
                "task",
                "link",
                &plan,
                &uuid,
                "--backend",
                "taskwarrior",
                "--json",
            ],
        )
        .expect_code(0)
        .json();
    assert_eq!(
        out["links"],
        json!([{"backend": "taskwarrior", "task_id": uuid}])
    );
    assert_eq!(tw.export(&[])[0]["baton_plan"], plan.as_str());
    let stored = std::fs::read_to_string(plan_path(&repo, &plan)).unwrap();
    assert!(stored.contains(&uuid));
    // an unknown UUID or a filter expression is not a task
    for bad in ["00000000-0000-4000-8000-000000000000", "status:pending"] {
        tw.baton(
            &repo,
            &["task", "link", &plan, bad, "--backend", "taskwarrior"],
        )
        .expect_code(2);
    }
    assert_eq!(
        std::fs::read_to_string(plan_path(&repo, &plan)).unwrap(),
        stored
    );
}

#[test]
fn a_missing_task_program_is_an_environment_error() {
    let repo = TestRepo::new();
    let empty = repo.scratch("empty-path");
    let run = baton_env(
        &repo,
        &["task", "list", "--backend", "taskwarrior"],
        &[("PATH", &empty)],
    )
    .expect_code(3);
    assert!(
        run.stderr.contains("apt-get install taskwarrior"),
        "{}",
        run.stderr
    );
}
