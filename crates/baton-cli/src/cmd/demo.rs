//! `baton demo`: the whole flow on a throwaway repository with scripted agents.
//!
//! Every `baton` step runs this same executable as a child process, prints the command and what
//! it printed, and checks the exit code it must have: the demo is also an end-to-end smoke test.
//! The scripted director (`demo/director.rs`) plays the part `baton run` and a director agent
//! will play: it runs agents in their worktrees and merges batches.

mod director;
mod fixtures;

use std::path::{Path, PathBuf};
use std::process::Command;

use baton_metrics::MetricsLog;
use baton_plan::{BatchId, ExecutionTracker};
use baton_report::exit;
use clap::Args;

use self::director::{Director, Seat};
use crate::ctx::Ctx;
use crate::error::{CliError, CliResult};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Build the demo repository in DIR (created; must not exist or be empty) and keep it.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

struct Demo<'a> {
    ctx: &'a Ctx,
    exe: PathBuf,
    root: PathBuf,
    color: &'static str,
    /// Every command the demo ran and how it exited, for `--json`.
    steps: std::cell::RefCell<Vec<Step>>,
}

#[derive(serde::Serialize)]
struct Step {
    command: Vec<String>,
    exit_code: i32,
}

impl Demo<'_> {
    fn heading(&self, text: &str) {
        self.ctx.say("");
        self.ctx.say(self.ctx.style.bold(&format!("== {text}")));
    }

    fn show_output(&self, stdout: &[u8], stderr: &[u8]) {
        let stdout = String::from_utf8_lossy(stdout);
        let stderr = String::from_utf8_lossy(stderr);
        for line in stdout.lines().chain(stderr.lines()) {
            self.ctx.say(format!("  {line}"));
        }
    }

    /// Run `baton ARGS` in the demo repository, show its output, check its exit code.
    fn baton(&self, args: &[&str], expect: u8) -> CliResult<String> {
        self.ctx
            .say(self.ctx.style.cyan(&format!("$ baton {}", args.join(" "))));
        let out = self.baton_quiet(args, expect)?;
        Ok(out)
    }

    /// Like [`Demo::baton`], printing the output but not the command line.
    fn baton_quiet(&self, args: &[&str], expect: u8) -> CliResult<String> {
        let out = Command::new(&self.exe)
            .args(["--color", self.color])
            .args(args)
            .current_dir(&self.root)
            .env_remove("NO_COLOR")
            .output()
            .map_err(|e| CliError::env(format!("cannot run {}: {e}", self.exe.display())))?;
        let is_json = args.contains(&"--json");
        if !is_json {
            self.show_output(&out.stdout, &out.stderr);
        }
        let code = out.status.code().unwrap_or(-1);
        self.record(std::iter::once("baton").chain(args.iter().copied()), code);
        if !is_json {
            self.ctx
                .say(self.ctx.style.dim(&format!("  (exit {code})")));
        }
        if code != i32::from(expect) {
            if is_json {
                self.show_output(&out.stdout, &out.stderr);
            }
            return Err(CliError::env(format!(
                "demo step `baton {}` exited {code}, expected {expect}",
                args.join(" ")
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Run git in the demo repository (the director merging a batch, say), shown like a step.
    fn git(&self, dir: &Path, args: &[&str]) -> CliResult<()> {
        let shown: Vec<String> = args
            .iter()
            .map(|a| {
                if a.contains(' ') {
                    format!("{a:?}")
                } else {
                    (*a).to_owned()
                }
            })
            .collect();
        self.ctx
            .say(self.ctx.style.cyan(&format!("$ git {}", shown.join(" "))));
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .map_err(|e| CliError::env(format!("demo: cannot run git: {e}")))?;
        self.show_output(&out.stdout, &out.stderr);
        self.record(
            std::iter::once("git").chain(args.iter().copied()),
            out.status.code().unwrap_or(-1),
        );
        if !out.status.success() {
            return Err(CliError::env(format!(
                "demo: `git {}` failed",
                args.join(" ")
            )));
        }
        Ok(())
    }

    fn record<'s>(&self, command: impl Iterator<Item = &'s str>, exit_code: i32) {
        self.steps.borrow_mut().push(Step {
            command: command.map(str::to_owned).collect(),
            exit_code,
        });
    }

    /// Where each agent of the plan works, from `baton --json worktree list`.
    fn seats(&self, plan_id: &str, base: &str) -> CliResult<Vec<(String, Seat)>> {
        let listing = self.baton_quiet(&["--json", "worktree", "list"], exit::OK)?;
        let value: serde_json::Value = serde_json::from_str(&listing)
            .map_err(|e| CliError::env(format!("demo: worktree list --json: {e}")))?;
        let items = value
            .get("worktrees")
            .and_then(|w| w.as_array())
            .or_else(|| value.as_array())
            .cloned()
            .unwrap_or_default();
        let prefix = format!("baton/{plan_id}/");
        Ok(items
            .iter()
            .filter_map(|w| {
                let branch = w.get("branch")?.as_str()?;
                let agent = branch.strip_prefix(&prefix)?;
                Some((
                    agent.to_owned(),
                    Seat {
                        worktree: PathBuf::from(w.get("path")?.as_str()?),
                        branch: branch.to_owned(),
                        base: base.to_owned(),
                    },
                ))
            })
            .collect())
    }
}

fn seat<'s>(seats: &'s [(String, Seat)], agent: &str) -> CliResult<&'s Seat> {
    seats
        .iter()
        .find(|(a, _)| a == agent)
        .map(|(_, s)| s)
        .ok_or_else(|| CliError::env(format!("demo: no worktree for agent {agent}")))
}

pub fn run(ctx: &Ctx, args: DemoArgs) -> CliResult {
    let (tmp, root) = match args.dir {
        Some(dir) => {
            if dir.exists() && dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
                return Err(CliError::input(format!(
                    "--dir {}: exists and is not empty; give a new directory",
                    dir.display()
                )));
            }
            std::fs::create_dir_all(&dir)
                .map_err(|e| CliError::env(format!("cannot create {}: {e}", dir.display())))?;
            let dir = dir
                .canonicalize()
                .map_err(|e| CliError::env(format!("cannot resolve {}: {e}", dir.display())))?;
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
        steps: std::cell::RefCell::new(Vec::new()),
    };
    flow(&demo)?;
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "ok": true,
            "repo": root,
            "kept": tmp.is_none(),
            "steps": *demo.steps.borrow(),
        }))?;
        return Ok(exit::OK);
    }
    ctx.say("");
    ctx.say(
        ctx.style
            .green("demo finished: every step exited as expected"),
    );
    if tmp.is_none() {
        ctx.say(format!("the demo repository is kept at {}", root.display()));
    }
    Ok(exit::OK)
}

fn flow(demo: &Demo<'_>) -> CliResult<()> {
    let ctx = demo.ctx;
    let root = &demo.root;

    demo.heading("A throwaway repository: a README, a scripted agent, a test script");
    init_repo(root)?;
    ctx.say(format!("  {}", root.display()));

    demo.heading("Check a plan: ids, dependencies, write scopes, commands");
    demo.baton(&["plan", "validate", "plans/greeting.toml"], exit::OK)?;

    demo.heading("Bad plans are rejected: one line per problem, exit 2, nothing written");
    demo.baton(&["plan", "validate", "plans/bad.toml"], exit::BAD_INPUT)?;
    demo.baton(&["plan", "validate", "plans/unsafe.toml"], exit::BAD_INPUT)?;

    demo.heading("Store the plan (it gets an id) and link it to the task system");
    let id = demo
        .baton(&["plan", "new", "--from", "plans/greeting.toml"], exit::OK)?
        .trim()
        .to_owned();
    demo.baton(&["plan", "show", &id], exit::OK)?;
    demo.baton(&["task", "create-from-plan", &id], exit::OK)?;
    demo.baton(&["task", "ready"], exit::OK)?;

    let state = Ctx::state_dir_at(root)?;
    let plan_id: baton_plan::PlanId = id
        .parse()
        .map_err(|e| CliError::env(format!("demo: {e}")))?;
    let plan = baton_plan::store::load_stored(&state, &plan_id)?;
    let director = Director {
        tracker: ExecutionTracker::open(state.execution(&id), plan_id.clone(), plan.clone())?,
        metrics: MetricsLog::new(state.metrics()),
        plan,
        plan_id,
        say: Box::new({
            let json = ctx.json;
            move |line| {
                if !json {
                    println!("{line}");
                }
            }
        }),
    };
    let b1: BatchId = "B1"
        .parse()
        .map_err(|e| CliError::env(format!("demo: {e}")))?;
    let b2: BatchId = "B2"
        .parse()
        .map_err(|e| CliError::env(format!("demo: {e}")))?;

    demo.heading("Batch B1: each agent works in its own worktree, on its own branch");
    demo.baton(
        &[
            "worktree",
            "create",
            "--plan",
            &id,
            "--agent",
            "survey",
            "--agent",
            "style-guide",
        ],
        exit::OK,
    )?;
    let seats = demo.seats(&id, "main")?;
    let started = director.start_batch(&b1)?;
    for agent in ["survey", "style-guide"] {
        director.run_agent(&b1, agent, seat(&seats, agent)?)?;
    }

    demo.heading("The gate: both agents rewrote README.md's title, and style-guide left its scope");
    demo.baton(
        &["verify", "--plan", &id, "--check", "git,conflicts"],
        exit::GATE_FAILED,
    )?;
    director.record_gate(&b1, false)?;

    demo.heading("The director sends style-guide back; the gate passes");
    let style = seat(&seats, "style-guide")?;
    demo.git(&style.worktree, &["reset", "-q", "--hard", "main"])?;
    director.reopen(&b1, "style-guide")?;
    director.run_agent(&b1, "style-guide", style)?;
    demo.baton(
        &["verify", "--plan", &id, "--check", "git,conflicts"],
        exit::OK,
    )?;
    director.record_gate(&b1, true)?;
    for agent in ["survey", "style-guide"] {
        let branch = &seat(&seats, agent)?.branch;
        let message = format!("Merge {agent} (batch B1)");
        demo.git(root, &["merge", "-q", "--no-ff", "-m", &message, branch])?;
    }
    director.complete_batch(&b1, started, true)?;

    demo.heading("Batch B2 reuses a finished worktree: only changed files are rewritten");
    demo.baton(
        &[
            "worktree", "create", "--plan", &id, "--agent", "greeter", "--reuse",
        ],
        exit::OK,
    )?;
    let seats = demo.seats(&id, "main")?;
    let greeter = seat(&seats, "greeter")?;
    let started = director.start_batch(&b2)?;
    if !director.run_agent(&b2, "greeter", greeter)? {
        ctx.say("  retrying (retries = 1)");
        director.run_agent(&b2, "greeter", greeter)?;
    }

    demo.heading("Tests: they fail in the main checkout, and pass on the batch's merged result");
    demo.baton(
        &["verify", "--check", "tests", "--in-checkout"],
        exit::GATE_FAILED,
    )?;
    demo.baton(
        &[
            "verify",
            "--plan",
            &id,
            "--merged",
            "--check",
            "conflicts,tests",
        ],
        exit::OK,
    )?;
    director.record_gate(&b2, true)?;
    demo.git(
        root,
        &[
            "merge",
            "-q",
            "--no-ff",
            "-m",
            "Merge greeter (batch B2)",
            &greeter.branch,
        ],
    )?;
    director.complete_batch(&b2, started, true)?;
    demo.baton(&["status", &id], exit::OK)?;

    demo.heading("Cleanup keeps what is not merged: an abandoned experiment survives");
    demo.baton(
        &["worktree", "create", "experiment", "--base", "main"],
        exit::OK,
    )?;
    let experiment = root
        .parent()
        .map(|p| {
            p.join(format!("{}.baton-worktrees", file_name(root)))
                .join("experiment")
        })
        .unwrap_or_default();
    std::fs::write(experiment.join("idea.txt"), "an idea nobody merged\n")
        .map_err(|e| CliError::env(format!("demo: {e}")))?;
    demo.git(&experiment, &["add", "idea.txt"])?;
    demo.git(&experiment, &["commit", "-q", "-m", "an unmerged idea"])?;
    demo.baton(&["worktree", "list"], exit::OK)?;
    demo.baton(&["worktree", "cleanup"], exit::OK)?;
    demo.baton(&["worktree", "list"], exit::OK)?;

    demo.heading("What it cost: metrics, and the task system");
    demo.baton(&["metrics", "summary"], exit::OK)?;
    demo.baton(&["task", "list"], exit::OK)?;
    Ok(())
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
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

/// `git init` with one commit, through libgit2 with a fixed identity and date, and a local
/// identity for the scripted agents' commits.
fn init_repo(root: &Path) -> CliResult<()> {
    let fail =
        |what: &str, e: git2::Error| CliError::env(format!("demo: cannot {what}: {}", e.message()));
    write(root, "README.md", "# demo\n")?;
    write(root, "scripts/agent.sh", fixtures::AGENT_SCRIPT)?;
    write(root, "scripts/test.sh", fixtures::TEST_SCRIPT)?;
    write(root, "plans/greeting.toml", fixtures::PLAN)?;
    write(root, "plans/bad.toml", fixtures::BAD_PLAN)?;
    write(root, "plans/unsafe.toml", fixtures::UNSAFE_PLAN)?;
    write(root, ".config/baton.toml", fixtures::CONFIG)?;
    let mut opts = git2::RepositoryInitOptions::new();
    opts.initial_head("main");
    let repo = git2::Repository::init_opts(root, &opts).map_err(|e| fail("init", e))?;
    let mut config = repo.config().map_err(|e| fail("open the config", e))?;
    for (key, value) in [
        ("user.name", "baton demo"),
        ("user.email", "demo@baton.invalid"),
        ("commit.gpgsign", "false"),
    ] {
        config
            .set_str(key, value)
            .map_err(|e| fail("set the config", e))?;
    }
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
