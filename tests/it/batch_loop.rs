//! The batch loop driven by hand: `baton batch integrate` commits what agents left in their
//! worktrees, gates the batch, merges it onto `baton/<plan>/integration`, tests the merged
//! tree and moves the branch only when all of that passed; `baton batch replan` sends agents
//! back with the findings. Git itself is the oracle (`merge-tree`, `status`, `log`, reflog).

use std::path::PathBuf;

use baton_tests::TestRepo;
use serde_json::Value;

use crate::support::{Run, baton};
use crate::tasks::store_plan;

/// The project's tests: at most one file under `flags/` (two features that each work alone
/// but not together). `BATON_TEST_HOLD` makes the tests stop and wait (the crash test).
const TEST_SH: &str = r#"#!/bin/sh
if [ -n "$BATON_TEST_HOLD" ]; then
  echo $$ > "$BATON_TEST_HOLD.tmp" && mv "$BATON_TEST_HOLD.tmp" "$BATON_TEST_HOLD"
  exec sleep 60
fi
n=$(ls flags 2>/dev/null | wc -l)
if [ "$n" -gt 1 ]; then echo "more than one flag is on: $(ls flags | tr '\n' ' ')"; exit 1; fi
echo "tests pass"
"#;

pub const TWO_BATCHES: &str = r#"
schema_version = 1
title = "Two batches"
on_gate_failure = "replan"
max_replans = 1

[defaults]
command = ["true"]

[[batches]]
id = "B1"
[[batches.agents]]
id = "a"
task_type = "implement"
prompt = "write a"
[[batches.agents]]
id = "b"
task_type = "implement"
prompt = "write b"

[[batches]]
id = "B2"
depends_on = ["B1"]
[[batches.agents]]
id = "c"
task_type = "implement"
prompt = "build on {outputs.a} and {files.b}"
"#;

pub struct Loop {
    pub repo: TestRepo,
    pub plan: String,
}

impl Loop {
    pub fn new(plan: &str) -> Loop {
        let repo = TestRepo::new();
        repo.write(
            ".config/baton.toml",
            "[verify]\nquick = [\"sh\", \"test.sh\"]\n",
        );
        repo.write("test.sh", TEST_SH);
        repo.write("notes.txt", "one\ntwo\nthree\n");
        repo.commit_all("project with tests");
        let plan = store_plan(&repo, plan);
        // the plan file is the user's; keep the checkout clean for the git check
        std::fs::remove_file(repo.path().join("plan.toml")).unwrap();
        Loop { repo, plan }
    }

    pub fn branch(&self, agent: &str) -> String {
        format!("baton/{}/{agent}", self.plan)
    }

    pub fn integration(&self) -> String {
        format!("baton/{}/integration", self.plan)
    }

    /// An agent's worktree on its branch, starting at `from`.
    pub fn worktree(&self, agent: &str, from: &str) -> PathBuf {
        let path = self.repo.scratch("wt").join(agent);
        let branch = self.branch(agent);
        self.repo.git(&[
            "worktree",
            "add",
            "-q",
            "-b",
            &branch,
            path.to_str().unwrap(),
            from,
        ]);
        path
    }

    pub fn integrate(&self, batch: &str, extra: &[&str]) -> Run {
        let mut args = vec!["batch", "integrate", &self.plan, batch, "--json"];
        args.extend_from_slice(extra);
        baton(&self.repo, &args)
    }

    pub fn rev(&self, rev: &str) -> String {
        self.repo.git(&["rev-parse", rev])
    }

    pub fn execution(&self) -> Value {
        let path = self
            .repo
            .path()
            .join(format!(".baton/executions/{}.json", self.plan));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    pub fn batch_state(&self, batch: &str) -> Value {
        self.execution()["batches"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["id"] == batch)
            .unwrap()
            .clone()
    }
}

fn write(dir: &std::path::Path, rel: &str, text: &str) {
    baton_tests::write_file(dir, rel, text);
}

#[test]
fn dependent_batch_sees_the_merged_work_and_the_user_branch_stays() {
    let l = Loop::new(TWO_BATCHES);
    let main_before = l.rev("main");
    let wa = l.worktree("a", "main");
    let wb = l.worktree("b", "main");
    // agents leave their work uncommitted, one of them as an untracked file, one ignored
    write(&wa, "a.txt", "from a\n");
    write(&wa, "notes.txt", "one\ntwo\nthree\nfour (a)\n");
    write(&wb, "b.txt", "from b\n");
    write(&wb, ".gitignore", "*.tmp\n");
    write(&wb, "scratch.tmp", "never committed\n");
    // what the agent wrote to BATON_RESULT_FILE (beside its log)
    let logs = l
        .repo
        .path()
        .join(".baton/executions")
        .join(&l.plan)
        .join("logs/a");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(
        logs.join("1.result.json"),
        r#"{"summary": "a.txt holds a's part", "outputs": {"lines": 1}}"#,
    )
    .unwrap();

    let out = l.integrate("B1", &[]).expect_code(0).json();
    assert_eq!(out["outcome"], "advanced", "{out}");

    // the work was committed on the agents' branches: nothing left behind but ignored files
    for wt in [&wa, &wb] {
        assert_eq!(l.repo.git_in(wt, &["status", "--porcelain"]), "");
    }
    let msg = l.repo.git(&["log", "-1", "--format=%B", &l.branch("a")]);
    assert!(
        msg.contains(&l.plan) && msg.contains("agent a") && msg.contains("attempt 1"),
        "{msg}"
    );
    assert!(msg.contains("a.txt holds a's part"), "{msg}");
    let b_files = l
        .repo
        .git(&["ls-tree", "-r", "--name-only", &l.branch("b")]);
    assert!(
        b_files.contains("b.txt") && !b_files.contains("scratch.tmp"),
        "{b_files}"
    );

    // the integration branch holds exactly git's merge of the two branches
    let expected = l
        .repo
        .git(&["merge-tree", "--write-tree", &l.branch("a"), &l.branch("b")]);
    assert_eq!(l.rev(&format!("{}^{{tree}}", l.integration())), expected);
    assert_eq!(out["to"], l.rev(&l.integration()));
    // nothing of the user's moved
    assert_eq!(l.rev("main"), main_before);
    assert_eq!(l.repo.git(&["status", "--porcelain"]), "");
    assert_eq!(l.batch_state("B1")["status"], "succeeded");

    // B2 starts from the integration branch and sees both agents' work
    let wc = l.worktree("c", &l.integration());
    assert!(wc.join("a.txt").is_file() && wc.join("b.txt").is_file());
    write(&wc, "c.txt", "from c\n");
    l.integrate("B2", &[]).expect_code(0);
    let files = l
        .repo
        .git(&["ls-tree", "-r", "--name-only", &l.integration()]);
    for f in ["a.txt", "b.txt", "c.txt"] {
        assert!(files.lines().any(|l| l == f), "{f} missing from:\n{files}");
    }
    let status = baton(&l.repo, &["status", &l.plan, "--json"])
        .expect_code(0)
        .json();
    assert_eq!(status["execution"]["status"], "succeeded", "{status}");
    // the gate recorded a verification per batch
    let metrics = std::fs::read_to_string(l.repo.path().join(".baton/metrics.jsonl")).unwrap();
    assert_eq!(metrics.matches("\"verification\"").count(), 2, "{metrics}");
}

#[test]
fn colliding_batch_fails_its_gate_and_the_integration_branch_does_not_move() {
    let l = Loop::new(TWO_BATCHES);
    let wa = l.worktree("a", "main");
    let wb = l.worktree("b", "main");
    write(&wa, "notes.txt", "one\nTWO by a\nthree\n");
    write(&wb, "notes.txt", "one\ntwo by b\nthree\n");
    let out = l.integrate("B1", &[]).expect_code(1).json();
    let tip_before = l.rev(&l.integration());
    assert_eq!(out["outcome"], "failed");
    assert_eq!(out["failed_step"], "gate");
    let findings: Vec<&str> = out["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        findings
            .iter()
            .any(|f| f.contains("multi_writer notes.txt (a, b)")),
        "{findings:?}"
    );
    assert_eq!(out["agents"], serde_json::json!(["a", "b"]));
    assert_eq!(
        tip_before,
        l.rev("main"),
        "integration starts at main and must not move"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out["report"].as_str().unwrap()).unwrap())
            .unwrap();
    assert_eq!(report["ok"], false);

    // running it again changes nothing: same verdict, branch still in place
    l.integrate("B1", &[]).expect_code(1);
    assert_eq!(l.rev(&l.integration()), tip_before);
    assert_eq!(l.batch_state("B1")["status"], "running");

    // the replan: b goes back onto the integration branch with a's work merged, with the
    // findings for its prompt
    let rp = baton(&l.repo, &["batch", "replan", &l.plan, "B1", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(rp["decision"], "rerun", "{rp}");
    assert_eq!(rp["rerun"][0]["agent"], "b");
    let gf = rp["rerun"][0]["gate_findings"].as_str().unwrap();
    assert!(gf.contains("notes.txt") && gf.contains("(a, b)"), "{gf}");
    // b's worktree now has a's version; its old work is kept, not lost
    assert_eq!(
        std::fs::read_to_string(wb.join("notes.txt")).unwrap(),
        "one\nTWO by a\nthree\n"
    );
    let kept = l
        .repo
        .git(&["for-each-ref", "--format=%(refname)", "refs/baton/"]);
    assert!(
        kept.contains(&format!("refs/baton/{}/replaced/b/1", l.plan)),
        "{kept}"
    );
    let exec = l.execution();
    assert_eq!(exec["replans"].as_array().unwrap().len(), 1, "{exec}");

    // b redoes its part knowing a's; the batch now integrates
    write(&wb, "notes.txt", "one\nTWO by a\nthree\nfour by b\n");
    let out = l.integrate("B1", &[]).expect_code(0).json();
    assert_eq!(out["outcome"], "advanced", "{out}");
    let notes = l
        .repo
        .git(&["show", &format!("{}:notes.txt", l.integration())]);
    assert_eq!(notes, "one\nTWO by a\nthree\nfour by b");
    // the batch passed: there is no failed gate left to replan
    let again = baton(&l.repo, &["batch", "replan", &l.plan, "B1"]);
    assert_eq!(again.code, 2, "{again:?}");
}

#[test]
fn tests_that_pass_on_each_branch_but_fail_merged_fail_the_gate() {
    let l = Loop::new(TWO_BATCHES);
    let wa = l.worktree("a", "main");
    let wb = l.worktree("b", "main");
    write(&wa, "flags/fast-path", "on\n");
    write(&wb, "flags/new-cache", "on\n");
    // each branch alone passes the project's tests
    for wt in [&wa, &wb] {
        let out = l.repo.command("sh", wt).arg("test.sh").output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let out = l.integrate("B1", &[]).expect_code(1).json();
    assert_eq!(out["failed_step"], "tests", "{out}");
    let f = out["findings"].to_string();
    assert!(f.contains("tests: failed"), "{f}");
    assert_eq!(l.rev(&l.integration()), l.rev("main"));
    // the merged tree git makes is the one that failed
    let merged = l
        .repo
        .git(&["merge-tree", "--write-tree", &l.branch("a"), &l.branch("b")]);
    let flags = l.repo.git(&["ls-tree", "--name-only", &merged, "flags/"]);
    assert_eq!(flags.lines().count(), 2, "{flags}");
}

#[test]
fn land_fast_forwards_only() {
    let l = Loop::new(TWO_BATCHES);
    let wa = l.worktree("a", "main");
    let _wb = l.worktree("b", "main");
    write(&wa, "a.txt", "a\n");
    // a branch that is not behind the integration branch is refused, and stays where it was
    l.repo.git(&["branch", "elsewhere", "main"]);
    let other = l.repo.scratch("other");
    l.repo.git(&[
        "worktree",
        "add",
        "-q",
        other.to_str().unwrap(),
        "elsewhere",
    ]);
    write(&other, "own.txt", "user's own work\n");
    l.repo.commit_all_in(&other, "the user's own commit");
    let elsewhere = l.rev("elsewhere");
    let run = l.integrate("B1", &["--land", "elsewhere"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("only a fast-forward"), "{}", run.stderr);
    assert_eq!(l.rev("elsewhere"), elsewhere);
    // the batch itself was integrated; landing on main (checked out, clean) fast-forwards it
    // and its files
    let out = baton(
        &l.repo,
        &[
            "batch",
            "integrate",
            &l.plan,
            "B1",
            "--land",
            "main",
            "--json",
        ],
    );
    let out = out.expect_code(0).json();
    assert_eq!(out["outcome"], "already_done", "{out}");
    assert_eq!(l.rev("main"), l.rev(&l.integration()));
    assert!(l.repo.path().join("a.txt").is_file());
    assert_eq!(l.repo.git(&["status", "--porcelain"]), "");
}

#[test]
fn killed_between_merge_and_merged_tests_resumes_and_advances_once() {
    let l = Loop::new(TWO_BATCHES);
    let wa = l.worktree("a", "main");
    let wb = l.worktree("b", "main");
    write(&wa, "a.txt", "a\n");
    write(&wb, "b.txt", "b\n");
    let hold = l.repo.scratch("hold").join("tests-started");
    let mut child = l
        .repo
        .command(crate::support::BATON, l.repo.path())
        .args(["batch", "integrate", &l.plan, "B1", "--json"])
        .env("BATON_TEST_HOLD", &hold)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // wait until the merged tests run (bounded: 60 s)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !hold.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the merged tests never started"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "baton exited before the tests ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let recorded = l.batch_state("B1")["integration"].clone();
    let merged = recorded["merged"].as_str().unwrap().to_owned();
    assert!(recorded.get("tested").is_none(), "{recorded}");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let sleeper: i32 = std::fs::read_to_string(&hold)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-9", &sleeper.to_string()])
        .status();
    assert_eq!(
        l.rev(&l.integration()),
        l.rev("main"),
        "moved before the tests passed"
    );

    let out = l.integrate("B1", &[]).expect_code(0).json();
    assert_eq!(out["outcome"], "advanced");
    // the merge made before the kill is the one that landed: nothing was merged twice
    assert_eq!(l.rev(&l.integration()), merged);
    let reflog = l
        .repo
        .git(&["reflog", "show", "--format=%H %gs", &l.integration()]);
    assert_eq!(
        reflog.lines().count(),
        2,
        "created once, advanced once:\n{reflog}"
    );
    // and again: nothing more happens
    let again = l.integrate("B1", &[]).expect_code(0).json();
    assert_eq!(l.rev(&l.integration()), merged, "{again}");
}

#[test]
fn worktree_create_batch_starts_from_integration_and_moves_status() {
    let l = Loop::new(TWO_BATCHES);
    // B2 cannot start before B1 is integrated: exit 2, nothing created
    let early = baton(
        &l.repo,
        &["worktree", "create", "--plan", &l.plan, "--batch", "B2"],
    );
    assert_eq!(early.code, 2, "{early:?}");
    assert!(early.stderr.contains("depends on B1"), "{}", early.stderr);
    assert!(
        l.repo
            .git_output(l.repo.path(), &["rev-parse", "--verify", &l.branch("c")])
            .status
            .code()
            != Some(0)
    );

    let made = baton(
        &l.repo,
        &[
            "worktree", "create", "--plan", &l.plan, "--batch", "B1", "--json",
        ],
    )
    .expect_code(0)
    .json();
    let paths: Vec<PathBuf> = made["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| PathBuf::from(c["path"].as_str().unwrap()))
        .collect();
    assert_eq!(paths.len(), 2);
    // the batch and its agents are running in the execution, started from integration
    let b1 = l.batch_state("B1");
    assert_eq!(b1["status"], "running");
    for a in b1["agents"].as_array().unwrap() {
        assert_eq!(a["status"], "running", "{b1}");
    }
    assert_eq!(l.rev(&l.integration()), l.rev("main"));
    write(&paths[0], "a.txt", "a\n");
    write(&paths[1], "b.txt", "b\n");
    l.integrate("B1", &[]).expect_code(0);
    let made = baton(
        &l.repo,
        &[
            "worktree", "create", "--plan", &l.plan, "--batch", "B2", "--json",
        ],
    )
    .expect_code(0)
    .json();
    let c = PathBuf::from(made["created"][0]["path"].as_str().unwrap());
    assert!(c.join("a.txt").is_file() && c.join("b.txt").is_file());
    let metrics = std::fs::read_to_string(l.repo.path().join(".baton/metrics.jsonl")).unwrap();
    assert_eq!(metrics.matches("\"batch_start\"").count(), 2, "{metrics}");

    // B1's worktrees go: their work is on the integration branch (not on main)
    let integration_before = l.rev(&l.integration());
    baton(
        &l.repo,
        &["worktree", "cleanup", "--plan", &l.plan, "--batch", "B1"],
    )
    .expect_code(0);
    for p in &paths {
        assert!(!p.exists(), "{} was not removed", p.display());
    }
    assert!(c.is_dir(), "B2's worktree is not part of B1");
    assert_eq!(l.rev(&l.integration()), integration_before);
    let kept = l
        .repo
        .git(&["ls-tree", "-r", "--name-only", &l.integration()]);
    assert!(kept.contains("a.txt") && kept.contains("b.txt"), "{kept}");
    let fsck = l.repo.git_output(l.repo.path(), &["fsck", "--no-dangling"]);
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stderr)
    );
}

#[test]
fn verify_batch_gates_only_that_batch_and_records_the_verdict() {
    let l = Loop::new(TWO_BATCHES);
    let wa = l.worktree("a", "main");
    let wb = l.worktree("b", "main");
    write(&wa, "notes.txt", "one\nTWO by a\nthree\n");
    write(&wb, "notes.txt", "one\ntwo by b\nthree\n");
    // a worktree outside the batch that writes the same file is not part of its gate
    let other = l.repo.scratch("other");
    l.repo.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "elsewhere",
        other.to_str().unwrap(),
    ]);
    write(&other, "notes.txt", "one\ntwo elsewhere\nthree\n");
    let rep = baton(
        &l.repo,
        &[
            "verify",
            "--plan",
            &l.plan,
            "--batch",
            "B1",
            "--check",
            "conflicts",
            "--json",
        ],
    )
    .expect_code(1)
    .json();
    let conflicts = &rep["checks"][0];
    let agents: Vec<&Value> = conflicts["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["agents"])
        .collect();
    assert_eq!(agents, [&serde_json::json!(["a", "b"])], "{rep}");
    // the verdict moved the execution and the metrics
    let gates = &l.batch_state("B1")["integration"]["gates"];
    assert_eq!(gates[0]["passed"], false, "{gates}");
    assert_eq!(gates[0]["agents"], serde_json::json!(["a", "b"]));
    let metrics = std::fs::read_to_string(l.repo.path().join(".baton/metrics.jsonl")).unwrap();
    assert!(metrics.contains("\"verification\""), "{metrics}");
    // a batch the plan does not have is bad input, before anything runs
    let bad = baton(&l.repo, &["verify", "--plan", &l.plan, "--batch", "B9"]);
    assert_eq!(bad.code, 2, "{bad:?}");
}
