//! `baton demo`: the whole flow on a throwaway repository with scripted agents.
//!
//! Every step runs the real CLI as a child process (this same executable), prints the command
//! and what it printed, and checks the exit code it should have: the demo is also a smoke test.

use std::path::{Path, PathBuf};
use std::process::Command;

use baton_plan::{AgentResult, AgentStart, ExecutionTracker, Status};
use baton_report::exit;
use clap::Args;

use crate::ctx::Ctx;
use crate::error::{CliError, CliResult};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Build the demo repository in DIR (created; must not exist or be empty) and keep it.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

const PLAN: &str = r#"schema_version = 1
title = "Add a greeting module"

[goal]
summary = "The project greets its users"
success_criteria = ["greeting.txt exists", "notes explain it"]

[defaults]
profile = "script"
timeout = "1m"
retries = 1

# Scripted agents: a shell script stands in for Claude Code, Codex or Aider.
# The agent id reaches it as an argv element, never through a shell string.
[profiles.script]
command = ["sh", "scripts/agent.sh", "{agent_id}"]

[[batches]]
id = "B1"
name = "research"
kind = "parallel"

[[batches.agents]]
id = "survey"
task_type = "research"
prompt = "Find where greetings belong"
scope = { files_write = ["docs/survey.md"] }

[[batches.agents]]
id = "style-guide"
task_type = "research"
prompt = "Write down the tone of the greeting"
scope = { files_write = ["docs/style.md"] }

[[batches]]
id = "B2"
name = "implement"
kind = "parallel"
depends_on = ["B1"]

[[batches.agents]]
id = "greeter"
task_type = "implement"
prompt = "Write the greeting following {outputs.survey}"
scope = { files_write = ["src/**"] }
"#;

const BAD_PLAN: &str = r#"schema_version = 1
title = "A plan with mistakes"

[profiles.script]
command = ["sh", "scripts/agent.sh", "{agent_id}"]

[defaults]
profile = "script"

[[batches]]
id = "B1"
depends_on = ["B3"]
[[batches.agents]]
id = "api"
task_type = "implement"
scope = { files_write = ["src/**"] }
[[batches.agents]]
id = "cache"
task_type = "implement"
scope = { files_write = ["src/cache/**"] }

[[batches]]
id = "B2"
depends_on = ["B1", "B9"]
[[batches.agents]]
id = "tests"
task_type = "test"

[[batches]]
id = "B3"
depends_on = ["B2"]
[[batches.agents]]
id = "docs"
task_type = "research"
"#;

const UNSAFE_PLAN: &str = r#"schema_version = 1
title = "An agent id that would escape its directory"

[[batches]]
id = "B1"
[[batches.agents]]
id = "../../etc"
task_type = "research"
"#;

/// A scripted agent: writes the file its id calls for. `greeter` fails its first attempt, so
/// the demo shows a retry.
const AGENT_SCRIPT: &str = r#"#!/bin/sh
set -eu
id="$1"
case "$id" in
  survey) mkdir -p docs && echo "Greetings go in src/greeting.txt" > docs/survey.md ;;
  style-guide) mkdir -p docs && echo "Warm, short, no exclamation marks." > docs/style.md ;;
  greeter)
    if [ ! -f .baton-demo-retried ]; then touch .baton-demo-retried; echo "flaky start" >&2; exit 1; fi
    mkdir -p src && echo "Hello, and welcome." > src/greeting.txt ;;
  *) echo "unknown agent $id" >&2; exit 2 ;;
esac
echo "agent $id done"
"#;

struct Demo<'a> {
    ctx: &'a Ctx,
    exe: PathBuf,
    root: PathBuf,
    color: &'static str,
}

impl Demo<'_> {
    fn heading(&self, text: &str) {
        self.ctx.say("");
        self.ctx.say(self.ctx.style.bold(&format!("== {text}")));
    }

    /// Run `baton ARGS` in the demo repository and check its exit code.
    fn baton(&self, args: &[&str], expect: u8) -> CliResult<String> {
        self.ctx
            .say(self.ctx.style.cyan(&format!("$ baton {}", args.join(" "))));
        let out = Command::new(&self.exe)
            .args(["--color", self.color])
            .args(args)
            .current_dir(&self.root)
            .env_remove("NO_COLOR")
            .output()
            .map_err(|e| CliError::env(format!("cannot run {}: {e}", self.exe.display())))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        for line in stdout
            .lines()
            .chain(String::from_utf8_lossy(&out.stderr).lines())
        {
            self.ctx.say(format!("  {line}"));
        }
        let code = out.status.code().unwrap_or(-1);
        self.ctx
            .say(self.ctx.style.dim(&format!("  (exit {code})")));
        if code != i32::from(expect) {
            return Err(CliError::env(format!(
                "demo step `baton {}` exited {code}, expected {expect}",
                args.join(" ")
            )));
        }
        Ok(stdout)
    }
}

pub fn run(ctx: &Ctx, args: DemoArgs) -> CliResult {
    let (_tmp, root) = match args.dir {
        Some(dir) => {
            if dir.exists() && dir.read_dir().map_or(true, |mut d| d.next().is_some()) {
                return Err(CliError::input(format!(
                    "--dir {}: exists and is not empty; give a new directory",
                    dir.display()
                )));
            }
            std::fs::create_dir_all(&dir)
                .map_err(|e| CliError::env(format!("cannot create {}: {e}", dir.display())))?;
            (None, dir)
        }
        None => {
            let tmp = tempfile::Builder::new()
                .prefix("baton-demo-")
                .tempdir()
                .map_err(|e| CliError::env(format!("cannot create a temp dir: {e}")))?;
            let root = tmp.path().join("repo");
            (Some(tmp), root)
        }
    };
    let exe = std::env::current_exe()
        .map_err(|e| CliError::env(format!("cannot find the baton executable: {e}")))?;
    let demo = Demo {
        ctx,
        exe,
        root: root.clone(),
        color: if ctx.style.enabled { "always" } else { "never" },
    };

    demo.heading("A throwaway repository with a scripted agent");
    init_repo(&root)?;
    ctx.say(format!("  {}", root.display()));

    demo.heading("Check a plan: ids, dependencies, write scopes, commands");
    write(&root, "plan.toml", PLAN)?;
    demo.baton(&["plan", "validate", "plan.toml"], exit::OK)?;

    demo.heading("Store it: the plan gets an id and lives in .baton/plans/");
    let id = demo.baton(&["plan", "new", "--from", "plan.toml"], exit::OK)?;
    let id = id.trim().to_owned();
    demo.baton(&["plan", "show", &id], exit::OK)?;
    demo.baton(&["plan", "list"], exit::OK)?;

    demo.heading("Bad plans are rejected with one line per problem, exit 2");
    write(&root, "bad.toml", BAD_PLAN)?;
    demo.baton(&["plan", "validate", "bad.toml"], exit::BAD_INPUT)?;
    write(&root, "unsafe.toml", UNSAFE_PLAN)?;
    demo.baton(&["plan", "validate", "unsafe.toml"], exit::BAD_INPUT)?;

    demo.heading("Run the scripted agents; the execution is saved after every step");
    scripted_run(&demo, &id)?;
    demo.baton(&["status", &id], exit::OK)?;

    ctx.say("");
    ctx.say(
        ctx.style
            .green("demo finished: every step exited as expected"),
    );
    if _tmp.is_none() {
        ctx.say(format!("the demo repository is kept at {}", root.display()));
    }
    Ok(exit::OK)
}

fn write(root: &Path, rel: &str, text: &str) -> CliResult<()> {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| CliError::env(format!("cannot create {}: {e}", parent.display())))?;
    }
    std::fs::write(&path, text)
        .map_err(|e| CliError::env(format!("cannot write {}: {e}", path.display())))
}

/// `git init` with one commit, through libgit2 with a fixed identity and date.
fn init_repo(root: &Path) -> CliResult<()> {
    let fail =
        |what: &str, e: git2::Error| CliError::env(format!("demo: cannot {what}: {}", e.message()));
    write(root, "README.md", "# demo\n")?;
    write(root, "scripts/agent.sh", AGENT_SCRIPT)?;
    let mut opts = git2::RepositoryInitOptions::new();
    opts.initial_head("main");
    let repo = git2::Repository::init_opts(root, &opts).map_err(|e| fail("init", e))?;
    let mut index = repo.index().map_err(|e| fail("open the index", e))?;
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .map_err(|e| fail("add files", e))?;
    index.write().map_err(|e| fail("write the index", e))?;
    let tree_id = index.write_tree().map_err(|e| fail("write a tree", e))?;
    let tree = repo
        .find_tree(tree_id)
        .map_err(|e| fail("find the tree", e))?;
    let sig = git2::Signature::new(
        "baton demo",
        "demo@baton.invalid",
        &git2::Time::new(1_767_225_600, 0),
    )
    .map_err(|e| fail("make a signature", e))?;
    repo.commit(Some("HEAD"), &sig, &sig, "initial commit", &tree, &[])
        .map_err(|e| fail("commit", e))?;
    Ok(())
}

/// Drive the stored plan's execution through the real tracker, running each scripted agent as
/// a child process (argv, no shell string) and retrying a failed one once.
fn scripted_run(demo: &Demo<'_>, id: &str) -> CliResult<()> {
    let ctx = demo.ctx;
    let state = crate::ctx::Ctx::state_dir_at(&demo.root)?;
    let plan_id: baton_plan::PlanId = id
        .parse()
        .map_err(|e| CliError::env(format!("demo: {e}")))?;
    let plan = baton_plan::store::load_stored(&state, &plan_id)?;
    let tracker = ExecutionTracker::open(state.execution(id), plan_id, plan.clone())?;
    for batch in &plan.batches {
        tracker.start_batch(&batch.id)?;
        ctx.say(format!("  batch {} started", batch.id));
        let mut batch_ok = true;
        for agent in &batch.agents {
            let retries = agent.retries.or(plan.defaults.retries).unwrap_or(0);
            let mut attempt = 0;
            loop {
                let started = std::time::Instant::now();
                let mut child = Command::new("sh");
                child
                    .arg("scripts/agent.sh")
                    .arg(agent.id.as_str())
                    .current_dir(&demo.root);
                let spawned = child
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .map_err(|e| {
                        CliError::env(format!("demo: cannot start agent {}: {e}", agent.id))
                    })?;
                let process = baton_plan::ProcessRef {
                    pid: spawned.id(),
                    start_time: 0,
                };
                let (_, n) = tracker.start_agent(
                    &batch.id,
                    &agent.id,
                    AgentStart {
                        process: Some(process),
                        ..AgentStart::default()
                    },
                )?;
                attempt = attempt.max(n);
                let out = spawned
                    .wait_with_output()
                    .map_err(|e| CliError::env(format!("demo: agent {}: {e}", agent.id)))?;
                let ok = out.status.success();
                let result = AgentResult {
                    exit_code: out.status.code(),
                    attempts: attempt,
                    duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    files_changed: Vec::new(),
                    summary: Some(String::from_utf8_lossy(&out.stdout).trim().to_owned()),
                    error_class: (!ok).then_some(baton_plan::ErrorClass::ExitNonzero),
                };
                let status = if ok {
                    Status::Succeeded
                } else {
                    Status::Failed
                };
                tracker.record_agent_result(&batch.id, &agent.id, status, result)?;
                ctx.say(format!(
                    "    agent {} attempt {attempt}: {}",
                    agent.id,
                    if ok { "succeeded" } else { "failed" }
                ));
                if ok {
                    break;
                }
                if attempt > retries {
                    batch_ok = false;
                    break;
                }
            }
        }
        let status = if batch_ok {
            Status::Succeeded
        } else {
            Status::Failed
        };
        tracker.complete_batch(&batch.id, status)?;
        ctx.say(format!("  batch {} {}", batch.id, status.as_str()));
        if !batch_ok {
            return Err(CliError::gate(format!("demo: batch {} failed", batch.id)));
        }
    }
    Ok(())
}
